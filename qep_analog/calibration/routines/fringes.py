"""The Ramsey fringe: its model and the fit of one site's fringe, for the Ramsey routine and the
local-field map."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.fitting import CurveFit, fit_best
from qep_analog.calibration.routines.scans import frequency_guess


def ramsey_model(tau: NDArray, frequency: float, t2: float, contrast: float, floor: float) -> NDArray:
    return floor + contrast * 0.5 * (1 + np.exp(-((tau / t2) ** 2)) * np.cos(frequency * tau))


def ramsey_jacobian(tau: NDArray, frequency: float, t2: float, contrast: float, floor: float) -> NDArray:
    """∂(:func:`ramsey_model`)/∂(frequency, t2, contrast, floor), shape (points, 4)."""
    decay = np.exp(-((tau / t2) ** 2))
    phase = frequency * tau
    return np.column_stack(
        [
            -0.5 * contrast * decay * np.sin(phase) * tau,
            contrast * decay * np.cos(phase) * tau**2 / t2**3,
            0.5 * (1 + decay * np.cos(phase)),
            np.ones_like(tau),
        ]
    )


def fit_fringe(
    x: NDArray,
    counts: NDArray,
    shots: int,
    detuning: float,
    t2: float | None = None,
    longest: float = 20.0,
) -> CurveFit:
    """The Ramsey model fitted to one site's fringe (counts of '1' at delays ``x``) expected at the
    frequency ``detuning`` (rad/µs): frequency guessed over [0.2, 2] × detuning below Nyquist, T2*
    from half the scan and from ``t2`` (µs, the value in force) when given, contrast and floor from
    the counts; T2* at most ``longest`` scans; the best of the fits
    (:func:`~qep_analog.calibration.fitting.fit_best`, with the model's exact Jacobian)."""
    step = float(np.min(np.diff(x)))
    scan = float(x.max() - x.min())
    f0 = frequency_guess(x, counts / shots, 0.2 * detuning, min(2 * detuning, math.pi / step), "ramsey")
    contrast = max(float(counts.max() - counts.min()) / shots, 0.05)
    floor = float(counts.min()) / shots
    times = [0.5 * scan] + ([t2] if t2 is not None and math.isfinite(t2) and t2 > 0 else [])
    bounds = ([0.0, step / 4, 0.0, 0.0], [math.pi / step, longest * scan, 1.0, 1.0])
    guesses = [[f0, float(np.clip(t, step / 2, longest * scan / 2)), contrast, floor] for t in times]
    return fit_best(ramsey_model, x, counts, shots, guesses, bounds, jac=ramsey_jacobian)
