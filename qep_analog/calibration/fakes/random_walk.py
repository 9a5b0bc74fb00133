"""Drift over days for the fake labs: a seeded random walk of each hidden field on a simulated clock.

A field with a stated step rms σ (its unit per √day: a change of rms σ after one day) walks as
value(t) = value(0) + Σ of ⌊24·t⌋ hourly steps, each N(0, σ²/24), so after d days the rms change is
σ·√d (for whole hours). A per-site field walks independently on every site. The path is a function of
the seed, the field, the site and t alone: the hourly steps of field f on site s are the first draws
of the generator seeded by (seed, f's index in the lab's list of drifting fields, s), so the value at
day 3 is the same whether or not days 1 and 2 were looked at, and a lab made again with the same
seed drifts the same way. Fields left out, or given σ = 0, are held constant.

Each fake lab states the fields that can drift (``DRIFT_FIELDS``) and a default drift
(``DEFAULT_DRIFT``, a plausible day-to-day wander of a lab); it applies the walk to its hidden
parameters with :func:`walked`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ConfigError
from qep_analog.schema import check_seed

#: steps of the walk per simulated day
STEPS_PER_DAY = 24
#: the longest simulated time a lab may be advanced to (days)
MAX_DAYS = 10_000.0


@dataclass(frozen=True)
class RandomWalk:
    """Step rms per √day of each drifting field (``rms``: field name → σ in the field's internal
    unit, rad/µs or µs or none), and the ``seed`` of the walk (apart from the shot noise's)."""

    rms: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed, "random walk", ConfigError)
        for name, sigma in self.rms.items():
            if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not math.isfinite(sigma):
                raise ConfigError(f"random walk: step rms of {name!r} = {sigma!r} is not a finite number")
            if sigma < 0:
                raise ConfigError(f"random walk: step rms of {name!r} = {sigma} is negative")
        object.__setattr__(self, "rms", dict(self.rms))

    def check_fields(self, known: Sequence[str], where: str) -> None:
        """Every drifting field is one of ``known``, else a one-line ConfigError listing them."""
        for name in self.rms:
            if name not in known:
                raise ConfigError(f"{where}: field {name!r} cannot drift (known: {', '.join(known)})")

    def change(self, name: str, index: int, sites: int, day: float) -> NDArray:
        """The walk's total change of field ``name`` (its ``index`` among the lab's drifting fields)
        at ``day`` on each of ``sites`` sites, shape (sites,)."""
        check_day(day)
        sigma = float(self.rms.get(name, 0.0))
        steps = math.floor(day * STEPS_PER_DAY + 1e-9)
        if sigma == 0.0 or steps == 0:
            return np.zeros(sites)
        scale = sigma / math.sqrt(STEPS_PER_DAY)
        return np.array(
            [
                scale * np.random.default_rng([self.seed, index, site]).standard_normal(steps).sum()
                for site in range(sites)
            ]
        )


def check_day(day: float) -> None:
    """A simulated day in [0, MAX_DAYS], else a one-line ConfigError."""
    if isinstance(day, bool) or not isinstance(day, int | float) or not 0 <= day <= MAX_DAYS:
        raise ConfigError(f"fake lab: simulated day {day!r} is not in [0, {MAX_DAYS:g}]")


def walked(
    values: Mapping[str, float | tuple[float, ...]],
    walk: RandomWalk,
    fields: Sequence[str],
    day: float,
    sites: int,
    bounds: Mapping[str, tuple[float, float]],
) -> dict[str, float | tuple[float, ...]]:
    """``values`` (field → a number, or a tuple over sites; an empty tuple is zeros) moved by the walk
    at ``day``; ``fields`` are the lab's drifting fields in their stated order (the walk's stream of
    each), ``bounds`` the interval each field is clipped to (a readout error stays below ½, a scale
    positive)."""
    out: dict[str, float | tuple[float, ...]] = {}
    for index, name in enumerate(fields):
        if not walk.rms.get(name):
            continue
        value = values[name]
        low, high = bounds.get(name, (-math.inf, math.inf))
        if isinstance(value, tuple):
            base = np.asarray(value, dtype=float) if value else np.zeros(sites)
            moved = np.clip(base + walk.change(name, index, sites, day), low, high)
            out[name] = tuple(float(v) for v in moved)
        else:
            out[name] = float(np.clip(value + walk.change(name, index, 1, day)[0], low, high))
    return out


class SimulatedDays:
    """The simulated clock of a fake lab that may drift: ``drift`` (None: the lab never changes),
    ``start`` (the time its clock reads on day 0, time-zone aware; None: the lab has no clock of its
    own and records are stamped with the wall time) and the day it is at. The lab implements
    :meth:`_drift_to`, which sets its hidden parameters to the walk's values at a day."""

    drift: RandomWalk | None
    start: dt.datetime | None
    _day: float

    def _check_clock(self, known: Sequence[str], where: str) -> None:
        if self.drift is not None:
            self.drift.check_fields(known, where)
        if self.start is not None and (
            not isinstance(self.start, dt.datetime) or self.start.tzinfo is None
        ):
            raise ConfigError(f"{where}: clock start {self.start!r} is not a time with its time zone")

    @property
    def day(self) -> float:
        """The simulated day the lab is at (0 when made)."""
        return self._day

    def advance(self, days: float) -> None:
        """Let ``days`` (≥ 0) pass: the hidden parameters move along the walk."""
        if isinstance(days, bool) or not isinstance(days, int | float) or not days >= 0:
            raise ConfigError(f"fake lab: cannot advance by {days!r} days (must be ≥ 0)")
        self.set_day(self._day + days)

    def set_day(self, day: float) -> None:
        """Put the lab at simulated ``day``: its hidden parameters are the walk's values there."""
        check_day(day)
        self._day = float(day)
        if self.drift is not None:
            self._drift_to(self._day)

    def device_now(self) -> dt.datetime | None:
        """What the lab's clock reads (``start`` + the simulated days), None without a clock."""
        return None if self.start is None else self.start + dt.timedelta(days=self._day)

    def _drift_to(self, day: float) -> None:
        raise NotImplementedError
