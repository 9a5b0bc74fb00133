"""Least-squares fits of probabilities measured with binomial shot noise."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeWarning, curve_fit


def binomial_sigma(counts: NDArray, shots: int) -> NDArray:
    """Standard errors of k/n; p is regularised to (k + 1/2)/(n + 1) so that 0 and n have one."""
    p = (np.asarray(counts, dtype=float) + 0.5) / (shots + 1.0)
    return np.sqrt(p * (1 - p) / shots)


@dataclass(frozen=True)
class CurveFit:
    """Fitted parameters, their standard errors (covariance diagonal) and the reduced χ²;
    ``covariance`` the full matrix when the fit ran (None from fits that keep the errors only)."""

    values: NDArray
    errors: NDArray
    chi2: float
    dof: int
    ok: bool
    message: str = ""
    covariance: NDArray | None = None

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / self.dof if self.dof > 0 else float("nan")


def fit_probabilities(
    model: Callable[..., NDArray],
    x: NDArray,
    counts: NDArray,
    shots: int,
    guess: Sequence[float],
    bounds: tuple[Sequence[float], Sequence[float]],
) -> CurveFit:
    """Fit ``model(x, *params)`` to ``counts / shots`` with binomial errors (``absolute_sigma``)."""
    y = np.asarray(counts, dtype=float) / shots
    sigma = binomial_sigma(counts, shots)
    dof = y.size - len(guess)
    low, high = np.asarray(bounds[0], dtype=float), np.asarray(bounds[1], dtype=float)
    start = np.clip(np.asarray(guess, dtype=float), low + 1e-12, high - 1e-12)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            values, covariance = curve_fit(
                model, x, y, p0=start, sigma=sigma, absolute_sigma=True, bounds=(low, high), maxfev=20000
            )
    except (RuntimeError, ValueError) as exc:
        nan = np.full(len(guess), np.nan)
        failed = np.full((len(guess), len(guess)), np.nan)
        return CurveFit(nan, nan, float("nan"), dof, False, str(exc).splitlines()[0], failed)
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    chi2 = float(np.sum(((y - model(x, *values)) / sigma) ** 2))
    ok = bool(np.all(np.isfinite(errors)) and np.all(np.isfinite(values)))
    return CurveFit(values, errors, chi2, dof, ok, "" if ok else "covariance not finite", covariance)


def combine(values: NDArray, errors: NDArray) -> tuple[float, float]:
    """Inverse-variance weighted mean of per-site values and its standard error (inflated by the
    square root of the consistency χ²/dof when the sites disagree more than their errors say)."""
    values, errors = np.asarray(values, dtype=float), np.asarray(errors, dtype=float)
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(errors)) and np.all(errors > 0)):
        return float("nan"), float("nan")
    weights = 1 / errors**2
    mean = float(np.sum(weights * values) / np.sum(weights))
    error = float(1 / np.sqrt(np.sum(weights)))
    if values.size > 1:
        scatter = float(np.sum(weights * (values - mean) ** 2) / (values.size - 1))
        error *= max(1.0, float(np.sqrt(scatter)))
    return mean, error
