"""Exact states read as bitstrings: the emulated measurements of prepared QEP phases.

The measurement room (:mod:`qep_analog.measurement`) turns counts into estimates and never prepares a
state; this module prepares the states with an :class:`~qep_analog.solvers.equilibrium.Equilibrium`
(ground states, the nudged ones warm-started from the free ones) and reads them in the settings of a
plan, with readout errors: what a perfectly adiabatic device would return.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import MeasurementError
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.gradient import BitstringSampler, check_scheme, phase_names, sample_phases
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.reciprocity import PREPARATIONS, Preparation, pair_indices
from qep_analog.measurement.sampling import sample_counts
from qep_analog.measurement.settings import MeasurementPlan
from qep_analog.qep.scheme import SIGNS, difference_quotient, nudge_signs
from qep_analog.solvers.equilibrium import Equilibrium, Prepared


def prepare_phases(
    eq: Equilibrium,
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    beta: float,
    *,
    scheme: str = "symmetric",
    free_phase: bool = True,
) -> dict[str, NDArray]:
    """Ground states of one input in each phase (nu = +beta eps, -beta eps, 0), by name."""
    check_scheme(scheme, beta)
    if eq.thermal:
        raise MeasurementError("measurement: bitstrings are sampled from state vectors (T = 0) only")
    names = phase_names(scheme, free_phase)
    eps = np.asarray(error_signal, dtype=float).ravel()
    nu = np.array([SIGNS[name] * beta * eps for name in names])
    x_arr = np.repeat(np.atleast_2d(np.asarray(x, dtype=float)), len(names), axis=0)
    states = np.asarray(eq.prepare(x_arr, theta, nu).states)
    return {name: states[p] for p, name in enumerate(names)}


def measure_phases(
    eq: Equilibrium,
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    beta: float,
    plan: MeasurementPlan,
    shots: int | ArrayLike,
    rng: np.random.Generator,
    *,
    scheme: str = "symmetric",
    readout: ReadoutErrors | None = None,
    free_phase: bool = True,
) -> dict[str, list[SettingCounts]]:
    """Emulate the measured phases of one input: :func:`prepare_phases`, then :func:`sample_phases`."""
    states = prepare_phases(eq, x, theta, error_signal, beta, scheme=scheme, free_phase=free_phase)
    return sample_phases(states, plan, shots, rng, readout)


def sampled_qep_gradient(
    eq: Equilibrium,
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    beta: float,
    sampler: BitstringSampler,
    rng: np.random.Generator,
    *,
    scheme: str = "symmetric",
    free: Prepared | None = None,
) -> NDArray:
    """QEP gradients (B, n_parameters) from generators read as bitstrings in every setting of the
    sampler's plan, for a batch of inputs and error signals (nudged states warm-started)."""
    check_scheme(scheme, beta)
    if eq.thermal:
        raise MeasurementError("sampled gradient: bitstrings are sampled from state vectors (T = 0) only")
    x_arr = np.atleast_2d(np.asarray(x, dtype=float))
    eps = np.atleast_2d(np.asarray(error_signal, dtype=float))
    if eps.shape[0] == 1:
        eps = np.repeat(eps, x_arr.shape[0], axis=0)
    if eps.shape[0] != x_arr.shape[0]:
        raise MeasurementError(
            f"sampled gradient: {x_arr.shape[0]} inputs but {eps.shape[0]} error signals"
        )
    if free is None:
        free = eq.prepare(x_arr, theta)
    signs = nudge_signs(scheme)
    start = None if eq.thermal else np.concatenate([np.asarray(free.states)] * len(signs))
    nudged = eq.prepare(
        np.concatenate([x_arr] * len(signs)),
        theta,
        np.concatenate([s * beta * eps for s in signs]),
        start=start,
    )
    generators = eq.compiled.generator_values(sampler.strings(np.asarray(nudged.states), rng))
    batch = x_arr.shape[0]
    if scheme == "symmetric":
        return difference_quotient(generators[:batch], generators[batch:], beta, scheme)
    free_generators = eq.compiled.generator_values(sampler.strings(np.asarray(free.states), rng))
    return difference_quotient(generators, free_generators, beta, scheme)


def measure_reciprocity(
    eq: Equilibrium,
    x: ArrayLike,
    theta: ArrayLike,
    pair: tuple[str, str],
    plan: MeasurementPlan,
    shots: int,
    rng: np.random.Generator,
    *,
    delta_theta: float = 0.05,
    delta_nu: float = 0.05,
    readout: ReadoutErrors | None = None,
    preparation: Preparation | None = None,
) -> dict[str, list[SettingCounts]]:
    """Emulate the four preparations of ``pair`` and read each in every setting.

    ``preparation`` replaces the equilibrium preparation (to emulate a faulty device); by default
    the ground states of ``eq``.
    """
    model = eq.model
    j, k = pair_indices(model, *pair)
    th = np.asarray(theta, dtype=float)
    thetas = np.repeat(th[None, :], 4, axis=0)
    thetas[0, j] += delta_theta
    thetas[1, j] -= delta_theta
    nus = np.zeros((4, len(model.outputs)))
    nus[2, k] = delta_nu
    nus[3, k] = -delta_nu
    xs = np.repeat(np.atleast_2d(np.asarray(x, dtype=float)), 4, axis=0)
    if preparation is None:
        states = np.asarray(eq.prepare(xs, thetas, nus).states)
    else:
        states = np.asarray(preparation(xs, thetas, nus))
    return {
        name: [
            SettingCounts.from_dense(s.bases, sample_counts(states[p], s.bases, shots, rng, readout))
            for s in plan.settings
        ]
        for p, name in enumerate(PREPARATIONS)
    }
