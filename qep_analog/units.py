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
