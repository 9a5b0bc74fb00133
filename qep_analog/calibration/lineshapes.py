"""Line shapes the routines fit and the fake labs draw from: driven two-level populations, the
Gauss–Hermite average over quasi-static detuning noise, and the exact evolution and read-out of an
interacting pair of atoms.

Units are internal: durations in µs, Rabi frequencies, detunings and interactions in rad/µs.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.typing import ArrayLike, NDArray

NODES, _RAW_WEIGHTS = hermegauss(21)
#: Gauss–Hermite nodes (``NODES``) and weights of a standard normal average
WEIGHTS = _RAW_WEIGHTS / _RAW_WEIGHTS.sum()


def driven_population(
    durations: NDArray | float, rabis: NDArray | float, detunings: NDArray | float
) -> NDArray:
    """P(|1⟩) after a square pulse from |0⟩: Ω²/Ω′² sin²(Ω′t/2), Ω′ = √(Ω² + Δ²)."""
    rabis, detunings = np.asarray(rabis, dtype=float), np.asarray(detunings, dtype=float)
    generalized = np.sqrt(rabis**2 + detunings**2)
    safe = np.where(generalized > 0, generalized, 1.0)
    return np.where(generalized > 0, (rabis / safe) ** 2 * np.sin(safe * durations / 2) ** 2, 0.0)


#: the two-atom basis |b₁b₂⟩ in the order gg, gr, rg, rr (index 2·b₁ + b₂, b = 1 for Rydberg)
PAIR_STATES = ("gg", "gr", "rg", "rr")
_B1 = np.array([0, 0, 1, 1])
_B2 = np.array([0, 1, 0, 1])


def pair_populations(
    durations: NDArray,
    rabis: NDArray,
    detunings: NDArray,
    interaction: float,
    noise_rms: float = 0.0,
    nodes: int = 21,
) -> NDArray:
    """Populations of gg, gr, rg, rr (shape ``(points, 4)``) after a square pulse from |gg⟩.

    H = Σ_i Ω_i/2 X_i − Σ_i Δ_i n_i + V n₁n₂ with the true ``rabis`` Ω_i and ``detunings`` Δ_i
    (shape ``(points, 2)``, rad/µs), ``interaction`` V (rad/µs) and ``durations`` (µs, ``(points,)``),
    evolved exactly (eigendecomposition of the 4×4 Hamiltonian). Each atom's detuning has its own
    quasi-static Gaussian shift of rms ``noise_rms``, averaged by a ``nodes``² Gauss–Hermite product
    rule (one node when the rms is 0).
    """
    t = np.asarray(durations, dtype=float)
    rabis = np.asarray(rabis, dtype=float).reshape(t.size, 2)
    detunings = np.asarray(detunings, dtype=float).reshape(t.size, 2)
    x, w = hermegauss(nodes if noise_rms > 0 else 1)
    w = w / w.sum()
    eta1, eta2 = (a.ravel() * noise_rms for a in np.meshgrid(x, x, indexing="ij"))
    weights = np.outer(w, w).ravel()
    d1 = detunings[:, 0, None] + eta1[None, :]  # (points, nodes²)
    d2 = detunings[:, 1, None] + eta2[None, :]
    h = np.zeros((*d1.shape, 4, 4))
    h[..., 1, 1] = -d2
    h[..., 2, 2] = -d1
    h[..., 3, 3] = -d1 - d2 + interaction
    half1 = np.broadcast_to(rabis[:, 0, None] / 2, d1.shape)
    half2 = np.broadcast_to(rabis[:, 1, None] / 2, d1.shape)
    for a, b, half in ((0, 2, half1), (1, 3, half1), (0, 1, half2), (2, 3, half2)):
        h[..., a, b] = h[..., b, a] = half
    energies, vectors = np.linalg.eigh(h)
    phases = np.exp(-1j * energies * t[:, None, None])
    amplitudes = np.einsum("pnmk,pnk,pnk->pnm", vectors, vectors[..., 0, :], phases)
    return np.einsum("pnm,n->pm", np.abs(amplitudes) ** 2, weights)


def pair_read_both(populations: NDArray, false_positive: ArrayLike, false_negative: ArrayLike) -> NDArray:
    """P(both atoms read '1') from the pair ``populations`` (gg, gr, rg, rr) and each atom's ε, ε′."""
    eps, eps_prime = np.asarray(false_positive, float), np.asarray(false_negative, float)
    q1 = np.where(_B1 == 1, 1 - eps_prime[0], eps[0])
    q2 = np.where(_B2 == 1, 1 - eps_prime[1], eps[1])
    return np.asarray(populations, dtype=float) @ (q1 * q2)
