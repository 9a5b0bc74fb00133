"""The bias of an X or Y readout on a Rydberg array: the export's π/2 rotation pulse runs while the
atoms interact (and feel any calibrated site offsets), so what is read is not the prepared state's
X or Y. The prepared state (our emulator) is turned once by the pulse as the device plays it — any
undriven delay Pulser puts before it, then the constant resonant drive, the van der Waals couplings
on throughout — and once by the ideal instantaneous rotation
(:func:`~qep_analog.emulation.qutip_emulator.rotate_to_basis`); the bias is the difference of each
atom's read ⟨Z_i⟩, i.e. of the ⟨X_i⟩ (or ⟨Y_i⟩) that the counts estimate. The channel's modulation
(a finite bandwidth rounding the pulse on hardware) is not modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.linalg import expm_multiply

from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.qutip_emulator import (
    MAX_EMULATED_QUBITS,
    QutipEmulator,
    pauli_matrix,
    rotate_to_basis,
)
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.sequences.pulser_export import ReadoutRotation, schedule_rotation
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms


@dataclass(frozen=True)
class ReadoutBias:
    """The rotation a schedule's export plays and, per atom, read ⟨Z_i⟩ with it minus with the ideal
    rotation (None where the state was too large to emulate)."""

    rotation: ReadoutRotation
    per_atom: NDArray | None

    @property
    def max_abs(self) -> float | None:
        return None if self.per_atom is None else float(np.abs(self.per_atom).max())

    def to_document(self) -> dict[str, Any]:
        per_atom = None if self.per_atom is None else [float(v) for v in self.per_atom]
        return {
            "rotation": self.rotation.to_document(),
            "max_abs_bias": self.max_abs,
            "bias_per_atom": per_atom,
        }

    def summary(self, label: str) -> str:
        pulse = (
            f"{label}/{self.rotation.basis}: readout rotation {self.rotation.duration * 1000:g} ns at "
            f"{self.rotation.amplitude:.4g} rad/µs, phase {self.rotation.phase:.4g} rad"
        )
        if self.max_abs is None:
            return f"{pulse}; bias not estimated (more than {MAX_EMULATED_QUBITS} atoms)"
        return f"{pulse}; bias under interactions max |Δ<{self.rotation.basis}_i>| = {self.max_abs:.3g}"


def pulse_hamiltonian(schedule: Schedule, profile: DeviceProfile, rotation: ReadoutRotation) -> PauliSum:
    """H during the rotation pulse (rad/µs): the schedule's static part (van der Waals couplings, site
    offsets) and the resonant drive as Pulser plays it, Ω/2 (cos φ X + sin φ Y) on our basis with
    Ω the calibrated amplitude; no detuning and no map."""
    static, _ = hamiltonian_terms(schedule, profile)
    half = profile.calibration.rabi_scale * rotation.amplitude / 2
    cos, sin = half * math.cos(rotation.phase), half * math.sin(rotation.phase)
    drive = [(cos, f"X{i}") for i in range(schedule.n_qubits)]
    drive += [(sin, f"Y{i}") for i in range(schedule.n_qubits)]
    return PauliSum.from_terms([(1.0, static), (1.0, pauli_sum(t for t in drive if t[0] != 0.0))])


def _read_z(state: NDArray, n: int) -> NDArray:
    """⟨Z_i⟩ of each qubit in a ket (qubit 0 the most significant bit)."""
    probabilities = np.abs(state) ** 2
    bits = (np.arange(len(state))[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1
    return np.asarray(probabilities @ (1 - 2 * bits), dtype=float)


def rotated_reads(
    state: NDArray, schedule: Schedule, profile: DeviceProfile, rotation: ReadoutRotation
) -> tuple[NDArray, NDArray]:
    """(read ⟨Z_i⟩ after the delay and the pulse as played, after the ideal rotation) of a prepared
    ket."""
    n = schedule.n_qubits
    played = np.asarray(state, dtype=complex)
    if rotation.delay > 0:  # undriven, interacting
        static = pauli_matrix(hamiltonian_terms(schedule, profile)[0], n).astype(complex)
        played = expm_multiply(-1j * rotation.delay * static, played)
    hamiltonian = pauli_matrix(pulse_hamiltonian(schedule, profile, rotation), n).astype(complex)
    played = expm_multiply(-1j * rotation.duration * hamiltonian, played)
    ideal = rotate_to_basis(np.asarray(state), rotation.basis * n)
    return _read_z(played, n), _read_z(ideal, n)


def readout_bias(
    schedule: Schedule, profile: DeviceProfile, state: NDArray | None = None
) -> ReadoutBias | None:
    """The readout rotation of the schedule's Pulser export and its bias on the state the schedule
    prepares (``state``, a ket in our basis, or our noiseless emulation of it); None for Z."""
    rotation = schedule_rotation(schedule, profile)
    if rotation is None:
        return None
    if state is None:
        if schedule.n_qubits > MAX_EMULATED_QUBITS:
            return ReadoutBias(rotation, None)
        state = QutipEmulator(profile).run(schedule).state
    played, ideal = rotated_reads(state, schedule, profile, rotation)
    return ReadoutBias(rotation, played - ideal)
