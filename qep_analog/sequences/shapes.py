"""Ramp shapes s(τ), τ = t/T ∈ [0, 1], and the order to which each is smooth at its ends.

A ramp of *boundary order* k has ds/dτ, …, d^k s/dτ^k zero at both ends and d^(k+1)s/dτ^(k+1) not:
its leftover excitation after a duration T falls as T^−(k+1) (the adiabatic theorem's boundary
terms, :mod:`qep_analog.sequences.bias`). The shapes:

- ``linear``: s = τ, order 0 (the speed jumps from 0 to 1/T at the ends);
- ``cosine``: s = sin²(πτ/2), order 1 (s'' = π²/2 at both ends); ``smooth`` is its old name;
- ``quintic``: s = 10τ³ − 15τ⁴ + 6τ⁵ (the quintic smoothstep), order 2 (s''' = 60 at both ends);
- ``exponential``: the ions' field ramp s = (1 − e^(−rτ)) / (1 − e^(−r)), r = T/τ_c, order 0;
- ``gap_aware``: ds/dτ ∝ Δ(s)², the gap along the path from the exact solver, order 0.

The last two take ``ends``: ``cosine`` or ``quintic`` plays them on a warped clock, s = P(q(τ)) with
q the cosine or quintic ramp, so that their ends are as smooth as q's (s^(k+1) = P'·q^(k+1) there)
while the middle keeps their profile P; ``sharp`` (the default) leaves them as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

SHAPES = ("linear", "cosine", "quintic", "exponential", "gap_aware")
#: older names a recipe may use, and the shape each reads as
ALIASES = {"smooth": "cosine"}
#: the end treatments of the shapes that take ``ends`` (``exponential``, ``gap_aware``)
ENDS = ("sharp", "cosine", "quintic")
WARPED = ("exponential", "gap_aware")
#: the boundary order of each fixed shape and of each end treatment
_ORDERS = {"linear": 0, "cosine": 1, "quintic": 2, "sharp": 0}
#: |d^(k+1)s/dτ^(k+1)| at τ = 0 and τ = 1 of the fixed shapes (k their order)
_EDGES = {"linear": (1.0, 1.0), "cosine": (math.pi**2 / 2, math.pi**2 / 2), "quintic": (60.0, 60.0)}


def canonical_shape(name: str) -> str:
    """The shape a recipe's ``shape`` names (an alias read as its shape)."""
    return ALIASES.get(name, name)


def cosine(tau: ArrayLike) -> NDArray:
    """sin²(πτ/2)."""
    return np.asarray(np.sin(np.pi * np.asarray(tau, dtype=float) / 2) ** 2)


def quintic(tau: ArrayLike) -> NDArray:
    """10τ³ − 15τ⁴ + 6τ⁵."""
    t = np.asarray(tau, dtype=float)
    return np.asarray(t**3 * (10 - 15 * t + 6 * t**2))


def linear(tau: ArrayLike) -> NDArray:
    return np.asarray(tau, dtype=float)


#: the fixed shapes, and the warps ``ends`` names
PROFILES: dict[str, Callable[[ArrayLike], NDArray]] = {
    "linear": linear,
    "cosine": cosine,
    "quintic": quintic,
}
WARPS: dict[str, Callable[[ArrayLike], NDArray]] = {"sharp": linear, "cosine": cosine, "quintic": quintic}


def exponential(tau: ArrayLike, rate: float) -> NDArray:
    """(1 − e^(−rτ)) / (1 − e^(−r)) with r = T/τ_c."""
    return np.asarray(np.expm1(-rate * np.asarray(tau, dtype=float)) / np.expm1(-rate))


def exponential_speeds(rate: float) -> tuple[float, float]:
    """ds/dτ of :func:`exponential` at τ = 0 and τ = 1."""
    first = rate / -np.expm1(-rate)
    return float(first), float(first * math.exp(-rate))


def boundary_order(shape: str, ends: str = "sharp") -> int:
    """The boundary order k of a shape (of its ``ends`` for ``exponential`` and ``gap_aware``)."""
    shape = canonical_shape(shape)
    return _ORDERS[ends] if shape in WARPED else _ORDERS[shape]


def boundary_derivatives(
    shape: str, ends: str = "sharp", speeds: tuple[float, float] = (1.0, 1.0)
) -> tuple[float, float]:
    """|d^(k+1)s/dτ^(k+1)| at τ = 0 and τ = 1 (k the boundary order). ``speeds``: ds/dτ of the
    unwarped profile P at its ends (``exponential``, ``gap_aware``): a warp q of order k gives
    s^(k+1) = P'·q^(k+1) there."""
    shape = canonical_shape(shape)
    if shape not in WARPED:
        return _EDGES[shape]
    edge = _EDGES["linear" if ends == "sharp" else ends]
    return speeds[0] * edge[0], speeds[1] * edge[1]
