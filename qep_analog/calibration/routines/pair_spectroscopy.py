"""Pair spectroscopy: the interaction strength of two Rydberg atoms → ``interaction_scale``.

Experiment: two atoms at distance R, a square pulse of programmed Ω and duration t from |gg⟩, the
detuning δ scanned across the two-photon resonance |gg⟩ → |rr⟩ at Δ = V/2 (Δ = δ + detuning_offset),
and the fraction of shots in which both atoms read '1'. With V ≫ Ω the single excitations are off
resonant by V/2 there, so the line is narrow (two-photon Rabi frequency 2Ω²/V) and its position
measures V directly; light shifts of |gg⟩ and |rr⟩ are equal to second order and the exact model
accounts for the rest.

Model: the exact four-level evolution of H = Σ_i Ω/2 X_i − Σ_i Δ_i n_i + V n₁n₂
(:func:`~qep_analog.calibration.lineshapes.pair_populations`), each atom's detuning averaged over its own
quasi-static Gaussian noise of rms √2/T2* (Doppler-like, independent between atoms; 7² Gauss–Hermite
nodes), with the profile's detuning offset and T2* (run after Ramsey and Rabi). The probability of
reading '11' is b + a (P_rr + η P_single), η = ε/(1 + ε − ε′) from the profile's readout errors (the
exact weight of a single excitation relative to |rr⟩ for the pair read-out; a small correction), with
free V, Ω, contrast a and floor b, fitted with binomial errors of the counts and then refitted with
binomial errors of the model (see :func:`_model_sigma_refit`). The record is the absolute scale the
profile should hold: interaction_scale = V·R⁶/C6 with the profile's (nominal) C6.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeWarning, curve_fit

from qep_analog.calibration.backend import PairPulseBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, fit_probabilities
from qep_analog.calibration.lineshapes import pair_populations
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
    DISTANCE,
    DURATION,
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    POINTS,
    RABI,
    TWO_PI,
    check_scan,
    model_curves,
    scan_grid,
    verdict,
)
from qep_analog.devices.profile import DeviceProfile, realised_duration
from qep_analog.devices.rydberg import RydbergControls, check_controls
from qep_analog.errors import CalibrationError, ConstraintError

_NAMES = ("interaction", "rabi", "contrast", "floor")
#: Gauss–Hermite nodes per atom of the model's noise average
MODEL_NODES = 7
MAX_RELATIVE_ERROR = 0.02
MIN_LINE = 0.2


@dataclass(frozen=True, kw_only=True)
class PairSpectroscopyParameters(RoutineParameters):
    """Two atoms ``distance`` µm apart, a pulse of ``duration`` (µs) at programmed ``rabi``
    (rad/µs), programmed detuning scanned from ``start`` to ``stop`` (rad/µs). The defaults suit a
    Fresnel-like array: V ≈ 2π·2.8 MHz at 6 µm, the |rr⟩ line near δ = 2π·1.3 MHz."""

    distance: float = field(default=6.0, metadata=DISTANCE)
    rabi: float = field(default=TWO_PI * 0.6, metadata=RABI)
    duration: float = field(default=2.0, metadata=DURATION)
    start: float = field(default=TWO_PI * 0.8, metadata=DETUNING)
    stop: float = field(default=TWO_PI * 1.8, metadata=DETUNING)
    points: int = field(default=41, metadata=POINTS)
    shots: int = 400

    def __post_init__(self) -> None:
        super().__post_init__()
        check_scan(self.start, self.stop, "angular_frequency")


def _pair_model(context: dict[str, float]) -> Any:
    """p(δ) = b + a (P_rr + η P_single) for the exact, noise-averaged pair evolution."""
    duration, offset = context["duration"], context["detuning_offset"]
    rms = context["detuning_rms"]
    eps, eps_prime = context["readout_false_positive"], context["readout_false_negative"]
    weight = eps / (1 + eps - eps_prime)

    def model(delta: NDArray, interaction: float, rabi: float, contrast: float, floor: float) -> NDArray:
        delta = np.asarray(delta, dtype=float)
        populations = pair_populations(
            np.full(delta.size, duration),
            np.full((delta.size, 2), rabi),
            np.repeat((delta + offset)[:, None], 2, axis=1),
            interaction,
            rms,
            MODEL_NODES,
        )
        return floor + contrast * (populations[:, 3] + weight * (populations[:, 1] + populations[:, 2]))

    return model


def _model_sigma_refit(
    model: Any, x: NDArray, counts: NDArray, shots: int, first: CurveFit, bounds: tuple[list, list]
) -> CurveFit:
    """Refit from ``first`` with binomial errors of its model, σ² = p(1 − p)/n; χ² likewise (Pearson).

    Most of a pair scan lies in the wings, at P('11') of a few %: errors from the counts themselves
    are then biased (a point with few counts gets a small error and pulls the fit), errors from the
    model are not. Keeps ``first`` if the refit fails."""
    y = np.asarray(counts, dtype=float) / shots
    floor = 0.5 / shots  # the model may touch 0 or 1
    p = np.clip(model(x, *first.values), floor, 1 - floor)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            values, covariance = curve_fit(
                model,
                x,
                y,
                p0=np.clip(first.values, np.add(bounds[0], 1e-12), np.subtract(bounds[1], 1e-12)),
                sigma=np.sqrt(p * (1 - p) / shots),
                absolute_sigma=True,
                bounds=bounds,
            )
    except (RuntimeError, ValueError):
        return first
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(errors))):
        return first
    p = np.clip(model(x, *values), floor, 1 - floor)
    chi2 = float(np.sum((y - p) ** 2 / (p * (1 - p) / shots)))
    return CurveFit(values, errors, chi2, first.dof, True)


class PairSpectroscopy(Routine[PairSpectroscopyParameters, PairPulseBackend]):
    """Two-photon |gg⟩ → |rr⟩ spectroscopy of a pair → device-wide ``interaction_scale`` (see the
    module docstring). Guesses: V = 2(δ + offset) at the highest count when the line stands out of the
    shot noise, else the profile's interaction_scale·C6/R⁶; Ω = programmed Ω × rabi_scale."""

    name = "pair_spectroscopy"
    cell_bytes = 240_000  # the two atoms' 4-level evolution on 21² noise nodes (tracemalloc: 205 kB)
    platforms = ("rydberg",)
    parameters_type = PairSpectroscopyParameters
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST}",
        f"the fitted |rr⟩ population peaks above {MIN_LINE} inside the scan (the line is seen)",
        "resonance V/2 − offset inside the scan, one line width (Ω²/V + √2/T2*) from each edge",
        f"relative error of interaction_scale < {MAX_RELATIVE_ERROR:.0%}",
    )

    def data_shape(self, parameters: PairSpectroscopyParameters, n_sites: int) -> tuple[int, int]:
        """A row per scan point, one column (both atoms read '1')."""
        return parameters.points, 1

    def acquire(
        self,
        parameters: PairSpectroscopyParameters,
        backend: PairPulseBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        detunings = scan_grid(p.start, p.stop, p.points, self.name)
        caps = profile.rydberg
        positions = np.array([[-p.distance / 2, 0.0], [p.distance / 2, 0.0]])
        try:
            duration = realised_duration(profile, p.duration)
            for detuning in (p.start, p.stop):
                check_controls(RydbergControls(positions, p.rabi, detuning), profile)
        except ConstraintError as exc:
            raise CalibrationError(f"routine {self.name!r}: {exc}") from None
        t2 = profile.noise.dephasing_time
        counts = backend.pair_pulse(
            p.distance,
            np.full_like(detunings, duration),
            np.full_like(detunings, p.rabi),
            detunings,
            p.shots,
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
                "distance": p.distance,
                "rabi": p.rabi,
                "duration": duration,
                "c6": caps.c6,
                "detuning_offset": profile.calibration.detuning_offset,
                "detuning_rms": math.sqrt(2.0) / t2 if math.isfinite(t2) else 0.0,
                "rabi_scale": profile.calibration.rabi_scale,
                "interaction_scale": profile.calibration.interaction_scale,
                "readout_false_positive": profile.noise.readout_false_positive,
                "readout_false_negative": profile.noise.readout_false_negative,
            },
        )

    def fit(self, data: CalibrationData) -> FitResult:
        ctx = data.context
        if data.n_sites != 1:
            raise CalibrationError(f"{self.name}: {data.n_sites} columns of counts, expected 1 (the pair)")
        model = _pair_model(ctx)
        x, k = data.sweep, data.counts[:, 0]
        scale_to_v = ctx["c6"] / ctx["distance"] ** 6  # V per unit of interaction_scale
        nominal = ctx["interaction_scale"] * scale_to_v
        rabi0 = ctx["rabi"] * ctx["rabi_scale"]
        y = k / data.shots
        sigma = math.sqrt(max(float(np.median(y)), 1.0 / data.shots) / data.shots)
        peak = int(np.argmax(k))
        stands_out = y[peak] - float(np.median(y)) > 6 * sigma
        v0 = 2 * (float(x[peak]) + ctx["detuning_offset"]) if stands_out else nominal
        v0 = v0 if v0 > 0 else nominal
        guess = [v0, rabi0, max(float(y.max() - y.min()), 0.05), float(y.min())]
        bounds = ([0.25 * v0, 0.2 * rabi0, 0.0, 0.0], [4 * v0, 5 * rabi0, 1.0, 1.0])
        fit = fit_probabilities(model, x, k, data.shots, guess, bounds)
        if fit.ok:
            fit = _model_sigma_refit(model, x, k, data.shots, fit, bounds)
        reasons: list[str] = []
        reduced = fit.reduced_chi2
        curves = {name: [float(value)] for name, value in zip(_NAMES, fit.values, strict=True)}
        if not fit.ok:
            reasons.append(f"fit failed ({fit.message})")
            return FitResult(self.name, (), reduced, "bad", tuple(reasons), self.criteria, curves)
        v, rabi, contrast, _ = (float(value) for value in fit.values)
        v_error = float(fit.errors[0])
        if not reduced < MAX_REDUCED_CHI2:
            reasons.append(f"reduced chi2 {reduced:.3g} not < {MAX_REDUCED_CHI2}")
        if contrast < MIN_CONTRAST:
            reasons.append(f"contrast {contrast:.3g} < {MIN_CONTRAST}")
        fine = np.linspace(x.min(), x.max(), 201)
        line = float(np.max(model(fine, v, rabi, 1.0, 0.0)))
        if not line > MIN_LINE:
            reasons.append(f"the fitted |rr⟩ population peaks at {line:.3g} in the scan, not > {MIN_LINE}")
        resonance = v / 2 - ctx["detuning_offset"]
        width = rabi**2 / v + ctx["detuning_rms"]
        if not x.min() + width <= resonance <= x.max() - width:
            reasons.append(
                f"resonance {resonance:.3g} rad/µs not inside the scan [{x.min():.3g}, {x.max():.3g}] "
                f"by a line width {width:.3g}"
            )
        scale, scale_error = v / scale_to_v, v_error / scale_to_v
        if not scale_error < MAX_RELATIVE_ERROR * scale:
            reasons.append(f"interaction_scale {scale:.4g} ± {scale_error:.2g} not measured to 2 %")
        curves["resonance"] = [resonance]
        estimates = (Estimate("interaction_scale", scale, scale_error, None),)
        return FitResult(
            self.name, estimates, reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        return model_curves(_pair_model(data.context), x, curves, _NAMES)


ROUTINE = PairSpectroscopy()
