"""Compiled Pauli operators (qep_analog.model.operators) against the Kronecker reference."""

from __future__ import annotations

import numpy as np
import pytest

from qep_analog.model import operators
from qep_analog.model.operators import OperatorTable
from qep_analog.model.pauli import PauliString, PauliSum, parse_operator

#: Agreement of compiled and Kronecker-built matrices and expectation values (exact arithmetic).
OPERATOR_TOL = 1e-12


def random_strings(rng: np.random.Generator, n: int, count: int) -> list[PauliString]:
    """Distinct random strings (identity included) with random weights on n qubits."""
    strings = {PauliString()}
    while len(strings) < min(count, 4**n):
        weight = int(rng.integers(1, n + 1))
        qubits = sorted(rng.choice(n, size=weight, replace=False).tolist())
        strings.add(PauliString(tuple((int(q), str(rng.choice(list("XYZ")))) for q in qubits)))
    return sorted(strings)


def random_state(rng: np.random.Generator, dim: int, batch: int | None = None) -> np.ndarray:
    shape = (dim,) if batch is None else (batch, dim)
    psi = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    return psi / np.linalg.norm(psi, axis=-1, keepdims=True)


def table_case(n: int, seed: int) -> tuple[OperatorTable, np.ndarray, list[PauliString]]:
    rng = np.random.default_rng(seed)
    strings = random_strings(rng, n, 3 * n + 2)
    return OperatorTable(n, strings), rng.normal(size=len(strings)), strings


def reference(strings, coefficients, n, dense_reference) -> np.ndarray:
    return dense_reference(PauliSum(dict(zip(strings, coefficients, strict=True))), n)


@pytest.fixture(params=[False, True], ids=["cached", "on-demand"])
def on_demand(request, monkeypatch) -> bool:
    """Run each test with the cached string table and with string values computed on demand."""
    if request.param:
        monkeypatch.setattr(operators, "TABLE_ENTRY_LIMIT", 0)
    return bool(request.param)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_dense_and_sparse(n: int, on_demand: bool, dense_reference) -> None:
    table, coefficients, strings = table_case(n, seed=n)
    assert (table._table is None) == on_demand
    expected = reference(strings, coefficients, n, dense_reference)
    np.testing.assert_allclose(table.dense(coefficients), expected, atol=OPERATOR_TOL)
    sparse = table.sparse(coefficients)
    assert sparse.shape == (2**n, 2**n)
    np.testing.assert_allclose(sparse.toarray(), expected, atol=OPERATOR_TOL)


@pytest.mark.parametrize("threaded", [False, True], ids=["serial", "threaded"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_apply(n: int, on_demand: bool, threaded: bool, monkeypatch, dense_reference) -> None:
    if threaded:
        # force the threaded product for large state vectors, where there is one
        monkeypatch.setattr(operators, "PARALLEL_DIM", 0, raising=False)
    table, coefficients, strings = table_case(n, seed=10 + n)
    rng = np.random.default_rng(n)
    psi = random_state(rng, 2**n)
    expected = reference(strings, coefficients, n, dense_reference) @ psi
    out = table.apply(table.diagonals(coefficients), psi)
    np.testing.assert_allclose(out, expected, atol=OPERATOR_TOL)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_batched_diagonals(n: int, dense_reference) -> None:
    table, _, strings = table_case(n, seed=20 + n)
    rng = np.random.default_rng(n)
    batch = rng.normal(size=(3, len(strings)))
    diagonals = table.diagonals(batch)
    assert diagonals.shape == (3, 2**n, table.n_groups)
    psi = random_state(rng, 2**n)
    for b in range(3):
        expected = reference(strings, batch[b], n, dense_reference) @ psi
        np.testing.assert_allclose(table.apply(diagonals[b], psi), expected, atol=OPERATOR_TOL)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_expectations(n: int, on_demand: bool, dense_reference) -> None:
    table, _, strings = table_case(n, seed=30 + n)
    rng = np.random.default_rng(n)
    states = random_state(rng, 2**n, batch=4)
    mats = [dense_reference(PauliSum({s: 1.0}), n) for s in strings]
    expected = np.array([[np.vdot(psi, m @ psi).real for m in mats] for psi in states])
    np.testing.assert_allclose(table.expectations(states), expected, atol=OPERATOR_TOL)
    np.testing.assert_allclose(table.expectations(states[1]), expected[1], atol=OPERATOR_TOL)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_transition_expectations(n: int, on_demand: bool, dense_reference) -> None:
    table, _, strings = table_case(n, seed=40 + n)
    rng = np.random.default_rng(n)
    bras = random_state(rng, 2**n, batch=3)
    kets = random_state(rng, 2**n, batch=3)
    mats = [dense_reference(PauliSum({s: 1.0}), n) for s in strings]
    expected = np.array(
        [[np.vdot(bra, m @ ket).real for m in mats] for bra, ket in zip(bras, kets, strict=True)]
    )
    np.testing.assert_allclose(table.expectations(bras, kets), expected, atol=OPERATOR_TOL)
    np.testing.assert_allclose(table.expectations(bras[0], kets[0]), expected[0], atol=OPERATOR_TOL)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_trace_with(n: int, on_demand: bool, dense_reference) -> None:
    table, _, strings = table_case(n, seed=50 + n)
    rng = np.random.default_rng(n)
    a = rng.normal(size=(2**n, 2**n)) + 1j * rng.normal(size=(2**n, 2**n))
    rho = a @ a.conj().T
    rho /= np.trace(rho).real
    expected = [np.trace(rho @ dense_reference(PauliSum({s: 1.0}), n)).real for s in strings]
    np.testing.assert_allclose(table.trace_with(rho), expected, atol=OPERATOR_TOL)


@pytest.mark.parametrize(
    ("labels", "real"),
    [
        (["Z0 Z1", "X0"], True),
        (["Y0 Y1", "X2"], True),
        (["Y0 Y1 Y2 Y3"], True),
        (["Y0"], False),
        (["Z0", "X1 Y2"], False),
        (["Y0 Y1 Y2"], False),
    ],
)
def test_real_dtype_iff_even_number_of_y(labels, real: bool, dense_reference) -> None:
    strings = [next(iter(parse_operator(label))) for label in labels]
    table = OperatorTable(4, strings)
    assert table.real is real
    assert table.dtype == (np.float64 if real else np.complex128)
    coefficients = np.linspace(0.5, 1.5, len(strings))
    dense = table.dense(coefficients)
    assert np.isrealobj(dense) is real
    expected = reference(strings, coefficients, 4, dense_reference)
    np.testing.assert_allclose(dense, expected, atol=OPERATOR_TOL)
    # the reference of a real table is indeed real
    assert bool(np.abs(expected.imag).max() == 0.0) is real


def test_basis_index_convention() -> None:
    """|b0 b1 ...> has index sum_q b_q 2^(n-1-q): qubit 0 is the most significant bit."""
    z0 = OperatorTable(2, [PauliString(((0, "Z"),))])
    np.testing.assert_array_equal(z0.dense([1.0]), np.diag([1.0, 1.0, -1.0, -1.0]))
    z1 = OperatorTable(2, [PauliString(((1, "Z"),))])
    np.testing.assert_array_equal(z1.dense([1.0]), np.diag([1.0, -1.0, 1.0, -1.0]))
    # X0 on |00> (index 0) gives |10> (index 2)
    x0 = OperatorTable(2, [PauliString(((0, "X"),))])
    psi = np.zeros(4)
    psi[0] = 1.0
    np.testing.assert_array_equal(x0.dense([1.0]) @ psi, [0.0, 0.0, 1.0, 0.0])
    # N2 on 3 qubits is 1 exactly on the basis states with b_2 = 1: indices 1, 3, 5, 7
    n2 = parse_operator("N2")
    table = OperatorTable(3, list(n2))
    diagonal = np.diag(table.dense(np.array(list(n2.values()))))
    np.testing.assert_array_equal(diagonal, [0, 1, 0, 1, 0, 1, 0, 1])


def test_y_phase_convention() -> None:
    """Y = [[0, -i], [i, 0]]: Y|0> = i|1>."""
    y = OperatorTable(1, [PauliString(((0, "Y"),))])
    np.testing.assert_array_equal(y.dense([1.0]), np.array([[0, -1j], [1j, 0]]))


def test_grouping_by_flip_mask() -> None:
    labels = ["Z0", "Z1", "X0", "Y0 Z1", "X0 X1", "Y0 Y1"]
    table = OperatorTable(2, [next(iter(parse_operator(label))) for label in labels])
    assert sorted(table.masks.tolist()) == [0, 2, 3]
    assert table.n_groups == 3


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="n_qubits"):
        OperatorTable(0, [])
    with pytest.raises(ValueError, match="beyond"):
        OperatorTable(2, [PauliString(((2, "X"),))])
