"""Phase labels of the 1D Rydberg chain from stored ground-state phase boundaries.

H = Ω/2 Σ X_i − δ Σ n_i + Σ_{i<j} Ω (R_b/a)^6 / |i−j|^6 n_i n_j in the plane (δ/Ω, R_b/a), with the
phases ``disordered``, ``Z2`` (every 2nd atom excited) and ``Z3`` (every 3rd). The boundaries are
finite-DMRG results on open chains (``benchmarks/rydberg_phase_boundaries.py``), stored in
``qep_analog/tasks/data/rydberg_chain_phases.json`` (schema ``qep-phase-boundaries/1``; the file
records the method, the lengths, the bond dimension, the coupling cutoff and the command).

On each grid value of R_b/a the file gives the order that sets in first as δ grows, its critical
δ/Ω and the δ interval left without a label (``unlabelled_delta``): the finite-size uncertainty of
the onset, the rounding of the onset in the largest chain and, where the density modulation below
the onset is incommensurate (wavevector strictly between the Z3 and Z2 values), that window. Along
δ a grid value then reads: disordered below the interval, no label inside it, the order above it
up to the largest δ computed (the disordered phase extends to δ → −∞). Between two grid values
with the same order the interval's edges are interpolated linearly in R_b/a; between grid values
with different orders (the gap between the Z2 and Z3 lobes, ``incommensurate_rb`` in the file) a
point is disordered when it lies below the intervals of both neighbours and has no label otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from qep_analog.errors import ConfigError, StorageError
from qep_analog.storage import read_json

#: The phase labels, in the order a classifier's outputs use them.
PHASES = ("disordered", "Z2", "Z3")
#: Schema of the stored boundaries.
SCHEMA = "qep-phase-boundaries/1"
#: The stored boundaries inside the package ``qep_analog.tasks.data``.
DATA_FILE = "rydberg_chain_phases.json"


@dataclass(frozen=True)
class GridPoint:
    """The boundaries at one grid value of R_b/a.

    ``order``: the phase that sets in first as δ grows (None: none up to the largest δ computed);
    ``delta_c``: its critical δ/Ω; ``unlabelled``: the δ/Ω interval around the onset that gets no
    label (without an order: everything from the lowest δ computed on).
    """

    rb_over_a: float
    order: str | None
    delta_c: float | None
    unlabelled: tuple[float, float]


@dataclass(frozen=True)
class Boundaries:
    """The parsed boundary file: grid points ascending in R_b/a, the δ/Ω range that was computed,
    the R_b/a gap between the Z2 and Z3 lobes (None if they touch on the grid) and the whole
    document (method, lengths, chi, cutoff, crossings, the exact check, the command)."""

    grid: tuple[GridPoint, ...]
    delta_range: tuple[float, float]
    incommensurate_rb: tuple[float, float] | None
    document: dict[str, Any]

    @property
    def rb_range(self) -> tuple[float, float]:
        """The smallest and largest R_b/a of the grid."""
        return self.grid[0].rb_over_a, self.grid[-1].rb_over_a


def _parse(document: dict[str, Any], where: str) -> Boundaries:
    try:
        delta_low, delta_high = (float(v) for v in document["delta_range"])
        grid = []
        for entry in document["boundaries"]:
            order = entry["order"]
            if order is not None and order not in PHASES[1:]:
                raise StorageError(f"{where}: unknown order {order!r} at R_b/a = {entry['rb_over_a']}")
            if order is None:  # no onset found: labelled only below the computed δ range
                grid.append(GridPoint(float(entry["rb_over_a"]), None, None, (delta_low, math.inf)))
                continue
            low, high = (float(v) for v in entry["unlabelled_delta"])
            delta_c = float(entry[f"delta_c_{order}"])
            if not low <= delta_c <= high:
                raise StorageError(f"{where}: unlabelled interval [{low}, {high}] misses δ_c = {delta_c}")
            grid.append(GridPoint(float(entry["rb_over_a"]), order, delta_c, (low, high)))
        between = document["incommensurate_rb"]
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageError(
            f"{where}: malformed phase-boundary document ({type(exc).__name__}: {exc})"
        ) from None
    grid.sort(key=lambda g: g.rb_over_a)
    if not grid:
        raise StorageError(f"{where}: no boundaries")
    return Boundaries(
        grid=tuple(grid),
        delta_range=(delta_low, delta_high),
        incommensurate_rb=None if between is None else (float(between[0]), float(between[1])),
        document=document,
    )


@cache
def _packaged() -> Boundaries:
    text = resources.files("qep_analog.tasks.data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise StorageError(f"{DATA_FILE}: schema {found!r}, expected {SCHEMA!r}")
    return _parse(document, DATA_FILE)


def load_boundaries(path: str | Path | None = None) -> Boundaries:
    """The stored phase boundaries: the packaged file (parsed once), or the file at ``path``
    (e.g. a recomputed one). A wrong schema or a malformed file raises :class:`StorageError`."""
    if path is None:
        return _packaged()
    return _parse(read_json(path, SCHEMA), str(path))


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def rydberg_chain_phase(
    delta_over_omega: float, rb_over_a: float, boundaries: Boundaries | None = None
) -> str | None:
    """The phase (one of :data:`PHASES`) of the chain at (δ/Ω, R_b/a), or None where the stored
    boundaries give no label: inside an incommensurate window, above the largest δ/Ω computed,
    outside the computed R_b/a range, or in the gap between the Z2 and Z3 lobes above the
    neighbouring windows. ``boundaries`` defaults to the packaged file."""
    delta, rb = float(delta_over_omega), float(rb_over_a)
    if not (math.isfinite(delta) and math.isfinite(rb)):
        raise ConfigError(
            f"Rydberg chain phase: (δ/Ω, R_b/a) = ({delta_over_omega}, {rb_over_a}) is not finite"
        )
    data = boundaries if boundaries is not None else load_boundaries()
    low_rb, high_rb = data.rb_range
    if not low_rb <= rb <= high_rb or delta > data.delta_range[1]:
        return None
    grid = data.grid
    above = next(k for k, g in enumerate(grid) if g.rb_over_a >= rb)
    right = grid[above]
    left = grid[above - 1] if right.rb_over_a > rb else right
    if left.order is not None and left.order == right.order:
        span = right.rb_over_a - left.rb_over_a
        t = 0.0 if span == 0 else (rb - left.rb_over_a) / span
        low = _lerp(left.unlabelled[0], right.unlabelled[0], t)
        high = _lerp(left.unlabelled[1], right.unlabelled[1], t)
        if delta < low:
            return "disordered"
        return None if delta < high else left.order
    return "disordered" if delta < min(left.unlabelled[0], right.unlabelled[0]) else None
