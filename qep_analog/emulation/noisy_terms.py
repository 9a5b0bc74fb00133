"""The Hamiltonian terms of one noisy shot: the drive scaled atom by atom, the detuning map scaled.

Two noise sources change the operators rather than add to them (:mod:`qep_analog.devices.noise_sources`):
the Gaussian profile of the drive beam (``laser_waist``: Ω on the atom at (x, y, z) scaled by
exp(−(x² + z²)/w²), Pulser's finite-waist damping of a beam propagating along y through the
origin) and the atoms missing from a shot (``state_prep``: not driven; every other term of a missing
atom holds n_i, which vanishes on the |0⟩ it stays in, so only its drive is removed). The shot's
scale of the detuning map's waveform (``detuning_map_jitter``) multiplies the map's operator.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from numpy.typing import NDArray

from qep_analog.devices.profile import DeviceProfile
from qep_analog.model.pauli import PauliSum
from qep_analog.sequences.schedule import Schedule, Terms, hamiltonian_terms

#: the control that plays the detuning map's waveform
MAP_CONTROL = "local_amplitude"


def waist_factors(schedule: Schedule, waist: float) -> NDArray:
    """exp(−(x² + z²)/w²) of each atom (positions in µm; 1 everywhere for a flat beam, w = inf)."""
    positions = np.asarray(schedule.static["positions"], dtype=float)
    if not np.isfinite(waist):
        return np.ones(len(positions))
    off_axis = positions[:, 0] ** 2 + (positions[:, 2] ** 2 if positions.shape[1] > 2 else 0.0)
    return np.asarray(np.exp(-off_axis / waist**2))


def drive_scales(schedule: Schedule, waist: float, absent: Collection[int] = ()) -> NDArray | None:
    """The drive's scale on each site of a Rydberg schedule: the beam's profile, 0 on a missing atom
    (None when every scale is 1 or the schedule is not a Rydberg array's)."""
    if not schedule.platform_spec.tweezer_noise or (not np.isfinite(waist) and not absent):
        return None
    scales = waist_factors(schedule, waist)
    scales[list(absent)] = 0.0
    return scales


def noisy_terms(
    schedule: Schedule,
    profile: DeviceProfile,
    scales: NDArray | None = None,
    map_scale: float = 1.0,
) -> Terms:
    """:func:`hamiltonian_terms` with every string of the drive scaled by the product of ``scales``
    over its qubits and the detuning map's operator by ``map_scale``."""
    static, terms = hamiltonian_terms(schedule, profile)
    drive = schedule.platform_spec.drive_control
    out = []
    for name, operator in terms:
        if name == drive and scales is not None:
            operator = PauliSum(
                {
                    string: coefficient * float(np.prod([scales[q] for q, _ in string.factors]))
                    for string, coefficient in operator.items()
                }
            )
        elif name == MAP_CONTROL and map_scale != 1.0:
            operator = operator * map_scale
        out.append((name, operator))
    return static, out
