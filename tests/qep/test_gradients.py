"""Gradient estimators (qep_analog.qep.gradients), losses and shot noise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from qep_analog.errors import ConfigError, PreconditionError, SmallGapWarning
from qep_analog.model.pauli import IDENTITY, pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.model.standard import transverse_field_ising
from qep_analog.qep.gradients import (
    GAP_FRACTION,
    check_nudge,
    exact_gradient,
    finite_difference_gradient,
    nudge_strength,
    qep_gradient,
    reciprocity_check,
)
from qep_analog.qep.losses import CrossEntropy, CustomLoss, SquaredError, loss_by_name
from qep_analog.qep.shot_noise import ShotNoise
from qep_analog.solvers.equilibrium import Equilibrium

#: QEP (symmetric, beta 1e-4) against the analytic one-qubit slope: bias ~ beta^2.
ANALYTIC_QEP_TOL = 1e-7
#: Exact linear response and central differences (step 1e-4) against the analytic slope.
ANALYTIC_TOL = 1e-8
#: Exact linear response against central finite differences (step 1e-4: error ~ step^2).
FD_TOL = 1e-6
#: Reciprocity d<O_k>/dtheta_j = d<A_j>/dnu_k from two independent responses.
RECIPROCITY_TOL = 1e-8
#: Central-difference check of loss error signals.
LOSS_TOL = 1e-6
#: Relative agreement of empirical and predicted shot-noise variance (20000 draws: ~1% s.e.).
VARIANCE_RTOL = 0.05
#: Ground states for convergence studies are solved far below the QEP bias.
SOLVER_TOL = 1e-12

BETAS = np.array([1e-1, 3e-2, 1e-2, 3e-3])


# --- (1) one qubit, analytic ------------------------------------------------------------------


def one_qubit() -> QEPModel:
    """H = theta X + h Z + nu Z: <Z> = -(h + nu)/r, d<Z>/dtheta = theta h / r^3 at nu = 0."""
    return QEPModel(
        n_qubits=1,
        inputs={"h": pauli_sum([(1.0, "Z0")])},
        trainable={"theta": pauli_sum([(1.0, "X0")])},
        outputs={"z": pauli_sum([(1.0, "Z0")])},
    )


def test_one_qubit_analytic_gradient() -> None:
    theta, h = 0.6, 0.8
    slope = theta * h / (theta**2 + h**2) ** 1.5
    assert slope == pytest.approx(0.48, abs=1e-15)
    eq = Equilibrium(one_qubit())
    x, th, eps = [[h]], np.array([theta]), [[1.0]]
    free = eq.prepare(x, th, with_gap=True)
    assert free.energies[0] == pytest.approx(-1.0, abs=ANALYTIC_TOL)
    assert free.gaps[0] == pytest.approx(2.0, abs=ANALYTIC_TOL)
    assert eq.compiled.output_values(free.strings)[0, 0] == pytest.approx(-h, abs=ANALYTIC_TOL)
    exact = exact_gradient(eq, x, th, eps)
    fd = finite_difference_gradient(eq, x, th, eps)
    qep = qep_gradient(eq, x, th, eps, beta=1e-4, scheme="symmetric")
    assert exact.shape == fd.shape == qep.shape == (1, 1)
    assert exact[0, 0] == pytest.approx(slope, abs=ANALYTIC_TOL)
    assert fd[0, 0] == pytest.approx(slope, abs=ANALYTIC_TOL)
    assert qep[0, 0] == pytest.approx(slope, abs=ANALYTIC_QEP_TOL)
    # reciprocity: d<X>/dnu, the quantity QEP measures, is the same number
    check = reciprocity_check(eq, x, th, [("theta", "z")])
    assert check.d_generator_d_nu[0] == pytest.approx(slope, abs=ANALYTIC_TOL)
    assert check.d_output_d_theta[0] == pytest.approx(slope, abs=ANALYTIC_TOL)


def test_one_qubit_error_signal_scales_gradient() -> None:
    eq = Equilibrium(one_qubit())
    x, th = [[0.8]], np.array([0.6])
    base = exact_gradient(eq, x, th, [[1.0]])
    np.testing.assert_allclose(exact_gradient(eq, x, th, [[-2.5]]), -2.5 * base, atol=ANALYTIC_TOL)
    np.testing.assert_allclose(
        qep_gradient(eq, x, th, [[-2.5]], beta=1e-4), -2.5 * base, atol=ANALYTIC_QEP_TOL
    )


# --- (2) random models ------------------------------------------------------------------------


def random_case(random_model, seed: int, n: int = 4, batch: int = 2):
    """A random model, a batch of inputs, parameters and error signals with ||sum eps O|| <= 0.5."""
    model = random_model(n, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch, len(model.inputs)))
    theta = rng.uniform(-1, 1, len(model.trainable))
    eps = rng.normal(size=(batch, len(model.outputs)))
    bounds = np.array([o.norm_bound() for o in model.outputs.values()])
    eps *= 0.5 / (np.abs(eps) @ bounds)[:, None]
    return model, x, theta, eps


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_matches_finite_differences(seed: int, random_model) -> None:
    model, x, theta, eps = random_case(random_model, seed)
    eq = Equilibrium(model, tol=SOLVER_TOL)
    exact = exact_gradient(eq, x, theta, eps)
    fd = finite_difference_gradient(eq, x, theta, eps)
    assert exact.shape == (2, len(model.trainable))
    assert np.abs(exact).max() > 1e-3  # a non-trivial gradient
    np.testing.assert_allclose(exact, fd, atol=FD_TOL)


def test_gradient_is_linear_in_error_signal(random_model) -> None:
    model, x, theta, eps = random_case(random_model, 4)
    eq = Equilibrium(model, tol=SOLVER_TOL)
    per_output = [exact_gradient(eq, x, theta, np.eye(len(model.outputs))[k]) for k in range(2)]
    combined = sum(eps[:, [k]] * per_output[k] for k in range(2))
    np.testing.assert_allclose(exact_gradient(eq, x, theta, eps), combined, atol=RECIPROCITY_TOL)


def qep_errors(eq, x, theta, eps, scheme: str) -> np.ndarray:
    exact = exact_gradient(eq, x, theta, eps)
    return np.array([np.abs(qep_gradient(eq, x, theta, eps, beta, scheme) - exact).max() for beta in BETAS])


@pytest.mark.parametrize(("scheme", "low", "high"), [("one-sided", 0.8, 1.2), ("symmetric", 1.7, 2.3)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_qep_convergence_order(scheme: str, low: float, high: float, seed: int, random_model) -> None:
    model, x, theta, eps = random_case(random_model, seed)
    eq = Equilibrium(model, tol=SOLVER_TOL)
    errors = qep_errors(eq, x, theta, eps, scheme)
    slope = np.polyfit(np.log(BETAS), np.log(errors), 1)[0]
    assert low <= slope <= high, (scheme, errors, slope)
    assert errors[-1] < errors[0]


def test_qep_one_sided_with_given_free_state(random_model) -> None:
    model, x, theta, eps = random_case(random_model, 5)
    eq = Equilibrium(model, tol=SOLVER_TOL)
    free = eq.prepare(x, theta, with_gap=True)
    a = qep_gradient(eq, x, theta, eps, 1e-3, "one-sided", free=free)
    b = qep_gradient(eq, x, theta, eps, 1e-3, "one-sided")
    np.testing.assert_allclose(a, b, atol=1e-9)
    # a negative beta is the same estimator from the other side
    c = qep_gradient(eq, x, theta, eps, -1e-3, "one-sided")
    exact = exact_gradient(eq, x, theta, eps)
    np.testing.assert_allclose(0.5 * (b + c), exact, atol=1e-5)


def test_broadcast_single_input_over_error_signals(random_model) -> None:
    model, x, theta, eps = random_case(random_model, 6)
    eq = Equilibrium(model, tol=SOLVER_TOL)
    together = exact_gradient(eq, x[:1], theta, eps)
    assert together.shape == (2, len(model.trainable))
    for b in range(2):
        np.testing.assert_allclose(
            together[b], exact_gradient(eq, x[0], theta, eps[b])[0], atol=RECIPROCITY_TOL
        )


def test_gradient_argument_errors(random_model) -> None:
    model, x, theta, eps = random_case(random_model, 1, n=2, batch=2)
    eq = Equilibrium(model)
    with pytest.raises(ConfigError, match="scheme"):
        qep_gradient(eq, x, theta, eps, 1e-2, scheme="central")
    for beta in (0.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="beta"):
            qep_gradient(eq, x, theta, eps, beta)
    with pytest.raises(ConfigError, match="3 entries"):
        exact_gradient(eq, x, theta, np.ones((2, 3)))
    with pytest.raises(ConfigError, match="2 inputs but 3 error signals"):
        exact_gradient(eq, x, theta, np.ones((3, 2)))
    with pytest.raises(ConfigError, match="reciprocity"):
        reciprocity_check(eq, x, theta, [("t0", "nope")])


# --- (3) reciprocity --------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [None, 0.7])
@pytest.mark.parametrize("seed", [1, 2])
def test_reciprocity(temperature, seed: int, random_model) -> None:
    model, x, theta, _ = random_case(random_model, seed)
    eq = Equilibrium(model, temperature=temperature)
    pairs = [(p, o) for p in model.parameter_names for o in model.output_names]
    check = reciprocity_check(eq, x[:1], theta, pairs)
    assert check.pairs == pairs
    assert len(check.d_output_d_theta) == len(pairs)
    assert np.abs(check.d_output_d_theta).max() > 1e-3
    assert check.max_deviation < RECIPROCITY_TOL


# --- (4) thermal states -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_thermal_exact_matches_finite_differences(seed: int, random_model) -> None:
    model, x, theta, eps = random_case(random_model, seed, n=3)
    eq = Equilibrium(model, temperature=0.7)
    exact = exact_gradient(eq, x, theta, eps)
    fd = finite_difference_gradient(eq, x, theta, eps)
    assert np.abs(exact).max() > 1e-3
    np.testing.assert_allclose(exact, fd, atol=FD_TOL)


def test_thermal_qep_symmetric_converges(random_model) -> None:
    model, x, theta, eps = random_case(random_model, 3, n=3)
    eq = Equilibrium(model, temperature=0.7)
    errors = qep_errors(eq, x, theta, eps, "symmetric")
    slope = np.polyfit(np.log(BETAS), np.log(errors), 1)[0]
    assert 1.7 <= slope <= 2.3, (errors, slope)
    assert errors[-1] < 1e-4


def test_thermal_gradient_of_one_qubit() -> None:
    """H = theta X + h Z at temperature T: <Z> = -(h/r) tanh(r/T), differentiated by theta."""
    theta, h, t = 0.6, 0.8, 0.5
    eq = Equilibrium(one_qubit(), temperature=t)

    def z(th: float) -> float:
        r = np.hypot(th, h)
        return -(h / r) * np.tanh(r / t)

    step = 1e-5
    expected = (z(theta + step) - z(theta - step)) / (2 * step)
    exact = exact_gradient(eq, [[h]], np.array([theta]), [[1.0]])
    assert exact[0, 0] == pytest.approx(expected, abs=FD_TOL)


# --- (5) degeneracy ---------------------------------------------------------------------------


def ferromagnet() -> QEPModel:
    return QEPModel(
        n_qubits=3,
        fixed=pauli_sum([(-1.0, "Z0 Z1"), (-1.0, "Z1 Z2")]),
        trainable={"hz": pauli_sum([(1.0, "Z0"), (1.0, "Z1"), (1.0, "Z2")])},
        outputs={"m": pauli_sum([(1.0, "Z0")])},
    )


def test_degenerate_ground_state_raises() -> None:
    eq = Equilibrium(ferromagnet())
    with pytest.raises(PreconditionError, match="degenerate"):
        qep_gradient(eq, [], np.array([0.0]), [[1.0]], beta=1e-3)
    with pytest.raises(PreconditionError, match="degenerate"):
        exact_gradient(eq, [], np.array([0.0]), [[1.0]])


def test_split_ground_state_is_accepted() -> None:
    eq = Equilibrium(ferromagnet())
    # |111> is the ground state for a positive field; its magnetisation does not respond
    grad = qep_gradient(eq, [], np.array([0.1]), [[1.0]], beta=1e-3)
    assert grad[0, 0] == pytest.approx(0.0, abs=1e-9)


# --- conserved outputs --------------------------------------------------------------------------


def test_conserved_output_has_zero_gradient() -> None:
    """The X parity commutes with the transverse-field Ising chain: its gradient vanishes."""
    base = transverse_field_ising(3)
    model = QEPModel(n_qubits=3, trainable=base.trainable, outputs={"px": pauli_sum([(1.0, "X0 X1 X2")])})
    eq = Equilibrium(model)
    theta = np.array([1.0, 0.7])
    np.testing.assert_allclose(finite_difference_gradient(eq, [], theta, [[1.0]]), 0.0, atol=FD_TOL)
    np.testing.assert_allclose(qep_gradient(eq, [], theta, [[1.0]], 1e-2), 0.0, atol=FD_TOL)
    np.testing.assert_allclose(exact_gradient(eq, [], theta, [[1.0]]), 0.0, atol=FD_TOL)


# --- (6) small-gap warning --------------------------------------------------------------------


def test_big_nudge_warns() -> None:
    # gap 2 at theta = 0.6, h = 0.8; ||(Z - <Z>) psi0|| = sqrt(1 - <Z>^2) = 0.6
    eq = Equilibrium(one_qubit())
    x, th, eps = [[0.8]], np.array([0.6]), [[1.0]]
    free = eq.prepare(x, th, with_gap=True)
    np.testing.assert_allclose(nudge_strength(eq, free, np.array(eps)), [0.6], atol=1e-9)
    big = 1.01 * GAP_FRACTION * 2.0 / 0.6
    with pytest.warns(SmallGapWarning, match="not small against the gap") as record:
        count = check_nudge(eq, free, np.array(eps), big)
    assert count == 1
    assert len(record) == 1
    with pytest.warns(SmallGapWarning):
        qep_gradient(eq, x, th, eps, beta=big)
    with pytest.warns(SmallGapWarning):
        qep_gradient(eq, x, th, eps, beta=-big, scheme="one-sided")


def test_small_nudge_does_not_warn() -> None:
    eq = Equilibrium(one_qubit())
    x, th, eps = [[0.8]], np.array([0.6]), [[1.0]]
    free = eq.prepare(x, th, with_gap=True)
    small = 0.99 * GAP_FRACTION * 2.0 / 0.6
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallGapWarning)
        assert check_nudge(eq, free, np.array(eps), small) == 0
        qep_gradient(eq, x, th, eps, beta=1e-2)


def test_no_nudge_check_without_gaps_or_at_temperature() -> None:
    eq = Equilibrium(one_qubit())
    free = eq.prepare([[0.8]], np.array([0.6]))
    assert free.gaps is None
    assert check_nudge(eq, free, np.array([[1.0]]), 100.0) == 0
    thermal = Equilibrium(one_qubit(), temperature=0.5)
    free = thermal.prepare([[0.8]], np.array([0.6]), with_gap=True)
    assert check_nudge(thermal, free, np.array([[1.0]]), 100.0) == 0


# --- (7) shot noise ---------------------------------------------------------------------------


def test_shot_noise_statistics() -> None:
    values = np.array([1.0, 0.3, -0.8, 0.0, 1.0])
    identity = np.array([True, False, False, False, False])
    shots, draws = 10, 20_000
    noise = ShotNoise(shots, identity, np.random.default_rng(1234))
    samples = noise(np.broadcast_to(values, (draws, len(values))).copy())
    assert samples.shape == (draws, len(values))
    np.testing.assert_array_equal(samples[:, 0], 1.0)  # the identity is exact
    np.testing.assert_array_equal(samples[:, 4], 1.0)  # <P> = +-1 has no noise
    predicted = (1.0 - values[1:4] ** 2) / shots
    np.testing.assert_allclose(samples[:, 1:4].var(axis=0), predicted, rtol=VARIANCE_RTOL)
    standard_error = np.sqrt(predicted / draws)
    assert np.all(np.abs(samples[:, 1:4].mean(axis=0) - values[1:4]) < 5 * standard_error)


def test_shot_noise_is_reproducible_and_does_not_modify_input() -> None:
    values = np.array([[0.2, -0.4]])
    a = ShotNoise(5, np.array([False, False]), np.random.default_rng(7))(values)
    b = ShotNoise(5, np.array([False, False]), np.random.default_rng(7))(values)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(values, [[0.2, -0.4]])
    assert not np.array_equal(a, values)


@pytest.mark.parametrize("shots", [0, -3, 2.5, True, "10", None])
def test_shot_noise_bad_shots(shots) -> None:
    with pytest.raises(ConfigError, match="shots"):
        ShotNoise(shots, np.array([True]), np.random.default_rng(0))


def test_qep_with_shot_noise(random_model) -> None:
    model, x, theta, eps = random_case(random_model, 2, n=3)
    eq = Equilibrium(model)
    identity = np.array([s == IDENTITY for s in model.compiled.table.strings])
    noisy = [
        qep_gradient(eq, x, theta, eps, 0.1, noise=ShotNoise(1000, identity, np.random.default_rng(s)))
        for s in range(2)
    ]
    clean = qep_gradient(eq, x, theta, eps, 0.1)
    assert not np.allclose(noisy[0], noisy[1])
    # 1000 shots give noise ~ 0.03 per string, ~ 0.2 on the gradient after dividing by 2 beta
    assert np.abs(noisy[0] - clean).max() < 2.0


# --- (8) losses ---------------------------------------------------------------------------------


def central_gradient(loss, outputs: np.ndarray, targets: np.ndarray, step: float = 1e-6) -> np.ndarray:
    out = np.empty_like(outputs)
    for k in range(outputs.shape[-1]):
        shift = np.zeros_like(outputs)
        shift[..., k] = step
        out[..., k] = (loss.value(outputs + shift, targets) - loss.value(outputs - shift, targets)) / (
            2 * step
        )
    return out


@pytest.mark.parametrize("loss", [SquaredError(), CrossEntropy()], ids=["squared", "cross-entropy"])
def test_error_signal_is_derivative_of_value(loss) -> None:
    rng = np.random.default_rng(3)
    outputs = rng.uniform(0.05, 0.9, (4, 3))
    targets = np.eye(3)[[0, 1, 2, 1]]
    eps = loss.error_signal(outputs, targets)
    assert eps.shape == outputs.shape
    assert loss.value(outputs, targets).shape == (4,)
    np.testing.assert_allclose(eps, central_gradient(loss, outputs, targets), atol=LOSS_TOL)


def test_loss_values() -> None:
    outputs = np.array([[0.5, 0.25, 0.25]])
    targets = np.array([[1.0, 0.0, 0.0]])
    assert SquaredError().value(outputs, targets)[0] == pytest.approx(0.375)
    assert CrossEntropy().value(outputs, targets)[0] == pytest.approx(np.log(2.0))
    # cross-entropy uses normalised probabilities
    assert CrossEntropy().value(2 * outputs, targets)[0] == pytest.approx(np.log(2.0))


def test_loss_registry_and_custom() -> None:
    assert isinstance(loss_by_name("squared_error"), SquaredError)
    assert isinstance(loss_by_name("cross_entropy"), CrossEntropy)
    with pytest.raises(ConfigError, match="unknown name 'hinge'"):
        loss_by_name("hinge")
    custom = CustomLoss(lambda o, y: (o**4).sum(axis=-1), lambda o, y: 4 * o**3)
    outputs = np.array([[0.3, -0.7]])
    np.testing.assert_allclose(
        custom.error_signal(outputs, outputs), central_gradient(custom, outputs, outputs), atol=LOSS_TOL
    )
