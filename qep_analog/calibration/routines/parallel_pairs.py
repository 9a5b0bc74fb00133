"""Disjoint pairs of atoms driven in one sequence: their layout, the bound on their cross-talk, and
the combination of the pairs' interaction scales.

Layout: pair k = atoms 2k and 2k + 1, ``distance`` apart along x, the pairs' centres on a square grid
of pitch ``separation`` (⌈√m⌉ columns for m pairs), the whole centred on the origin.

Cross-talk: an atom a of one pair and an atom b of another interact with V_ab = C6/|r_a − r_b|⁶; with
b excited, a's detuning moves by −V_ab. The |rr⟩ line of a pair then moves by at most
Σ_{a in the pair} Σ_{b elsewhere} V_ab (every other atom excited), which in units of the pair's own
V = C6/R⁶ is Σ (R/|r_a − r_b|)⁶ whatever C6 is: :func:`crosstalk_bound`, the largest over the pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.fitting import combine as fitting_combine

#: known inputs that are the same for every pair (their errors move all pairs together): budget keys
COMMON = ("rabi_scale", "dephasing_time", "detuning_offset")


def pair_layout(count: int, distance: float, separation: float) -> NDArray:
    """Positions (µm, shape ``(2·count, 2)``) of ``count`` pairs: rows 2k and 2k + 1 are pair k."""
    columns = math.ceil(math.sqrt(count))
    k = np.arange(count)
    centres = np.column_stack([(k % columns) * separation, (k // columns) * separation]).astype(float)
    centres -= centres.mean(axis=0)
    offsets = np.array([[-distance / 2, 0.0], [distance / 2, 0.0]])
    return (centres[:, None, :] + offsets[None, :, :]).reshape(2 * count, 2)


def crosstalk_bound(positions: NDArray, distance: float) -> float:
    """The largest shift of a pair's |rr⟩ line by the other pairs, relative to its own interaction
    (module docstring): max over pairs of Σ_{a in the pair, b elsewhere} (R/|r_a − r_b|)⁶."""
    atoms = len(positions)
    pair_of = np.arange(atoms) // 2
    gaps = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    other = pair_of[:, None] != pair_of[None, :]
    ratio = np.where(other, (distance / np.where(other, gaps, 1.0)) ** 6, 0.0)
    per_atom = ratio.sum(axis=1)
    return float(np.max(per_atom[0::2] + per_atom[1::2])) if atoms > 2 else 0.0


def pair_key(k: int, name: str) -> str:
    """The context key of known input ``name`` of pair ``k`` (pair 0: the name itself)."""
    return name if k == 0 else f"pair{k}.{name}"


def pair_context(context: dict[str, float], k: int, names: Sequence[str]) -> dict[str, float]:
    """``context`` with the known inputs ``names`` (and their errors) of pair ``k`` in place of pair 0's."""
    if k == 0:
        return context
    out = dict(context)
    for name in names:
        for key in (name, f"{name}_error"):
            if pair_key(k, key) in context:
                out[key] = context[pair_key(k, key)]
    return out


def combine(
    scales: Sequence[float], budgets: Sequence[dict[str, float]], bound: float
) -> tuple[float, dict[str, float], float]:
    """The pairs' scales combined by :func:`qep_analog.calibration.fitting.combine` with each pair's
    independent error (its statistical error and its own inputs' contributions in quadrature), the
    budget of the mean and the reduced χ² of the pairs' scatter around it.

    Budget: the statistical error and each pair's own inputs (offsets and readout errors of its
    atoms) as the weighted sums of the pairs' contributions in quadrature, all scaled by the
    combination's inflation when the pairs disagree (so that they add up to the combined error);
    each common input (:data:`COMMON`: the Rabi scale, T2* and a device-wide offset record that
    every atom's offset comes from) as the weighted mean of the pairs' contributions (fully
    correlated: it moves every pair together); ``parallel_pairs`` = bound·mean/√3, the cross-talk
    taken as uniform within its bound."""
    s = np.asarray(scales, dtype=float)
    stat = np.array([b["statistical"] for b in budgets])
    keys = list(dict.fromkeys(key for b in budgets for key in b if key != "statistical"))
    own_keys = [key for key in keys if key not in COMMON]
    own = np.array([sum(b.get(key, 0.0) ** 2 for key in own_keys) for b in budgets])
    independent = np.sqrt(stat**2 + own)
    mean, error = fitting_combine(s, independent)
    w = 1.0 / independent**2
    total = float(np.sum(w))
    inflation = error * math.sqrt(total)  # 1 unless the pairs disagree beyond their errors
    budget: dict[str, float] = {"statistical": inflation * float(np.sqrt(np.sum((w * stat) ** 2))) / total}
    for key in keys:
        parts = np.array([b.get(key, 0.0) for b in budgets])
        if key in COMMON:
            value = float(np.sum(w * parts)) / total
        else:
            value = inflation * float(np.sqrt(np.sum((w * parts) ** 2))) / total
        name = key.split(".")[0]
        budget[name] = math.hypot(budget.get(name, 0.0), value)
    if bound > 0:
        budget["parallel_pairs"] = bound * mean / math.sqrt(3)
    scatter = float(np.sum(w * (s - mean) ** 2) / (len(s) - 1)) if len(s) > 1 else 0.0
    return mean, budget, scatter
