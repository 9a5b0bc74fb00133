"""Exact ground states (qep_analog.solvers.exact, qep_analog.solvers.lanczos) against dense eigh."""

from __future__ import annotations

import numpy as np
import pytest

from qep_analog.errors import ConfigError, PreconditionError
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.model.standard import transverse_field_ising
from qep_analog.solvers import exact, lanczos
from qep_analog.solvers.exact import ExactSolver
from qep_analog.solvers.lanczos import batched_lanczos

#: Ground energies and state overlaps from Lanczos (residual 1e-10) against numpy.linalg.eigh.
EIGEN_TOL = 1e-9
#: Gaps from the deflated solve (residual 1e-9) against eigh.
GAP_TOL = 1e-8
#: Linear response by conjugate gradients against the sum over states.
RESPONSE_TOL = 1e-8


def batch_point(model: QEPModel, seed: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (batch, len(model.inputs))), rng.uniform(-1, 1, len(model.trainable))


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 8])
def test_ground_states_match_eigh(n: int, random_model, model_dense) -> None:
    model = random_model(n, seed=n)
    x, theta = batch_point(model, seed=n, batch=3)
    solver = ExactSolver(model.compiled)
    ground = solver.solve(model.compiled.coefficients(x, theta))
    assert ground.states.shape == (3, 2**n)
    assert ground.gaps is None
    for b in range(3):
        h = model_dense(model, x[b], theta)
        energies, vectors = np.linalg.eigh(h)
        assert energies[1] - energies[0] > 0.1  # the test case is gapped
        assert ground.energies[b] == pytest.approx(energies[0], abs=EIGEN_TOL)
        assert np.linalg.norm(ground.states[b]) == pytest.approx(1.0, abs=EIGEN_TOL)
        assert abs(np.vdot(ground.states[b], vectors[:, 0])) == pytest.approx(1.0, abs=EIGEN_TOL)
        assert ground.residuals[b] < solver.tol
        residual = h @ ground.states[b] - ground.energies[b] * ground.states[b]
        assert np.linalg.norm(residual) < 10 * solver.tol
        np.testing.assert_allclose(
            ground.strings[b],
            model.compiled.table.expectations(vectors[:, 0]),
            atol=EIGEN_TOL,
        )


@pytest.mark.parametrize("n", [3, 6])
def test_large_system_path_matches_eigh(n: int, monkeypatch, random_model, model_dense) -> None:
    """The solver path for large state vectors, forced on small systems."""
    monkeypatch.setattr(lanczos, "PARALLEL_DIM", 0)
    monkeypatch.setattr(exact, "PARALLEL_DIM", 0)
    model = random_model(n, seed=n)
    x, theta = batch_point(model, seed=n, batch=2)
    ground = ExactSolver(model.compiled).solve(model.compiled.coefficients(x, theta), with_gap=True)
    for b in range(2):
        energies, vectors = np.linalg.eigh(model_dense(model, x[b], theta))
        assert ground.energies[b] == pytest.approx(energies[0], abs=EIGEN_TOL)
        assert abs(np.vdot(ground.states[b], vectors[:, 0])) == pytest.approx(1.0, abs=EIGEN_TOL)
        assert ground.gaps[b] == pytest.approx(energies[1] - energies[0], abs=GAP_TOL)


def test_real_model_gives_real_states(model_dense) -> None:
    model = QEPModel(
        n_qubits=4,
        fixed=pauli_sum([(-1.0, f"Z{j} Z{j + 1}") for j in range(3)] + [(0.3, "Z0")]),
        trainable={"h": pauli_sum([(-1.0, f"X{j}") for j in range(4)])},
        outputs={"m": pauli_sum([(1.0, "Z0")])},
    )
    assert model.compiled.table.real
    ground = ExactSolver(model.compiled).solve(model.compiled.coefficients([], [0.8]))
    assert ground.states.dtype == np.float64
    e0 = np.linalg.eigvalsh(model_dense(model, [], [0.8]))[0]
    assert ground.energies[0] == pytest.approx(e0, abs=EIGEN_TOL)


def test_single_qubit(model_dense) -> None:
    model = QEPModel(
        n_qubits=1, trainable={"t": pauli_sum([(1.0, "X0")])}, outputs={"z": pauli_sum([(1.0, "Z0")])}
    )
    ground = ExactSolver(model.compiled).solve(model.compiled.coefficients([], [0.6]), with_gap=True)
    assert ground.energies[0] == pytest.approx(-0.6, abs=EIGEN_TOL)
    assert ground.gaps[0] == pytest.approx(1.2, abs=GAP_TOL)


def test_warm_start_needs_fewer_matvecs(random_model) -> None:
    model = random_model(8, seed=11)
    table = model.compiled.table
    x, theta = batch_point(model, seed=1, batch=1)
    solver = ExactSolver(model.compiled, krylov=10)
    free = solver.solve(model.compiled.coefficients(x, theta))
    nearby = model.compiled.coefficients(x, theta + 1e-3)
    diagonals = table.diagonals(nearby)
    cold_states, cold = batched_lanczos(diagonals, table.masks, solver._start[None, :], 1e-10, krylov=10)
    warm_states, warm = batched_lanczos(diagonals, table.masks, free.states, 1e-10, krylov=10)
    assert cold[0, 3] == 1.0 and warm[0, 3] == 1.0
    assert warm[0, 0] == pytest.approx(cold[0, 0], abs=EIGEN_TOL)
    assert abs(np.vdot(warm_states[0], cold_states[0])) == pytest.approx(1.0, abs=EIGEN_TOL)
    assert warm[0, 2] < cold[0, 2]
    # the solver accepts the warm start too
    again = solver.solve(nearby, free.states)
    assert again.energies[0] == pytest.approx(cold[0, 0], abs=EIGEN_TOL)


@pytest.mark.parametrize("n", [3, 5, 7])
def test_gap_matches_eigh(n: int, random_model, model_dense) -> None:
    model = random_model(n, seed=100 + n)
    x, theta = batch_point(model, seed=n, batch=2)
    ground = ExactSolver(model.compiled).solve(model.compiled.coefficients(x, theta), with_gap=True)
    assert ground.gaps is not None
    for b in range(2):
        energies = np.linalg.eigvalsh(model_dense(model, x[b], theta))
        assert ground.gaps[b] == pytest.approx(energies[1] - energies[0], abs=GAP_TOL)


def ferromagnet(field_name: str = "hz") -> QEPModel:
    """-Z0 Z1 - Z1 Z2 plus a trainable longitudinal field: at field 0, |000> and |111> are degenerate."""
    return QEPModel(
        n_qubits=3,
        fixed=pauli_sum([(-1.0, "Z0 Z1"), (-1.0, "Z1 Z2")]),
        trainable={field_name: pauli_sum([(1.0, "Z0"), (1.0, "Z1"), (1.0, "Z2")])},
        outputs={"m": pauli_sum([(1.0, "Z0")])},
    )


def test_degenerate_ground_state_raises() -> None:
    model = ferromagnet()
    solver = ExactSolver(model.compiled)
    coefficients = model.compiled.coefficients([], [0.0])
    with pytest.raises(PreconditionError, match="degenerate") as info:
        solver.solve(coefficients, with_gap=True)
    assert "\n" not in str(info.value)


def test_degenerate_gap_is_zero() -> None:
    model = ferromagnet()
    solver = ExactSolver(model.compiled)
    ground = solver.solve(model.compiled.coefficients([], [0.0]), with_gap=True, check_degeneracy=False)
    assert ground.energies[0] == pytest.approx(-2.0, abs=EIGEN_TOL)
    assert abs(ground.gaps[0]) < solver.degeneracy_tol


def test_idle_qubit_degeneracy_detected(model_dense) -> None:
    """A generic Hamiltonian that leaves qubit 2 idle: every level, the ground level included, is
    doubly degenerate."""
    rng = np.random.default_rng(3)
    fixed = pauli_sum(
        [(float(rng.normal()), f"{a}0 {b}1") for a in "XYZ" for b in "XYZ"]
        + [(float(rng.normal()), f"{a}{q}") for a in "XYZ" for q in (0, 1)]
    )
    model = QEPModel(
        n_qubits=3,
        fixed=fixed,
        trainable={"t": pauli_sum([(1.0, "X0 Y1")])},
        outputs={"m": pauli_sum([(1.0, "Z0")])},
    )
    energies = np.linalg.eigvalsh(model_dense(model, [], [0.3]))
    assert energies[1] - energies[0] < 1e-12  # the test case is degenerate
    solver = ExactSolver(model.compiled)
    coefficients = model.compiled.coefficients([], [0.3])
    ground = solver.solve(coefficients, with_gap=True, check_degeneracy=False)
    assert ground.energies[0] == pytest.approx(energies[0], abs=EIGEN_TOL)
    assert abs(ground.gaps[0]) < solver.degeneracy_tol
    with pytest.raises(PreconditionError, match="degenerate"):
        solver.solve(coefficients, with_gap=True)


def test_slightly_split_model_is_accepted() -> None:
    model = ferromagnet()
    solver = ExactSolver(model.compiled)
    field = 1e-3
    ground = solver.solve(model.compiled.coefficients([], [field]), with_gap=True)
    # |111> at -2 - 3 field, |000> at -2 + 3 field
    assert ground.energies[0] == pytest.approx(-2.0 - 3 * field, abs=EIGEN_TOL)
    assert ground.gaps[0] == pytest.approx(6 * field, abs=GAP_TOL)
    assert ground.strings[0][model.compiled.table.index[next(iter(model.outputs["m"]))]] == (
        pytest.approx(-1.0, abs=EIGEN_TOL)
    )


def test_check_degeneracy_reports_first_bad_sample() -> None:
    solver = ExactSolver(ferromagnet().compiled, degeneracy_tol=0.1)
    solver.check_degeneracy(np.array([0.0, 1.0]), np.array([0.2, 0.3]))
    with pytest.raises(PreconditionError, match="sample 1"):
        solver.check_degeneracy(np.array([0.0, 1.0]), np.array([0.2, 0.05]))


def test_bad_tolerance() -> None:
    with pytest.raises(ConfigError, match="tol"):
        ExactSolver(ferromagnet().compiled, tol=0.0)


@pytest.mark.parametrize("n", [3, 5, 6])
def test_response_matches_sum_over_states(n: int, random_model, model_dense) -> None:
    model = random_model(n, seed=200 + n)
    compiled = model.compiled
    x, theta = batch_point(model, seed=n, batch=1)
    coefficients = compiled.coefficients(x[0], theta)
    solver = ExactSolver(compiled)
    ground = solver.solve(coefficients)
    psi0, e0 = ground.states[0], float(ground.energies[0])
    rng = np.random.default_rng(n)
    perturbation = rng.normal(size=len(compiled.table.strings))
    delta = solver.response(coefficients, psi0, e0, perturbation)

    energies, vectors = np.linalg.eigh(model_dense(model, x[0], theta))
    v = compiled.table.dense(perturbation)
    # sum over excited states n of |n><n|V|psi0>/(E0 - E_n), with the solver's ground-state phase
    amplitudes = vectors[:, 1:].conj().T @ (v @ psi0) / (energies[0] - energies[1:])
    expected = vectors[:, 1:] @ amplitudes
    np.testing.assert_allclose(delta, expected, atol=RESPONSE_TOL)
    assert abs(np.vdot(psi0, delta)) < RESPONSE_TOL


def test_response_to_conserved_perturbation_vanishes() -> None:
    """V = X0 X1 X2 commutes with the transverse-field Ising chain: V|psi0> = +-|psi0>, response 0."""
    model = transverse_field_ising(3)
    parity = pauli_sum([(1.0, "X0 X1 X2")])
    compiled = QEPModel(n_qubits=3, trainable=model.trainable, outputs={"px": parity}).compiled
    coefficients = compiled.coefficients([], [1.0, 0.7])
    solver = ExactSolver(compiled)
    ground = solver.solve(coefficients)
    delta = solver.response(coefficients, ground.states[0], float(ground.energies[0]), compiled.outputs[0])
    assert np.linalg.norm(delta) < RESPONSE_TOL


def test_warm_start_in_an_invariant_subspace_still_finds_the_ground_state() -> None:
    """A nudge that crosses levels: the free state |0> is an eigenvector (excited) of the nudged H."""
    model = QEPModel(
        n_qubits=2,
        fixed=pauli_sum([(0.05, "X1")]),
        trainable={"t": pauli_sum([(1.0, "Z0")])},
        outputs={"z": pauli_sum([(1.0, "Z0")])},
    )
    solver = ExactSolver(model.compiled, tol=1e-10)
    free = solver.solve(model.compiled.coefficients(np.zeros(0), [-0.1], [0.0]))
    nudged = solver.solve(model.compiled.coefficients(np.zeros(0), [-0.1], [0.4]), free.states)
    assert nudged.energies[0] == pytest.approx(-0.3 - 0.05, abs=1e-9)


def kramers_model(seed: int, n: int = 7, spread: float = 0.03) -> QEPModel:
    """Random two-body couplings on an odd number of spins: time-reversal symmetric, so every
    level is (Kramers) doubly degenerate; scaled so that E2 - E0 = ``spread``."""
    rng = np.random.default_rng(seed)
    terms = [
        (rng.normal(), f"{a}{i} {b}{j}")
        for i in range(n)
        for j in range(i + 1, n)
        for a in "XYZ"
        for b in "XYZ"
    ]
    fixed = pauli_sum(terms)
    probe = QEPModel(
        n_qubits=n,
        fixed=fixed,
        trainable={"t": pauli_sum([(1.0, "X0 X1")])},
        outputs={"z": pauli_sum([(1.0, "Z0 Z1")])},
    )
    energies = np.linalg.eigvalsh(probe.compiled.table.dense(probe.compiled.coefficients([], [0.0])))
    scale = spread / (energies[2] - energies[0])
    return QEPModel(
        n_qubits=n,
        fixed=scale * fixed,
        trainable={"t": pauli_sum([(1.0, "X0 X1")])},
        outputs={"z": pauli_sum([(1.0, "Z0 Z1")])},
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_degeneracy_found_at_a_loose_solver_tolerance(seed: int) -> None:
    """At training's tolerance (1e-6) the first gap solve is loose; close gaps are re-solved."""
    model = kramers_model(seed)
    solver = ExactSolver(model.compiled, tol=1e-6)
    with pytest.raises(PreconditionError):
        solver.solve(model.compiled.coefficients([], [0.0]), with_gap=True)


def test_too_many_qubits_are_refused_before_anything_is_allocated() -> None:
    from qep_analog.solvers.equilibrium import Equilibrium

    model = QEPModel(
        n_qubits=30,
        trainable={"t": pauli_sum([(1.0, "X29")])},
        outputs={"z": pauli_sum([(1.0, "Z0")])},
    )
    with pytest.raises(ConfigError, match="30 qubits exceed the exact limit of 24"):
        Equilibrium(model)
    with pytest.raises(ConfigError, match="thermal"):
        Equilibrium(model, temperature=1.0)
    assert "compiled" not in model.__dict__  # nothing was compiled


def test_large_path_responses_and_member_numbering(monkeypatch, random_model) -> None:
    """Large systems go one member at a time: same responses, and errors name the right member."""
    from qep_analog.solvers import conjugate_gradient

    model = random_model(5, seed=9)
    x, theta = batch_point(model, seed=9, batch=3)
    coefficients = model.compiled.coefficients(x, theta)
    solver = ExactSolver(model.compiled)
    ground = solver.solve(coefficients)
    perturbations = np.tile(model.compiled.outputs[0], (3, 1))
    expected = solver.responses(coefficients, ground.states, ground.energies, perturbations)
    for module in (lanczos, exact, conjugate_gradient):
        monkeypatch.setattr(module, "PARALLEL_DIM", 0)
    large = solver.solve(coefficients)
    np.testing.assert_allclose(large.energies, ground.energies, atol=EIGEN_TOL)
    deltas = solver.responses(coefficients, large.states, large.energies, perturbations)
    for b in range(3):  # states agree up to a phase; so do their responses
        phase = np.vdot(ground.states[b], large.states[b])
        np.testing.assert_allclose(deltas[b], phase * expected[b], atol=1e-7)
    degenerate = ferromagnet()
    batch = degenerate.compiled.coefficients(np.zeros((2, 0)), [[0.5], [0.0]])
    with pytest.raises(PreconditionError, match="sample 1"):
        ExactSolver(degenerate.compiled).solve(batch, with_gap=True)


def test_nearly_degenerate_ground_state_converges_to_a_tight_tolerance() -> None:
    """Antiferromagnetic cluster-Ising chain in a weak field: the two lowest levels are split by
    about 7e-9; a Krylov space restarted from one Ritz vector has to grow to resolve them (it
    stalled at a residual of 2e-7 before)."""
    n = 10
    model = QEPModel(
        n_qubits=n,
        fixed=pauli_sum((-0.5, f"Z{j} X{j + 1} Z{j + 2}") for j in range(1, 8)),
        trainable={
            "g": pauli_sum((-1.0, f"X{j}") for j in range(n)),
            "theta_zz": pauli_sum((-1.0, f"Z{j} Z{j + 1}") for j in range(n - 1)),
        },
        outputs={"m": pauli_sum([(-1.0, "X0 X4")])},
    )
    coefficients = model.compiled.coefficients([], [-0.2, -1.5])
    energies = np.linalg.eigvalsh(model.compiled.table.dense(coefficients))
    assert energies[1] - energies[0] < 1e-7  # the hard case
    ground = ExactSolver(model.compiled, tol=1e-10).solve(coefficients)
    assert ground.energies[0] == pytest.approx(energies[0], abs=1e-9)
    assert ground.residuals[0] < 1e-10


def test_large_systems_restart_with_longer_cycles_and_stay_exact(monkeypatch) -> None:
    """From PARALLEL_DIM on the cycle grows to what LARGE_KRYLOV_MEMORY allows (at most
    LARGE_KRYLOV_MAX); ground energies still agree with ARPACK."""
    import scipy.sparse.linalg as spla

    from qep_analog.model.standard import phase_sensor
    from qep_analog.tasks.phase_sensor import sample_simplex

    model = phase_sensor(12)  # 14 qubits, complex: 256 kB per vector
    compiled = model.compiled
    assert compiled.dim >= exact.PARALLEL_DIM
    assert ExactSolver(compiled).large_krylov == exact.LARGE_KRYLOV_MAX
    monkeypatch.setattr(exact, "LARGE_KRYLOV_MEMORY", 10 * compiled.dim * 16)
    assert ExactSolver(compiled, krylov=20).large_krylov == 20  # memory-bound: never below krylov
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    x, theta = sample_simplex(rng, 2), rng.uniform(-0.1, 0.1, len(model.parameter_names))
    coefficients = compiled.coefficients(x, theta)
    ground = ExactSolver(compiled, tol=1e-8).solve(coefficients)
    for b in range(2):
        h = compiled.table.sparse(coefficients[b])
        e0 = spla.eigsh(h, k=1, which="SA", tol=1e-12)[0][0]
        assert ground.energies[b] == pytest.approx(e0, abs=1e-9)
