"""Gibbs states (qep_analog.solvers.thermal, qep_analog.solvers.equilibrium) against scipy expm."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from qep_analog.errors import ConfigError
from qep_analog.model.pauli import PauliSum
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.solvers.thermal import MAX_THERMAL_QUBITS, gibbs_state, thermal_strings

#: Density matrices, weights, free energies and traces against expm (dense double precision).
THERMAL_TOL = 1e-10


def expm_gibbs(h: np.ndarray, temperature: float) -> tuple[np.ndarray, float]:
    """rho = exp(-H/T)/Z and F = -T log Z, with the spectrum shifted for stability."""
    shift = np.linalg.eigvalsh(h)[0]
    boltzmann = scipy.linalg.expm(-(h - shift * np.eye(len(h))) / temperature)
    z = np.trace(boltzmann).real
    return boltzmann / z, float(shift - temperature * np.log(z))


@pytest.mark.parametrize(("n", "temperature"), [(1, 0.3), (2, 1.0), (3, 0.7), (4, 2.5), (5, 0.05)])
def test_gibbs_state_matches_expm(n: int, temperature: float, random_model, random_point, model_dense):
    model = random_model(n, seed=n)
    x, theta = random_point(model, seed=n)
    h = model_dense(model, x, theta)
    rho_ref, free_ref = expm_gibbs(h, temperature)
    state = gibbs_state(model.compiled, model.compiled.coefficients(x, theta), temperature)
    assert state.temperature == temperature
    assert state.free_energy == pytest.approx(free_ref, abs=THERMAL_TOL)
    assert state.weights.sum() == pytest.approx(1.0, abs=THERMAL_TOL)
    assert np.all(np.diff(state.weights) <= 0)  # ascending energies, descending weights
    np.testing.assert_allclose(state.weights, np.sort(np.linalg.eigvalsh(rho_ref))[::-1], atol=THERMAL_TOL)
    np.testing.assert_allclose(state.density_matrix(), rho_ref, atol=THERMAL_TOL)
    np.testing.assert_allclose(state.energies, np.linalg.eigvalsh(h), atol=THERMAL_TOL)


def test_low_temperature_approaches_ground_state(random_model, random_point, model_dense) -> None:
    model = random_model(3, seed=2)
    x, theta = random_point(model, seed=2)
    energies, vectors = np.linalg.eigh(model_dense(model, x, theta))
    state = gibbs_state(model.compiled, model.compiled.coefficients(x, theta), 1e-3)
    assert state.weights[0] == pytest.approx(1.0, abs=THERMAL_TOL)
    assert state.free_energy == pytest.approx(energies[0], abs=THERMAL_TOL)
    ground = np.outer(vectors[:, 0], vectors[:, 0].conj())
    np.testing.assert_allclose(state.density_matrix(), ground, atol=THERMAL_TOL)


def test_high_temperature_free_energy() -> None:
    """H = 0 on n qubits: rho = I/2^n and F = -T n log 2."""
    from qep_analog.model.pauli import pauli_sum
    from qep_analog.model.qep_model import QEPModel

    model = QEPModel(
        n_qubits=3, trainable={"t": pauli_sum([(1.0, "X0")])}, outputs={"m": pauli_sum([(1.0, "Z2")])}
    )
    state = gibbs_state(model.compiled, model.compiled.coefficients([], [0.0]), 2.0)
    assert state.free_energy == pytest.approx(-2.0 * 3 * np.log(2.0), abs=THERMAL_TOL)
    np.testing.assert_allclose(state.density_matrix(), np.eye(8) / 8, atol=THERMAL_TOL)


@pytest.mark.parametrize("n", [2, 4])
def test_thermal_strings(n: int, random_model, random_point, model_dense, dense_reference) -> None:
    model = random_model(n, seed=10 + n)
    x, theta = random_point(model, seed=n)
    rho_ref, _ = expm_gibbs(model_dense(model, x, theta), 0.8)
    state = gibbs_state(model.compiled, model.compiled.coefficients(x, theta), 0.8)
    table = model.compiled.table
    expected = [np.trace(rho_ref @ dense_reference(PauliSum({s: 1.0}), n)).real for s in table.strings]
    np.testing.assert_allclose(thermal_strings(model.compiled, state), expected, atol=THERMAL_TOL)


@pytest.mark.parametrize("temperature", [0.0, -0.5, float("nan"), float("inf")])
def test_bad_temperature(temperature: float, random_model) -> None:
    model = random_model(2, seed=0)
    coefficients = model.compiled.coefficients(np.zeros(2), np.zeros(3))
    with pytest.raises(ConfigError, match="temperature"):
        gibbs_state(model.compiled, coefficients, temperature)


def test_too_many_qubits() -> None:
    from qep_analog.model.pauli import pauli_sum
    from qep_analog.model.qep_model import QEPModel

    n = MAX_THERMAL_QUBITS + 1
    model = QEPModel(
        n_qubits=n, trainable={"t": pauli_sum([(1.0, "X0")])}, outputs={"m": pauli_sum([(1.0, "Z1")])}
    )
    with pytest.raises(ConfigError, match=f"{n} qubits"):
        gibbs_state(model.compiled, model.compiled.coefficients([], [1.0]), 1.0)


def test_equilibrium_thermal_prepare(random_model, random_point, model_dense) -> None:
    model = random_model(3, seed=4)
    x, theta = random_point(model, seed=4)
    eq = Equilibrium(model, temperature=0.6)
    assert eq.thermal
    prepared = eq.prepare(np.stack([x, -x]), theta, with_gap=True)
    assert prepared.strings.shape == (2, len(model.compiled.table.strings))
    for b, xb in enumerate((x, -x)):
        h = model_dense(model, xb, theta)
        _, free_ref = expm_gibbs(h, 0.6)
        energies = np.linalg.eigvalsh(h)
        assert prepared.energies[b] == pytest.approx(free_ref, abs=THERMAL_TOL)
        assert prepared.gaps[b] == pytest.approx(energies[1] - energies[0], abs=THERMAL_TOL)


def test_equilibrium_zero_temperature_is_ground_state(random_model, random_point, model_dense):
    model = random_model(3, seed=4)
    x, theta = random_point(model, seed=4)
    eq = Equilibrium(model, temperature=0.0)
    assert not eq.thermal
    prepared = eq.prepare(x, theta)
    assert prepared.energies[0] == pytest.approx(
        np.linalg.eigvalsh(model_dense(model, x, theta))[0], abs=1e-9
    )


@pytest.mark.parametrize("temperature", [-1.0, float("nan"), float("inf")])
def test_equilibrium_bad_temperature(temperature: float, random_model) -> None:
    with pytest.raises(ConfigError, match="temperature"):
        Equilibrium(random_model(2, seed=0), temperature=temperature)
