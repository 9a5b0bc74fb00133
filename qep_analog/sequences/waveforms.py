"""Piecewise-linear waveforms on a device clock.

Every waveform is held as breakpoints (times on the clock grid, values) joined by straight lines: that
is what is exported (Pulser's ``InterpolatedWaveform`` with linear interpolation, our ion JSON) and
what the emulators evolve under, so the values realised after rounding are the ones every part of the
code uses. Smooth, exponential and gap-aware ramps (:mod:`qep_analog.sequences.recipes`) are
sampled into enough linear segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import CubicSpline

from qep_analog.errors import ConstraintError


@dataclass(frozen=True, eq=False)
class Waveform:
    """Values (rad/µs) at breakpoint ``times`` (µs, ascending, from 0), linear in between."""

    times: NDArray
    values: NDArray

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=float)
        values = np.asarray(self.values, dtype=float)
        if times.ndim != 1 or times.shape != values.shape or len(times) < 2:
            raise ConstraintError(
                f"waveform: {len(times)} times and {len(values)} values (need >= 2, equal)"
            )
        if times[0] != 0 or np.any(np.diff(times) <= 0) or not np.all(np.isfinite(values)):
            raise ConstraintError("waveform: times must start at 0 and increase; values must be finite")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "values", values)

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def __call__(self, t: ArrayLike) -> NDArray:
        return np.interp(np.asarray(t, dtype=float), self.times, self.values)

    @property
    def max_slew(self) -> float:
        """The largest |dv/dt| (rad/µs²) over the segments."""
        return float(np.abs(np.diff(self.values) / np.diff(self.times)).max())

    def to_document(self) -> dict[str, list[float]]:
        return {"times_us": self.times.tolist(), "values_rad_per_us": self.values.tolist()}


def on_clock(times: ArrayLike, clock: float) -> NDArray:
    """Times rounded to the nearest clock tick, duplicates removed (the end point kept)."""
    ticks = np.unique(np.round(np.asarray(times, dtype=float) / clock).astype(np.int64))
    return ticks * clock


#: points of the fine grid on which a gap-aware ramp's clock τ(s) is integrated and inverted
GAP_CLOCK_POINTS = 4001


def gap_aware_clock(gaps: NDArray) -> tuple[NDArray, NDArray, float]:
    """The clock of a ramp whose speed ds/dτ ∝ Δ(s)², from ``gaps`` (rad/µs) at uniform s_k ∈ [0, 1]:
    (s, τ(s)) on a fine grid of :data:`GAP_CLOCK_POINTS` points, τ(s) = ∫₀^s Δ⁻² / ∫₀¹ Δ⁻², and
    ∫₀¹ Δ⁻² ds (so that ds/dτ = Δ(s)² · ∫₀¹ Δ⁻²). Between the nodes log Δ is a cubic spline: Δ⁻²
    and so the speed are twice continuously differentiable, with no kink at the nodes (a kink in
    the speed excites the state like the start of a linear ramp, ~1/(TΔ), however long the ramp)."""
    values = np.asarray(gaps, dtype=float)
    nodes = np.linspace(0.0, 1.0, len(values))
    s = np.linspace(0.0, 1.0, GAP_CLOCK_POINTS)
    weights = np.exp(-2.0 * CubicSpline(nodes, np.log(values))(s))
    cumulative = np.concatenate([[0.0], np.cumsum((weights[1:] + weights[:-1]) / 2 * np.diff(s))])
    return s, cumulative / cumulative[-1], float(cumulative[-1])
