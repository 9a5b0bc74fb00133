"""The local-field map: detuning-map gains (Rydberg) or AC-Stark gains (ions), and their cross-talk.

Experiment: Ramsey fringes of every site, once without local field (the reference) and once with the
local field aimed at each site k in turn at programmed amplitude A (rad/µs): a detuning-map weight 1
on k (Rydberg, A ≤ 0 for a negative map) or a Stark shift A on ion k. The local field moves the qubit
frequency of site i by C_ik g_k A, C_kk = 1 and C_ik = c for nearest neighbours in array order, so
the fringe frequencies are

    f_i(ref) = F_i,    f_i(k) = F_i + C_ik g_k A.

Each fringe is fitted like :class:`~qep_analog.calibration.routines.ramsey.Ramsey` (frequency, T2*,
contrast, floor; the π/2 pulses are taken as ideal); the gains g_k, the leakage c and the reference
frequencies F_i then come from one weighted least-squares fit of all fringe frequencies (shifts
beyond the nearest neighbours are modelled as zero; the χ² of this fit tests that). The recorded
gains are absolute: the profile uses them as δ_i = δ + g_i w_i Δ (Rydberg) or h_i ∋ ½ Σ_k C_ik g_k Δ_k
(ions), whatever gains it held before. Ion profiles also get ``stark_crosstalk`` = c; a Rydberg
profile cannot represent leakage, so there c is only reported (curves) and a significant leakage
(> 3 σ and > 5 %) makes the result bad. When no two of the fitted sites (a runcard's targets) are
neighbours, c is not measured and no ``stark_crosstalk`` is proposed.

Scan rule (``stop`` left out): the delays run from ``start`` over ``fringes`` periods of the slowest
fringe the calibration in force predicts, f_i(ref) = δ + o_i and f_i(i) = f_i(ref) + g_i(1 ± ``prior``)A
with each site's known offset o_i (Ramsey's per-site record, else the profile's), its gain g_i of the
profile (1 when it has none) and the prior relative uncertainty of the gains; the window is capped
where the fastest predicted fringe (or 1.5 δ) would alias, and a window that cannot hold the fringes
with the scan's points is refused before anything is measured. A ``stop`` given in the runcard is
scanned as given. The model takes no calibrated value as known beyond the window: the reference
frequencies F_i are measured in the same step (more precisely than by the upstream records), and
each fringe's contrast and floor absorb the readout errors; ``uses`` names the records of the
offsets and gains the window was computed from. The error budget is the statistical one of the
frequency fit, recorded as the one entry ``statistical`` of each gain's and the cross-talk's budget:
the per-site offsets, the device-wide offset and the readout errors in force enter no part of the
model (the reference frequencies F_i are fitted, each fringe has its own contrast and floor), so
their propagated contributions are identically zero, not neglected; a wrong offset in force only
moves the window, which the fit criteria judge.

Several sites at once (``groups`` = g ≥ 2): configuration r + 1 aims the field at every site k with
k mod g = r (never two neighbours together), so g + 1 configurations instead of n + 1; the frequency
model is the same with the shifts of every addressed site added, f_i(r) = F_i + Σ_(k addressed) C_ik
g_k A, and every site of the backend is fitted (a runcard's targets are refused). Needs a
:class:`~qep_analog.calibration.backend.GroupedLocalRamseyBackend`.

Data layout (one sweep): configuration j = 0 (reference) then j = k + 1 (field on site k) for every
site of the backend (with ``groups``: j = r + 1 for group r), each a full delay scan:
``sweep[j·points + m]`` = delay m, ``counts[j·points + m, column]``. The context holds
``configurations``, ``groups``, ``n_sites``, ``points``, the programmed ``detuning`` and
``amplitude``, ``represents_crosstalk`` (1 for ion profiles) and ``expected_gain_k`` (the profile's
current gains, 1 when it has none, used only to tell whether a fringe may have passed through zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from qep_analog.calibration.backend import GroupedLocalRamseyBackend, LocalRamseyBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit
from qep_analog.calibration.known import Known, record_ids
from qep_analog.calibration.routine import (
    Estimate,
    FitResult,
    ItemReport,
    Routine,
    RoutineParameters,
    stored_parameters,
)
from qep_analog.calibration.routines.fringes import fit_fringe
from qep_analog.calibration.routines.scans import (
    DELAY,
    DETUNING,
    FREQUENCY,
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    POINTS,
    TWO_PI,
    check_scan,
    parameter_rule,
    scan_grid,
    verdict,
)
from qep_analog.calibration.routines.windows import AUTO_DELAY, PRIOR
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError
from qep_analog.units import with_unit

#: leakage a Rydberg profile may ignore (it has no field for it)
MAX_IGNORED_LEAKAGE = 0.05
MAX_GAIN_ERROR = 0.02
MAX_CROSSTALK_ERROR = 0.01
#: sites addressed together: 0, one per configuration; g ≥ 2, every site k with k mod g = r in
#: configuration r (never two neighbours at once)
GROUPS = parameter_rule(kind="integer", low=0, high=50)


@dataclass(frozen=True, kw_only=True)
class LocalFieldParameters(RoutineParameters):
    """Ramsey delays scanned (µs) from ``start`` to ``stop`` at a programmed ``detuning`` (rad/µs);
    the local field at ``amplitude`` (rad/µs; 0: −min(0.4·detuning, the profile's per-site limit),
    positive for a positive detuning map). ``stop`` left out: ``fringes`` periods of the slowest
    predicted fringe, gains known to ±``prior`` (the scan rule of the module docstring)."""

    detuning: float = field(default=TWO_PI * 1.0, metadata=FREQUENCY)
    amplitude: float = field(default=0.0, metadata=DETUNING)
    start: float = field(default=0.0, metadata=DELAY)
    stop: float | None = field(default=None, metadata=AUTO_DELAY)
    fringes: float = field(default=2.5, metadata=parameter_rule(low=2.0, high=50.0))
    prior: float = field(default=0.15, metadata=PRIOR)
    points: int = field(default=81, metadata=POINTS)
    shots: int = 400
    groups: int = field(default=0, metadata=GROUPS)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stop is not None:
            check_scan(self.start, self.stop, "time")
        if self.groups == 1:
            raise ValueError("groups = 1 would address neighbours together: 0 (one site at a time) or >= 2")


def local_amplitude(parameters: LocalFieldParameters, profile: DeviceProfile) -> float:
    """The programmed local amplitude A: the parameter's, checked against the profile's limits, or
    (parameter 0) 0.4·detuning in size, capped at the limit, with the sign the device takes."""
    where = f"routine 'local_field_map' on device {profile.label!r}"
    local = profile.platform_spec.local_field(profile)
    if local is None:
        raise CalibrationError(f"{where}: the device has no detuning map")
    limit, sign, what = local.max_per_site, local.sign, local.what
    amplitude = parameters.amplitude
    if amplitude == 0.0:
        size = min(0.4 * abs(parameters.detuning), limit)
        return size if sign == "positive" else -size
    if abs(amplitude) > limit:
        raise CalibrationError(
            f"{where}: {what} {with_unit(amplitude, 'angular_frequency')} exceeds the limit "
            f"{with_unit(limit, 'angular_frequency')}"
        )
    if (sign == "negative" and amplitude > 0) or (sign == "positive" and amplitude < 0):
        raise CalibrationError(
            f"{where}: {what} {with_unit(amplitude, 'angular_frequency')} has the wrong sign "
            f"(the map takes {sign} values only)"
        )
    return amplitude


def delay_window(
    parameters: LocalFieldParameters, profile: DeviceProfile, known: Known, n_sites: int
) -> tuple[float, float, tuple[str, ...]]:
    """The scanned delays' (start, stop) and the ids of the records the rule used (for a given
    ``stop``, the gains that judge the zero crossings): see the module docstring."""
    p = parameters
    if p.stop is not None:  # the gains in force still judge the zero crossings
        return p.start, p.stop, record_ids(profile, ("local_gains",))
    amplitude = local_amplitude(p, profile)
    per = profile.platform_spec.detuning_per_offset
    offsets = [known.site_offset(profile, site) for site in range(n_sites)]
    gains = profile.calibration.local_gains
    nominal = gains if len(gains) == n_sites else (1.0,) * n_sites
    references = np.array([p.detuning + per * o.value for o in offsets])
    predicted = [abs(references)]
    for factor in (1 - p.prior, 1 + p.prior):
        predicted.append(abs(references + factor * np.asarray(nominal) * amplitude))
    slowest, fastest = float(np.min(predicted)), float(np.max(predicted))
    where = f"routine 'local_field_map' on device {profile.label!r}"
    if not slowest > 0:
        raise CalibrationError(f"{where}: a predicted fringe frequency is 0 (choose another detuning)")
    longest = 0.9 * math.pi / max(fastest, 1.5 * p.detuning) * (p.points - 1)  # below aliasing
    span = p.fringes * TWO_PI / slowest
    if span > longest:
        needed = math.ceil(span / (0.9 * math.pi / max(fastest, 1.5 * p.detuning))) + 1
        raise CalibrationError(
            f"{where}: {p.fringes:g} fringes at {slowest:.4g} rad/µs need {span:.4g} µs, which "
            f"{p.points} points cannot sample below aliasing (need points >= {needed})"
        )
    ids = tuple(i for o in offsets for i in o.record_ids) + record_ids(profile, ("local_gains",))
    return p.start, p.start + span, tuple(dict.fromkeys(ids))


@dataclass(frozen=True)
class _ShiftFit:
    """The least-squares fit of the fringe frequencies: F_c, g_c per column and the leakage c."""

    references: NDArray
    gains: NDArray
    gain_errors: NDArray
    leakage: float
    leakage_error: float
    reduced_chi2: float


def _fit_shifts(
    frequencies: NDArray,
    errors: NDArray,
    sites: list[int],
    amplitude: float,
    leakage_free: bool,
    addressed: list[tuple[int, ...]] | None = None,
) -> _ShiftFit:
    """Fit f[j, c] = F_c + A·Σ_(k addressed in row j) C(s_c, k)·g_k (row 0: the reference).

    ``addressed``: the sites of each row (default: row j ≥ 1 addresses column j − 1's site alone);
    every addressed site must be a column. ``frequencies`` and ``errors`` have shape (rows, columns);
    ``leakage_free``: c is a free parameter (else 0: no two columns are neighbours, so no frequency
    depends on it)."""
    m = len(sites)
    rows = [(), *((s,) for s in sites)] if addressed is None else addressed
    column = {s: c for c, s in enumerate(sites)}
    direct = np.zeros((len(rows), m, m))  # [row, column, addressed column]
    neighbour = np.zeros((len(rows), m, m))
    for j, group in enumerate(rows):
        for k in group:
            for c, s in enumerate(sites):
                if s == k:
                    direct[j, c, column[k]] = 1.0
                elif abs(s - k) == 1:
                    neighbour[j, c, column[k]] = 1.0

    def model(p: NDArray) -> NDArray:
        refs, gains = p[:m], p[m : 2 * m]
        leak = p[2 * m] if leakage_free else 0.0
        return refs[None, :] + amplitude * ((direct + leak * neighbour) @ gains)

    refs0 = frequencies[0]
    own_row = [next(j for j, group in enumerate(rows) if s in group) for s in sites]
    gains0 = (frequencies[own_row, np.arange(m)] - refs0) / amplitude
    start = [*refs0, *gains0] + ([0.0] if leakage_free else [])
    solution = least_squares(lambda p: ((frequencies - model(p)) / errors).ravel(), start, method="lm")
    jacobian = solution.jac
    covariance = np.linalg.pinv(jacobian.T @ jacobian)
    stds = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    dof = frequencies.size - len(start)
    chi2 = float(np.sum(solution.fun**2))
    p = solution.x
    return _ShiftFit(
        references=p[:m],
        gains=p[m : 2 * m],
        gain_errors=stds[m : 2 * m],
        leakage=float(p[2 * m]) if leakage_free else float("nan"),
        leakage_error=float(stds[2 * m]) if leakage_free else float("nan"),
        reduced_chi2=chi2 / dof if dof > 0 else float("nan"),
    )


def _groups(groups: int, n_sites: int) -> list[tuple[int, ...]]:
    """The sites of each configuration after the reference: one site each (``groups`` 0), or every
    site k with k mod ``groups`` = r in configuration r."""
    if groups == 0:
        return [(k,) for k in range(n_sites)]
    return [tuple(range(r, n_sites, groups)) for r in range(min(groups, n_sites))]


class LocalFieldMap(Routine[LocalFieldParameters, LocalRamseyBackend]):
    """Ramsey with the local field on each site in turn → absolute ``local_gains`` per site, and for
    ion chains the device-wide ``stark_crosstalk`` (see the module docstring for model and layout)."""

    name = "local_field_map"
    known_fields = ("local_gains",)  # the zero-crossing check (a given window)
    platforms = ("rydberg", "ion")
    parameters_type = LocalFieldParameters
    cell_bytes = 256  # the counts' JSON text (tracemalloc: 180)
    criteria = (
        f"reduced chi2 of the fringes < {MAX_REDUCED_CHI2} and of the frequency model < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} on every fringe",
        "every fringe resolved: ≥ 2 fringes in the scan and max(f, 1.5·programmed detuning)·step < π",
        "A < 0: the addressed fringe cannot have passed through zero — the gain that would imply,"
        " (f_ref + f_addressed)/|A|, exceeds twice the profile's current gain",
        f"gain relative error < {MAX_GAIN_ERROR:.0%} on every site",
        f"ions: stark_crosstalk error < {MAX_CROSSTALK_ERROR}; Rydberg (no profile field for leakage): "
        f"leakage not both > 3 σ and > {MAX_IGNORED_LEAKAGE:.0%}",
    )

    def data_shape(self, parameters: LocalFieldParameters, n_sites: int) -> tuple[int, int]:
        """The scan once without the local field and once per configuration (each site, or each
        group of sites), a column per site."""
        return parameters.points * (len(_groups(parameters.groups, n_sites)) + 1), n_sites

    def acquire(
        self,
        parameters: LocalFieldParameters,
        backend: LocalRamseyBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    def acquire_known(
        self,
        parameters: LocalFieldParameters,
        backend: LocalRamseyBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        start, stop, uses = delay_window(p, profile, known, backend.n_sites)
        delays = scan_grid(start, stop, p.points, self.name)
        if not p.detuning > 0:
            raise CalibrationError(f"routine {self.name!r}: detuning {p.detuning:g} rad/µs is not positive")
        amplitude = local_amplitude(p, profile)
        gains = profile.calibration.local_gains
        expected = gains if len(gains) == backend.n_sites else (1.0,) * backend.n_sites
        configurations = _groups(p.groups, backend.n_sites)
        grouped: GroupedLocalRamseyBackend | None = None
        if p.groups:
            if not callable(getattr(backend, "local_ramsey_sites", None)):
                raise CalibrationError(
                    f"routine {self.name!r}: groups = {p.groups} needs a backend that aims the local "
                    f"field at several sites at once ({backend.name!r} cannot)"
                )
            grouped = backend  # type: ignore[assignment]  # checked above
        blocks = [backend.local_ramsey(delays, p.detuning, -1, amplitude, p.shots)]  # the reference
        for j, sites in enumerate(configurations):
            if grouped is None:
                blocks.append(backend.local_ramsey(delays, p.detuning, sites[0], amplitude, p.shots))
            else:
                blocks.append(grouped.local_ramsey_sites(delays, p.detuning, sites, amplitude, p.shots))
            if progress is not None:
                progress(j + 2, len(configurations) + 1)
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="delay",
            sweep_unit="µs",
            sweep=np.tile(delays, len(blocks)),
            shots=p.shots,
            counts=np.vstack(blocks),
            context={
                "configurations": float(len(blocks)),
                "groups": float(p.groups),
                "n_sites": float(backend.n_sites),
                "points": float(p.points),
                "detuning": p.detuning,
                "amplitude": amplitude,
                "represents_crosstalk": float(profile.platform_spec.represents_crosstalk),
                "adaptive_window": float(p.stop is None),
                **{f"expected_gain_{k}": float(g) for k, g in enumerate(expected)},
            },
            uses=uses,
        )

    def _fringe(self, data: CalibrationData, j: int, column: int) -> CurveFit:
        points = int(data.context["points"])
        x = data.sweep[j * points : (j + 1) * points]
        k = data.counts[j * points : (j + 1) * points, column]
        return fit_fringe(x, k, data.shots, data.context["detuning"])

    def fit(self, data: CalibrationData) -> FitResult:
        ctx = data.context
        configurations, points = int(ctx["configurations"]), int(ctx["points"])
        if data.sweep.size != configurations * points:
            raise CalibrationError(
                f"{self.name}: {data.sweep.size} sweep points, expected {configurations} × {points}"
            )
        detuning, amplitude = ctx["detuning"], ctx["amplitude"]
        columns = list(range(data.n_sites))
        sites = [data.site(c) for c in columns]
        groups = int(ctx.get("groups", 0.0))
        addressed: list[tuple[int, ...]] | None = None
        if groups:
            every = _groups(groups, int(ctx["n_sites"]))
            if sorted(sites) != list(range(int(ctx["n_sites"]))):
                raise CalibrationError(
                    f"{self.name}: with groups = {groups} every site is fitted (no runcard targets), "
                    f"got sites {sites}"
                )
            rows = list(range(configurations))
            addressed = [(), *every]
        else:
            if max(sites) + 1 >= configurations:
                raise CalibrationError(f"{self.name}: site {max(sites)} was never addressed")
            rows = [0, *(s + 1 for s in sites)]  # the configurations of the reference and of each column
        own = [s % groups + 1 if groups else c + 1 for c, s in enumerate(sites)]  # each column's row
        fits = [[self._fringe(data, j, c) for c in columns] for j in rows]
        x = data.sweep[:points]
        step, scan = float(np.min(np.diff(x))), float(x.max() - x.min())
        reasons: list[str] = []
        labels = [
            "reference",
            *(
                f"field on sites {addressed[j]}" if addressed else f"field on site {sites[j - 1]}"
                for j in range(1, len(rows))
            ),
        ]
        for label, row in zip(labels, fits, strict=True):
            for s, fit in zip(sites, row, strict=True):
                where = f"site {s}, {label}"
                if not fit.ok:
                    reasons.append(f"{where}: fit failed ({fit.message})")
                    continue
                f, contrast = float(fit.values[0]), float(fit.values[2])
                if not fit.errors[0] > 0:
                    reasons.append(f"{where}: fringe frequency {f:.3g} rad/µs at a bound (no error)")
                if contrast < MIN_CONTRAST:
                    reasons.append(f"{where}: contrast {contrast:.3g} < {MIN_CONTRAST}")
                if f * scan < 2 * TWO_PI or max(f, 1.5 * detuning) * step >= math.pi:
                    reasons.append(f"{where}: fringe frequency {f:.3g} rad/µs not resolved by the scan")
        flat = [fit for row in fits for fit in row]
        dof = sum(f.dof for f in flat)
        reduced = sum(f.chi2 for f in flat) / dof if dof > 0 else float("nan")
        if not reduced < MAX_REDUCED_CHI2:
            reasons.append(f"reduced chi2 {reduced:.3g} not < {MAX_REDUCED_CHI2}")
        if not all(f.ok and f.errors[0] > 0 for f in flat):
            return FitResult(self.name, (), reduced, "bad", tuple(reasons), self.criteria, {})
        frequencies = np.array([[f.values[0] for f in row] for row in fits])
        errors = np.array([[f.errors[0] for f in row] for row in fits])
        neighbours = any(abs(a - b) == 1 for a in sites for b in sites)
        shifts = _fit_shifts(frequencies, errors, sites, amplitude, neighbours, addressed)
        if not shifts.reduced_chi2 < MAX_REDUCED_CHI2 and math.isfinite(shifts.reduced_chi2):
            reasons.append(
                f"frequency model: reduced chi2 {shifts.reduced_chi2:.3g} not < {MAX_REDUCED_CHI2}"
            )
        estimates = []
        for c, s in enumerate(sites):
            gain, error = float(shifts.gains[c]), float(shifts.gain_errors[c])
            crossed = (shifts.references[c] + frequencies[own[c], c]) / abs(amplitude)
            expected = ctx.get(f"expected_gain_{s}", 1.0)
            if amplitude < 0 and not crossed > 2 * expected:
                reasons.append(
                    f"site {s}: ambiguous, the fringe may have passed through zero (gain {crossed:.3g})"
                )
            if not (gain > 0 and error < MAX_GAIN_ERROR * gain):
                reasons.append(
                    f"site {s}: gain {gain:.3g} ± {error:.2g} not measured to {MAX_GAIN_ERROR:.0%}"
                )
            estimates.append(Estimate("local_gains", gain, error, c, (("statistical", error),)))
        leak, leak_error = shifts.leakage, shifts.leakage_error
        if neighbours and ctx.get("represents_crosstalk", 0.0) == 1.0:
            if not leak_error < MAX_CROSSTALK_ERROR:
                reasons.append(f"stark_crosstalk error {leak_error:.3g} not < {MAX_CROSSTALK_ERROR}")
            estimates.append(
                Estimate("stark_crosstalk", leak, leak_error, None, (("statistical", leak_error),))
            )
        elif neighbours and leak > 3 * leak_error and leak > MAX_IGNORED_LEAKAGE:
            reasons.append(
                f"neighbour leakage {leak:.3g} ± {leak_error:.2g} is significant and > "
                f"{MAX_IGNORED_LEAKAGE:.0%}, which the profile cannot represent"
            )
        curves: dict[str, list[float]] = {
            "reference_frequency": frequencies[0].tolist(),
            "addressed_frequency": [float(frequencies[own[c], c]) for c in columns],
            "gain": shifts.gains.tolist(),
            "gain_error": shifts.gain_errors.tolist(),
            "dephasing_time": [float(f.values[1]) for f in fits[0]],
            "neighbour_leakage": [leak],
            "neighbour_leakage_error": [leak_error],
            "frequency_model_reduced_chi2": [shifts.reduced_chi2],
        }
        return FitResult(
            self.name, tuple(estimates), reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )


ROUTINE = LocalFieldMap()
