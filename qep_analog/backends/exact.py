"""The ``exact`` and ``mps`` backends: each job's state is the ground (or Gibbs) state of the model at
the job's (x, θ, ν) — the realised model when a device profile is given (its van der Waals or drive
tails included) — read exactly, or in each basis with shots and the profile's readout errors.

This is what training on exact states does, behind the backend contract.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from qep_analog.backends.jobs import BatchResult, JobResult, PhaseJob, batch_metadata
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import sample_counts
from qep_analog.model.qep_model import QEPModel
from qep_analog.solvers.equilibrium import Equilibrium


class ExactBackend:
    """Ground states of ``model`` (or of its realisation on ``profile``); ``seed`` draws the shots."""

    name = "exact"

    def __init__(
        self,
        model: QEPModel,
        profile: DeviceProfile | None = None,
        *,
        seed: int = 0,
        tol: float = 1e-10,
        temperature: float | None = None,
        readout: ReadoutErrors | None = None,
    ) -> None:
        if profile is not None:
            from qep_analog.sequences.phases import realised_model

            model = realised_model(model, profile)
            if readout is None:
                readout = ReadoutErrors.from_profile(profile, model.n_qubits)
        self.model = model
        self.profile = profile
        self.seed = seed
        self.readout = readout
        #: the readout errors the counts carry, inverted by the estimates
        self.mitigation = readout
        self.equilibrium = self.make_equilibrium(model, temperature, tol)
        self._rng = np.random.default_rng(seed)

    #: whether the states are vectors that counts can be sampled from
    samples_counts = True

    def reseed(self, entropy: Sequence[int]) -> None:
        """Draw the next shots from ``entropy`` (a resumed run draws what the first run drew)."""
        self._rng = np.random.default_rng(list(entropy))

    def make_equilibrium(self, model: QEPModel, temperature: float | None, tol: float) -> Any:
        return Equilibrium(model, temperature=temperature, tol=tol)

    def run(self, jobs: Sequence[PhaseJob]) -> BatchResult:
        started = time.perf_counter()
        if not jobs:
            return BatchResult((), self.metadata(0.0))
        xs = np.array([job.x for job in jobs]).reshape(len(jobs), -1)
        thetas = np.array([job.theta for job in jobs])
        nus = np.array([job.nu for job in jobs]).reshape(len(jobs), -1)
        counted = [job.key for job in jobs if job.shots is not None]
        if counted and (self.equilibrium.thermal or not self.samples_counts):
            raise ConfigError(
                f"backend {self.name}: job {counted[0]!r} asks for counts; they are sampled from state "
                "vectors at T = 0 only (use shots None for exact values)"
            )
        prepared = self.equilibrium.prepare(xs, thetas, nus, keep_states=bool(counted))
        compiled = self.equilibrium.compiled
        generators = compiled.generator_values(prepared.strings)
        outputs = compiled.output_values(prepared.strings)
        results = []
        for k, job in enumerate(jobs):
            if job.shots is None:
                results.append(JobResult(job.key, generators=generators[k], outputs=outputs[k]))
                continue
            state = np.asarray(prepared.states)[k]
            counts = {
                basis: SettingCounts.from_dense(
                    basis, sample_counts(state, basis, job.shots, self._rng, self.readout)
                )
                for basis in job.bases
            }
            results.append(JobResult(job.key, counts=counts))
        return BatchResult(tuple(results), self.metadata(time.perf_counter() - started))

    def metadata(self, seconds: float) -> dict[str, Any]:
        return batch_metadata(
            self.name, self.profile, seed=self.seed, wall_time_s=seconds, device_time_s=None
        )


class MPSBackend(ExactBackend):
    """Ground states of the (realised) model as matrix-product states (TeNPy DMRG): chains beyond the
    state-vector limit, exact expectation values only."""

    name = "mps"
    samples_counts = False

    def __init__(
        self,
        model: QEPModel,
        profile: DeviceProfile | None = None,
        *,
        options: Any = None,
        seed: int = 0,
    ) -> None:
        self.options = options
        super().__init__(model, profile, seed=seed)

    def make_equilibrium(self, model: QEPModel, temperature: float | None, tol: float) -> Any:
        from qep_analog.solvers.mps import MPSEquilibrium, MPSOptions

        return MPSEquilibrium(model, self.options or MPSOptions())
