"""Every calibration routine by name, and the platforms each one runs on.

The table maps each routine's name to the module that defines it (as ``ROUTINE``); a module is
imported only when its routine is asked for, so reading a runcard loads only the routines it names.
"""

from __future__ import annotations

import importlib

from qep_analog.calibration.routine import Routine
from qep_analog.errors import CalibrationError

_PACKAGE = "qep_analog.calibration.routines"

#: routine name → the module defining it
ROUTINE_MODULES: dict[str, str] = {
    "detuning_spectroscopy": f"{_PACKAGE}.detuning_spectroscopy",
    "rabi": f"{_PACKAGE}.rabi",
    "amplitude_jitter": f"{_PACKAGE}.amplitude_jitter",
    "ramsey": f"{_PACKAGE}.ramsey",
    "readout": f"{_PACKAGE}.readout",
    "pair_spectroscopy": f"{_PACKAGE}.pair_spectroscopy",
    "local_field_map": f"{_PACKAGE}.local_field_map",
    "sideband_spectroscopy": f"{_PACKAGE}.sideband_spectroscopy",
    "two_ion_oscillation": f"{_PACKAGE}.two_ion_oscillation",
    "qep_hamiltonian": f"{_PACKAGE}.qep_hamiltonian",
    "ramp_duration_scan": f"{_PACKAGE}.ramp_duration_scan",
    "qep_gradient_check": f"{_PACKAGE}.qep_gradient_check",
}
ROUTINE_NAMES: tuple[str, ...] = tuple(ROUTINE_MODULES)


def _load(name: str) -> Routine:
    routine: Routine = importlib.import_module(ROUTINE_MODULES[name]).ROUTINE
    return routine


def routine_named(name: str, platform: str | None = None) -> Routine:
    """The routine ``name``; with ``platform``, one that runs on that platform."""
    if name not in ROUTINE_MODULES:
        raise CalibrationError(f"routine {name!r}: unknown (known: {', '.join(ROUTINE_NAMES)})")
    routine = _load(name)
    if platform is not None and platform not in routine.platforms:
        raise CalibrationError(
            f"routine {name!r}: runs on {', '.join(routine.platforms)} devices, not on {platform}"
        )
    return routine


def all_routines() -> dict[str, Routine]:
    """Every routine by name (imports every routine module)."""
    return {name: _load(name) for name in ROUTINE_NAMES}
