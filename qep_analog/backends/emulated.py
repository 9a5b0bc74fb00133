"""The ``qutip`` and ``pulser`` backends: each job runs as the device would run it — the model's
(x, θ, ν) translated through the (calibrated) profile into controls, an adiabatic schedule from the
recipe, our QuTiP emulator or pulser-simulation on the compiled Pulser sequence — and is read in
each basis with shots, or exactly.

One evolution serves every readout basis of a job (an ideal rotation before the read); with
``noise`` the profile's dephasing and amplitude jitter act on the evolution and its readout errors on
the read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from qep_analog.backends.jobs import BatchResult, JobResult, PhaseJob, batch_metadata
from qep_analog.backends.schedules import device_time, job_schedules
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.qutip_emulator import EmulationResult, QutipEmulator, rotate_to_basis
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import realised_model
from qep_analog.sequences.recipes import Recipe
from qep_analog.sequences.schedule import Schedule


class QutipBackend:
    """Adiabatic schedules of ``recipe`` on ``profile``, emulated with QuTiP (``noise``: the profile's
    noise model, averaged over ``realisations`` draws of the amplitude jitter); ``seed`` draws the
    shots and the noise."""

    name = "qutip"

    def __init__(
        self,
        model: QEPModel,
        profile: DeviceProfile,
        recipe: Recipe,
        *,
        noise: bool = False,
        seed: int = 0,
        realisations: int = 16,
    ) -> None:
        self.model = realised_model(model, profile)
        self.profile = profile
        self.recipe = recipe
        self.noise = noise
        self.seed = seed
        self.realisations = realisations
        #: the readout errors the counts carry (with the noise on), inverted by the estimates
        self.mitigation = ReadoutErrors.from_profile(profile, self.model.n_qubits) if noise else None
        self.emulator = QutipEmulator(profile)
        self._observables = {**self.model.trainable, **self.model.outputs}
        self._rng = np.random.default_rng(seed)
        self._runs = 0
        self._entropy: tuple[int, ...] = ()

    def reseed(self, entropy: Sequence[int]) -> None:
        """Draw the next shots and noise from ``entropy`` (a resumed run draws what the first drew)."""
        self._rng = np.random.default_rng(list(entropy))
        self._runs = 0
        self._entropy = tuple(entropy)

    def run(self, jobs: Sequence[PhaseJob]) -> BatchResult:
        started = time.perf_counter()
        schedules = job_schedules(self.model, self.profile, self.recipe, jobs)
        results = []
        for job in jobs:
            schedule = schedules[job.key]
            if job.shots is None:
                results.append(self._exact(schedule, job))
            else:
                results.append(JobResult(job.key, counts=self._counts(schedule, job)))
        metadata = batch_metadata(
            self.name,
            self.profile,
            recipe=self.recipe.name,
            noise=self.noise,
            seed=self.seed,
            wall_time_s=time.perf_counter() - started,
            device_time_s=device_time(schedules, jobs, self.profile),
        )
        return BatchResult(tuple(results), metadata)

    def _evolve(self, schedule: Schedule, observables: dict[str, Any] | None = None) -> EmulationResult:
        """The final state of ``schedule`` (a density matrix with noise) and ``observables`` in it."""
        return self.emulator.run(
            schedule,
            observables,
            noise=self.noise,
            seed=self._next_seed(),
            realisations=self.realisations,
        )

    def _exact(self, schedule: Schedule, job: PhaseJob) -> JobResult:
        result = self._evolve(schedule, self._observables)
        values = np.array([result.expectations[name] for name in self._observables])
        n_generators = len(self.model.trainable)
        return JobResult(job.key, generators=values[:n_generators], outputs=values[n_generators:])

    def _counts(self, schedule: Schedule, job: PhaseJob) -> dict[str, SettingCounts]:
        """One evolution per job; each basis is read from its final state by an ideal rotation, with
        the profile's readout errors when the noise is on."""
        assert job.shots is not None
        state = self._evolve(schedule).state
        n = schedule.n_qubits
        readout = ReadoutErrors.from_profile(self.profile, n) if self.noise else None
        counts = {}
        for basis in job.bases:
            rotated = rotate_to_basis(state, basis)
            p = np.abs(rotated) ** 2 if rotated.ndim == 1 else np.real(np.diag(rotated))
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

    def __init__(self, model: QEPModel, profile: DeviceProfile, recipe: Recipe, *, seed: int = 0) -> None:
        super().__init__(model, profile, recipe, noise=False, seed=seed)

    def _evolve(self, schedule: Schedule, observables: dict[str, Any] | None = None) -> EmulationResult:
        from qep_analog.emulation.pulser_backend import run_pulser

        return run_pulser(schedule, self.profile, observables)
