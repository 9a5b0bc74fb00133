"""The ``qutip`` and ``pulser`` backends: each job runs as the device would run it — the model's
(x, θ, ν) translated through the (calibrated) profile into controls, an adiabatic schedule from the
recipe, our emulator (exact propagation by default, QuTiP with ``method="qutip"``) or
pulser-simulation on the compiled Pulser sequence — and is read in each basis with shots, or exactly.

One evolution serves every readout basis of a job (an ideal rotation before the read); with
``noise`` the profile's noise sources (all, or those named: quasi-static detuning offsets, Markovian
dephasing, amplitude jitter — :mod:`qep_analog.devices.noise_sources`) act on the evolution and its
readout errors (source ``readout``) on the read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.backends.jobs import BatchResult, JobResult, PhaseJob, batch_metadata
from qep_analog.backends.schedules import RampBiasBudget, device_time
from qep_analog.devices.noise_sources import noise_sources
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.qutip_emulator import EmulationResult, QutipEmulator, rotate_to_basis
from qep_analog.emulation.subspace_evolution import probabilities as subspace_probabilities
from qep_analog.errors import ConfigError
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.memory import require_memory
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import realised_model
from qep_analog.sequences.recipes import Recipe
from qep_analog.sequences.schedule import Schedule


class QutipBackend(RampBiasBudget):
    """Adiabatic schedules of ``recipe`` on ``profile``, emulated by :class:`QutipEmulator` with
    ``method`` (``magnus``: exact propagation; ``qutip``: QuTiP's solvers). ``noise``: the profile's
    noise sources, ``True`` for all or their names — with ``magnus`` the mean over ``realisations``
    trajectories (each its own jitter and offset draws and dephasing kicks; 16 by default: the
    statistical error of a probability p is then about s/4 with s ≈ 0.1–0.15 the spread of p over
    trajectories on the Rydberg sensor, twice the shot noise √(p(1 − p)/1000) of 1000 shots), with
    ``qutip`` Lindblad solutions for ``realisations`` draws.
    With ``method="mps"`` the schedules evolve as matrix product states
    (:class:`~qep_analog.emulation.mps_evolution.MPSEmulator`, two-site TDVP at bond dimension up
    to ``chi_max``, 64 by default): chains and arrays beyond the state-vector limit, noiseless.
    ``seed`` draws the shots and the noise. With ``magnus`` the jobs of a batch evolve in
    ``threads`` threads (default: the cores this process may use, at most 4); the results do not
    depend on it. With ``bias_budget`` (the default) :meth:`preparation_bias` gives each sample's
    gradient the bias estimate of its ramp (the free phase's path spectrum, exact: up to 14 qubits,
    about 17 diagonalisations of the Hamiltonian per sample and step, the samples in ``threads``
    threads). With ``blockade_radius_um``
    (µm, or ``"auto"``: the radius of ``blockade_tolerance``) the ``magnus`` evolutions keep the
    blockade subspace of ``blockade_order`` (:mod:`qep_analog.emulation.blockade`); X and Y bases are
    read from the state embedded in the full space."""

    name = "qutip"

    def __init__(
        self,
        model: QEPModel,
        profile: DeviceProfile,
        recipe: Recipe,
        *,
        noise: bool | str | Collection[str] = False,
        seed: int = 0,
        realisations: int = 16,
        method: str = "magnus",
        threads: int | None = None,
        bias_budget: bool = True,
        blockade_radius_um: float | str | None = None,
        blockade_tolerance: float | None = None,
        blockade_order: int = 0,
        chi_max: int | None = None,
    ) -> None:
        if chi_max is not None and method != "mps":
            raise ConfigError(f"backend {self.name}: chi_max = {chi_max} applies to method mps only")
        if method == "mps" and noise:
            raise ConfigError(f"backend {self.name}: noise = {noise!r}; method mps evolves closed systems")
        self.model = realised_model(model, profile)
        self.profile = profile
        self.recipe = recipe
        #: the noise sources switched on (:mod:`qep_analog.devices.noise_sources`)
        self.noise = noise_sources(noise, f"backend {self.name}")
        self.seed = seed
        self.realisations = realisations
        #: the readout errors the counts carry (source ``readout``), inverted by the estimates
        self.mitigation = (
            ReadoutErrors.from_profile(profile, self.model.n_qubits) if "readout" in self.noise else None
        )
        self.method = method
        self.threads = threads or min(4, _cores())
        #: whether a step's gradients carry the bias estimate of their preparations
        self.bias_budget = bias_budget
        blockade = _blockade(blockade_radius_um, blockade_tolerance, blockade_order)
        self.emulator: Any = self._emulator(profile, method, chi_max, blockade)
        self._observables = {**self.model.trainable, **self.model.outputs}
        self._rng = np.random.default_rng(seed)
        self._runs = 0
        self._entropy: tuple[int, ...] = ()

    @staticmethod
    def _emulator(
        profile: DeviceProfile, method: str, chi_max: int | None, blockade: dict[str, Any]
    ) -> Any:
        if method != "mps":
            return QutipEmulator(profile, method=method, **blockade)
        if blockade:
            raise ConfigError("backend qutip: the blockade subspace is an option of method magnus, not mps")
        from qep_analog.emulation.mps_evolution import MPSEmulator, MPSEvolutionOptions

        options = MPSEvolutionOptions() if chi_max is None else MPSEvolutionOptions(chi_max=chi_max)
        return MPSEmulator(profile, options)

    def reseed(self, entropy: Sequence[int]) -> None:
        """Draw the next shots and noise from ``entropy`` (a resumed run draws what the first drew)."""
        self._rng = np.random.default_rng(list(entropy))
        self._runs = 0
        self._entropy = tuple(entropy)

    def run(self, jobs: Sequence[PhaseJob]) -> BatchResult:
        started = time.perf_counter()
        schedules = self.job_schedules(jobs)
        # seeds drawn in job order, shots sampled in job order: the evolutions may run in any order
        work = [
            (schedules[job.key], self._observables if job.shots is None else None, self._next_seed())
            for job in jobs
        ]
        results = []
        for job, result in zip(jobs, self._evolve_all(work), strict=True):
            if job.shots is None:
                results.append(self._exact(result, job))
            else:
                results.append(JobResult(job.key, counts=self._counts(result, job)))
        metadata = batch_metadata(
            self.name,
            self.profile,
            recipe=self.recipe.name,
            noise=sorted(self.noise),
            **({"method": self.method} if self.name == "qutip" else {}),
            **({"chi_max": self.emulator.options.chi_max} if self.method == "mps" else {}),
            seed=self.seed,
            wall_time_s=time.perf_counter() - started,
            device_time_s=device_time(schedules, jobs, self.profile),
        )
        return BatchResult(tuple(results), metadata)

    def _evolve_all(self, work: list[tuple[Schedule, dict[str, Any] | None, int]]) -> list[EmulationResult]:
        """The evolutions of a batch, in threads when the method's kernels release the GIL."""
        if self.name != "qutip" or self.method != "magnus" or self.threads < 2 or len(work) < 2:
            return [self._evolve(*item) for item in work]
        with ThreadPoolExecutor(min(self.threads, len(work))) as pool:
            return list(pool.map(lambda item: self._evolve(*item), work))

    def _evolve(self, schedule: Schedule, observables: dict[str, Any] | None, seed: int) -> Any:
        """The final state of ``schedule`` (a density matrix with noise, an MPS with method mps) and
        ``observables`` in it."""
        return self.emulator.run(
            schedule, observables, noise=self.noise, seed=seed, realisations=self.realisations
        )

    def _exact(self, result: Any, job: PhaseJob) -> JobResult:
        values = np.array([result.expectations[name] for name in self._observables])
        n_generators = len(self.model.trainable)
        return JobResult(job.key, generators=values[:n_generators], outputs=values[n_generators:])

    def _counts(self, result: Any, job: PhaseJob) -> dict[str, SettingCounts]:
        """Each basis read from the job's final state by an ideal rotation, with the profile's
        readout errors when that source is on (an MPS: sampled in each basis)."""
        assert job.shots is not None
        if self.method == "mps":
            from qep_analog.emulation.mps_evolution import sample_mps

            return {
                basis: SettingCounts.from_bitstrings(
                    basis, sample_mps(result.state, result.order, basis, job.shots, self._rng)
                )
                for basis in job.bases
            }
        readout = self.mitigation
        counts = {}
        for basis in job.bases:
            p = _read_probabilities(result, basis)
            if readout is not None:
                p = readout.apply_to_distribution(p)
            p = np.clip(p, 0.0, None)
            counts[basis] = SettingCounts.from_dense(basis, self._rng.multinomial(job.shots, p / p.sum()))
        return counts

    def _next_seed(self) -> int:
        self._runs += 1
        if self._entropy:
            return int(np.random.SeedSequence([*self._entropy, self._runs]).generate_state(1)[0])
        return self.seed * 1_000_003 + self._runs


class PulserBackend(QutipBackend):
    """The same jobs through Pulser: each schedule compiled to a Pulser sequence on the profile's
    device and run by pulser-simulation (noiseless)."""

    name = "pulser"

    def __init__(
        self,
        model: QEPModel,
        profile: DeviceProfile,
        recipe: Recipe,
        *,
        seed: int = 0,
        bias_budget: bool = True,
    ) -> None:
        super().__init__(model, profile, recipe, noise=False, seed=seed, bias_budget=bias_budget)

    def _evolve(self, schedule: Schedule, observables: dict[str, Any] | None, seed: int) -> EmulationResult:
        from qep_analog.emulation.pulser_backend import run_pulser

        return run_pulser(schedule, self.profile, observables)


def _read_probabilities(result: EmulationResult, basis: str) -> NDArray:
    """The probabilities of reading ``basis`` (one letter per qubit) from an emulated state: a Z
    readout of a blockade-subspace state from its configurations (no state embedded in the full
    space), any other from the state rotated by ideal gates."""
    subspace = result.subspace
    if subspace is not None and set(basis) <= {"Z"}:
        n = len(basis)
        require_memory(f"backend qutip: the 2^{n} Z-readout probabilities of a subspace state", 16 << n)
        full = np.zeros(1 << n)
        full[subspace.configurations] = subspace_probabilities(result.state)
        return full
    rotated = rotate_to_basis(result.full_state(), basis)
    return np.abs(rotated) ** 2 if rotated.ndim == 1 else np.real(np.diag(rotated))


def _blockade(radius: float | str | None, tolerance: float | None, order: int) -> dict[str, Any]:
    """The emulator's blockade-subspace options (none without a radius)."""
    if radius is None:
        if tolerance is not None or order:
            raise ConfigError("backend qutip: blockade_tolerance, blockade_order need blockade_radius_um")
        return {}
    options: dict[str, Any] = {"subspace": "blockade", "blockade_order": order}
    if tolerance is not None:
        options["blockade_tolerance"] = tolerance
    if radius != "auto":
        if isinstance(radius, str) or tolerance is not None:
            raise ConfigError(
                f"backend qutip: blockade_radius_um {radius!r} is not 'auto' or a radius in µm "
                "(blockade_tolerance sets the radius of 'auto')"
            )
        options["blockade_radius"] = radius
    return options


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1
