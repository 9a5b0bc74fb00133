"""The ``fake-lab`` backend, and any lab that runs whole schedules: each job becomes the schedule the
lab is told to run — programmed with the profile the run believes in (nominal, or with the
calibration in force) — and the lab returns the counts of each readout basis. A fake lab runs the
schedules on its hidden *true* profile (mis-calibration, readout errors, shot noise), so what
calibration buys shows in the gradients."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Protocol

from numpy.typing import NDArray

from qep_analog.backends.jobs import BatchResult, JobResult, PhaseJob, batch_metadata, require_counts
from qep_analog.backends.schedules import RampBiasBudget, device_time
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import realised_model
from qep_analog.sequences.recipes import Recipe
from qep_analog.sequences.schedule import Schedule


class ScheduleLab(Protocol):
    """A lab that runs whole schedules: counts per outcome (2^n,) of each schedule in its readout
    basis (the calibration fake labs are such labs)."""

    @property
    def n_sites(self) -> int: ...

    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]: ...


class LabBackend(RampBiasBudget):
    """Schedules of ``recipe`` programmed with ``profile`` and run by ``lab`` (anything with
    ``run_schedules(schedules, shots)``, e.g. a fake lab of :mod:`qep_analog.calibration`). With
    ``bias_budget`` (the default) :meth:`preparation_bias` gives each sample's gradient the bias
    estimate of the ramp its schedules play (as the ``qutip`` backend does; a fake lab that prepares
    the final ground state without the ramp does not have that bias, a lab running the schedule
    does)."""

    name = "fake-lab"
    #: a lab returns counts only: training needs its shots
    counts_only = True

    def __init__(
        self,
        model: QEPModel,
        profile: DeviceProfile,
        recipe: Recipe,
        *,
        lab: ScheduleLab,
        bias_budget: bool = True,
    ) -> None:
        self.model = realised_model(model, profile)
        if self.model.n_qubits > lab.n_sites:
            raise ConfigError(
                f"backend {self.name}: the model has {self.model.n_qubits} qubits, "
                f"the lab {lab.n_sites} sites"
            )
        self.profile = profile
        self.recipe = recipe
        self.lab = lab
        #: whether a step's gradients carry the bias estimate of their preparations
        self.bias_budget = bias_budget
        #: the readout errors the profile believes in, inverted by the estimates
        self.mitigation = ReadoutErrors.from_profile(profile, self.model.n_qubits)

    def reseed(self, entropy: Sequence[int]) -> None:
        """Restart the lab's shot noise from ``entropy``, where the lab allows it."""
        if hasattr(self.lab, "reseed"):
            self.lab.reseed(entropy)

    def run(self, jobs: Sequence[PhaseJob]) -> BatchResult:
        started = time.perf_counter()
        require_counts(self.name, jobs)
        schedules = self.job_schedules(jobs)
        results = []
        for job in jobs:
            assert job.shots is not None
            read = [dataclasses.replace(schedules[job.key], readout=basis) for basis in job.bases]
            dense = self.lab.run_schedules(read, job.shots)
            counts = {
                basis: SettingCounts.from_dense(basis, c) for basis, c in zip(job.bases, dense, strict=True)
            }
            results.append(JobResult(job.key, counts=counts))
        metadata = batch_metadata(
            self.name,
            self.profile,
            lab=getattr(self.lab, "name", type(self.lab).__name__),
            **({"preparation": self.lab.preparation} if hasattr(self.lab, "preparation") else {}),
            recipe=self.recipe.name,
            wall_time_s=time.perf_counter() - started,
            device_time_s=device_time(schedules, jobs, self.profile),
        )
        return BatchResult(tuple(results), metadata)
