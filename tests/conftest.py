# ruff: noqa: E402  (BLAS threads are limited before numpy is imported)
"""Shared fixtures: random QEP models and an independent, Kronecker-product dense reference."""

from __future__ import annotations

import os

# The test matrices are small (at most 1024 x 1024): threaded BLAS only adds overhead there, and on a
# busy machine its spinning threads slow dense diagonalisation down a hundredfold. Set before numpy
# loads OpenBLAS; an explicit setting in the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from collections.abc import Callable
from functools import reduce

import numpy as np
import pytest

from qep_analog.model.pauli import PauliString, PauliSum
from qep_analog.model.qep_model import QEPModel


@pytest.fixture(autouse=True)
def _isolated_library(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's calibration history or profile search path."""
    monkeypatch.setenv("QEP_ANALOG_HISTORY", str(tmp_path_factory.getbasetemp() / "history-unused"))
    monkeypatch.delenv("QEP_ANALOG_PATH", raising=False)


#: Single-qubit matrices in the convention |0> = (1, 0), Z|0> = +|0>.
PAULI_MATRICES = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def kron_string(string: PauliString, n: int) -> np.ndarray:
    """The matrix of one Pauli string on ``n`` qubits, qubit 0 the leftmost Kronecker factor."""
    letters = dict((q, letter) for q, letter in string.factors)
    return reduce(np.kron, [PAULI_MATRICES[letters.get(q, "I")] for q in range(n)])


def kron_sum(pauli_sum: PauliSum, n: int) -> np.ndarray:
    """Dense matrix of a Pauli sum built from 2x2 matrices with ``numpy.kron``."""
    out = np.zeros((2**n, 2**n), dtype=complex)
    for string, coefficient in pauli_sum.items():
        out += coefficient * kron_string(string, n)
    return out


def random_string(rng: np.random.Generator, n: int, weight: int) -> PauliString:
    """A random Pauli string of ``weight`` factors on distinct qubits."""
    qubits = sorted(rng.choice(n, size=min(weight, n), replace=False).tolist())
    return PauliString(tuple((int(q), str(rng.choice(list("XYZ")))) for q in qubits))


def random_sum(rng: np.random.Generator, n: int, n_terms: int, max_weight: int = 3) -> PauliSum:
    """A random real combination of ``n_terms`` random Pauli strings."""
    terms: dict[PauliString, float] = {}
    for _ in range(n_terms):
        string = random_string(rng, n, int(rng.integers(1, max_weight + 1)))
        terms[string] = terms.get(string, 0.0) + float(rng.normal())
    return PauliSum(terms)


def build_random_model(
    n_qubits: int,
    seed: int,
    *,
    n_trainable: int = 3,
    n_inputs: int = 2,
    n_outputs: int = 2,
) -> QEPModel:
    """A generic model: fields in X, Y and Z on every qubit (so no qubit is idle and H is complex),
    random two- and three-qubit couplings, and random trainable, input and output terms."""
    rng = np.random.default_rng(seed)
    n = n_qubits
    fixed: dict[PauliString, float] = {}
    for q in range(n):
        for letter in "XYZ":
            fixed[PauliString(((q, letter),))] = float(rng.uniform(0.3, 1.0) * rng.choice([-1, 1]))
    for _ in range(2 * n):
        string = random_string(rng, n, int(rng.integers(2, 4)))
        fixed[string] = fixed.get(string, 0.0) + float(rng.normal(scale=0.7))
    trainable = {f"t{j}": random_sum(rng, n, int(rng.integers(1, 3))) for j in range(n_trainable)}
    inputs = {f"x{i}": random_sum(rng, n, int(rng.integers(1, 3))) for i in range(n_inputs)}
    outputs = {f"o{k}": random_sum(rng, n, int(rng.integers(1, 3))) for k in range(n_outputs)}
    return QEPModel(n_qubits=n, fixed=PauliSum(fixed), inputs=inputs, trainable=trainable, outputs=outputs)


def model_hamiltonian(
    model: QEPModel, x: np.ndarray, theta: np.ndarray, nu: np.ndarray | None = None
) -> np.ndarray:
    """H(x, theta, nu) assembled from the model's Pauli sums with the Kronecker reference."""
    n = model.n_qubits
    nu = np.zeros(len(model.outputs)) if nu is None else nu
    h = kron_sum(model.fixed, n)
    for coefficients, section in ((x, model.inputs), (theta, model.trainable), (nu, model.outputs)):
        for value, operator in zip(coefficients, section.values(), strict=True):
            h = h + value * kron_sum(operator, n)
    return h


@pytest.fixture
def dense_reference() -> Callable[[PauliSum, int], np.ndarray]:
    """``dense_reference(pauli_sum, n)``: the dense matrix built with ``numpy.kron``."""
    return kron_sum


@pytest.fixture
def random_model() -> Callable[..., QEPModel]:
    """``random_model(n_qubits, seed, n_trainable=3, n_inputs=2, n_outputs=2)``."""
    return build_random_model


@pytest.fixture
def random_point() -> Callable[[QEPModel, int], tuple[np.ndarray, np.ndarray]]:
    """``random_point(model, seed)``: random inputs x and parameters theta for a model."""

    def draw(model: QEPModel, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        return rng.uniform(-1, 1, len(model.inputs)), rng.uniform(-1, 1, len(model.trainable))

    return draw


@pytest.fixture
def model_dense() -> Callable[..., np.ndarray]:
    """``model_dense(model, x, theta, nu=None)``: H as a dense Kronecker-built matrix."""
    return model_hamiltonian
