"""Standard models (qep_analog.model.standard)."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

from qep_analog.errors import ConfigError
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.model.standard import (
    chain_bonds,
    cluster_ising,
    cluster_ising_terms,
    is_coupling,
    phase_sensor,
    transverse_field_ising,
)
from qep_analog.solvers.exact import ExactSolver

#: Exact (rounding-level) agreement of dense matrices.
MATRIX_TOL = 1e-12
#: Ground energies: Lanczos (residual 1e-10) against dense diagonalisation.
ENERGY_TOL = 1e-9


def test_phase_sensor_counts() -> None:
    model = phase_sensor()
    assert model.n_qubits == 10
    assert len(model.trainable) == 51
    assert sum(is_coupling(name) for name in model.trainable) == 36
    assert model.output_names == ["P00", "P01", "P11"]
    assert model.input_names == ["g_zxz", "g_zz", "g_x"]


@pytest.mark.parametrize(("letters", "count"), [("Z", 27), ("XZ", 39), ("XYZ", 51)])
def test_phase_sensor_system_operators(letters: str, count: int) -> None:
    model = phase_sensor(system_operators=letters)
    assert len(model.trainable) == count
    couplings = [name for name in model.trainable if is_coupling(name)]
    assert len(couplings) == count - 15
    # each coupling is one product of a chain Pauli on site 0 or 1 with a sensor Pauli
    for name in couplings:
        (string,) = model.trainable[name]
        (site, sigma), (sensor, _) = string.factors
        assert site in (0, 1) and sigma in letters and sensor in (8, 9)


def test_phase_sensor_names() -> None:
    model = phase_sensor()
    assert model.trainable["c_Y1_ZB"] == pauli_sum([(1.0, "Y1 Z9")])
    assert model.trainable["s_XA"] == pauli_sum([(1.0, "X8")])
    assert model.trainable["s_YA_ZB"] == pauli_sum([(1.0, "Y8 Z9")])


def test_phase_sensor_outputs_complete_with_p10(dense_reference) -> None:
    model = phase_sensor()
    n = model.n_qubits
    ket0, ket1 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    # P10: sensor A (qubit 8) in |1>, sensor B (qubit 9) in |0>, built independently
    p10 = reduce(np.kron, [np.eye(2)] * 8 + [ket1, ket0])
    total = sum(dense_reference(op, n) for op in model.outputs.values()) + p10
    np.testing.assert_allclose(total, np.eye(2**n), atol=MATRIX_TOL)
    # and each output is the projector it names
    projectors = {"P00": (ket0, ket0), "P01": (ket0, ket1), "P11": (ket1, ket1)}
    for name, (pa, pb) in projectors.items():
        expected = reduce(np.kron, [np.eye(2)] * 8 + [pa, pb])
        np.testing.assert_allclose(dense_reference(model.outputs[name], n), expected, atol=MATRIX_TOL)


@pytest.mark.parametrize(
    "arguments",
    [
        {"system_operators": "ZZ"},
        {"system_operators": "W"},
        {"system_operators": ""},
        {"sites": (0, 8)},
        {"sites": (1, 1)},
        {"sites": ()},
    ],
)
def test_phase_sensor_bad_arguments(arguments) -> None:
    with pytest.raises(ConfigError, match="phase sensor"):
        phase_sensor(**arguments)


@pytest.mark.parametrize("n", [3, 4, 8])
def test_cluster_ising_term_counts(n: int) -> None:
    periodic = cluster_ising_terms(n, periodic=True)
    assert (len(periodic["zxz"]), len(periodic["zz"]), len(periodic["x"])) == (n, n, n)
    open_chain = cluster_ising_terms(n, periodic=False)
    assert (len(open_chain["zxz"]), len(open_chain["zz"]), len(open_chain["x"])) == (n - 2, n - 1, n)


def test_cluster_ising_wraps_around() -> None:
    terms = cluster_ising_terms(5, periodic=True)
    assert terms["zxz"] == pauli_sum([(1.0, f"Z{a} X{b} Z{c}") for a, b, c in chain_bonds(5, 3, True)])
    # the bonds that cross the boundary: Z3 X4 Z0, Z4 X0 Z1 and Z4 Z0
    zxz_labels = {s.label for s in terms["zxz"]}
    assert {"Z0 Z3 X4", "X0 Z1 Z4"} <= zxz_labels
    assert "Z0 Z4" in {s.label for s in terms["zz"]}
    assert chain_bonds(4, 2, periodic=False) == [(0, 1), (1, 2), (2, 3)]


def test_cluster_ising_too_short() -> None:
    with pytest.raises(ConfigError, match="n = 2"):
        cluster_ising_terms(2, periodic=False)


def test_cluster_ising_model_signs() -> None:
    model = cluster_ising(4, periodic=False)
    terms = cluster_ising_terms(4, periodic=False)
    assert model.inputs["g_zxz"] == terms["zxz"]
    assert model.inputs["g_zz"] == PauliSum({s: -1.0 for s in terms["zz"]})
    assert model.inputs["g_x"] == PauliSum({s: -1.0 for s in terms["x"]})


def test_transverse_field_ising_two_sites(dense_reference) -> None:
    j, h = 1.0, 0.7
    model = transverse_field_ising(2, periodic=False)
    assert model.parameter_names == ["J", "h"]
    dense = model.compiled.table.dense(model.compiled.coefficients([], [j, h]))
    reference = j * dense_reference(pauli_sum([(-1.0, "Z0 Z1")]), 2) + h * dense_reference(
        pauli_sum([(-1.0, "X0"), (-1.0, "X1")]), 2
    )
    np.testing.assert_allclose(dense, reference, atol=MATRIX_TOL)
    e_dense = np.linalg.eigvalsh(reference)[0]
    # even-parity sector [[-J, -2h], [-2h, J]]
    assert e_dense == pytest.approx(-np.sqrt(j**2 + 4 * h**2), abs=ENERGY_TOL)
    solver = ExactSolver(model.compiled)
    ground = solver.solve(model.compiled.coefficients([], [j, h]))
    assert ground.energies[0] == pytest.approx(e_dense, abs=ENERGY_TOL)


def test_transverse_field_ising_outputs() -> None:
    model = transverse_field_ising(4, periodic=True)
    assert len(model.trainable["J"]) == 4
    assert model.outputs["mz"] == pauli_sum([(0.25, f"Z{j}") for j in range(4)])
    with pytest.raises(ConfigError):
        transverse_field_ising(1)
