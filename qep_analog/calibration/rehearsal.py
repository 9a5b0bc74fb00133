"""A rehearsal of a runcard: every routine acquires against a stand-in of the backend that measures
nothing and returns empty counts of the right shapes.

What a routine checks before it measures — its parameters against the device's limits and the
backend's sites, the schedules it builds, a runcard's targets — is checked this way for every step
before a run creates its folder or spends any device time (an adaptive routine, which chooses its
experiments from what it measured, up to its first experiment). The rehearsal runs every step against
the profile in force when the run starts; a check that depends on what an earlier step measures
can still stop a run later (its folder then says where and why: see
:func:`qep_analog.calibration.runner.run_state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import CalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.registry import routine_named
from qep_analog.calibration.routine import Routine
from qep_analog.calibration.runcard import Runcard, RunStep
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError
from qep_analog.sequences.schedule import Schedule


class FirstExperiment(Exception):
    """Raised by a stand-in that rehearses up to the first experiment only."""


class StandInBackend:
    """Answers every experiment of the backend protocols with zero counts, without measuring; an
    experiment the real ``backend`` cannot run is a one-line :class:`CalibrationError`. With
    ``first_only``, the first experiment ends the rehearsal (:class:`FirstExperiment`): an adaptive
    routine's later experiments depend on counts a stand-in does not have."""

    def __init__(self, backend: CalibrationBackend, first_only: bool = False) -> None:
        self._backend = backend
        self._first_only = first_only
        self.name = backend.name

    @property
    def n_sites(self) -> int:
        return self._backend.n_sites

    def _zeros(self, experiment: str, points: int, columns: int) -> NDArray:
        if not callable(getattr(self._backend, experiment, None)):
            raise CalibrationError(f"backend {self.name!r} cannot run {experiment} experiments")
        if self._first_only:
            raise FirstExperiment
        return np.zeros((points, columns), dtype=np.int64)

    def square_pulse(self, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int) -> NDArray:
        points = np.broadcast(np.asarray(durations), np.asarray(rabis), np.asarray(detunings)).size
        return self._zeros("square_pulse", points, self.n_sites)

    def ramsey(self, delays: NDArray, detuning: float, shots: int) -> NDArray:
        return self._zeros("ramsey", len(delays), self.n_sites)

    def readout(self, prepared: NDArray, shots: int) -> NDArray:
        return self._zeros("readout", len(prepared), self.n_sites)

    def pair_pulse(
        self, distance: float, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray:
        points = np.broadcast(np.asarray(durations), np.asarray(rabis), np.asarray(detunings)).size
        return self._zeros("pair_pulse", points, 1)

    def pair_pulses(
        self, positions: NDArray, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray:
        points = np.broadcast(np.asarray(durations), np.asarray(rabis), np.asarray(detunings)).size
        return self._zeros("pair_pulses", points, len(positions) // 2)

    def local_ramsey(
        self, delays: NDArray, detuning: float, site: int, amplitude: float, shots: int
    ) -> NDArray:
        return self._zeros("local_ramsey", len(delays), self.n_sites)

    def local_ramsey_sites(
        self, delays: NDArray, detuning: float, sites: tuple[int, ...], amplitude: float, shots: int
    ) -> NDArray:
        return self._zeros("local_ramsey_sites", len(delays), self.n_sites)

    def sideband_scan(self, detunings: NDArray, rabi: float, duration: float, shots: int) -> NDArray:
        return self._zeros("sideband_scan", len(detunings), self.n_sites)

    def ms_pair(
        self, pair: tuple[int, int], durations: NDArray, rabi: float, beat_note: float, shots: int
    ) -> NDArray:
        return self._zeros("ms_pair", len(durations), 1)

    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]:
        for schedule in schedules:
            if schedule.n_qubits > self.n_sites:
                raise CalibrationError(
                    f"backend {self.name!r}: schedule {schedule.label!r} on {schedule.n_qubits} "
                    f"qubits, the backend has {self.n_sites} sites"
                )
        self._zeros("run_schedules", 0, 1)
        return [np.zeros(1 << schedule.n_qubits, dtype=np.int64) for schedule in schedules]


def selected(
    runcard: Runcard, routine: Routine, data: CalibrationData, backend: CalibrationBackend
) -> CalibrationData:
    """``data`` restricted to the runcard's targets, when the routine's columns are the backend's
    sites."""
    if runcard.targets and routine.site_columns and data.n_sites == backend.n_sites:
        return data.select(runcard.targets)
    return data


def rehearse(
    runcard: Runcard,
    steps: Sequence[RunStep],
    profile: DeviceProfile,
    backend: CalibrationBackend,
) -> None:
    """Acquire every step of ``steps`` (of ``runcard``) on a :class:`StandInBackend` of ``backend``
    against the effective ``profile``: the first failed check is raised as it would be in the run."""
    for step in steps:
        routine = routine_named(step.routine, profile.platform)
        stand_in: Any = StandInBackend(backend, first_only=routine.adaptive)
        try:
            data = routine.acquire(step.parameters, stand_in, profile)
        except FirstExperiment:
            continue
        selected(runcard, routine, data, backend)
