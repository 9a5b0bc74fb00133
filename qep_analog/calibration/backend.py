"""What calibration backends must do.

Every backend has a ``name`` and a number of sites. The single-qubit experiments of
:class:`RydbergCalibrationBackend` run on every site at once; fake ion chains implement them too
(carrier transitions), so the single-qubit routines run on both platforms. Routines that need more
(pair spectroscopy, local fields, sidebands, schedules) state their own protocols in their modules.

All controls are *programmed* values (what the control system is told, before any calibration),
in internal units; each call returns the number of '1' readouts per sweep point and site, shape
``(points, n_sites)``. A lab implements this protocol on its hardware; the fake lab
(:mod:`qep_analog.calibration.fake_lab`) emulates it.
"""

from __future__ import annotations

from typing import Protocol

from numpy.typing import NDArray


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
