"""Linear response of ground states by conjugate gradients, compiled and batched.

For each member b of a batch, solve in the complement of the ground state |psi_b>:

    Q (H_b - E_b) Q |x_b> = -Q V_b |psi_b>,     Q = 1 - |psi_b><psi_b|,

so that |x_b> = (E_b - H_b)^-1 Q V_b |psi_b> is the first-order change of the ground state under
H_b -> H_b + lambda V_b. Q (H - E) Q is positive semi-definite with the gap as its smallest non-zero
eigenvalue, so conjugate gradients converge at the rate set by gap / bandwidth.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from qep_analog.model.operators import PARALLEL_DIM, apply_diagonals, apply_diagonals_parallel
from qep_analog.solvers.lanczos import inner


@numba.njit(cache=True, nogil=True)
def _project(state, v):  # type: ignore[no-untyped-def]
    overlap = inner(state, v)
    for k in range(v.shape[0]):
        v[k] -= overlap * state[k]


@numba.njit(cache=True, nogil=True)
def response_one(elements, perturbation, masks, state, energy, rtol, max_iter, out, threaded):  # type: ignore[no-untyped-def]
    """Projected conjugate gradients for one member; writes |x> to ``out``.

    Returns ``(iterations, relative residual)``; a zero right-hand side gives x = 0 at once.
    """
    dim = state.shape[0]
    rhs = np.empty(dim, dtype=out.dtype)
    apply_diagonals(perturbation, masks, state, rhs)
    _project(state, rhs)
    norm = np.sqrt(inner(rhs, rhs).real)
    out[:] = 0.0
    if norm <= 1e-12 * max(1.0, np.abs(perturbation).max()):
        return 0, 0.0
    residual = -rhs / norm  # solve for x / norm, then rescale
    _project(state, residual)
    direction = residual.copy()
    product = np.empty(dim, dtype=out.dtype)
    rs = inner(residual, residual).real
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        if threaded:
            apply_diagonals_parallel(elements, masks, direction, product)
        else:
            apply_diagonals(elements, masks, direction, product)
        for k in range(dim):
            product[k] -= energy * direction[k]
        _project(state, product)
        curvature = inner(direction, product).real
        if not curvature > 0.0:  # H − E0 not positive along the direction (degenerate, or round-off
            break  # at extreme coefficients): stop, the residual tells the caller it failed
        alpha = rs / curvature
        for k in range(dim):
            out[k] += alpha * direction[k]
            residual[k] -= alpha * product[k]
        rs_new = inner(residual, residual).real
        if np.sqrt(rs_new) < rtol:
            break
        ratio = rs_new / rs
        for k in range(dim):
            direction[k] = residual[k] + ratio * direction[k]
        rs = rs_new
    _project(state, out)
    for k in range(dim):
        out[k] *= norm
    return iterations, np.sqrt(inner(residual, residual).real)


@numba.njit(cache=True, nogil=True)
def _solve_member(elements, perturbations, masks, states, energies, rtol, max_iter, out, info, b, threaded):  # type: ignore[no-untyped-def]
    iterations, residual = response_one(
        elements[b], perturbations[b], masks, states[b], energies[b], rtol, max_iter, out[b],
        threaded,
    )  # fmt: skip
    info[b, 0] = iterations
    info[b, 1] = residual


@numba.njit(cache=True, parallel=True)
def _side_by_side(elements, perturbations, masks, states, energies, rtol, max_iter, out, info):  # type: ignore[no-untyped-def]
    for b in numba.prange(states.shape[0]):
        _solve_member(elements, perturbations, masks, states, energies, rtol, max_iter, out, info, b, False)


@numba.njit(cache=True)
def _one_by_one(elements, perturbations, masks, states, energies, rtol, max_iter, out, info):  # type: ignore[no-untyped-def]
    for b in range(states.shape[0]):
        _solve_member(elements, perturbations, masks, states, energies, rtol, max_iter, out, info, b, True)


def batched_response(
    elements: NDArray,
    perturbations: NDArray,
    masks: NDArray,
    states: NDArray,
    energies: NDArray,
    rtol: float,
    max_iter: int = 20_000,
) -> tuple[NDArray, NDArray]:
    """(E_b - H_b)^-1 Q V_b |psi_b> for a batch; H and V by row elements (B, dim, G).

    Returns ``(responses (B, dim), info (B, 2))`` with info columns iterations and the final
    relative residual (compare with ``rtol``).
    """
    dtype = np.result_type(elements.dtype, perturbations.dtype, states.dtype)
    out = np.empty(states.shape, dtype=dtype)
    info = np.empty((states.shape[0], 2))
    driver = _one_by_one if states.shape[1] >= PARALLEL_DIM else _side_by_side
    driver(
        np.ascontiguousarray(elements, dtype=dtype),
        np.ascontiguousarray(perturbations, dtype=dtype),
        np.ascontiguousarray(masks, dtype=np.int64),
        np.ascontiguousarray(states, dtype=dtype),
        np.ascontiguousarray(energies, dtype=np.float64),
        float(rtol),
        int(max_iter),
        out,
        info,
    )
    return out, info
