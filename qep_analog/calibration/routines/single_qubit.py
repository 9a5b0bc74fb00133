"""What the single-qubit routines share (detuning spectroscopy, Rabi, Ramsey, readout).

They run on Rydberg atoms and on the carrier transition of ions alike. The fits measure the qubit's
detuning Δ; a Rydberg profile's ``detuning_offset`` is in those units (δ → δ + offset), an ion
profile's is a field (h → h + B_0, the qubit frequency moves by 2·B_0), so the routines convert with
:func:`detuning_per_offset`.

Each routine fits every site, proposes per-site records and a device-wide one (inverse-variance mean for
Ω scale and detuning offset, plain mean for readout errors), and states its quality criteria.
Readout contrast and background are free parameters of every fit (``b`` = P(read 1) floor,
``a`` = contrast), so the fits do not depend on the readout calibration.
"""

from __future__ import annotations

import numpy as np

from qep_analog.calibration.fitting import CurveFit, combine
from qep_analog.calibration.routine import Estimate, FitResult
from qep_analog.calibration.routines.scans import MAX_REDUCED_CHI2, MIN_CONTRAST, verdict
from qep_analog.devices.profile import DeviceProfile


def detuning_per_offset(profile: DeviceProfile) -> float:
    """The qubit detuning one unit of the profile's ``detuning_offset`` makes: 1 (Rydberg), 2 (ions)."""
    return profile.platform_spec.detuning_per_offset


def common_checks(fits: list[CurveFit], contrast_index: int, reasons: list[str]) -> float:
    """Checks every fit shares; returns the reduced χ² over all sites."""
    for site, fit in enumerate(fits):
        if not fit.ok:
            reasons.append(f"site {site}: fit failed ({fit.message})")
        elif fit.values[contrast_index] < MIN_CONTRAST:
            reasons.append(f"site {site}: contrast {fit.values[contrast_index]:.3g} < {MIN_CONTRAST}")
    dof = sum(f.dof for f in fits)
    chi2 = sum(f.chi2 for f in fits)
    reduced = chi2 / dof if dof > 0 else float("nan")
    if not reduced < MAX_REDUCED_CHI2:
        reasons.append(f"reduced chi2 {reduced:.3g} not < {MAX_REDUCED_CHI2}")
    return reduced


def with_device_means(
    routine: str,
    estimates: list[Estimate],
    fits: list[CurveFit],
    reduced: float,
    reasons: list[str],
    criteria: tuple[str, ...],
    names: tuple[str, ...],
) -> FitResult:
    """Add the device-wide weighted means of every per-site field and build the result."""
    out = list(estimates)
    for name in dict.fromkeys(e.field for e in estimates):
        per_site = [e for e in estimates if e.field == name]
        if len(per_site) == len(fits):
            value, error = combine(
                np.array([e.value for e in per_site]), np.array([e.uncertainty for e in per_site])
            )
            out.append(Estimate(name, value, error, None))
        else:
            reasons.append(f"{name}: no device-wide value, {len(fits) - len(per_site)} site fits failed")
    curves = {name: [float(f.values[i]) for f in fits] for i, name in enumerate(names)}
    return FitResult(routine, tuple(out), reduced, verdict(reasons), tuple(reasons), criteria, curves)
