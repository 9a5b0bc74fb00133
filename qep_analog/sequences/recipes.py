"""Adiabatic recipes (schema ``qep-recipe/1``, YAML in sequences/) and the schedules they build.

Every control follows one path parameter s(t) from the initial Hamiltonian (s = 0) to the target
(s = 1), the ramp of the platform (``Platform.ramp``). Rydberg: Ω = s·Ω_f, δ = δ_0 + s(δ_f − δ_0),
Δ = s·Δ_f from the product state |0…0⟩, the ground state of −δ_0 Σ n_i for δ_0 < 0. Ions:
B = B_0 + s(B_f − B_0) and couplings and Stark shifts scaled by s, from the state polarised along B_0.
The nudge is part of the target, so it follows the same s(t) as every other term. Shapes of s(t)
(:mod:`qep_analog.sequences.shapes`, each with its boundary order): ``linear`` (0), ``cosine``
(sin², 1; ``smooth`` reads as ``cosine``), ``quintic`` (10s³ − 15s⁴ + 6s⁵, 2), ``exponential`` (the
ions' field ramp, time constant τ) and ``gap_aware`` (ds/dt ∝ Δ(s)², with the gap Δ(s) of the path
from the exact solver); the last two take ``ends: cosine | quintic`` for smooth ends.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.devices.platform import PLATFORMS, Controls, platform_of
from qep_analog.devices.profile import DeviceProfile, realised_duration
from qep_analog.devices.record_ids import RecordId
from qep_analog.errors import ConfigError, ConstraintError
from qep_analog.library import locate_file
from qep_analog.schema import Field, parse_section
from qep_analog.sequences.schedule import Schedule, check_schedule
from qep_analog.sequences.shapes import (
    ALIASES,
    ENDS,
    PROFILES,
    SHAPES,
    WARPED,
    WARPS,
    boundary_derivatives,
    boundary_order,
    canonical_shape,
    exponential,
    exponential_speeds,
)
from qep_analog.sequences.switch_on import check_switch_on
from qep_analog.sequences.waveforms import Waveform, gap_aware_clock, on_clock
from qep_analog.storage import read_yaml
from qep_analog.units import MAX_DURATION, MAX_FREQUENCY

SCHEMA = "qep-recipe/1"
_FIELDS = (
    Field("schema", "text", choices=(SCHEMA,)),
    Field("name", "text"),
    Field("platform", "text", choices=tuple(PLATFORMS)),
    Field("description", "text", required=False),
    Field("shape", "text", choices=(*SHAPES, *ALIASES)),
    Field("ends", "text", choices=ENDS, required=False),
    Field("duration", dimension="time", low=0.0, open_low=True, high=MAX_DURATION),
    Field(
        "initial_detuning",
        dimension="angular_frequency",
        low=-MAX_FREQUENCY,
        high=0.0,
        open_high=True,
        required=False,
    ),
    Field(
        "initial_field",
        dimension="angular_frequency",
        low=-MAX_FREQUENCY,
        high=MAX_FREQUENCY,
        required=False,
    ),
    Field("time_constant", dimension="time", low=0.0, open_low=True, high=MAX_DURATION, required=False),
    Field("segments", "integer", low=1, high=10_000, required=False),
    Field("gap_points", "integer", low=3, high=1000, required=False),
)


@dataclass(frozen=True)
class Recipe:
    """An adiabatic recipe; frequencies in rad/µs, times in µs."""

    name: str
    platform: str
    shape: str
    duration: float
    initial_detuning: float | None = None
    initial_field: float | None = None
    time_constant: float | None = None
    segments: int = 64
    gap_points: int = 25
    description: str = ""
    ends: str = "sharp"

    @property
    def boundary_order(self) -> int:
        """k: the ramp's first k derivatives vanish at both ends (:mod:`~qep_analog.sequences.shapes`)."""
        return boundary_order(self.shape, self.ends)


def parse_recipe(document: Any, source: str = "<recipe>") -> Recipe:
    """A recipe from a parsed YAML document; mistakes are one-line :class:`ConfigError`s."""
    values = parse_section(document, _FIELDS, source, ConfigError)
    values.pop("schema")
    values["shape"] = canonical_shape(values["shape"])
    if values.get("ends") is not None and values["shape"] not in WARPED:
        raise ConfigError(
            f"{source}: ends = {values['ends']!r}: only {' and '.join(WARPED)} ramps take ends "
            f"({values['shape']} has its own)"
        )
    recipe = Recipe(**{k: v for k, v in values.items() if v is not None})
    platform = platform_of(recipe.platform)
    if not getattr(recipe, platform.recipe_start):  # None, or a zero field that polarises nothing
        raise ConfigError(f"{source}: {platform.recipe_start_rule}")
    return recipe


#: the recipe QEP phases use on each platform unless one is named: boundary order 2 (quintic ends)
#: and, in the middle, a profile that is slow where the path's gap is small (the ions' exponential
#: field ramp; on Rydberg arrays the gap-aware ramp, ds/dτ ∝ Δ(s)² from the exact solver)
DEFAULT_RECIPES = {"rydberg": "rydberg-gap-quintic", "ion": "ion-exponential-smooth"}
#: the default where the exact solver does not reach (the gap-aware ramp needs the path's gap)
BEYOND_GAP_RECIPES = {"rydberg": "rydberg-quintic", "ion": "ion-exponential-smooth"}
#: the most qubits whose path gap a gap-aware default ramp takes from the exact solver (17 sparse
#: diagonalisations per sample at most: ~1 s at 14 qubits)
GAP_AWARE_QUBITS = 14


def default_recipe(platform: str, n_qubits: int | None = None) -> str:
    """The name of the recipe QEP phases use on ``platform`` unless one is named; for a model of
    more than :data:`GAP_AWARE_QUBITS` qubits, one that needs no gap along the path."""
    name = platform_of(platform).name
    if n_qubits is not None and n_qubits > GAP_AWARE_QUBITS:
        return BEYOND_GAP_RECIPES[name]
    return DEFAULT_RECIPES[name]


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A recipe by name (on the library's search path, :mod:`qep_analog.library`) or by path."""
    path = locate_file("sequences", name_or_path)
    document = read_yaml(path, ConfigError)
    return parse_recipe(document, str(path))


def stretched_recipe(recipe: Recipe, duration: float) -> Recipe:
    """The recipe's ramp at ``duration`` (µs), its shape kept (an exponential ramp keeps τ/T)."""
    changes: dict[str, Any] = {"duration": duration}
    if recipe.time_constant is not None:
        changes["time_constant"] = recipe.time_constant * duration / recipe.duration
    return dataclasses.replace(recipe, **changes)


@dataclass(frozen=True)
class DurationChoice:
    """The ramp duration a command uses (µs, on the device clock) and where it came from."""

    duration: float
    source: str

    def describe(self) -> str:
        return f"{self.duration:g} µs ({self.source})"


#: the metadata key of a schedule that records where its duration came from
DURATION_SOURCE = "duration_source"
REQUESTED = "--duration"


def calibrated_ramp_duration(profile: DeviceProfile) -> DurationChoice | None:
    """The calibration's ``ramp_duration`` in force (a record's, else the profile file's), if any."""
    value = profile.calibration.ramp_duration
    if not math.isfinite(value):
        return None
    records = [r for r in profile.calibration_records if RecordId.parse(r).field == "ramp_duration"]
    where = f"record {records[-1]}" if records else f"profile {profile.name!r}"
    return DurationChoice(value, f"calibrated ramp_duration, {where}")


def choose_duration(
    profile: DeviceProfile, requested: float | None, fallback: DurationChoice
) -> DurationChoice:
    """``requested`` (``--duration``), else the calibrated ramp duration in force, else ``fallback``,
    rounded up to the device clock; one that the device cannot run is a one-line
    :class:`ConstraintError` naming the value, its source and the limit."""
    if requested is not None:
        choice = DurationChoice(requested, REQUESTED)
    else:
        choice = calibrated_ramp_duration(profile) or fallback
    try:
        return DurationChoice(realised_duration(profile, choice.duration), choice.source)
    except ConstraintError as exc:
        raise ConstraintError(f"ramp duration ({choice.source}): {exc}") from None


def duration_metadata(choice: DurationChoice) -> dict[str, str]:
    """What a schedule records of where its duration came from."""
    return {DURATION_SOURCE: choice.source}


def schedule_duration(
    schedule: Schedule, profile: DeviceProfile, requested: float | None
) -> DurationChoice:
    """The duration to play a built schedule in: ``requested`` (``--duration``), else the calibrated
    ramp duration in force (unless the schedule's own duration was itself requested), else its own."""
    built = schedule.metadata.get(DURATION_SOURCE, "not recorded")
    own = DurationChoice(schedule.duration, f"the schedule file's; built from {built}")
    if requested is None and built == REQUESTED:
        return own
    return choose_duration(profile, requested, own)


def progress(
    recipe: Recipe, duration: float, clock: float, gap: Callable[[NDArray], NDArray] | None
) -> tuple[NDArray, NDArray]:
    """Breakpoint times (on the clock) and path parameters s at them."""
    times, s, _ = _profile(recipe, duration, gap)
    ticks = on_clock(times, clock)
    return ticks, np.interp(ticks, times, s)


def _profile(
    recipe: Recipe, duration: float, gap: Callable[[NDArray], NDArray] | None
) -> tuple[NDArray, NDArray, tuple[float, float]]:
    """Times, s at them, and ds/dτ at both ends of the unwarped profile (for the boundary terms)."""
    shape = canonical_shape(recipe.shape)
    if shape == "linear":
        return np.array([0.0, duration]), np.array([0.0, 1.0]), (1.0, 1.0)
    if shape not in SHAPES:
        raise ConfigError(
            f"recipe {recipe.name!r}: shape {recipe.shape!r} is unknown ({', '.join(SHAPES)})"
        )
    if shape == "gap_aware":
        if gap is None:
            raise ConfigError(f"recipe {recipe.name!r}: a gap-aware ramp needs the gap along the path")
        grid = np.linspace(0.0, 1.0, recipe.gap_points)
        gaps = np.asarray(gap(grid), dtype=float)
        s, reached, mean = gap_aware_clock(gaps)  # τ(s) on a fine grid; ds/dτ = Δ(s)² · ∫Δ⁻² ds
        speeds = (float(gaps[0] ** 2 * mean), float(gaps[-1] ** 2 * mean))
        if recipe.ends == "sharp":  # breakpoints where the gap was taken
            return duration * np.interp(grid, s, reached), grid, speeds
        times = np.linspace(0.0, duration, recipe.segments + 1)
        return times, np.interp(WARPS[recipe.ends](times / duration), reached, s), speeds
    times = np.linspace(0.0, duration, recipe.segments + 1)
    if shape == "exponential":
        rate = duration / (recipe.time_constant or duration / 5)
        tau = WARPS[recipe.ends](times / duration)
        return times, exponential(tau, rate), exponential_speeds(rate)
    return times, PROFILES[shape](times / duration), (1.0, 1.0)


def ramp_metadata(recipe: Recipe, speeds: tuple[float, float] = (1.0, 1.0)) -> dict[str, Any]:
    """What a schedule records of its ramp: recipe, shape, ends, boundary order k and
    |d^(k+1)s/dτ^(k+1)| at both ends (``speeds``: ds/dτ of an unwarped exponential or gap-aware
    profile at its ends)."""
    shape = canonical_shape(recipe.shape)
    return {
        "recipe": recipe.name,
        "shape": shape,
        "ends": recipe.ends,
        "boundary_order": boundary_order(shape, recipe.ends),
        "boundary_derivatives": list(boundary_derivatives(shape, recipe.ends, speeds)),
    }


def _path(times: NDArray, s: NDArray, start: float, stop: float) -> Waveform:
    return Waveform(times, start + (stop - start) * s)


def build_schedule(
    recipe: Recipe,
    profile: DeviceProfile,
    target: Controls,
    label: str = "free",
    readout: str | None = None,
    gap: Callable[[NDArray], NDArray] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Schedule:
    """The schedule taking the device from the recipe's initial state to ``target``, checked against
    the profile. ``gap(s)`` gives the path's gap for a gap-aware recipe."""
    if recipe.platform != profile.platform:
        raise ConfigError(
            f"recipe {recipe.name!r} is for {recipe.platform}; device {profile.label!r}: {profile.platform}"
        )
    clock = profile.capabilities.clock
    duration = realised_duration(profile, recipe.duration)
    times, s, speeds = _profile(recipe, duration, gap)
    ticks = on_clock(times, clock)
    times, s = ticks, np.interp(ticks, times, s)
    meta = {**ramp_metadata(recipe, speeds), **(metadata or {})}
    start = getattr(recipe, profile.platform_spec.recipe_start)
    assert start is not None  # parse_recipe demands it
    ramp = profile.platform_spec.ramp(target, start)
    controls = {name: _path(times, s, begin, end) for name, (begin, end) in ramp.paths.items()}
    n = len(ramp.initial_state)
    schedule = Schedule(
        profile.platform, profile.label, controls, ramp.static, readout or "Z" * n, label,
        ramp.initial_state, meta,
    )  # fmt: skip
    check_schedule(schedule, profile)
    check_switch_on(schedule, profile)
    return schedule
