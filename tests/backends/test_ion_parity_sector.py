"""On an ion chain the backends prepare the lowest state of the parity sector the device's field ramp
keeps (every ion starts in 1: P = Π_i Z_i = (−1)^N), not the lowest state overall: the exact backend
(Lanczos with the other sector lifted) and the fake lab's ground preparation (the sector's block of
the schedule's final Hamiltonian, diagonalised densely) agree with each other and with the sector's
dense block."""

from __future__ import annotations

import numpy as np
import pytest

from qep_analog.backends.exact import ExactBackend
from qep_analog.calibration.ground_state import final_ground_state
from qep_analog.devices.ions import IonControls, realize
from qep_analog.devices.profile import read_profile
from qep_analog.model.pauli import parity_signs, pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import qep_phase_schedules, realised_model
from qep_analog.sequences.recipes import load_recipe

N = 3
#: fields (rad/µs) whose lowest state overall is |110⟩ (P = +1), outside the ramp's sector P = −1
THETA = np.array([0.004, 0.003, -0.0035])


def ion_model() -> QEPModel:
    profile = read_profile("yb171-chain")
    couplings = realize(IonControls(np.full(N, 1.5), 30.0), profile).couplings
    fixed = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(N) for j in range(i + 1, N))
    trainable = {f"b{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(N)}
    return QEPModel(N, trainable, {"m": pauli_sum([(1.0, "Z0")])}, fixed)


def z_values(state: np.ndarray) -> np.ndarray:
    """⟨Z_i⟩ of a state vector (qubit i at bit N − 1 − i)."""
    probabilities = np.abs(state) ** 2
    bits = (np.arange(1 << N)[:, None] >> (N - 1 - np.arange(N))) & 1
    return probabilities @ (1 - 2 * bits)


def test_the_ion_backends_prepare_the_ramps_parity_sector() -> None:
    profile = read_profile("yb171-chain")
    model = ion_model()
    assert realised_model(model, profile).parity == -1  # three ions start in 1
    backend = ExactBackend(model, profile)
    prepared = backend.equilibrium.prepare(np.zeros((1, 0)), THETA[None, :])
    state = np.asarray(prepared.states)[0]
    signs = parity_signs(N)
    assert np.sum(np.abs(state[signs > 0]) ** 2) < 1e-20

    h = backend.equilibrium.compiled.table.dense(
        backend.equilibrium.coefficients(np.zeros(0), THETA, None)[0]
    )
    values, vectors = np.linalg.eigh(h)
    assert signs @ np.abs(vectors[:, 0]) ** 2 == pytest.approx(1.0, abs=1e-9)  # overall: P = +1
    odd = np.flatnonzero(signs < 0)
    sector = np.linalg.eigvalsh(h[np.ix_(odd, odd)])
    assert prepared.energies[0] == pytest.approx(sector[0], abs=1e-10)
    assert sector[0] - values[0] > 1e-3  # the sector's lowest state is an excited state overall

    # the fake lab's ground preparation of the free phase's schedule: the same sector state
    schedules = qep_phase_schedules(
        model, profile, load_recipe("ion-exponential-smooth"), [], THETA, [1.0], 0.0005
    )
    free = schedules[0]
    assert free.initial_state == "111"
    lab_state = final_ground_state(free, profile)
    assert np.sum(np.abs(lab_state[signs > 0]) ** 2) < 1e-20
    assert np.allclose(z_values(lab_state), z_values(state), atol=1e-6)
    assert not np.allclose(z_values(vectors[:, 0]), z_values(state), atol=0.1)


def test_a_rydberg_array_keeps_no_parity() -> None:
    model = QEPModel(
        2,
        {"d": pauli_sum([(1.0, "Z0"), (1.0, "Z1")])},
        {"m": pauli_sum([(1.0, "Z0")])},
        pauli_sum([(1.0, "X0"), (1.0, "X1"), (0.5, "Z0 Z1")]),
    )
    assert realised_model(model, read_profile("aquila-like")).parity is None
