"""QEP gradients from measured phases: error bars that cover, unbiased sampled training gradients,
shot allocation and the choice of beta."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from qep_analog.backends.sampled import prepare_phases, sampled_qep_gradient
from qep_analog.errors import MeasurementError
from qep_analog.measurement.estimators import estimate_plan, exact_moments
from qep_analog.measurement.gradient import (
    BitstringSampler,
    allocate_shots,
    bias_coefficients,
    choose_beta,
    gradient_from_counts,
    sample_phases,
    setting_variances,
    setting_variances_from_counts,
)
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import outcome_probabilities
from qep_analog.measurement.settings import measurement_plan
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.model.standard import phase_sensor
from qep_analog.qep.gradients import exact_gradient, qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium

READOUT = ReadoutErrors.uniform(10, 0.025, 0.10)


@pytest.fixture(scope="module")
def sensor() -> tuple[QEPModel, Equilibrium, np.ndarray, np.ndarray, np.ndarray]:
    model = phase_sensor()
    x = np.array([1.0, 1.5, 1.5])
    theta = np.random.default_rng(0).uniform(-0.1, 0.1, 51)
    theta[36:] = np.random.default_rng(1).normal(size=15)
    return model, Equilibrium(model), x, theta, np.array([1.0, -0.5, 0.2])


def test_gradient_from_counts_matches_qep_in_the_limit(sensor: tuple) -> None:
    """With 10^6 shots per setting the measured gradient agrees with the emulated QEP gradient of the
    same beta (within 4 standard errors) and its outputs with the free state's."""
    model, eq, x, theta, eps = sensor
    plan = measurement_plan(model)
    beta = 0.1
    states = prepare_phases(eq, x, theta, eps, beta)
    phases = sample_phases(states, plan, 1_000_000, np.random.default_rng(2), READOUT)
    measured = gradient_from_counts(model, plan, phases, beta, mitigation=READOUT)
    reference = qep_gradient(eq, x, theta, eps, beta)[0]
    assert np.all(np.abs(measured.values - reference) < 4 * measured.standard_errors)
    assert measured.outputs is not None
    outputs = eq.compiled.output_values(eq.prepare(x, theta).strings)[0]
    assert np.all(np.abs(measured.outputs.means - outputs) < 4 * measured.outputs.standard_errors)
    assert measured.shots["plus"] == [1_000_000] * 9


def test_error_bars_cover_the_exact_gradient(sensor: tuple) -> None:
    """Over 200 repetitions x 51 parameters, +-1 and +-2 standard-error intervals around the measured
    gradient (beta = 0.02, 2000 shots per setting, readout errors mitigated) contain the exact
    linear-response gradient at 68.3 % and 95.4 % (+- 4 and 2 points: binomial sd of 200
    correlated repetitions is about 3.3 and 1.5 points)."""
    model, eq, x, theta, eps = sensor
    plan = measurement_plan(model)
    beta = 0.02
    exact = exact_gradient(eq, x, theta, eps)[0]
    assert np.abs(qep_gradient(eq, x, theta, eps, beta)[0] - exact).max() < 1e-3  # bias << errors
    states = prepare_phases(eq, x, theta, eps, beta, free_phase=False)
    rng = np.random.default_rng(3)
    z = []
    for _ in range(200):
        phases = sample_phases(states, plan, 2000, rng, READOUT)
        measured = gradient_from_counts(model, plan, phases, beta, mitigation=READOUT)
        z.append((measured.values - exact) / measured.standard_errors)
    z_all = np.abs(np.array(z))
    assert np.mean(z_all <= 1) == pytest.approx(0.683, abs=0.04)
    assert np.mean(z_all <= 2) == pytest.approx(0.954, abs=0.02)
    assert np.array(z).std() == pytest.approx(1.0, abs=0.1)


def test_covariances_within_a_setting_matter(sensor: tuple) -> None:
    """A sum of two strings read from the same shots: its variance from the full covariance of the
    means matches the variance over 400 repetitions (15 %); dropping the covariance does not. The
    pair is the most correlated one of the plus phase (exact per-shot moments)."""
    model, eq, x, theta, eps = sensor
    plan = measurement_plan(model)
    states = prepare_phases(eq, x, theta, eps, 0.1, free_phase=False)
    best, pair = 0.0, (0, 0)
    start = 0
    for setting in plan.settings:
        width = len(setting.strings)
        read = outcome_probabilities(states["plus"], setting.bases)
        _, cov = exact_moments(read, setting.bases, list(setting.strings))
        corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
        np.fill_diagonal(corr, 0.0)
        a, b = np.unravel_index(np.abs(corr).argmax(), corr.shape)
        if abs(corr[a, b]) > best:
            best, pair = abs(corr[a, b]), (start + int(a), start + int(b))
        start += width
    i, k = pair
    assert best > 0.5
    rng = np.random.default_rng(4)
    sums, predicted, independent = [], [], []
    for _ in range(400):
        est = estimate_plan(plan, sample_phases({"plus": states["plus"]}, plan, 200, rng)["plus"])
        sums.append(est.means[i] + est.means[k])
        cov = est.covariance
        predicted.append(cov[i, i] + cov[k, k] + 2 * cov[i, k])
        independent.append(cov[i, i] + cov[k, k])
    empirical = np.var(sums, ddof=1)
    assert np.mean(predicted) == pytest.approx(empirical, rel=0.15)
    assert abs(np.mean(independent) - empirical) > 0.3 * empirical


def test_sampled_training_gradient_is_unbiased(sensor: tuple) -> None:
    """The trainer's bitstring gradient (9 settings, 10 shots, readout errors, mitigation): its mean
    over 300 draws is within 3 sigma of the emulated QEP gradient of the same beta."""
    model, eq, x, theta, eps = sensor
    sampler = BitstringSampler(model, measurement_plan(model), 10, READOUT, mitigate=True)
    xs = np.repeat(x[None], 300, axis=0)
    free = eq.prepare(xs[:1], theta)
    free = type(free)(
        np.repeat(free.strings, 300, axis=0), np.repeat(free.energies, 300), None,
        np.repeat(np.asarray(free.states), 300, axis=0),
    )  # fmt: skip
    draws = sampled_qep_gradient(
        eq, xs, theta, eps[None], 0.4, sampler, np.random.default_rng(5), free=free
    )
    reference = qep_gradient(eq, x, theta, eps, 0.4)[0]
    sigma = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - reference) < 3.5 * sigma)
    one_sided = sampled_qep_gradient(
        eq,
        xs[:50],
        theta,
        eps[None].repeat(50, 0),
        0.4,
        sampler,
        np.random.default_rng(6),
        scheme="one-sided",
    )
    assert one_sided.shape == (50, 51)


def test_allocation_hand_example() -> None:
    """Neyman: M ∝ sqrt(V). V = (1, 4, 9), 600 shots -> (100, 200, 300), sum V/M = 0.06 against
    0.07 for 200 each."""
    allocation = allocate_shots(np.array([[1.0, 4.0, 9.0]]), 600)
    assert allocation.shots.tolist() == [[100, 200, 300]]
    assert allocation.variance == pytest.approx(0.06)
    assert allocation.uniform_variance == pytest.approx(0.07)
    small = allocate_shots(np.array([0.0, 1.0, 100.0]), 100, minimum=5)
    assert small.shots.sum() == 100 and small.shots.min() == 5
    with pytest.raises(MeasurementError, match="below 2 shots x 3 cells"):
        allocate_shots(np.ones(3), 5)


@pytest.mark.slow  # a long check; the default suite keeps a faster one of the same path
def test_allocation_lowers_the_measured_variance(sensor: tuple) -> None:
    """Predicted sum_j Var(g_j) of the allocated and of the uniform split agree with 300 repetitions
    (15 %), and the allocation is the better one."""
    model, eq, x, theta, eps = sensor
    plan = measurement_plan(model)
    beta = 0.2
    states = prepare_phases(eq, x, theta, eps, beta, free_phase=False)
    v = setting_variances(model, plan, states, beta, readout=READOUT)
    budget = 18 * 200
    allocation = allocate_shots(v, budget)
    assert allocation.gain >= 1.0  # the sensor's settings are nearly balanced: a gain of 0.3 %
    rng = np.random.default_rng(7)
    for shots, predicted in ((allocation.shots, allocation.variance), (200, allocation.uniform_variance)):
        draws = [
            gradient_from_counts(model, plan, sample_phases(states, plan, shots, rng, READOUT), beta,
                                 mitigation=READOUT).values
            for _ in range(300)
        ]  # fmt: skip
        assert np.var(draws, axis=0, ddof=1).sum() == pytest.approx(predicted, rel=0.15)
    pilot = sample_phases(states, plan, 20000, rng, READOUT)
    from_counts = setting_variances_from_counts(model, plan, pilot, beta, mitigation=READOUT)
    assert from_counts == pytest.approx(v, rel=0.1, abs=1e-3 * v.max())


def test_allocation_gain_on_an_unbalanced_model() -> None:
    """Generators of very different weight: a = 3 (X0 + X1 + X2) read in XXX, b = 0.1 Z0 Z1 in ZZ?:
    the allocation puts the shots on the heavy setting, and the measured variance follows."""
    model = QEPModel(
        n_qubits=3,
        fixed=pauli_sum([(-1.0, "Z0 Z1"), (-1.0, "Z1 Z2"), (-0.6, "X0"), (-0.6, "X1"), (-0.6, "X2")]),
        trainable={
            "a": pauli_sum([(3.0, "X0"), (3.0, "X1"), (3.0, "X2")]),
            "b": pauli_sum([(0.1, "Z0 Z1")]),
        },
        outputs={"m": pauli_sum([(1.0, "Z0 Z2")])},
    )
    eq = Equilibrium(model)
    plan = measurement_plan(model)
    assert len(plan.settings) == 2
    states = prepare_phases(eq, np.zeros(0), np.zeros(2), np.ones(1), 0.1, free_phase=False)
    v = setting_variances(model, plan, states, 0.1)
    allocation = allocate_shots(v, 4000)
    assert allocation.gain > 1.5
    rng = np.random.default_rng(9)
    draws = [
        gradient_from_counts(model, plan, sample_phases(states, plan, allocation.shots, rng), 0.1).values
        for _ in range(400)
    ]
    assert np.var(draws, axis=0, ddof=1).sum() == pytest.approx(allocation.variance, rel=0.15)


def test_beta_choice_analytic() -> None:
    """MSE = c1 b^4 + c2/(M b^2): c1 = 1 (kappa = (0.6, 0.8)), c2 = 2, M = 1 -> beta* = 1, terms 1
    and 2; no beta on a grid does better."""
    choice = choose_beta(np.array([0.6, 0.8]), 2.0, 1)
    assert choice.beta == pytest.approx(1.0)
    assert (choice.bias_term, choice.variance_term) == pytest.approx((1.0, 2.0))
    grid = np.linspace(0.5, 2, 301)
    assert min(sum(choice.terms(b)) for b in grid) >= choice.mse - 1e-12
    one_sided = choose_beta(np.array([1.0]), 4.0, 4, scheme="one-sided")
    assert one_sided.beta == pytest.approx(1.0) and one_sided.bias_term == pytest.approx(1.0)
    with pytest.raises(MeasurementError, match="c1 > 0"):
        choose_beta(np.zeros(2), 1.0, 10)


def test_bias_coefficients_fit(sensor: tuple) -> None:
    """g(beta) = g0 + kappa beta^2 recovered exactly on synthetic data; on the sensor the fitted
    model predicts the bias at a third beta within 10 %."""
    betas = np.array([0.1, 0.2, 0.3])
    g = np.array([1.0, -2.0]) + np.outer(betas**2, [0.5, 3.0])
    assert bias_coefficients(betas, g) == pytest.approx([0.5, 3.0])
    _, eq, x, theta, eps = sensor
    exact = exact_gradient(eq, x, theta, eps)[0]
    fit_betas = np.array([0.05, 0.1])
    kappa = bias_coefficients(fit_betas, [qep_gradient(eq, x, theta, eps, b)[0] for b in fit_betas])
    bias = qep_gradient(eq, x, theta, eps, 0.15)[0] - exact
    assert np.linalg.norm(kappa * 0.15**2 - bias) < 0.1 * np.linalg.norm(bias)


def test_gradient_from_counts_refuses_missing_phases(sensor: tuple) -> None:
    model, eq, x, theta, eps = sensor
    plan = measurement_plan(model)
    states = prepare_phases(eq, x, theta, eps, 0.1, free_phase=False)
    phases = sample_phases(states, plan, 10, np.random.default_rng(0))
    with pytest.raises(MeasurementError, match="needs a 'minus' phase"):
        gradient_from_counts(model, plan, {"plus": phases["plus"]}, 0.1)
    with pytest.raises(MeasurementError, match="beta"):
        gradient_from_counts(model, plan, phases, -0.1)
    with pytest.raises(MeasurementError, match="unknown phase"):
        gradient_from_counts(model, plan, {**phases, "other": phases["plus"]}, 0.1)


def test_unmitigated_gradient_is_scaled_by_the_contrast(sensor: Callable) -> None:
    """Without mitigation a single-string generator's gradient shrinks by b = 1 - eps - eps' (and a
    two-qubit one by about b^2): the reason to mitigate."""
    model, eq, x, theta, eps = sensor  # type: ignore[misc]
    plan = measurement_plan(model)
    beta = 0.1
    states = prepare_phases(eq, x, theta, eps, beta, free_phase=False)
    phases = sample_phases(states, plan, 400_000, np.random.default_rng(8), READOUT)
    raw = gradient_from_counts(model, plan, phases, beta)
    reference = qep_gradient(eq, x, theta, eps, beta)[0]
    j = model.parameter_names.index("s_XA")
    b = 1 - 0.025 - 0.10
    assert raw.values[j] == pytest.approx(b * reference[j], abs=4 * raw.standard_errors[j])


def test_sampler_refuses_states_that_are_not_vectors(sensor: tuple) -> None:
    model = sensor[0]
    sampler = BitstringSampler(model, measurement_plan(model), 10)
    with pytest.raises(MeasurementError, match="state vectors of dimension 2\\^10"):
        sampler.strings(np.array([object(), object()]), np.random.default_rng(0))
    with pytest.raises(MeasurementError, match="shape"):
        sampler.strings(np.ones((2, 16)), np.random.default_rng(0))


def test_one_sided_gradient_from_counts(sensor: tuple) -> None:
    """One-sided: (<A>_+ - <A>_0)/beta from a plus and a free phase, against the emulated one-sided
    QEP gradient of the same beta (4 standard errors, 10^6 shots per setting)."""
    model, eq, x, theta, eps = sensor
    plan = measurement_plan(model)
    states = prepare_phases(eq, x, theta, eps, 0.1, scheme="one-sided")
    assert list(states) == ["plus", "free"]
    phases = sample_phases(states, plan, 1_000_000, np.random.default_rng(10), READOUT)
    measured = gradient_from_counts(model, plan, phases, 0.1, "one-sided", mitigation=READOUT)
    reference = qep_gradient(eq, x, theta, eps, 0.1, "one-sided")[0]
    assert np.all(np.abs(measured.values - reference) < 4 * measured.standard_errors)
