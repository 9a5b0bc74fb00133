"""Pauli strings and Pauli sums, parsed from operator strings such as ``"Z0 Z1"`` or ``"N4"``.

Qubit 0 is the leftmost tensor factor and the most significant bit of a basis index, so the basis
state ``|b_0 b_1 ... b_{n-1}>`` has index ``sum_q b_q 2^(n-1-q)`` and bitstring ``"b_0 b_1 ..."``.
``|0>`` is the ground (dark) state, ``Z|0> = +|0>`` and ``N = (1 - Z)/2 = |1><1|``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ModelFileError

PAULI_LETTERS = frozenset("XYZ")
#: a factor: one letter and a qubit index in ASCII digits without leading zeros ("Z01" and "Z１" are
#: not "Z1")
_FACTOR = re.compile(r"([A-Za-z])(0|[1-9][0-9]*)", re.ASCII)


@dataclass(frozen=True, order=True)
class PauliString:
    """A tensor product of single-qubit Paulis, as sorted ``(qubit, letter)`` pairs.

    The identity is the empty product.
    """

    factors: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        qubits = [q for q, _ in self.factors]
        if qubits != sorted(set(qubits)):
            raise ModelFileError(f"Pauli string {self.factors}: qubits must be distinct and sorted")
        for q, letter in self.factors:
            if letter not in PAULI_LETTERS or q < 0:
                raise ModelFileError(f"Pauli string {self.factors}: bad factor {letter}{q}")

    @property
    def label(self) -> str:
        """The operator string, e.g. ``"Z0 X1"``; ``"I"`` for the identity."""
        return " ".join(f"{letter}{q}" for q, letter in self.factors) or "I"

    @property
    def max_qubit(self) -> int:
        """The largest qubit index acted on, -1 for the identity."""
        return self.factors[-1][0] if self.factors else -1

    @property
    def n_y(self) -> int:
        """Number of Y factors; a Pauli string is a real matrix iff this is even."""
        return sum(1 for _, letter in self.factors if letter == "Y")

    @property
    def flips_parity(self) -> bool:
        """Whether the string anticommutes with the parity Π_q Z_q: an odd number of X and Y factors."""
        return sum(1 for _, letter in self.factors if letter in "XY") % 2 == 1

    def x_mask(self, n_qubits: int) -> int:
        """Bits flipped by the string (X and Y factors), qubit q at bit n-1-q."""
        return sum(1 << (n_qubits - 1 - q) for q, letter in self.factors if letter in "XY")

    def z_mask(self, n_qubits: int) -> int:
        """Bits whose parity gives the sign (Z and Y factors), qubit q at bit n-1-q."""
        return sum(1 << (n_qubits - 1 - q) for q, letter in self.factors if letter in "ZY")

    def __str__(self) -> str:
        return self.label


IDENTITY = PauliString()


def bitstring_parity(bits: str) -> int:
    """⟨bits|Π_q Z_q|bits⟩ of a basis state written as 0s and 1s: (−1)^(number of 1s)."""
    return -1 if bits.count("1") % 2 else 1


def parity_signs(n_qubits: int) -> NDArray:
    """⟨c|Π_q Z_q|c⟩ = (−1)^(ones of c) of every basis state c of ``n_qubits`` (+1 for |0…0⟩)."""
    signs = np.ones(1)
    for _ in range(n_qubits):
        signs = np.concatenate([signs, -signs])
    return signs


class PauliSum(Mapping[PauliString, float]):
    """A real linear combination of Pauli strings, hence a Hermitian operator.

    Terms with zero coefficient are dropped. Immutable.
    """

    __slots__ = ("_terms",)
    # numpy scalars defer to __rmul__ instead of treating the sum as a sequence of strings
    __array_ufunc__ = None

    def __init__(self, terms: Mapping[PauliString, float] | None = None) -> None:
        clean: dict[PauliString, float] = {}
        for string, coefficient in (terms or {}).items():
            if isinstance(coefficient, complex):
                if coefficient.imag != 0.0:
                    raise ModelFileError(
                        f"Pauli sum: coefficient {coefficient!r} of {string} is not real, so the "
                        "operator is not Hermitian"
                    )
                coefficient = coefficient.real
            try:
                value = float(coefficient)
            except (TypeError, ValueError):
                raise ModelFileError(
                    f"Pauli sum: coefficient {coefficient!r} of {string} is not a number"
                ) from None
            if not math.isfinite(value):
                raise ModelFileError(f"Pauli sum: coefficient {coefficient!r} of {string} is not finite")
            if value != 0.0:
                clean[string] = clean.get(string, 0.0) + value
        self._terms = {s: c for s, c in sorted(clean.items()) if c != 0.0}

    @classmethod
    def from_terms(cls, pairs: Iterable[tuple[float, PauliSum]]) -> PauliSum:
        """Sum ``coefficient * operator`` over ``pairs``."""
        total: dict[PauliString, float] = {}
        for coefficient, operator in pairs:
            for string, c in operator.items():
                total[string] = total.get(string, 0.0) + coefficient * c
        return cls(total)

    def __getitem__(self, key: PauliString) -> float:
        return self._terms[key]

    def __iter__(self) -> Iterator[PauliString]:
        return iter(self._terms)

    def __len__(self) -> int:
        return len(self._terms)

    def __add__(self, other: PauliSum) -> PauliSum:
        return PauliSum.from_terms([(1.0, self), (1.0, other)])

    def __mul__(self, scalar: float) -> PauliSum:
        return PauliSum({s: scalar * c for s, c in self._terms.items()})

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PauliSum) and self._terms == other._terms

    def __hash__(self) -> int:
        return hash(tuple(self._terms.items()))

    def __repr__(self) -> str:
        return f"PauliSum({self.label!r})"

    @property
    def label(self) -> str:
        """Human-readable form, e.g. ``"0.5 I -0.5 Z3"``."""
        if not self._terms:
            return "0"
        parts = [f"{c:+g} {s.label}" for s, c in self._terms.items()]
        return " ".join(parts).lstrip("+")

    @property
    def max_qubit(self) -> int:
        """The largest qubit index acted on, -1 if none."""
        return max((s.max_qubit for s in self._terms), default=-1)

    def norm_bound(self) -> float:
        """Upper bound on the operator norm: the sum of the absolute coefficients."""
        return sum(abs(c) for c in self._terms.values())


def _product(left: dict[PauliString, float], factor: dict[PauliString, float]) -> dict[PauliString, float]:
    """Product of two sums acting on disjoint qubits."""
    out: dict[PauliString, float] = {}
    for s1, c1 in left.items():
        for s2, c2 in factor.items():
            key = PauliString(tuple(sorted(s1.factors + s2.factors)))
            out[key] = out.get(key, 0.0) + c1 * c2
    return out


def parse_operator(text: str, n_qubits: int | None = None, where: str = "operator") -> PauliSum:
    """Parse an operator string: factors ``X3``, ``Y2``, ``Z5``, ``N4`` separated by spaces, or ``I``.

    ``N`` is the number operator ``(1 - Z)/2``. Each qubit may appear once. ``where`` names the place
    in error messages.
    """
    if not isinstance(text, str) or not text.strip():
        raise ModelFileError(f"{where}: operator {text!r} is not a non-empty string")
    tokens = text.split()
    if tokens == ["I"]:
        return PauliSum({IDENTITY: 1.0})
    result: dict[PauliString, float] = {IDENTITY: 1.0}
    seen: set[int] = set()
    for token in tokens:
        match = _FACTOR.fullmatch(token)
        if not match:
            raise ModelFileError(
                f"{where}: operator factor {token!r} in {text!r} is not LETTER+INDEX (index in ASCII "
                "digits, no leading zero)"
            )
        letter, qubit = match.group(1), int(match.group(2))
        if letter not in "XYZN":
            raise ModelFileError(
                f"{where}: unknown operator letter {letter!r} in {text!r} (allowed: X, Y, Z, N)"
            )
        if n_qubits is not None and qubit >= n_qubits:
            raise ModelFileError(
                f"{where}: qubit index {qubit} in {text!r} is out of range (n_qubits = {n_qubits})"
            )
        if qubit in seen:
            raise ModelFileError(f"{where}: qubit {qubit} appears twice in {text!r}")
        seen.add(qubit)
        if letter == "N":
            factor = {IDENTITY: 0.5, PauliString(((qubit, "Z"),)): -0.5}
        else:
            factor = {PauliString(((qubit, letter),)): 1.0}
        result = _product(result, factor)
    return PauliSum(result)


def pauli_sum(terms: Iterable[tuple[float, str]], n_qubits: int | None = None) -> PauliSum:
    """Build a sum from ``(coefficient, operator string)`` pairs, e.g. ``[(-1.0, "Z0 Z1")]``."""
    return PauliSum.from_terms((c, parse_operator(op, n_qubits)) for c, op in terms)
