"""Long Rabi oscillation: the decay of many periods on resonance → ``amplitude_jitter``.

Scan rule (``stop`` and ``points`` left out; a window in the runcard is scanned as written): the
durations run from ``start`` to where the jitter ``jitter`` would have decayed the oscillation by
``reach`` = σΩt (default σ = 3 %, reach 1.5: exp(−reach²/2) = 0.32 of its contrast left), Ω the
programmed Rabi frequency times the Rabi scale in force, capped at Ω·T2*² with T2* in force (where
the quasi-static detuning noise's own dephasing of the oscillation, a phase spread ≈ t/(Ω T2*²),
reaches one radian) and at the device's longest sequence (``max_duration``); ``per_period`` points
per period of Ω (default 10: 1.5·Ω·step = 0.94 < π), between :data:`MIN_POINTS` and
:data:`MAX_POINTS`. The scan then holds reach/(2π·jitter) periods (8 at the defaults) whatever Ω,
unless the cap cuts it: 0–37.9 µs at 2π·200 kHz on 1.05, 81 points; at 2π·1 MHz on a Rabi scale of
1.06, 0–7.5 µs, cut to 0–6 µs on ``fresnel-like`` (``rydberg-noise`` writes 0–6 µs at 2π·1.3 MHz,
``ion-noise`` 0–40 µs at 2π·200 kHz, 81 points each).

Model: p(t) = b + a ⟨Ω_ξ²/Ω′² sin²(Ω′t/2)⟩, Ω_ξ = Ω(1 + σξ), Ω′² = Ω_ξ² + (Δ_i + δ)², free Ω,
v = σ², a, b, averaged over ξ ~ N(0, 1) and the quasi-static detuning noise δ of rms √2/T2* in force
(21 × 21 Gauss–Hermite nodes), driven at −detuning_offset of the profile; Δ_i is site i's known
residual (its own offset, Ramsey's per-site record, minus the device-wide one: on a resonance off by
Δ the detuning noise dephases the oscillation at first order, which would read as jitter). The curve
is even in σ, so the fit is in v ∈ [0, 0.3²] (finite slope at 0) and σ = √v is recorded with the
half-width of [√(v − δv), √(v + δv)] as its error (:func:`jitter_of_variance`).

Fit: least squares with binomial errors of the counts, then refitted once with binomial errors of
the first fit's model (:func:`model_sigma_refit`). Errors from the counts (Neyman's χ²) give points
read nearer 0 or 1 than the model smaller errors and more weight; on a decaying oscillation those are
the extremes that decayed least, so the decay, and σ, came out low: on the fake chain (σ = 3 %,
``ion-noise``'s window, true profile, 30 seeds) the per-ion pulls had mean −0.26 and the device-wide
−0.52; with the refit −0.08 and −0.19 (60 other seeds: −0.02 and −0.03).

Error budget (the record's ``budget``): ``statistical`` (the fit), and the errors of the known
inputs propagated by the linearised refit (:func:`~qep_analog.calibration.fitting.propagate`):
``dephasing_time`` through the noise variance 2/T2*², and ``detuning_offset`` through the residual
Δ_i (first order) and, since the curve is even in Δ_i, through the noise variance moved by the
offset's error squared (second order). The Rabi scale in force sets the window only (Ω is free): it
adds nothing. The device-wide value is the mean weighted by the sites' statistical errors; T2*'s
part is common to the sites (averaged), the offsets' part each site's own (in quadrature).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeWarning, curve_fit

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, combine, fit_probabilities, propagate
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
    RABI,
    TWO_PI,
    frequency_guess,
    parameter_rule,
    scan_grid,
    verdict,
)
from qep_analog.calibration.routines.single_qubit import common_checks, detuning_per_offset
from qep_analog.calibration.routines.windows import AUTO_DELAY
from qep_analog.devices.noise_sources import quasi_static_rms
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError

_NAMES = ("rabi", "jitter", "contrast", "floor")
#: the largest jitter the fit considers (relative rms)
MAX_JITTER = 0.3
#: the largest standard error of the jitter for a good result (absolute)
MAX_JITTER_ERROR = 0.01
#: the scan rule's bounds on the number of points
MIN_POINTS, MAX_POINTS = 41, 401
#: points of a scan that may be left out (None: the scan rule chooses them)
AUTO_POINTS = parameter_rule(kind="integer", low=5, nullable=True)


@dataclass(frozen=True, kw_only=True)
class JitterParameters(RoutineParameters):
    """Pulse durations scanned (µs) at a programmed ``rabi`` (rad/µs) on resonance as far as the
    profile knows. ``stop`` and ``points`` left out: the scan rule of the module doc (``jitter`` the
    relative rms the scan is sized for, ``reach`` = σΩt at its end, ``per_period`` points per Rabi
    period); given, they are scanned as written."""

    rabi: float = field(default=TWO_PI * 1.0, metadata=RABI)
    start: float = field(default=0.0, metadata=DELAY)
    stop: float | None = field(default=None, metadata=AUTO_DELAY)
    points: int | None = field(default=None, metadata=AUTO_POINTS)
    shots: int = 200
    jitter: float = field(default=0.03, metadata=parameter_rule(low=0.0, open_low=True, high=MAX_JITTER))
    reach: float = field(default=1.5, metadata=parameter_rule(low=0.0, open_low=True, high=5.0))
    per_period: float = field(default=10.0, metadata=parameter_rule(low=4.0, high=100.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stop is not None and not self.stop > self.start:
            raise ValueError(f"scan start {self.start:g} µs is not below stop {self.stop:g} µs")


def scan_window(p: JitterParameters, profile: DeviceProfile) -> tuple[float, float, int]:
    """(start, stop, points) of the scan: the runcard's, or the rule's from the Rabi scale and T2* in
    ``profile`` for what was left out (module doc)."""
    omega = p.rabi * profile.calibration.rabi_scale
    stop = p.stop
    if stop is None:
        stop = p.start + p.reach / (p.jitter * omega)
        t2 = profile.noise.dephasing_time
        if math.isfinite(t2):
            stop = min(stop, p.start + omega * t2**2)
        stop = min(stop, profile.capabilities.max_duration)  # the longest pulse the device plays
    points = p.points
    if points is None:
        periods = omega * (stop - p.start) / TWO_PI
        points = int(min(MAX_POINTS, max(MIN_POINTS, math.ceil(p.per_period * periods) + 1)))
    if not (math.isfinite(stop) and stop > p.start):
        raise CalibrationError(
            f"routine 'amplitude_jitter': scan window [{p.start:g}, {stop:g}] µs is empty"
        )
    return p.start, float(stop), points


def jitter_model(detuning_rms: float, residual: float = 0.0) -> Callable[..., NDArray]:
    """b + a ⟨Ω_ξ²/Ω′² sin²(Ω′t/2)⟩ with Ω_ξ = Ω(1 + σξ), averaged over ξ ~ N(0, 1) and Gaussian
    detuning noise of rms ``detuning_rms`` (rad/µs) around ``residual`` (rad/µs), both by
    Gauss–Hermite quadrature; parameters Ω, the variance v = σ², a, b."""
    noise = residual + detuning_rms * NODES

    def model(t: NDArray, rabi: float, variance: float, contrast: float, floor: float) -> NDArray:
        # axes: (points, detuning nodes, jitter nodes)
        rabis = rabi * (1 + math.sqrt(max(variance, 0.0)) * NODES)[None, None, :]
        population = driven_population(t[:, None, None], rabis, noise[None, :, None]) @ WEIGHTS @ WEIGHTS
        return np.asarray(floor + contrast * population)

    return model


def jitter_of_variance(variance: float, error: float) -> tuple[float, float]:
    """σ = √v and its error from the fitted variance v ± δv: half the width of [√max(v − δv, 0),
    √(v + δv)] (δσ = δv/2σ for σ ≫ √δv; about √δv/2 near σ = 0, where δv/2σ would diverge)."""
    low, high = math.sqrt(max(variance - error, 0.0)), math.sqrt(max(variance + error, 0.0))
    return math.sqrt(max(variance, 0.0)), (high - low) / 2


def _clipped(p: NDArray, shots: int) -> NDArray:
    return np.clip(p, 0.5 / shots, 1 - 0.5 / shots)


def model_sigma_refit(
    model: Callable[..., NDArray],
    x: NDArray,
    counts: NDArray,
    shots: int,
    first: CurveFit,
    bounds: tuple[Sequence[float], Sequence[float]],
) -> CurveFit:
    """Refit from ``first`` with binomial errors of its model, σ² = p(1 − p)/n (χ² likewise:
    Pearson's); ``first`` when it failed or the refit does."""
    if not first.ok:
        return first
    y = np.asarray(counts, dtype=float) / shots
    shown = _clipped(model(x, *first.values), shots)
    low, high = np.asarray(bounds[0], dtype=float), np.asarray(bounds[1], dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            values, covariance = curve_fit(
                model, x, y, p0=np.clip(first.values, low + 1e-12, high - 1e-12),
                sigma=np.sqrt(shown * (1 - shown) / shots), absolute_sigma=True, bounds=(low, high),
                maxfev=20000,
            )  # fmt: skip
    except (RuntimeError, ValueError):
        return first
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(errors))):
        return first
    fitted = _clipped(model(x, *values), shots)
    chi2 = float(np.sum((y - fitted) ** 2 / (fitted * (1 - fitted) / shots)))
    return CurveFit(values, errors, chi2, first.dof, True, covariance=covariance)


def _residual(context: dict[str, float], site: int) -> float:
    """How far the drive is from site ``site``'s known resonance (rad/µs; 0 without per-site offsets)."""
    return context.get(f"residual_{site}", 0.0)


def _upstream(
    x: NDArray, shots: int, context: dict[str, float], site: int, fit: CurveFit
) -> dict[str, float]:
    """The shifts of the fitted variance v when T2* and the site's offset move by their errors."""
    rms, residual = context.get("detuning_rms", 0.0), _residual(context, site)
    t2, t2_error = context.get("dephasing_time", math.inf), context.get("dephasing_time_error", 0.0)
    offset_error = context.get("detuning_per_offset", 1.0) * context.get(f"offset_error_{site}", 0.0)
    variance_error = 2 * rms**2 * t2_error / t2 if math.isfinite(t2) else 0.0

    def at(params: NDArray, inputs: NDArray) -> NDArray:
        return jitter_model(math.sqrt(max(inputs[1], 0.0)), inputs[0])(x, *params)

    shown = _clipped(jitter_model(rms, residual)(x, *fit.values), shots)
    sigma = np.sqrt(shown * (1 - shown) / shots)
    inputs = np.array([residual, rms**2])
    # the offset: first order through Δ_i, second order through the noise variance (even in Δ_i)
    first = propagate(at, fit.values, sigma, inputs, np.array([offset_error, 0.0]))[0, 1]
    second = propagate(at, fit.values, sigma, inputs, np.array([0.0, offset_error**2]))[1, 1]
    t2_shift = propagate(at, fit.values, sigma, inputs, np.array([0.0, variance_error]))[1, 1]
    return {"dephasing_time": float(t2_shift), "detuning_offset": math.hypot(first, second)}


class AmplitudeJitter(Routine[JitterParameters, RydbergCalibrationBackend]):
    """Long Rabi oscillation → ``amplitude_jitter`` σ, the relative shot-to-shot rms of the drive
    (scan rule, model, fit and error budget in the module doc). Many periods decay as
    exp(−(σΩt)²/2): the scan must reach σΩt ≈ 1. A device without jitter records σ ≈ 0 with an error
    of about √δv/2."""

    name = "amplitude_jitter"
    cell_bytes = 9000  # the pulse's quadrature over jitter and detuning noise (21 × 21 nodes a point)
    parameters_type = JitterParameters
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "sampled well above Nyquist: 1.5·Ω·step < π for Ω fitted",
        f"standard error of the jitter (statistical and propagated) < {MAX_JITTER_ERROR} (absolute)",
    )

    def data_shape(self, parameters: JitterParameters, n_sites: int) -> tuple[int, int]:
        """A row per scan point (the rule's at most :data:`MAX_POINTS`), a column per site."""
        return parameters.points or MAX_POINTS, n_sites

    def acquire(
        self,
        parameters: JitterParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values taken as exact."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    def acquire_known(
        self,
        parameters: JitterParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        start, stop, points = scan_window(p, profile)
        durations = scan_grid(start, stop, points, self.name)
        per = detuning_per_offset(profile)
        detuning = -profile.calibration.detuning_offset * per
        t2 = known.device_value(profile, "dephasing_time")
        offsets = [known.site_offset(profile, site) for site in range(backend.n_sites)]
        counts = backend.square_pulse(
            durations, np.full_like(durations, p.rabi), np.full_like(durations, detuning), p.shots
        )
        context = {
            "rabi": p.rabi,
            "detuning": detuning,
            "detuning_rms": quasi_static_rms(t2.value),
            "dephasing_time": t2.value,
            "dephasing_time_error": t2.uncertainty,
            "detuning_per_offset": per,
            "rabi_scale": profile.calibration.rabi_scale,
            **{f"residual_{i}": detuning + per * o.value for i, o in enumerate(offsets)},
            **{f"offset_error_{i}": o.uncertainty for i, o in enumerate(offsets)},
            "adaptive_window": float(p.stop is None),
            "adaptive_points": float(p.points is None),
        }
        uses = [*t2.record_ids, *(i for o in offsets for i in o.record_ids)]
        uses += record_ids(profile, ("detuning_offset", "rabi_scale"))
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="duration",
            sweep_unit="µs",
            sweep=durations,
            shots=p.shots,
            counts=counts,
            context=context,
            uses=tuple(dict.fromkeys(uses)),
        )

    def fit(self, data: CalibrationData) -> FitResult:
        rabi = data.context["rabi"]
        rms = data.context.get("detuning_rms", 0.0)
        x = data.sweep
        step = float(np.min(np.diff(x)))
        fits = []
        for site in range(data.n_sites):
            k = data.counts[:, site]
            omega = frequency_guess(x, k / data.shots, 0.3 * rabi, min(3 * rabi, math.pi / step), "rabi")
            spread = max(float(k.max() - k.min()) / data.shots, 0.05)
            guess = [omega, 0.02**2, spread, float(k.min()) / data.shots]
            bounds = ([0.0, 0.0, 0.0, 0.0], [10 * rabi, MAX_JITTER**2, 1.0, 1.0])
            model = jitter_model(rms, _residual(data.context, data.site(site)))
            first = fit_probabilities(model, x, k, data.shots, guess, bounds)
            fits.append(model_sigma_refit(model, x, k, data.shots, first, bounds))
        reasons: list[str] = []
        reduced = common_checks(fits, 2, reasons)
        estimates: list[Estimate] = []
        for site, fit in enumerate(fits):
            if not fit.ok:
                continue
            omega, variance = float(fit.values[0]), float(fit.values[1])
            jitter, error = jitter_of_variance(variance, float(fit.errors[1]))
            shifts = _upstream(x, data.shots, data.context, data.site(site), fit)
            budget = [("statistical", error)] + [
                (name, jitter_of_variance(variance, abs(shift))[1]) for name, shift in shifts.items()
            ]
            total = math.sqrt(sum(part**2 for _, part in budget))
            if omega * 1.5 * step >= math.pi:
                reasons.append(f"site {site}: undersampled, 1.5·Ω·step = {1.5 * omega * step:.3g} ≥ π")
            if not total < MAX_JITTER_ERROR:
                reasons.append(f"site {site}: jitter error {total:.3g} not < {MAX_JITTER_ERROR}")
            estimates.append(Estimate("amplitude_jitter", jitter, total, site, tuple(budget)))
        if len(estimates) == len(fits):
            estimates.append(device_mean(estimates))
        else:
            reasons.append(
                f"amplitude_jitter: no device-wide value, {len(fits) - len(estimates)} site fits failed"
            )
        curves = {name: [float(f.values[i]) for f in fits] for i, name in enumerate(_NAMES)}
        return FitResult(
            self.name, tuple(estimates), reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        rms = data.context.get("detuning_rms", 0.0)
        columns = []
        for site in range(len(curves[_NAMES[0]])):
            model: Any = jitter_model(rms, _residual(data.context, data.site(site)))
            columns.append(model(x, *(curves[name][site] for name in _NAMES)))
        return np.column_stack(columns)


def device_mean(estimates: Sequence[Estimate]) -> Estimate:
    """The device-wide jitter: the sites' values weighted by their statistical errors
    (:func:`~qep_analog.calibration.fitting.combine`, inflated when they disagree); T2*'s part common
    to the sites (their weighted mean), the offsets' part each site's own (in quadrature)."""
    parts = [dict(e.budget) for e in estimates]
    stat = np.array([b["statistical"] for b in parts])
    value, statistical = combine(np.array([e.value for e in estimates]), stat)
    w = 1 / stat**2
    common = np.array([b.get("dephasing_time", 0.0) for b in parts])
    own = np.array([b.get("detuning_offset", 0.0) for b in parts])
    budget = (
        ("statistical", statistical),
        ("dephasing_time", float(np.sum(w * common) / np.sum(w))),
        ("detuning_offset", float(np.sqrt(np.sum((w * own) ** 2)) / np.sum(w))),
    )
    total = math.sqrt(sum(part**2 for _, part in budget))
    return Estimate("amplitude_jitter", value, total, None, budget)


ROUTINE = AmplitudeJitter()
