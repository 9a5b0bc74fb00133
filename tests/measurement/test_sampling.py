"""Sampling in a setting: rotations, bit order, readout errors on distributions and on shots."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

import numpy as np
import pytest

from qep_analog.errors import MeasurementError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import (
    bits_of,
    counts_of,
    index_of,
    outcome_probabilities,
    sample_bitstrings,
    sample_counts,
)
from qep_analog.model.pauli import PauliSum, parse_operator

N = 3


def random_state(seed: int, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    psi = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    return psi / np.linalg.norm(psi)


@pytest.mark.parametrize("bases", ["ZZZ", "XYZ", "YXY", "XXX", "YYY"])
def test_rotated_distribution_gives_every_string_of_the_setting(
    bases: str, dense_reference: Callable[[PauliSum, int], np.ndarray]
) -> None:
    """sum_o p(o) prod_q z_q(o) equals <psi|P|psi> from the Kronecker matrix, for every subset."""
    psi = random_state(1)
    p = outcome_probabilities(psi, bases)
    bits = bits_of(np.arange(1 << N), N)
    for mask in range(1, 1 << N):
        qubits = [q for q in range(N) if mask >> q & 1]
        operator = parse_operator(" ".join(f"{bases[q]}{q}" for q in qubits))
        exact = np.vdot(psi, dense_reference(operator, N) @ psi).real
        values = np.prod(1 - 2 * bits[:, qubits].astype(float), axis=1)
        assert p @ values == pytest.approx(exact, abs=1e-12)


def test_qubit_zero_is_the_leftmost_bit() -> None:
    psi = np.zeros(8)
    psi[0b100] = 1.0  # |1 0 0>: qubit 0 excited
    counts = sample_counts(psi, "ZZZ", 5, np.random.default_rng(0))
    assert counts[0b100] == 5
    assert bits_of(np.array([0b100]), 3).tolist() == [[1, 0, 0]]
    assert index_of(np.array([[1, 0, 0], [0, 0, 1]])).tolist() == [4, 1]


def test_readout_channel_equals_kronecker_of_confusion_matrices() -> None:
    readout = ReadoutErrors(np.array([0.01, 0.05, 0.2]), np.array([0.1, 0.0, 0.3]))
    p = np.abs(random_state(2)) ** 2
    kron = reduce(np.kron, [readout.confusion(q) for q in range(N)])
    assert readout.apply_to_distribution(p) == pytest.approx(kron @ p, abs=1e-14)
    assert readout.confusion(0) == pytest.approx(np.array([[0.99, 0.1], [0.01, 0.9]]))


def test_per_shot_flips_match_the_channel() -> None:
    """Frequencies of single reads with flipped bits agree with the channel's probabilities (4 sigma)."""
    readout = ReadoutErrors.uniform(N, 0.1, 0.25)
    psi = random_state(3)
    shots = 40000
    bits = sample_bitstrings(psi, "XYZ", shots, np.random.default_rng(4), readout)
    frequencies = counts_of(bits, N) / shots
    p = outcome_probabilities(psi, "XYZ", readout)
    sigma = np.sqrt(p * (1 - p) / shots)
    assert np.all(np.abs(frequencies - p) < 4 * sigma + 1e-12)


def test_sampling_refuses_bad_input() -> None:
    with pytest.raises(MeasurementError, match="dimension 8, not 2"):
        outcome_probabilities(random_state(0), "ZZZZ")
    with pytest.raises(MeasurementError, match="non-negative integers"):
        sample_counts(random_state(0), "ZZZ", -1, np.random.default_rng(0))
    with pytest.raises(MeasurementError, match=r"not in \[0, 0.5\)"):
        ReadoutErrors.uniform(2, 0.6, 0.0)
    with pytest.raises(MeasurementError, match="one length"):
        ReadoutErrors(np.zeros(2), np.zeros(3))
