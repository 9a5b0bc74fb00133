"""The ``emu-mps`` backend (the optional extra ``emu``): each job's schedule compiled to Pulser and
evolved by Pasqal's MPS emulator (:mod:`qep_analog.emulation.emu_mps_runner`), read exactly (its
occupations and their correlations: generators and outputs of Z strings of at most two qubits).
Importing this module imports emu-mps and torch; the registry imports it only when it is named."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qep_analog.backends.emulated import QutipBackend
from qep_analog.backends.jobs import BatchResult, PhaseJob
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.emu_mps_runner import run_emu_mps
from qep_analog.errors import ConfigError
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.recipes import Recipe
from qep_analog.sequences.schedule import Schedule


class EmuMPSBackend(QutipBackend):
    """The jobs' schedules run by emu-mps at bond dimension up to ``chi_max`` (noiseless, exact
    values: jobs with shots are refused)."""

    name = "emu-mps"

    def __init__(
        self, model: QEPModel, profile: DeviceProfile, recipe: Recipe, *, seed: int = 0, chi_max: int = 64
    ) -> None:
        super().__init__(model, profile, recipe, noise=False, seed=seed, bias_budget=False)
        self.chi_max = chi_max

    def run(self, jobs: Sequence[PhaseJob]) -> BatchResult:
        counted = [job.key for job in jobs if job.shots is not None]
        if counted:
            raise ConfigError(
                f"backend {self.name}: job {counted[0]!r} asks for counts; exact values only (shots None)"
            )
        return super().run(jobs)

    def _evolve(self, schedule: Schedule, observables: dict[str, Any] | None, seed: int) -> Any:
        return run_emu_mps(schedule, self.profile, observables, chi_max=self.chi_max)
