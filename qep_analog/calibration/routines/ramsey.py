"""Ramsey fringes of every site → ``detuning_offset`` and ``dephasing_time`` (T2*).

Scan rule (each of ``detuning``, ``stop`` and ``points`` left out is chosen; given, it is used as
given), from what is in force: the sites' offsets o_i (qubit detuning; their own records, else the
device-wide plus per-site offsets), how well they are known u (3 × the largest error of their records;
with no record, ``spread``: a lab's plausible spread, left out ``windows.OFFSET_SPREAD``: ±2π·0.2 MHz
on Rydberg arrays, ±2π·10 kHz on ion chains) and T2* in force (the profile's ``dephasing_time``):

- the fringe frequency f = s + max(2.5·u, 3·2π/T2*), s = the largest |o_i − mean o| (every site's
  fringe then lies more than u above half its expected frequency, so the fringe's sign is
  unambiguous, and shows about three periods per T2*); the programmed detuning is f − mean o;
- ``stop`` = 1.2·T2* in force (at most the device's longest sequence): a uniform scan's information
  on the frequency peaks near 1.05·T2*, on T2* near 1.4·T2*; 1.2 keeps both within 5 % of their
  best (when T2* in force is right); shortened, when the offsets are known only to a lab's spread
  and the fringe is fast, to what the points (given, or the rule's 201) sample four times a period
  of the fastest expected fringe f + s + u;
- ``points``: 8 per period of the fastest expected fringe (f + s + u), at least 41, at most 201.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.known import Known, record_ids
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
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    TWO_PI,
    check_scan,
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
    AUTO_DELAY,
    AUTO_FREQUENCY,
    AUTO_POINTS,
    AUTO_SPREAD,
    MAX_AUTO_POINTS,
    offset_spread,
    rule_points,
)
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError

_RAMSEY = ("frequency", "dephasing_time", "contrast", "floor")
#: the scan's length in T2* in force, the fringe periods per T2*, the margin of the fringe frequency
#: over the offsets' uncertainty and the points per fringe period of the rule
T2_SPAN = 1.2
#: the fewest points per period of the fastest expected fringe the rule's ``stop`` leaves (the fit's
#: alias criterion, 1.5·f·step < π, holds with room at 4)
MIN_PER_PERIOD = 4
PERIODS_PER_T2 = 3.0
UNCERTAINTY_MARGIN = 2.5
POINTS_PER_PERIOD = 8
#: the longest T2* a fit may reach, in scans (twice the criterion's 2 scans: a longer one is judged
#: unmeasured either way, and a fit of data without a fringe no longer wanders along T2*)
LONGEST_T2 = 4.0


@dataclass(frozen=True, kw_only=True)
class RamseyParameters(RoutineParameters):
    """Free-evolution delays scanned from ``start`` to ``stop`` (µs) at a programmed ``detuning``
    (rad/µs) with ``points`` points; ``detuning``, ``stop`` and ``points`` left out: the scan rule of
    the module docstring, with ``spread`` (rad/µs) the offsets' plausible spread when they have no
    record."""

    detuning: float | None = field(default=None, metadata=AUTO_FREQUENCY)
    start: float = field(default=0.0, metadata=DELAY)
    stop: float | None = field(default=None, metadata=AUTO_DELAY)
    spread: float | None = field(default=None, metadata=AUTO_SPREAD)
    points: int | None = field(default=None, metadata=AUTO_POINTS)
    shots: int = 400

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stop is not None:
            check_scan(self.start, self.stop, "time")


class Ramsey(Routine[RamseyParameters, RydbergCalibrationBackend]):
    """Ramsey fringes → ``detuning_offset`` = fringe frequency − programmed detuning, and
    ``dephasing_time`` (T2*, Gaussian decay); scan rule in the module docstring.

    Model p(τ) = b + a (1 + exp(−(τ/T2*)²) cos(fτ))/2, free f, T2*, a, b. Guesses: f by the least
    residual linear fit over [0.2, 2] × the site's expected frequency (programmed detuning + its
    offset in force; below Nyquist), T2* = half the scan and T2* in force, keeping the best fit
    (T2* at most 4 scans).
    Contrast and floor are free (they absorb the readout errors) and the programmed detuning is
    exact, so no calibrated value enters the estimates: the offsets in force and T2* set the scan and
    the guesses only. Error: the fit's statistical error; the device-wide offset's is inflated when
    the sites disagree (per-site light shifts)."""

    name = "ramsey"
    cell_bytes = 256  # the counts' JSON text (tracemalloc: 180)
    parameters_type = RamseyParameters
    known_fields = ("detuning_offset", "site_detuning_offsets", "dephasing_time")  # scan and guesses
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every site",
        "at least two fringes inside the scan; max(f, 1.5·expected f)·step < π (no alias)",
        "|f − expected f| < expected f / 2, expected f = programmed detuning + the site's offset in "
        "force (the fringe's sign is unambiguous)",
        "T2* inside [2 steps, 2 scans] with relative error < 30 %",
    )

    def data_shape(self, parameters: RamseyParameters, n_sites: int) -> tuple[int, int]:
        """A row per delay (the rule's points at most :data:`MAX_AUTO_POINTS`), a column per site."""
        return (MAX_AUTO_POINTS if parameters.points is None else parameters.points), n_sites

    def acquire(
        self,
        parameters: RamseyParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values (per-site offsets of the profile)."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    def acquire_known(
        self,
        parameters: RamseyParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        offsets = site_offsets(profile, known, backend.n_sites)
        values = np.array([o.value for o in offsets])
        mean = float(values.mean())
        scatter = float(np.max(np.abs(values - mean)))
        recorded = all(o.record_ids for o in offsets)
        spread = offset_spread(profile.platform) if p.spread is None else p.spread
        uncertainty = 3 * max(o.uncertainty for o in offsets) if recorded else spread
        t2 = profile.noise.dephasing_time
        if not (math.isfinite(t2) and t2 > 0) and (p.stop is None or p.detuning is None):
            raise CalibrationError(
                f"routine {self.name!r}: the scan rule needs T2* in force, the profile's is {t2:g} µs; "
                "give detuning and stop"
            )
        if p.detuning is None:
            frequency = scatter + max(UNCERTAINTY_MARGIN * uncertainty, PERIODS_PER_T2 * TWO_PI / t2)
            detuning = frequency - mean
        else:
            detuning = p.detuning
        expected = detuning + values
        fastest = float(expected.max()) + uncertainty
        stop = p.stop
        if stop is None:
            # as long as the points (given, or the rule's most) sample the fastest fringe MIN_PER_PERIOD
            # times a period: a scan the fit would judge aliased is not run
            most = (MAX_AUTO_POINTS if p.points is None else p.points) - 1
            sampled = p.start + most * TWO_PI / fastest / MIN_PER_PERIOD
            stop = min(T2_SPAN * t2, profile.capabilities.max_duration, sampled)
        points = p.points
        if points is None:
            points = rule_points(stop - p.start, TWO_PI / fastest / POINTS_PER_PERIOD, 41)
        delays = scan_grid(p.start, stop, points, self.name)
        counts = backend.ramsey(delays, detuning, p.shots)
        uses = [i for o in offsets for i in o.record_ids] + list(
            record_ids(profile, ("detuning_offset", "site_detuning_offsets", "dephasing_time"))
        )
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="delay",
            sweep_unit="µs",
            sweep=delays,
            shots=p.shots,
            counts=counts,
            context={
                "detuning": detuning,
                "detuning_per_offset": detuning_per_offset(profile),
                "dephasing_time": t2,
                "adaptive_window": float(p.stop is None),
                **{f"expected_{i}": float(f) for i, f in enumerate(expected)},
            },
            uses=tuple(dict.fromkeys(uses)),
        )

    def fit(self, data: CalibrationData) -> FitResult:
        detuning = data.context["detuning"]
        t2_in_force = data.context.get("dephasing_time")
        x = data.sweep
        step = float(np.min(np.diff(x)))
        scan = float(x.max() - x.min())
        expected = [
            data.context.get(f"expected_{data.site(site)}", detuning) for site in range(data.n_sites)
        ]
        fits = [
            fit_fringe(x, data.counts[:, site], data.shots, expected[site], t2_in_force, LONGEST_T2)
            for site in range(data.n_sites)
        ]
        reasons: list[str] = []
        reduced = common_checks(fits, 2, reasons)
        estimates = []
        for site, fit in enumerate(fits):
            if not fit.ok:
                continue
            f, t2 = float(fit.values[0]), float(fit.values[1])
            f_err, t2_err = float(fit.errors[0]), float(fit.errors[1])
            offset = f - detuning
            if f * scan < 2 * TWO_PI or max(f, 1.5 * expected[site]) * step >= math.pi:
                reasons.append(f"site {site}: fringe frequency {f:.3g} rad/µs not resolved by the scan")
            if not (expected[site] > 0 and abs(f - expected[site]) < expected[site] / 2):
                reasons.append(
                    f"site {site}: fringe {f:.3g} rad/µs ambiguous against the expected "
                    f"{expected[site]:.3g} rad/µs"
                )
            if not (2 * step <= t2 <= 2 * scan and t2_err < 0.3 * t2):
                reasons.append(f"site {site}: T2* {t2:.3g} ± {t2_err:.2g} µs not measured by the scan")
            per = data.context.get("detuning_per_offset", 1.0)
            estimates.append(Estimate("detuning_offset", offset / per, f_err / per, site))
            estimates.append(Estimate("dephasing_time", t2, t2_err, site))
        return with_device_means(self.name, estimates, fits, reduced, reasons, self.criteria, _RAMSEY)

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        return model_curves(ramsey_model, x, curves, _RAMSEY)


ROUTINE = Ramsey()
