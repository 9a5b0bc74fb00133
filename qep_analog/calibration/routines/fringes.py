"""The Ramsey fringe: its model and the fit of one site's fringe, for the Ramsey routine and the
local-field map."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.fitting import CurveFit, fit_probabilities
from qep_analog.calibration.routines.scans import frequency_guess


def ramsey_model(tau: NDArray, frequency: float, t2: float, contrast: float, floor: float) -> NDArray:
    return floor + contrast * 0.5 * (1 + np.exp(-((tau / t2) ** 2)) * np.cos(frequency * tau))


def fit_fringe(x: NDArray, counts: NDArray, shots: int, detuning: float) -> CurveFit:
    """The Ramsey model fitted to one site's fringe (counts of '1' at delays ``x``) taken at a
    programmed ``detuning``: frequency guessed over [0.2, 2] × detuning below Nyquist, T2* = half the
    scan, contrast and floor from the counts."""
    step = float(np.min(np.diff(x)))
    scan = float(x.max() - x.min())
    f0 = frequency_guess(x, counts / shots, 0.2 * detuning, min(2 * detuning, math.pi / step), "ramsey")
    guess = [
        f0,
        0.5 * scan,
        max(float(counts.max() - counts.min()) / shots, 0.05),
        float(counts.min()) / shots,
    ]
    bounds = ([0.0, step / 4, 0.0, 0.0], [math.pi / step, 20 * scan, 1.0, 1.0])
    return fit_probabilities(ramsey_model, x, counts, shots, guess, bounds)
