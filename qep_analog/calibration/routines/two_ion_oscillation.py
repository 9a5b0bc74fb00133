"""Two-ion Mølmer–Sørensen oscillations of a trapped-ion chain → ``interaction_scale``.

The fit (per pair b + a sin²(J t)) has binomial errors and free readout contrast and floor, so it
does not depend on the readout calibration. It predicts the couplings from the profile's
``rabi_scale`` and trap: run it after the carrier routines (readout, Ramsey, Rabi) and sideband
spectroscopy.

Scan rule: each pair's durations run over ``periods`` periods of its predicted coupling (the Rabi
scale, trap and interaction scale in force). Error budget: the statistical error of the pairs'
weighted mean, and the errors of the calibrated Rabi scale, axial and first radial trap frequencies
(their records' uncertainties) propagated through the predicted couplings J⁰_ij:
d ln s = −Σ_θ ∂ln J⁰_ij/∂θ dθ, the derivatives by central differences of the coupling kernel at the
programmed beat note; all pairs move together, so the propagated part does not average down over
pairs. The two trap frequencies come from one sideband fit with strongly correlated errors, whose
covariance the records do not keep: their two moves add linearly into one entry ``trap`` (the bound
for any correlation; in quadrature, as independent, the pulls of the coupling scale reached 1.3).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import MSPairBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import combine, fit_probabilities
from qep_analog.calibration.known import Known
from qep_analog.calibration.routine import (
    Estimate,
    FitResult,
    ItemReport,
    Routine,
    RoutineParameters,
    stored_parameters,
)
from qep_analog.calibration.routines.scans import (
    FREQUENCY,
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    POINTS,
    RABI,
    TWO_PI,
    check_fits,
    frequency_guess,
    parameter_rule,
    scan_grid,
    verdict,
)
from qep_analog.devices import ions
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError, ConstraintError


@dataclass(frozen=True, kw_only=True)
class PairParameters(RoutineParameters):
    """Mølmer–Sørensen drive of two ions at a time at programmed Rabi frequency ``rabi`` (rad/µs) and
    beat note μ = ω_x + ``mode_detuning`` (ω_x the profile's first radial frequency, the centre-of-mass
    mode); pairs at distance 1 … ``max_distance``; each pair's durations scanned from 0 over
    ``periods`` periods π/J of its predicted coupling, ``points`` points per pair."""

    rabi: float = field(default=TWO_PI * 0.7, metadata=RABI)
    mode_detuning: float = field(default=TWO_PI * 0.1, metadata=FREQUENCY)
    periods: float = field(default=2.5, metadata=parameter_rule(low=0.0, open_low=True))
    max_distance: int = 2
    points: int = field(default=41, metadata=POINTS)
    shots: int = 400


_PAIR = ("coupling", "contrast", "floor")


MAX_COUPLING_ERROR = 0.03


MAX_PAIR_SCATTER = 8.0
#: the calibrated values the predicted couplings depend on, whose errors are propagated
UPSTREAM = ("rabi_scale", "axial_frequency", "radial_frequency")
#: the trap frequencies come from one sideband fit whose errors are strongly correlated (ρ ≈ 0.9 on
#: the fake lab's spectra) and the records do not keep their covariance: their moves of the coupling
#: scale add linearly, the bound for any correlation
TRAP = ("axial_frequency", "radial_frequency")


def _shifted(profile: DeviceProfile, name: str, delta: float) -> DeviceProfile:
    """``profile`` with the calibrated value ``name`` moved by ``delta``."""
    if name == "rabi_scale":
        calibration = dataclasses.replace(
            profile.calibration, rabi_scale=profile.calibration.rabi_scale + delta
        )
        return dataclasses.replace(profile, calibration=calibration)
    caps = profile.ions
    if name == "axial_frequency":
        caps = dataclasses.replace(caps, axial_frequency=caps.axial_frequency + delta)
    else:
        radial = caps.radial_frequencies
        caps = dataclasses.replace(caps, radial_frequencies=(radial[0] + delta, radial[1]))
    return dataclasses.replace(profile, capabilities=caps)


def _log_derivatives(profile: DeviceProfile, n: int, beat_note: float, name: str) -> NDArray:
    """∂ ln K_ij / ∂θ of the coupling kernel at the programmed beat note (central differences)."""
    value = Known().device_value(profile, name).value
    step = 1e-5 * abs(value)
    up = ions.coupling_kernel(_shifted(profile, name, step), n, beat_note)
    down = ions.coupling_kernel(_shifted(profile, name, -step), n, beat_note)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((np.log(np.abs(up)) - np.log(np.abs(down))) / (2 * step))


def _pair_model(t: NDArray, coupling: float, contrast: float, floor: float) -> NDArray:
    return floor + contrast * np.sin(coupling * t) ** 2


def _pairs(data: CalibrationData) -> list[tuple[int, int, float]]:
    """(i, j, predicted J at s_J = 1) of every pair, in the order of the sweep."""
    c = data.context
    count = int(c["pairs"])
    if count < 1 or data.sweep.size % count:
        raise CalibrationError(f"{data.routine}: {data.sweep.size} sweep points for {count} pairs")
    return [(int(c[f"pair{k}_i"]), int(c[f"pair{k}_j"]), c[f"pair{k}_predicted"]) for k in range(count)]


class TwoIonOscillation(Routine[PairParameters, MSPairBackend]):
    """Two-ion Mølmer–Sørensen oscillations → ``interaction_scale`` s_J (device-wide).

    Each pair (i, j) at distance ≤ ``max_distance`` is driven alone; P(both read 1) = b + a sin²(J t),
    free J, a, b (ideal spin-only H = J X_i X_j from |↓↓⟩). The predicted coupling at s_J = 1 is
    J⁰_ij = Ω² K_ij(μ)/s_J with K of the effective profile (its rabi_scale and trap; run Rabi and
    sideband spectroscopy first: a 0.5 % error of ω_x moves J by ≈ 15 % at μ − ω_x = 2π·0.1 MHz).
    Per pair s = J / J⁰_ij, the absolute scale the profile should hold; the device-wide value is their
    inverse-variance mean (:func:`combine`).

    Data layout: the pairs' duration scans are concatenated along the sweep (``points`` each, in the
    order of the context's ``pair{k}_i``, ``pair{k}_j``); one column, counts of both ions read '1'.
    ``curves`` hold per pair: ions ``pair_i``, ``pair_j``, fitted ``coupling`` J (rad/µs) and its
    ``coupling_error``, ``predicted`` J⁰, ``scale`` and ``scale_error``, ``contrast``, ``floor``.
    Guess: the J in [0.3, 3] × s_J J⁰ (below Nyquist) with the least residual of a linear fit."""

    name = "two_ion_oscillation"
    platforms = ("ion",)
    parameters_type = PairParameters
    cell_bytes = 512  # the counts' and sweep's JSON text (tracemalloc: 410)
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} for every pair",
        "at least one full period π/J inside every pair's scan",
        "sampled well above Nyquist: 3·J·step < π for J fitted and expected",
        f"relative error of every J < {MAX_COUPLING_ERROR:g}",
        f"the pairs agree: χ²/dof of their scales around the mean < {MAX_PAIR_SCATTER:g}",
    )

    def data_shape(self, parameters: PairParameters, n_sites: int) -> tuple[int, int]:
        """The scans of every pair at distance up to ``max_distance`` one after the other, one column."""
        distances = range(1, min(parameters.max_distance, n_sites - 1) + 1)
        return parameters.points * sum(n_sites - d for d in distances), 1

    def acquire(
        self,
        parameters: PairParameters,
        backend: MSPairBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values taken as exact."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    def acquire_known(
        self,
        parameters: PairParameters,
        backend: MSPairBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        n = backend.n_sites
        if p.max_distance >= n or p.mode_detuning <= 0 or p.periods <= 0:
            raise CalibrationError(
                f"{self.name}: max_distance {p.max_distance} (< {n} ions), mode_detuning "
                f"{p.mode_detuning:.4g} rad/µs and periods {p.periods:g} (> 0) out of range"
            )
        beat_note = profile.ions.radial_frequencies[0] + p.mode_detuning
        try:
            ions.check_controls(ions.IonControls(np.full(n, p.rabi), beat_note), profile)
        except ConstraintError as exc:
            raise CalibrationError(f"{self.name}: {exc}") from None
        scale = profile.calibration.interaction_scale
        kernel = ions.coupling_kernel(profile, n, beat_note) / scale
        pairs = [(i, i + d) for d in range(1, p.max_distance + 1) for i in range(n - d)]
        context = {
            "rabi": p.rabi,
            "beat_note": beat_note,
            "interaction_scale": scale,
            "pairs": float(len(pairs)),
        }
        uses: list[str] = []
        derivatives = {}
        for name in UPSTREAM:
            value = known.device_value(profile, name)
            context[f"{name}_error"] = value.uncertainty
            uses.extend(value.record_ids)
            derivatives[name] = _log_derivatives(profile, n, beat_note, name)
        sweeps, counts = [], []
        for k, (i, j) in enumerate(pairs):
            predicted = p.rabi**2 * float(kernel[i, j])
            if not predicted > 0:
                raise CalibrationError(
                    f"{self.name}: predicted J[{i},{j}] = {predicted:.3g} rad/µs not > 0"
                )
            durations = scan_grid(0.0, p.periods * math.pi / (scale * predicted), p.points, self.name)
            if durations[-1] > profile.ions.max_duration:
                raise CalibrationError(
                    f"{self.name}: pair ({i}, {j}) scan of {durations[-1]:.6g} µs exceeds the limit "
                    f"{profile.ions.max_duration:.6g} µs"
                )
            sweeps.append(durations)
            counts.append(backend.ms_pair((i, j), durations, p.rabi, beat_note, p.shots))
            if progress is not None:
                progress(k + 1, len(pairs))
            context.update(
                {f"pair{k}_i": float(i), f"pair{k}_j": float(j), f"pair{k}_predicted": predicted}
            )
            for name in UPSTREAM:
                context[f"pair{k}_dlnJ_{name}"] = float(derivatives[name][i, j])
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="duration (pairs concatenated)",
            sweep_unit="µs",
            sweep=np.concatenate(sweeps),
            shots=p.shots,
            counts=np.concatenate(counts),
            context=context,
            uses=tuple(dict.fromkeys(uses)),
        )

    @staticmethod
    def _budget(
        data: CalibrationData, scales: NDArray, errors: NDArray, statistical: float
    ) -> tuple[tuple[str, float], ...]:
        """The statistical error of the weighted mean of the pairs' scales and, per upstream value,
        how far that mean moves when the value moves by its error (all pairs together); the two trap
        frequencies' moves add linearly into one entry ``trap`` (:data:`TRAP`)."""
        budget = [("statistical", statistical)]
        weights = 1 / errors**2
        trap = 0.0
        for name in UPSTREAM:
            sigma = data.context.get(f"{name}_error", 0.0)
            if not sigma > 0:
                continue
            slopes = np.array([data.context[f"pair{k}_dlnJ_{name}"] for k in range(scales.size)])
            shift = abs(float(np.sum(weights * scales * slopes) / np.sum(weights)) * sigma)
            if name in TRAP:
                trap += shift
            else:
                budget.append((name, shift))
        if trap > 0:
            budget.append(("trap", trap))
        return tuple(budget)

    def fit(self, data: CalibrationData) -> FitResult:
        pairs = _pairs(data)
        points = data.sweep.size // len(pairs)
        scale0 = data.context.get("interaction_scale", 1.0)
        fits, labels = [], []
        for k, (i, j, predicted) in enumerate(pairs):
            x = data.sweep[k * points : (k + 1) * points]
            counts = data.counts[k * points : (k + 1) * points, 0]
            expected = scale0 * predicted
            step = float(np.min(np.diff(x)))
            omega = frequency_guess(
                x, counts / data.shots, 0.6 * expected, min(6 * expected, math.pi / step), "rabi"
            )
            guess = [
                omega / 2,
                max(float(counts.max() - counts.min()) / data.shots, 0.05),
                counts.min() / data.shots,
            ]
            bounds = ([0.0, 0.0, 0.0], [20 * expected, 1.0, 1.0])
            fits.append(fit_probabilities(_pair_model, x, counts, data.shots, guess, bounds))
            labels.append(f"pair ({i}, {j})")
        reasons: list[str] = []
        reduced = check_fits(fits, labels, 1, reasons)
        curves: dict[str, list[float]] = {
            "pair_i": [float(i) for i, _, _ in pairs],
            "pair_j": [float(j) for _, j, _ in pairs],
            "predicted": [predicted for _, _, predicted in pairs],
        }
        curves.update({name: [float(f.values[n]) for f in fits] for n, name in enumerate(_PAIR)})
        curves["coupling_error"] = [float(f.errors[0]) for f in fits]
        scales, errors = [], []
        for k, (fit, label, (_, _, predicted)) in enumerate(zip(fits, labels, pairs, strict=True)):
            if not fit.ok:
                continue
            x = data.sweep[k * points : (k + 1) * points]
            coupling, error = float(fit.values[0]), float(fit.errors[0])
            step = float(np.min(np.diff(x)))
            if coupling * float(x.max() - x.min()) < math.pi:
                reasons.append(f"{label}: less than one period in the scan (J = {coupling:.3g} rad/µs)")
            if 3 * max(coupling, scale0 * predicted) * step >= math.pi:
                reasons.append(f"{label}: undersampled, 3·J·step = {3 * coupling * step:.3g} ≥ π")
            if not error < MAX_COUPLING_ERROR * coupling:
                reasons.append(f"{label}: J error {error:.3g} rad/µs above {MAX_COUPLING_ERROR:g}")
            scales.append(coupling / predicted)
            errors.append(error / predicted)
        curves["scale"] = [
            float(f.values[0] / predicted) for f, (_, _, predicted) in zip(fits, pairs, strict=True)
        ]
        curves["scale_error"] = [
            float(f.errors[0] / predicted) for f, (_, _, predicted) in zip(fits, pairs, strict=True)
        ]
        estimates: list[Estimate] = []
        if len(scales) == len(pairs):
            value, error = combine(np.array(scales), np.array(errors))
            if len(scales) > 1 and math.isfinite(value):
                scatter = float(
                    np.sum(((np.array(scales) - value) / np.array(errors)) ** 2) / (len(scales) - 1)
                )
                if not scatter < MAX_PAIR_SCATTER:
                    reasons.append(
                        f"pair scales {', '.join(f'{s:.4g}' for s in scales)} disagree "
                        f"(χ²/dof {scatter:.3g} ≥ {MAX_PAIR_SCATTER:g}): the profile's trap or drive is off"
                    )
            budget = self._budget(data, np.array(scales), np.array(errors), error)
            total = math.sqrt(sum(part**2 for _, part in budget))
            estimates.append(Estimate("interaction_scale", value, total, None, budget))
        else:
            reasons.append(f"interaction_scale: no value, {len(pairs) - len(scales)} pair fits failed")
        return FitResult(
            self.name, tuple(estimates), reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )


ROUTINE = TwoIonOscillation()
