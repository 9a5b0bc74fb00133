"""Expectation values, standard errors and covariances of Pauli strings from counts.

Every shot of a setting gives a value of every string diagonal in it: the product of the measured
z = (-1)^bit of its qubits (or, mitigated, of (z - a)/b per qubit, see
:mod:`~qep_analog.measurement.readout`). Means are sample means over shots; the covariance of the
means is the sample covariance of the per-shot values (ddof = 1) over the number of shots, so the
correlations between strings read from the same shots are kept. Different settings and different
phases are independent shots: their covariance is zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import MeasurementError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import bits_of, index_of
from qep_analog.measurement.settings import MeasurementPlan, MeasurementSetting
from qep_analog.model.pauli import PauliString, PauliSum

Observable = PauliString | PauliSum
_BITSTRING = re.compile(r"^[01]+$")


#: The most shots one setting's counts may hold: every count and their sum stay exact as float64
#: (and far inside int64), so estimates from them are exact in the count.
MAX_SHOTS = 2**53


@dataclass(frozen=True, eq=False)
class SettingCounts:
    """Counts of the outcomes of one setting: distinct basis indices (qubit 0 the most significant
    bit, the leftmost bitstring character) and how often each was read."""

    bases: str
    outcomes: NDArray
    counts: NDArray

    def __post_init__(self) -> None:
        MeasurementSetting(self.bases)
        outcomes = np.asarray(self.outcomes, dtype=np.int64).ravel()
        counts = np.asarray(self.counts).ravel()
        if outcomes.shape != counts.shape:
            raise MeasurementError(
                f"counts of setting {self.bases}: {len(outcomes)} outcomes, {len(counts)} counts"
            )
        if not np.issubdtype(counts.dtype, np.integer) or (counts < 0).any():
            raise MeasurementError(f"counts of setting {self.bases}: counts must be non-negative integers")
        if ((outcomes < 0) | (outcomes >= 1 << len(self.bases))).any():
            raise MeasurementError(
                f"counts of setting {self.bases}: outcome outside 0..2^{len(self.bases)}-1"
            )
        if len(np.unique(outcomes)) != len(outcomes):
            raise MeasurementError(f"counts of setting {self.bases}: an outcome is listed twice")
        keep = counts > 0
        object.__setattr__(self, "outcomes", outcomes[keep])
        object.__setattr__(self, "counts", counts[keep].astype(np.int64))

    @property
    def n_qubits(self) -> int:
        return len(self.bases)

    @property
    def shots(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def from_dense(cls, bases: str, counts: ArrayLike) -> SettingCounts:
        """From counts indexed by basis index (2^n,)."""
        dense = np.asarray(counts)
        if dense.shape != (1 << len(bases),):
            raise MeasurementError(f"counts of setting {bases}: dense counts of shape {dense.shape}")
        nonzero = np.flatnonzero(dense)
        return cls(bases, nonzero, dense[nonzero])

    @classmethod
    def from_bits(cls, bases: str, bits: ArrayLike) -> SettingCounts:
        """From single reads (shots, n), qubit 0 first."""
        b = np.asarray(bits)
        if b.ndim != 2 or b.shape[1] != len(bases) or not np.isin(b, (0, 1)).all():
            raise MeasurementError(
                f"counts of setting {bases}: bits must be 0/1 of shape (shots, {len(bases)})"
            )
        outcomes, counts = np.unique(index_of(b), return_counts=True)
        return cls(bases, outcomes, counts)

    @classmethod
    def from_bitstrings(cls, bases: str, counts: Mapping[str, int], where: str = "counts") -> SettingCounts:
        """From ``{"0110": 12, ...}`` (qubit 0 the leftmost character, '1' excited)."""
        if not isinstance(counts, Mapping) or not counts:
            raise MeasurementError(f"{where}: expected a non-empty mapping of bitstrings to counts")
        outcomes, values = [], []
        for key, value in counts.items():
            if not isinstance(key, str) or not _BITSTRING.match(key) or len(key) != len(bases):
                raise MeasurementError(
                    f"{where}: bitstring {key!r} is not {len(bases)} characters of 0/1 (setting {bases})"
                )
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise MeasurementError(f"{where}: count {value!r} of {key} is not a non-negative integer")
            outcomes.append(int(key, 2))
            values.append(int(value))
        if sum(values) > MAX_SHOTS:
            raise MeasurementError(
                f"{where}: {sum(values)} shots in setting {bases}, more than the limit {MAX_SHOTS} (2**53)"
            )
        return cls(bases, np.array(outcomes, dtype=np.int64), np.array(values, dtype=np.int64))

    def to_bitstrings(self) -> dict[str, int]:
        n = self.n_qubits
        return {format(int(o), f"0{n}b"): int(c) for o, c in zip(self.outcomes, self.counts, strict=True)}

    def dense(self) -> NDArray:
        out = np.zeros(1 << self.n_qubits, dtype=np.int64)
        out[self.outcomes] = self.counts
        return out


@dataclass(frozen=True, eq=False)
class Estimate:
    """Estimated means of ``labels``, the covariance of the means and the shots behind them."""

    labels: tuple[str, ...]
    means: NDArray
    covariance: NDArray
    shots: int

    @property
    def standard_errors(self) -> NDArray:
        return np.asarray(np.sqrt(np.clip(np.diag(self.covariance), 0.0, None)))

    def value(self, label: str) -> tuple[float, float]:
        """(mean, standard error) of one observable by label."""
        k = self.labels.index(label)
        return float(self.means[k]), float(self.standard_errors[k])


def _terms(observable: Observable) -> dict[PauliString, float]:
    if isinstance(observable, PauliString):
        return {observable: 1.0}
    return dict(observable.items())


def _label(observable: Observable) -> str:
    return observable.label


def outcome_values(
    bases: str,
    outcomes: ArrayLike,
    observables: Sequence[Observable],
    mitigation: ReadoutErrors | None = None,
) -> NDArray:
    """Per-shot values (n_outcomes, n_observables) of observables diagonal in the setting ``bases``.

    With ``mitigation`` the per-qubit outcome value is (z - a)/b (unbiased under the independent
    readout-error model); without it z = +-1.
    """
    setting = MeasurementSetting(bases)
    n = setting.n_qubits
    if mitigation is not None:
        mitigation.check(n)
        table = mitigation.outcome_values(mitigate=True)
    else:
        table = np.tile(np.array([1.0, -1.0]), (n, 1))
    bits = bits_of(np.asarray(outcomes), n)
    per_qubit = table[np.arange(n), bits]  # (n_outcomes, n)
    out = np.zeros((bits.shape[0], len(observables)))
    cache: dict[PauliString, NDArray] = {}
    for k, observable in enumerate(observables):
        for string, coefficient in _terms(observable).items():
            if not setting.covers(string):
                raise MeasurementError(f"setting {bases}: cannot measure {string.label} (other basis)")
            if string not in cache:
                qubits = [q for q, _ in string.factors]
                cache[string] = per_qubit[:, qubits].prod(axis=1)
            out[:, k] += coefficient * cache[string]
    return out


def weighted_moments(values: NDArray, weights: NDArray) -> tuple[NDArray, NDArray, float]:
    """Mean, per-shot covariance (ddof 1 for counts; exact for probabilities summing to 1), total."""
    w = np.asarray(weights, dtype=float)
    total = float(w.sum())
    if total <= 0:
        raise MeasurementError("estimate: no shots")
    mean = w @ values / total
    centred = values - mean
    scatter = (centred * w[:, None]).T @ centred
    return mean, scatter, total


def estimate(
    counts: SettingCounts,
    observables: Sequence[Observable],
    mitigation: ReadoutErrors | None = None,
) -> Estimate:
    """Means and covariance of the means of ``observables`` from one setting's counts.

    With one shot the covariance is unknown (NaN).
    """
    values = outcome_values(counts.bases, counts.outcomes, observables, mitigation)
    mean, scatter, shots = weighted_moments(values, counts.counts)
    cov = scatter / (shots * (shots - 1.0)) if shots > 1 else np.full_like(scatter, np.nan)
    return Estimate(tuple(_label(o) for o in observables), mean, cov, int(shots))


def exact_moments(
    probabilities: ArrayLike,
    bases: str,
    observables: Sequence[Observable],
    mitigation: ReadoutErrors | None = None,
) -> tuple[NDArray, NDArray]:
    """Expected per-shot mean and per-shot covariance of ``observables`` for read-outcome
    ``probabilities`` (2^n,) in ``bases`` (the covariance of an M-shot mean is this over M)."""
    p = np.asarray(probabilities, dtype=float)
    values = outcome_values(bases, np.arange(len(p)), observables, mitigation)
    mean, scatter, total = weighted_moments(values, p)
    return mean, scatter / total


def estimate_plan(
    plan: MeasurementPlan,
    counts: Sequence[SettingCounts],
    mitigation: ReadoutErrors | None = None,
) -> Estimate:
    """Every string of ``plan`` from its setting's counts (``counts[k]`` for ``plan.settings[k]``);
    the covariance is block diagonal over settings (independent shots)."""
    if len(counts) != len(plan.settings):
        raise MeasurementError(
            f"estimate: {len(counts)} settings of counts, the plan has {len(plan.settings)}"
        )
    means, blocks, shots = [], [], []
    for setting, data in zip(plan.settings, counts, strict=True):
        if data.bases != setting.bases:
            raise MeasurementError(
                f"estimate: counts of setting {data.bases} where {setting.bases} was planned"
            )
        part = estimate(data, list(setting.strings), mitigation)
        means.append(part.means)
        blocks.append(part.covariance)
        shots.append(part.shots)
    size = sum(len(m) for m in means)
    cov = np.zeros((size, size))
    start = 0
    for block in blocks:
        cov[start : start + len(block), start : start + len(block)] = block
        start += len(block)
    labels = tuple(s.label for s in plan.strings)
    return Estimate(labels, np.concatenate(means), cov, int(min(shots)))
