"""Adiabaticity of an emulated preparation: fidelity with the exact ground state of the final
Hamiltonian, energy above it, the gap along the schedule's path, and the duration it needs.

The required duration comes from the local adiabatic condition max_t |⟨1|∂_t H|0⟩| / Δ(t)² ≤ ε:
∂_t H scales as 1/T when the schedule is stretched, so T_req = T · max_t(...) / ε (ε = 0.05 by
default). A duration is recommended only when the device can run it (:func:`recommended_duration`:
T_req on the clock, not beyond the profile's ``max_duration``). The lowest levels along the path
come from a sparse eigensolver (small N); the gap reported is to the lowest level the ramp couples
to the ground state (levels of another symmetry sector may cross it without harm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from numpy.typing import NDArray

from qep_analog.devices.profile import DeviceProfile, realised_duration
from qep_analog.emulation.qutip_emulator import EmulationResult, pauli_matrix
from qep_analog.errors import ConfigError, ConstraintError
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms
from qep_analog.sequences.waveforms import Waveform

MAX_DIAGNOSED_QUBITS = 14
ADIABATIC_TOLERANCE = 0.05


@dataclass(frozen=True)
class Adiabaticity:
    """Diagnostics of one preparation (energies and gaps in rad/µs, times in µs)."""

    fidelity: float
    energy_above_ground: float
    final_gap: float
    min_gap: float
    min_gap_time: float
    adiabatic_parameter: float
    required_duration: float
    duration: float

    @property
    def slow_enough(self) -> bool:
        return self.adiabatic_parameter <= ADIABATIC_TOLERANCE

    def to_document(self) -> dict[str, float | bool]:
        return {**{k: float(v) for k, v in vars(self).items()}, "slow_enough": self.slow_enough}


LEVELS = 4  # lowest levels examined at each time


DENSE_DIM = 2048  # below this, dense diagonalisation (ARPACK can miss a level in degenerate spectra)


def _lowest(matrix: sp.csr_matrix, k: int) -> tuple[NDArray, NDArray]:
    if matrix.shape[0] <= DENSE_DIM:
        values, vectors = np.linalg.eigh(matrix.toarray())
        return values[:k], vectors[:, :k]
    start = np.random.default_rng(0).normal(size=matrix.shape[0])
    values, vectors = sla.eigsh(matrix, k=k, which="SA", tol=1e-12, v0=start, ncv=max(20, 4 * k))
    order = np.argsort(values)
    return values[order], vectors[:, order]


def _coupled_gap_and_rate(values: NDArray, vectors: NDArray, derivative: object) -> tuple[float, float]:
    """The gap to the lowest level the ramp couples to the ground state, and max_m |⟨m|∂_t H|0⟩| /
    (E_m − E_0)². Levels the ramp does not couple (another symmetry sector) may cross freely."""
    elements = np.abs(vectors[:, 1:].conj().T @ (derivative @ vectors[:, 0]))
    gaps = values[1:] - values[0]
    coupled = elements > 1e-9 * max(1.0, float(elements.max(initial=0.0)))
    if not np.any(coupled):
        return float(gaps[-1]), 0.0
    return float(gaps[coupled].min()), float(
        (elements[coupled] / np.maximum(gaps[coupled], 1e-12) ** 2).max()
    )


def adiabaticity(
    schedule: Schedule,
    profile: DeviceProfile,
    result: EmulationResult,
    points: int = 41,
    tolerance: float = ADIABATIC_TOLERANCE,
) -> Adiabaticity:
    """Diagnose ``result`` (the emulated final state of ``schedule``)."""
    n = schedule.n_qubits
    if n > MAX_DIAGNOSED_QUBITS:
        raise ConfigError(f"diagnostics: {n} qubits exceed the limit of {MAX_DIAGNOSED_QUBITS}")
    static, terms = hamiltonian_terms(schedule, profile)
    matrices = [
        (schedule.controls[name], pauli_matrix(op, n)) for name, op in terms if name in schedule.controls
    ]
    base = pauli_matrix(static, n)
    duration = schedule.duration
    times = np.linspace(0.0, duration, points)
    levels = min(LEVELS, (1 << n) - 1)
    gaps, rates = np.empty(points), np.empty(points)
    for k, t in enumerate(times):
        hamiltonian = base + sum((float(w(t)) * m for w, m in matrices), start=0 * base)
        values, vectors = _lowest(hamiltonian, levels)
        derivative = sum((_slope(w, t) * m for w, m in matrices), start=0 * base)
        gaps[k], rates[k] = _coupled_gap_and_rate(values, vectors, derivative)
        if k == points - 1:
            ground, energy0 = vectors[:, 0], values[0]
            final = hamiltonian
    state = result.state
    if state.ndim == 1:
        fidelity = abs(np.vdot(ground, state)) ** 2
        energy = np.real(np.vdot(state, final @ state))
    else:
        fidelity = np.real(np.vdot(ground, state @ ground))
        energy = np.real((final @ state).trace())
    parameter = float(rates.max())
    return Adiabaticity(
        fidelity=float(fidelity),
        energy_above_ground=float(energy - energy0),
        final_gap=float(gaps[-1]),
        min_gap=float(gaps.min()),
        min_gap_time=float(times[np.argmin(gaps)]),
        adiabatic_parameter=parameter,
        required_duration=duration * parameter / tolerance,
        duration=duration,
    )


def recommended_duration(diagnosis: Adiabaticity, profile: DeviceProfile) -> float | None:
    """The required duration (µs) rounded up to the device clock, or ``None`` when it is longer than
    the longest sequence the profile allows (no allowed duration is adiabatic enough)."""
    try:
        return realised_duration(profile, max(diagnosis.required_duration, diagnosis.duration))
    except ConstraintError:
        return None


def _slope(waveform: Waveform, t: float) -> float:
    """dw/dt of a piecewise-linear waveform at t (the right-hand segment; the last one at the end)."""
    times, values = waveform.times, waveform.values
    k = min(int(np.searchsorted(times, t, side="right")) - 1, len(times) - 2)
    return float((values[k + 1] - values[k]) / (times[k + 1] - times[k]))
