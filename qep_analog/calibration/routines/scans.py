"""What the scanning routines share: parameter metadata, quality thresholds, the scan grid, running
schedules point by point with progress, the verdict, fitted curves per site, the frequency guess of
oscillating data and the checks of a list of fits."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import ScheduleBackend
from qep_analog.calibration.fitting import CurveFit
from qep_analog.calibration.records import Quality
from qep_analog.calibration.routine import ItemReport
from qep_analog.errors import CalibrationError
from qep_analog.schema import Field, Kind
from qep_analog.sequences.schedule import Schedule
from qep_analog.units import MAX_DURATION, MAX_FREQUENCY, MAX_LENGTH, MAX_RABI, with_unit


def parameter_rule(
    dimension: str = "dimensionless", kind: Kind = "number", **bounds: Any
) -> dict[str, Field]:
    """Field metadata of a routine parameter: its schema rule (the name is the parameter's)."""
    return {"rule": Field("", kind, dimension=dimension, **bounds)}


_FREQ = "angular_frequency"
#: The rules of routine parameters (``field(default=..., metadata=RABI)``): the dimension gives the
#: runcard's unit suffixes, the bounds the physical range (ceilings in :mod:`qep_analog.units`).
RABI = parameter_rule(_FREQ, low=0.0, open_low=True, high=MAX_RABI)  # a Rabi frequency, > 0
DRIVE = parameter_rule(_FREQ, low=0.0, high=MAX_RABI)  # a transverse drive h_x = Ω/2, ≥ 0
FREQUENCY = parameter_rule(_FREQ, low=0.0, open_low=True, high=MAX_FREQUENCY)  # a positive frequency
FIELD_SIZE = parameter_rule(_FREQ, low=0.0, high=MAX_FREQUENCY)  # the size of a field pattern, ≥ 0
DETUNING = parameter_rule(_FREQ, low=-MAX_FREQUENCY, high=MAX_FREQUENCY)  # a signed detuning or field
DURATION = parameter_rule("time", low=0.0, open_low=True, high=MAX_DURATION)  # a pulse, > 0
DELAY = parameter_rule("time", low=0.0, high=MAX_DURATION)  # a scanned duration or delay, ≥ 0
DISTANCE = parameter_rule("length", low=0.0, open_low=True, high=MAX_LENGTH)  # between atoms, > 0
POINTS = parameter_rule(kind="integer", low=5)  # points of a scan

TWO_PI = 2 * math.pi
MAX_REDUCED_CHI2 = 3.0
MIN_CONTRAST = 0.3


def check_scan(start: float, stop: float, dimension: str) -> None:
    """A scan's ``start`` and ``stop`` (internal units) in order, or ValueError (a parameter error)."""
    if not stop > start:
        raise ValueError(
            f"scan start {with_unit(start, dimension)} is not below stop {with_unit(stop, dimension)}"
        )


def scan_grid(start: float, stop: float, points: int, what: str) -> NDArray:
    if points < 5 or not stop > start:
        raise CalibrationError(
            f"{what}: scan [{start:g}, {stop:g}] with {points} points (need stop > start, ≥ 5)"
        )
    return np.linspace(start, stop, points)


def run_in_parts(
    backend: ScheduleBackend,
    parts: Sequence[Sequence[Schedule]],
    shots: int,
    progress: ItemReport | None = None,
) -> list[NDArray]:
    """The counts of every schedule of ``parts``, in order: one backend call per part (a scan point,
    a phase), ``progress(k, len(parts))`` after the k-th."""
    counts: list[NDArray] = []
    for k, part in enumerate(parts, start=1):
        counts.extend(backend.run_schedules(part, shots))
        if progress is not None:
            progress(k, len(parts))
    return counts


def verdict(reasons: list[str]) -> Quality:
    return "bad" if reasons else "good"


def model_curves(model: Any, x: NDArray, curves: dict[str, list[float]], names: tuple[str, ...]) -> NDArray:
    """``model`` at ``x`` for every site, one column each, with the site's fitted ``names`` from
    ``curves``."""
    sites = len(curves[names[0]])
    columns = [model(x, *(curves[name][site] for name in names)) for site in range(sites)]
    return np.column_stack(columns)


def frequency_guess(x: NDArray, y: NDArray, low: float, high: float, model: object) -> float:
    """The frequency in [low, high] whose best linear (contrast, floor) fit leaves the least residual."""
    best, best_cost = low, math.inf
    for omega in np.linspace(low, high, 400):
        basis = (
            np.column_stack([np.sin(omega * x / 2) ** 2, np.ones_like(x)])
            if model == "rabi"
            else np.column_stack([np.cos(omega * x), np.ones_like(x)])
        )
        coefficients, *_ = np.linalg.lstsq(basis, y, rcond=None)
        cost = float(np.sum((basis @ coefficients - y) ** 2))
        if cost < best_cost:
            best, best_cost = float(omega), cost
    return best


def check_fits(fits: list[CurveFit], labels: list[str], contrast_index: int, reasons: list[str]) -> float:
    """Failed fits and low contrasts into ``reasons``; returns the reduced χ² over all fits."""
    for label, fit in zip(labels, fits, strict=True):
        if not fit.ok:
            reasons.append(f"{label}: fit failed ({fit.message})")
        elif fit.values[contrast_index] < MIN_CONTRAST:
            reasons.append(f"{label}: contrast {fit.values[contrast_index]:.3g} < {MIN_CONTRAST}")
    dof = sum(f.dof for f in fits)
    reduced = sum(f.chi2 for f in fits) / dof if dof > 0 else float("nan")
    if not reduced < MAX_REDUCED_CHI2:
        reasons.append(f"reduced chi2 {reduced:.3g} not < {MAX_REDUCED_CHI2}")
    return reduced
