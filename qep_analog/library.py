"""The library of named files: device profiles, adiabatic recipes and calibration runcards.

One search path serves all three kinds. A name is looked up, first match wins, in

1. each directory of ``$QEP_ANALOG_PATH`` (separated by ``os.pathsep``): its ``devices/``,
   ``sequences/`` or ``calibration/`` folder, then the directory itself (a file there counts for a
   kind only when its ``schema:`` line names that kind's schema);
2. the ``devices/``, ``sequences/`` and ``calibration/`` folders of the working directory;
3. the built-in files that ship inside the package (``qep_analog.builtin.*``, read with
   :mod:`importlib.resources`; in a source checkout, the top-level folders of the same names).

An entry found earlier *shadows* entries of the same name further down, and says so.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from qep_analog.errors import ConfigError, QEPWarning

PATH_VARIABLE = "QEP_ANALOG_PATH"
Kind = Literal["devices", "sequences", "calibration"]
KINDS: dict[str, str] = {
    "devices": "qep-device/",
    "sequences": "qep-recipe/",
    "calibration": "qep-runcard/",
}
USER_PATH = f"${PATH_VARIABLE}"
WORKING_DIRECTORY = "working directory"
BUILT_IN = "built-in"
_SCHEMA_PROBE_BYTES = 4096


class SearchPathWarning(QEPWarning):
    """An entry of ``$QEP_ANALOG_PATH`` is not a folder."""


@dataclass(frozen=True)
class LibraryEntry:
    """A named file of one kind, where it was found (``origin``) and the origins it shadows."""

    name: str
    kind: str
    path: Path
    origin: str
    shadows: tuple[str, ...] = ()


def builtin_directory(kind: str) -> Path:
    """The folder of the built-in files of ``kind`` (inside the installed package)."""
    _check_kind(kind)
    return _shipped_folder(kind)


def shipped_document(name: str) -> Path:
    """The path of one of the documents that ship with the package (``docs/`` of the source, in the
    wheel as ``qep_analog.builtin.docs``), e.g. ``counts-format.md``."""
    return _shipped_folder("docs") / name


def _shipped_folder(folder: str) -> Path:
    """A top-level folder of the source that ships inside the package as ``qep_analog.builtin.*``."""
    installed = Path(str(resources.files("qep_analog").joinpath("builtin", folder)))
    if installed.is_dir():  # a wheel: the folders ship as package data
        return installed
    return Path(__file__).resolve().parents[1] / folder  # a source checkout (editable or not installed)


def search_path(kind: str) -> list[tuple[str, Path, bool]]:
    """The directories searched for ``kind``, in order: (origin, directory, check the schema line)."""
    _check_kind(kind)
    found: list[tuple[str, Path, bool]] = []
    for entry in os.environ.get(PATH_VARIABLE, "").split(os.pathsep):
        if not entry:
            continue
        if not Path(entry).is_dir():
            warnings.warn(
                SearchPathWarning(f"${PATH_VARIABLE}: {entry} is not a folder; it is skipped"), stacklevel=3
            )
            continue
        found += [(USER_PATH, Path(entry) / kind, False), (USER_PATH, Path(entry), True)]
    builtin = builtin_directory(kind)
    local = Path.cwd() / kind
    if not (local.is_dir() and builtin.is_dir() and local.resolve() == builtin.resolve()):
        found.append((WORKING_DIRECTORY, local, False))
    found.append((BUILT_IN, builtin, False))
    return found


def library_entries(kind: str) -> dict[str, LibraryEntry]:
    """Every named file of ``kind`` on the search path, by name (the first one found wins)."""
    chosen: dict[str, LibraryEntry] = {}
    for origin, directory, check_schema in search_path(kind):
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.yaml")):
            if check_schema and not _has_schema(path, KINDS[kind]):
                continue
            name = path.stem
            if name in chosen:
                first = chosen[name]
                chosen[name] = LibraryEntry(name, kind, first.path, first.origin, (*first.shadows, origin))
            else:
                chosen[name] = LibraryEntry(name, kind, path, origin)
    return chosen


def locate_file(kind: str, name_or_path: str | Path, error: type[Exception] = ConfigError) -> Path:
    """The file of a name on the search path, or ``name_or_path`` itself when it is a file path."""
    text = str(name_or_path)
    what = {"devices": "device", "sequences": "recipe", "calibration": "runcard"}[kind]
    if not text.strip():
        raise error(f"{what}: an empty name")
    known = library_entries(kind)
    if text in known:
        return known[text].path
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    raise error(f"{what} {text!r}: not a known name (known: {', '.join(sorted(known))}) nor a file")


def beside_file(value: str, source: str | Path) -> str:
    """A path ``value`` read from the file ``source``: a relative one is taken relative to that file's
    folder (the file names it as it sees it, wherever the command runs); an absolute one as it is.
    Paths given on the command line stay relative to the working directory."""
    if Path(value).is_absolute():
        return value
    return str(Path(source).parent / value)


def reference_from_file(kind: str, value: str, source: str | Path) -> str:
    """A name or a file path of ``kind`` read from the file ``source`` (``device: NAME`` or
    ``device: my-array.yaml`` in an experiment): a name on the search path stays a name; a path (a
    ``.yaml``/``.yml`` name, one with a folder, or a file next to ``source``) is taken relative to
    the folder of ``source`` (:func:`beside_file`)."""
    if value in library_entries(kind):
        return value
    path = Path(value)
    beside = Path(beside_file(value, source))
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1 or path.is_absolute() or beside.exists():
        return str(beside)
    return value


def _has_schema(path: Path, prefix: str) -> bool:
    try:
        if not path.is_file():  # a FIFO or device named *.yaml would block or never end
            return False
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(_SCHEMA_PROBE_BYTES)
    except OSError:
        return False
    pattern = re.compile(rf"""^schema:\s*["']?{re.escape(prefix)}""")
    return any(pattern.match(line.strip()) for line in head.splitlines())


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"library kind {kind!r}: unknown (known: {', '.join(KINDS)})")
