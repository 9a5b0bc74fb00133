"""Readout errors under the independent-error model, and their inversion.

Every qubit's measured bit is flipped independently of the others: a true 0 reads 1 with probability
epsilon (false positive), a true 1 reads 0 with probability epsilon' (false negative). The bit is the
one read after the basis rotation, so the model applies to X and Y settings as to Z. For the outcome
z = (-1)^bit this gives E[z_read | z] = a + b z with offset a = epsilon' - epsilon and contrast
b = 1 - epsilon - epsilon'. Because the flips are independent, the per-shot value

    prod_{q in S} (z_read,q - a_q) / b_q

is an unbiased estimate of the true product prod_{q in S} z_q (the tensor product of the per-qubit
inverse confusion matrices; for a product it is not a division of the raw mean by b^|S| unless every
offset vanishes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import MeasurementError


@dataclass(frozen=True, eq=False)
class ReadoutErrors:
    """Per-qubit false-positive (epsilon = P(read 1 | 0)) and false-negative (epsilon' = P(read 0 | 1))
    probabilities, arrays of length ``n_qubits``."""

    false_positive: NDArray
    false_negative: NDArray

    def __post_init__(self) -> None:
        fp = np.atleast_1d(np.asarray(self.false_positive, dtype=float))
        fn = np.atleast_1d(np.asarray(self.false_negative, dtype=float))
        if fp.ndim != 1 or fp.shape != fn.shape:
            raise MeasurementError(
                f"readout errors: false positives {fp.shape} and false negatives {fn.shape} must be "
                "per-qubit arrays of one length"
            )
        for name, values in (("false positive", fp), ("false negative", fn)):
            bad = ~(np.isfinite(values) & (values >= 0) & (values < 0.5))
            if bad.any():
                q = int(np.flatnonzero(bad)[0])
                raise MeasurementError(
                    f"readout errors: {name} probability {values[q]!r} of qubit {q} is not in [0, 0.5)"
                )
        object.__setattr__(self, "false_positive", fp)
        object.__setattr__(self, "false_negative", fn)

    @classmethod
    def uniform(cls, n_qubits: int, false_positive: float, false_negative: float) -> ReadoutErrors:
        """The same (epsilon, epsilon') on every qubit."""
        return cls(np.full(n_qubits, float(false_positive)), np.full(n_qubits, float(false_negative)))

    @classmethod
    def from_profile(cls, profile: Any, n_qubits: int) -> ReadoutErrors:
        """The readout errors of a device profile on ``n_qubits`` qubits: ε and ε′ of each site the
        calibration measured, the device-wide ones elsewhere
        (:meth:`~qep_analog.devices.profile.DeviceProfile.site_readout_errors`)."""
        return cls(*profile.site_readout_errors(n_qubits))

    @classmethod
    def none(cls, n_qubits: int) -> ReadoutErrors:
        return cls.uniform(n_qubits, 0.0, 0.0)

    @property
    def n_qubits(self) -> int:
        return len(self.false_positive)

    @property
    def offset(self) -> NDArray:
        """a_q = epsilon'_q - epsilon_q: E[z_read | z] = a + b z."""
        return np.asarray(self.false_negative - self.false_positive)

    @property
    def contrast(self) -> NDArray:
        """b_q = 1 - epsilon_q - epsilon'_q."""
        return np.asarray(1.0 - self.false_positive - self.false_negative)

    @property
    def trivial(self) -> bool:
        return not (self.false_positive.any() or self.false_negative.any())

    def check(self, n_qubits: int) -> None:
        if self.n_qubits != n_qubits:
            raise MeasurementError(
                f"readout errors: given for {self.n_qubits} qubits, the data has {n_qubits}"
            )

    def confusion(self, qubit: int) -> NDArray:
        """P(read r | true t) as a 2x2 matrix [r, t] for one qubit."""
        e, f = self.false_positive[qubit], self.false_negative[qubit]
        return np.array([[1.0 - e, f], [e, 1.0 - f]])

    def apply_to_distribution(self, probabilities: ArrayLike) -> NDArray:
        """Outcome probabilities (..., 2^n) of true outcomes -> of read outcomes (qubit 0 first)."""
        p = np.asarray(probabilities, dtype=float)
        n = self.n_qubits
        if p.shape[-1] != 1 << n:
            raise MeasurementError(f"readout errors: distribution of {p.shape[-1]} outcomes, not 2^{n}")
        lead = p.shape[:-1]
        out = p.reshape((*lead, *([2] * n)))
        for q in range(n):
            out = np.moveaxis(
                np.tensordot(self.confusion(q), out, axes=([1], [len(lead) + q])), 0, len(lead) + q
            )
        return np.asarray(out.reshape(p.shape))

    def flip(self, bits: ArrayLike, rng: np.random.Generator) -> NDArray:
        """Apply the errors to measured bits (shots, n) shot by shot."""
        b = np.asarray(bits, dtype=np.uint8)
        self.check(b.shape[-1])
        probability = np.where(b == 1, self.false_negative, self.false_positive)
        flips = rng.random(b.shape) < probability
        return np.asarray(b ^ flips.astype(np.uint8))

    def outcome_values(self, mitigate: bool) -> NDArray:
        """Per-qubit value of the outcome: table (n, 2) over bit 0/1; raw z = +-1, or mitigated
        (z - a)/b."""
        z = np.array([1.0, -1.0])
        if not mitigate:
            return np.tile(z, (self.n_qubits, 1))
        return np.asarray((z[None, :] - self.offset[:, None]) / self.contrast[:, None])

    def describe(self) -> dict[str, Any]:
        fp, fn = self.false_positive, self.false_negative
        if np.all(fp == fp[0]) and np.all(fn == fn[0]):
            return {"false_positive": float(fp[0]), "false_negative": float(fn[0])}
        return {"false_positive": fp.tolist(), "false_negative": fn.tolist()}
