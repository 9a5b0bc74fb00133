"""Atom positions that realise desired van der Waals couplings J_ij = C6 / (4 r_ij⁶).

Chains from nearest-neighbour couplings, regular 2D lattices, and any coupling pattern that some
geometry realises (classical multidimensional scaling, refined by least squares); a pattern that no
geometry in the device's dimensions realises is refused with the worst pair named.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares
from scipy.spatial.distance import pdist, squareform

from qep_analog.errors import ConstraintError
from qep_analog.memory import require_memory

# Pulser compares distances after rounding coordinates to 1e-6 µm; so do we.
COORD_PRECISION_UM = 1e-6
#: float64 arrays of the least-squares Jacobian's size (pairs x coordinates) alive while a register
#: is fitted to a coupling pattern: SciPy's finite-difference Jacobian, the previous one, its scaled
#: copy and its SVD (measured with tracemalloc: about nine at 30 and 40 atoms)
JACOBIAN_COPIES = 10
#: n x n float64 matrices of the fit beside the Jacobian (the couplings' checks, the target distances,
#: the multidimensional scaling's centring, Gram matrix and eigenvectors, the achieved couplings)
FIT_MATRICES = 8


#: n x n float64 matrices of :func:`zz_couplings`: the pair distances (half), the square form, its
#: sixth power and the couplings
COUPLING_MATRICES = 4


def register_fit_bytes(n_atoms: int, dimensions: int = 2) -> int:
    """The bytes :func:`positions_for_couplings` allocates for ``n_atoms`` in ``dimensions``."""
    pairs = n_atoms * (n_atoms - 1) // 2
    return 8 * (JACOBIAN_COPIES * pairs * n_atoms * dimensions + FIT_MATRICES * n_atoms * n_atoms)


def coupling_distance(coupling: NDArray | float, c6: float) -> NDArray:
    """The distance r (µm) at which two atoms couple with J = C6 / (4 r⁶) (ZZ convention)."""
    return np.asarray((c6 / (4.0 * np.asarray(coupling, dtype=float))) ** (1.0 / 6.0))


def zz_couplings(positions: NDArray, c6: float) -> NDArray:
    """J_ij = C6 / (4 r_ij⁶) for every pair (zero diagonal): the ZZ part of C6/r⁶ n_i n_j."""
    pts = np.atleast_2d(np.asarray(positions, dtype=float))
    if len(pts) < 2:
        return np.zeros((len(pts), len(pts)))
    n = len(pts)
    require_memory(f"couplings of {n} atoms", 8 * COUPLING_MATRICES * n * n)
    distances = squareform(pdist(pts))
    np.fill_diagonal(distances, np.inf)
    return np.asarray(c6 / (4.0 * distances**6))


def _centred(points: NDArray) -> NDArray:
    return points - points.mean(axis=0)


def chain_positions(nearest_neighbour: NDArray, c6: float) -> NDArray:
    """A centred chain along x whose neighbours couple with ``nearest_neighbour[k]`` (rad/µs, > 0)."""
    couplings = np.asarray(nearest_neighbour, dtype=float)
    if np.any(~(couplings > 0)):
        bad = couplings[~(couplings > 0)][0]
        raise ConstraintError(
            f"chain: nearest-neighbour coupling {bad:.6g} rad/µs is not positive; van der Waals "
            "interactions between Rydberg atoms are repulsive (J > 0)"
        )
    x = np.concatenate([[0.0], np.cumsum(coupling_distance(couplings, c6))])
    return _centred(np.column_stack([x, np.zeros_like(x)]))


def lattice_positions(rows: int, columns: int, spacing: float, kind: str = "square") -> NDArray:
    """A centred square or triangular lattice with the given spacing (µm), row by row."""
    if kind not in ("square", "triangular"):
        raise ConstraintError(f"lattice: kind {kind!r} is not 'square' or 'triangular'")
    if rows < 1 or columns < 1 or not spacing > 0:
        raise ConstraintError(f"lattice: {rows}x{columns} with spacing {spacing} µm is not a lattice")
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    x = c.astype(float) + (0.5 * (r % 2) if kind == "triangular" else 0.0)
    y = r.astype(float) * (np.sqrt(3) / 2 if kind == "triangular" else 1.0)
    return _centred(spacing * np.column_stack([x.ravel(), y.ravel()]))


def positions_for_couplings(
    couplings: NDArray, c6: float, dimensions: int = 2, rtol: float = 1e-9
) -> NDArray:
    """Positions (n, dimensions) whose couplings C6/(4 r⁶) equal ``couplings`` to ``rtol`` relative.

    Every pair must couple (J_ij > 0): a van der Waals interaction never vanishes. The embedding comes
    from classical multidimensional scaling of the implied distances, refined by least squares on
    log-distances; if the best geometry misses a coupling by more than ``rtol`` the pattern is refused.
    """
    j = np.asarray(couplings, dtype=float)
    n = len(j)
    if j.shape != (n, n) or not np.allclose(j, j.T, rtol=0, atol=1e-12 * max(1.0, np.abs(j).max())):
        raise ConstraintError(f"couplings: shape {j.shape} is not a symmetric n x n matrix")
    if n == 1:
        return np.zeros((1, dimensions))
    upper = j[np.triu_indices(n, 1)]
    if np.any(~(upper > 0)):
        i, k = np.argwhere(np.triu(~(j > 0), 1))[0]
        raise ConstraintError(
            f"couplings: J[{i},{k}] = {j[i, k]:.6g} rad/µs; no geometry realises it (van der Waals "
            "couplings are positive for every pair)"
        )
    require_memory(f"register fit: {n} atoms in {dimensions}D", register_fit_bytes(n, dimensions))
    target = squareform(coupling_distance(upper, c6))
    # Classical MDS: the top eigenvectors of the double-centred squared-distance matrix.
    centre = np.eye(n) - np.ones((n, n)) / n
    gram = -0.5 * centre @ target**2 @ centre
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:dimensions]
    start = vectors[:, top] * np.sqrt(np.clip(values[top], 0.0, None))
    pairs = np.triu_indices(n, 1)

    def residual(flat: NDArray) -> NDArray:
        pts = flat.reshape(n, dimensions)
        d = np.linalg.norm(pts[pairs[0]] - pts[pairs[1]], axis=1)
        return np.log(np.maximum(d, 1e-300)) - np.log(target[pairs])

    fit = least_squares(residual, start.ravel(), xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=2000)
    positions = _centred(fit.x.reshape(n, dimensions))
    achieved = zz_couplings(positions, c6)
    error = np.abs(achieved - j) / j.max()
    np.fill_diagonal(error, 0.0)
    if error.max() > rtol:
        i, k = np.unravel_index(np.argmax(error), error.shape)
        raise ConstraintError(
            f"couplings: no {dimensions}D geometry realises the pattern: J[{i},{k}] wanted "
            f"{j[i, k]:.6g} rad/µs, best geometry gives {achieved[i, k]:.6g} "
            f"(relative error {error[i, k]:.2e} > {rtol:.0e})"
        )
    return positions
