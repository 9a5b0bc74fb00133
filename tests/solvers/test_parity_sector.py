"""States prepared in one sector of the parity P = Π_q Z_q (a model's ``parity``): the exact and
MPS solvers against dense diagonalisation of the sector's block, on models whose lowest state lies in
the other sector."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qep_analog.errors import ConfigError, ModelFileError
from qep_analog.model.model_file import model_from_document, model_to_document
from qep_analog.model.pauli import parity_signs, pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.gradients import exact_gradient, qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.solvers.mps import MPSEquilibrium, MPSOptions

N = 5


def ising(parity: int | None, n: int = N, seed: int = 0) -> QEPModel:
    """A long-range XX chain in random fields (every term keeps P): inputs g (a global field),
    trainable fields and couplings, output Z on the last qubit."""
    rng = np.random.default_rng(seed)
    fixed = pauli_sum(
        [(float(rng.normal()), f"X{i} X{j}") for i in range(n) for j in range(i + 1, n)]
        + [(float(rng.normal()), f"Y{i} Y{i + 1}") for i in range(n - 1)]
    )
    return QEPModel(
        n_qubits=n,
        fixed=fixed,
        inputs={"g": pauli_sum([(1.0, f"Z{i}") for i in range(n)])},
        trainable={
            **{f"h{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)},
            "j": pauli_sum([(1.0, "X0 X1")]),
        },
        outputs={"m": pauli_sum([(1.0, f"Z{n - 1}")])},
        parity=parity,
    )


def dense_sector(model: QEPModel, coeffs: np.ndarray, parity: int) -> tuple[float, float, np.ndarray]:
    """Lowest energy, in-sector gap and lowest state (full space) of the sector's block."""
    h = model.compiled.table.dense(coeffs)
    keep = np.flatnonzero(parity_signs(model.n_qubits) == parity)
    values, vectors = np.linalg.eigh(h[np.ix_(keep, keep)])
    state = np.zeros(len(h), dtype=complex)
    state[keep] = vectors[:, 0]
    return float(values[0]), float(values[1] - values[0]), state


@pytest.mark.parametrize("parity", [1, -1])
def test_the_exact_solver_prepares_the_lowest_state_of_the_sector(parity: int) -> None:
    model = ising(parity)
    eq = Equilibrium(model)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 1))
    theta = rng.normal(size=(6, N + 1))
    prepared = eq.prepare(x, theta, with_gap=True)
    coeffs = eq.coefficients(x, theta, None)
    free = Equilibrium(dataclasses.replace(model, parity=None)).prepare(x, theta)
    for b in range(len(x)):
        energy, gap, state = dense_sector(model, coeffs[b], parity)
        assert prepared.energies[b] == pytest.approx(energy, abs=1e-8)
        assert prepared.gaps is not None and prepared.gaps[b] == pytest.approx(gap, abs=1e-6)
        assert abs(np.vdot(state, prepared.states[b])) == pytest.approx(1.0, abs=1e-8)
        signs = parity_signs(N)
        assert np.sum(np.abs(prepared.states[b][signs != parity]) ** 2) < 1e-20
    # the batch has members whose lowest state overall is in the other sector
    assert np.max(prepared.energies - free.energies) > 1e-3


def test_the_sector_gradient_is_the_sector_linear_response() -> None:
    """QEP's symmetric quotient at small β against the exact linear response of the sector's state,
    and that response against a central difference of dense sector ground states."""
    model = ising(-1)
    eq = Equilibrium(model)
    rng = np.random.default_rng(2)
    x, theta = rng.normal(size=(3, 1)), rng.normal(size=(3, N + 1))
    eps = rng.normal(size=(3, 1))
    exact = exact_gradient(eq, x, theta, eps)
    assert np.allclose(qep_gradient(eq, x, theta, eps, 1e-4), exact, atol=1e-6)
    coeffs = eq.coefficients(x, theta, eps * 1e-5)
    minus = eq.coefficients(x, theta, -eps * 1e-5)
    compiled = model.compiled
    for b in range(3):
        moved = [dense_sector(model, c[b], -1)[2] for c in (coeffs, minus)]
        values = [compiled.table.expectations(s[None, :]) for s in moved]
        generators = [compiled.generator_values(v)[0] for v in values]
        assert np.allclose((generators[0] - generators[1]) / 2e-5, exact[b], atol=1e-5)


def test_mps_keeps_the_sector_as_the_exact_solver_does() -> None:
    model = ising(-1, n=6, seed=3)
    rng = np.random.default_rng(3)
    x, theta = rng.normal(size=(2, 1)), rng.normal(size=(2, 7))
    exact = Equilibrium(model).prepare(x, theta, with_gap=True)
    mps = MPSEquilibrium(model, MPSOptions(chi_max=64)).prepare(x, theta, with_gap=True)
    assert np.allclose(mps.energies, exact.energies, atol=1e-7)
    assert np.allclose(mps.strings, exact.strings, atol=1e-6)
    assert mps.gaps is not None and exact.gaps is not None
    assert np.allclose(mps.gaps, exact.gaps, atol=1e-5)


def test_a_parity_that_a_term_breaks_is_one_line() -> None:
    with pytest.raises(ModelFileError, match=r"parity \+1 is not conserved: trainable.t term 'X0'"):
        QEPModel(
            n_qubits=2,
            trainable={"t": pauli_sum([(1.0, "X0")])},
            outputs={"m": pauli_sum([(1.0, "Z1")])},
            parity=1,
        )
    with pytest.raises(ModelFileError, match="parity 2 must be"):
        dataclasses.replace(ising(None), parity=2)
    with pytest.raises(ConfigError, match=r"temperature 0\.5 with parity -1"):
        Equilibrium(ising(-1), temperature=0.5)


def test_the_model_file_carries_the_parity() -> None:
    model = ising(-1)
    document = model_to_document(model)
    assert document["parity"] == -1
    assert model_from_document(document).parity == -1
    assert "parity" not in model_to_document(ising(None))
    assert model_from_document(model_to_document(ising(None))).parity is None
