"""Restarted Lanczos, compiled, for batches of ground states.

Each member of a batch is its own Hamiltonian, given by its row elements over shared flip masks
(see :mod:`qep_analog.model.operators`). A cycle builds a Krylov space of at most ``krylov`` vectors
from the current vector, takes the lowest Ritz pair and restarts from it until the residual norm
``||H psi - E psi||`` is below ``tol``. Warm starts (a nudged state from its free state) cut the
number of cycles. Small systems are solved side by side, one member per thread, with full
reorthogonalisation; large ones one after the other, each product split over the threads, with a
three-term recurrence and an exactly computed residual (see :func:`lanczos_ground_state`).

Single-vector Krylov methods see one vector of a degenerate eigenspace only, so the second Ritz value
is not a safe gap. The gap is therefore computed by a second solve on the deflated operator
``H + shift |psi0><psi0|``, whose ground state is the first excited state (degenerate partner
included).
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from qep_analog.model.operators import PARALLEL_DIM, apply_diagonals, apply_diagonals_parallel

#: Inside a cycle, the Ritz residual is checked every this many steps (to stop warm starts early).
CHECK_EVERY = 5
#: Small systems: the Krylov space doubles every this many unconverged cycles ...
GROW_EVERY = 10
#: ... up to this multiple of its initial size.
MAX_GROWTH = 8


@numba.njit(cache=True, nogil=True, fastmath=True)
def inner(a, b):  # type: ignore[no-untyped-def]
    """<a|b> = sum conj(a) b."""
    total = 0.0 * a[0] * b[0]
    for k in range(a.shape[0]):
        total += np.conj(a[k]) * b[k]
    return total


@numba.njit(cache=True, nogil=True)
def _apply(diagonals, masks, psi, out, deflate, shift, threaded):  # type: ignore[no-untyped-def]
    if threaded:
        apply_diagonals_parallel(diagonals, masks, psi, out)
    else:
        apply_diagonals(diagonals, masks, psi, out)
    if shift != 0.0:
        overlap = inner(deflate, psi)
        for c in range(out.shape[0]):
            out[c] += shift * overlap * deflate[c]


@numba.njit(cache=True, nogil=True)
def _ritz(alpha, beta, size):  # type: ignore[no-untyped-def]
    """Eigen-decomposition of the leading ``size`` x ``size`` Lanczos tridiagonal matrix."""
    tri = np.zeros((size, size))
    for j in range(size):
        tri[j, j] = alpha[j]
        if j + 1 < size:
            tri[j, j + 1] = beta[j]
            tri[j + 1, j] = beta[j]
    return np.linalg.eigh(tri)


@numba.njit(cache=True, nogil=True)
def _ritz_residual(alpha, beta, size):  # type: ignore[no-untyped-def]
    """Residual norm |beta_{size-1} y_{size-1}| of the lowest Ritz pair of the leading block."""
    _, vectors = _ritz(alpha, beta, size)
    return abs(beta[size - 1] * vectors[size - 1, 0])


@numba.njit(cache=True, nogil=True)
def lanczos_ground_state(  # type: ignore[no-untyped-def]
    diagonals, masks, start, tol, krylov, max_cycles, deflate, shift, out, large
):
    """Lowest eigenpair of one operator. Writes the state to ``out``.

    Small systems (``large`` False): full reorthogonalisation against the Krylov basis and the
    residual estimated from the tridiagonal matrix. Large systems, where reading the whole basis
    every step costs more than the product itself: three-term recurrence only, products split over
    threads, and the residual of each cycle's Ritz vector computed exactly (one extra product).

    Restarting from one Ritz vector converges slowly when the lowest levels are nearly degenerate;
    for small systems the Krylov space therefore doubles every ``GROW_EVERY`` unconverged cycles,
    up to ``MAX_GROWTH`` times its initial size.

    Returns ``(energy, residual, n_matvec, converged)``.
    """
    dim = start.shape[0]
    krylov = min(krylov, dim)
    largest = krylov if large else min(dim, MAX_GROWTH * krylov)
    basis = np.zeros((largest + 1, dim), dtype=out.dtype)
    w = np.zeros(dim, dtype=out.dtype)
    alpha = np.zeros(largest)
    beta = np.zeros(largest)
    x = start / np.sqrt(inner(start, start).real)
    # the estimate steers early stops only when the residual is computed exactly afterwards
    early_tol = 0.1 * tol if large else tol
    energy, residual, n_matvec = 0.0, np.inf, 0
    for cycle in range(max_cycles):
        if cycle > 0 and cycle % GROW_EVERY == 0:
            krylov = min(2 * krylov, largest)
        basis[0] = x
        used = krylov
        for j in range(krylov):
            _apply(diagonals, masks, basis[j], w, deflate, shift, large)
            n_matvec += 1
            a = inner(basis[j], w).real
            alpha[j] = a
            previous = beta[j - 1] if j > 0 else 0.0
            for k in range(dim):
                w[k] -= a * basis[j, k]
            if j > 0:
                for k in range(dim):
                    w[k] -= previous * basis[j - 1, k]
            if not large:
                for i in range(j + 1):  # full reorthogonalisation, one classical Gram-Schmidt sweep
                    c = inner(basis[i], w)
                    for k in range(dim):
                        w[k] -= c * basis[i, k]
            b = np.sqrt(inner(w, w).real)
            beta[j] = b
            if b <= 1e-13 * max(1.0, abs(a)):
                used = j + 1
                beta[j] = 0.0
                break
            inverse = 1.0 / b
            for k in range(dim):
                basis[j + 1, k] = w[k] * inverse
            if (j + 1) % CHECK_EVERY == 0 and j + 1 < krylov:
                if _ritz_residual(alpha, beta, j + 1) < early_tol:
                    used = j + 1
                    break
        values, vectors = _ritz(alpha, beta, used)
        energy = values[0]
        residual = abs(beta[used - 1] * vectors[used - 1, 0])
        x = np.zeros(dim, dtype=out.dtype)
        for j in range(used):
            coefficient = vectors[j, 0]
            for k in range(dim):
                x[k] += coefficient * basis[j, k]
        x /= np.sqrt(inner(x, x).real)
        if large:
            _apply(diagonals, masks, x, w, deflate, shift, large)
            n_matvec += 1
            energy = inner(x, w).real
            for k in range(dim):
                w[k] -= energy * x[k]
            residual = np.sqrt(inner(w, w).real)
        if residual < tol:
            break
    out[:] = x
    return energy, residual, n_matvec, residual < tol


@numba.njit(cache=True, nogil=True)
def _solve_member(diagonals, masks, starts, tol, krylov, max_cycles, deflate, shifts, out, info, b, large):  # type: ignore[no-untyped-def]
    energy, residual, n_matvec, converged = lanczos_ground_state(
        diagonals[b], masks, starts[b], tol, krylov, max_cycles, deflate[b], shifts[b], out[b],
        large,
    )  # fmt: skip
    info[b, 0] = energy
    info[b, 1] = residual
    info[b, 2] = n_matvec
    info[b, 3] = 1.0 if converged else 0.0


@numba.njit(cache=True, parallel=True)
def _side_by_side(diagonals, masks, starts, tol, krylov, max_cycles, deflate, shifts, out, info):  # type: ignore[no-untyped-def]
    for b in numba.prange(diagonals.shape[0]):
        _solve_member(
            diagonals, masks, starts, tol, krylov, max_cycles, deflate, shifts, out, info, b, False
        )


@numba.njit(cache=True)
def _one_by_one(diagonals, masks, starts, tol, krylov, max_cycles, deflate, shifts, out, info):  # type: ignore[no-untyped-def]
    for b in range(diagonals.shape[0]):
        _solve_member(
            diagonals, masks, starts, tol, krylov, max_cycles, deflate, shifts, out, info, b, True
        )


def batched_lanczos(
    diagonals: NDArray,
    masks: NDArray,
    starts: NDArray,
    tol: float,
    krylov: int = 40,
    max_cycles: int = 200,
    deflate: NDArray | None = None,
    shifts: NDArray | None = None,
) -> tuple[NDArray, NDArray]:
    """Ground states of a batch: row elements (B, dim, G) (see ``OperatorTable.diagonals``),
    starts (B, dim).

    With ``deflate`` (B, dim) and ``shifts`` (B,), solves ``H + shift |d><d|`` instead. Small
    systems are solved side by side, one per thread; from ``PARALLEL_DIM`` on, one after the
    other with each product split over the threads (see :func:`lanczos_ground_state`).
    Returns ``(states (B, dim), info (B, 4))`` with info columns energy, residual, matvecs, converged.
    """
    batch, dim, _ = diagonals.shape
    dtype = diagonals.dtype
    out = np.empty((batch, dim), dtype=dtype)
    info = np.empty((batch, 4))
    if deflate is None or shifts is None:
        deflate = np.zeros((batch, 1), dtype=dtype)
        shifts = np.zeros(batch)
    driver = _one_by_one if dim >= PARALLEL_DIM else _side_by_side
    # Members differ in cost (40 to 200 products): hand them to the threads one at a time.
    previous_chunk = numba.set_parallel_chunksize(1)
    try:
        driver(
            np.ascontiguousarray(diagonals),
            np.ascontiguousarray(masks, dtype=np.int64),
            np.ascontiguousarray(starts, dtype=dtype),
            float(tol),
            int(krylov),
            int(max_cycles),
            np.ascontiguousarray(deflate, dtype=dtype),
            np.ascontiguousarray(shifts, dtype=np.float64),
            out,
            info,
        )
    finally:
        numba.set_parallel_chunksize(previous_chunk)
    return out, info
