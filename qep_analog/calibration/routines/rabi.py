"""Rabi oscillation: pulse lengths scanned on every site → ``rabi_scale``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import fit_probabilities
from qep_analog.calibration.known import Known, record_ids
from qep_analog.calibration.lineshapes import NODES, WEIGHTS, driven_population
from qep_analog.calibration.routine import (
    Estimate,
    FitResult,
    ItemReport,
    Routine,
    RoutineParameters,
    stored_parameters,
)
from qep_analog.calibration.routines.scans import (
    DELAY,
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    POINTS,
    RABI,
    TWO_PI,
    check_scan,
    frequency_guess,
    scan_grid,
)
from qep_analog.calibration.routines.single_qubit import (
    common_checks,
    detuning_per_offset,
    with_device_means,
)
from qep_analog.devices.noise_sources import quasi_static_rms
from qep_analog.devices.profile import DeviceProfile

_RABI = ("rabi", "contrast", "floor")


@dataclass(frozen=True, kw_only=True)
class RabiParameters(RoutineParameters):
    """Pulse durations scanned (µs) at a programmed ``rabi`` (rad/µs), on resonance as far as the
    profile knows (programmed detuning = −detuning_offset)."""

    rabi: float = field(default=TWO_PI * 1.0, metadata=RABI)
    start: float = field(default=0.0, metadata=DELAY)
    stop: float = field(default=2.5, metadata=DELAY)
    points: int = field(default=51, metadata=POINTS)
    shots: int = 400

    def __post_init__(self) -> None:
        super().__post_init__()
        check_scan(self.start, self.stop, "time")


def _rabi_model(detuning_rms: float, residual: float = 0.0) -> object:
    """b + a ⟨Ω²/Ω′² sin²(Ω′t/2)⟩ averaged over Gaussian detuning noise of rms √2/T2* (rad/µs), the
    drive ``residual`` (rad/µs) off the site's known resonance."""
    noise = residual + detuning_rms * NODES

    def model(t: NDArray, rabi: float, contrast: float, floor: float) -> NDArray:
        rabis = np.full((t.size, noise.size), rabi)
        population = driven_population(t[:, None], rabis, np.broadcast_to(noise, rabis.shape)) @ WEIGHTS
        return floor + contrast * population

    return model


def _residual(context: dict[str, float], site: int) -> float:
    """How far the drive is from site ``site``'s known resonance (0 in data without per-site offsets)."""
    return context.get(f"residual_{site}", 0.0)


class RabiOscillation(Routine[RabiParameters, RydbergCalibrationBackend]):
    """Rabi oscillation → ``rabi_scale`` = fitted Ω / programmed Ω.

    Model p(t) = b + a ⟨Ω²/Ω′² sin²(Ω′t/2)⟩, free Ω, a, b, averaged over quasi-static detuning noise
    of rms √2/T2* from the profile (run Ramsey first; Ω′² = Ω² + noise² biases Ω by σ²/2Ω² otherwise),
    driven at −detuning_offset of the profile, Ω′² = Ω² + (Δ_i + noise)² with each site's known
    residual Δ_i = its own offset (Ramsey's per-site record) − the device-wide one (a per-site light
    shift of 0.4 rad/µs biases Ω by 0.2 % at Ω = 2π·1 MHz otherwise; the offsets' errors move Ω by
    Δ_i·σ/Ω, far below its statistical error, and are not propagated). Contrast and floor stay free:
    they absorb the readout errors and any preparation error, which fixing them to ε, ε′ would not.
    Guess: the Ω in [0.3, 3] × programmed with the least residual of a linear fit of sin²(Ωt/2)."""

    name = "rabi"
    known_fields = ("detuning_offset", "dephasing_time", "rabi_scale")
    cell_bytes = 1300  # the driven pulse's quadrature over the noise (tracemalloc: 1050)
    parameters_type = RabiParameters
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "at least one full period inside the scan",
        "sampled well above Nyquist (aliases fit as well): 1.5·Ω·step < π for Ω fitted and expected",
        "relative error of the scale < 2 %",
    )

    def acquire(
        self,
        parameters: RabiParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values (per-site offsets of the profile)."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    def acquire_known(
        self,
        parameters: RabiParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        durations = scan_grid(p.start, p.stop, p.points, self.name)
        detuning = -profile.calibration.detuning_offset * detuning_per_offset(profile)
        t2 = profile.noise.dephasing_time
        rms = quasi_static_rms(t2)
        counts = backend.square_pulse(
            durations, np.full_like(durations, p.rabi), np.full_like(durations, detuning), p.shots
        )
        per = detuning_per_offset(profile)
        offsets = [known.site_offset(profile, site) for site in range(backend.n_sites)]
        residuals = {f"residual_{i}": detuning + per * o.value for i, o in enumerate(offsets)}
        uses = [i for o in offsets for i in o.record_ids] + list(
            record_ids(profile, ("detuning_offset", "dephasing_time", "rabi_scale"))
        )
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="duration",
            sweep_unit="µs",
            sweep=durations,
            shots=p.shots,
            counts=counts,
            context={
                "rabi": p.rabi,
                "detuning": detuning,
                "detuning_rms": rms,
                "rabi_scale": profile.calibration.rabi_scale,
                **residuals,
            },
            uses=tuple(dict.fromkeys(uses)),
        )

    def fit(self, data: CalibrationData) -> FitResult:
        rabi = data.context["rabi"]
        rms = data.context.get("detuning_rms", 0.0)
        expected = rabi * data.context.get("rabi_scale", 1.0)
        x = data.sweep
        step = float(np.min(np.diff(x)))
        fits = []
        for site in range(data.n_sites):
            k = data.counts[:, site]
            omega = frequency_guess(x, k / data.shots, 0.3 * rabi, min(3 * rabi, math.pi / step), "rabi")
            guess = [omega, max(float(k.max() - k.min()) / data.shots, 0.05), float(k.min()) / data.shots]
            bounds = ([0.0, 0.0, 0.0], [10 * rabi, 1.0, 1.0])
            model = _rabi_model(rms, _residual(data.context, data.site(site)))
            fits.append(fit_probabilities(model, x, k, data.shots, guess, bounds))  # type: ignore[arg-type]
        reasons: list[str] = []
        reduced = common_checks(fits, 1, reasons)
        estimates = []
        for site, fit in enumerate(fits):
            if not fit.ok:
                continue
            omega, error = float(fit.values[0]), float(fit.errors[0])
            if omega * float(x.max() - x.min()) < TWO_PI:
                reasons.append(f"site {site}: less than one period in the scan (Ω = {omega:.3g} rad/µs)")
            if max(omega, expected) * 1.5 * step >= math.pi:
                reasons.append(f"site {site}: undersampled, 1.5·Ω·step = {1.5 * omega * step:.3g} ≥ π")
            if not error < 0.02 * omega:
                reasons.append(f"site {site}: Ω error {error:.3g} rad/µs above 2 %")
            estimates.append(Estimate("rabi_scale", omega / rabi, error / rabi, site))
        return with_device_means(self.name, estimates, fits, reduced, reasons, self.criteria, _RABI)

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        rms = data.context.get("detuning_rms", 0.0)
        columns = []
        for site in range(len(curves[_RABI[0]])):
            model: Any = _rabi_model(rms, _residual(data.context, data.site(site)))
            columns.append(model(x, *(curves[name][site] for name in _RABI)))
        return np.column_stack(columns)


ROUTINE = RabiOscillation()
