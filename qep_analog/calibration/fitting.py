"""Least-squares fits of probabilities measured with binomial shot noise."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit


def binomial_sigma(counts: NDArray, shots: int) -> NDArray:
    """Standard errors of k/n; p is regularised to (k + 1/2)/(n + 1) so that 0 and n have one."""
    p = (np.asarray(counts, dtype=float) + 0.5) / (shots + 1.0)
    return np.sqrt(p * (1 - p) / shots)


#: the quantile of χ² above which per-site values are taken to disagree (:func:`combine`)
CONSISTENCY_LEVEL = 0.95


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
    jac: Callable[..., NDArray] | None = None,
) -> CurveFit:
    """Fit ``model(x, *params)`` to ``counts / shots`` with binomial errors (``absolute_sigma``);
    ``jac(x, *params)``: the model's Jacobian, shape (points, params) (default: finite differences)."""
    y = np.asarray(counts, dtype=float) / shots
    sigma = binomial_sigma(counts, shots)
    dof = y.size - len(guess)
    low, high = np.asarray(bounds[0], dtype=float), np.asarray(bounds[1], dtype=float)
    start = np.clip(np.asarray(guess, dtype=float), low + 1e-12, high - 1e-12)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            values, covariance = curve_fit(
                model,
                x,
                y,
                p0=start,
                sigma=sigma,
                absolute_sigma=True,
                bounds=(low, high),
                maxfev=20000,
                jac=jac if jac is not None else "2-point",
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
    """Inverse-variance weighted mean of per-site values and its standard error, inflated by the
    square root of the consistency χ²/dof when the sites disagree more than their errors allow (χ²
    above its 95 % quantile: the sites then differ, and the spread is part of the error); sites that
    agree within their errors keep the plain error of the mean (inflating by every χ²/dof > 1 would
    overstate it: with 3 dof, χ²/dof exceeds 1 in 40 % of consistent sets)."""
    values, errors = np.asarray(values, dtype=float), np.asarray(errors, dtype=float)
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(errors)) and np.all(errors > 0)):
        return float("nan"), float("nan")
    weights = 1 / errors**2
    mean = float(np.sum(weights * values) / np.sum(weights))
    error = float(1 / np.sqrt(np.sum(weights)))
    if values.size > 1:
        chi2 = float(np.sum(weights * (values - mean) ** 2))
        dof = values.size - 1
        if chi2 > float(stats.chi2.ppf(CONSISTENCY_LEVEL, dof)):
            error *= float(np.sqrt(chi2 / dof))
    return mean, error


def fit_best(
    model: Callable[..., NDArray],
    x: NDArray,
    counts: NDArray,
    shots: int,
    guesses: Sequence[Sequence[float]],
    bounds: tuple[Sequence[float], Sequence[float]],
    keep: int | None = None,
    jac: Callable[..., NDArray] | None = None,
) -> CurveFit:
    """:func:`fit_probabilities` from several ``guesses``; the fit with the least χ² among those
    that ran (the first failure when none did). Fits of oscillations and lines have local minima
    (an alias, a neighbouring fringe, a flank): starting from several guesses finds the global one
    when any guess lies in its basin. ``keep``: fit from only the ``keep`` guesses whose model is
    nearest the data (least χ² at the guess) — for costly models; ``jac`` as for
    :func:`fit_probabilities`."""
    starts = list(guesses)
    if keep is not None and len(starts) > keep:
        y = np.asarray(counts, dtype=float) / shots
        sigma = binomial_sigma(counts, shots)
        costs = [float(np.sum(((y - model(x, *guess)) / sigma) ** 2)) for guess in starts]
        starts = [starts[i] for i in np.argsort(costs)[:keep]]
    fits = [fit_probabilities(model, x, counts, shots, guess, bounds, jac) for guess in starts]
    good = [fit for fit in fits if fit.ok]
    return min(good, key=lambda fit: fit.chi2) if good else fits[0]


def propagate(
    model: Callable[[NDArray, NDArray], NDArray],
    values: NDArray,
    sigma: NDArray,
    known: NDArray,
    known_errors: NDArray,
) -> NDArray:
    """How far the fitted parameters move when each known input moves by its standard error: the
    linearised refit, d p̂ = −(JᵀWJ)⁻¹ JᵀW (∂f/∂θ) dθ, with J = ∂f/∂p at the fit ``values``,
    W = 1/``sigma``² (the data's standard errors) and θ the ``known`` inputs of ``model(params,
    known)`` (the model at the data's sweep). Returns the shifts, shape ``(len(known), len(values))``;
    they add in quadrature to the statistical errors (the known inputs are independent of the data).
    Derivatives are central differences (relative step 10⁻⁴)."""
    values, known = np.asarray(values, dtype=float), np.asarray(known, dtype=float)
    weights = 1.0 / np.asarray(sigma, dtype=float) ** 2

    def derivative(f: Callable[[NDArray], NDArray], point: NDArray, k: int) -> NDArray:
        step = 1e-4 * max(abs(float(point[k])), 1e-3)
        up, down = point.copy(), point.copy()
        up[k] += step
        down[k] -= step
        return (f(up) - f(down)) / (2 * step)

    jac = np.column_stack([derivative(lambda p: model(p, known), values, k) for k in range(values.size)])
    normal = np.linalg.pinv(jac.T @ (weights[:, None] * jac))
    shifts = np.zeros((known.size, values.size))
    for k in range(known.size):
        if not known_errors[k] > 0:
            continue
        moved = derivative(lambda t: model(values, t), known, k) * known_errors[k]
        shifts[k] = -normal @ (jac.T @ (weights * moved))
    return shifts
