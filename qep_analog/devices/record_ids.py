"""Calibration record ids, ``RUN#STEP:FIELD[@SITE]``: what a profile's ``calibration_records`` name (the
records in force), and what the calibration history writes (:mod:`qep_analog.calibration.records`
re-exports :class:`RecordId`)."""

from __future__ import annotations

import re
from typing import NamedTuple

from qep_analog.errors import CalibrationError


class RecordId(NamedTuple):
    """The parts of a record id ``RUN#STEP:FIELD[@SITE]`` (``RUN:FIELD[@SITE]`` without a step: the
    ids of records written before records had one stay valid as they are). :meth:`parse` is the one
    reader of ids."""

    run_id: str
    step: int | None
    field: str
    site: int | None

    def __str__(self) -> str:
        run = self.run_id if self.step is None else f"{self.run_id}#{self.step}"
        return f"{run}:{self.field}" + ("" if self.site is None else f"@{self.site}")

    @classmethod
    def parse(cls, text: str) -> RecordId:
        """The parts of ``text``; one that is no record id is a one-line :class:`CalibrationError`."""
        match = _RECORD_ID.match(text) if isinstance(text, str) else None
        if match is None:
            raise CalibrationError(f"record id {text!r} is not RUN#STEP:FIELD[@SITE] or RUN:FIELD[@SITE]")
        step, site = match["step"], match["site"]
        return cls(
            match["run"],
            None if step is None else int(step),
            match["field"],
            None if site is None else int(site),
        )


_RECORD_ID = re.compile(
    r"^(?P<run>[^:#@]+)(?:#(?P<step>[1-9][0-9]*))?:(?P<field>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:@(?P<site>[0-9]+))?$"
)


def is_record_id(text: str) -> bool:
    """Whether ``text`` is a record id of either form."""
    return isinstance(text, str) and _RECORD_ID.match(text) is not None
