"""The adiabatic ramp-duration scan: how long a ramp must be to prepare a target ground state.

Experiment (both platforms): a small probe Hamiltonian is prepared with the platform's recipe ramp
(:func:`~qep_analog.sequences.recipes.build_schedule`; ``rydberg-linear`` or ``ion-exponential``, the
ramp shape kept and only its duration T changed) for a list of durations, and read out in Z. From
every shot the routine keeps one bit: whether the configuration belongs to the target's *crystal*
set S, so the single column of the data counts, per duration, the shots found in S, a binomial
variable with exact standard errors. The order parameter is O(T) = P(configuration ∈ S):

- Rydberg: S = the two Néel (Z2) configurations 1010… and 0101… of a ring of n atoms (n even, n ≥ 4;
  an open chain otherwise) driven from |0…0⟩ into the antiferromagnetic (blockaded) phase by the
  final Rabi frequency Ω_f and detuning δ_f, with the nearest-neighbour spacing a. O(0) = 0; the
  probability of the Z2 crystal is the order parameter of Bernien et al., Nature 551, 579 (2017).
  A ring (periodic chain) is used for even n because an open chain of even length has the
  near-degenerate edge configurations 1001… next to 1010… whose tiny splitting slows any ramp and
  makes the read-out oscillate; the ring's Z2 pair is split only by its symmetric combination,
  which is the sector the ramp stays in.
- Ions: S = the polarised configuration 11…1 the chain starts from (along the initial field of the
  exponential ramp). The couplings J_ij (the trap's own kernel pattern at a beat note just above
  the transverse modes, realisable with equal Rabi frequencies; nearest-neighbour J given) flip
  spin pairs, so in the ground state of H = Σ J_ij X_i X_j + B_f Σ Z_i with B_f < J the
  polarised weight drops well below its initial value O(0) = 1.

Both probes are built from the parameters and translated into controls with the *effective*
profile passed to :meth:`RampDurationScan.acquire` (the schedules carry the believed calibration;
the device runs them with its true one).

Model: O(T) = O∞ − A·exp(−T/τ). Motivation (Landau–Zener): the non-adiabatic excitation of a
passage through the minimum gap Δ at a sweep rate v ∝ 1/T is P = exp(−πΔ²/2v) = exp(−T/τ_LZ),
exponential in T; the finite ramp speed at the end of the ramp adds a lag of the state behind the
instantaneous ground state that the exponential describes as an effective τ. It is an asymptotic
form: at durations far below τ the dynamics are sudden (O − O(0) ∝ T²), so the scan must start
past the sudden regime (for the Rydberg probe past the overshoot of O near T ≈ 0.5 µs, where the
lagging, less dressed state is *more* crystalline than the ground state and O approaches its
plateau from above).

Coherent oscillations: a residual excited amplitude c₁ shows in a Z-diagonal observable at first
order, 2 Re(c₁ ⟨g|O|e⟩ e^(iφ)), with a phase φ = ∫ gap dt that grows linearly in T (the operator
does not commute with the final Hamiltonian, whose drive Ω_f or couplings mix configurations).
On the Rydberg probe these wiggles reach ±0.02 where the fidelity is already 0.99. Each point
therefore pools ``dither_points`` ramps of durations T(1 + u), u evenly spaced in
[−dither, dither] (default ±15 %, three ramps): the phase spreads over about a period and the
oscillation averages out while the exponential envelope does not; the fit uses the model averaged
over the same durations, O∞ − A·⟨exp(−T(1 + u)/τ)⟩_u, so τ is that of a single ramp. The pooled
count is a sum of binomials with slightly different p; the binomial error of the pooled mean is
an upper bound of its true error (χ² slightly conservative). Residual misfit is judged by χ².

Readout errors: the read plateau O∞ is that of the *read* configurations (for the Néel pair about
(1 − ε′)²(1 − ε)² times the ideal one), but the deficit shrinks by nearly the same factor, so τ
and the recommended duration barely change (on the fake lab with the profile's errors, T* still
prepares the ground state with fidelity ≥ 0.98).

Recommended duration: the swing is S = |O∞ − O(0)| with O(0) the value in the ramp's initial
state; the fitted deficit |A|·exp(−T/τ) falls below ``tolerance``·S at
T* = τ·ln(|A| / (tolerance·S)), with its standard error from the fit covariance (first-order
propagation through τ, A and O∞). T* is the record ``ramp_duration`` (µs, device-wide).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import ScheduleBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import CurveFit, binomial_sigma, fit_probabilities
from qep_analog.calibration.ground_state import final_ground_state, final_state_bytes
from qep_analog.calibration.records import FIELDS, Quality
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
    DETUNING,
    DISTANCE,
    FREQUENCY,
    MAX_REDUCED_CHI2,
    POINTS,
    RABI,
    TWO_PI,
    parameter_rule,
    run_in_parts,
)
from qep_analog.devices import ions, rydberg
from qep_analog.devices.geometry import zz_couplings
from qep_analog.devices.platform import ION, RYDBERG, Controls, Platform, platform_of
from qep_analog.devices.profile import DeviceProfile, realised_duration
from qep_analog.errors import CalibrationError, ConfigError, ConstraintError
from qep_analog.measurement.sampling import bits_of
from qep_analog.sequences.recipes import Recipe, build_schedule, load_recipe, stretched_recipe
from qep_analog.sequences.schedule import Schedule

#: the recipe whose ramp shape the scan uses on each platform
RECIPES = {"rydberg": "rydberg-linear", "ion": "ion-exponential"}
#: default scan (start, stop) in µs per platform
DEFAULT_SCAN = {"rydberg": (0.5, 2.0), "ion": (200.0, 3000.0)}
MAX_TAU_ERROR = 0.3
#: the deficit at the shortest duration must be at least this many tolerances
MIN_TRANSIENT = 5.0
#: a point beyond the plateau (against the approach) by more than this many errors breaks monotonicity
MAX_OVERSHOOT_SIGMAS = 3.0
#: the swing |O∞ − O(0)| must be at least this many standard errors
MIN_SWING_SIGMAS = 5.0
NAMES = ("plateau", "amplitude", "tau")
#: up to this many sites the context records the plateau the profile expects (exact ground state)
BELIEVED_LIMIT = 12


@dataclass(frozen=True, kw_only=True)
class RampScanParameters(RoutineParameters):
    """Ramp durations from ``start`` to ``stop`` (µs; 0: the platform's default, 0.5–2 µs for
    Rydberg arrays, 0.2–3 ms for ions) at ``points`` durations, ``shots`` each, on ``sites`` sites
    (the first ``sites``; 0: all the backend's), acceptance ``tolerance`` (fraction of the swing).
    Every point pools ``dither_points`` ramps of durations T·(1 + u), u evenly spaced in [−dither, dither]
    (``shots`` each; see :class:`RampDurationScan`). The probe defaults are tuned for 4 sites (other
    sizes need their own Ω_f, δ_f or J and scan range).

    Rydberg probe: nearest-neighbour ``spacing`` (µm), final ``rabi`` Ω_f and ``detuning`` δ_f
    (rad/µs) as the device should realise them. Ion probe: nearest-neighbour ``coupling`` J
    (rad/µs), beat note ``beat_detuning`` above the highest transverse mode (rad/µs), final
    ``final_field`` B_f (rad/µs)."""

    start: float = field(default=0.0, metadata=DELAY)
    stop: float = field(default=0.0, metadata=DELAY)
    points: int = field(default=13, metadata=POINTS)
    shots: int = 300
    dither: float = field(default=0.15, metadata=parameter_rule(low=0.0, high=0.5, open_high=True))
    dither_points: int = 3
    sites: int = field(default=4, metadata=parameter_rule(kind="integer", low=0))
    tolerance: float = field(
        default=0.02, metadata=parameter_rule(low=0.0, open_low=True, high=0.5, open_high=True)
    )
    spacing: float = field(default=5.0, metadata=DISTANCE)
    rabi: float = field(default=TWO_PI * 2.0, metadata=RABI)
    detuning: float = field(default=TWO_PI * 3.0, metadata=DETUNING)
    coupling: float = field(default=TWO_PI * 0.8e-3, metadata=FREQUENCY)
    beat_detuning: float = field(default=TWO_PI * 0.1, metadata=FREQUENCY)
    final_field: float = field(default=TWO_PI * 0.5e-3, metadata=DETUNING)


# -------------------------------------------------------------------------------- the probes


def probe_positions(n: int, spacing: float) -> NDArray:
    """Atom positions (n, 2) in µm: a ring of nearest-neighbour distance ``spacing`` for even
    n ≥ 4, an open chain centred on the origin otherwise."""
    if n >= 4 and n % 2 == 0:
        radius = spacing / (2 * math.sin(math.pi / n))
        angles = TWO_PI * np.arange(n) / n
        return np.column_stack([radius * np.cos(angles), radius * np.sin(angles)])
    return np.column_stack([(np.arange(n) - (n - 1) / 2) * spacing, np.zeros(n)])


def rydberg_target(p: RampScanParameters, profile: DeviceProfile, n: int) -> rydberg.RydbergControls:
    """Controls realising H = Σ Ω_f/2 X_i − Σ δ_f n_i + Σ U_ij n_i n_j on the probe register with the
    profile's calibration (its C6 scale, Ω scale and detuning offsets compensated)."""
    positions = probe_positions(n, p.spacing)
    couplings = zz_couplings(positions, profile.calibration.interaction_scale * profile.rydberg.c6)
    model = rydberg.IsingModel(np.full(n, p.detuning / 2) - couplings.sum(axis=1), p.rabi / 2, couplings)
    return rydberg.translate(model, profile, positions=positions)


def ion_target(p: RampScanParameters, profile: DeviceProfile, n: int) -> ions.IonControls:
    """Controls realising H = Σ J_ij X_i X_j + B_f Σ Z_i with J_ij ∝ the trap's coupling kernel at
    the beat note ``beat_detuning`` above the highest transverse mode, J_01 = ``coupling``."""
    if n < 2:
        raise CalibrationError(f"routine 'ramp_duration_scan': {n} ion, need at least 2 for couplings")
    mu = float(ions.chain_modes(profile, n).frequencies.max()) + p.beat_detuning
    kernel = ions.coupling_kernel(profile, n, mu)
    pattern = p.coupling * kernel / kernel[0, 1]
    return ions.translate(ions.IonSpinModel(np.full(n, p.final_field), pattern), profile, beat_note=mu)


#: the controls of each platform's probe
PROBE_TARGETS: dict[Platform, Callable[[RampScanParameters, DeviceProfile, int], Controls]] = {
    RYDBERG: rydberg_target,
    ION: ion_target,
}


def _neel_configurations(n: int, initial: str) -> NDArray:
    """The two Néel configurations (the Rydberg probe's crystal; ``initial`` plays no part)."""
    bits = bits_of(np.arange(1 << n), n).astype(int)
    staggered = (1 - 2 * bits) @ ((-1) ** np.arange(n))
    return np.asarray(np.abs(staggered) == n)


def _polarised_configuration(n: int, initial: str) -> NDArray:
    """The polarised configuration the ion ramp starts from, ``initial`` (11…1 when not given)."""
    return np.asarray(np.arange(1 << n) == int(initial or "1" * n, 2))


#: the crystal set S of each platform's probe
CRYSTAL_SETS = {RYDBERG: _neel_configurations, ION: _polarised_configuration}


def crystal_set(platform: str | Platform, n: int, initial: str = "") -> NDArray:
    """Indicator (2^n,) of the configurations counted by the order parameter (qubit 0 most
    significant): the two Néel configurations (Rydberg) or the polarised configuration the ramp
    starts from, ``initial`` (ions; 11…1 when not given)."""
    return CRYSTAL_SETS[platform_of(platform)](n, initial)


def scan_recipe(profile: DeviceProfile) -> Recipe:
    return load_recipe(RECIPES[profile.platform])


def ramp_schedule(
    recipe: Recipe,
    profile: DeviceProfile,
    target: Controls,
    duration: float,
) -> Schedule:
    """The recipe's ramp stretched to ``duration`` (µs; an exponential ramp keeps τ/T)."""
    return build_schedule(stretched_recipe(recipe, duration), profile, target, label="ramp_scan")


def probe_schedule(
    parameters: RampScanParameters, profile: DeviceProfile, n: int, duration: float
) -> Schedule:
    """The scan's schedule of ``duration`` µs on ``n`` sites (for tests and for using T*)."""
    target = PROBE_TARGETS[profile.platform_spec](parameters, profile, n)
    return ramp_schedule(scan_recipe(profile), profile, target, duration)


def order_parameter(state: NDArray, platform: str | Platform) -> float:
    """O = P(configuration ∈ S) of a state vector (2^n,), as read out without errors."""
    n = state.size.bit_length() - 1
    return float(np.abs(state) ** 2 @ crystal_set(platform, n))


# -------------------------------------------------------------------------------- the fit


def dither_offsets(dither: float, points: int) -> NDArray:
    """The relative offsets u of the pooled ramps of one point: evenly spaced in [−dither, dither]."""
    return np.linspace(-dither, dither, points) if points > 1 else np.zeros(1)


def _decay(t: NDArray, tau: float, offsets: NDArray) -> NDArray:
    """exp(−T(1 + u)/τ) averaged over the pooled offsets u."""
    return np.asarray(np.exp(-np.outer(t, 1 + offsets) / tau).mean(axis=1))


def window_model(offsets: NDArray) -> Any:
    """O(T) = O∞ − A·⟨exp(−T(1 + u)/τ)⟩_u: the model averaged over the pooled durations."""

    def model(t: NDArray, plateau: float, amplitude: float, tau: float) -> NDArray:
        return plateau - amplitude * _decay(np.asarray(t, dtype=float), tau, offsets)

    return model


def _tau_guess(t: NDArray, y: NDArray, sigma: NDArray, offsets: NDArray) -> float:
    """The τ (log grid over [step/4, 3 scans]) whose weighted linear fit of (O∞, A) fits best."""
    step = float(np.min(np.diff(t))) if t.size > 1 else float(t[0])
    span = float(t.max())
    best, best_cost = span, math.inf
    for tau in np.geomspace(step / 4, 3 * span, 300):
        basis = np.column_stack([np.ones_like(t), -_decay(t, tau, offsets)]) / sigma[:, None]
        coefficients, *_ = np.linalg.lstsq(basis, y / sigma, rcond=None)
        cost = float(np.sum((basis @ coefficients - y / sigma) ** 2))
        if cost < best_cost:
            best, best_cost = float(tau), cost
    return best


def _fit(t: NDArray, counts: NDArray, shots: int, offsets: NDArray) -> CurveFit:
    y = counts / shots
    sigma = binomial_sigma(counts, shots)
    tau0 = _tau_guess(t, y, sigma, offsets)
    weights = _decay(t, tau0, offsets)
    design = np.column_stack([np.ones_like(t), -weights]) / sigma[:, None]
    (plateau0, amplitude0), *_ = np.linalg.lstsq(design, y / sigma, rcond=None)
    scale = float(np.exp(t.min() / tau0))
    low = [0.0, -50.0 * scale, 1e-3 * tau0]
    high = [1.0, 50.0 * scale, 1e3 * tau0]
    guess = [plateau0, amplitude0, tau0]
    fit = fit_probabilities(window_model(offsets), t, counts, shots, guess, (low, high))
    if fit.ok and not np.all(np.isfinite(np.asarray(fit.covariance))):  # T*'s error needs all of it
        return dataclasses.replace(fit, ok=False, message="covariance not finite")
    return fit


def recommended_duration(
    values: NDArray, covariance: NDArray, initial: float, tolerance: float
) -> tuple[float, float]:
    """T* = τ ln(|A| / (tolerance·|O∞ − O(0)|)) and its standard error (first-order propagation)."""
    plateau, amplitude, tau = (float(v) for v in values)
    swing = abs(plateau - initial)
    if not (swing > 0 and amplitude != 0):
        return math.nan, math.nan
    log = math.log(abs(amplitude) / (tolerance * swing))
    value = tau * log
    gradient = np.array([-tau / (plateau - initial), tau / amplitude, log])
    variance = float(gradient @ covariance @ gradient)
    return value, math.sqrt(max(variance, 0.0))


# -------------------------------------------------------------------------------- the routine


class RampDurationScan(Routine[RampScanParameters, ScheduleBackend]):
    """Ramp-duration scan → ``ramp_duration`` (µs, device-wide): the shortest ramp of the platform's
    recipe whose order parameter is within ``tolerance`` of its adiabatic plateau.

    The data hold one column: the number of shots (of ``shots`` × ``dither_points``) whose
    configuration is in the probe's crystal set S (see the module docstring), one row per ramp
    duration (the realised central one). The context holds O(0) (``initial_value``), the tolerance,
    the dither and its number of ramps and, for reference, O of the ground state of the final
    Hamiltonian as the profile believes it (``believed_value``, up to 12 sites); the fit needs only
    the counts, the durations and the context. The scan runs on the first ``sites`` sites (default
    4; emulated backends should be given at most ~10)."""

    name = "ramp_duration_scan"
    known_fields = tuple(FIELDS)  # its schedules are built with the whole profile in force
    parameters_type = RampScanParameters
    platforms = ("rydberg", "ion")
    criteria = (
        f"reduced chi2 < {MAX_REDUCED_CHI2} (binomial errors)",
        f"relative error of the fitted time constant tau < {MAX_TAU_ERROR:.0%}",
        "the scan reaches the plateau: longest duration >= the recommended duration",
        f"the scan starts in the transient: fitted deficit at the shortest duration >= {MIN_TRANSIENT:g}"
        " tolerances of the swing",
        f"monotonic approach: no point beyond the plateau, against the approach, by > "
        f"{MAX_OVERSHOOT_SIGMAS:g} standard errors",
        f"the swing |O_inf - O(0)| is resolved: >= {MIN_SWING_SIGMAS:g} standard errors",
    )

    def data_shape(self, parameters: RampScanParameters, n_sites: int) -> tuple[int, int]:
        """A row per duration, one column (the crystal's count)."""
        return parameters.points, 1

    def memory_bytes(self, parameters: RampScanParameters, n_sites: int) -> int:
        """The data's cells and the preparation of a ramp's state on the probed sites."""
        sites = parameters.sites or n_sites
        return super().memory_bytes(parameters, n_sites) + final_state_bytes(sites)

    def acquire(
        self,
        parameters: RampScanParameters,
        backend: ScheduleBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        platform = profile.platform
        n = p.sites or backend.n_sites
        if n > backend.n_sites:
            raise CalibrationError(
                f"routine {self.name!r}: {n} sites requested, the backend {backend.name!r} has "
                f"{backend.n_sites}"
            )
        default_start, default_stop = DEFAULT_SCAN[platform]
        start, stop = p.start or default_start, p.stop or default_stop
        if p.points < 5 or not stop > start:
            raise CalibrationError(
                f"routine {self.name!r}: scan [{start:g}, {stop:g}] µs with {p.points} points "
                "(need stop > start, >= 5 points)"
            )
        try:
            durations = np.unique(
                [realised_duration(profile, t) for t in np.linspace(start, stop, p.points)]
            )
            target = PROBE_TARGETS[profile.platform_spec](p, profile, n)
            recipe = scan_recipe(profile)
            offsets = dither_offsets(p.dither, p.dither_points)
            pooled = [[realised_duration(profile, t * (1 + u)) for u in offsets] for t in durations]
            points = [[ramp_schedule(recipe, profile, target, t) for t in row] for row in pooled]
        except (ConstraintError, ConfigError) as exc:
            raise CalibrationError(f"routine {self.name!r}: {exc}") from None
        if durations.size < 5:
            raise CalibrationError(
                f"routine {self.name!r}: {durations.size} distinct durations on the clock, need >= 5"
            )
        start_state = points[0][0].initial_state or "0" * n
        members = crystal_set(platform, n, start_state)
        outcomes = run_in_parts(backend, points, p.shots, progress)
        crystal = np.array([int(np.asarray(k)[members].sum()) for k in outcomes], dtype=np.int64)
        counts = crystal.reshape(durations.size, offsets.size).sum(axis=1, keepdims=True)
        initial = float(members[int(start_state, 2)])
        context = {
            "initial_value": initial,
            "tolerance": p.tolerance,
            "dither": p.dither,
            "dither_points": float(offsets.size),
            "n_sites": float(n),
        }
        if n <= BELIEVED_LIMIT:
            believed = np.abs(final_ground_state(points[-1][-1], profile)) ** 2 @ members
            context["believed_value"] = float(believed)
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="ramp duration",
            sweep_unit="µs",
            sweep=durations,
            shots=p.shots * offsets.size,
            counts=counts,
            context=context,
        )

    def fit(self, data: CalibrationData) -> FitResult:
        if data.n_sites != 1:
            raise CalibrationError(
                f"routine {self.name!r}: data with {data.n_sites} columns, expected 1 (crystal counts)"
            )
        t = data.sweep
        counts = data.counts[:, 0].astype(float)
        initial = data.context["initial_value"]
        tolerance = data.context["tolerance"]
        offsets = _offsets(data)
        fit = _fit(t, counts, data.shots, offsets)
        reasons: list[str] = []
        reduced = fit.chi2 / fit.dof if fit.dof > 0 else math.nan
        if not fit.ok:
            reasons.append(f"fit failed ({fit.message})")
            return FitResult(
                self.name, (), reduced, "bad", tuple(reasons), self.criteria,
                {name: [math.nan] for name in NAMES},
            )  # fmt: skip
        plateau, amplitude, tau = (float(v) for v in fit.values)
        errors = fit.errors
        if not reduced < MAX_REDUCED_CHI2:
            reasons.append(f"reduced chi2 {reduced:.3g} not < {MAX_REDUCED_CHI2}")
        if not errors[2] < MAX_TAU_ERROR * tau:
            reasons.append(
                f"time constant tau = {tau:.3g} ± {errors[2]:.2g} µs: relative error not "
                f"< {MAX_TAU_ERROR:.0%}"
            )
        swing = abs(plateau - initial)
        if not swing >= MIN_SWING_SIGMAS * errors[0]:
            reasons.append(
                f"swing |O_inf - O(0)| = {swing:.3g} below {MIN_SWING_SIGMAS:g} errors ({errors[0]:.2g})"
            )
        value, error = recommended_duration(fit.values, np.asarray(fit.covariance), initial, tolerance)
        if not math.isfinite(value):
            reasons.append("no recommended duration (no swing or no transient)")
        elif value > t.max():
            reasons.append(
                f"recommended duration {value:.4g} µs beyond the longest scanned {t.max():.4g} µs"
            )
        first_deficit = abs(amplitude) * math.exp(-t.min() / tau)
        if not first_deficit >= MIN_TRANSIENT * tolerance * swing:
            reasons.append(
                f"deficit {first_deficit:.3g} at the shortest duration {t.min():.4g} µs below "
                f"{MIN_TRANSIENT:g} tolerances ({MIN_TRANSIENT * tolerance * swing:.3g}): saturated"
            )
        y = counts / data.shots
        sigma = np.hypot(binomial_sigma(counts, data.shots), errors[0])
        beyond = np.sign(amplitude) * (y - plateau) / sigma  # > 0: past the plateau
        if beyond.max() > MAX_OVERSHOOT_SIGMAS:
            k = int(np.argmax(beyond))
            reasons.append(
                f"not monotonic: O = {y[k]:.3g} at {t[k]:.4g} µs lies {beyond[k]:.3g} errors beyond the "
                f"plateau {plateau:.3g}"
            )
        estimates = (Estimate("ramp_duration", value, error, None),) if math.isfinite(value) else ()
        curves = {name: [float(v)] for name, v in zip(NAMES, fit.values, strict=True)}
        curves.update({f"{name}_error": [float(e)] for name, e in zip(NAMES, errors, strict=True)})
        quality: Quality = "bad" if reasons else "good"
        return FitResult(self.name, estimates, reduced, quality, tuple(reasons), self.criteria, curves)

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray:
        values = [curves[name][0] for name in NAMES]
        return np.asarray(window_model(_offsets(data))(np.asarray(x, dtype=float), *values))[:, None]


def _offsets(data: CalibrationData) -> NDArray:
    return dither_offsets(data.context.get("dither", 0.0), int(data.context.get("dither_points", 1)))


ROUTINE = RampDurationScan()
