"""Rabi oscillation: pulse lengths scanned on every site → ``rabi_scale``.

Scan rule (``stop`` left out): from ``start`` (default 0) over ``periods`` periods 2π/Ω₀ of the Rabi
frequency in force Ω₀ = programmed Ω × rabi_scale (at most the device's longest sequence), with
``points`` left out: 16 points per period (at least 21, at most 201). A ``stop`` given in the
runcard is scanned as given. Re-scan (``rescan``): when the first scan's fitted Ω (the median over
the sites that show an oscillation) puts fewer than 0.8·``periods`` periods in the scan, or fewer
than 12 points in a period, one more scan follows with the rule's window and points at the fitted
Ω; the data hold both scans and the fit uses both.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, binomial_sigma, fit_best, propagate
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
    check_scan,
    frequency_guess,
    scan_grid,
)
from qep_analog.calibration.routines.single_qubit import (
    common_checks,
    detuning_per_offset,
    site_offsets,
    with_device_means,
)
from qep_analog.calibration.routines.windows import (
    AUTO_DELAY,
    AUTO_POINTS,
    FLAG,
    MAX_AUTO_POINTS,
    PERIODS,
    rule_points,
)
from qep_analog.devices.noise_sources import quasi_static_rms
from qep_analog.devices.profile import DeviceProfile

_RABI = ("rabi", "contrast", "floor")


#: points per period of the rule's scan, and the fewest that leave a scan without a re-scan
POINTS_PER_PERIOD = 16
MIN_POINTS_PER_PERIOD = 12
#: the fraction of the wanted periods below which a scan is repeated
MIN_PERIOD_FRACTION = 0.8


@dataclass(frozen=True, kw_only=True)
class RabiParameters(RoutineParameters):
    """Pulse durations scanned (µs) at a programmed ``rabi`` (rad/µs), on resonance as far as the
    profile knows (programmed detuning = −detuning_offset), from ``start`` to ``stop`` (µs); ``stop``
    and ``points`` left out: the scan rule of the module docstring over ``periods`` periods;
    ``rescan``: one more scan when the first holds too few periods or samples them too coarsely."""

    rabi: float = field(default=TWO_PI * 1.0, metadata=RABI)
    start: float = field(default=0.0, metadata=DELAY)
    stop: float | None = field(default=None, metadata=AUTO_DELAY)
    periods: float = field(default=2.5, metadata=PERIODS)
    points: int | None = field(default=None, metadata=AUTO_POINTS)
    rescan: bool = field(default=True, metadata=FLAG)
    shots: int = 400

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stop is not None:
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


def _step(x: NDArray) -> float:
    """The smallest step between the scan's distinct durations (two scans may interleave)."""
    return float(np.min(np.diff(np.unique(x))))


def _fit_site(x: NDArray, k: NDArray, shots: int, rabi: float, expected: float, model: Any) -> CurveFit:
    """One site's oscillation fitted from the guesses of the class docstring (``rabi``: the programmed
    Ω, ``expected``: Ω in force, rad/µs); the best fit (:func:`fit_best`)."""
    step = _step(x)
    omega = frequency_guess(x, k / shots, 0.3 * rabi, min(3 * rabi, math.pi / step), "rabi")
    contrast, floor = max(float(k.max() - k.min()) / shots, 0.05), float(k.min()) / shots
    starts = [omega] + ([expected] if abs(expected - omega) > 0.02 * omega else [])
    bounds = ([0.0, 0.0, 0.0], [10 * rabi, 1.0, 1.0])
    return fit_best(model, x, k, shots, [[w, contrast, floor] for w in starts], bounds)


class RabiOscillation(Routine[RabiParameters, RydbergCalibrationBackend]):
    """Rabi oscillation → ``rabi_scale`` = fitted Ω / programmed Ω (scan rule in the module docstring).

    Model p(t) = b + a ⟨Ω²/Ω′² sin²(Ω′t/2)⟩, free Ω, a, b, averaged over quasi-static detuning noise
    of rms √2/T2* from the profile (run Ramsey first; Ω′² = Ω² + noise² biases Ω by σ²/2Ω² otherwise),
    driven at −detuning_offset of the profile, Ω′² = Ω² + (Δ_i + noise)² with each site's known
    residual Δ_i = its own offset (Ramsey's per-site record) − the device-wide one (a per-site light
    shift of 0.4 rad/µs biases Ω by 0.2 % at Ω = 2π·1 MHz otherwise). Contrast and floor stay free:
    they absorb the readout errors and any preparation error, which fixing them to ε, ε′ would not;
    the readout errors therefore do not enter the fit. Guesses: the Ω in [0.3, 3] × programmed with
    the least residual of a linear fit of sin²(Ωt/2), and Ω in force; the better fit is kept.

    Error budget per site: "statistical" (the fit's), ``detuning_offset.<site>`` (the error of the
    site's known offset, which moves Δ_i; ``detuning_offset`` when that error is the device-wide
    offset's, shared by every site) and ``dephasing_time`` (the error of T2* in force, which moves
    the noise rms), each propagated by the linearised refit
    (:func:`~qep_analog.calibration.fitting.propagate`); the device-wide mean adds the sites' own
    contributions in quadrature and the shared ones linearly
    (:func:`~qep_analog.calibration.routines.single_qubit.mean_budget`)."""

    name = "rabi"
    known_fields = ("detuning_offset", "dephasing_time", "rabi_scale")
    cell_bytes = 1300  # the driven pulse's quadrature over the noise (tracemalloc: 1050)
    parameters_type = RabiParameters
    adaptive = True  # the re-scan follows the first scan's fit
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "at least one full period inside the scan",
        "sampled well above Nyquist (aliases fit as well): 1.5·Ω·step < π for Ω fitted and expected",
        "relative error of the scale (statistical and propagated) < 2 %",
    )

    def data_shape(self, parameters: RabiParameters, n_sites: int) -> tuple[int, int]:
        """A row per duration (the rule's points at most :data:`MAX_AUTO_POINTS`; twice as many with
        the re-scan), a column per site."""
        points = MAX_AUTO_POINTS if parameters.points is None else parameters.points
        return points * (2 if parameters.rescan else 1), n_sites

    def acquire(
        self,
        parameters: RabiParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values (per-site offsets of the profile)."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    @staticmethod
    def _window(p: RabiParameters, profile: DeviceProfile, rabi: float) -> tuple[float, float, int]:
        """The rule's window and points for an expected Rabi frequency ``rabi`` (rad/µs), or the
        runcard's."""
        period = TWO_PI / rabi
        low = p.start
        longest = profile.capabilities.max_duration
        high = p.stop if p.stop is not None else min(low + p.periods * period, longest)
        points = p.points
        if points is None:
            points = rule_points(high - low, period / POINTS_PER_PERIOD, 21)
        return low, high, points

    def acquire_known(
        self,
        parameters: RabiParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        per = detuning_per_offset(profile)
        detuning = -profile.calibration.detuning_offset * per
        t2 = known.device_value(profile, "dephasing_time")
        rms = quasi_static_rms(t2.value)
        offsets = site_offsets(profile, known, backend.n_sites)
        context: dict[str, float] = {
            "rabi": p.rabi,
            "detuning": detuning,
            "detuning_rms": rms,
            # d(√2/T2*) = √2/T2*² dT2*
            "detuning_rms_error": rms * t2.uncertainty / t2.value if t2.value > 0 else 0.0,
            "rabi_scale": profile.calibration.rabi_scale,
            "adaptive_window": float(p.stop is None),
        }
        for i, o in enumerate(offsets):
            context[f"residual_{i}"] = detuning + o.value
            context[f"residual_{i}_error"] = o.uncertainty
            # 1: the error is (partly) the device-wide offset's, shared by every site
            context[f"residual_{i}_shared"] = float(any("@" not in rid for rid in o.record_ids))
        expected = p.rabi * profile.calibration.rabi_scale
        low, high, points = self._window(p, profile, expected)
        durations = scan_grid(low, high, points, self.name)
        counts = self._pulse(p, backend, durations, detuning)
        if progress is not None:
            progress(1, 2 if p.rescan else 1)
        if p.rescan:
            fitted = self._fitted_rabi(durations, counts, p, context)
            if fitted is not None and self._too_coarse(durations, fitted, p.periods):
                again = self._window(dataclasses.replace(p, start=0.0, stop=None), profile, fitted)
                second = scan_grid(*again, self.name)
                counts = np.vstack([counts, self._pulse(p, backend, second, detuning)])
                durations = np.concatenate([durations, second])
                context["rescan_start"], context["rescan_stop"] = again[0], again[1]
            if progress is not None:
                progress(2, 2)
        uses = (
            [i for o in offsets for i in o.record_ids]
            + list(t2.record_ids)
            + list(record_ids(profile, ("detuning_offset", "dephasing_time", "rabi_scale")))
        )
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

    @staticmethod
    def _pulse(
        p: RabiParameters, backend: RydbergCalibrationBackend, durations: NDArray, detuning: float
    ) -> NDArray:
        return np.asarray(
            backend.square_pulse(
                durations, np.full_like(durations, p.rabi), np.full_like(durations, detuning), p.shots
            )
        )

    @staticmethod
    def _fitted_rabi(
        x: NDArray, counts: NDArray, p: RabiParameters, context: dict[str, float]
    ) -> float | None:
        """The median fitted Ω over the sites that show an oscillation (None: none does)."""
        rms = context["detuning_rms"]
        seen = []
        for site in range(counts.shape[1]):
            model = _rabi_model(rms, _residual(context, site))
            fit = _fit_site(x, counts[:, site], p.shots, p.rabi, p.rabi * context["rabi_scale"], model)
            if fit.ok and fit.values[1] >= MIN_CONTRAST:
                seen.append(float(fit.values[0]))
        return float(np.median(seen)) if seen else None

    @staticmethod
    def _too_coarse(x: NDArray, rabi: float, periods: float) -> bool:
        """Whether the scan holds fewer than 0.8·``periods`` periods at ``rabi`` or fewer than 12
        points in one."""
        period = TWO_PI / rabi
        span = float(x.max() - x.min())
        return span < MIN_PERIOD_FRACTION * periods * period or _step(x) > period / MIN_POINTS_PER_PERIOD

    def fit(self, data: CalibrationData) -> FitResult:
        rabi = data.context["rabi"]
        rms = data.context.get("detuning_rms", 0.0)
        expected = rabi * data.context.get("rabi_scale", 1.0)
        x = data.sweep
        step = _step(x)
        fits = []
        for site in range(data.n_sites):
            model = _rabi_model(rms, _residual(data.context, data.site(site)))
            fits.append(_fit_site(x, data.counts[:, site], data.shots, rabi, expected, model))
        reasons: list[str] = []
        reduced = common_checks(fits, 1, reasons)
        estimates = []
        for site, fit in enumerate(fits):
            if not fit.ok:
                continue
            omega = float(fit.values[0])
            budget = self._budget(data, site, fit)
            error = math.sqrt(sum(size**2 for _, size in budget))
            if omega * float(x.max() - x.min()) < TWO_PI:
                reasons.append(f"site {site}: less than one period in the scan (Ω = {omega:.3g} rad/µs)")
            if max(omega, expected) * 1.5 * step >= math.pi:
                reasons.append(f"site {site}: undersampled, 1.5·Ω·step = {1.5 * omega * step:.3g} ≥ π")
            if not error < 0.02 * omega / rabi:
                reasons.append(f"site {site}: Ω scale error {error:.3g} above 2 %")
            own = not data.context.get(f"residual_{data.site(site)}_shared", 0.0)
            budget_per_site = tuple(
                (f"{key}.{data.site(site)}" if key == "detuning_offset" and own else key, size)
                for key, size in budget
            )
            estimates.append(Estimate("rabi_scale", omega / rabi, error, site, budget_per_site))
        return with_device_means(self.name, estimates, fits, reduced, reasons, self.criteria, _RABI)

    @staticmethod
    def _budget(data: CalibrationData, site: int, fit: CurveFit) -> tuple[tuple[str, float], ...]:
        """The scale's statistical error and the shifts of the linearised refit when the site's known
        offset and T2* each move by their error, in units of the scale."""
        ctx, rabi = data.context, data.context["rabi"]
        device_site = data.site(site)
        known = np.array([_residual(ctx, device_site), ctx.get("detuning_rms", 0.0)])
        errors = np.array(
            [ctx.get(f"residual_{device_site}_error", 0.0), ctx.get("detuning_rms_error", 0.0)]
        )
        parts = [("statistical", float(fit.errors[0]) / rabi)]
        if np.any(errors > 0):
            x, counts = data.sweep, data.counts[:, site]

            def model(params: NDArray, inputs: NDArray) -> NDArray:
                curve: Any = _rabi_model(float(inputs[1]), float(inputs[0]))
                return np.asarray(curve(x, *params))

            shifts = propagate(model, fit.values, binomial_sigma(counts, data.shots), known, errors)
            parts.append(("detuning_offset", abs(float(shifts[0, 0])) / rabi))
            parts.append(("dephasing_time", abs(float(shifts[1, 0])) / rabi))
        return tuple(parts)

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        rms = data.context.get("detuning_rms", 0.0)
        columns = []
        for site in range(len(curves[_RABI[0]])):
            model: Any = _rabi_model(rms, _residual(data.context, data.site(site)))
            columns.append(model(x, *(curves[name][site] for name in _RABI)))
        return np.column_stack(columns)


ROUTINE = RabiOscillation()
