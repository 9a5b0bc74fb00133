"""The free, +βε and −βε preparations of one QEP step as schedules that differ only in the nudge.

The target of each phase is H(x, θ, ν) of the model with ν = 0 or ±β·ε, translated into device
controls; the register (positions, Rabi frequencies of ions) is that of the free phase for all three,
so a nudge that would need a new register is refused. The controls are those the device is
programmed with (``Platform.as_programmed``: Pulser keeps detuning-map weights to 6 decimals, and
every later step uses the rounded, realised, values).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.devices.platform import Controls
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError, QEPWarning
from qep_analog.model.pauli import PauliSum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.recipes import Recipe, build_schedule
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms
from qep_analog.sequences.shapes import canonical_shape
from qep_analog.solvers.equilibrium import Equilibrium


class RotationBiasWarning(QEPWarning):
    """An X or Y readout on a Rydberg array: the basis rotation runs under interactions (biased)."""


def model_hamiltonian(
    model: QEPModel, x: ArrayLike, theta: ArrayLike, nu: ArrayLike | None = None
) -> PauliSum:
    """H(x, θ, ν) of the model as one Pauli sum."""
    x, theta = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(theta, dtype=float))
    nu = np.zeros(len(model.outputs)) if nu is None else np.atleast_1d(np.asarray(nu, dtype=float))
    pairs = [(1.0, model.fixed)]
    pairs += list(zip(x.tolist(), model.inputs.values(), strict=True))
    pairs += list(zip(theta.tolist(), model.trainable.values(), strict=True))
    pairs += list(zip(nu.tolist(), model.outputs.values(), strict=True))
    return PauliSum.from_terms(pairs)


def readout_bases(model: QEPModel) -> list[str]:
    """Global readout bases that measure every generator and output: Z, and X or Y where a string
    needs it (one basis letter per string; mixed-letter strings need the measurement module)."""
    letters: set[str] = set()
    for operator in [*model.trainable.values(), *model.outputs.values()]:
        for string in operator:
            kinds = {letter for _, letter in string.factors}
            if len(kinds) > 1:
                raise ConfigError(
                    f"readout: {string} mixes bases; group the settings with the measurement module"
                )
            letters |= kinds
    return [letter * model.n_qubits for letter in sorted(letters or {"Z"}, key="ZXY".index)]


def realised_model(model: QEPModel, profile: DeviceProfile) -> QEPModel:
    """The model as the device realises it (van der Waals or drive tails added to chain couplings);
    a term the device cannot realise is an error. On a device whose ramps keep the parity Π_q Z_q
    (an ion chain), its states are those of the sector the ramps start in (``parity``)."""
    from qep_analog.devices.mapping import map_model

    report = map_model(model, profile, rotate=False)
    if report.dropped or report.realised is None:
        missing = ", ".join(report.dropped[:3]) or "; ".join(report.problems)
        raise ConfigError(f"model: the device {profile.label!r} cannot realise {missing}")
    realised = report.realised
    parity = profile.platform_spec.prepared_parity(realised.n_qubits)
    if parity is not None and realised.conserves_parity:
        return dataclasses.replace(realised, parity=parity)
    return realised


def target_controls(
    model: QEPModel,
    profile: DeviceProfile,
    x: ArrayLike,
    theta: ArrayLike,
    nu: ArrayLike | None = None,
    like: Controls | None = None,
) -> Controls:
    """Device controls for H(x, θ, ν), as the device is programmed, on the register of ``like`` when
    given (a ``like`` of another platform is ignored)."""
    platform = profile.platform_spec
    spin = platform.spin_model(model_hamiltonian(model, x, theta, nu), model.n_qubits)
    reference = like if isinstance(like, platform.controls_type) else None
    target = platform.as_programmed(platform.translate(spin, profile, like=reference))
    if reference is not None and not platform.same_register(target, reference):
        raise ConfigError(f"the nudge changes the couplings: it needs new {platform.register}, not a nudge")
    return target


#: gaps along recent paths, by path and points of s: the free and nudged rounds of a step and its
#: bias estimate build the same sample's schedules (each asks for the gap of the same path)
_SOLVED_GAPS: OrderedDict[tuple[Any, ...], NDArray] = OrderedDict()
_SOLVED_LIMIT = 256


def forget_solved_gaps() -> None:
    """Drop the gaps kept by :func:`path_gap` (a benchmark's repeated step then solves them again,
    as a training step with new parameters does)."""
    _SOLVED_GAPS.clear()


def path_gap(schedule: Schedule, profile: DeviceProfile) -> Callable[[NDArray], NDArray]:
    """Δ(s) along a linear path from the schedule's start to its end (exact solver); the gaps of a
    path at a set of s are solved once (kept for the last 256 paths)."""
    static, terms = hamiltonian_terms(schedule, profile)
    n = schedule.n_qubits
    start = np.array([schedule.controls[name].values[0] for name, _ in terms])
    stop = np.array([schedule.controls[name].values[-1] for name, _ in terms])
    path = (n, static, tuple(terms), start.tobytes(), stop.tobytes())
    solver: list[Equilibrium] = []

    def gap(s: NDArray) -> NDArray:
        points = np.asarray(s, dtype=float)
        key = (*path, points.tobytes())
        if key in _SOLVED_GAPS:
            _SOLVED_GAPS.move_to_end(key)
            return _SOLVED_GAPS[key]
        if not solver:
            solver.append(Equilibrium(path_model(static, terms, n), tol=1e-9))
        values = start[None, :] + points[:, None] * (stop - start)[None, :]
        prepared = solver[0].prepare(
            np.zeros((len(values), 0)), values, with_gap=True, check_degeneracy=False
        )
        assert prepared.gaps is not None
        _SOLVED_GAPS[key] = np.maximum(prepared.gaps, 1e-6)
        if len(_SOLVED_GAPS) > _SOLVED_LIMIT:
            _SOLVED_GAPS.popitem(last=False)
        return _SOLVED_GAPS[key]

    return gap


def ramp_gap(
    recipe: Recipe, profile: DeviceProfile, target: Controls
) -> Callable[[NDArray], NDArray] | None:
    """The gap along the path to ``target`` that a gap-aware ``recipe`` follows (:func:`path_gap`;
    the free phase's, so that the nudged phases follow the same s(t)); None for other shapes."""
    if canonical_shape(recipe.shape) != "gap_aware":
        return None
    linear = dataclasses.replace(recipe, shape="linear", ends="sharp")
    return path_gap(build_schedule(linear, profile, target), profile)


def path_model(static: PauliSum, terms: list[tuple[str, PauliSum]], n: int) -> QEPModel:
    """A model whose 'parameters' are the schedule's controls (for ground states along a path)."""
    trainable = {name: op if op else PauliSum({}) for name, op in terms}
    first = next(iter(trainable))
    return QEPModel(n, trainable, {"h": trainable[first]}, static)


def qep_phase_schedules(
    model: QEPModel,
    profile: DeviceProfile,
    recipe: Recipe,
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    beta: float,
    readout: str | None = None,
) -> list[Schedule]:
    """Free, +βε and −βε schedules of one symmetric QEP step (same register, same ramp shape) for the
    model as the device realises it (:func:`realised_model`)."""
    if not beta > 0:
        raise ConfigError(f"beta = {beta} must be positive")
    model = realised_model(model, profile)
    eps = np.atleast_1d(np.asarray(error_signal, dtype=float))
    bases = [readout] if readout else readout_bases(model)
    platform = profile.platform_spec
    if platform.rotation_biased and any(platform.needs_rotation(b) for b in bases):
        warnings.warn(
            "Rydberg readout in X/Y needs a basis rotation under interactions: the estimates are biased",
            RotationBiasWarning,
            stacklevel=2,
        )
    free = target_controls(model, profile, x, theta)
    phases = {"free": free}
    for label, sign in (("plus", 1.0), ("minus", -1.0)):
        phases[label] = target_controls(model, profile, x, theta, sign * beta * eps, like=free)
    gap = ramp_gap(recipe, profile, free)
    schedules = []
    for label, target in phases.items():
        metadata = {"beta": beta, "error_signal": eps.tolist(), "x": np.atleast_1d(x).tolist(),
                    "theta": np.atleast_1d(theta).tolist()}  # fmt: skip
        for basis in bases:
            schedules.append(build_schedule(recipe, profile, target, label, basis, gap, metadata))
    return schedules
