"""Pair spectroscopy: the interaction strength of two Rydberg atoms → ``interaction_scale``.

Experiment: two atoms at distance R, a square pulse of programmed Ω and duration t from |gg⟩, the
detuning δ scanned across the two-photon resonance |gg⟩ → |rr⟩ at 2δ + o₀ + o₁ = V (o_i the total
detuning offset of atom i), and the fraction of shots in which both atoms read '1'. With V ≫ Ω the
single excitations are off resonant by V/2 there, so the line is narrow (two-photon Rabi frequency
2Ω²/V) and its position measures V directly; light shifts of |gg⟩ and |rr⟩ are equal to second order
and the exact model accounts for the rest.

Scan rule (``start``/``stop`` left out): centred at the predicted resonance δ* = (V₀ − o₀ − o₁)/2,
V₀ = interaction_scale·C6/R⁶ of the profile in force, half width ``prior``·V₀/2 + ``linewidths``·w
with the line width w = Ω²/V₀ + √2/T2*. A window given in the runcard is scanned as given. When the
fitted resonance lies within a line width of the scan's edge or beyond it (or no line is seen), one
re-scan of the same width (at least 1 + ``linewidths`` line widths on each side) follows, centred at
the fitted resonance (or, when no line is seen, at δ* with the width doubled); the data hold both
scans and the fit uses both.

Model: the exact four-level evolution of H = Σ_i Ω/2 X_i − Σ_i Δ_i n_i + V n₁n₂
(:func:`~qep_analog.calibration.lineshapes.pair_populations`) with the known values of each atom:
Ω = programmed Ω × rabi_scale, Δ_i = δ + o_i with o_i the atom's own offset (Ramsey's per-site
record, else device-wide plus per-site offset of the profile), each atom's detuning averaged over its
own quasi-static Gaussian noise of rms √2/T2* (5² Gauss–Hermite nodes); P('11') = b + a Σ_s P_s
q₀(s) q₁(s) with each atom's readout errors ε_i, ε′_i (q = 1 − ε′ for r, ε for g). Free: V, the
contrast a and the floor b; fitted with binomial errors of the counts from the two of several V (the
line's peak, V₀ and V₀(1 ± prior)) nearest the data, the better fit then refitted with binomial
errors of the model (see :func:`_model_sigma_refit`). The record is the absolute scale the profile
should hold: interaction_scale = V·R⁶/C6 with the profile's (nominal) C6.

Several pairs at once (``pairs`` > 1, a :class:`~qep_analog.calibration.backend.ParallelPairBackend`):
atoms 2k and 2k + 1 form pair k, the pairs' centres on a square grid of pitch ``separation``
(:func:`~qep_analog.calibration.routines.parallel_pairs.pair_layout`), all driven by the same pulses
and each read as its own column of counts (both atoms '1', marginalised over the rest). The window
holds every pair's predicted line (centred between the extreme ones, widened by half their spread); a
re-scan covers every pair that asks for one. Each pair is fitted as above with its own atoms' known
values; the interaction scale is the mean of the pairs' scales by
:func:`~qep_analog.calibration.fitting.combine` (weights: each pair's independent error, its
statistical one and its own atoms' inputs in quadrature; the error inflated when the pairs disagree
beyond it), the common inputs' contributions (Rabi scale, T2*, a shared device-wide offset record)
added linearly over the pairs (:func:`~qep_analog.calibration.routines.parallel_pairs.combine`),
and the pairs must agree (χ²/dof of their scatter < 3).
Cross-talk between pairs is bounded, not fitted: the van der Waals coupling of an atom to the other
pairs moves a pair's line by at most a fraction
:func:`~qep_analog.calibration.routines.parallel_pairs.crosstalk_bound` of V (1.4·10⁻³ for 9 pairs at
6 µm on a 30 µm grid), which enters the budget as ``parallel_pairs`` = bound·scale/√3.

Error budget: the fit's statistical error, and the errors of the known inputs (the two offsets, the
Rabi scale, T2* and the readout errors) propagated by the linearised refit
(:func:`~qep_analog.calibration.fitting.propagate`), added in quadrature; the record's ``budget``
holds each contribution and ``uses`` the records of the known values. Correlated offsets: when an
atom's offset comes from the device-wide ``detuning_offset`` record (no per-site record in force,
:meth:`~qep_analog.calibration.known.Known.site_offset`), that record's error is one input
(``offset_shared``, budget entry ``detuning_offset``) that moves every such atom's offset together —
both atoms of a pair, and every pair of a parallel scan; only the rest of each atom's error (a
per-site record's) stays its own (``detuning_offset.0``, ``.1``). Adding the two atoms' shared errors
in quadrature would understate their effect on the line (which moves by their sum) by √2.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeWarning, curve_fit

from qep_analog.calibration.backend import PairPulseBackend, ParallelPairBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, fit_best, propagate
from qep_analog.calibration.known import Known, KnownValue, record_ids
from qep_analog.calibration.lineshapes import pair_populations, pair_read_both
from qep_analog.calibration.routine import (
    Estimate,
    FitResult,
    ItemReport,
    Routine,
    RoutineParameters,
    stored_parameters,
)
from qep_analog.calibration.routines.parallel_pairs import (
    combine,
    crosstalk_bound,
    pair_context,
    pair_key,
    pair_layout,
)
from qep_analog.calibration.routines.scans import (
    DISTANCE,
    DURATION,
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    POINTS,
    RABI,
    TWO_PI,
    model_curves,
    parameter_rule,
    scan_grid,
    verdict,
)
from qep_analog.calibration.routines.windows import (
    AUTO_DETUNING,
    FLAG,
    MARGIN,
    PRIOR,
    at_edge,
    check_window,
    rule_context,
    window,
)
from qep_analog.devices.noise_sources import quasi_static_rms
from qep_analog.devices.profile import DeviceProfile, realised_duration
from qep_analog.devices.rydberg import RydbergControls, check_controls
from qep_analog.errors import CalibrationError, ConstraintError

_NAMES = ("interaction", "contrast", "floor")
#: Gauss–Hermite nodes per atom of the model's noise average (against 21 nodes: 2·10⁻⁷ of the |rr⟩
#: population at the fake lab's T2* of 3.15 µs, 3·10⁻⁵ at 1.8 µs)
MODEL_NODES = 5
MAX_RELATIVE_ERROR = 0.02
MIN_LINE = 0.2
#: how many disjoint pairs one sequence drives (1: atoms 0 and 1 alone)
PAIRS = parameter_rule(kind="integer", low=1, high=50)
#: the pairs' scales agree: χ²/dof of their scatter around the mean below this
MAX_PAIR_SCATTER = 3.0
#: the known inputs of the model, in the order of :func:`_inputs` (context keys ``NAME`` and
#: ``NAME_error``); their errors are propagated into the interaction scale
INPUTS = (
    "offset_0",
    "offset_1",
    "rabi_scale",
    "detuning_rms",
    "false_positive_0",
    "false_positive_1",
    "false_negative_0",
    "false_negative_1",
    "offset_shared",
)
#: per pair, whether atom 0 and atom 1 take part of their offset from the shared device-wide record
#: (context keys; 1 or 0), which ``offset_shared`` moves jointly
SHARED_FLAGS = ("offset_0_shared", "offset_1_shared")
#: the context keys of each pair's known values (:func:`pair_context`)
PAIR_KEYS = (*INPUTS, *SHARED_FLAGS)
#: the budget entry of each input
_BUDGET = {
    "offset_0": "detuning_offset.0",
    "offset_1": "detuning_offset.1",
    "rabi_scale": "rabi_scale",
    "detuning_rms": "dephasing_time",
    "false_positive_0": "readout",
    "false_positive_1": "readout",
    "false_negative_0": "readout",
    "false_negative_1": "readout",
    "offset_shared": "detuning_offset",
}


@dataclass(frozen=True, kw_only=True)
class PairSpectroscopyParameters(RoutineParameters):
    """Two atoms ``distance`` µm apart, a pulse of ``duration`` (µs) at programmed ``rabi``
    (rad/µs), programmed detuning scanned from ``start`` to ``stop`` (rad/µs) — both left out: the
    window of the scan rule (module docstring) with the prior relative uncertainty ``prior`` of the
    interaction scale and ``linewidths`` line widths on each side; ``rescan``: one re-scan around a
    resonance found at the edge. The defaults suit a Fresnel-like array: V ≈ 2π·2.8 MHz at 6 µm."""

    distance: float = field(default=6.0, metadata=DISTANCE)
    rabi: float = field(default=TWO_PI * 0.6, metadata=RABI)
    duration: float = field(default=2.0, metadata=DURATION)
    start: float | None = field(default=None, metadata=AUTO_DETUNING)
    stop: float | None = field(default=None, metadata=AUTO_DETUNING)
    prior: float = field(default=0.15, metadata=PRIOR)
    linewidths: float = field(default=2.0, metadata=MARGIN)
    rescan: bool = field(default=True, metadata=FLAG)
    points: int = field(default=41, metadata=POINTS)
    shots: int = 400
    pairs: int = field(default=1, metadata=PAIRS)
    separation: float = field(default=30.0, metadata=DISTANCE)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_window(self.start, self.stop, "angular_frequency")
        if self.pairs > 1 and not self.separation > 2 * self.distance:
            raise ValueError(
                f"pair separation {self.separation:g} µm must exceed twice the pair distance "
                f"{self.distance:g} µm"
            )


def _inputs(context: dict[str, float]) -> tuple[NDArray, NDArray]:
    """The known inputs (:data:`INPUTS`) and their errors from a data context (data stored before
    the per-atom values existed: both atoms take the device-wide offset and readout errors)."""
    fallback = {
        "offset_0": context.get("detuning_offset", 0.0),
        "offset_1": context.get("detuning_offset", 0.0),
        "false_positive_0": context.get("readout_false_positive", 0.0),
        "false_positive_1": context.get("readout_false_positive", 0.0),
        "false_negative_0": context.get("readout_false_negative", 0.0),
        "false_negative_1": context.get("readout_false_negative", 0.0),
    }
    values = np.array([context.get(name, fallback.get(name, 0.0)) for name in INPUTS])
    errors = np.array([context.get(f"{name}_error", 0.0) for name in INPUTS])
    return values, errors


class _PairModel:
    """p(δ) = b + a Σ_s P_s(δ; V) q₀(s) q₁(s) for the exact, noise-averaged pair evolution with the
    known inputs (default: the context's). The line shape of the last V is kept: a fit's Jacobian
    (:meth:`jacobian`, exact in a and b, one difference in V) then costs one evaluation."""

    def __init__(self, context: dict[str, float], inputs: NDArray | None = None) -> None:
        o0, o1, rabi_scale, rms, e0, e1, f0, f1, shared = _inputs(context)[0] if inputs is None else inputs
        self.duration = context["duration"]
        self.rabi = context["rabi"] * rabi_scale
        flags = [context.get(flag, 0.0) for flag in SHARED_FLAGS]
        self.offsets = (float(o0 + flags[0] * shared), float(o1 + flags[1] * shared))
        self.rms = max(float(rms), 0.0)
        self.weights = pair_read_both(np.eye(4), (e0, e1), (f0, f1))  # P('11') of each pair state
        self._last: tuple[bytes, float, NDArray] | None = None

    def line(self, delta: NDArray, interaction: float) -> NDArray:
        """Σ_s P_s q₀(s) q₁(s) at each δ."""
        delta = np.asarray(delta, dtype=float)
        key = delta.tobytes()
        if self._last is not None and self._last[0] == key and self._last[1] == interaction:
            return self._last[2]
        populations = pair_populations(
            np.full(delta.size, self.duration),
            np.full((delta.size, 2), self.rabi),
            np.column_stack([delta + self.offsets[0], delta + self.offsets[1]]),
            interaction,
            self.rms,
            MODEL_NODES,
        )
        out = populations @ self.weights
        self._last = (key, interaction, out)
        return out

    def __call__(self, delta: NDArray, interaction: float, contrast: float, floor: float) -> NDArray:
        return floor + contrast * self.line(delta, interaction)

    def jacobian(self, delta: NDArray, interaction: float, contrast: float, floor: float) -> NDArray:
        base = self.line(delta, interaction)
        step = 1e-6 * max(abs(interaction), 1.0)
        moved = self.line(delta, interaction + step)
        self._last = (np.asarray(delta, dtype=float).tobytes(), interaction, base)
        return np.column_stack([contrast * (moved - base) / step, base, np.ones_like(base)])


def _pair_model(context: dict[str, float], inputs: NDArray | None = None) -> _PairModel:
    return _PairModel(context, inputs)


def _resonance(context: dict[str, float], interaction: float) -> float:
    """The programmed detuning of the |rr⟩ line: (V − o₀ − o₁)/2."""
    values, _ = _inputs(context)
    shared = values[-1] * sum(context.get(flag, 0.0) for flag in SHARED_FLAGS)
    return (interaction - values[0] - values[1] - shared) / 2


def _line_width(context: dict[str, float], interaction: float) -> float:
    rabi = context["rabi"] * _inputs(context)[0][2]
    return rabi**2 / interaction + context.get("detuning_rms", 0.0)


def _model_sigma_refit(
    model: _PairModel, x: NDArray, counts: NDArray, shots: int, first: CurveFit, bounds: tuple[list, list]
) -> CurveFit:
    """Refit from ``first`` with binomial errors of its model, σ² = p(1 − p)/n; χ² likewise (Pearson).

    Most of a pair scan lies in the wings, at P('11') of a few %: errors from the counts themselves
    are then biased (a point with few counts gets a small error and pulls the fit), errors from the
    model are not. Keeps ``first`` if the refit fails."""
    y = np.asarray(counts, dtype=float) / shots
    p = _clipped(model(x, *first.values), shots)
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
                jac=model.jacobian,
            )
    except (RuntimeError, ValueError):
        return first
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(errors))):
        return first
    p = _clipped(model(x, *values), shots)
    chi2 = float(np.sum((y - p) ** 2 / (p * (1 - p) / shots)))
    return CurveFit(values, errors, chi2, first.dof, True, covariance=covariance)


def _clipped(p: NDArray, shots: int) -> NDArray:
    floor = 0.5 / shots  # the model may touch 0 or 1
    return np.clip(p, floor, 1 - floor)


def _fit(
    x: NDArray, k: NDArray, shots: int, context: dict[str, float], prior: float, quick: bool = False
) -> CurveFit:
    """The model fitted from several guesses of V (the line's peak when it stands out of the shot
    noise, V₀, V₀(1 ± prior)): the two nearest the data are fitted, the better refitted with the
    model's binomial errors. ``quick`` (where to re-scan): the nearest guess only, no refit."""
    model = _pair_model(context)
    nominal = context["interaction_scale"] * context["c6"] / context["distance"] ** 6
    values, _ = _inputs(context)
    y = k / shots
    sigma = math.sqrt(max(float(np.median(y)), 1.0 / shots) / shots)
    peak = int(np.argmax(k))
    candidates = [nominal, nominal * (1 - prior), nominal * (1 + prior)]
    if y[peak] - float(np.median(y)) > 6 * sigma:
        candidates.insert(0, 2 * float(x[peak]) + values[0] + values[1])
    guesses: list[list[float]] = []
    for v in candidates:
        if v > 0 and all(abs(v - g[0]) > 0.02 * nominal for g in guesses):
            guesses.append([v, max(float(y.max() - y.min()), 0.05), float(y.min())])
    bounds = ([0.25 * nominal, 0.0, 0.0], [4 * nominal, 1.0, 1.0])
    fit = fit_best(model, x, k, shots, guesses, bounds, keep=1 if quick else 2, jac=model.jacobian)
    if quick or not fit.ok:
        return fit
    return _model_sigma_refit(model, x, k, shots, fit, bounds)


def _known_context(
    profile: DeviceProfile, known: Known, atoms: tuple[int, int] = (0, 1)
) -> tuple[dict[str, float], tuple[str, ...]]:
    """The known inputs of the pair's ``atoms`` with their errors, and the ids of their records."""
    offsets = [known.site_offset(profile, site) for site in atoms]
    device = known.device_value(profile, "detuning_offset")
    shared = [bool(device.record_ids) and device.record_ids[0] in o.record_ids for o in offsets]
    if any(shared):  # the device-wide record's error moves these atoms together: one joint input
        offsets = [
            KnownValue(o.value, math.sqrt(max(o.uncertainty**2 - device.uncertainty**2, 0.0)), o.record_ids)
            if share
            else o
            for o, share in zip(offsets, shared, strict=True)
        ]
    readout = [known.site_readout(profile, site) for site in atoms]
    rabi = known.device_value(profile, "rabi_scale")
    t2 = known.device_value(profile, "dephasing_time")
    rms = KnownValue(0.0)
    if math.isfinite(t2.value):
        rms = KnownValue(
            math.sqrt(2.0) / t2.value, math.sqrt(2.0) * t2.uncertainty / t2.value**2, t2.record_ids
        )
    items = {
        "offset_0": offsets[0],
        "offset_1": offsets[1],
        "rabi_scale": rabi,
        "detuning_rms": rms,
        "false_positive_0": readout[0][0],
        "false_positive_1": readout[1][0],
        "false_negative_0": readout[0][1],
        "false_negative_1": readout[1][1],
        "offset_shared": KnownValue(0.0, device.uncertainty if any(shared) else 0.0, device.record_ids),
    }
    context: dict[str, float] = {
        flag: float(share) for flag, share in zip(SHARED_FLAGS, shared, strict=True)
    }
    ids: list[str] = []
    for name, value in items.items():
        context[name] = value.value
        context[f"{name}_error"] = value.uncertainty
        ids.extend(value.record_ids)
    ids.extend(record_ids(profile, ("interaction_scale",)))
    return context, tuple(dict.fromkeys(ids))


class PairSpectroscopy(Routine[PairSpectroscopyParameters, PairPulseBackend]):
    """Two-photon |gg⟩ → |rr⟩ spectroscopy of a pair → device-wide ``interaction_scale`` (scan rule,
    model and error budget in the module docstring)."""

    name = "pair_spectroscopy"
    cell_bytes = 240_000  # the two atoms' 4-level evolution on 21² noise nodes (tracemalloc: 205 kB)
    platforms = ("rydberg",)
    parameters_type = PairSpectroscopyParameters
    site_columns = False  # a column per pair
    adaptive = True  # the re-scan follows the first scan's fit
    known_fields = (
        "detuning_offset",
        "site_detuning_offsets",
        "rabi_scale",
        "dephasing_time",
        "readout_false_positive",
        "readout_false_negative",
        "interaction_scale",
    )
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST}",
        f"the fitted |rr⟩ population peaks above {MIN_LINE} inside the scan (the line is seen)",
        "resonance (V − o₀ − o₁)/2 inside the scanned range, one line width (Ω²/V + √2/T2*) from "
        "each edge (after at most one re-scan around the fit)",
        f"relative error of interaction_scale (statistical and propagated) < {MAX_RELATIVE_ERROR:.0%}",
        f"several pairs at once: each pair meets the criteria above and their scales agree (χ²/dof of "
        f"their scatter < {MAX_PAIR_SCATTER:g})",
    )

    def data_shape(self, parameters: PairSpectroscopyParameters, n_sites: int) -> tuple[int, int]:
        """A row per scan point (twice as many with the re-scan), a column per pair (both atoms read
        '1')."""
        return parameters.points * (2 if parameters.rescan else 1), parameters.pairs

    def acquire(
        self,
        parameters: PairSpectroscopyParameters,
        backend: PairPulseBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values taken as exact."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    def acquire_known(
        self,
        parameters: PairSpectroscopyParameters,
        backend: PairPulseBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        if p.pairs > 1 and not (
            2 * p.pairs <= backend.n_sites and callable(getattr(backend, "pair_pulses", None))
        ):
            raise CalibrationError(
                f"routine {self.name!r}: {p.pairs} pairs at once need a backend that drives pairs in "
                f"parallel with at least {2 * p.pairs} sites ({backend.name!r} has {backend.n_sites})"
            )
        inputs, uses = _known_context(profile, known)
        for k in range(1, p.pairs):
            more, ids = _known_context(profile, known, (2 * k, 2 * k + 1))
            inputs.update({pair_key(k, name): value for name, value in more.items()})
            uses = tuple(dict.fromkeys((*uses, *ids)))
        t2 = profile.noise.dephasing_time
        context: dict[str, float] = {
            "distance": p.distance,
            "rabi": p.rabi,
            "c6": profile.rydberg.c6,
            "detuning_offset": profile.calibration.detuning_offset,
            "interaction_scale": profile.calibration.interaction_scale,
            "readout_false_positive": profile.noise.readout_false_positive,
            "readout_false_negative": profile.noise.readout_false_negative,
            **inputs,
            **rule_context(p.start, p.stop),
            "pairs": float(p.pairs),
        }
        if p.pairs > 1:
            context["separation"] = p.separation
            context["crosstalk_bound"] = crosstalk_bound(
                pair_layout(p.pairs, p.distance, p.separation), p.distance
            )
        context["detuning_rms"] = quasi_static_rms(t2)
        try:
            context["duration"] = realised_duration(profile, p.duration)
        except ConstraintError as exc:
            raise CalibrationError(f"routine {self.name!r}: {exc}") from None
        nominal = context["interaction_scale"] * context["c6"] / p.distance**6
        width = _line_width(context, nominal)
        half = p.prior * nominal / 2 + p.linewidths * width
        centres = [_resonance(pair_context(context, k, PAIR_KEYS), nominal) for k in range(p.pairs)]
        spread = (max(centres) - min(centres)) / 2  # one window holds every pair's predicted line
        low, high = window(p.start, p.stop, (max(centres) + min(centres)) / 2, half + spread)
        detunings = self._scan(p, backend, profile, low, high)
        counts = [self._pulse(p, backend, context["duration"], detunings)]
        if progress is not None:
            progress(1, 2 if p.rescan else 1)
        if p.rescan:
            windows = [
                self._rescan_window(
                    p, detunings, counts[0][:, k], pair_context(context, k, PAIR_KEYS), low, high
                )
                for k in range(p.pairs)
            ]
            found = [w for w in windows if w is not None]
            again = (min(w[0] for w in found), max(w[1] for w in found)) if found else None
            if again is not None:
                second = self._scan(p, backend, profile, *again)
                counts.append(self._pulse(p, backend, context["duration"], second))
                detunings = np.concatenate([detunings, second])
                context["rescan_start"], context["rescan_stop"] = again
            if progress is not None:
                progress(2, 2)
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="detuning",
            sweep_unit="rad/µs",
            sweep=detunings,
            shots=p.shots,
            counts=np.concatenate(counts),
            context=context,
            uses=uses,
        )

    def _scan(
        self,
        p: PairSpectroscopyParameters,
        backend: PairPulseBackend,
        profile: DeviceProfile,
        low: float,
        high: float,
    ) -> NDArray:
        """The scan's detunings, its controls checked against the device's limits."""
        positions = pair_layout(p.pairs, p.distance, p.separation)
        try:
            for detuning in (low, high):
                check_controls(RydbergControls(positions, p.rabi, detuning), profile)
        except ConstraintError as exc:
            raise CalibrationError(f"routine {self.name!r}: {exc}") from None
        return scan_grid(low, high, p.points, self.name)

    def _pulse(
        self, p: PairSpectroscopyParameters, backend: PairPulseBackend, duration: float, detunings: NDArray
    ) -> NDArray:
        if p.pairs > 1:
            parallel: ParallelPairBackend = backend  # type: ignore[assignment]  # checked in acquire
            return np.asarray(
                parallel.pair_pulses(
                    pair_layout(p.pairs, p.distance, p.separation),
                    np.full_like(detunings, duration),
                    np.full_like(detunings, p.rabi),
                    detunings,
                    p.shots,
                )
            )
        return np.asarray(
            backend.pair_pulse(
                p.distance,
                np.full_like(detunings, duration),
                np.full_like(detunings, p.rabi),
                detunings,
                p.shots,
            )
        )

    def _rescan_window(
        self,
        p: PairSpectroscopyParameters,
        detunings: NDArray,
        counts: NDArray,
        context: dict[str, float],
        low: float,
        high: float,
    ) -> tuple[float, float] | None:
        """The window of the re-scan, or None when the first scan saw its line inside it."""
        fit = _fit(detunings, counts, p.shots, context, p.prior, quick=True)
        half = (high - low) / 2
        seen = False
        if fit.ok:
            v = float(fit.values[0])
            line = float(np.max(_pair_model(context)(np.linspace(low, high, 201), v, 1.0, 0.0)))
            seen = line > MIN_LINE and fit.values[1] >= MIN_CONTRAST
        if not seen:  # no line seen (or no fit): wider, at the prediction
            nominal = context["interaction_scale"] * context["c6"] / context["distance"] ** 6
            centre = _resonance(context, nominal)
            return centre - 2 * half, centre + 2 * half
        resonance, width = _resonance(context, v), _line_width(context, v)
        if not at_edge(resonance, width, low, high):
            return None
        half = max(half, (1 + p.linewidths) * width)  # a window narrower than the line: widened
        return resonance - half, resonance + half

    def fit(self, data: CalibrationData) -> FitResult:
        ctx = data.context
        pairs = int(ctx.get("pairs", 1.0))
        if data.n_sites != pairs:
            raise CalibrationError(
                f"{self.name}: {data.n_sites} columns of counts, expected {pairs} (the pairs)"
            )
        prior = float(data.parameters.get("prior", 0.15))
        fits = [self._fit_pair(data, k, prior) for k in range(pairs)]
        curves = {name: [float(f.values[i]) for f, *_ in fits] for i, name in enumerate(_NAMES)}
        dof = sum(f.dof for f, *_ in fits)
        reduced = sum(f.chi2 for f, *_ in fits) / dof if dof > 0 else float("nan")
        reasons = [
            reason if pairs == 1 else f"pair {k}: {reason}"
            for k, (_, _, _, pair_reasons) in enumerate(fits)
            for reason in pair_reasons
        ]
        if not all(f.ok for f, *_ in fits):
            return FitResult(self.name, (), reduced, "bad", tuple(reasons), self.criteria, curves)
        curves["resonance"] = [
            _resonance(pair_context(ctx, k, PAIR_KEYS), f.values[0]) for k, (f, *_) in enumerate(fits)
        ]
        curves["interaction_error"] = [float(f.errors[0]) for f, *_ in fits]
        if pairs == 1:
            _, scale, budget, _ = fits[0]
            parts = budget
        else:
            scales = [scale for _, scale, _, _ in fits]
            budgets = [dict(budget) for _, _, budget, _ in fits]
            scale, combined, scatter = combine(scales, budgets, ctx.get("crosstalk_bound", 0.0))
            parts = tuple(combined.items())
            curves["pair_scale"] = scales
            curves["pair_scatter_reduced_chi2"] = [scatter]
            if not scatter < MAX_PAIR_SCATTER:
                reasons.append(
                    f"the pairs' scales disagree: χ²/dof {scatter:.3g} of their scatter not < "
                    f"{MAX_PAIR_SCATTER:g}"
                )
        scale_error = math.sqrt(sum(error**2 for _, error in parts))
        if not scale_error < MAX_RELATIVE_ERROR * scale:
            reasons.append(f"interaction_scale {scale:.4g} ± {scale_error:.2g} not measured to 2 %")
        estimates = (Estimate("interaction_scale", scale, scale_error, None, parts),)
        return FitResult(
            self.name, estimates, reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )

    def _fit_pair(
        self, data: CalibrationData, k: int, prior: float
    ) -> tuple[CurveFit, float, tuple[tuple[str, float], ...], list[str]]:
        """Pair ``k``'s fit, its interaction scale with the error budget, and its failed criteria."""
        ctx = pair_context(data.context, k, PAIR_KEYS)
        x, counts = data.sweep, data.counts[:, k]
        scale_to_v = ctx["c6"] / ctx["distance"] ** 6  # V per unit of interaction_scale
        fit = _fit(x, counts, data.shots, ctx, prior)
        reasons: list[str] = []
        if not fit.ok:
            return fit, math.nan, (), [f"fit failed ({fit.message})"]
        v, contrast, _ = (float(value) for value in fit.values)
        if not fit.reduced_chi2 < MAX_REDUCED_CHI2:
            reasons.append(f"reduced chi2 {fit.reduced_chi2:.3g} not < {MAX_REDUCED_CHI2}")
        if contrast < MIN_CONTRAST:
            reasons.append(f"contrast {contrast:.3g} < {MIN_CONTRAST}")
        model = _pair_model(ctx)
        fine = np.linspace(x.min(), x.max(), 401)
        line = float(np.max(model(fine, v, 1.0, 0.0)))
        if not line > MIN_LINE:
            reasons.append(f"the fitted |rr⟩ population peaks at {line:.3g} in the scan, not > {MIN_LINE}")
        resonance = _resonance(ctx, v)
        width = _line_width(ctx, v)
        if at_edge(resonance, width, float(x.min()), float(x.max())):
            reasons.append(
                f"resonance {resonance:.3g} rad/µs not inside the scan [{x.min():.3g}, {x.max():.3g}] "
                f"by a line width {width:.3g}"
            )
        budget = self._budget(x, data.shots, ctx, fit, scale_to_v)
        return fit, v / scale_to_v, budget, reasons

    def _budget(
        self, x: NDArray, shots: int, ctx: dict[str, float], fit: CurveFit, scale_to_v: float
    ) -> tuple[tuple[str, float], ...]:
        """The statistical error of the scale and the propagated error of each known input (the
        readout errors together), in units of the scale."""
        values, errors = _inputs(ctx)
        model = _pair_model(ctx)
        sigma = np.sqrt(
            _clipped(model(x, *fit.values), shots) * (1 - _clipped(model(x, *fit.values), shots)) / shots
        )
        shifts = propagate(
            lambda params, inputs: _pair_model(ctx, inputs)(x, *params), fit.values, sigma, values, errors
        )
        parts: dict[str, float] = {"statistical": float(fit.errors[0]) ** 2}
        for name, shift in zip(INPUTS, shifts[:, 0], strict=True):
            if errors[INPUTS.index(name)] > 0:
                key = _BUDGET[name]
                parts[key] = parts.get(key, 0.0) + float(shift) ** 2
        return tuple((key, math.sqrt(value) / scale_to_v) for key, value in parts.items())

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        columns = [
            model_curves(
                _pair_model(pair_context(data.context, k, PAIR_KEYS)),
                x,
                {n: [curves[n][k]] for n in _NAMES},
                _NAMES,
            )
            for k in range(len(curves[_NAMES[0]]))
        ]
        return np.column_stack(columns)


ROUTINE = PairSpectroscopy()
