"""Gradient estimators: QEP (one-sided, symmetric), exact linear response, finite differences.

Every estimator returns dL/dtheta for a batch, shape (B, n_parameters), for error signals
eps = dL/d<O> (B, n_outputs) held fixed, so that dL/dtheta_j = sum_k eps_k d<O_k>/dtheta_j. By
reciprocity d<O_k>/dtheta_j = d<A_j>/dnu_k, QEP reads the whole gradient off the generators <A_j>
measured in states nudged by nu = +-beta eps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import ConfigError, LevelCrossingWarning, RoundOffWarning, SmallGapWarning
from qep_analog.model.qep_model import MAX_MAGNITUDE
from qep_analog.qep.losses import Loss
from qep_analog.qep.names import SCHEMES
from qep_analog.qep.scheme import difference_quotient, nudge_signs
from qep_analog.qep.shot_noise import ShotNoise
from qep_analog.solvers.equilibrium import Equilibrium, Prepared
from qep_analog.solvers.thermal import GibbsState, thermal_response_matrix
from qep_analog.solvers.threads import single_blas_thread

#: A nudge with beta ||(V - <V>) psi0|| above this fraction of the gap is "not small": it warns.
GAP_FRACTION = 0.25
#: A nudged ground energy may lie below the free level's tangent E0 + s beta <V> by at most this
#: multiple of the second-order bound beta^2 ||(V - <V>) psi0||^2 / gap (and <V> move by this
#: multiple of twice that over beta); beyond, a level has crossed. Generic models at the largest
#: nudge the gap check accepts reach 1.9 (energy) and 2.8 (<V>) (tests/qep/test_level_crossing.py).
CROSSING_FACTOR = 4.0
#: A nudge whose response round-off may spoil by more than this fraction warns (RoundOffWarning).
ROUND_OFF_FRACTION = 1e-4


def _batch(eq: Equilibrium, x: ArrayLike, error_signal: ArrayLike) -> tuple[NDArray, NDArray]:
    x_arr = np.atleast_2d(np.asarray(x, dtype=float))
    eps = np.atleast_2d(np.asarray(error_signal, dtype=float))
    if x_arr.shape[0] != eps.shape[0]:
        if x_arr.shape[0] == 1:
            x_arr = np.repeat(x_arr, eps.shape[0], axis=0)
        elif eps.shape[0] == 1:
            eps = np.repeat(eps, x_arr.shape[0], axis=0)
        else:
            raise ConfigError(f"gradient: {x_arr.shape[0]} inputs but {eps.shape[0]} error signals")
    if eps.shape[1] != len(eq.model.outputs):
        raise ConfigError(
            f"gradient: error signal has {eps.shape[1]} entries, the model {len(eq.model.outputs)} outputs"
        )
    return x_arr, eps


def nudge_strength(eq: Equilibrium, free: Prepared, error_signal: NDArray) -> NDArray:
    """||(V - <V>)|psi0>|| per sample, V = sum_k eps_k O_k: how strongly a unit nudge mixes the
    ground state with the rest of the spectrum (the first-order state change is this over the gap,
    at most)."""
    table = eq.compiled.table
    elements = table.diagonals(error_signal @ eq.compiled.outputs)
    states = np.asarray(free.states)
    out = np.empty(len(states))
    for b, state in enumerate(states):
        moved = table.apply(elements[b], state)
        out[b] = np.linalg.norm(moved - np.vdot(state, moved) * state)
    return out


def nudge_sizes(eq: Equilibrium, free: Prepared, error_signal: NDArray, beta: float) -> NDArray | None:
    """The nudges beta ||(V - <V>) psi0|| (B,) where the gap check applies: gaps computed, ground
    states as state vectors (not Gibbs states at T > 0, not MPS); None elsewhere."""
    if free.gaps is None or not isinstance(free.states, np.ndarray):
        return None
    return abs(beta) * nudge_strength(eq, free, error_signal)


def not_small(nudge: NDArray, gaps: NDArray) -> NDArray:
    """Which nudges are not small against their gaps (above ``GAP_FRACTION`` x gap)."""
    return np.asarray(nudge > GAP_FRACTION * gaps)


def small_gap_samples(
    eq: Equilibrium, free: Prepared, error_signal: NDArray, beta: float
) -> tuple[NDArray, NDArray]:
    """Indices of samples whose nudge beta ||(V - <V>) psi0|| exceeds ``GAP_FRACTION`` x gap, and
    the nudge sizes. Needs ``free.gaps``; at T > 0 (or without gaps) none are flagged."""
    nudge = nudge_sizes(eq, free, error_signal, beta)
    if nudge is None or free.gaps is None:
        return np.zeros(0, dtype=int), np.zeros(0)
    return np.flatnonzero(not_small(nudge, free.gaps)), nudge


def check_nudge(eq: Equilibrium, free: Prepared, error_signal: NDArray, beta: float) -> int:
    """Warn (:class:`SmallGapWarning`) where beta ||(V - <V>) psi0|| is not small against the gap.

    Returns the number of such samples. Needs ``free.gaps``; at T > 0 nothing is checked.
    """
    bad, nudge = small_gap_samples(eq, free, error_signal, beta)
    if not len(bad) or free.gaps is None:
        return 0
    k = int(bad[0])
    warnings.warn(
        SmallGapWarning(
            f"nudge of sample {k}: beta*||(V - <V>) psi0|| = {nudge[k]:.3g} is not small "
            f"against the gap {free.gaps[k]:.3g} (limit {GAP_FRACTION:g} x gap); the QEP "
            f"estimate is biased ({len(bad)} of {len(nudge)} samples)"
        ),
        stacklevel=3,
    )
    return len(bad)


def crossed_levels(
    eq: Any, free: Prepared, error_signal: NDArray, beta: float, signs: tuple[float, ...], nudged: Prepared
) -> NDArray | None:
    """Which samples' nudged ground states are not on the free level's branch (B,) bool.

    ``nudged`` holds the nudged preparations in sample-major order (``signs`` per sample). On the
    free level's branch, with V = sum eps_k O_k, the ground energy drops below the tangent
    E0 + s beta <V>_0 by the second-order shift, at most beta^2 ||(V - <V>) psi0||^2 / gap, and
    <V> moves by at most twice that over beta. A nudge that brings another level below the free one
    (an output that commutes with H and differs on the two levels has ||(V - <V>) psi0|| = 0, so
    the small-gap check sees nothing) breaks one of the two: flagged above ``CROSSING_FACTOR`` x
    the bound plus the solver's tolerance. None where the gap check does not apply.
    """
    nudge = nudge_sizes(eq, free, error_signal, beta)
    if nudge is None or free.gaps is None:
        return None
    gaps = free.gaps
    second_order = np.divide(nudge**2, gaps, out=np.full(len(nudge), np.inf), where=gaps > 0)
    free_level = _level(eq, free.strings, error_signal)
    nudged_level = _level(eq, nudged.strings, np.repeat(error_signal, len(signs), axis=0))
    nudged_level = nudged_level.reshape(len(gaps), len(signs))
    # energy: below the tangent by more than the second-order shift
    tangent = free.energies[:, None] + beta * np.outer(free_level, signs)
    drop = tangent - np.asarray(nudged.energies).reshape(len(gaps), len(signs))
    energy_tol = 4.0 * eq.solver.tol + 1e-12 * (np.abs(free.energies) + abs(beta) * np.abs(free_level))
    energy_bound = CROSSING_FACTOR * second_order + energy_tol
    # <V>: moved by more than linear response allows (a state within the solver's residual of
    # an eigenvector errs by about ||V|| residual / gap)
    spread = np.abs(error_signal @ eq.compiled.outputs).sum(axis=1)
    state_error = np.divide(4.0 * eq.solver.tol, gaps, out=np.ones(len(gaps)), where=gaps > 0)
    level_tol = spread * np.minimum(state_error, 1.0) + 1e-12 * spread
    level_bound = CROSSING_FACTOR * 2.0 * second_order / abs(beta) + level_tol
    shift = np.abs(nudged_level - free_level[:, None])
    crossed = (drop > energy_bound[:, None]) | (shift > level_bound[:, None])
    return np.asarray(crossed.any(axis=1))


def _level(eq: Any, strings: NDArray, error_signal: NDArray) -> NDArray:
    """<V> = sum_k eps_k <O_k> per sample, from the string expectation values."""
    return np.asarray(np.einsum("bk,bk->b", error_signal, eq.compiled.output_values(strings)))


def warn_crossed(crossed: NDArray | None, free: Prepared, beta: float) -> int:
    """Warn (:class:`LevelCrossingWarning`) for samples whose nudge crossed levels; their number."""
    if crossed is None or not crossed.any() or free.gaps is None:
        return 0
    bad = np.flatnonzero(crossed)
    k = int(bad[0])
    warnings.warn(
        LevelCrossingWarning(
            f"nudge of sample {k}: beta = {beta:.3g} moved another level below the free ground "
            f"state (gap {free.gaps[k]:.3g}); the QEP estimate is wrong ({len(bad)} of "
            f"{len(crossed)} samples): beta must stay below the gap over the outputs' spread"
        ),
        stacklevel=3,
    )
    return len(bad)


@dataclass(frozen=True)
class QEPEstimate:
    """The QEP gradients of a batch (B, n_parameters) and, where gaps were computed at T = 0 on
    exact states, which samples' nudges crossed levels (B,) bool (None elsewhere)."""

    gradient: NDArray
    crossed: NDArray | None


@single_blas_thread
def qep_estimate(
    eq: Equilibrium,
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    beta: float,
    scheme: str = "symmetric",
    *,
    free: Prepared | None = None,
    noise: ShotNoise | None = None,
) -> QEPEstimate:
    """:func:`qep_gradient` without warnings, with its level-crossing flags (:func:`crossed_levels`)."""
    _check_nudge_settings(beta, scheme)
    x_arr, eps = _batch(eq, x, error_signal)
    if free is None:
        free = eq.prepare(x_arr, theta, with_gap=True)
    measure = noise if noise is not None else (lambda s: s)
    signs = nudge_signs(scheme)
    # sample-major order (+βε_0, −βε_0, +βε_1, …): both nudges of a sample share one warm-start
    # object, which an executor then ships once per chunk
    nudged_x = np.repeat(x_arr, len(signs), axis=0)
    nudges = np.stack([sign * beta * eps for sign in signs], axis=1).reshape(-1, eps.shape[1])
    starts = None
    if not eq.thermal:
        rows = list(free.states)
        starts = [rows[b] for b in range(len(rows)) for _ in signs]
    # coefficients per sample (a sample-dependent parameterisation) follow their sample's nudges
    nudged_theta = np.repeat(theta, len(signs), axis=0) if np.ndim(theta) == 2 else theta
    nudged = eq.prepare(nudged_x, nudged_theta, nudges, start=starts, keep_states=False)
    crossed = crossed_levels(eq, free, eps, beta, signs, nudged)
    generators = eq.compiled.generator_values(measure(nudged.strings))
    if scheme == "symmetric":
        gradient = difference_quotient(generators[0::2], generators[1::2], beta, scheme)
    else:
        free_generators = eq.compiled.generator_values(measure(free.strings))
        gradient = difference_quotient(generators, free_generators, beta, scheme)
    return QEPEstimate(gradient, crossed)


def _check_nudge_settings(beta: float, scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ConfigError(f"gradient: scheme {scheme!r} is unknown (valid: {', '.join(SCHEMES)})")
    if not (np.isfinite(beta) and beta != 0):
        raise ConfigError(f"gradient: beta = {beta!r} must be finite and non-zero")
    if abs(beta) > MAX_MAGNITUDE:
        raise ConfigError(
            f"gradient: beta = {beta:g} is beyond the bound |beta| <= {MAX_MAGNITUDE:g} "
            "(larger nudges overflow the Hamiltonian's norm)"
        )


def round_off_fraction(
    eq: Any, x: NDArray, theta: ArrayLike, error_signal: NDArray, beta: float
) -> NDArray:
    """Per sample, the fraction of the nudge's response that round-off may spoil:
    u ||H|| / (|beta| ||V||), with u the float64 unit round-off, ||.|| the norm bound sum_s |c_s|
    and V = sum_k eps_k O_k. Round-off perturbs H by about u ||H||; the nudge by |beta| ||V||."""
    h = np.abs(np.atleast_2d(eq.compiled.coefficients(x, theta))).sum(axis=-1)
    v = np.abs(error_signal @ eq.compiled.outputs).sum(axis=-1)
    unit = float(np.finfo(float).eps) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, unit * h / (abs(beta) * v), 0.0)


def check_round_off(eq: Any, x: NDArray, theta: ArrayLike, error_signal: NDArray, beta: float) -> int:
    """Warn (:class:`RoundOffWarning`) where round-off may spoil more than ``ROUND_OFF_FRACTION`` of
    the nudge's response; returns the number of such samples."""
    fraction = round_off_fraction(eq, x, theta, error_signal, beta)
    bad = np.flatnonzero(fraction > ROUND_OFF_FRACTION)
    if not len(bad):
        return 0
    k = int(bad[np.argmax(fraction[bad])])
    warnings.warn(
        RoundOffWarning(
            f"beta = {beta:g} is so small that round-off may spoil about {100 * fraction[k]:.2g} % of "
            f"the response (sample {k}: 1.1e-16 x ||H|| / (|beta| ||V||), limit "
            f"{100 * ROUND_OFF_FRACTION:g} %; {len(bad)} of {len(fraction)} samples); use a larger beta"
        ),
        stacklevel=3,
    )
    return len(bad)


@single_blas_thread
def qep_gradient(
    eq: Equilibrium,
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    beta: float,
    scheme: str = "symmetric",
    *,
    free: Prepared | None = None,
    noise: ShotNoise | None = None,
    warn_small_gap: bool = True,
) -> NDArray:
    """QEP estimate of dL/dtheta from generators measured in nudged states nu = +-beta eps.

    One-sided: (<A>_{+beta eps} - <A>_0)/beta, bias O(beta); symmetric:
    (<A>_{+beta eps} - <A>_{-beta eps})/(2 beta), bias O(beta^2). Nudged ground states are
    warm-started from the free ones. ``noise`` adds shot noise to every measured string. With
    ``warn_small_gap`` (and gaps in ``free``), nudges not small against the gap warn
    (:class:`SmallGapWarning`), and so do nudges that cross levels (:class:`LevelCrossingWarning`).
    """
    _check_nudge_settings(beta, scheme)
    x_arr, eps = _batch(eq, x, error_signal)
    if free is None:
        free = eq.prepare(x_arr, theta, with_gap=True)
    check_round_off(eq, x_arr, theta, eps, beta)
    if warn_small_gap:
        check_nudge(eq, free, eps, beta)
    estimate = qep_estimate(eq, x_arr, theta, eps, beta, scheme, free=free, noise=noise)
    if warn_small_gap:
        warn_crossed(estimate.crossed, free, beta)
    return estimate.gradient


@dataclass(frozen=True)
class QEPStep:
    """One QEP step on a batch: the free preparations (without their states), the error signals
    eps = dL/d<O> of the free outputs, the per-sample QEP gradients (B, n_parameters), and, where
    gaps were computed at T = 0 on exact states, the nudge sizes beta ||(V - <V>) psi0|| (B,) and
    which samples' nudges crossed levels (B,) bool (:func:`crossed_levels`)."""

    free: Prepared
    error_signal: NDArray
    gradient: NDArray
    nudge: NDArray | None
    crossed: NDArray | None

    def small_gap_count(self) -> int:
        """How many samples have a nudge not small against their gap (``GAP_FRACTION``) or one
        that crossed levels."""
        if self.nudge is None or self.free.gaps is None:
            return 0
        return small_gap_count(self.nudge, self.free.gaps, self.crossed)


def small_gap_count(nudge: NDArray, gaps: NDArray, crossed: NDArray | None) -> int:
    """Samples whose nudge is not small against the gap or crossed levels."""
    flagged = not_small(nudge, gaps)
    if crossed is not None:
        flagged = flagged | crossed
    return int(flagged.sum())


def qep_step(
    eq: Any,
    x: ArrayLike,
    theta: ArrayLike,
    targets: ArrayLike,
    loss: Loss,
    beta: float,
    scheme: str = "symmetric",
    *,
    with_gap: bool = False,
) -> QEPStep:
    """Free states, error signals from ``loss`` and ``targets``, and the QEP gradient of a batch.

    An equilibrium with a ``qep_step`` method of its own (one that runs on an executor) does the
    whole step per sample on its workers; any other runs :func:`two_round_qep_step`.
    """
    own = getattr(eq, "qep_step", None)
    if own is not None:
        return own(x, theta, targets, loss, beta, scheme, with_gap=with_gap)
    return two_round_qep_step(eq, x, theta, targets, loss, beta, scheme, with_gap=with_gap)


def step_batch(x: ArrayLike, targets: ArrayLike) -> tuple[NDArray, NDArray]:
    """Inputs and targets of a QEP step as (B, ...) arrays of one length B."""
    x_arr = np.atleast_2d(np.asarray(x, dtype=float))
    y_arr = np.atleast_2d(np.asarray(targets, dtype=float))
    if len(x_arr) != len(y_arr):
        raise ConfigError(f"qep step: {len(x_arr)} inputs but {len(y_arr)} targets")
    return x_arr, y_arr


def two_round_qep_step(
    eq: Any,
    x: ArrayLike,
    theta: ArrayLike,
    targets: ArrayLike,
    loss: Loss,
    beta: float,
    scheme: str = "symmetric",
    *,
    with_gap: bool = False,
) -> QEPStep:
    """:func:`qep_step` in two rounds: the free batch, the error signals here, then the nudged
    batch warm-started from the free states."""
    x_arr, y_arr = step_batch(x, targets)
    free = eq.prepare(x_arr, theta, with_gap=with_gap, check_degeneracy=False)
    outputs = eq.compiled.output_values(free.strings)
    error_signal = np.asarray(loss.error_signal(outputs, y_arr))
    estimate = qep_estimate(eq, x_arr, theta, error_signal, beta, scheme, free=free)
    nudge = nudge_sizes(eq, free, error_signal, beta)
    return QEPStep(
        Prepared(free.strings, free.energies, free.gaps, []),
        error_signal,
        estimate.gradient,
        nudge,
        estimate.crossed,
    )


@single_blas_thread
def exact_gradient(
    eq: Equilibrium,
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    *,
    free: Prepared | None = None,
) -> NDArray:
    """Exact dL/dtheta by linear response: one linear solve per sample for all parameters.

    T = 0: |dpsi> = (E0 - H)^-1 Q V |psi0>, dL/dtheta_j = 2 Re <psi0|A_j|dpsi>, V = sum eps_k O_k.
    T > 0: the Kubo-Mori response of Tr(rho V).
    """
    x_arr, eps = _batch(eq, x, error_signal)
    if free is None:
        free = eq.prepare(x_arr, theta, with_gap=not eq.thermal)
    coeffs = eq.coefficients(x_arr, theta, None)
    perturbations = eps @ eq.compiled.outputs
    if eq.temperature is None:
        states = np.asarray(free.states)
        deltas = eq.solver.responses(coeffs, states, free.energies, perturbations)
        strings = 2.0 * eq.compiled.table.expectations(states, deltas)
        return np.asarray(eq.compiled.generator_values(strings))
    out = np.empty((x_arr.shape[0], len(eq.model.trainable)))
    for b in range(x_arr.shape[0]):
        response = _string_response(eq, free, b, coeffs[b], perturbations[b])
        out[b] = eq.compiled.generator_values(response)
    return out


@single_blas_thread
def finite_difference_gradient(
    eq: Equilibrium,
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    *,
    step: float = 1e-4,
    free: Prepared | None = None,
    warm_start: bool = True,
) -> NDArray:
    """Central finite differences sum_k eps_k (<O_k>(theta + h e_j) - <O_k>(theta - h e_j))/2h.

    Two preparations per parameter, warm-started from the free state unless ``warm_start`` is
    False (then each starts cold, as a plain finite-difference loop would).
    """
    x_arr, eps = _batch(eq, x, error_signal)
    th = np.asarray(theta, dtype=float)
    n = th.shape[-1]
    if free is None and not eq.thermal:
        free = eq.prepare(x_arr, th, with_gap=True)
    shifts = np.concatenate([np.eye(n), -np.eye(n)]) * step
    out = np.empty((x_arr.shape[0], n))
    for b in range(x_arr.shape[0]):
        start = None
        if warm_start and free is not None and not eq.thermal:
            start = np.repeat(np.asarray(free.states)[b : b + 1], 2 * n, axis=0)
        moved = eq.prepare(np.repeat(x_arr[b : b + 1], 2 * n, axis=0), th + shifts, start=start)
        outputs = eq.compiled.output_values(moved.strings) @ eps[b]
        out[b] = (outputs[:n] - outputs[n:]) / (2.0 * step)
    return out


@dataclass(frozen=True)
class ReciprocityCheck:
    """d<O_k>/dtheta_j against d<A_j>/dnu_k for chosen (parameter, output) pairs."""

    pairs: list[tuple[str, str]]
    d_output_d_theta: NDArray
    d_generator_d_nu: NDArray

    @property
    def max_deviation(self) -> float:
        return float(np.max(np.abs(self.d_output_d_theta - self.d_generator_d_nu), initial=0.0))


def reciprocity_check(
    eq: Equilibrium,
    x: ArrayLike,
    theta: ArrayLike,
    pairs: list[tuple[str, str]],
) -> ReciprocityCheck:
    """Compute both sides of d<O_k>/dtheta_j = d<A_j>/dnu_k by two independent responses.

    The left side perturbs by A_j and measures O_k, the right side perturbs by O_k and measures
    A_j; each is its own linear solve (T = 0) or Kubo-Mori response (T > 0).
    """
    model = eq.model
    x_arr = np.atleast_2d(np.asarray(x, dtype=float))
    if x_arr.shape[0] != 1:
        raise ConfigError(f"reciprocity: one input at a time, got a batch of {x_arr.shape[0]}")
    free = eq.prepare(x_arr, theta, with_gap=not eq.thermal)
    coeffs = eq.coefficients(x_arr, theta, None)[0]
    compiled = eq.compiled
    left, right = [], []
    for name, output in pairs:
        if name not in model.trainable or output not in model.outputs:
            raise ConfigError(
                f"reciprocity: unknown pair ({name!r}, {output!r}) (parameters: "
                f"{', '.join(model.parameter_names)}; outputs: {', '.join(model.output_names)})"
            )
        j, k = model.parameter_names.index(name), model.output_names.index(output)
        along_theta = _string_response(eq, free, 0, coeffs, compiled.trainable[j])
        along_nu = _string_response(eq, free, 0, coeffs, compiled.outputs[k])
        left.append(float(compiled.output_values(along_theta)[k]))
        right.append(float(compiled.generator_values(along_nu)[j]))
    return ReciprocityCheck(list(pairs), np.array(left), np.array(right))


def _string_response(
    eq: Equilibrium, free: Prepared, b: int, coefficients: NDArray, perturbation: NDArray
) -> NDArray:
    """d<P_s>/dlambda of every string, sample b, under H -> H + lambda W (W by coefficients).

    T = 0: 2 Re <psi0|P_s|dpsi> with |dpsi> = (E0 - H)^-1 Q W |psi0> (one linear solve).
    T > 0: Tr(M_W P_s) + <W><P_s>/T, the Kubo-Mori response.
    """
    compiled = eq.compiled
    if eq.temperature is None:
        state = np.asarray(free.states)[b]
        delta = eq.solver.response(coefficients, state, float(free.energies[b]), perturbation)
        return 2.0 * compiled.table.expectations(state, delta)
    gibbs = free.states[b]
    assert isinstance(gibbs, GibbsState)
    traces = compiled.table.trace_with(thermal_response_matrix(compiled, gibbs, perturbation))
    mean_w = float(free.strings[b] @ perturbation)
    return np.asarray(traces + free.strings[b] * mean_w / eq.temperature)
