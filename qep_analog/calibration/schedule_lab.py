"""Many-body experiments for calibration: whole schedules run on a device, outcome counts back.

A :class:`ScheduleBackend` runs each schedule (built with the lab's *believed* profile: the effective
profile of the calibration so far) and returns the counts of every outcome in the schedule's readout
basis, shape ``(2^n,)``, outcome index with qubit 0 as the most significant bit (as in
:mod:`qep_analog.measurement.sampling`).

:class:`FakeScheduleLab` emulates that on a *true* profile, i.e. a profile whose calibration holds
the hidden values: the same controls act with the true Ω scale, detuning offsets, C6 or coupling
scale, local gains and trap. Preparation is either

- ``"adiabatic"``: the schedule is integrated with QuTiP (what the ramp really prepares), or
- ``"ground"``: the ground state of the final Hamiltonian (a perfectly adiabatic device; fast),

and read out with per-site readout errors and multinomial shot noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import scipy.sparse.linalg as spla
from numpy.typing import NDArray

from qep_analog.calibration.backend import CalibrationBackend
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.qutip_emulator import QutipEmulator, pauli_matrix
from qep_analog.errors import ConfigError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import bits_of, sample_counts
from qep_analog.sequences.schedule import Schedule, hamiltonian_at

Preparation = Literal["adiabatic", "ground"]
PREPARATIONS = ("adiabatic", "ground")
#: above this many qubits the ground state comes from a sparse eigensolver
DENSE_LIMIT = 8


class ScheduleBackend(CalibrationBackend, Protocol):
    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]:
        """Counts per outcome (2^n) of ``shots`` reads of each schedule in its readout basis."""
        ...


def final_ground_state(schedule: Schedule, profile: DeviceProfile) -> NDArray:
    """The ground state of the Hamiltonian ``profile``'s device has at the end of ``schedule``."""
    n = schedule.n_qubits
    matrix = pauli_matrix(hamiltonian_at(schedule, profile, schedule.duration), n)
    if n <= DENSE_LIMIT:
        _, vectors = np.linalg.eigh(matrix.toarray())
        return np.asarray(vectors[:, 0], dtype=complex)
    _, vectors = spla.eigsh(matrix.tocsc(), k=1, which="SA", tol=1e-12)
    return np.asarray(vectors[:, 0], dtype=complex)


@dataclass
class FakeScheduleLab:
    """Runs schedules on the device of ``true_profile`` with per-site ``readout`` errors (one entry per
    site; a schedule on n qubits uses sites 0 … n−1)."""

    true_profile: DeviceProfile
    readout: ReadoutErrors
    seed: int = 0
    preparation: Preparation = "ground"
    name: str = "fake-lab"
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.preparation not in PREPARATIONS:
            raise ConfigError(
                f"fake lab: preparation {self.preparation!r} is not one of {', '.join(PREPARATIONS)}"
            )
        self._rng = np.random.default_rng(self.seed)

    @property
    def n_sites(self) -> int:
        return self.readout.n_qubits

    def state(self, schedule: Schedule) -> NDArray:
        """The state the device prepares at the end of ``schedule`` (before readout)."""
        return prepared_state(schedule, self.true_profile, self.preparation, self.n_sites)

    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]:
        return emulate_counts(
            schedules, self.true_profile, shots, self._rng, self.readout, self.preparation
        )


def prepared_state(
    schedule: Schedule, profile: DeviceProfile, preparation: Preparation, n_sites: int
) -> NDArray:
    """The state ``profile``'s device prepares at the end of ``schedule`` (before readout)."""
    if schedule.n_qubits > n_sites:
        raise ConfigError(
            f"fake lab: schedule {schedule.label!r} on {schedule.n_qubits} qubits, the lab has "
            f"{n_sites} sites"
        )
    if preparation == "ground":
        return final_ground_state(schedule, profile)
    return QutipEmulator(profile).run(schedule).state


def emulate_counts(
    schedules: Sequence[Schedule],
    profile: DeviceProfile,
    shots: int,
    rng: np.random.Generator,
    readout: ReadoutErrors,
    preparation: Preparation = "ground",
) -> list[NDArray]:
    """Outcome counts of each schedule run on ``profile``'s device, read with per-site ``readout``
    errors (a schedule on n qubits uses sites 0 … n−1)."""
    if preparation not in PREPARATIONS:
        raise ConfigError(f"fake lab: preparation {preparation!r} is not one of {', '.join(PREPARATIONS)}")
    out = []
    for schedule in schedules:
        n = schedule.n_qubits
        state = prepared_state(schedule, profile, preparation, readout.n_qubits)
        errors = ReadoutErrors(readout.false_positive[:n], readout.false_negative[:n])
        out.append(sample_counts(state, schedule.readout, shots, rng, errors))
    return out


class RunsSchedulesOnTrueProfile:
    """The :class:`ScheduleBackend` side of a fake lab: whole schedules emulated on the lab's
    ``true_profile()``, prepared as its ``preparation`` says, read out with the per-site readout
    errors of its ``hidden`` parameters, shot noise from its generator."""

    hidden: Any
    preparation: Preparation
    _rng: np.random.Generator

    def true_profile(self) -> DeviceProfile:
        raise NotImplementedError

    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]:
        readout = ReadoutErrors(
            np.asarray(self.hidden.false_positive), np.asarray(self.hidden.false_negative)
        )
        return emulate_counts(schedules, self.true_profile(), shots, self._rng, readout, self.preparation)


def site_ones(counts: NDArray, n: int) -> NDArray:
    """Counts of '1' on each of ``n`` sites from counts per outcome (2^n,) (qubit 0 most significant)."""
    return np.asarray(np.asarray(counts) @ bits_of(np.arange(1 << n), n), dtype=np.int64)
