"""Bitstrings sampled from state vectors in a measurement setting, with readout errors.

A setting's letter per qubit says what is measured: X is read after a Hadamard, Y after H S^dagger,
Z directly. Outcomes are basis indices of the rotated state (qubit q at bit n-1-q, so qubit 0 is the
leftmost bitstring character); '1' is the excited state, z = -1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import MeasurementError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.memory import require_memory
from qep_analog.schema import shown

#: The most shots of one setting (and so the largest count): beyond 2^53 counts are no longer exact
#: as floating-point numbers in the estimators.
MAX_SHOTS = 2**53
#: Bytes per single read of :func:`sample_bitstrings`: its uniform draw (float64) and outcome index
#: (int64), and per bit the shifted index (int64), the bit and the readout flips' probability and
#: draw (tracemalloc at 6 qubits: 16 + 16.7 per bit)
READ_BYTES = 16
BIT_BYTES = 18

_HADAMARD = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0)
#: Rotation applied before a Z readout so that the Z readout measures the letter: U^dagger Z U = P.
ROTATIONS = {
    "Z": np.eye(2, dtype=complex),
    "X": _HADAMARD.astype(complex),
    "Y": _HADAMARD @ np.diag([1.0, -1.0j]),
}


def rotate(states: ArrayLike, bases: str) -> NDArray:
    """States (..., 2^n) rotated so that a Z readout of every qubit measures ``bases``."""
    psi = np.asarray(states, dtype=complex)
    n = len(bases)
    if psi.shape[-1] != 1 << n:
        raise MeasurementError(f"setting {bases}: states of dimension {psi.shape[-1]}, not 2^{n}")
    lead = psi.shape[:-1]
    out = psi.reshape((*lead, *([2] * n)))
    for q, letter in enumerate(bases):
        if letter != "Z":
            axis = len(lead) + q
            out = np.moveaxis(np.tensordot(ROTATIONS[letter], out, axes=([1], [axis])), 0, axis)
    return np.asarray(out.reshape(psi.shape))


def outcome_probabilities(states: ArrayLike, bases: str, readout: ReadoutErrors | None = None) -> NDArray:
    """Probabilities (..., 2^n) of the read outcomes of ``states`` in the setting ``bases``."""
    p = np.abs(rotate(states, bases)) ** 2
    if readout is not None and not readout.trivial:
        readout.check(len(bases))
        p = readout.apply_to_distribution(p)
    p = np.clip(p, 0.0, None)
    return np.asarray(p / p.sum(axis=-1, keepdims=True))


def sample_counts(
    states: ArrayLike,
    bases: str,
    shots: int | ArrayLike,
    rng: np.random.Generator,
    readout: ReadoutErrors | None = None,
) -> NDArray:
    """Counts per outcome (..., 2^n) of ``shots`` reads of each state in the setting ``bases``.

    The readout errors act on the outcome distribution (each shot's bits flip independently), which
    gives the same distribution of counts as flipping the bits shot by shot.
    """
    n_shots = np.asarray(shots)
    if not np.issubdtype(n_shots.dtype, np.integer) or (n_shots < 0).any() or (n_shots > MAX_SHOTS).any():
        raise MeasurementError(
            f"sampling: shots {shown(shots)} must be non-negative integers, at most {MAX_SHOTS}"
        )
    p = outcome_probabilities(states, bases, readout)
    return np.asarray(rng.multinomial(n_shots, p))


def bits_of(outcomes: ArrayLike, n_qubits: int) -> NDArray:
    """Bits (..., n) of basis indices, qubit 0 first (the most significant bit)."""
    idx = np.asarray(outcomes, dtype=np.int64)
    shifts = np.arange(n_qubits - 1, -1, -1)
    return np.asarray((idx[..., None] >> shifts) & 1, dtype=np.uint8)


def index_of(bits: ArrayLike) -> NDArray:
    """Basis indices of bits (..., n), qubit 0 first."""
    b = np.asarray(bits, dtype=np.int64)
    weights = 1 << np.arange(b.shape[-1] - 1, -1, -1)
    return np.asarray(b @ weights)


def sample_bitstrings(
    state: ArrayLike,
    bases: str,
    shots: int,
    rng: np.random.Generator,
    readout: ReadoutErrors | None = None,
) -> NDArray:
    """``shots`` single reads (shots, n) of one state in ``bases``; readout errors flip each shot's
    bits independently after the projective measurement. Memory grows with ``shots`` (checked
    against the limit); :func:`sample_counts` draws counts at once instead."""
    n = len(bases)
    require_memory(f"sampling: {shots} single reads of {n} qubits", (READ_BYTES + BIT_BYTES * n) * shots)
    p = outcome_probabilities(state, bases)
    if p.ndim != 1:
        raise MeasurementError(f"sampling: one state at a time, got shape {np.shape(state)}")
    outcomes = rng.choice(len(p), size=shots, p=p)
    bits = bits_of(outcomes, len(bases))
    if readout is not None and not readout.trivial:
        bits = readout.flip(bits, rng)
    return bits


def counts_of(bits: ArrayLike, n_qubits: int) -> NDArray:
    """Dense counts (2^n,) of single reads (shots, n)."""
    b = np.asarray(bits)
    if b.ndim != 2 or b.shape[1] != n_qubits:
        raise MeasurementError(f"counts: bits of shape {b.shape}, expected (shots, {n_qubits})")
    return np.bincount(index_of(b), minlength=1 << n_qubits)
