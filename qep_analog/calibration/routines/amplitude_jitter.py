"""Long Rabi oscillation: the decay of many periods on resonance → ``amplitude_jitter``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import fit_probabilities
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
    model_curves,
    scan_grid,
)
from qep_analog.calibration.routines.single_qubit import (
    common_checks,
    detuning_per_offset,
    with_device_means,
)
from qep_analog.devices.noise_sources import quasi_static_rms
from qep_analog.devices.profile import DeviceProfile

_NAMES = ("rabi", "jitter", "contrast", "floor")
#: the largest jitter the fit considers (relative rms)
MAX_JITTER = 0.3
#: the largest standard error of the jitter for a good result (absolute)
MAX_JITTER_ERROR = 0.01


@dataclass(frozen=True, kw_only=True)
class JitterParameters(RoutineParameters):
    """Pulse durations scanned (µs) at a programmed ``rabi`` (rad/µs) on resonance as far as the
    profile knows; the scan should reach σ·Ω·t ≈ 1 for the jitter σ to be measured (8 µs at 2π·1 MHz
    resolves σ ≳ 1.5 %)."""

    rabi: float = field(default=TWO_PI * 1.0, metadata=RABI)
    start: float = field(default=0.0, metadata=DELAY)
    stop: float = field(default=8.0, metadata=DELAY)
    points: int = field(default=81, metadata=POINTS)
    shots: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        check_scan(self.start, self.stop, "time")


def _jitter_model(detuning_rms: float) -> object:
    """b + a ⟨Ω_ξ²/Ω′² sin²(Ω′t/2)⟩ with Ω_ξ = Ω(1 + σξ), averaged over ξ ~ N(0, 1) and Gaussian
    detuning noise of rms √2/T2* (rad/µs), both by Gauss–Hermite quadrature; parameters Ω, the
    variance v = σ², a, b (the curve is even in σ: in v it has a finite slope at 0)."""
    noise = detuning_rms * NODES

    def model(t: NDArray, rabi: float, variance: float, contrast: float, floor: float) -> NDArray:
        # axes: (points, detuning nodes, jitter nodes)
        rabis = rabi * (1 + math.sqrt(max(variance, 0.0)) * NODES)[None, None, :]
        population = driven_population(t[:, None, None], rabis, noise[None, :, None]) @ WEIGHTS @ WEIGHTS
        return floor + contrast * population

    return model


def jitter_of_variance(variance: float, error: float) -> tuple[float, float]:
    """σ = √v and its error from the fitted variance v ± δv: half the width of [√max(v − δv, 0),
    √(v + δv)] (δσ = δv/2σ for σ ≫ √δv; about √δv/2 near σ = 0, where δv/2σ would diverge)."""
    low, high = math.sqrt(max(variance - error, 0.0)), math.sqrt(max(variance + error, 0.0))
    return math.sqrt(max(variance, 0.0)), (high - low) / 2


class AmplitudeJitter(Routine[JitterParameters, RydbergCalibrationBackend]):
    """Long Rabi oscillation → ``amplitude_jitter`` σ, the relative shot-to-shot rms of the drive.

    Model p(t) = b + a ⟨Ω_ξ²/Ω′² sin²(Ω′t/2)⟩, Ω_ξ = Ω(1 + σξ), free Ω, v = σ², a, b, averaged over
    the jitter ξ ~ N(0, 1) and the quasi-static detuning noise of rms √2/T2* of the profile (known:
    run Ramsey first; its record is in the profile the routine is given), driven at −detuning_offset
    of the profile. Many periods decay as exp(−(σΩt)²/2): the scan must reach σΩt ≈ 1. The curve is
    even in σ, so the fit is in v ∈ [0, 0.3²] (finite slope at 0) and σ = √v is recorded with the
    half-width of [√(v − δv), √(v + δv)] as its error (:func:`jitter_of_variance`): a device without
    jitter records σ ≈ 0 with an error of about √δv/2."""

    name = "amplitude_jitter"
    known_fields = ("detuning_offset", "dephasing_time", "rabi_scale")  # the drive point, the noise
    cell_bytes = 9000  # the pulse's quadrature over jitter and detuning noise (21 × 21 nodes a point)
    parameters_type = JitterParameters
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "sampled well above Nyquist: 1.5·Ω·step < π for Ω fitted",
        f"standard error of the jitter < {MAX_JITTER_ERROR} (absolute)",
    )

    def acquire(
        self,
        parameters: JitterParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
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
            },
        )

    def fit(self, data: CalibrationData) -> FitResult:
        rabi = data.context["rabi"]
        model = _jitter_model(data.context.get("detuning_rms", 0.0))
        x = data.sweep
        step = float(np.min(np.diff(x)))
        fits = []
        for site in range(data.n_sites):
            k = data.counts[:, site]
            omega = frequency_guess(x, k / data.shots, 0.3 * rabi, min(3 * rabi, math.pi / step), "rabi")
            spread = max(float(k.max() - k.min()) / data.shots, 0.05)
            guess = [omega, 0.02**2, spread, float(k.min()) / data.shots]
            bounds = ([0.0, 0.0, 0.0, 0.0], [10 * rabi, MAX_JITTER**2, 1.0, 1.0])
            fits.append(fit_probabilities(model, x, k, data.shots, guess, bounds))  # type: ignore[arg-type]
        reasons: list[str] = []
        reduced = common_checks(fits, 2, reasons)
        estimates = []
        for site, fit in enumerate(fits):
            if not fit.ok:
                continue
            omega = float(fit.values[0])
            jitter, error = jitter_of_variance(float(fit.values[1]), float(fit.errors[1]))
            if omega * 1.5 * step >= math.pi:
                reasons.append(f"site {site}: undersampled, 1.5·Ω·step = {1.5 * omega * step:.3g} ≥ π")
            if not error < MAX_JITTER_ERROR:
                reasons.append(f"site {site}: jitter error {error:.3g} not < {MAX_JITTER_ERROR}")
            estimates.append(Estimate("amplitude_jitter", jitter, error, site))
        return with_device_means(self.name, estimates, fits, reduced, reasons, self.criteria, _NAMES)

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        return model_curves(_jitter_model(data.context.get("detuning_rms", 0.0)), x, curves, _NAMES)


ROUTINE = AmplitudeJitter()
