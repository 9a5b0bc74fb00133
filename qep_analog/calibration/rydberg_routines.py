"""Single-qubit calibration routines: detuning spectroscopy, Rabi oscillation, Ramsey, readout (SPAM).

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

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, binomial_sigma, combine, fit_probabilities
from qep_analog.calibration.lineshapes import NODES, WEIGHTS, driven_population
from qep_analog.calibration.records import Quality
from qep_analog.calibration.routine import Estimate, FitResult, Routine, stored_parameters
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError

_FREQ = {"dimension": "angular_frequency"}
_TIME = {"dimension": "time"}
TWO_PI = 2 * math.pi
MAX_REDUCED_CHI2 = 3.0
MIN_CONTRAST = 0.3
_SPECTROSCOPY = ("offset", "rabi", "contrast", "floor")
_RABI = ("rabi", "contrast", "floor")
_RAMSEY = ("frequency", "dephasing_time", "contrast", "floor")


def detuning_per_offset(profile: DeviceProfile) -> float:
    """The qubit detuning one unit of the profile's ``detuning_offset`` makes: 1 (Rydberg), 2 (ions)."""
    return 2.0 if profile.platform == "ion" else 1.0


def scan_grid(start: float, stop: float, points: int, what: str) -> NDArray:
    if points < 5 or not stop > start:
        raise CalibrationError(
            f"{what}: scan [{start:g}, {stop:g}] with {points} points (need stop > start, ≥ 5)"
        )
    return np.linspace(start, stop, points)


def verdict(reasons: list[str]) -> Quality:
    return "bad" if reasons else "good"


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


# -------------------------------------------------------------------------------- spectroscopy


@dataclass(frozen=True, kw_only=True)
class SpectroscopyParameters:
    """A square pulse of ``duration`` (µs) at ``rabi`` (rad/µs, programmed), detuning scanned."""

    rabi: float = field(default=TWO_PI * 0.5, metadata=_FREQ)
    duration: float = field(default=1.0, metadata=_TIME)
    start: float = field(default=-TWO_PI * 1.5, metadata=_FREQ)
    stop: float = field(default=TWO_PI * 1.5, metadata=_FREQ)
    points: int = 41
    shots: int = 400


def _spectroscopy_model(duration: float) -> object:
    def model(delta: NDArray, offset: float, rabi: float, contrast: float, floor: float) -> NDArray:
        return floor + contrast * driven_population(duration, rabi, delta + offset)

    return model


class DetuningSpectroscopy(Routine[SpectroscopyParameters, RydbergCalibrationBackend]):
    """Resonance scan → ``detuning_offset``: the line is centred at δ_programmed = −offset.

    Model p(δ) = b + a Ω²/Ω′² sin²(Ω′t/2), Ω′² = Ω² + (δ + offset)², free offset, Ω, a, b. Guesses:
    offset = −δ at the highest count, Ω = programmed Ω × the profile's rabi_scale."""

    name = "detuning_spectroscopy"
    parameters_type = SpectroscopyParameters
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "resonance inside the scan, one fitted Rabi frequency from each edge",
        "offset error < 5 % of the fitted Rabi frequency (line resolved)",
    )

    def acquire(
        self, parameters: SpectroscopyParameters, backend: RydbergCalibrationBackend, profile: DeviceProfile
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
        return _curve(_spectroscopy_model(data.context["duration"]), x, curves, _SPECTROSCOPY)


def _curve(model: Any, x: NDArray, curves: dict[str, list[float]], names: tuple[str, ...]) -> NDArray:
    sites = len(curves[names[0]])
    columns = [model(x, *(curves[name][site] for name in names)) for site in range(sites)]
    return np.column_stack(columns)


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


# -------------------------------------------------------------------------------- Rabi


@dataclass(frozen=True, kw_only=True)
class RabiParameters:
    """Pulse durations scanned (µs) at a programmed ``rabi`` (rad/µs), on resonance as far as the
    profile knows (programmed detuning = −detuning_offset)."""

    rabi: float = field(default=TWO_PI * 1.0, metadata=_FREQ)
    start: float = field(default=0.0, metadata=_TIME)
    stop: float = field(default=2.5, metadata=_TIME)
    points: int = 51
    shots: int = 400


def _rabi_model(detuning_rms: float) -> object:
    """b + a ⟨Ω²/Ω′² sin²(Ω′t/2)⟩ averaged over Gaussian detuning noise of rms √2/T2* (rad/µs)."""
    noise = detuning_rms * NODES

    def model(t: NDArray, rabi: float, contrast: float, floor: float) -> NDArray:
        rabis = np.full((t.size, noise.size), rabi)
        population = driven_population(t[:, None], rabis, np.broadcast_to(noise, rabis.shape)) @ WEIGHTS
        return floor + contrast * population

    return model


def frequency_guess(x: NDArray, y: NDArray, low: float, high: float, model: object) -> float:
    """The frequency in [low, high] whose best linear (contrast, floor) fit leaves the least residual."""
    best, best_cost = low, math.inf
    for omega in np.linspace(low, high, 400):
        basis = (
            np.column_stack([np.sin(omega * x / 2) ** 2, np.ones_like(x)])
            if model == "rabi"
            else np.column_stack([np.cos(omega * x), np.ones_like(x)])
        )
        coefficients, *_ = np.linalg.lstsq(basis, y, rcond=None)
        cost = float(np.sum((basis @ coefficients - y) ** 2))
        if cost < best_cost:
            best, best_cost = float(omega), cost
    return best


class RabiOscillation(Routine[RabiParameters, RydbergCalibrationBackend]):
    """Rabi oscillation → ``rabi_scale`` = fitted Ω / programmed Ω.

    Model p(t) = b + a ⟨Ω²/Ω′² sin²(Ω′t/2)⟩, free Ω, a, b, averaged over quasi-static detuning noise
    of rms √2/T2* from the profile (run Ramsey first; Ω′² = Ω² + noise² biases Ω by σ²/2Ω² otherwise),
    driven at −detuning_offset of the profile (calibrate the offset first: a residual Δ biases Ω′).
    Guess: the Ω in [0.3, 3] × programmed with the least residual of a linear fit of sin²(Ωt/2)."""

    name = "rabi"
    parameters_type = RabiParameters
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "at least one full period inside the scan",
        "sampled well above Nyquist (aliases fit as well): 1.5·Ω·step < π for Ω fitted and expected",
        "relative error of the scale < 2 %",
    )

    def acquire(
        self, parameters: RabiParameters, backend: RydbergCalibrationBackend, profile: DeviceProfile
    ) -> CalibrationData:
        p = parameters
        durations = scan_grid(p.start, p.stop, p.points, self.name)
        detuning = -profile.calibration.detuning_offset * detuning_per_offset(profile)
        t2 = profile.noise.dephasing_time
        rms = math.sqrt(2.0) / t2 if math.isfinite(t2) else 0.0
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
        model = _rabi_model(data.context.get("detuning_rms", 0.0))
        expected = rabi * data.context.get("rabi_scale", 1.0)
        x = data.sweep
        step = float(np.min(np.diff(x)))
        fits = []
        for site in range(data.n_sites):
            k = data.counts[:, site]
            omega = frequency_guess(x, k / data.shots, 0.3 * rabi, min(3 * rabi, math.pi / step), "rabi")
            guess = [omega, max(float(k.max() - k.min()) / data.shots, 0.05), float(k.min()) / data.shots]
            bounds = ([0.0, 0.0, 0.0], [10 * rabi, 1.0, 1.0])
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
        return _curve(_rabi_model(data.context.get("detuning_rms", 0.0)), x, curves, _RABI)


# -------------------------------------------------------------------------------- Ramsey


@dataclass(frozen=True, kw_only=True)
class RamseyParameters:
    """Free-evolution delays scanned (µs) at a programmed ``detuning`` (rad/µs) well above the offset."""

    detuning: float = field(default=TWO_PI * 1.0, metadata=_FREQ)
    start: float = field(default=0.0, metadata=_TIME)
    stop: float = field(default=4.0, metadata=_TIME)
    points: int = 81
    shots: int = 400


def _ramsey_model(tau: NDArray, frequency: float, t2: float, contrast: float, floor: float) -> NDArray:
    return floor + contrast * 0.5 * (1 + np.exp(-((tau / t2) ** 2)) * np.cos(frequency * tau))


def fit_fringe(x: NDArray, counts: NDArray, shots: int, detuning: float) -> CurveFit:
    """The Ramsey model fitted to one site's fringe (counts of '1' at delays ``x``) taken at a
    programmed ``detuning``: frequency guessed over [0.2, 2] × detuning below Nyquist, T2* = half the
    scan, contrast and floor from the counts."""
    step = float(np.min(np.diff(x)))
    scan = float(x.max() - x.min())
    f0 = frequency_guess(x, counts / shots, 0.2 * detuning, min(2 * detuning, math.pi / step), "ramsey")
    guess = [
        f0,
        0.5 * scan,
        max(float(counts.max() - counts.min()) / shots, 0.05),
        float(counts.min()) / shots,
    ]
    bounds = ([0.0, step / 4, 0.0, 0.0], [math.pi / step, 20 * scan, 1.0, 1.0])
    return fit_probabilities(_ramsey_model, x, counts, shots, guess, bounds)


class Ramsey(Routine[RamseyParameters, RydbergCalibrationBackend]):
    """Ramsey fringes → ``detuning_offset`` = fringe frequency − programmed detuning, and
    ``dephasing_time`` (T2*, Gaussian decay).

    Model p(τ) = b + a (1 + exp(−(τ/T2*)²) cos(fτ))/2, free f, T2*, a, b. Guesses: f by the least
    residual linear fit over [0.2, 2] × programmed detuning (below Nyquist), T2* = half the scan."""

    name = "ramsey"
    parameters_type = RamseyParameters
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "at least two fringes inside the scan; max(f, 1.5·programmed detuning)·step < π (no alias)",
        "|offset| < programmed detuning / 2 (the fringe sign is unambiguous)",
        "T2* inside [2 steps, 2 scans] with relative error < 30 %",
    )

    def acquire(
        self, parameters: RamseyParameters, backend: RydbergCalibrationBackend, profile: DeviceProfile
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
        return _curve(_ramsey_model, x, curves, _RAMSEY)


# -------------------------------------------------------------------------------- readout


@dataclass(frozen=True, kw_only=True)
class ReadoutParameters:
    """``repeats`` blocks of |0⟩ and |1⟩ preparations, ``shots`` each."""

    repeats: int = 4
    shots: int = 1000


class ReadoutCalibration(Routine[ReadoutParameters, RydbergCalibrationBackend]):
    """Prepare |0⟩ and |1⟩ → ``readout_false_positive`` ε = P(1|0), ``readout_false_negative``
    ε′ = P(0|1) per site; device-wide values are the means over sites.

    Model: a constant probability per prepared state and site (fitted as the pooled fraction); the
    reduced χ² measures the agreement of the repeated blocks (drift)."""

    name = "readout"
    parameters_type = ReadoutParameters
    criteria = (
        f"reduced chi2 of the repeated blocks < {MAX_REDUCED_CHI2}",
        "ε < 0.25 and ε′ < 0.25 on every site (contrast 1 − ε − ε′ > 0.5: not saturated, not noise)",
    )

    def acquire(
        self, parameters: ReadoutParameters, backend: RydbergCalibrationBackend, profile: DeviceProfile
    ) -> CalibrationData:
        p = parameters
        prepared = np.tile([0.0, 1.0], p.repeats)
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="prepared",
            sweep_unit="",
            sweep=prepared,
            shots=p.shots,
            counts=backend.readout(prepared, p.shots),
        )

    def fit(self, data: CalibrationData) -> FitResult:
        states = data.sweep
        if not (np.any(states == 0) and np.any(states == 1)):
            raise CalibrationError(f"{self.name}: data need preparations of both 0 and 1")
        reasons: list[str] = []
        estimates: list[Estimate] = []
        chi2, dof = 0.0, 0
        eps_all: dict[str, list[Estimate]] = {"readout_false_positive": [], "readout_false_negative": []}
        for site in range(data.n_sites):
            for state, name in ((0, "readout_false_positive"), (1, "readout_false_negative")):
                k = data.counts[states == state, site]
                wrong = k if state == 0 else data.shots - k
                n = wrong.size * data.shots
                p = float(wrong.sum()) / n
                sigma = float(binomial_sigma(np.array([wrong.sum()]), n)[0])
                block = binomial_sigma(wrong, data.shots)
                chi2 += float(np.sum(((wrong / data.shots - p) / block) ** 2))
                dof += wrong.size - 1
                if not p < 0.25:
                    reasons.append(f"site {site}: {name} {p:.3g} not < 0.25")
                estimate = Estimate(name, p, sigma, site)
                estimates.append(estimate)
                eps_all[name].append(estimate)
        reduced = chi2 / dof if dof > 0 else float("nan")
        if dof > 0 and not reduced < MAX_REDUCED_CHI2:
            reasons.append(f"reduced chi2 {reduced:.3g} not < {MAX_REDUCED_CHI2}")
        curves: dict[str, list[float]] = {}
        for name, per_site in eps_all.items():
            values = np.array([e.value for e in per_site])
            errors = np.array([e.uncertainty for e in per_site])
            estimates.append(
                Estimate(name, float(values.mean()), float(np.sqrt(np.sum(errors**2))) / values.size)
            )
            curves[name] = values.tolist()
        return FitResult(
            self.name, tuple(estimates), reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )


ROUTINES: dict[str, Routine] = {
    r.name: r for r in (DetuningSpectroscopy(), RabiOscillation(), Ramsey(), ReadoutCalibration())
}
