"""The backend contract: phase jobs in, counts or exact expectation values out, with metadata.

A :class:`PhaseJob` is one preparation of a QEP experiment: sample ``sample`` of a batch in phase
``phase`` (``free``, ``plus`` or ``minus``: ν = sign · β ε), at the model's coordinates (x, θ, ν),
read in ``bases`` with ``shots`` shots each, or exactly (``shots`` None). A backend prepares each job
— as a ground state of the model, or through the device profile as an adiabatic schedule on an
emulator or a device — and returns a :class:`JobResult` per job: counts per basis, or the exact
expectation values of the model's generators and outputs. :class:`BatchResult` carries what a run
records of the batch: the backend, its version, the profile snapshot and calibration records in
force, the seeds, the wall time and the device time the batch takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError, MeasurementError
from qep_analog.measurement.estimators import MAX_SHOTS, SettingCounts
from qep_analog.qep.names import SCHEMES
from qep_analog.qep.scheme import PHASES, SIGNS


@dataclass(frozen=True)
class PhaseJob:
    """One preparation: a phase of one sample at (x, θ, ν), its readout bases and shots per basis
    (``None``: exact expectation values)."""

    sample: int
    phase: str
    x: tuple[float, ...]
    theta: tuple[float, ...]
    nu: tuple[float, ...]
    bases: tuple[str, ...]
    shots: int | None

    def __post_init__(self) -> None:
        where = f"phase job {self.key!r}"
        if self.phase not in SIGNS:
            raise ConfigError(f"{where}: phase {self.phase!r} is not one of {', '.join(SIGNS)}")
        if self.shots is not None and (isinstance(self.shots, bool) or self.shots < 1):
            raise ConfigError(f"{where}: shots = {self.shots!r} must be a positive integer or None")
        if self.shots is not None and not self.bases:
            raise ConfigError(f"{where}: counted jobs need at least one readout basis")

    @property
    def key(self) -> str:
        """``S/PHASE``: names the job within its batch."""
        return f"{self.sample}/{self.phase}"


@dataclass(frozen=True)
class JobResult:
    """What a backend returns for one job: the counts of each readout basis, or the exact
    ``generators`` ⟨A_j⟩ and ``outputs`` ⟨O_k⟩ of the model."""

    key: str
    counts: Mapping[str, SettingCounts] | None = None
    generators: NDArray | None = None
    outputs: NDArray | None = None

    @property
    def exact(self) -> bool:
        return self.counts is None


@dataclass(frozen=True)
class BatchResult:
    """The results of a batch of jobs, in job order, and what a run records of the batch."""

    results: tuple[JobResult, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def by_key(self) -> dict[str, JobResult]:
        return {r.key: r for r in self.results}


def batch_metadata(backend: str, profile: DeviceProfile | None, **details: Any) -> dict[str, Any]:
    """What every batch records: the backend and package version, the profile used (its provenance:
    snapshot hash and calibration records in force), and the backend's own ``details``."""
    from qep_analog import __version__

    device = None if profile is None else profile.provenance()
    return {"backend": backend, "version": __version__, "device": device, **details}


class Backend(Protocol):
    """Prepares and reads phase jobs. ``name`` is the registry name; ``run`` returns one result per
    job, in job order."""

    name: str

    def run(self, jobs: Sequence[PhaseJob]) -> BatchResult: ...


def require_counts(backend: str, jobs: Sequence[PhaseJob]) -> None:
    """A lab returns counts: a job that asks for exact values is a one-line error."""
    exact = [job.key for job in jobs if job.shots is None]
    if exact:
        raise ConfigError(
            f"backend {backend}: a lab returns counts; job {exact[0]!r} asks for exact values "
            "(give the shots: training.shots, or --shots N)"
        )


def bitstring_counts(basis: str, counts: object, n: int, where: str) -> SettingCounts:
    """Counts a lab returns as bitstring -> shots (qubit 0 the leftmost character, 1 the excited
    state) as the :class:`SettingCounts` of ``basis``; anything else is a one-line error naming
    ``where``."""
    if not isinstance(counts, Mapping) or not counts:
        raise MeasurementError(f"{where}: 'counts' must be a non-empty mapping bitstring -> shots")
    outcomes, numbers = [], []
    for bits, number in counts.items():
        if not isinstance(bits, str) or len(bits) != n or set(bits) - {"0", "1"}:
            raise MeasurementError(f"{where}: bitstring {bits!r} is not {n} characters of 0 and 1")
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise MeasurementError(f"{where}: count {number!r} of {bits} is not a non-negative integer")
        outcomes.append(int(bits, 2))
        numbers.append(number)
    if sum(numbers) > MAX_SHOTS:
        raise MeasurementError(f"{where}: {sum(numbers)} shots, more than the limit {MAX_SHOTS} (2**53)")
    return SettingCounts(basis, np.array(outcomes), np.array(numbers, dtype=np.int64))


def phase_jobs(
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    beta: float,
    scheme: str,
    bases: Sequence[str],
    shots: int | None,
    *,
    free_phase: bool = True,
) -> list[PhaseJob]:
    """The jobs of one QEP step on a batch: per sample the scheme's nudged phases (ν = ±β ε) and,
    with ``free_phase`` (always for one-sided), the free one. ``x`` (B, n_inputs) or one row;
    ``error_signal`` (B, n_outputs) or one row."""
    if scheme not in SCHEMES:
        raise ConfigError(f"phase jobs: scheme {scheme!r} is unknown (valid: {', '.join(SCHEMES)})")
    if not (np.isfinite(beta) and beta > 0):
        raise ConfigError(f"phase jobs: beta = {beta!r} must be positive and finite")
    x_arr = np.atleast_2d(np.asarray(x, dtype=float))
    eps = np.atleast_2d(np.asarray(error_signal, dtype=float))
    if len(eps) == 1 and len(x_arr) > 1:
        eps = np.repeat(eps, len(x_arr), axis=0)
    if len(eps) != len(x_arr):
        raise ConfigError(f"phase jobs: {len(x_arr)} inputs but {len(eps)} error signals")
    thetas = sample_coefficients(theta, len(x_arr))
    phases = list(PHASES[scheme])
    if free_phase and "free" not in phases:
        phases.append("free")
    jobs = []
    for b, (row, e) in enumerate(zip(x_arr, eps, strict=True)):
        for phase in phases:
            nu = tuple(float(v) for v in SIGNS[phase] * beta * e)
            jobs.append(PhaseJob(b, phase, tuple(map(float, row)), thetas[b], nu, tuple(bases), shots))
    return jobs


def sample_coefficients(theta: ArrayLike, batch: int) -> list[tuple[float, ...]]:
    """θ of each of ``batch`` samples: one vector for all, or one row per sample."""
    th = np.asarray(theta, dtype=float)
    if th.ndim == 1:
        return [tuple(float(v) for v in th)] * batch
    if th.ndim != 2 or len(th) != batch:
        raise ConfigError(f"phase jobs: coefficients of shape {th.shape} for {batch} samples")
    return [tuple(float(v) for v in row) for row in th]
