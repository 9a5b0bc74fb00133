"""Pulser's emulator (pulser-simulation, QuTiP) as a backend for Rydberg schedules.

Pulser orders each atom's basis as (|r⟩, |g⟩); ours is (|0⟩ = g, |1⟩ = r): the conversion flips every
bit of the basis index (qubit order is the register's, the same as ours).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pulser.backend import StateResult
from pulser_simulation import QutipBackendV2, QutipConfig, QutipState

from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.qutip_emulator import EmulationResult, expectation
from qep_analog.model.pauli import PauliSum
from qep_analog.sequences.pulser_export import to_pulser_sequence
from qep_analog.sequences.schedule import Schedule


def from_pulser_basis(state: NDArray) -> NDArray:
    """A Pulser ground-rydberg state vector in our basis (every bit of the index flipped)."""
    return np.asarray(state).ravel()[::-1].copy()


def run_pulser(
    schedule: Schedule, profile: DeviceProfile, observables: dict[str, PauliSum] | None = None
) -> EmulationResult:
    """Emulate the compiled sequence with pulser-simulation's QutipBackendV2 (noiseless, one sample
    per ns, from all atoms in |g⟩)."""
    if schedule.initial_state.strip("0"):
        raise ValueError("Pulser's emulator starts from all atoms in |g⟩ = our |0…0⟩")
    sequence = to_pulser_sequence(schedule, profile)
    config = QutipConfig(observables=[StateResult(evaluation_times=[1.0])], sampling_rate=1.0)
    results = QutipBackendV2(sequence, config=config).run()
    final = results.final_state
    assert isinstance(final, QutipState)
    state = from_pulser_basis(final.to_qobj().full())
    n = schedule.n_qubits
    expectations = {name: expectation(state, op, n) for name, op in (observables or {}).items()}
    return EmulationResult(schedule.label, state, expectations)
