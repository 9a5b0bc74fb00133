"""Operator strings and Pauli sums (qep_analog.model.pauli)."""

from __future__ import annotations

import numpy as np
import pytest

from qep_analog.errors import ModelFileError
from qep_analog.model.pauli import IDENTITY, PauliString, PauliSum, parse_operator, pauli_sum

#: Tolerance of dense matrix comparisons (exact up to rounding).
MATRIX_TOL = 1e-12


def ps(*factors: tuple[int, str]) -> PauliString:
    return PauliString(tuple(factors))


def test_parse_two_qubit_product() -> None:
    op = parse_operator("Z0 Z1")
    assert dict(op) == {ps((0, "Z"), (1, "Z")): 1.0}
    assert op.label == "1 Z0 Z1"


def test_parse_single_factor() -> None:
    op = parse_operator("X3", n_qubits=4)
    assert dict(op) == {ps((3, "X")): 1.0}
    assert op.max_qubit == 3


def test_parse_mixed_product() -> None:
    op = parse_operator("Y2 Z5")
    (string,) = op
    assert string.factors == ((2, "Y"), (5, "Z"))
    assert string.n_y == 1
    assert op[string] == 1.0


def test_parse_number_operator() -> None:
    op = parse_operator("N4")
    assert dict(op) == {IDENTITY: 0.5, ps((4, "Z")): -0.5}


def test_number_operator_is_projector_on_one(dense_reference) -> None:
    n_matrix = dense_reference(parse_operator("N0"), 1)
    np.testing.assert_allclose(n_matrix, np.diag([0.0, 1.0]), atol=MATRIX_TOL)


def test_parse_product_with_number_operator() -> None:
    # Z0 N1 = (Z0 - Z0 Z1)/2
    op = parse_operator("Z0 N1")
    assert dict(op) == {ps((0, "Z")): 0.5, ps((0, "Z"), (1, "Z")): -0.5}


def test_parse_factors_are_sorted_by_qubit() -> None:
    assert parse_operator("Z5 Y2") == parse_operator("Y2 Z5")


def test_parse_identity() -> None:
    op = parse_operator("I")
    assert dict(op) == {IDENTITY: 1.0}
    assert op.max_qubit == -1
    assert IDENTITY.label == "I"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Q0", "unknown operator letter 'Q'"),
        ("z0", "unknown operator letter 'z'"),
        ("Z0 X4", "qubit index 4"),
        ("Z1 X1", "qubit 1 appears twice"),
        ("Z1 N1", "qubit 1 appears twice"),
        ("", "not a non-empty string"),
        ("   ", "not a non-empty string"),
        ("Z", "not LETTER+INDEX"),
        ("0Z", "not LETTER+INDEX"),
        ("Z-1", "not LETTER+INDEX"),
        ("Z0*Z1", "not LETTER+INDEX"),
        ("I Z0", "not LETTER+INDEX"),
        ("Z01", "no leading zero"),  # not Z1
        ("Z00", "no leading zero"),
        ("Z\uff11", "ASCII digits"),  # fullwidth one
        ("Z\u0661", "ASCII digits"),  # Arabic-Indic one
        ("X0 Z\u0967", "ASCII digits"),  # Devanagari one
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(ModelFileError, match=r"^here: ") as info:
        parse_operator(text, n_qubits=4, where="here")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(ModelFileError):
        parse_operator(3)  # type: ignore[arg-type]


def test_index_limit_only_with_n_qubits() -> None:
    assert parse_operator("X7").max_qubit == 7
    with pytest.raises(ModelFileError, match="out of range"):
        parse_operator("X7", n_qubits=7)


def test_pauli_string_validation() -> None:
    with pytest.raises(ModelFileError):
        ps((1, "Z"), (0, "X"))  # not sorted
    with pytest.raises(ModelFileError):
        ps((0, "Z"), (0, "X"))  # repeated
    with pytest.raises(ModelFileError):
        ps(
            (0, "N"),
        )  # not a Pauli letter


def test_masks_follow_msb_convention() -> None:
    string = ps((0, "X"), (1, "Y"), (3, "Z"))
    # qubit q sits at bit n-1-q
    assert string.x_mask(4) == 0b1100
    assert string.z_mask(4) == 0b0101


def test_sum_addition_and_scaling() -> None:
    a = pauli_sum([(1.0, "Z0"), (2.0, "X1")])
    b = pauli_sum([(0.5, "Z0"), (-1.0, "Y2")])
    total = a + b
    assert dict(total) == {ps((0, "Z")): 1.5, ps((1, "X")): 2.0, ps((2, "Y")): -1.0}
    assert dict(2.0 * b) == {ps((0, "Z")): 1.0, ps((2, "Y")): -2.0}
    assert 2.0 * b == b * 2.0
    assert total.norm_bound() == pytest.approx(4.5)


def test_sum_drops_zero_terms() -> None:
    a = pauli_sum([(1.0, "Z0"), (2.0, "X1")])
    difference = a + (-1.0) * pauli_sum([(1.0, "Z0")])
    assert dict(difference) == {ps((1, "X")): 2.0}
    assert len(a + (-1.0) * a) == 0
    assert (a + (-1.0) * a).label == "0"
    assert len(0.0 * a) == 0
    assert len(PauliSum({ps((0, "Z")): 0.0})) == 0


def test_sum_combines_repeated_strings() -> None:
    op = pauli_sum([(1.0, "Z0 Z1"), (2.0, "Z1 Z0")])
    assert dict(op) == {ps((0, "Z"), (1, "Z")): 3.0}
    # N0 + N0 = I - Z0, and N0 - N0 = 0
    assert dict(pauli_sum([(1.0, "N0"), (1.0, "N0")])) == {IDENTITY: 1.0, ps((0, "Z")): -1.0}
    assert len(pauli_sum([(1.0, "N0"), (-1.0, "N0")])) == 0


def test_sum_equality_and_hash() -> None:
    a = pauli_sum([(1.0, "Z0"), (2.0, "X1")])
    b = pauli_sum([(2.0, "X1"), (1.0, "Z0")])
    assert a == b
    assert hash(a) == hash(b)
    assert a != pauli_sum([(1.0, "Z0")])
    assert a != {ps((0, "Z")): 1.0, ps((1, "X")): 2.0}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_sum_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ModelFileError, match="not finite"):
        PauliSum({ps((0, "Z")): bad})


def test_sum_matches_dense_arithmetic(dense_reference) -> None:
    a = pauli_sum([(0.3, "Z0 X1"), (-1.2, "Y2"), (0.7, "N1")])
    b = pauli_sum([(1.1, "Y2"), (0.4, "X0 Y1 Z2")])
    dense = dense_reference(a, 3) + 2.5 * dense_reference(b, 3)
    np.testing.assert_allclose(dense_reference(a + 2.5 * b, 3), dense, atol=MATRIX_TOL)


def test_complex_coefficient_is_not_hermitian() -> None:
    string = next(iter(parse_operator("X0")))
    with pytest.raises(ModelFileError, match="not Hermitian"):
        PauliSum({string: 0.5 + 0.1j})
    assert PauliSum({string: 0.5 + 0j})[string] == 0.5
    with pytest.raises(ModelFileError, match="not a number"):
        PauliSum({string: "abc"})  # type: ignore[dict-item]
