"""Schema versions of the calibration files: which versions a reader reads, and a one-line refusal of
a file written by a newer version of qep-analog.

A stored document names its format as ``FAMILY/VERSION`` (``qep-calibration-data/2``). A reader states
the newest version it knows and reads every version from 1 up to it (each with its own rules, not with
defaults that make an old file look new); a higher version is a :class:`NewerSchemaError` that names
the file and the version, so an older install says "newer" instead of listing unknown keys.
"""

from __future__ import annotations

import re

from qep_analog.errors import CalibrationError

_SCHEMA = re.compile(r"^(?P<family>[a-z0-9-]+)/(?P<version>[1-9][0-9]{0,5})$")


class NewerSchemaError(CalibrationError):
    """A calibration file written by a newer version of qep-analog than this one."""


def schema_version(found: object, family: str, newest: int, where: str) -> int:
    """The version of ``found`` (a document's ``schema`` value) in ``family``, from 1 to ``newest``;
    a higher version is a :class:`NewerSchemaError` naming ``where`` and the version, anything else a
    one-line :class:`CalibrationError`."""
    match = _SCHEMA.match(found) if isinstance(found, str) else None
    readable = f"{family}/1" if newest == 1 else f"{family}/1 to /{newest}"
    if match is None or match["family"] != family:
        raise CalibrationError(f"{where}: schema {found!r}, expected {readable}")
    version = int(match["version"])
    if version > newest:
        raise NewerSchemaError(
            f"{where}: written by a newer version of qep-analog ({found}); this version reads "
            f"{readable}: upgrade qep-analog to read it"
        )
    return version
