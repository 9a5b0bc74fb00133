"""Pauli strings compiled for state vectors on n qubits.

A Pauli string P with flip mask m (its X and Y factors) maps ``|c XOR m>`` to ``|c>`` with a phase, so
every operator that is a combination of strings is, row by row,

    (H psi)[c] = sum_g D[c, g] * psi[c XOR m_g]

over the distinct flip masks m_g ("row elements" D, one column per mask). :class:`OperatorTable`
groups a fixed list of strings by mask once and tabulates their matrix elements (or computes them on
the fly when the table would be large); afterwards compiled kernels turn any batch of real
coefficient vectors into row elements, apply them to states, and give all string expectation
values of a batch of states, with no Python loop over terms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from qep_analog.errors import ConfigError
from qep_analog.model.pauli import PauliString

#: Above this many table entries (strings x basis states) string values are computed on demand.
TABLE_ENTRY_LIMIT = 1 << 24
#: From this dimension on, one matrix-vector product is split over threads.
PARALLEL_DIM = 1 << 14


@numba.njit(cache=True, nogil=True)
def _apply_rows(diagonals: NDArray, masks: NDArray, psi: NDArray, out: NDArray, lo: int, hi: int) -> None:
    n_groups = diagonals.shape[1]
    for c in range(lo, hi):
        total = diagonals[c, 0] * psi[c ^ masks[0]]
        for g in range(1, n_groups):
            total += diagonals[c, g] * psi[c ^ masks[g]]
        out[c] = total


@numba.njit(cache=True, nogil=True)
def apply_diagonals(diagonals: NDArray, masks: NDArray, psi: NDArray, out: NDArray) -> None:
    """``out[c] = sum_g diagonals[c, g] * psi[c ^ masks[g]]`` (``out`` is overwritten)."""
    _apply_rows(diagonals, masks, psi, out, 0, diagonals.shape[0])


@numba.njit(cache=True, parallel=True)
def apply_diagonals_parallel(diagonals: NDArray, masks: NDArray, psi: NDArray, out: NDArray) -> None:
    """:func:`apply_diagonals` with the basis split over threads (for large state vectors)."""
    dim = diagonals.shape[0]
    chunk = 4096
    for block in numba.prange((dim + chunk - 1) // chunk):
        _apply_rows(diagonals, masks, psi, out, block * chunk, min(block * chunk + chunk, dim))


@numba.njit(cache=True, parallel=True)
def _combine(coefficients: NDArray, table: NDArray, group_of: NDArray, out: NDArray) -> None:
    """``out[b, :, g] = sum over strings s of group g of coefficients[b, s] * table[s]``."""
    batch, n_strings = coefficients.shape
    dim = table.shape[1]
    for b in numba.prange(batch):
        out[b] = 0.0
        for s in range(n_strings):
            a = coefficients[b, s]
            if a != 0.0:
                g = group_of[s]
                for c in range(dim):
                    out[b, c, g] += a * table[s, c]


@numba.njit(cache=True, parallel=True)
def _expectations(
    bras: NDArray, kets: NDArray, table: NDArray, string_masks: NDArray, out: NDArray
) -> None:
    """``out[b, s] = Re sum_c conj(bras[b, c]) table[s, c] kets[b, c ^ m_s]``."""
    batch, dim = bras.shape
    for b in numba.prange(batch):
        for s in range(table.shape[0]):
            m = string_masks[s]
            total = 0.0 * table[0, 0] * bras[0, 0]
            for c in range(dim):
                total += np.conj(bras[b, c]) * table[s, c] * kets[b, c ^ m]
            out[b, s] = total.real


@numba.njit(cache=True, inline="always")
def _parity(v: int) -> int:
    """Parity of the set bits of a non-negative integer below 2^63."""
    v ^= v >> 32
    v ^= v >> 16
    v ^= v >> 8
    v ^= v >> 4
    v ^= v >> 2
    v ^= v >> 1
    return v & 1


@numba.njit(cache=True, parallel=True)
def _combine_on_demand(
    coefficients: NDArray, x_masks: NDArray, z_masks: NDArray, phases: NDArray,
    group_of: NDArray, out: NDArray,
) -> None:  # fmt: skip
    """:func:`_combine` with the string elements computed on the fly (no table in memory)."""
    batch, n_strings = coefficients.shape
    for c in numba.prange(out.shape[1]):
        for s in range(n_strings):
            value = (1 - 2 * _parity((c ^ x_masks[s]) & z_masks[s])) * phases[s]
            g = group_of[s]
            for b in range(batch):
                out[b, c, g] += coefficients[b, s] * value


@numba.njit(cache=True, parallel=True)
def _expectations_on_demand(
    bras: NDArray, kets: NDArray, x_masks: NDArray, z_masks: NDArray, phases: NDArray,
    out: NDArray,
) -> None:  # fmt: skip
    """:func:`_expectations` with the string elements computed on the fly."""
    batch, dim = bras.shape
    n_strings = x_masks.shape[0]
    chunks = 64
    partial = np.zeros((chunks, batch, n_strings))
    for k in numba.prange(chunks):
        lo = k * dim // chunks
        hi = (k + 1) * dim // chunks
        for b in range(batch):
            for s in range(n_strings):
                m, z, phase = x_masks[s], z_masks[s], phases[s]
                total = 0.0 * phase * bras[0, 0]
                for c in range(lo, hi):
                    sign = 1 - 2 * _parity((c ^ m) & z)
                    total += np.conj(bras[b, c]) * sign * kets[b, c ^ m]
                partial[k, b, s] = (phase * total).real
    out[:] = partial.sum(axis=0)


def table_bytes(n_qubits: int, n_strings: int) -> int:
    """The bytes an :class:`OperatorTable` allocates: the basis indices (int64 per amplitude) and,
    when at most ``TABLE_ENTRY_LIMIT`` entries, the strings' matrix elements (complex128 per
    string and amplitude at most)."""
    dim = 1 << n_qubits
    entries = n_strings * dim
    return 8 * dim + (16 * entries if entries <= TABLE_ENTRY_LIMIT else 0)


class OperatorTable:
    """A fixed list of Pauli strings on ``n_qubits``, grouped by flip mask.

    ``dtype`` is float64 when every string has an even number of Y factors (then every real
    combination is a real symmetric matrix), complex128 otherwise.
    """

    def __init__(self, n_qubits: int, strings: Sequence[PauliString]) -> None:
        if n_qubits < 1:
            raise ConfigError(f"OperatorTable: n_qubits = {n_qubits} must be at least 1")
        beyond = [s.label for s in strings if s.max_qubit >= n_qubits]
        if beyond:
            raise ConfigError(f"OperatorTable: {beyond[0]} acts beyond n_qubits = {n_qubits}")
        self.n_qubits = n_qubits
        self.dim = 1 << n_qubits
        self.strings = list(strings)
        self.index = {s: k for k, s in enumerate(self.strings)}
        self.real = all(s.n_y % 2 == 0 for s in self.strings)
        self.dtype: type = np.float64 if self.real else np.complex128
        x = np.array([s.x_mask(n_qubits) for s in self.strings], dtype=np.int64)
        self._z = np.array([s.z_mask(n_qubits) for s in self.strings], dtype=np.int64)
        self._phase = np.array([(1j) ** (s.n_y % 4) for s in self.strings])
        self._phases = self._phase.real.copy() if self.real else self._phase
        self.masks, self.group_of = np.unique(np.concatenate([[0], x]), return_inverse=True)
        self.group_of = self.group_of[1:]
        self.members = [np.flatnonzero(self.group_of == g) for g in range(len(self.masks))]
        self._string_masks = x
        self._basis = np.arange(self.dim, dtype=np.int64)
        self._table: NDArray | None = None
        if len(self.strings) * self.dim <= TABLE_ENTRY_LIMIT:
            self._table = self._compute_values(np.arange(len(self.strings)))

    @property
    def n_groups(self) -> int:
        """Number of distinct flip masks (including the diagonal, mask 0)."""
        return len(self.masks)

    def _compute_values(self, which: NDArray) -> NDArray:
        """Matrix elements ``<c|P_s|c ^ m_s>`` for strings ``which``, shape (len(which), dim)."""
        out: NDArray = np.empty((len(which), self.dim), dtype=self.dtype)
        for row, s in enumerate(which):
            flipped = self._basis ^ self.masks[self.group_of[s]]
            parity = np.bitwise_count(flipped & self._z[s]) & 1
            sign = 1.0 - 2.0 * parity.astype(np.float64)
            phase = self._phase[s]
            out[row] = sign * (phase.real if self.real else phase)
        return out

    def values(self, which: NDArray) -> NDArray:
        """Matrix elements of strings ``which`` (see :meth:`_compute_values`), cached when small."""
        if self._table is not None:
            return self._table[which]
        return self._compute_values(which)

    def diagonals(self, coefficients: NDArray) -> NDArray:
        """Row elements ``D`` of ``sum_s a_s P_s``: shape (dim, n_groups), or (B, dim, n_groups).

        ``coefficients`` has shape (n_strings,) or (B, n_strings); they are real.
        """
        a = np.asarray(coefficients, dtype=np.float64)
        batched = a.ndim == 2
        a2 = a if batched else a[None, :]
        out: NDArray = np.zeros((a2.shape[0], self.dim, self.n_groups), dtype=self.dtype)
        if self._table is not None:
            _combine(np.ascontiguousarray(a2), self._table, self.group_of, out)
        else:
            _combine_on_demand(
                np.ascontiguousarray(a2), self._string_masks, self._z, self._phases,
                self.group_of, out,
            )  # fmt: skip
        return out if batched else out[0]

    def sparse(self, coefficients: NDArray) -> sp.csr_matrix:
        """``sum_s a_s P_s`` as a CSR matrix (assembled from the bit structure, no Kronecker)."""
        data = self.diagonals(coefficients).ravel()
        indices = (self._basis[:, None] ^ self.masks[None, :]).ravel()
        indptr = np.arange(0, self.dim * self.n_groups + 1, self.n_groups)
        return sp.csr_matrix((data, indices, indptr), shape=(self.dim, self.dim))

    def dense(self, coefficients: NDArray) -> NDArray:
        """``sum_s a_s P_s`` as a dense array (for small systems and tests)."""
        return self.sparse(coefficients).toarray()

    def apply(self, diagonals: NDArray, psi: NDArray) -> NDArray:
        """Apply the operator with ``diagonals`` (from :meth:`diagonals`) to one state vector."""
        out = np.empty(self.dim, dtype=np.result_type(diagonals, psi))
        kernel = apply_diagonals_parallel if self.dim >= PARALLEL_DIM else apply_diagonals
        kernel(diagonals, self.masks, np.ascontiguousarray(psi, dtype=out.dtype), out)
        return out

    def expectations(self, states: NDArray, kets: NDArray | None = None) -> NDArray:
        """``<psi|P_s|psi>`` of every string for normalised ``states`` (dim,) or (B, dim).

        With ``kets``, the real parts ``Re <psi|P_s|ket>`` instead.
        """
        psi = np.asarray(states)
        batched = psi.ndim == 2
        psi2 = psi if batched else psi[None, :]
        ket2 = psi2 if kets is None else np.asarray(kets).reshape(psi2.shape)
        out = np.empty((psi2.shape[0], len(self.strings)))
        dtype = np.result_type(psi2, ket2, self.dtype)
        bras = np.ascontiguousarray(psi2, dtype=dtype)
        kets_c = np.ascontiguousarray(ket2, dtype=dtype)
        if self._table is not None:
            _expectations(bras, kets_c, self._table, self._string_masks, out)
        else:
            _expectations_on_demand(bras, kets_c, self._string_masks, self._z, self._phases, out)
        return out if batched else out[0]

    def trace_with(self, matrix: NDArray) -> NDArray:
        """``Tr(rho P_s)`` of every string for a dense density matrix ``rho`` (dim, dim)."""
        out = np.empty(len(self.strings))
        rows = self._basis
        for g, members in enumerate(self.members):
            if not len(members):
                continue
            # Tr(rho P) = sum_c <c|P|c^m> rho[c^m, c]
            elements = matrix[rows ^ self.masks[g], rows]
            out[members] = (self.values(members) @ elements).real
        return out
