"""Ramsey fringes of every site → ``detuning_offset`` and ``dephasing_time`` (T2*)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.routine import (
    Estimate,
    FitResult,
    ItemReport,
    Routine,
    RoutineParameters,
    stored_parameters,
)
from qep_analog.calibration.routines.fringes import fit_fringe, ramsey_model
from qep_analog.calibration.routines.scans import (
    DELAY,
    FREQUENCY,
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    POINTS,
    TWO_PI,
    check_scan,
    model_curves,
    scan_grid,
)
from qep_analog.calibration.routines.single_qubit import (
    common_checks,
    detuning_per_offset,
    with_device_means,
)
from qep_analog.devices.profile import DeviceProfile

_RAMSEY = ("frequency", "dephasing_time", "contrast", "floor")


@dataclass(frozen=True, kw_only=True)
class RamseyParameters(RoutineParameters):
    """Free-evolution delays scanned (µs) at a programmed ``detuning`` (rad/µs) well above the offset."""

    detuning: float = field(default=TWO_PI * 1.0, metadata=FREQUENCY)
    start: float = field(default=0.0, metadata=DELAY)
    stop: float = field(default=4.0, metadata=DELAY)
    points: int = field(default=81, metadata=POINTS)
    shots: int = 400

    def __post_init__(self) -> None:
        super().__post_init__()
        check_scan(self.start, self.stop, "time")


class Ramsey(Routine[RamseyParameters, RydbergCalibrationBackend]):
    """Ramsey fringes → ``detuning_offset`` = fringe frequency − programmed detuning, and
    ``dephasing_time`` (T2*, Gaussian decay).

    Model p(τ) = b + a (1 + exp(−(τ/T2*)²) cos(fτ))/2, free f, T2*, a, b. Guesses: f by the least
    residual linear fit over [0.2, 2] × programmed detuning (below Nyquist), T2* = half the scan."""

    name = "ramsey"
    cell_bytes = 256  # the counts' JSON text (tracemalloc: 180)
    parameters_type = RamseyParameters
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "at least two fringes inside the scan; max(f, 1.5·programmed detuning)·step < π (no alias)",
        "|offset| < programmed detuning / 2 (the fringe sign is unambiguous)",
        "T2* inside [2 steps, 2 scans] with relative error < 30 %",
    )

    def acquire(
        self,
        parameters: RamseyParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        delays = scan_grid(p.start, p.stop, p.points, self.name)
        counts = backend.ramsey(delays, p.detuning, p.shots)
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="delay",
            sweep_unit="µs",
            sweep=delays,
            shots=p.shots,
            counts=counts,
            context={"detuning": p.detuning, "detuning_per_offset": detuning_per_offset(profile)},
        )

    def fit(self, data: CalibrationData) -> FitResult:
        detuning = data.context["detuning"]
        x = data.sweep
        step = float(np.min(np.diff(x)))
        scan = float(x.max() - x.min())
        fits = [fit_fringe(x, data.counts[:, site], data.shots, detuning) for site in range(data.n_sites)]
        reasons: list[str] = []
        reduced = common_checks(fits, 2, reasons)
        estimates = []
        for site, fit in enumerate(fits):
            if not fit.ok:
                continue
            f, t2 = float(fit.values[0]), float(fit.values[1])
            f_err, t2_err = float(fit.errors[0]), float(fit.errors[1])
            offset = f - detuning
            if f * scan < 2 * TWO_PI or max(f, 1.5 * detuning) * step >= math.pi:
                reasons.append(f"site {site}: fringe frequency {f:.3g} rad/µs not resolved by the scan")
            if abs(offset) >= detuning / 2:
                reasons.append(f"site {site}: offset {offset:.3g} rad/µs ambiguous against {detuning:.3g}")
            if not (2 * step <= t2 <= 2 * scan and t2_err < 0.3 * t2):
                reasons.append(f"site {site}: T2* {t2:.3g} ± {t2_err:.2g} µs not measured by the scan")
            per = data.context.get("detuning_per_offset", 1.0)
            estimates.append(Estimate("detuning_offset", offset / per, f_err / per, site))
            estimates.append(Estimate("dephasing_time", t2, t2_err, site))
        return with_device_means(self.name, estimates, fits, reduced, reasons, self.criteria, _RAMSEY)

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        return model_curves(ramsey_model, x, curves, _RAMSEY)


ROUTINE = Ramsey()
