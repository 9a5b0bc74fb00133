"""Unit suffixes of stored keys and their conversion to the internal units (µs, rad/µs, µm).

A stored key names its unit at the end: ``max_rabi_MHz: 2.0`` is 2π·2 rad/µs inside the code. A
quantity of a given dimension accepts any of that dimension's suffixes (exactly one per quantity).
"""

from __future__ import annotations

import math

# dimension -> {suffix: factor to the internal unit}
SUFFIXES: dict[str, dict[str, float]] = {
    "angular_frequency": {
        "rad_per_us": 1.0,
        "MHz": 2 * math.pi,  # cyclic frequencies are multiplied by 2π on load
        "kHz": 2 * math.pi * 1e-3,
    },
    "time": {"us": 1.0, "ns": 1e-3, "ms": 1e3, "s": 1e6, "h": 3.6e9},
    "length": {"um": 1.0},
    "wavelength": {"nm": 1.0},
    "mass": {"amu": 1.0},
    "angle": {"deg": 1.0},
    "c6": {"rad_per_us_um6": 1.0},
    "slew_rate": {"rad_per_us2": 1.0, "MHz_per_us": 2 * math.pi},
}

# Physical ceilings of the values files state (internal units). A stored value beyond its ceiling is a
# slip (an exponent, a unit), not a device: profiles and runcards refuse it with the ceiling named.
# Limits lifted in code (a relaxed profile's inf) are not read from files and keep no ceiling.
MAX_RABI = 2 * math.pi * 1e3  # rad/µs: 2π·1 GHz, any Rabi frequency (drive amplitude)
MAX_FREQUENCY = 2 * math.pi * 1e4  # rad/µs: 2π·10 GHz, detunings, shifts, fields, couplings, traps
MAX_DURATION = 1e6  # µs: 1 s, a pulse, a sequence, a scanned delay, a clock tick
MAX_LENGTH = 1e6  # µm: 1 m, a distance between atoms, a register's radius

# The internal unit each dimension is expressed in, for messages and ``device show``.
INTERNAL_UNIT: dict[str, str] = {
    "angular_frequency": "rad/µs",
    "time": "µs",
    "length": "µm",
    "wavelength": "nm",
    "mass": "amu",
    "angle": "deg",
    "c6": "rad/µs·µm⁶",
    "slew_rate": "rad/µs²",
    "dimensionless": "",
}


def keys_for(quantity: str, dimension: str) -> dict[str, float]:
    """The stored keys a quantity may be written with, each with its factor to internal units."""
    if dimension == "dimensionless":
        return {quantity: 1.0}
    return {f"{quantity}_{suffix}": factor for suffix, factor in SUFFIXES[dimension].items()}


def with_unit(value: float, dimension: str) -> str:
    """A value in internal units with its unit, for messages: ``12.566 rad/µs (2π·2 MHz)``."""
    unit = INTERNAL_UNIT[dimension]
    text = f"{value:.6g}" + (f" {unit}" if unit else "")
    if dimension == "angular_frequency":
        text += f" (2π·{value / (2 * math.pi):.6g} MHz)"
    return text


#: how each suffix is written for people (cyclic frequencies are f = ω/2π)
SUFFIX_LABEL: dict[str, str] = {"rad_per_us": "rad/µs", "us": "µs", "um": "µm", "rad_per_us2": "rad/µs²"}


def suffix_label(suffix: str) -> str:
    """The unit a suffix names, as people write it: ``us`` is ``µs``, ``MHz`` stays ``MHz``."""
    return SUFFIX_LABEL.get(suffix, suffix)


def dimension_of(unit: str) -> str:
    """The dimension whose internal unit is ``unit`` (``rad/µs``: angular_frequency; ``""``:
    dimensionless)."""
    for dimension, internal in INTERNAL_UNIT.items():
        if internal == unit:
            return dimension
    raise ValueError(f"unit {unit!r} is not an internal unit (known: {', '.join(INTERNAL_UNIT.values())})")


def split_key(key: str) -> tuple[str, str, str] | None:
    """A stored key as (quantity, dimension, suffix): ``stop_us`` is ``("stop", "time", "us")``;
    None for a key without a unit suffix. The longest suffix wins (``_rad_per_us`` before ``_us``)."""
    matches = [
        (suffix, dimension)
        for dimension, suffixes in SUFFIXES.items()
        for suffix in suffixes
        if key.endswith(f"_{suffix}") and len(key) > len(suffix) + 1
    ]
    if not matches:
        return None
    suffix, dimension = max(matches, key=lambda match: len(match[0]))
    return key[: -len(suffix) - 1], dimension, suffix


def from_internal(value: float, dimension: str, suffix: str) -> float:
    """A value in internal units expressed in the unit of ``suffix`` (rad/µs in MHz: ω/2π/1 MHz)."""
    return value / SUFFIXES[dimension][suffix]
