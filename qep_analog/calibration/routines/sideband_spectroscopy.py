"""Sideband spectroscopy of a trapped-ion chain: the blue sidebands of the transverse modes →
``radial_frequency`` and ``axial_frequency``.

The fit is a physics model of the chain (:mod:`qep_analog.devices.ion_chain`) with binomial errors,
each ion's calibrated readout errors and one free contrast and floor on top. Run it after the
carrier routines (readout, Ramsey, Rabi): it measures detunings from the calibrated carrier and
needs the profile's ``detuning_offset``. The scan window is the runcard's, relative to the profile's
first radial frequency (the prior of the trap).
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
from qep_analog.calibration.fitting import fit_probabilities
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
    DETUNING,
    DURATION,
    MAX_REDUCED_CHI2,
    MIN_CONTRAST,
    POINTS,
    RABI,
    TWO_PI,
    check_fits,
    check_scan,
    scan_grid,
    verdict,
)
from qep_analog.calibration.routines.single_qubit import detuning_per_offset
from qep_analog.devices import ion_chain
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError, ConstraintError


@dataclass(frozen=True, kw_only=True)
class SidebandParameters(RoutineParameters):
    """A blue-sideband probe of ``duration`` (µs) at programmed carrier Rabi frequency ``rabi``
    (rad/µs), its detuning from the calibrated carrier scanned over [ω_x + start, ω_x + stop] with ω_x
    the profile's first radial frequency (the centre-of-mass mode)."""

    rabi: float = field(default=TWO_PI * 0.1, metadata=RABI)
    duration: float = field(default=150.0, metadata=DURATION)
    start: float = field(default=-TWO_PI * 0.08, metadata=DETUNING)
    stop: float = field(default=TWO_PI * 0.025, metadata=DETUNING)
    points: int = field(default=131, metadata=POINTS)
    shots: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        check_scan(self.start, self.stop, "angular_frequency")


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


def _sideband_model(
    chain: _Chain, eps: NDArray | None = None, eps_prime: NDArray | None = None
) -> Callable[..., NDArray]:
    """P(read 1) of every measured ion: ε_i + (1 − ε_i − ε′_i)(b + a·P_i(δ)) with each ion's known
    readout errors (none: b + a·P_i)."""
    low = np.zeros(len(chain.rows)) if eps is None else eps
    span = 1 - low - (np.zeros(len(chain.rows)) if eps_prime is None else eps_prime)

    def model(
        delta: NDArray, radial: float, axial: float, rabi: float, contrast: float, floor: float
    ) -> NDArray:
        populations = floor + contrast * chain.populations(delta, radial, axial, rabi)
        return (low[None, :] + span[None, :] * populations).ravel()

    return model


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

    Guesses: the least residual (linear contrast and floor) on a grid of ω_x over the scan and ω_z in
    [0.7, 1.3] × the profile's, Ω = programmed × the profile's rabi_scale."""

    name = "sideband_spectroscopy"
    known_fields = ("detuning_offset", "rabi_scale", "radial_frequency", "axial_frequency")
    cell_bytes = 4400  # the sideband lineshapes per point and ion (tracemalloc: 3600)
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
        self,
        parameters: SidebandParameters,
        backend: SidebandBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's readout errors."""
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
        centre = caps.radial_frequencies[0]
        detunings = scan_grid(centre + p.start, centre + p.stop, p.points, self.name)
        shift = detuning_per_offset(profile) * profile.calibration.detuning_offset
        counts = backend.sideband_scan(detunings - shift, p.rabi, p.duration, p.shots)
        readout = {}
        uses = list(
            record_ids(profile, ("detuning_offset", "rabi_scale", "radial_frequency", "axial_frequency"))
        )
        for site in range(backend.n_sites):
            eps, eps_prime = known.site_readout(profile, site)
            readout[f"false_positive_{site}"] = eps.value
            readout[f"false_negative_{site}"] = eps_prime.value
            uses.extend((*eps.record_ids, *eps_prime.record_ids))
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
                **readout,
            },
            uses=tuple(dict.fromkeys(uses)),
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
        fit = fit_probabilities(
            _sideband_model(chain, *_readout(data)), x, k.ravel(), data.shots, guess, bounds
        )
        reasons: list[str] = []
        reduced = check_fits([fit], ["spectrum"], 3, reasons)
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
        return _sideband_model(_chain(data), *_readout(data))(x, *values).reshape(len(x), data.n_sites)


ROUTINE = SidebandSpectroscopy()
