"""Detuning spectroscopy: a resonance scan of every site → ``detuning_offset``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import fit_probabilities
from qep_analog.calibration.lineshapes import driven_population
from qep_analog.calibration.routine import (
    Estimate,
    FitResult,
    ItemReport,
    Routine,
    RoutineParameters,
    stored_parameters,
)
from qep_analog.calibration.routines.scans import (
    DETUNING,
    DURATION,
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    POINTS,
    RABI,
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

_SPECTROSCOPY = ("offset", "rabi", "contrast", "floor")


@dataclass(frozen=True, kw_only=True)
class SpectroscopyParameters(RoutineParameters):
    """A square pulse of ``duration`` (µs) at ``rabi`` (rad/µs, programmed), detuning scanned."""

    rabi: float = field(default=TWO_PI * 0.5, metadata=RABI)
    duration: float = field(default=1.0, metadata=DURATION)
    start: float = field(default=-TWO_PI * 1.5, metadata=DETUNING)
    stop: float = field(default=TWO_PI * 1.5, metadata=DETUNING)
    points: int = field(default=41, metadata=POINTS)
    shots: int = 400

    def __post_init__(self) -> None:
        super().__post_init__()
        check_scan(self.start, self.stop, "angular_frequency")


def _spectroscopy_model(duration: float) -> object:
    def model(delta: NDArray, offset: float, rabi: float, contrast: float, floor: float) -> NDArray:
        return floor + contrast * driven_population(duration, rabi, delta + offset)

    return model


class DetuningSpectroscopy(Routine[SpectroscopyParameters, RydbergCalibrationBackend]):
    """Resonance scan → ``detuning_offset``: the line is centred at δ_programmed = −offset.

    Model p(δ) = b + a Ω²/Ω′² sin²(Ω′t/2), Ω′² = Ω² + (δ + offset)², free offset, Ω, a, b. Guesses:
    offset = −δ at the highest count, Ω = programmed Ω × the profile's rabi_scale."""

    name = "detuning_spectroscopy"
    known_fields = ("rabi_scale",)  # the guess of the line width
    parameters_type = SpectroscopyParameters
    cell_bytes = 1300  # the driven pulse's quadrature over the noise (tracemalloc: 1050)
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "resonance inside the scan, one fitted Rabi frequency from each edge",
        "offset error < 5 % of the fitted Rabi frequency (line resolved)",
    )

    def acquire(
        self,
        parameters: SpectroscopyParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        detunings = scan_grid(p.start, p.stop, p.points, self.name)
        counts = backend.square_pulse(
            np.full_like(detunings, p.duration), np.full_like(detunings, p.rabi), detunings, p.shots
        )
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="detuning",
            sweep_unit="rad/µs",
            sweep=detunings,
            shots=p.shots,
            counts=counts,
            context={
                "rabi": p.rabi,
                "duration": p.duration,
                "rabi_scale": profile.calibration.rabi_scale,
                "detuning_per_offset": detuning_per_offset(profile),
            },
        )

    def fit(self, data: CalibrationData) -> FitResult:
        rabi0 = data.context["rabi"] * data.context.get("rabi_scale", 1.0)
        model = _spectroscopy_model(data.context["duration"])
        x = data.sweep
        span = float(x.max() - x.min())
        fits = []
        for site in range(data.n_sites):
            k = data.counts[:, site]
            guess = [
                -float(x[np.argmax(k)]),
                rabi0,
                max(float(k.max() - k.min()) / data.shots, 0.05),
                float(k.min()) / data.shots,
            ]
            bounds = ([-x.max() - span, 0.05 * rabi0, 0.0, 0.0], [-x.min() + span, 5 * rabi0, 1.0, 1.0])
            fits.append(fit_probabilities(model, x, k, data.shots, guess, bounds))  # type: ignore[arg-type]
        reasons: list[str] = []
        reduced = common_checks(fits, 2, reasons)
        estimates = []
        for site, fit in enumerate(fits):
            if not fit.ok:
                continue
            offset, rabi = fit.values[0], fit.values[1]
            if not (x.min() + rabi <= -offset <= x.max() - rabi):
                reasons.append(f"site {site}: resonance {-offset:.3g} rad/µs not inside the scan")
            if not fit.errors[0] < 0.05 * rabi:
                reasons.append(f"site {site}: offset error {fit.errors[0]:.3g} rad/µs not resolved")
            per = data.context.get("detuning_per_offset", 1.0)
            estimates.append(
                Estimate("detuning_offset", float(offset) / per, float(fit.errors[0]) / per, site)
            )
        return with_device_means(self.name, estimates, fits, reduced, reasons, self.criteria, _SPECTROSCOPY)

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        return model_curves(_spectroscopy_model(data.context["duration"]), x, curves, _SPECTROSCOPY)


ROUTINE = DetuningSpectroscopy()
