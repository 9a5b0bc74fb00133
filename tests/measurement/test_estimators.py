"""Estimators from counts: unbiasedness, readout mitigation, calibrated standard errors, covariances."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from qep_analog.errors import MeasurementError
from qep_analog.measurement.estimators import SettingCounts, estimate, exact_moments
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import outcome_probabilities, sample_counts
from qep_analog.model.pauli import PauliString, PauliSum, parse_operator

N = 4
READOUT = ReadoutErrors(np.array([0.025, 0.05, 0.01, 0.03]), np.array([0.10, 0.08, 0.15, 0.12]))


def random_state(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    psi = rng.normal(size=1 << N) + 1j * rng.normal(size=1 << N)
    return psi / np.linalg.norm(psi)


def random_setting_strings(seed: int) -> tuple[str, list[PauliString]]:
    """A random setting and every non-identity string diagonal in it (15 strings on 4 qubits)."""
    rng = np.random.default_rng(seed)
    bases = "".join(rng.choice(list("XYZ"), size=N))
    strings = []
    for mask in range(1, 1 << N):
        factors = tuple((q, bases[q]) for q in range(N) if mask >> q & 1)
        strings.append(PauliString(factors))
    return bases, strings


def exact_values(
    psi: np.ndarray, strings: list[PauliString], dense: Callable[..., np.ndarray]
) -> np.ndarray:
    return np.array([np.vdot(psi, dense(PauliSum({s: 1.0}), N) @ psi).real for s in strings])


def repeated_estimates(
    psi: np.ndarray, bases: str, strings: list[PauliString], shots: int, repeats: int, seed: int,
    readout: ReadoutErrors | None = None, mitigation: ReadoutErrors | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    rng = np.random.default_rng(seed)
    counts = sample_counts(np.repeat(psi[None], repeats, axis=0), bases, shots, rng, readout)
    means, errors = [], []
    for row in counts:
        result = estimate(SettingCounts.from_dense(bases, row), strings, mitigation)
        means.append(result.means)
        errors.append(result.standard_errors)
    return np.array(means), np.array(errors)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimates_are_unbiased(seed: int, dense_reference: Callable[..., np.ndarray]) -> None:
    """Mean of 400 estimates of 30 shots within 3 sigma of the exact value, for all 15 strings."""
    psi = random_state(seed)
    bases, strings = random_setting_strings(seed)
    exact = exact_values(psi, strings, dense_reference)
    means, _ = repeated_estimates(psi, bases, strings, shots=30, repeats=400, seed=10 + seed)
    sigma = means.std(axis=0, ddof=1) / np.sqrt(len(means))
    assert np.all(np.abs(means.mean(axis=0) - exact) < 3 * sigma + 1e-12)


def test_mitigated_estimates_are_unbiased_and_raw_ones_are_not(
    dense_reference: Callable[..., np.ndarray],
) -> None:
    psi = random_state(5)
    bases, strings = random_setting_strings(5)
    exact = exact_values(psi, strings, dense_reference)
    means, _ = repeated_estimates(psi, bases, strings, 200, 400, 6, READOUT, READOUT)
    sigma = means.std(axis=0, ddof=1) / np.sqrt(len(means))
    assert np.all(np.abs(means.mean(axis=0) - exact) < 3 * sigma)
    raw, _ = repeated_estimates(psi, bases, strings, 200, 400, 6, READOUT, None)
    raw_sigma = raw.std(axis=0, ddof=1) / np.sqrt(len(raw))
    assert np.max(np.abs(raw.mean(axis=0) - exact) / raw_sigma) > 10


def test_mitigation_inverts_the_readout_channel_exactly(dense_reference: Callable[..., np.ndarray]) -> None:
    """On the exact read distribution, mitigated means equal the true values of every product
    (analytic: the tensor product of per-qubit inverses); the raw product is not b^k times the
    true one when epsilon != epsilon'."""
    psi = random_state(7)
    bases, strings = random_setting_strings(7)
    exact = exact_values(psi, strings, dense_reference)
    read = outcome_probabilities(psi, bases, READOUT)
    mitigated, _ = exact_moments(read, bases, strings, READOUT)
    assert mitigated == pytest.approx(exact, abs=1e-12)
    raw, _ = exact_moments(read, bases, strings)
    # one qubit: E[z_read] = a + b <z>, by hand
    a, b = READOUT.offset, READOUT.contrast
    single = [k for k, s in enumerate(strings) if len(s.factors) == 1]
    for k in single:
        q = strings[k].factors[0][0]
        assert raw[k] == pytest.approx(a[q] + b[q] * exact[k], abs=1e-12)
    pair = next(k for k, s in enumerate(strings) if len(s.factors) == 2)
    qubits = [q for q, _ in strings[pair].factors]
    naive = raw[pair] / np.prod(b[qubits])
    assert abs(naive - exact[pair]) > 1e-3


def test_mitigation_recovers_z_and_zz_from_samples(dense_reference: Callable[..., np.ndarray]) -> None:
    """<Z_i> and <Z_i Z_j> from 200000 shots with readout errors, mitigated, within 4 standard errors."""
    psi = random_state(8)
    strings = [PauliString(((i, "Z"),)) for i in range(N)] + [
        PauliString(((i, "Z"), (j, "Z"))) for i in range(N) for j in range(i + 1, N)
    ]
    exact = exact_values(psi, strings, dense_reference)
    counts = sample_counts(psi, "ZZZZ", 200000, np.random.default_rng(9), READOUT)
    result = estimate(SettingCounts.from_dense("ZZZZ", counts), strings, READOUT)
    assert np.all(np.abs(result.means - exact) < 4 * result.standard_errors)
    raw = estimate(SettingCounts.from_dense("ZZZZ", counts), strings)
    assert np.max(np.abs(raw.means - exact) / raw.standard_errors) > 20


@pytest.mark.parametrize("mitigate", [False, True])
def test_standard_errors_are_calibrated(mitigate: bool, dense_reference: Callable[..., np.ndarray]) -> None:
    """z = (estimate - exact) / standard error over 1000 repetitions of 200 shots: std 1 +- 0.1."""
    psi = random_state(11)
    bases, strings = random_setting_strings(11)
    exact = exact_values(psi, strings, dense_reference)
    readout = READOUT if mitigate else None
    means, errors = repeated_estimates(psi, bases, strings, 200, 1000, 12, readout, readout)
    z = (means - exact) / errors
    assert np.all(np.abs(z.std(axis=0) - 1.0) < 0.1), z.std(axis=0)


def test_covariance_of_strings_from_the_same_shots(dense_reference: Callable[..., np.ndarray]) -> None:
    """The covariance of the means over repetitions matches the exact per-shot covariance over M
    (10 %), and so does the covariance estimated from one run's shots (40000 shots: 5 %, 0.02)."""
    psi = random_state(13)
    strings = [PauliString(((0, "X"),)), PauliString(((0, "X"), (1, "Y"))), PauliString(((1, "Y"),))]
    shots = 100
    means, _ = repeated_estimates(psi, "XYZZ", strings, shots, 4000, 14, READOUT, READOUT)
    rng = np.random.default_rng(15)
    big = 40000
    counts = sample_counts(psi, "XYZZ", big, rng, READOUT)
    predicted = estimate(SettingCounts.from_dense("XYZZ", counts), strings, READOUT).covariance * big
    empirical = np.cov(means.T)
    read = outcome_probabilities(psi, "XYZZ", READOUT)
    _, per_shot = exact_moments(read, "XYZZ", strings, READOUT)
    assert empirical == pytest.approx(per_shot / shots, rel=0.1, abs=2e-4)
    assert predicted == pytest.approx(per_shot, rel=0.05, abs=0.02)
    # without readout errors: X0 * (X0 Y1) = Y1, so Cov = <Y1> - <X0><X0 Y1>
    exact = exact_values(psi, strings, dense_reference)
    _, clean = exact_moments(outcome_probabilities(psi, "XYZZ"), "XYZZ", strings)
    assert clean[0, 1] == pytest.approx(exact[2] - exact[0] * exact[1], abs=1e-12)


def test_number_operator_products(dense_reference: Callable[..., np.ndarray]) -> None:
    psi = random_state(16)
    operator = parse_operator("N0 N2")
    exact = np.vdot(psi, dense_reference(operator, N) @ psi).real
    read = outcome_probabilities(psi, "ZZZZ", READOUT)
    mitigated, _ = exact_moments(read, "ZZZZ", [operator], READOUT)
    assert mitigated[0] == pytest.approx(exact, abs=1e-12)
    counts = SettingCounts.from_bitstrings("ZZZZ", {"1010": 3, "1000": 1})
    assert estimate(counts, [operator]).means[0] == pytest.approx(0.75)


def test_counts_constructors_and_validation() -> None:
    counts = SettingCounts.from_bitstrings("ZX", {"01": 3, "10": 1, "11": 0})
    assert counts.shots == 4 and counts.to_bitstrings() == {"01": 3, "10": 1}
    bits = np.array([[0, 1], [0, 1], [1, 0], [0, 1]])
    assert SettingCounts.from_bits("ZX", bits).to_bitstrings() == {"01": 3, "10": 1}
    assert counts.dense().tolist() == [0, 3, 1, 0]
    one = estimate(SettingCounts.from_bitstrings("Z", {"0": 1}), [PauliString(((0, "Z"),))])
    assert one.means[0] == 1.0 and np.isnan(one.covariance).all()
    for bad, word in (
        ({"012": 1}, "characters of 0/1"),
        ({"0": 1}, "characters of 0/1"),
        ({"01": -1}, "non-negative integer"),
        ({"01": 1.5}, "non-negative integer"),
        ({}, "non-empty"),
    ):
        with pytest.raises(MeasurementError, match=word):
            SettingCounts.from_bitstrings("ZX", bad)
    with pytest.raises(MeasurementError, match="cannot measure Z1"):
        estimate(counts, [PauliString(((1, "Z"),))])
    with pytest.raises(MeasurementError, match="given for 3 qubits"):
        estimate(counts, [PauliString(((0, "Z"),))], ReadoutErrors.uniform(3, 0.1, 0.1))
