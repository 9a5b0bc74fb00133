"""The lowest levels of a real symmetric matrix and its ground state's response, from one
tridiagonal reduction, in compiled code that releases the GIL.

``H = Q T Qᵀ`` (LAPACK ``dsytrd``, Householder); the lowest k levels of T (``dstemr``) are turned
into those of H (``dormtr``) — what ``scipy.linalg.eigh(..., subset_by_index=[0, k-1])`` computes.
The same reduction then gives the ground state's response ‖(H − E₀)⁺ b‖ for b ⊥ |0⟩ at O(N²):
‖(T − E₀)⁺ Qᵀb‖, one tridiagonal solve (``dgtsv``) whose error along the null vector z₀ of
T − E₀ is projected out (as in inverse iteration: the error of a backward-stable solve of a nearly
singular system lies along its null vector), in place of a Cholesky factorisation of the dense
H − E₀ + Δ|0⟩⟨0| (N³/3). LAPACK is SciPy's (``scipy.linalg.cython_lapack``), called from Numba.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import binding
from numba import types
from numba.extending import get_cython_function_address
from numpy.typing import NDArray


def _lapack(name: str, arguments: int) -> types.ExternalFunction:
    """SciPy's LAPACK routine ``name`` as a symbol the compiled code links by name (so that it can
    be cached), every argument a pointer."""
    symbol = f"qep_analog_{name}"
    binding.add_symbol(symbol, get_cython_function_address("scipy.linalg.cython_lapack", name))
    return types.ExternalFunction(symbol, types.void(*([types.voidptr] * arguments)))


_dsytrd = _lapack("dsytrd", 10)
_dstemr = _lapack("dstemr", 21)
_dormtr = _lapack("dormtr", 13)
_dgtsv = _lapack("dgtsv", 8)


@numba.njit(cache=True, nogil=True)
def _int(value):  # type: ignore[no-untyped-def]
    return np.array([value], np.int32)


@numba.njit(cache=True, nogil=True)
def _char(letter):  # type: ignore[no-untyped-def]
    return np.array([ord(letter)], np.uint8)


@numba.njit(cache=True, nogil=True)
def _reduce(matrix, k):  # type: ignore[no-untyped-def]
    """(reflectors, τ, diagonal, off-diagonal, the k lowest values, their vectors of T (k × N),
    of H (k × N), LAPACK's info); ``matrix`` is overwritten by the reflectors."""
    n = matrix.shape[0]
    size, info, query = _int(n), _int(0), np.empty(1)
    lower = _char("L")
    diagonal, off, tau = np.empty(n), np.empty(max(n - 1, 1)), np.empty(max(n - 1, 1))
    _dsytrd(lower.ctypes, size.ctypes, matrix.ctypes, size.ctypes, diagonal.ctypes, off.ctypes,
            tau.ctypes, query.ctypes, _int(-1).ctypes, info.ctypes)  # fmt: skip
    work = np.empty(int(query[0]))
    _dsytrd(lower.ctypes, size.ctypes, matrix.ctypes, size.ctypes, diagonal.ctypes, off.ctypes,
            tau.ctypes, work.ctypes, _int(len(work)).ctypes, info.ctypes)  # fmt: skip
    values, tridiagonal = np.empty(n), np.zeros((k, n))
    if info[0] != 0:
        return matrix, tau, diagonal, off, values[:k], tridiagonal, tridiagonal.copy(), info[0]
    d, e = diagonal.copy(), np.zeros(n)
    e[: n - 1] = off[: n - 1]
    found, vl, vu, tryrac, support = _int(0), np.zeros(1), np.zeros(1), _int(1), np.empty(2 * k, np.int32)
    iquery = _int(0)
    for phase in range(2):  # workspace query, then the solve
        lwork = _int(-1) if phase == 0 else _int(int(query[0]))
        liwork = _int(-1) if phase == 0 else _int(iquery[0])
        wbuf = query if phase == 0 else np.empty(lwork[0])
        ibuf = iquery if phase == 0 else np.empty(liwork[0], np.int32)
        _dstemr(_char("V").ctypes, _char("I").ctypes, size.ctypes, d.ctypes, e.ctypes, vl.ctypes,
                vu.ctypes, _int(1).ctypes, _int(k).ctypes, found.ctypes, values.ctypes,
                tridiagonal.ctypes, size.ctypes, _int(k).ctypes, support.ctypes, tryrac.ctypes,
                wbuf.ctypes, lwork.ctypes, ibuf.ctypes, liwork.ctypes, info.ctypes)  # fmt: skip
        if info[0] != 0:
            return matrix, tau, diagonal, off, values[:k], tridiagonal, tridiagonal.copy(), info[0]
        if phase == 0:
            d, e = diagonal.copy(), np.zeros(n)
            e[: n - 1] = off[: n - 1]
    vectors = tridiagonal.copy()
    _apply_q(matrix, tau, vectors, "N")
    return matrix, tau, diagonal, off, values[:k], tridiagonal, vectors, 0


@numba.njit(cache=True, nogil=True)
def _apply_q(reflectors, tau, columns, transpose):  # type: ignore[no-untyped-def]
    """``columns`` (m × N: m vectors) ← Q·(each) or Qᵀ·(each), in place."""
    n, m = reflectors.shape[0], columns.shape[0]
    size, count, info, query = _int(n), _int(m), _int(0), np.empty(1)
    side, lower, trans = _char("L"), _char("L"), _char(transpose)
    _dormtr(side.ctypes, lower.ctypes, trans.ctypes, size.ctypes, count.ctypes, reflectors.ctypes,
            size.ctypes, tau.ctypes, columns.ctypes, size.ctypes, query.ctypes, _int(-1).ctypes,
            info.ctypes)  # fmt: skip
    work = np.empty(max(int(query[0]), 1))
    _dormtr(side.ctypes, lower.ctypes, trans.ctypes, size.ctypes, count.ctypes, reflectors.ctypes,
            size.ctypes, tau.ctypes, columns.ctypes, size.ctypes, work.ctypes, _int(len(work)).ctypes,
            info.ctypes)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _response(reflectors, tau, diagonal, off, energy, null, projected):  # type: ignore[no-untyped-def]
    """‖(T − E₀)⁺ Qᵀ b‖ (−1 when the tridiagonal solve meets an exact zero pivot)."""
    n = reflectors.shape[0]
    rhs = projected.copy().reshape((1, n))
    _apply_q(reflectors, tau, rhs, "T")
    below, above, shifted = off[: n - 1].copy(), off[: n - 1].copy(), diagonal - energy
    info = _int(0)
    _dgtsv(_int(n).ctypes, _int(1).ctypes, below.ctypes, shifted.ctypes, above.ctypes, rhs.ctypes,
           _int(n).ctypes, info.ctypes)  # fmt: skip
    if info[0] != 0:
        return -1.0
    solution = rhs[0]
    solution -= np.dot(null, solution) * null
    return np.sqrt(np.dot(solution, solution))


class DenseLevels:
    """The k lowest levels (``values``, ``vectors`` as columns) of a real symmetric matrix, with
    its tridiagonal reduction kept for :meth:`response`. Raises ``numpy.linalg.LinAlgError`` when
    LAPACK fails."""

    def __init__(self, matrix: NDArray[np.float64], k: int) -> None:
        n = matrix.shape[0]
        k = min(k, n)
        work = np.array(matrix, dtype=np.float64, order="C", copy=True)
        reflectors, tau, diagonal, off, values, tridiagonal, vectors, info = _reduce(work, k)
        if info != 0:
            raise np.linalg.LinAlgError(f"LAPACK failed (info {info}) on a {n}-level matrix")
        self._reduced = (reflectors, tau, diagonal, off)
        self._null = np.ascontiguousarray(tridiagonal[0])
        self.values: NDArray[np.float64] = values
        self.vectors: NDArray[np.float64] = vectors.T

    def response(self, projected: NDArray[np.float64]) -> float:
        """‖(H − E₀)⁺ b‖ for ``projected`` = b ⊥ |0⟩ (H − E₀ must be singular only along |0⟩);
        raises ``numpy.linalg.LinAlgError`` on an exact zero pivot."""
        reflectors, tau, diagonal, off = self._reduced
        energy = float(self.values[0])
        rhs = np.ascontiguousarray(projected, dtype=np.float64)
        norm = _response(reflectors, tau, diagonal, off, energy, self._null, rhs)
        if norm < 0:
            raise np.linalg.LinAlgError("singular tridiagonal system")
        return float(norm)
