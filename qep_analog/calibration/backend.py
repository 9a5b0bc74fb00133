"""What calibration backends must do.

Every backend has a ``name`` and a number of sites. The single-qubit experiments of
:class:`RydbergCalibrationBackend` run on every site at once; fake ion chains implement them too
(carrier transitions), so the single-qubit routines run on both platforms. Routines that need more
name the protocol they need here: :class:`PairPulseBackend` (two interacting atoms),
:class:`ParallelPairBackend` (several pairs at once), :class:`LocalRamseyBackend` (local fields),
:class:`SidebandBackend` and :class:`MSPairBackend` (ion motion and Mølmer–Sørensen pairs),
:class:`ScheduleBackend` (whole schedules).

All controls are *programmed* values (what the control system is told, before any calibration),
in internal units; each call returns the number of '1' readouts per sweep point and site, shape
``(points, n_sites)``, unless it says otherwise. A lab implements these protocols on its hardware;
the seeded fake labs emulate them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from numpy.typing import NDArray

from qep_analog.sequences.schedule import Schedule


class CalibrationBackend(Protocol):
    name: str

    @property
    def n_sites(self) -> int: ...


class RydbergCalibrationBackend(CalibrationBackend, Protocol):
    """Single-qubit experiments (Rydberg atoms, or the carrier transition of ions)."""

    def square_pulse(self, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int) -> NDArray:
        """From |0⟩, one pulse per point: duration (µs), Rabi frequency and detuning (rad/µs)."""
        ...

    def ramsey(self, delays: NDArray, detuning: float, shots: int) -> NDArray:
        """From |0⟩: a π/2 pulse, free evolution for each delay (µs) at ``detuning`` (rad/µs), π/2."""
        ...

    def readout(self, prepared: NDArray, shots: int) -> NDArray:
        """Prepare every atom in |0⟩ or |1⟩ (0 or 1 per point) and read it out."""
        ...


class PairPulseBackend(CalibrationBackend, Protocol):
    """A backend that drives two atoms at a chosen distance and reads both."""

    def pair_pulse(
        self, distance: float, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray:
        """Two atoms ``distance`` µm apart, one square pulse per point from |gg⟩ (programmed
        duration, Ω, δ): counts of shots with both atoms read '1', shape ``(points, 1)``."""
        ...


class ParallelPairBackend(PairPulseBackend, Protocol):
    """A backend that drives several disjoint pairs in one sequence and reads each."""

    def pair_pulses(
        self, positions: NDArray, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray:
        """Atoms 2k and 2k + 1 (pair k) at rows 2k and 2k + 1 of ``positions`` (µm, shape
        ``(2·pairs, 2)``), one square pulse per point from the ground state: counts of shots with
        both atoms of each pair read '1', shape ``(points, pairs)``."""
        ...


class LocalRamseyBackend(CalibrationBackend, Protocol):
    """A backend that runs Ramsey sequences with the local field aimed at one site."""

    def local_ramsey(
        self, delays: NDArray, detuning: float, site: int, amplitude: float, shots: int
    ) -> NDArray:
        """Ramsey fringes of every site (counts ``(points, n_sites)``) with the local field on
        ``site`` at programmed ``amplitude`` (rad/µs) during the free evolution; site −1: none."""
        ...


class GroupedLocalRamseyBackend(LocalRamseyBackend, Protocol):
    """A backend that aims the local field at several sites at once."""

    def local_ramsey_sites(
        self, delays: NDArray, detuning: float, sites: tuple[int, ...], amplitude: float, shots: int
    ) -> NDArray:
        """Ramsey fringes of every site with the local field on every site of ``sites`` at once."""
        ...


class SidebandBackend(CalibrationBackend, Protocol):
    def sideband_scan(self, detunings: NDArray, rabi: float, duration: float, shots: int) -> NDArray:
        """Blue-sideband probe at each programmed detuning from the carrier (rad/µs), programmed
        carrier Rabi frequency (rad/µs) and duration (µs); counts of '1', shape (points, n_sites)."""
        ...


class MSPairBackend(CalibrationBackend, Protocol):
    def ms_pair(
        self, pair: tuple[int, int], durations: NDArray, rabi: float, beat_note: float, shots: int
    ) -> NDArray:
        """Mølmer–Sørensen drive of the two ions ``pair`` at programmed Rabi frequency and beat note
        (rad/µs) for each duration (µs), from |↓↓⟩; counts of both read '1', shape (points, 1)."""
        ...


class ScheduleBackend(CalibrationBackend, Protocol):
    """Runs whole schedules (built with the lab's *believed* profile, the effective profile of the
    calibration so far) and returns the counts of every outcome in each schedule's readout basis,
    shape ``(2^n,)``, outcome index with qubit 0 as the most significant bit (as in
    :mod:`qep_analog.measurement.sampling`)."""

    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]:
        """Counts per outcome (2^n) of ``shots`` reads of each schedule in its readout basis."""
        ...


@runtime_checkable
class ResumableNoise(Protocol):
    """A backend whose random draws can be saved and restored (the seeded fake labs): a resumed run
    restores what the interrupted one had drawn, and draws what it would have drawn next."""

    def noise_state(self) -> dict[str, Any]:
        """The state of the random draws, as JSON-ready values."""
        ...

    def restore_noise_state(self, state: dict[str, Any]) -> None:
        """Continue from a state :meth:`noise_state` returned."""
        ...


@runtime_checkable
class DeviceClock(Protocol):
    """A backend with a simulated clock of its own (a fake lab's days), which does not run by
    itself: a calibration run stamps its records with the time it reads plus the device time the
    run has spent so far (:func:`~qep_analog.calibration.runner.record_time`) instead of the wall
    time."""

    def device_now(self) -> dt.datetime | None:
        """The backend's time (time-zone aware) before the run spends any device time, or None when
        it follows the wall clock."""
        ...
