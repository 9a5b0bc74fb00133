"""Batches of equilibrium preparations on an executor, and a trainer that uses them.

:class:`ExecutedEquilibrium` has the ``prepare`` contract of
:class:`~qep_analog.solvers.equilibrium.Equilibrium`: it splits a batch into one task per sample,
the executor groups them per worker, each worker prepares its chunk as one batch on an equilibrium
it keeps between calls (the compiled model, or the MPS model builder, is made once per worker),
and the results come back in sample order. Per-sample results do not depend on how the batch is
split, so every executor gives the same numbers (bitwise for the exact backend).

A training step (:meth:`ExecutedEquilibrium.qep_step`) runs whole samples on the workers: the free
state, its error signal and both nudged states, warm-started from the free state in the worker's
memory. One round per step, and no state crosses between processes.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import ConfigError
from qep_analog.execution.executors import Executor, SerialExecutor
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.gradients import QEPStep, step_batch, two_round_qep_step
from qep_analog.qep.losses import Loss
from qep_analog.solvers.equilibrium import Equilibrium, Prepared
from qep_analog.solvers.mps import MPSEquilibrium, MPSOptions

BACKENDS = ("exact", "mps")


@dataclass(frozen=True)
class EquilibriumSpec:
    """What a worker needs to build its equilibrium: model, backend and its settings."""

    model: QEPModel
    backend: str = "exact"
    temperature: float | None = None
    tol: float = 1e-10
    mps: MPSOptions = field(default_factory=MPSOptions)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"execution: backend {self.backend!r} is unknown (valid: {', '.join(BACKENDS)})"
            )
        if self.backend == "mps" and self.temperature:
            raise ConfigError("execution: the mps backend prepares ground states only (temperature: null)")

    @property
    def key(self) -> str:
        """A fingerprint of the spec (equal specs share a worker's cached equilibrium)."""
        return hashlib.sha256(pickle.dumps(self)).hexdigest()[:16]

    def build(self) -> Equilibrium | MPSEquilibrium:
        if self.backend == "mps":
            return MPSEquilibrium(self.model, self.mps)
        return Equilibrium(self.model, temperature=self.temperature, tol=self.tol)


@dataclass(frozen=True)
class PreparationTask:
    """One sample: its input, its nudge, its warm start."""

    spec_key: str
    spec: EquilibriumSpec
    x: NDArray
    theta: NDArray
    nu: NDArray | None
    start: Any
    with_gap: bool
    check_degeneracy: bool
    keep_state: bool = True


@dataclass(frozen=True)
class PreparedSample:
    strings: NDArray
    energy: float
    gap: float | None
    state: Any


_WORKER_EQUILIBRIA: dict[str, Equilibrium | MPSEquilibrium] = {}


def worker_equilibrium(key: str, spec: EquilibriumSpec) -> Equilibrium | MPSEquilibrium:
    """The equilibrium of ``spec`` in this process, built on first use and kept."""
    eq = _WORKER_EQUILIBRIA.get(key)
    if eq is None:
        eq = _WORKER_EQUILIBRIA[key] = spec.build()
    return eq


def prepare_sample(task: PreparationTask) -> PreparedSample:
    """Prepare one sample on this process's equilibrium (what a worker runs)."""
    eq = worker_equilibrium(task.spec_key, task.spec)
    start: Any = None
    if task.start is not None:
        start = [task.start] if isinstance(eq, MPSEquilibrium) else np.asarray(task.start)[None, :]
    prepared = eq.prepare(
        task.x[None, :],
        task.theta,
        None if task.nu is None else task.nu[None, :],
        start=start,
        with_gap=task.with_gap,
        check_degeneracy=task.check_degeneracy,
    )
    gap = None if prepared.gaps is None else float(prepared.gaps[0])
    state = prepared.states[0] if task.keep_state else None  # states are large: ship only if needed
    return PreparedSample(prepared.strings[0], float(prepared.energies[0]), gap, state)


@dataclass(frozen=True)
class QEPSampleTask:
    """One sample of a QEP step: its input and target, the loss, the nudge."""

    spec_key: str
    spec: EquilibriumSpec
    x: NDArray
    theta: NDArray
    target: NDArray
    loss: Loss
    beta: float
    scheme: str
    with_gap: bool


def qep_sample(task: QEPSampleTask) -> QEPStep:
    """The QEP step of one sample on this process's equilibrium (what a worker runs)."""
    eq = worker_equilibrium(task.spec_key, task.spec)
    return two_round_qep_step(
        eq, task.x[None, :], task.theta, task.target[None, :], task.loss, task.beta, task.scheme,
        with_gap=task.with_gap,
    )  # fmt: skip


class ExecutedEquilibrium:
    """An equilibrium whose batches run on an executor (serial, processes, Dask).

    ``compiled``, ``model``, ``thermal``, ``solver`` are those of a local equilibrium of the same spec
    (for the exact backend the local one also computes linear responses).
    """

    def __init__(self, spec: EquilibriumSpec, executor: Executor | None = None) -> None:
        self.spec = spec
        self.executor = executor or SerialExecutor()
        self.local = spec.build()
        self.model = spec.model
        self.compiled = self.local.compiled
        self.temperature = self.local.temperature
        self.solver = self.local.solver
        self._key = spec.key

    @property
    def thermal(self) -> bool:
        return bool(self.local.thermal)

    def coefficients(self, x: ArrayLike, theta: ArrayLike, nu: ArrayLike | None) -> NDArray:
        return self.local.coefficients(x, theta, nu)

    def prepare(
        self,
        x: ArrayLike,
        theta: ArrayLike,
        nu: ArrayLike | None = None,
        *,
        start: Any = None,
        with_gap: bool = False,
        check_degeneracy: bool = True,
        keep_states: bool = True,
    ) -> Prepared:
        """The batch prepared sample by sample on the executor's workers, in sample order."""
        x_arr = np.atleast_2d(np.asarray(x, dtype=float))
        nu_arr = None if nu is None else np.atleast_2d(np.asarray(nu, dtype=float))
        batch = max(len(x_arr), 0 if nu_arr is None else len(nu_arr))
        if len(x_arr) == 1 and batch > 1:
            x_arr = np.repeat(x_arr, batch, axis=0)
        if nu_arr is not None and len(nu_arr) == 1 and batch > 1:
            nu_arr = np.repeat(nu_arr, batch, axis=0)
        if len(x_arr) != batch or (nu_arr is not None and len(nu_arr) != batch):
            raise ConfigError(f"execution: batch sizes of x ({len(x_arr)}) and nu differ")
        theta_arr = np.asarray(theta, dtype=float)
        tasks = [
            PreparationTask(
                self._key,
                self.spec,
                x_arr[b],
                theta_arr[b] if theta_arr.ndim == 2 else theta_arr,
                None if nu_arr is None else nu_arr[b],
                None if start is None else start[b],
                with_gap,
                check_degeneracy,
                keep_states,
            )
            for b in range(batch)
        ]
        samples = self.executor.map(prepare_sample, tasks, label="preparations")
        gaps = None if not with_gap else np.array([s.gap for s in samples], dtype=float)
        states: Any = [s.state for s in samples] if keep_states else []
        if keep_states and self.spec.backend == "exact" and not self.thermal:
            states = np.array(states)
        return Prepared(
            np.array([s.strings for s in samples]), np.array([s.energy for s in samples]), gaps, states
        )

    def qep_step(
        self,
        x: ArrayLike,
        theta: ArrayLike,
        targets: ArrayLike,
        loss: Loss,
        beta: float,
        scheme: str = "symmetric",
        *,
        with_gap: bool = False,
    ) -> QEPStep:
        """The QEP step of :func:`~qep_analog.qep.gradients.qep_step`, one whole sample per task.

        A loss that cannot reach the workers (a lambda in a :class:`CustomLoss` on local processes,
        which pickle) makes the step run in two rounds: free batch, error signals here, nudged batch.
        """
        x_arr, y_arr = step_batch(x, targets)
        if not self.executor.can_send(loss):
            return two_round_qep_step(self, x_arr, theta, y_arr, loss, beta, scheme, with_gap=with_gap)
        theta_arr = np.asarray(theta, dtype=float)
        tasks = [
            QEPSampleTask(
                self._key,
                self.spec,
                x_arr[b],
                theta_arr[b] if theta_arr.ndim == 2 else theta_arr,
                y_arr[b],
                loss,
                beta,
                scheme,
                with_gap,
            )
            for b in range(len(x_arr))
        ]
        steps = self.executor.map(qep_sample, tasks, label="samples")
        gaps = np.concatenate([s.free.gaps for s in steps]) if with_gap else None
        nudges = [s.nudge for s in steps]
        crossings = [s.crossed for s in steps]
        free = Prepared(
            np.concatenate([s.free.strings for s in steps]),
            np.concatenate([s.free.energies for s in steps]),
            gaps,
            [],
        )
        return QEPStep(
            free,
            np.concatenate([s.error_signal for s in steps]),
            np.concatenate([s.gradient for s in steps]),
            None if any(n is None for n in nudges) else np.concatenate(nudges),  # type: ignore[arg-type]
            None if any(c is None for c in crossings) else np.concatenate(crossings),  # type: ignore[arg-type]
        )
