"""Phase jobs as the schedules a device runs: (x, θ, ν) translated through the profile into the
device's controls, then the recipe's adiabatic ramp to them. The nudged phases of a sample keep the
register of its free phase (a nudge changes no positions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qep_analog.backends.jobs import PhaseJob
from qep_analog.devices.profile import DeviceProfile
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import target_controls
from qep_analog.sequences.recipes import Recipe, build_schedule
from qep_analog.sequences.schedule import Schedule


def job_schedules(
    model: QEPModel, profile: DeviceProfile, recipe: Recipe, jobs: Sequence[PhaseJob]
) -> dict[str, Schedule]:
    """The schedule of each job (read in Z; a basis sets its readout), by job key. ``model`` is the
    model as the device realises it (:func:`~qep_analog.sequences.phases.realised_model`)."""
    registers: dict[int, Any] = {}
    out = {}
    for job in sorted(jobs, key=lambda j: (j.sample, j.phase != "free")):
        like = registers.get(job.sample)
        if like is None:
            like = target_controls(model, profile, job.x, job.theta)
            registers[job.sample] = like
        target = target_controls(model, profile, job.x, job.theta, job.nu, like=like)
        out[job.key] = build_schedule(recipe, profile, target, job.phase)
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
