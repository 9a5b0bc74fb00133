"""Detuning spectroscopy: a resonance scan of every site → ``detuning_offset``.

Scan rule (``start``/``stop`` left out): centred between the lines the calibration in force predicts
(δ = −o_i, each site's offset in force: its own record, else the device-wide plus its per-site
offset), half width = ``spread`` (a lab's plausible day-to-day offset spread; left out: ±2π·0.2 MHz
on Rydberg arrays, ±2π·10 kHz of qubit detuning on ion chains, ``windows.OFFSET_SPREAD``) + half
the spread of the predicted lines + ``linewidths`` line widths w, with w the full width at half
maximum of the pulse's line at the Rabi frequency in force (programmed Ω × rabi_scale; Fourier- and
power-broadened, from the model: 1.6·Ω for a π pulse); ``points`` left out: 8 points per line width
(at least 21, at most 201). A window given in the runcard is scanned as given. Re-scan
(``rescan``): when a site's line (fitted contrast above the criterion) lies within one fitted Rabi
frequency of the scan's edge or beyond it, one more scan of the same width centred on the median of
the lines seen; when no site shows a line, one twice as wide centred on the predicted lines. The
data hold both scans and the fit uses both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, fit_best
from qep_analog.calibration.known import Known, record_ids
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
    DURATION,
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    RABI,
    TWO_PI,
    model_curves,
    scan_grid,
)
from qep_analog.calibration.routines.single_qubit import (
    common_checks,
    detuning_per_offset,
    site_offsets,
    with_device_means,
)
from qep_analog.calibration.routines.windows import (
    AUTO_DETUNING,
    AUTO_POINTS,
    AUTO_SPREAD,
    FLAG,
    MARGIN,
    MAX_AUTO_POINTS,
    at_edge,
    check_window,
    offset_spread,
    rule_context,
    rule_points,
    window,
)
from qep_analog.devices.profile import DeviceProfile

_SPECTROSCOPY = ("offset", "rabi", "contrast", "floor")


@dataclass(frozen=True, kw_only=True)
class SpectroscopyParameters(RoutineParameters):
    """A square pulse of ``duration`` (µs) at ``rabi`` (rad/µs, programmed), detuning scanned from
    ``start`` to ``stop`` (rad/µs; both left out: the scan rule of the module docstring with the
    offset ``spread`` and ``linewidths`` line widths on each side; ``points`` left out: the rule's);
    ``rescan``: one scan of the same width around the fitted lines when the first scan finds one at
    its edge."""

    rabi: float = field(default=TWO_PI * 0.5, metadata=RABI)
    duration: float = field(default=1.0, metadata=DURATION)
    start: float | None = field(default=None, metadata=AUTO_DETUNING)
    stop: float | None = field(default=None, metadata=AUTO_DETUNING)
    spread: float | None = field(default=None, metadata=AUTO_SPREAD)
    linewidths: float = field(default=1.5, metadata=MARGIN)
    rescan: bool = field(default=True, metadata=FLAG)
    points: int | None = field(default=None, metadata=AUTO_POINTS)
    shots: int = 400

    def __post_init__(self) -> None:
        super().__post_init__()
        check_window(self.start, self.stop, "angular_frequency")


#: points per line width of the rule's scan
POINTS_PER_WIDTH = 8


def line_width(duration: float, rabi: float) -> float:
    """The full width at half maximum (rad/µs) of the line a square pulse of ``duration`` (µs) at
    ``rabi`` (rad/µs) drives, from the model (no noise)."""
    reach = 4 * max(rabi, TWO_PI / duration)
    delta = np.linspace(0.0, reach, 4001)
    line = driven_population(np.full_like(delta, duration), np.full_like(delta, rabi), delta)
    above = np.nonzero(line >= float(line.max()) / 2)[0]
    return 2 * float(delta[above[-1]])


def _spectroscopy_model(duration: float) -> object:
    def model(delta: NDArray, offset: float, rabi: float, contrast: float, floor: float) -> NDArray:
        return floor + contrast * driven_population(duration, rabi, delta + offset)

    return model


class DetuningSpectroscopy(Routine[SpectroscopyParameters, RydbergCalibrationBackend]):
    """Resonance scan → ``detuning_offset``: the line is centred at δ_programmed = −offset.

    Model p(δ) = b + a Ω²/Ω′² sin²(Ω′t/2), Ω′² = Ω² + (δ + offset)², free offset, Ω, a, b, fitted
    from several guesses (offset = −δ at the site's highest count, at the count-weighted centre of
    its line and the site's offset in force; Ω = programmed Ω × the profile's rabi_scale), keeping
    the best (scan rule and re-scan in the module docstring). Ω, contrast and floor are free, so
    neither the Rabi scale in force nor the readout errors enter the offset (they set the window and
    the guesses only); the line's centre is not moved by the symmetric quasi-static detuning noise.
    Error: the fit's statistical error."""

    name = "detuning_spectroscopy"
    known_fields = ("detuning_offset", "site_detuning_offsets", "rabi_scale")  # window and guesses
    parameters_type = SpectroscopyParameters
    adaptive = True  # the re-scan follows the first scan's fit
    cell_bytes = 1300  # the driven pulse's quadrature over the noise (tracemalloc: 1050)
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "resonance inside the scanned range (after at most one re-scan), one fitted Rabi frequency "
        "from each edge",
        "offset error < 5 % of the fitted Rabi frequency (line resolved)",
    )

    def data_shape(self, parameters: SpectroscopyParameters, n_sites: int) -> tuple[int, int]:
        """A row per detuning (the rule's points at most :data:`MAX_AUTO_POINTS`; twice as many with
        the re-scan), a column per site."""
        points = MAX_AUTO_POINTS if parameters.points is None else parameters.points
        return points * (2 if parameters.rescan else 1), n_sites

    def acquire(
        self,
        parameters: SpectroscopyParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values (per-site offsets of the profile)."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    def acquire_known(
        self,
        parameters: SpectroscopyParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        offsets = site_offsets(profile, known, backend.n_sites)
        lines = [-o.value for o in offsets]  # the lines the calibration in force predicts
        rabi0 = p.rabi * profile.calibration.rabi_scale
        width = line_width(p.duration, rabi0)
        spread = offset_spread(profile.platform) if p.spread is None else p.spread
        half = spread + (max(lines) - min(lines)) / 2 + p.linewidths * width
        low, high = window(p.start, p.stop, (max(lines) + min(lines)) / 2, half)
        points = rule_points(high - low, width / POINTS_PER_WIDTH, 21) if p.points is None else p.points
        detunings = scan_grid(low, high, points, self.name)
        counts = self._pulse(p, backend, detunings)
        if progress is not None:
            progress(1, 2 if p.rescan else 1)
        context: dict[str, float] = {
            "rabi": p.rabi,
            "duration": p.duration,
            "rabi_scale": profile.calibration.rabi_scale,
            "detuning_per_offset": detuning_per_offset(profile),
            "line_width": width,
            **rule_context(p.start, p.stop),
            **{f"prior_offset_{i}": -line for i, line in enumerate(lines)},
        }
        if p.rescan:
            again = self._rescan_window(p, rabi0, detunings, counts, lines, low, high)
            if again is not None:
                second = scan_grid(*again, points, self.name)
                counts = np.vstack([counts, self._pulse(p, backend, second)])
                detunings = np.concatenate([detunings, second])
                context["rescan_start"], context["rescan_stop"] = again
            if progress is not None:
                progress(2, 2)
        uses = [i for o in offsets for i in o.record_ids] + list(
            record_ids(profile, ("detuning_offset", "site_detuning_offsets", "rabi_scale"))
        )
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="detuning",
            sweep_unit="rad/µs",
            sweep=detunings,
            shots=p.shots,
            counts=counts,
            context=context,
            uses=tuple(dict.fromkeys(uses)),
        )

    def _rescan_window(
        self,
        p: SpectroscopyParameters,
        rabi0: float,
        detunings: NDArray,
        counts: NDArray,
        lines: list[float],
        low: float,
        high: float,
    ) -> tuple[float, float] | None:
        """The re-scan's window, or None: the median of the lines seen (contrast above the
        criterion) when one lies at the edge; no line seen: twice as wide, centred on the predicted
        ``lines``."""
        seen = []
        for site in range(counts.shape[1]):
            prior = [-lines[site]] if site < len(lines) else []
            fit = self._fit_site(detunings, counts[:, site], p.shots, p.duration, rabi0, prior)
            if fit.ok and fit.values[2] >= MIN_CONTRAST:
                seen.append((-float(fit.values[0]), float(fit.values[1])))
        half = (high - low) / 2
        if not seen:
            centre = (max(lines) + min(lines)) / 2
            return centre - 2 * half, centre + 2 * half
        if not any(at_edge(c, w, low, high) for c, w in seen):
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
    def _fit_site(
        x: NDArray, k: NDArray, shots: int, duration: float, rabi0: float, prior: list[float]
    ) -> CurveFit:
        """One site's line fitted from the guesses of the class docstring (``prior``: the site's
        offset in force, when known)."""
        span = float(x.max() - x.min())
        contrast, floor = max(float(k.max() - k.min()) / shots, 0.05), float(k.min()) / shots
        weights = np.clip(k - np.median(k), 0.0, None)
        centroid = (
            float(np.sum(weights * x) / np.sum(weights)) if np.sum(weights) > 0 else float(np.mean(x))
        )
        centres = [-float(x[np.argmax(k)]), -centroid, *prior]
        guesses = [[offset, rabi0, contrast, floor] for offset in centres]
        bounds = ([-x.max() - span, 0.05 * rabi0, 0.0, 0.0], [-x.min() + span, 5 * rabi0, 1.0, 1.0])
        model: Any = _spectroscopy_model(duration)
        return fit_best(model, x, k, shots, guesses, bounds)

    def fit(self, data: CalibrationData) -> FitResult:
        rabi0 = data.context["rabi"] * data.context.get("rabi_scale", 1.0)
        x = data.sweep
        duration = data.context["duration"]
        fits = [
            self._fit_site(x, data.counts[:, site], data.shots, duration, rabi0, self._prior(data, site))
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

    @staticmethod
    def _prior(data: CalibrationData, site: int) -> list[float]:
        """The site's offset in force (qubit detuning, rad/µs) as a guess, when the data hold it."""
        key = f"prior_offset_{data.site(site)}"
        return [data.context[key]] if key in data.context else []

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        return model_curves(_spectroscopy_model(data.context["duration"]), x, curves, _SPECTROSCOPY)


ROUTINE = DetuningSpectroscopy()
