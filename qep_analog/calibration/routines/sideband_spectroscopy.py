"""Sideband spectroscopy of a trapped-ion chain: the blue sidebands of the transverse modes →
``radial_frequency`` and ``axial_frequency``.

The fit is a physics model of the chain (:mod:`qep_analog.devices.ion_chain`) with binomial errors,
each ion's calibrated readout errors and one free contrast and floor on top. Run it after the
carrier routines (readout, Ramsey, Rabi): it measures detunings from the calibrated carrier and
needs the profile's ``detuning_offset``.

Scan rule (``start``/``stop`` left out): the window holds every transverse mode the trap in force
can have. The trap in force is (ω_x, ω_z) of the profile as resolved; each is known to u_x = 5 σ_x/ω_x
(σ_x its record's error) or, when no record set it (the profile file's own value), to the prior
``prior`` (a lab's plausible trap spread, default ±3 %), likewise ω_z to 5 σ_z/ω_z or ``axial_prior``
(default ±5 %). The highest mode is the centre-of-mass mode ω_x, the lowest
√(ω_x² − c_max ω_z²) (``ion_chain``: c_max the largest Coulomb eigenvalue of the N-ion chain); the
window runs from the lowest mode at (ω_x(1 − u_x), ω_z(1 + u_z)) to ω_x(1 + u_x), widened by
``linewidths`` Fourier widths 2π/t on each side. Its points are spaced by (2π/t)/``samples``: each
sideband line (a sinc² of width ≈ 2π/t) is sampled ``samples`` times across its Fourier width. A
window given in the runcard (``start``/``stop`` relative to the profile's ω_x, ``points``) is scanned
as given. ``rescan``: when the first scan's quick fit finds a mode within a Fourier width of an edge
(or no fit), one scan of the same width and spacing follows, centred on the fitted mode band (on the
prediction, twice as wide, when nothing was fitted); the data hold both scans and the fit uses both.

Error budget: the fit's statistical error of ω_x and ω_z, and the propagated errors
(:func:`~qep_analog.calibration.fitting.propagate`, the linearised refit) of the known inputs of the
model: the carrier in force (the device-wide ``detuning_offset``: its error moves every measured
detuning by 2 σ, entry ``detuning_offset``) and each ion's readout errors ε_i, ε′_i (entry
``readout``), added in quadrature. The carrier Rabi frequency Ω is a free parameter of the fit, so the
Rabi scale in force enters only the starting guesses and contributes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import SidebandBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, binomial_sigma, fit_best, propagate
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
    POINTS,
    RABI,
    TWO_PI,
    check_fits,
    parameter_rule,
    scan_grid,
    verdict,
)
from qep_analog.calibration.routines.single_qubit import detuning_per_offset
from qep_analog.calibration.routines.windows import (
    AUTO_DETUNING,
    FLAG,
    MARGIN,
    PRIOR,
    at_edge,
    check_window,
)
from qep_analog.devices import ion_chain
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError, ConfigError, ConstraintError

#: the written window's points, or None (the rule's spacing)
AUTO_POINTS = parameter_rule(kind="integer", low=5, nullable=True)
#: a known trap frequency is taken to lie within this many of its record's standard errors
TRAP_SIGMAS = 5.0
#: the fitted ω_x stays within this many Fourier widths 2π/t of its guesses (a guess lies within a
#: point spacing of a line)
FIT_WIDTHS = 5.0


@dataclass(frozen=True, kw_only=True)
class SidebandParameters(RoutineParameters):
    """A blue-sideband probe of ``duration`` (µs) at programmed carrier Rabi frequency ``rabi``
    (rad/µs). ``start``/``stop`` (rad/µs, relative to the profile's first radial frequency ω_x, the
    centre-of-mass mode) and ``points``: a written window; left out, the scan rule of the module
    docstring with the trap's prior relative spreads ``prior`` (ω_x) and ``axial_prior`` (ω_z),
    ``linewidths`` Fourier widths of margin, ``samples`` points per Fourier width and at most
    ``max_points`` points; ``rescan``: one re-scan around the fit when a mode sits at an edge."""

    rabi: float = field(default=TWO_PI * 0.1, metadata=RABI)
    duration: float = field(default=150.0, metadata=DURATION)
    start: float | None = field(default=None, metadata=AUTO_DETUNING)
    stop: float | None = field(default=None, metadata=AUTO_DETUNING)
    points: int | None = field(default=None, metadata=AUTO_POINTS)
    prior: float = field(default=0.03, metadata=PRIOR)
    axial_prior: float = field(default=0.05, metadata=PRIOR)
    linewidths: float = field(default=3.0, metadata=MARGIN)
    samples: float = field(default=3.0, metadata=parameter_rule(low=1.0, high=20.0))
    max_points: int = field(default=1500, metadata=POINTS)
    rescan: bool = field(default=True, metadata=FLAG)
    shots: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        check_window(self.start, self.stop, "angular_frequency")


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

    @cached_property
    def coulomb(self) -> tuple[NDArray, NDArray]:
        """(c_m, b_im): ω_m² = ω_x² − ω_z² c_m (ascending ω_m) and the mode vectors, which do not
        depend on the trap frequencies (from one :func:`ion_chain.transverse_modes` at ω_z = 1)."""
        reference = 1e3  # a radial frequency far above the zig-zag threshold at ω_z = 1
        frequencies, vectors = ion_chain.transverse_modes(self.positions, 1.0, reference)
        return reference**2 - frequencies**2, vectors

    def modes(self, radial: float, axial: float) -> tuple[NDArray, NDArray, NDArray]:
        """Transverse mode frequencies, vectors and Lamb–Dicke parameters of the trap (ω_x, ω_z)."""
        coulomb, vectors = self.coulomb
        squared = radial**2 - axial**2 * coulomb
        if not (radial > 0 and axial > 0 and np.all(squared > 0)):
            raise ConstraintError(
                f"sideband model: radial frequency {radial:.6g} rad/µs is not above the zig-zag "
                f"threshold of {self.n} ions at axial {axial:.6g} rad/µs"
            )
        frequencies = np.sqrt(squared)
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


def _readout(data: CalibrationData) -> tuple[NDArray, NDArray]:
    """Each measured ion's known readout errors ε, ε′ (0 in data stored without them)."""
    c = data.context
    sites = [data.site(k) for k in range(data.n_sites)]
    eps = np.array([c.get(f"false_positive_{s}", 0.0) for s in sites])
    eps_prime = np.array([c.get(f"false_negative_{s}", 0.0) for s in sites])
    return eps, eps_prime


def _inputs(data: CalibrationData) -> tuple[NDArray, NDArray]:
    """The model's known inputs and their errors: the carrier shift's error (value 0: the carrier
    in force), then ε and ε′ of every measured ion (data stored without errors: 0)."""
    c = data.context
    sites = [data.site(k) for k in range(data.n_sites)]
    eps, eps_prime = _readout(data)
    values = np.concatenate([[0.0], eps, eps_prime])
    errors = np.concatenate(
        [
            [c.get("carrier_shift_error", 0.0)],
            [c.get(f"false_positive_{s}_error", 0.0) for s in sites],
            [c.get(f"false_negative_{s}_error", 0.0) for s in sites],
        ]
    )
    return values, errors


def _sideband_model(
    chain: _Chain, eps: NDArray | None = None, eps_prime: NDArray | None = None, carrier: float = 0.0
) -> Callable[..., NDArray]:
    """P(read 1) of every measured ion: ε_i + (1 − ε_i − ε′_i)(b + a·P_i(δ + ``carrier``)) with each
    ion's known readout errors (none: b + a·P_i); ``carrier``: how far the true carrier lies from the
    one in force (rad/µs)."""
    low = np.zeros(len(chain.rows)) if eps is None else eps
    span = 1 - low - (np.zeros(len(chain.rows)) if eps_prime is None else eps_prime)

    def model(
        delta: NDArray, radial: float, axial: float, rabi: float, contrast: float, floor: float
    ) -> NDArray:
        populations = floor + contrast * chain.populations(delta + carrier, radial, axial, rabi)
        return (low[None, :] + span[None, :] * populations).ravel()

    return model


def mode_band(n: int, radial: float, axial: float) -> tuple[float, float]:
    """(lowest, highest) transverse mode frequency (rad/µs) of ``n`` ions in the trap (ω_x, ω_z): the
    highest is the centre-of-mass mode ω_x, the lowest √(ω_x² − c_max ω_z²); ConstraintError for a
    zig-zag chain."""
    coulomb, _ = _coulomb(n)
    squared = radial**2 - axial**2 * float(np.max(coulomb))
    if not (radial > 0 and axial > 0 and squared > 0):
        raise ConstraintError(
            f"sideband window: radial frequency {radial:.6g} rad/µs is not above the zig-zag threshold "
            f"of {n} ions at axial {axial:.6g} rad/µs"
        )
    return math.sqrt(squared), radial


def _coulomb(n: int) -> tuple[NDArray, NDArray]:
    return _Chain(n, tuple(range(n)), 1.0, 1.0, 90.0, 1.0).coulomb


@dataclass(frozen=True)
class SidebandWindow:
    """The scanned detunings from the calibrated carrier (rad/µs), how they were chosen, and the
    records of the trap the rule used."""

    detunings: NDArray
    adaptive: bool
    radial_margin: float  # relative spread of ω_x the window covers (0: a written window)
    axial_margin: float
    uses: tuple[str, ...]


def fourier_width(duration: float) -> float:
    """The Fourier width 2π/t (rad/µs) of a probe of ``duration`` µs: a sideband line's width."""
    return TWO_PI / duration


def sideband_window(
    parameters: SidebandParameters, profile: DeviceProfile, known: Known, n: int
) -> SidebandWindow:
    """The first scan of the rule (module docstring), or the written window (at the rule's spacing
    when its ``points`` are left out)."""
    p = parameters
    radial = known.device_value(profile, "radial_frequency")
    axial = known.device_value(profile, "axial_frequency")
    uses = (*radial.record_ids, *axial.record_ids)
    where = f"routine 'sideband_spectroscopy' on device {profile.label!r}"
    if p.start is not None and p.stop is not None:
        low, high = (profile.ions.radial_frequencies[0] + end for end in (p.start, p.stop))
        if p.points is None:
            return SidebandWindow(_spaced(low, high, p, where), False, 0.0, 0.0, uses)
        return SidebandWindow(scan_grid(low, high, p.points, where), False, 0.0, 0.0, uses)
    u_x = TRAP_SIGMAS * radial.uncertainty / radial.value if radial.record_ids else p.prior
    u_z = TRAP_SIGMAS * axial.uncertainty / axial.value if axial.record_ids else p.axial_prior
    try:
        lowest, _ = mode_band(n, radial.value * (1 - u_x), axial.value * (1 + u_z))
    except ConstraintError as exc:
        raise CalibrationError(f"{where}: {exc} (the trap's spread ±{u_x:.2%}, ±{u_z:.2%})") from None
    margin = p.linewidths * fourier_width(p.duration)
    low, high = lowest - margin, radial.value * (1 + u_x) + margin
    return SidebandWindow(_spaced(low, high, p, where), True, u_x, u_z, tuple(dict.fromkeys(uses)))


def _spaced(low: float, high: float, p: SidebandParameters, where: str) -> NDArray:
    """[low, high] at (2π/t)/``samples`` spacing; refused beyond ``max_points``."""
    spacing = fourier_width(p.duration) / p.samples
    points = max(math.ceil((high - low) / spacing) + 1, 5)
    if points > p.max_points:
        raise CalibrationError(
            f"{where}: the window [{low:.6g}, {high:.6g}] rad/µs needs {points} points at "
            f"{p.samples:g} per Fourier width, more than max_points {p.max_points}"
        )
    return np.linspace(low, high, points)


class SidebandSpectroscopy(Routine[SidebandParameters, SidebandBackend]):
    """Blue-sideband spectrum of the transverse modes → ``radial_frequency`` ω_x (first radial axis)
    and ``axial_frequency`` ω_z (rad/µs, device-wide).

    Model, all ions at once: p_i(δ) = ε_i + (1 − ε_i − ε′_i)(b + a P_i(δ)) with each ion's calibrated
    readout errors (their per-site records, else the device-wide ones) and
    P_i(δ) = Σ_m Ω_im²/Ω′_im² sin²(Ω′_im t/2) (clipped to 1),
    Ω_im = η_m |b_im| Ω, Ω′_im² = Ω_im² + (δ − ω_m)², with the mode frequencies ω_m, vectors b and
    Lamb–Dicke parameters η_m of the chain in the trap (ω_x, ω_z) (``ion_chain.transverse_modes``,
    ``lamb_dicke``: mass, Raman wavelength and angle of the profile); free ω_x, ω_z, the carrier Ω,
    one contrast a and one floor b for all ions. Resolved-sideband, low-excitation approximation; the
    carrier, the red sideband, the modes of the other radial axis and the detuning noise (rms √2/T2*,
    far below the Fourier width) are neglected. The probe is programmed at δ − 2·detuning_offset of
    the profile (B_0 is a field, the qubit frequency moves by 2·B_0): calibrate the offset first.

    Guesses (:func:`~qep_analog.calibration.fitting.fit_best`): ω_x at the highest line that stands
    out of the shot noise (the centre-of-mass mode is the highest) and at the strongest point, each
    with the ω_z in [0.7, 1.3] × the trap's whose model (linear contrast and floor) leaves the least
    residual; Ω = programmed × the profile's rabi_scale, a = 0.95, b = 0.01. Scan rule and error
    budget: the module docstring."""

    name = "sideband_spectroscopy"
    known_fields = ("detuning_offset", "rabi_scale", "radial_frequency", "axial_frequency")
    cell_bytes = 4400  # the sideband lineshapes per point and ion (tracemalloc: 3600)
    platforms = ("ion",)
    parameters_type = SidebandParameters
    adaptive = True  # the re-scan follows the first scan's fit
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2}",
        f"contrast a > {MIN_CONTRAST}",
        "every fitted mode frequency inside a scanned window (after at most one re-scan around the fit)",
        "sidebands resolved: every fitted sideband Rabi frequency η_m|b_im|Ω < the smallest mode spacing",
        f"relative errors (statistical and propagated): ω_x < {MAX_RADIAL_ERROR:g}, "
        f"ω_z < {MAX_AXIAL_ERROR:g}",
    )

    def data_shape(self, parameters: SidebandParameters, n_sites: int) -> tuple[int, int]:
        """A row per scan point (at most ``max_points`` by the rule; twice as many with the
        re-scan), a column per ion."""
        points = parameters.points if parameters.points is not None else parameters.max_points
        return points * (2 if parameters.rescan else 1), n_sites

    def acquire(
        self,
        parameters: SidebandParameters,
        backend: SidebandBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values taken as exact."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    def acquire_known(
        self,
        parameters: SidebandParameters,
        backend: SidebandBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        caps = profile.ions
        n = backend.n_sites
        scan = sideband_window(p, profile, known, n)
        per = detuning_per_offset(profile)
        offset = known.device_value(profile, "detuning_offset")
        shift = per * profile.calibration.detuning_offset
        readout: dict[str, float] = {}
        uses = [
            *offset.record_ids,
            *record_ids(profile, ("rabi_scale", "radial_frequency", "axial_frequency")),
            *scan.uses,
        ]
        for site in range(n):
            eps, eps_prime = known.site_readout(profile, site)
            readout[f"false_positive_{site}"] = eps.value
            readout[f"false_negative_{site}"] = eps_prime.value
            readout[f"false_positive_{site}_error"] = eps.uncertainty
            readout[f"false_negative_{site}_error"] = eps_prime.uncertainty
            uses.extend((*eps.record_ids, *eps_prime.record_ids))
        context = {
            "rabi": p.rabi,
            "duration": p.duration,
            "rabi_scale": profile.calibration.rabi_scale,
            "carrier_shift": shift,
            "carrier_shift_error": per * offset.uncertainty,
            "ions": float(n),
            "radial_frequency": caps.radial_frequencies[0],
            "axial_frequency": caps.axial_frequency,
            "mass": caps.mass,
            "wavelength": caps.raman_wavelength,
            "angle": caps.raman_angle,
            "adaptive_window": float(scan.adaptive),
            "radial_margin": scan.radial_margin,
            "axial_margin": scan.axial_margin,
            "scan_start": float(scan.detunings[0]),
            "scan_stop": float(scan.detunings[-1]),
            **readout,
        }
        detunings = scan.detunings
        counts = [backend.sideband_scan(detunings - shift, p.rabi, p.duration, p.shots)]
        if progress is not None:
            progress(1, 2 if p.rescan else 1)

        def data(sweep: NDArray, read: NDArray, uses: tuple[str, ...] = ()) -> CalibrationData:
            return CalibrationData(
                routine=self.name,
                parameters=stored_parameters(p),
                sweep_name="detuning from the carrier",
                sweep_unit="rad/µs",
                sweep=sweep,
                shots=p.shots,
                counts=read,
                context=context,
                uses=uses,
            )

        if p.rescan:
            again = self._rescan_window(data(detunings, counts[0]), p, profile)
            if again is not None:
                counts.append(backend.sideband_scan(again - shift, p.rabi, p.duration, p.shots))
                detunings = np.concatenate([detunings, again])
                context["rescan_start"], context["rescan_stop"] = float(again[0]), float(again[-1])
            if progress is not None:
                progress(2, 2)
        return data(detunings, np.concatenate(counts), tuple(dict.fromkeys(uses)))

    def _rescan_window(
        self, data: CalibrationData, p: SidebandParameters, profile: DeviceProfile
    ) -> NDArray | None:
        """The re-scan's detunings, or None when the quick fit saw every mode inside the first scan."""
        x = data.sweep
        low, high = float(x[0]), float(x[-1])
        width = fourier_width(p.duration)
        where = f"routine {self.name!r} on device {profile.label!r}"
        chain = _chain(data)
        fit = self._fit_spectrum(data, chain, keep=1)
        if not (fit.ok and fit.values[3] >= MIN_CONTRAST):  # no line seen: at the prediction, wider
            lowest, highest = mode_band(
                chain.n, data.context["radial_frequency"], data.context["axial_frequency"]
            )
            centre, half = (lowest + highest) / 2, high - low
            return _spaced(centre - half, centre + half, p, where)
        try:
            frequencies, _, _ = chain.modes(float(fit.values[0]), float(fit.values[1]))
        except ConstraintError:
            return None
        lowest, highest = float(frequencies.min()), float(frequencies.max())
        if not (at_edge(lowest, width, low, high) or at_edge(highest, width, low, high)):
            return None
        half = max((high - low) / 2, (highest - lowest) / 2 + p.linewidths * width)
        centre = (lowest + highest) / 2
        return _spaced(centre - half, centre + half, p, where)

    def _guesses(self, data: CalibrationData, chain: _Chain, rabi: float) -> list[list[float]]:
        """Starting points (ω_x, ω_z, Ω, a, b): ω_x at the highest line standing out of the noise
        and at the strongest point, each with its best ω_z on a grid (least residual, linear
        contrast and floor); a = 0.95, b = 0.01 (the readout errors are in the model, so a clean
        spectrum has a ≈ 1, b ≈ 0: a start there avoids a slow crawl along the nearly degenerate
        a·Ω² of weak lines)."""
        order = np.argsort(data.sweep)
        x = data.sweep[order]
        k = data.counts[order]
        y = (k / data.shots).mean(axis=1)
        base = float(np.median(y))
        noise = math.sqrt(max(base * (1 - base), 1.0 / data.shots) / (data.shots * k.shape[1]))
        threshold = base + max(6 * noise, 0.3 * (float(y.max()) - base))
        above = np.flatnonzero(y > threshold)
        candidates = [float(x[int(np.argmax(y))])]
        if above.size:
            top = int(above[-1])
            near = slice(max(top - 3, 0), top + 4)
            candidates.insert(0, float(x[near][int(np.argmax(y[near]))]))
        axial0 = data.context["axial_frequency"]
        flat = (k / data.shots).ravel()
        guesses: list[list[float]] = []
        for radial in dict.fromkeys(candidates):
            best: float | None = None
            best_cost = math.inf
            for axial in axial0 * np.linspace(0.7, 1.3, 31):
                try:
                    population = chain.populations(x, radial, float(axial), rabi).ravel()
                except (ConfigError, ConstraintError):
                    continue  # a zig-zag chain: not a candidate
                basis = np.column_stack([population, np.ones_like(population)])
                coefficients, *_ = np.linalg.lstsq(basis, flat, rcond=None)
                cost = float(np.sum((basis @ coefficients - flat) ** 2))
                if cost < best_cost:
                    best, best_cost = float(axial), cost
            if best is not None:
                guesses.append([radial, best, rabi, 0.95, 0.01])
        return guesses or [[candidates[0], axial0, rabi, 0.95, 0.01]]

    def _fit_spectrum(self, data: CalibrationData, chain: _Chain, keep: int | None = None) -> CurveFit:
        """The model fitted from :meth:`_guesses`: ω_x within :data:`FIT_WIDTHS` Fourier widths of
        the guesses, ω_z in [0.7, 1.3] × the trap's, Ω in [0.1, 10] × its guess, a in [0, 1.5],
        b in [−0.05, 1] (a and b may pass their physical ends a little, so that a clean spectrum,
        a ≈ 1 and b ≈ 0, is fitted inside the box)."""
        rabi0 = data.context["rabi"] * data.context.get("rabi_scale", 1.0)
        guesses = self._guesses(data, chain, rabi0)
        reach = FIT_WIDTHS * fourier_width(data.context["duration"])
        axial0 = data.context["axial_frequency"]
        radials = [g[0] for g in guesses]
        bounds = (
            [min(radials) - reach, 0.7 * axial0, 0.1 * rabi0, 0.0, -0.05],
            [max(radials) + reach, 1.3 * axial0, 10 * rabi0, 1.5, 1.0],
        )
        model = _sideband_model(chain, *_readout(data))
        return fit_best(model, data.sweep, data.counts.ravel(), data.shots, guesses, bounds, keep=keep)

    def _budget(
        self, data: CalibrationData, chain: _Chain, fit: CurveFit
    ) -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]:
        """The budgets of ω_x and ω_z: statistical, the carrier's (``detuning_offset``) and the
        readout errors' propagated shifts (those of ε, ε′ of every ion in quadrature)."""
        values, errors = _inputs(data)
        m = data.n_sites
        x = data.sweep

        def model(moves: NDArray, inputs: NDArray) -> NDArray:
            """The model at the fit moved by ``moves`` (propagate's differences then step by 10⁻⁷,
            far inside a line; a step relative to ω_x would span a tenth of one)."""
            eps, eps_prime = inputs[1 : 1 + m], inputs[1 + m :]
            return _sideband_model(chain, eps, eps_prime, float(inputs[0]))(x, *(fit.values + moves))

        sigma = binomial_sigma(data.counts.ravel(), data.shots)
        shifts = propagate(model, np.zeros_like(fit.values), sigma, values, errors)
        budgets = []
        for index in (0, 1):
            parts = [("statistical", float(fit.errors[index]))]
            if errors[0] > 0:
                parts.append(("detuning_offset", abs(float(shifts[0, index]))))
            if np.any(errors[1:] > 0):
                parts.append(("readout", float(np.sqrt(np.sum(shifts[1:, index] ** 2)))))
            budgets.append(tuple(parts))
        return budgets[0], budgets[1]

    def fit(self, data: CalibrationData) -> FitResult:
        chain = _chain(data)
        x = data.sweep
        fit = self._fit_spectrum(data, chain)
        reasons: list[str] = []
        reduced = check_fits([fit], ["spectrum"], 3, reasons)
        estimates: list[Estimate] = []
        curves: dict[str, list[float]] = {
            name: [float(v)] for name, v in zip(_SIDEBAND, fit.values, strict=True)
        }
        if fit.ok:
            radial, axial, rabi = (float(v) for v in fit.values[:3])
            frequencies, vectors, eta = chain.modes(radial, axial)
            curves["mode_frequencies"] = [float(f) for f in frequencies]
            ctx = data.context
            windows = [(ctx.get("scan_start", float(x.min())), ctx.get("scan_stop", float(x.max())))]
            if "rescan_start" in data.context:
                windows.append((data.context["rescan_start"], data.context["rescan_stop"]))
            outside = [f for f in frequencies if not any(lo <= f <= hi for lo, hi in windows)]
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
            radial_budget, axial_budget = self._budget(data, chain, fit)
            radial_error = math.sqrt(sum(v**2 for _, v in radial_budget))
            axial_error = math.sqrt(sum(v**2 for _, v in axial_budget))
            if not radial_error < MAX_RADIAL_ERROR * radial:
                reasons.append(
                    f"radial frequency error {radial_error:.3g} rad/µs above {MAX_RADIAL_ERROR:g}"
                )
            if not axial_error < MAX_AXIAL_ERROR * axial:
                reasons.append(f"axial frequency error {axial_error:.3g} rad/µs above {MAX_AXIAL_ERROR:g}")
            estimates = [
                Estimate("radial_frequency", radial, radial_error, None, radial_budget),
                Estimate("axial_frequency", axial, axial_error, None, axial_budget),
            ]
        return FitResult(
            self.name, tuple(estimates), reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        values = [curves[name][0] for name in _SIDEBAND]
        if not all(math.isfinite(v) for v in values):
            return np.full((len(x), data.n_sites), np.nan)  # the fit failed: nothing to draw
        return _sideband_model(_chain(data), *_readout(data))(x, *values).reshape(len(x), data.n_sites)


ROUTINE = SidebandSpectroscopy()
