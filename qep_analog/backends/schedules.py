"""Phase jobs as the schedules a device runs: (x, θ, ν) translated through the profile into the
device's controls, then the recipe's adiabatic ramp to them. The nudged phases of a sample keep the
register of its free phase (a nudge changes no positions)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.backends.jobs import PhaseJob
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.diagnostics import MAX_DIAGNOSED_QUBITS, path_spectra
from qep_analog.emulation.preparation_bias import gradient_bias, nudge_operator
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import ramp_gap, target_controls
from qep_analog.sequences.recipes import Recipe, build_schedule
from qep_analog.sequences.schedule import Schedule


def job_schedules(
    model: QEPModel, profile: DeviceProfile, recipe: Recipe, jobs: Sequence[PhaseJob]
) -> dict[str, Schedule]:
    """The schedule of each job (read in Z; a basis sets its readout), by job key. ``model`` is the
    model as the device realises it (:func:`~qep_analog.sequences.phases.realised_model`)."""
    registers: dict[int, tuple[Any, Callable[[NDArray], NDArray] | None]] = {}
    out = {}
    for job in sorted(jobs, key=lambda j: (j.sample, j.phase != "free")):
        if job.sample not in registers:
            free = target_controls(model, profile, job.x, job.theta)
            registers[job.sample] = free, ramp_gap(recipe, profile, free)
        like, gap = registers[job.sample]
        target = target_controls(model, profile, job.x, job.theta, job.nu, like=like)
        out[job.key] = build_schedule(recipe, profile, target, job.phase, gap=gap)
    return out


def device_time(
    schedules: Mapping[str, Schedule], jobs: Sequence[PhaseJob], profile: DeviceProfile
) -> float:
    """Seconds the device spends on the counted jobs: (each schedule's duration + the profile's
    per-shot overhead) × shots × bases."""
    overhead = profile.capabilities.shot_overhead
    return sum(
        (schedules[job.key].duration + overhead) * 1e-6 * job.shots * len(job.bases)
        for job in jobs
        if job.shots
    )


#: times along a ramp at which a step's bias estimate takes the spectrum
BUDGET_POINTS = 17


def ramp_bias(
    model: QEPModel,
    profile: DeviceProfile,
    recipe: Recipe,
    free_jobs: Sequence[PhaseJob],
    beta: float,
    error_signals: NDArray,
    threads: int = 1,
    known: Mapping[PhaseJob, Schedule] | None = None,
) -> NDArray | None:
    """Per sample (row) and parameter, the bias estimate of the gradient the recipe's ramps prepare
    (:mod:`qep_analog.emulation.preparation_bias`), from each sample's free phase (``model``: as the
    device realises it; one row of ``error_signals`` per job); None beyond the exact solver's reach
    (14 qubits). Costs about 17 diagonalisations of the Hamiltonian per sample, the samples in up
    to ``threads`` threads (:func:`~qep_analog.emulation.diagnostics.path_spectra`); ``known``: the
    schedules of jobs already built (by job)."""
    if model.n_qubits > MAX_DIAGNOSED_QUBITS:
        return None
    known = known or {}
    missing = [job for job in free_jobs if job not in known]
    schedules = job_schedules(model, profile, recipe, missing) if missing else {}
    signals = list(np.atleast_2d(error_signals))
    free = [known[job] if job in known else schedules[job.key] for job in free_jobs]
    nudges = [nudge_operator(list(model.outputs.values()), eps) for eps in signals]
    spectra = path_spectra(free, profile, BUDGET_POINTS, nudges, threads)
    return np.array(
        [
            gradient_bias(schedule, profile, model, eps, beta, spectrum).bias
            for schedule, eps, spectrum in zip(free, signals, spectra, strict=True)
        ]
    )


class RampBiasBudget:
    """What a backend that plays a recipe's ramps says about their bias: its ``model`` (realised),
    ``profile``, ``recipe`` and ``bias_budget`` (whether to estimate it)."""

    model: QEPModel
    profile: DeviceProfile
    recipe: Recipe
    bias_budget: bool
    #: threads of the bias estimate (one sample each)
    threads: int = 1
    #: the free phases' schedules of the last batch run (the bias estimate's paths)
    _free_schedules: Mapping[PhaseJob, Schedule] = MappingProxyType({})

    def job_schedules(self, jobs: Sequence[PhaseJob]) -> dict[str, Schedule]:
        """:func:`job_schedules` of ``jobs``, remembering the free phases' (those of the last batch
        that had any) for :meth:`preparation_bias`."""
        schedules = job_schedules(self.model, self.profile, self.recipe, jobs)
        free = {job: schedules[job.key] for job in jobs if job.phase == "free"}
        if free:
            self._free_schedules = free
        return schedules

    def preparation_bias(
        self, free_jobs: Sequence[PhaseJob], beta: float, error_signals: NDArray
    ) -> NDArray | None:
        """Per sample and parameter, the bias estimate of the gradient the recipe's ramps prepare
        (:func:`ramp_bias`); None when ``bias_budget`` is off."""
        if not self.bias_budget:
            return None
        return ramp_bias(
            self.model, self.profile, self.recipe, free_jobs, beta, error_signals, self.threads,
            self._free_schedules,
        )  # fmt: skip
