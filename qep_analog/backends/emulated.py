"""The ``qutip`` and ``pulser`` backends: each job runs as the device would run it — the model's
(x, θ, ν) translated through the (calibrated) profile into controls, an adiabatic schedule from the
recipe, our QuTiP emulator or pulser-simulation on the compiled Pulser sequence — and is read in
each basis with shots, or exactly.

With ``noise`` the profile's dephasing, amplitude jitter and readout errors act, and each basis is a run
of its own (its readout rotation ends the schedule); without it one evolution serves every basis.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from qep_analog.backends.jobs import BatchResult, JobResult, PhaseJob
from qep_analog.backends.schedules import job_schedules
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.qutip_emulator import EmulationResult, QutipEmulator
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.sampling import index_of, sample_counts
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
        self.emulator = QutipEmulator(profile)
        self._observables = {**self.model.trainable, **self.model.outputs}
        self._rng = np.random.default_rng(seed)
        self._runs = 0

    def run(self, jobs: Sequence[PhaseJob]) -> BatchResult:
        started = time.perf_counter()
        schedules = job_schedules(self.model, self.profile, self.recipe, jobs)
        results = []
        device_time = 0.0
        for job in jobs:
            schedule = schedules[job.key]
            if job.shots is None:
                results.append(self._exact(schedule, job))
                continue
            results.append(JobResult(job.key, counts=self._counts(schedule, job)))
            device_time += schedule.duration * 1e-6 * job.shots * len(job.bases)
        return BatchResult(tuple(results), self.metadata(time.perf_counter() - started, device_time))

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
        assert job.shots is not None
        if not self.noise:
            state = self._evolve(schedule).state
            return {
                basis: SettingCounts.from_dense(basis, sample_counts(state, basis, job.shots, self._rng))
                for basis in job.bases
            }
        counts = {}
        for basis in job.bases:
            read = dataclasses.replace(schedule, readout=basis)
            result = self.emulator.run(
                read, noise=True, shots=job.shots, seed=self._next_seed(), realisations=self.realisations
            )
            assert result.counts is not None
            outcomes = index_of(np.array([[int(c) for c in bits] for bits in result.counts]))
            counts[basis] = SettingCounts(basis, outcomes, np.array(list(result.counts.values())))
        return counts

    def _next_seed(self) -> int:
        self._runs += 1
        return self.seed * 1_000_003 + self._runs

    def metadata(self, seconds: float, device_time: float) -> dict[str, Any]:
        from qep_analog import __version__

        return {
            "backend": self.name,
            "version": __version__,
            "device": self.profile.provenance(),
            "recipe": self.recipe.name,
            "noise": self.noise,
            "seed": self.seed,
            "wall_time_s": seconds,
            "device_time_s": device_time,
        }


class PulserBackend(QutipBackend):
    """The same jobs through Pulser: each schedule compiled to a Pulser sequence on the profile's
    device and run by pulser-simulation (noiseless)."""

    name = "pulser"

    def __init__(self, model: QEPModel, profile: DeviceProfile, recipe: Recipe, *, seed: int = 0) -> None:
        super().__init__(model, profile, recipe, noise=False, seed=seed)

    def _evolve(self, schedule: Schedule, observables: dict[str, Any] | None = None) -> EmulationResult:
        from qep_analog.emulation.pulser_backend import run_pulser

        return run_pulser(schedule, self.profile, observables)
