"""Good, valid calibration records made by hand for tests: a value of a field with its error, as a
runcard step would have written it."""

from __future__ import annotations

from qep_analog.calibration.records import FIELDS, CalibrationRecord


def good_record(
    field: str, value: float, error: float, device: str, *, site: int | None = None, run: str = "r1"
) -> CalibrationRecord:
    """A good record of ``field`` = ``value`` ± ``error`` on ``device`` (at ``site``), run ``run``."""
    return CalibrationRecord(
        field=field,
        value=value,
        uncertainty=error,
        unit=FIELDS[field].unit,
        timestamp="2026-01-01T00:00:00+00:00",
        run_id=run,
        routine="test",
        quality="good",
        valid=True,
        device=device,
        profile_version=1,
        runcard="test",
        site=site,
    )
