"""The calibration in force: profiles as every command uses them, and what their calibration is.

:func:`load_profile` reads a profile (by name on the library's search path, or by path) and applies
the usable records of its device's calibration history (:func:`qep_analog.calibration.resolve.resolve`);
``nominal=True`` gives the file's values. :func:`calibration_report` says, for each calibrated field,
its value, error, record id and age, and whether it is older than the profile's ``max_age``.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qep_analog.calibration.history import PLAIN_NAME, CalibrationHistory, history_directory
from qep_analog.calibration.records import CalibrationRecord
from qep_analog.calibration.resolve import field_value, records_in_force, resolve
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.errors import QEPWarning

US_PER_SECOND = 1e6


def load_profile(
    name_or_path: str | Path,
    *,
    relaxed: bool = False,
    nominal: bool = False,
    history: str | Path | None = None,
) -> DeviceProfile:
    """The profile with the calibration in force: its file's values with the latest usable records of
    its device's history applied (history folder: ``history``, else ``$QEP_ANALOG_HISTORY``, else the
    per-user data directory). ``nominal``: the file's values only. ``relaxed``: the emulation variant."""
    profile = read_profile(name_or_path)
    if not nominal:
        profile = resolve(profile, history_records(profile, history))
    return profile.relaxed() if relaxed else profile


def history_records(
    profile: DeviceProfile, history: str | Path | None = None
) -> tuple[CalibrationRecord, ...]:
    """Every record of ``profile``'s device in the history folder: none when there is no history, or
    when the profile's name cannot name a history file (records are written only for plain names)."""
    if not PLAIN_NAME.match(profile.name):
        return ()
    store = CalibrationHistory(history_directory(history), profile.name)
    read = store.read()
    skipped = read.skipped_summary()
    if skipped:
        warnings.warn(
            CalibrationHistoryWarning(f"calibration history {store.path}: skipped {skipped}"),
            stacklevel=2,
        )
    return read.records


class CalibrationHistoryWarning(QEPWarning):
    """Lines of a calibration history were skipped."""


@dataclass(frozen=True)
class CalibratedField:
    """One calibrated field of a profile: its value (a tuple over sites for a per-site field) and the
    records that set it, their largest uncertainty, the oldest timestamp and its age in µs (negative:
    a record dated in the future, which counts as stale)."""

    field: str
    value: float | tuple[float, ...]
    uncertainty: float
    record_ids: tuple[str, ...]
    timestamp: str
    age: float
    stale: bool

    def to_document(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "value": list(self.value) if isinstance(self.value, tuple) else self.value,
            "uncertainty": self.uncertainty,
            "record_ids": list(self.record_ids),
            "timestamp": self.timestamp,
            "age_s": self.age / US_PER_SECOND,
            "stale": self.stale,
        }


def calibration_report(
    profile: DeviceProfile,
    records: tuple[CalibrationRecord, ...] | list[CalibrationRecord],
    now: dt.datetime | None = None,
) -> tuple[CalibratedField, ...]:
    """The calibrated fields of ``profile`` (a nominal profile) under ``records``, at time ``now``
    (default: the current UTC time). A field is stale when its oldest record is older than the
    profile's ``calibration.max_age``."""
    now = now or dt.datetime.now(dt.UTC)
    fields = []
    for name, used in records_in_force(profile, records).items():
        oldest = min(used, key=lambda r: r.time)
        age = (now - oldest.time).total_seconds() * US_PER_SECOND
        fields.append(
            CalibratedField(
                field=name,
                value=field_value(used),
                uncertainty=max(r.uncertainty for r in used),
                record_ids=tuple(r.record_id for r in used),
                timestamp=oldest.timestamp,
                age=age,
                stale=age < 0
                or (math.isfinite(profile.calibration.max_age) and age > profile.calibration.max_age),
            )
        )
    return tuple(fields)
