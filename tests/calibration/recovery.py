"""What every routine test does: run a routine on a fake lab, and check a recovered value."""

from __future__ import annotations

from typing import Any

from qep_analog.calibration.routine import FitResult, Routine
from qep_analog.devices.profile import DeviceProfile


def run_routine(routine: Routine, backend: Any, profile: DeviceProfile, **parameters: Any) -> FitResult:
    """Acquire on ``backend`` against ``profile`` and fit."""
    return routine.fit(routine.acquire(routine.parameters(parameters), backend, profile))


def check(result: FitResult, field: str, truth: float, tolerance: float, site: int | None = None) -> None:
    """A good result whose estimate lies within 3 standard errors and ``tolerance`` of ``truth``."""
    estimate = result.estimate(field, site)
    assert result.quality == "good", result.reasons
    assert abs(estimate.value - truth) <= 3 * estimate.uncertainty, (estimate, truth)
    assert abs(estimate.value - truth) <= tolerance, (estimate, truth)
