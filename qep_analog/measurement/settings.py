"""Measurement settings: Pauli strings grouped into qubit-wise commuting product bases.

Two strings commute qubit-wise when on every qubit they both act on they carry the same letter. A set
of pairwise qubit-wise commuting strings is measured with one product basis: a letter per qubit
(rotate X -> Z with H, Y -> Z with H S^dagger, then read every qubit in Z). Finding the fewest such
groups is colouring the graph whose edges join strings that do not commute qubit-wise; we colour it
with DSatur and seeded randomised greedy orders, and bound the optimum from below by a clique of
mutually conflicting strings (no grouping can use fewer settings than the clique has members).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import MeasurementError
from qep_analog.model.pauli import IDENTITY, PauliString
from qep_analog.model.qep_model import QEPModel

#: Letter of the qubits a setting leaves free (Rydberg arrays read Z without a rotation).
DEFAULT_LETTER = "Z"
BASIS_LETTERS = frozenset("XYZ")


def qubitwise_commute(a: PauliString, b: PauliString) -> bool:
    """Whether ``a`` and ``b`` carry the same letter on every qubit both act on."""
    letters = dict(a.factors)
    return all(letters.get(q, letter) == letter for q, letter in b.factors)


@dataclass(frozen=True)
class MeasurementSetting:
    """A product basis, one letter per qubit (``bases[q]`` for qubit q), and the strings it measures."""

    bases: str
    strings: tuple[PauliString, ...] = ()

    def __post_init__(self) -> None:
        if not self.bases or set(self.bases) - BASIS_LETTERS:
            raise MeasurementError(f"measurement setting {self.bases!r}: needs one of X, Y, Z per qubit")
        for string in self.strings:
            if not self.covers(string):
                raise MeasurementError(
                    f"measurement setting {self.bases}: cannot measure {string.label} (other basis)"
                )

    @property
    def n_qubits(self) -> int:
        return len(self.bases)

    def covers(self, string: PauliString) -> bool:
        """Whether ``string`` is diagonal in this basis (a product of the measured letters)."""
        return all(q < len(self.bases) and self.bases[q] == letter for q, letter in string.factors)

    def describe(self) -> dict[str, object]:
        return {"bases": self.bases, "measures": [s.label for s in self.strings]}


@dataclass(frozen=True)
class MeasurementPlan:
    """Settings that together measure ``strings``; each string is assigned to exactly one setting.

    ``lower_bound`` is the size of a set of pairwise conflicting strings that was found: no grouping
    needs fewer settings, so ``len(settings) == lower_bound`` proves the plan optimal.
    """

    n_qubits: int
    settings: tuple[MeasurementSetting, ...]
    lower_bound: int

    @property
    def strings(self) -> list[PauliString]:
        return [s for setting in self.settings for s in setting.strings]

    @property
    def optimal(self) -> bool:
        return len(self.settings) == self.lower_bound

    def setting_of(self, string: PauliString) -> int:
        """Index of the setting that measures ``string``."""
        for k, setting in enumerate(self.settings):
            if string in setting.strings:
                return k
        raise MeasurementError(f"measurement plan: string {string.label} is measured in no setting")

    def describe(self) -> dict[str, object]:
        return {
            "n_settings": len(self.settings),
            "lower_bound": self.lower_bound,
            "settings": [s.describe() for s in self.settings],
        }


def _conflicts(strings: Sequence[PauliString]) -> NDArray:
    n = len(strings)
    out = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = not qubitwise_commute(strings[i], strings[j])
    return out


def _dsatur(conflict: NDArray) -> NDArray:
    n = len(conflict)
    colour = np.full(n, -1)
    degree = conflict.sum(axis=1)
    for _ in range(n):
        best, key = -1, (-1, -1)
        for v in np.flatnonzero(colour < 0):
            saturation = len({int(c) for c in colour[conflict[v]] if c >= 0})
            if (saturation, int(degree[v])) > key:
                best, key = int(v), (saturation, int(degree[v]))
        used = {int(c) for c in colour[conflict[best]] if c >= 0}
        colour[best] = next(c for c in range(n) if c not in used)
    return colour


def _greedy(conflict: NDArray, order: NDArray) -> NDArray:
    colour = np.full(len(conflict), -1)
    for v in order:
        used = {int(c) for c in colour[conflict[v]] if c >= 0}
        colour[v] = next(c for c in range(len(conflict)) if c not in used)
    return colour


def _clique(conflict: NDArray, rng: np.random.Generator, tries: int) -> int:
    """Size of the largest clique found by greedy growth from every vertex (and random orders)."""
    n = len(conflict)
    degree = conflict.sum(axis=1)
    best = 1 if n else 0
    orders = [np.argsort(-degree, kind="stable")] + [rng.permutation(n) for _ in range(tries)]
    for order in orders:
        for start in range(n):
            members = [start]
            for v in order:
                if v != start and all(conflict[v, m] for m in members):
                    members.append(int(v))
            best = max(best, len(members))
    return best


def group_commuting(
    strings: Iterable[PauliString], n_qubits: int, *, tries: int = 200, seed: int = 0
) -> MeasurementPlan:
    """Group non-identity ``strings`` into the fewest qubit-wise commuting settings found.

    DSatur first, then ``tries`` seeded random greedy orders, stopping early at the clique bound.
    Qubits a setting leaves free are read in Z.
    """
    unique = sorted({s for s in strings if s != IDENTITY})
    for s in unique:
        if s.max_qubit >= n_qubits:
            raise MeasurementError(f"measurement plan: {s.label} acts beyond {n_qubits} qubits")
    if not unique:
        raise MeasurementError("measurement plan: no non-identity string to measure")
    conflict = _conflicts(unique)
    rng = np.random.default_rng(seed)
    bound = _clique(conflict, rng, tries=5)
    colour = _dsatur(conflict)
    for _ in range(tries):
        if colour.max() + 1 <= bound:
            break
        candidate = _greedy(conflict, rng.permutation(len(unique)))
        if candidate.max() < colour.max():
            colour = candidate
    settings = []
    for c in range(int(colour.max()) + 1):
        members = [unique[i] for i in np.flatnonzero(colour == c)]
        letters = [DEFAULT_LETTER] * n_qubits
        for s in members:
            for q, letter in s.factors:
                letters[q] = letter
        settings.append(MeasurementSetting("".join(letters), tuple(members)))
    return MeasurementPlan(n_qubits, tuple(settings), bound)


def model_strings(model: QEPModel, *, generators: bool = True, outputs: bool = True) -> list[PauliString]:
    """The non-identity strings of the generators A_j and/or the outputs O_k of ``model``."""
    found: set[PauliString] = set()
    sections = [model.trainable] * generators + [model.outputs] * outputs
    for section in sections:
        for operator in section.values():
            found.update(s for s in operator if s != IDENTITY)
    return sorted(found)


def measurement_plan(model: QEPModel, *, outputs: bool = True, tries: int = 200) -> MeasurementPlan:
    """Settings that measure every generator A_j (and every output O_k with ``outputs``)."""
    return group_commuting(model_strings(model, outputs=outputs), model.n_qubits, tries=tries)
