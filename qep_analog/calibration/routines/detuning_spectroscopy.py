"""Detuning spectroscopy: a resonance scan of every site → ``detuning_offset``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, fit_best
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
from qep_analog.calibration.routines.windows import FLAG, at_edge
from qep_analog.devices.profile import DeviceProfile

_SPECTROSCOPY = ("offset", "rabi", "contrast", "floor")


@dataclass(frozen=True, kw_only=True)
class SpectroscopyParameters(RoutineParameters):
    """A square pulse of ``duration`` (µs) at ``rabi`` (rad/µs, programmed), detuning scanned from
    ``start`` to ``stop``; ``rescan``: one scan of the same width around the fitted lines when the
    first scan finds one at its edge."""

    rabi: float = field(default=TWO_PI * 0.5, metadata=RABI)
    duration: float = field(default=1.0, metadata=DURATION)
    start: float = field(default=-TWO_PI * 1.5, metadata=DETUNING)
    stop: float = field(default=TWO_PI * 1.5, metadata=DETUNING)
    rescan: bool = field(default=True, metadata=FLAG)
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

    Model p(δ) = b + a Ω²/Ω′² sin²(Ω′t/2), Ω′² = Ω² + (δ + offset)², free offset, Ω, a, b, fitted
    from several guesses (offset = −δ at the site's highest count and at the count-weighted centre of
    its line; Ω = programmed Ω × the profile's rabi_scale), keeping the best. Re-scan: when a site's
    line (fitted contrast above the criterion) lies within one fitted Rabi frequency of the scan's
    edge or beyond it, one more scan of the same width centred on the median of the lines seen; when
    no site shows a line, one twice as wide centred on the line the profile in force predicts
    (δ = −offset). The data hold both scans."""

    name = "detuning_spectroscopy"
    known_fields = ("rabi_scale",)  # the guess of the line width
    parameters_type = SpectroscopyParameters
    cell_bytes = 1300  # the driven pulse's quadrature over the noise (tracemalloc: 1050)
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "resonance inside the scanned range (after at most one re-scan), one fitted Rabi frequency "
        "from each edge",
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
        counts = self._pulse(p, backend, detunings)
        rescan: dict[str, float] = {}
        if p.rescan:
            window = self._rescan_window(p, profile, detunings, counts)
            if window is not None:
                second = scan_grid(*window, p.points, self.name)
                counts = np.vstack([counts, self._pulse(p, backend, second)])
                detunings = np.concatenate([detunings, second])
                rescan = {"rescan_start": window[0], "rescan_stop": window[1]}
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
                **rescan,
            },
        )

    def _rescan_window(
        self, p: SpectroscopyParameters, profile: DeviceProfile, detunings: NDArray, counts: NDArray
    ) -> tuple[float, float] | None:
        """The re-scan's window, or None: the median of the lines seen (contrast above the
        criterion) when one lies at the edge; no line seen: twice as wide, centred on the line the
        profile in force predicts (δ = −offset)."""
        rabi0 = p.rabi * profile.calibration.rabi_scale
        seen = []
        for site in range(counts.shape[1]):
            fit = self._fit_site(detunings, counts[:, site], p.shots, p.duration, rabi0)
            if fit.ok and fit.values[2] >= MIN_CONTRAST:
                seen.append((-float(fit.values[0]), float(fit.values[1])))
        half = (p.stop - p.start) / 2
        if not seen:
            centre = -profile.calibration.detuning_offset * detuning_per_offset(profile)
            return centre - 2 * half, centre + 2 * half
        if not any(at_edge(c, w, p.start, p.stop) for c, w in seen):
            return None
        centre = float(np.median([c for c, _ in seen]))
        return centre - half, centre + half

    @staticmethod
    def _pulse(
        p: SpectroscopyParameters, backend: RydbergCalibrationBackend, detunings: NDArray
    ) -> NDArray:
        return np.asarray(
            backend.square_pulse(
                np.full_like(detunings, p.duration), np.full_like(detunings, p.rabi), detunings, p.shots
            )
        )

    @staticmethod
    def _fit_site(x: NDArray, k: NDArray, shots: int, duration: float, rabi0: float) -> CurveFit:
        """One site's line fitted from the guesses of the class docstring."""
        span = float(x.max() - x.min())
        contrast, floor = max(float(k.max() - k.min()) / shots, 0.05), float(k.min()) / shots
        weights = np.clip(k - np.median(k), 0.0, None)
        centroid = (
            float(np.sum(weights * x) / np.sum(weights)) if np.sum(weights) > 0 else float(np.mean(x))
        )
        guesses = [[-float(x[np.argmax(k)]), rabi0, contrast, floor], [-centroid, rabi0, contrast, floor]]
        bounds = ([-x.max() - span, 0.05 * rabi0, 0.0, 0.0], [-x.min() + span, 5 * rabi0, 1.0, 1.0])
        model: Any = _spectroscopy_model(duration)
        return fit_best(model, x, k, shots, guesses, bounds)

    def fit(self, data: CalibrationData) -> FitResult:
        rabi0 = data.context["rabi"] * data.context.get("rabi_scale", 1.0)
        x = data.sweep
        duration = data.context["duration"]
        fits = [
            self._fit_site(x, data.counts[:, site], data.shots, duration, rabi0)
            for site in range(data.n_sites)
        ]
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
