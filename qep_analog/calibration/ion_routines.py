"""Trapped-ion calibration routines: sideband spectroscopy (trap frequencies) and two-ion
Mølmer–Sørensen oscillations (interaction scale).

Both fit physics models of the chain (:mod:`qep_analog.devices.ion_chain`) with binomial errors and
free readout contrast and floor, so they do not depend on the readout calibration. Run them after
the carrier routines (readout, Ramsey, Rabi): sideband spectroscopy measures detunings from the
calibrated carrier and needs the profile's ``detuning_offset``; the two-ion routine predicts the
couplings from the profile's ``rabi_scale`` and trap, so run it after sideband spectroscopy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import MSPairBackend, SidebandBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, combine, fit_probabilities
from qep_analog.calibration.lineshapes import driven_population
from qep_analog.calibration.routine import Estimate, FitResult, Routine, stored_parameters
from qep_analog.calibration.rydberg_routines import (
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    TWO_PI,
    detuning_per_offset,
    frequency_guess,
    scan_grid,
    verdict,
)
from qep_analog.devices import ion_chain, ions
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError, ConfigError, ConstraintError

_FREQ = {"dimension": "angular_frequency"}
_TIME = {"dimension": "time"}


def _check_fits(fits: list[CurveFit], labels: list[str], contrast_index: int, reasons: list[str]) -> float:
    """Failed fits and low contrasts into ``reasons``; returns the reduced χ² over all fits."""
    for label, fit in zip(labels, fits, strict=True):
        if not fit.ok:
            reasons.append(f"{label}: fit failed ({fit.message})")
        elif fit.values[contrast_index] < MIN_CONTRAST:
            reasons.append(f"{label}: contrast {fit.values[contrast_index]:.3g} < {MIN_CONTRAST}")
    dof = sum(f.dof for f in fits)
    reduced = sum(f.chi2 for f in fits) / dof if dof > 0 else float("nan")
    if not reduced < MAX_REDUCED_CHI2:
        reasons.append(f"reduced chi2 {reduced:.3g} not < {MAX_REDUCED_CHI2}")
    return reduced


# -------------------------------------------------------------------------------- sidebands


@dataclass(frozen=True, kw_only=True)
class SidebandParameters:
    """A blue-sideband probe of ``duration`` (µs) at programmed carrier Rabi frequency ``rabi``
    (rad/µs), its detuning from the calibrated carrier scanned over [ω_x + start, ω_x + stop] with ω_x
    the profile's first radial frequency (the centre-of-mass mode)."""

    rabi: float = field(default=TWO_PI * 0.1, metadata=_FREQ)
    duration: float = field(default=150.0, metadata=_TIME)
    start: float = field(default=-TWO_PI * 0.08, metadata=_FREQ)
    stop: float = field(default=TWO_PI * 0.025, metadata=_FREQ)
    points: int = 131
    shots: int = 200


_SIDEBAND = ("radial_frequency", "axial_frequency", "rabi", "contrast", "floor")
#: relative standard errors above which the trap frequencies count as not measured
MAX_RADIAL_ERROR = 5e-4
MAX_AXIAL_ERROR = 1e-2


@dataclass(frozen=True)
class _Chain:
    """What the sideband model needs to know about the chain (from the data's context)."""

    n: int
    rows: tuple[int, ...]
    mass: float
    wavelength: float
    angle: float
    duration: float

    @cached_property
    def positions(self) -> NDArray:
        return ion_chain.dimensionless_positions(self.n)

    def modes(self, radial: float, axial: float) -> tuple[NDArray, NDArray, NDArray]:
        """Transverse mode frequencies, vectors and Lamb–Dicke parameters of the trap (ω_x, ω_z)."""
        frequencies, vectors = ion_chain.transverse_modes(self.positions, axial, radial)
        eta = ion_chain.lamb_dicke(self.mass, self.wavelength, self.angle, frequencies)
        return frequencies, vectors, eta

    def populations(self, delta: NDArray, radial: float, axial: float, rabi: float) -> NDArray:
        """Σ_m Ω_im²/Ω′_im² sin²(Ω′_im t/2), clipped to 1, shape (points, measured ions)."""
        frequencies, vectors, eta = self.modes(radial, axial)
        coupling = eta[None, :] * np.abs(vectors[list(self.rows), :]) * rabi  # (ions, modes)
        rabis, off = np.broadcast_arrays(
            coupling[None, :, :], np.asarray(delta, dtype=float)[:, None, None] - frequencies
        )
        return np.minimum(driven_population(self.duration, rabis, off).sum(axis=2), 1.0)


def _chain(data: CalibrationData) -> _Chain:
    c = data.context
    return _Chain(
        n=int(c["ions"]),
        rows=tuple(data.site(k) for k in range(data.n_sites)),
        mass=c["mass"],
        wavelength=c["wavelength"],
        angle=c["angle"],
        duration=c["duration"],
    )


def _sideband_model(chain: _Chain) -> Callable[..., NDArray]:
    def model(
        delta: NDArray, radial: float, axial: float, rabi: float, contrast: float, floor: float
    ) -> NDArray:
        return (floor + contrast * chain.populations(delta, radial, axial, rabi)).ravel()

    return model


class SidebandSpectroscopy(Routine[SidebandParameters, SidebandBackend]):
    """Blue-sideband spectrum of the transverse modes → ``radial_frequency`` ω_x (first radial axis)
    and ``axial_frequency`` ω_z (rad/µs, device-wide).

    Model, all ions at once: p_i(δ) = b + a Σ_m Ω_im²/Ω′_im² sin²(Ω′_im t/2) (clipped to 1),
    Ω_im = η_m |b_im| Ω, Ω′_im² = Ω_im² + (δ − ω_m)², with the mode frequencies ω_m, vectors b and
    Lamb–Dicke parameters η_m of the chain in the trap (ω_x, ω_z) (``ion_chain.transverse_modes``,
    ``lamb_dicke``: mass, Raman wavelength and angle of the profile); free ω_x, ω_z, the carrier Ω,
    one contrast a and one floor b for all ions. Resolved-sideband, low-excitation approximation; the
    carrier, the red sideband, the modes of the other radial axis and the detuning noise (rms √2/T2*,
    far below the Fourier width) are neglected. The probe is programmed at δ − 2·detuning_offset of
    the profile (B_0 is a field, the qubit frequency moves by 2·B_0): calibrate the offset first.

    Guesses: the least residual (linear contrast and floor) on a grid of ω_x over the scan and ω_z in
    [0.7, 1.3] × the profile's, Ω = programmed × the profile's rabi_scale."""

    name = "sideband_spectroscopy"
    platforms = ("ion",)
    parameters_type = SidebandParameters
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST}",
        "every fitted mode frequency inside the scan",
        "sidebands resolved: every fitted sideband Rabi frequency η_m|b_im|Ω < the smallest mode spacing",
        f"relative errors: ω_x < {MAX_RADIAL_ERROR:g}, ω_z < {MAX_AXIAL_ERROR:g}",
    )

    def acquire(
        self, parameters: SidebandParameters, backend: SidebandBackend, profile: DeviceProfile
    ) -> CalibrationData:
        p = parameters
        caps = profile.ions
        centre = caps.radial_frequencies[0]
        detunings = scan_grid(centre + p.start, centre + p.stop, p.points, self.name)
        shift = detuning_per_offset(profile) * profile.calibration.detuning_offset
        counts = backend.sideband_scan(detunings - shift, p.rabi, p.duration, p.shots)
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="detuning from the carrier",
            sweep_unit="rad/µs",
            sweep=detunings,
            shots=p.shots,
            counts=counts,
            context={
                "rabi": p.rabi,
                "duration": p.duration,
                "rabi_scale": profile.calibration.rabi_scale,
                "carrier_shift": shift,
                "ions": float(backend.n_sites),
                "radial_frequency": centre,
                "axial_frequency": caps.axial_frequency,
                "mass": caps.mass,
                "wavelength": caps.raman_wavelength,
                "angle": caps.raman_angle,
            },
        )

    def _guess(self, data: CalibrationData, chain: _Chain, rabi: float) -> tuple[float, float]:
        """(ω_x, ω_z) on a grid with the least residual of a linear (contrast, floor) fit."""
        x = data.sweep
        y = (data.counts / data.shots).ravel()
        axial0 = data.context["axial_frequency"]
        step = min(math.pi / chain.duration / 2, float(x.max() - x.min()) / 20)
        best, best_cost = (data.context["radial_frequency"], axial0), math.inf
        for radial in np.arange(x.min(), x.max() + step / 2, step):
            for axial in axial0 * np.linspace(0.7, 1.3, 31):
                try:
                    population = chain.populations(x, float(radial), float(axial), rabi).ravel()
                except (ConfigError, ConstraintError):
                    continue  # a zig-zag chain: not a candidate
                basis = np.column_stack([population, np.ones_like(population)])
                coefficients, *_ = np.linalg.lstsq(basis, y, rcond=None)
                cost = float(np.sum((basis @ coefficients - y) ** 2))
                if cost < best_cost:
                    best, best_cost = (float(radial), float(axial)), cost
        return best

    def fit(self, data: CalibrationData) -> FitResult:
        chain = _chain(data)
        x = data.sweep
        span = float(x.max() - x.min())
        rabi0 = data.context["rabi"] * data.context.get("rabi_scale", 1.0)
        radial0, axial0 = self._guess(data, chain, rabi0)
        k = data.counts
        guess = [
            radial0,
            axial0,
            rabi0,
            max(float(k.max() - k.min()) / data.shots, 0.05),
            k.min() / data.shots,
        ]
        bounds = (
            [radial0 - span, 0.5 * axial0, 0.1 * rabi0, 0.0, 0.0],
            [radial0 + span, 2.0 * axial0, 10 * rabi0, 1.0, 1.0],
        )
        fit = fit_probabilities(_sideband_model(chain), x, k.ravel(), data.shots, guess, bounds)
        reasons: list[str] = []
        reduced = _check_fits([fit], ["spectrum"], 3, reasons)
        estimates: list[Estimate] = []
        curves: dict[str, list[float]] = {
            name: [float(v)] for name, v in zip(_SIDEBAND, fit.values, strict=True)
        }
        if fit.ok:
            radial, axial, rabi = (float(v) for v in fit.values[:3])
            radial_error, axial_error = float(fit.errors[0]), float(fit.errors[1])
            frequencies, vectors, eta = chain.modes(radial, axial)
            curves["mode_frequencies"] = [float(f) for f in frequencies]
            outside = [f for f in frequencies if not x.min() <= f <= x.max()]
            if outside:
                reasons.append(
                    f"modes at {', '.join(f'{f:.5g}' for f in outside)} rad/µs outside the scan "
                    f"[{x.min():.5g}, {x.max():.5g}]"
                )
            strongest = float((eta[None, :] * np.abs(vectors) * rabi).max())
            spacing = float(np.diff(frequencies).min()) if len(frequencies) > 1 else math.inf
            if not strongest < spacing:
                reasons.append(
                    f"sidebands not resolved: Rabi frequency {strongest:.3g} rad/µs ≥ mode spacing "
                    f"{spacing:.3g} rad/µs"
                )
            if not radial_error < MAX_RADIAL_ERROR * radial:
                reasons.append(
                    f"radial frequency error {radial_error:.3g} rad/µs above {MAX_RADIAL_ERROR:g}"
                )
            if not axial_error < MAX_AXIAL_ERROR * axial:
                reasons.append(f"axial frequency error {axial_error:.3g} rad/µs above {MAX_AXIAL_ERROR:g}")
            estimates = [
                Estimate("radial_frequency", radial, radial_error, None),
                Estimate("axial_frequency", axial, axial_error, None),
            ]
        return FitResult(
            self.name, tuple(estimates), reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        values = [curves[name][0] for name in _SIDEBAND]
        if not all(math.isfinite(v) for v in values):
            return np.full((len(x), data.n_sites), np.nan)  # the fit failed: nothing to draw
        return _sideband_model(_chain(data))(x, *values).reshape(len(x), data.n_sites)


# -------------------------------------------------------------------------------- two-ion oscillations


@dataclass(frozen=True, kw_only=True)
class PairParameters:
    """Mølmer–Sørensen drive of two ions at a time at programmed Rabi frequency ``rabi`` (rad/µs) and
    beat note μ = ω_x + ``mode_detuning`` (ω_x the profile's first radial frequency, the centre-of-mass
    mode); pairs at distance 1 … ``max_distance``; each pair's durations scanned from 0 over
    ``periods`` periods π/J of its predicted coupling, ``points`` points per pair."""

    rabi: float = field(default=TWO_PI * 0.7, metadata=_FREQ)
    mode_detuning: float = field(default=TWO_PI * 0.1, metadata=_FREQ)
    periods: float = 2.5
    max_distance: int = 2
    points: int = 41
    shots: int = 400


_PAIR = ("coupling", "contrast", "floor")
MAX_COUPLING_ERROR = 0.03
MAX_PAIR_SCATTER = 8.0


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
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST} for every pair",
        "at least one full period π/J inside every pair's scan",
        "sampled well above Nyquist: 3·J·step < π for J fitted and expected",
        f"relative error of every J < {MAX_COUPLING_ERROR:g}",
        f"the pairs agree: χ²/dof of their scales around the mean < {MAX_PAIR_SCATTER:g}",
    )

    def acquire(
        self, parameters: PairParameters, backend: MSPairBackend, profile: DeviceProfile
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
            context.update(
                {f"pair{k}_i": float(i), f"pair{k}_j": float(j), f"pair{k}_predicted": predicted}
            )
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="duration (pairs concatenated)",
            sweep_unit="µs",
            sweep=np.concatenate(sweeps),
            shots=p.shots,
            counts=np.concatenate(counts),
            context=context,
        )

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
        reduced = _check_fits(fits, labels, 1, reasons)
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
            estimates.append(Estimate("interaction_scale", value, error, None))
        else:
            reasons.append(f"interaction_scale: no value, {len(pairs) - len(scales)} pair fits failed")
        return FitResult(
            self.name, tuple(estimates), reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )


ION_ROUTINES: dict[str, Routine] = {r.name: r for r in (SidebandSpectroscopy(), TwoIonOscillation())}
