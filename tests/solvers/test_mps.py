"""MPS ground states (qep_analog.solvers.mps) against the exact solver at N <= 14."""

from __future__ import annotations

import numpy as np
import pytest

from qep_analog.errors import ConfigError, PreconditionError
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.model.standard import cluster_ising, phase_sensor
from qep_analog.qep.gradients import qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.solvers.mps import MPSEquilibrium, MPSOptions, bandwidth_order

#: Issue 7: MPS against exact energies ...
ENERGY_TOL = 1e-8
#: ... and expectation values of every string.
STRING_TOL = 1e-6
#: Bond dimension large enough to be exact at N <= 14 (2^7).
EXACT_OPTIONS = MPSOptions(chi_max=128, energy_tol=1e-12)


def long_range_model(n: int) -> QEPModel:
    """An ion-chain-like model: power-law X X couplings between every pair, fields, a Y Y term."""
    couplings = [(1.0 / abs(i - j) ** 1.5, f"X{i} X{j}") for i in range(n) for j in range(i + 1, n)]
    return QEPModel(
        n_qubits=n,
        fixed=pauli_sum([*couplings, (0.3, "Y0 Y1")]),
        inputs={"b": pauli_sum((1.0, f"Z{j}") for j in range(n))},
        trainable={"t0": pauli_sum([(1.0, "Z0")]), "t1": pauli_sum([(1.0, f"X{n - 2} Z{n - 1}")])},
        outputs={"m": pauli_sum([(1.0 / n, f"Z{j}") for j in range(n)])},
    )


def compare(model: QEPModel, x: np.ndarray, theta: np.ndarray, with_gap: bool = False) -> None:
    exact = Equilibrium(model, tol=1e-11).prepare(x, theta, with_gap=with_gap)
    mps = MPSEquilibrium(model, EXACT_OPTIONS).prepare(x, theta, with_gap=with_gap)
    np.testing.assert_allclose(mps.energies, exact.energies, rtol=0, atol=ENERGY_TOL)
    np.testing.assert_allclose(mps.strings, exact.strings, rtol=0, atol=STRING_TOL)
    if with_gap:
        assert exact.gaps is not None and mps.gaps is not None
        np.testing.assert_allclose(mps.gaps, exact.gaps, rtol=0, atol=1e-6)


def test_phase_sensor_periodic_chain_with_cluster_terms_and_gaps() -> None:
    # 6-site periodic cluster-Ising chain (3-body terms, wrap-around) + sensor: 8 qubits
    model = phase_sensor(6)
    rng = np.random.default_rng(1)
    x = np.array([[1.0, 1.5, 1.5], [3.0, 0.5, 0.5]])
    compare(model, x, rng.uniform(-0.3, 0.3, 51), with_gap=True)


def test_open_cluster_ising_chain_14_sites() -> None:
    compare(cluster_ising(14, periodic=False), np.array([[0.5, 0.6, 2.0]]), np.array([0.2]))


@pytest.mark.slow  # a long check; the default suite keeps a faster one of the same path
def test_long_range_couplings_12_sites() -> None:
    compare(long_range_model(12), np.array([[0.7], [1.5]]), np.array([0.4, -0.3]))


def test_qep_gradient_and_warm_starts_match_exact() -> None:
    model = phase_sensor(6)
    rng = np.random.default_rng(2)
    theta = rng.uniform(-0.3, 0.3, 51)
    x, eps = np.array([[2.0, 1.0, 1.0]]), np.array([[1.0, -0.5, 0.2]])
    exact_eq, mps_eq = Equilibrium(model, tol=1e-11), MPSEquilibrium(model, EXACT_OPTIONS)
    free = mps_eq.prepare(x, theta)
    g_exact = qep_gradient(exact_eq, x, theta, eps, 1e-2, warn_small_gap=False)
    g_mps = qep_gradient(mps_eq, x, theta, eps, 1e-2, free=free, warn_small_gap=False)
    np.testing.assert_allclose(g_mps, g_exact, rtol=0, atol=STRING_TOL)
    # the nudged states start from the free ones: fewer sweeps than the cold start
    nudged = mps_eq.prepare(x, theta, 1e-2 * eps, start=free.states)
    assert nudged.states[0].sweeps < free.states[0].sweeps  # type: ignore[union-attr]


def test_bandwidth_order_folds_a_ring() -> None:
    model = cluster_ising(10, periodic=True)
    eq = MPSEquilibrium(model)
    assert sorted(eq.order) == list(range(10))
    assert eq.range <= 5  # ZXZ on a ring: at most 6 folded positions (9 in the natural order)
    assert sorted(bandwidth_order(3, [])) == [0, 1, 2]


def test_degenerate_ground_state_is_refused() -> None:
    model = QEPModel(
        n_qubits=3,
        fixed=pauli_sum([(-1.0, "Z0 Z1"), (-1.0, "Z1 Z2")]),
        trainable={"a": pauli_sum([(1.0, "X0 X1")])},
        outputs={"m": pauli_sum([(1.0, "Z0")])},
    )
    eq = MPSEquilibrium(model, EXACT_OPTIONS)
    with pytest.raises(PreconditionError, match="degenerate"):
        eq.prepare(np.zeros((1, 0)), np.array([0.0]), with_gap=True)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="chi_max = 0"):
        MPSOptions(chi_max=0)
    with pytest.raises(ConfigError, match="unknown key 'chi'"):
        MPSOptions.from_mapping({"chi": 3})
    with pytest.raises(ConfigError, match="not a permutation"):
        MPSEquilibrium(cluster_ising(4), MPSOptions(order=(0, 1, 2, 2)))
    with pytest.raises(ConfigError, match="at least 3"):
        MPSEquilibrium(
            QEPModel(
                n_qubits=2,
                trainable={"a": pauli_sum([(1.0, "X0")])},
                outputs={"m": pauli_sum([(1.0, "Z1")])},
            )
        )
