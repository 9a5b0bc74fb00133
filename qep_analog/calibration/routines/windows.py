"""Scan windows that follow what is known: a window given in a runcard wins; left out, a routine
centres and sizes it from the calibration so far by the rule it states, and one re-scan follows a
resonance that the first scan found at (or beyond) its edge."""

from __future__ import annotations

import math
from typing import Any

from qep_analog.calibration.routines.scans import check_scan, parameter_rule
from qep_analog.errors import CalibrationError
from qep_analog.units import MAX_DURATION, MAX_FREQUENCY

#: a window end that may be left out (None: the routine's rule chooses it)
AUTO_DETUNING = parameter_rule("angular_frequency", low=-MAX_FREQUENCY, high=MAX_FREQUENCY, nullable=True)
AUTO_DELAY = parameter_rule("time", low=0.0, high=MAX_DURATION, nullable=True)
#: the relative prior uncertainty of a nominal value a window must cover
PRIOR = parameter_rule(low=0.0, open_low=True, high=1.0, open_high=True)
#: a margin in line widths
MARGIN = parameter_rule(low=0.0, high=20.0)
#: whether a resonance at the edge of the first scan is scanned again around its fit
FLAG = parameter_rule(kind="flag")
#: a positive frequency that may be left out (None: the routine's rule chooses it)
AUTO_FREQUENCY = parameter_rule(
    "angular_frequency", low=0.0, open_low=True, high=MAX_FREQUENCY, nullable=True
)
#: a spread of detuning offsets that may be left out (None: :func:`offset_spread`)
AUTO_SPREAD = parameter_rule("angular_frequency", low=0.0, high=MAX_FREQUENCY, nullable=True)
#: the points of a scan, or None: the routine's rule chooses them (at most :data:`MAX_AUTO_POINTS`)
AUTO_POINTS = parameter_rule(kind="integer", low=5, nullable=True)
#: the most points a rule chooses for one scan
MAX_AUTO_POINTS = 201
#: periods of an oscillation a scan covers
PERIODS = parameter_rule(low=1.0, high=100.0)

#: a lab's plausible spread of a qubit's detuning offset from one day to the next, by platform
#: (rad/µs of qubit detuning): Rydberg arrays ±2π·0.2 MHz (Aquila states a detuning error of
#: ≈ 2π·0.16 MHz), ion chains ±2π·10 kHz (a Raman qubit's AC Stark and Zeeman shifts)
OFFSET_SPREAD = {"rydberg": 2 * math.pi * 0.2, "ion": 2 * math.pi * 0.010}


def offset_spread(platform: str) -> float:
    """:data:`OFFSET_SPREAD` of ``platform`` (rad/µs of qubit detuning)."""
    if platform not in OFFSET_SPREAD:
        raise CalibrationError(
            f"offset spread: platform {platform!r} is not one of {sorted(OFFSET_SPREAD)}"
        )
    return OFFSET_SPREAD[platform]


def rule_points(span: float, step: float, least: int) -> int:
    """The points of a scan of ``span`` with steps of at most ``step``: at least ``least``, at most
    :data:`MAX_AUTO_POINTS`."""
    if not (span > 0 and step > 0):
        raise CalibrationError(f"scan rule: span {span:g} and step {step:g} must be positive")
    return int(min(max(math.ceil(span / step) + 1, least), MAX_AUTO_POINTS))


def check_window(start: float | None, stop: float | None, dimension: str) -> None:
    """Both ends given in order, or both left out (ValueError, a parameter error, otherwise)."""
    if (start is None) != (stop is None):
        raise ValueError("scan start and stop: give both (a fixed window) or neither (the adaptive rule)")
    if start is not None and stop is not None:
        check_scan(start, stop, dimension)


def window(
    start: float | None, stop: float | None, centre: float, half_width: float
) -> tuple[float, float]:
    """The given window, or ``centre`` ± ``half_width`` when it was left out."""
    if start is not None and stop is not None:
        return start, stop
    if not (math.isfinite(centre) and half_width > 0):
        raise CalibrationError(f"adaptive window: centre {centre:g}, half width {half_width:g} rad/µs")
    return centre - half_width, centre + half_width


def at_edge(resonance: float, width: float, low: float, high: float) -> bool:
    """Whether a fitted ``resonance`` of line ``width`` lies within a width of a scan edge or outside."""
    return not (low + width <= resonance <= high - width)


def rule_context(start: float | None, stop: float | None) -> dict[str, Any]:
    """The context entry saying whether the window was the runcard's (0) or the rule's (1)."""
    return {"adaptive_window": float(start is None and stop is None)}
