"""Pulser's emulator (pulser-simulation, QuTiP) as a backend for Rydberg schedules.

Pulser orders each atom's basis as (|r⟩, |g⟩); ours is (|0⟩ = g, |1⟩ = r): the conversion flips every
bit of the basis index (qubit order is the register's, the same as ours).
"""

from __future__ import annotations

import numpy as np
import pulser
from numpy.typing import NDArray
from pulser.backend import StateResult
from pulser_simulation import QutipBackendV2, QutipConfig, QutipState

from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.qutip_emulator import EmulationResult, expectation
from qep_analog.errors import ConfigError
from qep_analog.model.pauli import PauliSum
from qep_analog.sequences.pulser_export import to_pulser_sequence
from qep_analog.sequences.schedule import Schedule


def from_pulser_basis(state: NDArray) -> NDArray:
    """A Pulser ground-rydberg state vector (or density matrix) in our basis (every bit of the index
    flipped)."""
    state = np.asarray(state)
    if state.ndim == 2 and min(state.shape) > 1:
        return state[::-1, ::-1].copy()
    return state.ravel()[::-1].copy()


def run_pulser(
    schedule: Schedule,
    profile: DeviceProfile,
    observables: dict[str, PauliSum] | None = None,
    *,
    noise_model: pulser.NoiseModel | None = None,
    trajectories: int = 16,
    seed: int | None = None,
) -> EmulationResult:
    """Emulate the compiled sequence with pulser-simulation's QutipBackendV2 (one sample per ns, from
    all atoms in |g⟩): noiseless, or with ``noise_model`` averaged over ``trajectories`` draws of its
    shot-to-shot channels (a density matrix; Pulser draws from NumPy's global generator: seeded with
    ``seed`` here and restored after). Readout errors act on sampled bits, not on the state."""
    if schedule.initial_state.strip("0"):
        raise ConfigError(
            f"schedule {schedule.label!r}: initial state {schedule.initial_state}; Pulser's emulator "
            "starts from all atoms in |g⟩ = our |0…0⟩"
        )
    sequence = to_pulser_sequence(schedule, profile)
    observed = [StateResult(evaluation_times=[1.0])]
    if noise_model is None:
        config = QutipConfig(observables=observed, sampling_rate=1.0)
    else:
        config = QutipConfig(
            observables=observed, sampling_rate=1.0, noise_model=noise_model, n_trajectories=trajectories
        )
    saved = np.random.get_state()  # noqa: NPY002 - Pulser draws from the global generator
    if seed is not None:
        np.random.seed(seed)  # noqa: NPY002
    try:
        results = QutipBackendV2(sequence, config=config).run()
    finally:
        if seed is not None:
            np.random.set_state(saved)  # noqa: NPY002
    final = results.final_state
    assert isinstance(final, QutipState)
    qobj = final.to_qobj()
    state = from_pulser_basis(qobj.full() if qobj.isoper else qobj.full().ravel())
    n = schedule.n_qubits
    expectations = {name: expectation(state, op, n) for name, op in (observables or {}).items()}
    return EmulationResult(schedule.label, state, expectations)
