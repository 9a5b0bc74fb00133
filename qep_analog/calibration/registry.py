"""Every calibration routine by name, and the platforms each one runs on."""

from __future__ import annotations

from qep_analog.calibration.gradient_check import CHECK_ROUTINES
from qep_analog.calibration.interaction import INTERACTION_ROUTINES
from qep_analog.calibration.ion_routines import ION_ROUTINES
from qep_analog.calibration.local_field import LOCAL_FIELD_ROUTINES
from qep_analog.calibration.qep_hamiltonian import QEP_ROUTINES
from qep_analog.calibration.ramp_scan import ROUTINES as RAMP_ROUTINES
from qep_analog.calibration.routine import Routine
from qep_analog.calibration.rydberg_routines import ROUTINES as SINGLE_QUBIT_ROUTINES
from qep_analog.errors import CalibrationError

ROUTINES: dict[str, Routine] = {
    **SINGLE_QUBIT_ROUTINES,
    **INTERACTION_ROUTINES,
    **LOCAL_FIELD_ROUTINES,
    **ION_ROUTINES,
    **QEP_ROUTINES,
    **RAMP_ROUTINES,
    **CHECK_ROUTINES,
}


def routine_named(name: str, platform: str | None = None) -> Routine:
    """The routine ``name``; with ``platform``, one that runs on that platform."""
    if name not in ROUTINES:
        raise CalibrationError(f"routine {name!r}: unknown (known: {', '.join(ROUTINES)})")
    routine = ROUTINES[name]
    if platform is not None and platform not in routine.platforms:
        raise CalibrationError(
            f"routine {name!r}: runs on {', '.join(routine.platforms)} devices, not on {platform}"
        )
    return routine
