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


def gap_aware_times(duration: float, gaps: NDArray) -> NDArray:
    """Times t(s_k) at which a ramp whose speed ∝ Δ(s)² reaches s_k (``gaps`` at uniform s_k):
    t(s) = T ∫_0^s Δ⁻² / ∫_0^1 Δ⁻² (trapezoid rule)."""
    weights = 1.0 / np.asarray(gaps, dtype=float) ** 2
    cumulative = np.concatenate([[0.0], np.cumsum((weights[1:] + weights[:-1]) / 2)])
    return duration * cumulative / cumulative[-1]
