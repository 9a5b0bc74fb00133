"""What the single-qubit routines share (detuning spectroscopy, Rabi, Ramsey, readout).

They run on Rydberg atoms and on the carrier transition of ions alike. The fits measure the qubit's
detuning Δ; a Rydberg profile's ``detuning_offset`` is in those units (δ → δ + offset), an ion
profile's is a field (h → h + B_0, the qubit frequency moves by 2·B_0), so the routines convert with
:func:`detuning_per_offset`.

Each routine fits every site, proposes per-site records and a device-wide one (inverse-variance mean for
Ω scale and detuning offset, plain mean for readout errors), and states its quality criteria.
Readout contrast and background are free parameters of every fit (``b`` = P(read 1) floor,
``a`` = contrast): they absorb each site's readout errors ε, ε′ (and any preparation error), so the
readout calibration does not enter these fits and its errors add nothing to theirs (a fit with
``b = ε``, ``a = 1 − ε − ε′`` fixed would be biased by every unmodelled loss of contrast).
"""

from __future__ import annotations

import math

import numpy as np

from qep_analog.calibration.fitting import CurveFit, combine
from qep_analog.calibration.known import Known, KnownValue
from qep_analog.calibration.routine import Estimate, FitResult
from qep_analog.calibration.routines.scans import MAX_REDUCED_CHI2, MIN_CONTRAST, verdict
from qep_analog.devices.profile import DeviceProfile


def detuning_per_offset(profile: DeviceProfile) -> float:
    """The qubit detuning one unit of the profile's ``detuning_offset`` makes: 1 (Rydberg), 2 (ions)."""
    return profile.platform_spec.detuning_per_offset


def site_offsets(profile: DeviceProfile, known: Known, n_sites: int) -> list[KnownValue]:
    """Each site's detuning offset in force in qubit detuning (rad/µs): its own record, else the
    device-wide plus its per-site offset (:meth:`Known.site_offset`), times
    :func:`detuning_per_offset`."""
    per = detuning_per_offset(profile)
    out = []
    for site in range(n_sites):
        own = known.site_offset(profile, site)
        out.append(KnownValue(per * own.value, per * own.uncertainty, own.record_ids))
    return out


def mean_budget(per_site: list[Estimate], value: float, error: float) -> tuple[tuple[str, float], ...]:
    """The budget of the inverse-variance mean ``value`` ± ``error`` (:func:`combine`) of sites with
    budgets: "statistical" from the sites' statistical errors; a contribution named by a site
    (``detuning_offset.3``: that site's own input) in quadrature over the sites, under its field's
    name; one shared by every site (``dephasing_time``: one input for all) linearly (fully
    correlated); ``site_scatter`` what :func:`combine` adds when the sites disagree."""
    weights = np.array([1.0 / e.uncertainty**2 for e in per_site])
    total = float(np.sum(weights))
    parts: dict[str, list[float]] = {}
    for w, e in zip(weights, per_site, strict=True):
        for key, size in e.budget:
            parts.setdefault(key, []).append(w * size)
    own: dict[str, float] = {}
    common: dict[str, float] = {}
    for key, weighted in parts.items():
        name, _, site = key.partition(".")
        if site.isdigit() or key == "statistical":
            own[name] = own.get(name, 0.0) + float(np.sum(np.square(weighted)))
        else:
            common[name] = float(np.sum(weighted)) / total
    budget = {name: math.sqrt(square) / total for name, square in own.items()}
    for name, size in common.items():
        budget[name] = math.hypot(budget.get(name, 0.0), size)
    plain = math.sqrt(sum(size**2 for size in budget.values()))
    if error > plain * (1 + 1e-9):
        budget["site_scatter"] = math.sqrt(error**2 - plain**2)
    return tuple(budget.items())


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
            budget = mean_budget(per_site, value, error) if any(e.budget for e in per_site) else ()
            if budget:  # the correlated contributions add linearly: the total follows the budget
                error = math.sqrt(sum(size**2 for _, size in budget))
            out.append(Estimate(name, value, error, None, budget))
        else:
            reasons.append(f"{name}: no device-wide value, {len(fits) - len(per_site)} site fits failed")
    curves = {name: [float(f.values[i]) for f in fits] for i, name in enumerate(names)}
    return FitResult(routine, tuple(out), reduced, verdict(reasons), tuple(reasons), criteria, curves)
