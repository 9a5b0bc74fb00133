"""Drift in a calibration history: each field's records against time, and the changes between
consecutive records larger than their errors allow.

A *series* is the good and valid records of one field, one site (None: device-wide) and one routine,
in time order (records of equal time in history order). Records of different routines are kept
apart: two routines that measure one field (detuning spectroscopy and Ramsey both give the detuning
offset) have their own systematics, and comparing one with the other would flag their disagreement,
not a change of the device. Bad or invalidated records are left out (a bad fit measured nothing).

A *change* is the step between two consecutive records of a series: jump = x₂ − x₁, combined error
σ = √(σ₁² + σ₂²), flagged when |jump| > k·σ (k = :data:`CHANGE_THRESHOLD` = 3 by default). With honest,
Gaussian errors and a constant field a change is flagged with probability 2·Φ(−k) = 0.27 % for k = 3
(:func:`false_alarm_rate`): of N changes of a stable device about N·0.0027 are flagged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy.stats import norm

from qep_analog.calibration.records import FIELDS, CalibrationRecord
from qep_analog.errors import CalibrationError

#: a change larger than this many combined standard errors is flagged
CHANGE_THRESHOLD = 3.0


@dataclass(frozen=True)
class Series:
    """The good and valid records of ``field`` on ``site`` (None: device-wide) made by ``routine``,
    in time order."""

    field: str
    site: int | None
    routine: str
    records: tuple[CalibrationRecord, ...]

    @property
    def label(self) -> str:
        """``field (routine)`` or ``field[site] (routine)``."""
        where = "" if self.site is None else f"[{self.site}]"
        return f"{self.field}{where} ({self.routine})"


@dataclass(frozen=True)
class Change:
    """The step from record ``before`` to the next record ``after`` of ``series``."""

    series: Series
    before: CalibrationRecord
    after: CalibrationRecord

    @property
    def jump(self) -> float:
        """x₂ − x₁ (the field's internal unit)."""
        return self.after.value - self.before.value

    @property
    def sigma(self) -> float:
        """The combined error √(σ₁² + σ₂²) of the two records."""
        return math.hypot(self.before.uncertainty, self.after.uncertainty)

    @property
    def significance(self) -> float:
        """|jump| / σ (inf for a jump between two records without errors, 0 for no jump)."""
        if self.jump == 0:
            return 0.0
        return abs(self.jump) / self.sigma if self.sigma > 0 else math.inf

    def flagged(self, threshold: float = CHANGE_THRESHOLD) -> bool:
        """Whether the change is larger than ``threshold`` combined errors."""
        return self.significance > threshold

    def to_document(self, threshold: float = CHANGE_THRESHOLD) -> dict[str, object]:
        return {
            "field": self.series.field,
            "site": self.series.site,
            "routine": self.series.routine,
            "before": self.before.record_id,
            "after": self.after.record_id,
            "from": self.before.timestamp,
            "to": self.after.timestamp,
            "jump": self.jump,
            "sigma": self.sigma,
            "significance": self.significance if math.isfinite(self.significance) else None,
            "flagged": self.flagged(threshold),
        }


def false_alarm_rate(threshold: float = CHANGE_THRESHOLD) -> float:
    """P(|jump| > threshold·σ) for a constant field with honest Gaussian errors: 2·Φ(−threshold)."""
    return float(2 * norm.sf(threshold))


def recorded_fields(records: Iterable[CalibrationRecord]) -> list[str]:
    """The fields with at least one good and valid record, in the order of :data:`FIELDS`."""
    present = {r.field for r in records if r.quality == "good" and r.valid}
    return [name for name in FIELDS if name in present]


def history_series(records: Iterable[CalibrationRecord], field: str | None = None) -> list[Series]:
    """The series of the good and valid ``records`` (of ``field`` only, if given), ordered by field
    (as in :data:`FIELDS`), site (device-wide first) and routine. A ``field`` with no such record is
    a one-line :class:`CalibrationError` listing the recorded fields."""
    kept = [r for r in records if r.quality == "good" and r.valid]
    if field is not None and field not in {r.field for r in kept}:
        known = ", ".join(recorded_fields(kept)) or "none"
        what = "has no good record in this history" if field in FIELDS else "is not a calibrated field"
        raise CalibrationError(f"calibrate history: field {field!r} {what} (recorded: {known})")
    groups: dict[tuple[str, int | None, str], list[CalibrationRecord]] = {}
    for record in kept:
        if field is None or record.field == field:
            groups.setdefault((record.field, record.site, record.routine), []).append(record)
    order = {name: k for k, name in enumerate(FIELDS)}

    def key(item: tuple[str, int | None, str]) -> tuple[int, int, str]:
        name, site, routine = item
        return order[name], -1 if site is None else site, routine

    return [
        Series(name, site, routine, tuple(sorted(groups[(name, site, routine)], key=lambda r: r.time)))
        for name, site, routine in sorted(groups, key=key)
    ]


def series_changes(series: Sequence[Series]) -> list[Change]:
    """Every change between consecutive records of each series, series by series, in time order."""
    return [
        Change(s, before, after)
        for s in series
        for before, after in zip(s.records, s.records[1:], strict=False)
    ]
