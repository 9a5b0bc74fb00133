"""A seeded fake trapped-ion chain: ions whose true parameters differ from the nominal profile.

Conventions are those of :mod:`qep_analog.devices.ions`: the spin model has fields
h_i = B + B_0 + ½ Σ_k C_ik g_k Δ_k, so the field offset B_0 (``detuning_offset``) moves the qubit
frequency by 2·B_0 and an AC-Stark shift Δ_k programmed on ion k moves the qubit frequency of ion i
by C_ik g_k Δ_k (C = 1 on the diagonal, the cross-talk fraction for nearest neighbours).

Carrier experiments (``square_pulse``, ``ramsey``, ``readout``) have exactly the semantics of
:class:`qep_analog.calibration.backend.RydbergCalibrationBackend` and the physics of
:mod:`qep_analog.calibration.fakes.rydberg_lab`: per ion H = Ω/2 X − Δ n with
Ω = rabi_scale·Ω_programmed and true qubit detuning Δ_i = δ_programmed + 2·B_0 + δ_noise, δ_noise
quasi-static Gaussian of rms √2/T2* (averaged exactly for Ramsey, by Gauss–Hermite quadrature for
driven pulses); ideal π/2 pulses and state preparation; readout flips 0 → 1 with ε_i and 1 → 0 with
ε′_i per ion; binomial counts. ``amplitude_jitter`` σ_a (default 0) scales the carrier drive of a
square pulse by 1 + σ_a·ξ, ξ ~ N(0, 1) per shot (the same for every ion), by Gauss–Hermite
quadrature; Ramsey's π/2 pulses and the motional experiments do not see it.

Schedules (:class:`~qep_analog.calibration.fakes.schedule_lab.RunsSchedulesOnTrueProfile`): prepared
adiabatically, they carry the hidden T2* (quasi-static offsets), amplitude jitter (one draw per shot
scaling the Mølmer–Sørensen drive, the couplings by a²) and ``markovian_dephasing_time`` (default
inf: none), through the emulator's trajectories; read with the per-ion readout errors.

Motional experiments use the true trap (axial ω_z and first radial ω_x frequencies): the transverse
modes of the chain along the first radial axis, along which the Raman wave vector Δk points (the
modes of the second radial axis are not driven). ``sideband_scan`` is resolved-sideband,
low-excitation blue-sideband spectroscopy from the motional ground state; ``ms_pair`` is the ideal
spin-only Mølmer–Sørensen interaction of two driven ions, J_ij = s_J·(rΩ)²·K_ij(μ) (dephasing and
phonon admixture neglected).

Drift over days (``drift``, :mod:`qep_analog.calibration.fakes.random_walk`): the fields of
:data:`DRIFT_FIELDS` can wander as seeded random walks on the lab's simulated clock (:meth:`advance`,
:meth:`set_day`); :data:`DEFAULT_DRIFT` states a plausible day-to-day wander. Without ``drift`` the lab
never changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.fakes.random_walk import RandomWalk, SimulatedDays, walked
from qep_analog.calibration.fakes.schedule_lab import Preparation, RunsSchedulesOnTrueProfile
from qep_analog.calibration.lineshapes import NODES, WEIGHTS, driven_population, pair_read_both
from qep_analog.devices import ion_chain, ions
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.schema import check_seed

TWO_PI = 2 * math.pi
#: Stark-gain pattern of the default mis-calibration, repeated along the chain
GAIN_PATTERN = (1.05, 0.93, 1.1, 0.97)


@dataclass(frozen=True)
class HiddenIonParameters:
    """The true parameters of the fake chain (internal units: rad/µs, µs).

    ``detuning_offset`` is the field offset B_0 (the qubit frequency moves by 2·B_0);
    ``radial_frequency`` is the first radial trap frequency, the axis of the Mølmer–Sørensen modes;
    ``stark_gains`` (one per ion) and ``stark_crosstalk`` (nearest-neighbour fraction) shape the
    AC-Stark local fields."""

    rabi_scale: float
    detuning_offset: float
    false_positive: tuple[float, ...]
    false_negative: tuple[float, ...]
    dephasing_time: float
    interaction_scale: float
    axial_frequency: float
    radial_frequency: float
    stark_gains: tuple[float, ...]
    stark_crosstalk: float
    amplitude_jitter: float = 0.0
    markovian_dephasing_time: float = math.inf

    def __post_init__(self) -> None:
        n = len(self.false_positive)
        if n < 2 or len(self.false_negative) != n or len(self.stark_gains) != n:
            raise ConfigError(
                f"fake ion lab: false_positive, false_negative and stark_gains need one value per ion "
                f"(≥ 2 ions), got {n}, {len(self.false_negative)} and {len(self.stark_gains)}"
            )
        errors = (*self.false_positive, *self.false_negative)
        if any(not 0 <= e < 1 for e in errors):
            raise ConfigError(f"fake ion lab: readout errors {errors} must be in [0, 1)")
        for name in ("rabi_scale", "dephasing_time", "interaction_scale", "axial_frequency"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"fake ion lab: {name} = {value} must be positive and finite")
        if not math.isfinite(self.detuning_offset):
            raise ConfigError(f"fake ion lab: detuning_offset = {self.detuning_offset} is not finite")
        if any(not (math.isfinite(g) and g > 0) for g in self.stark_gains):
            raise ConfigError(f"fake ion lab: stark_gains {self.stark_gains} must be positive")
        if not 0 <= self.amplitude_jitter < 0.5:
            raise ConfigError(f"fake ion lab: amplitude_jitter = {self.amplitude_jitter} not in [0, 0.5)")
        if not self.markovian_dephasing_time > 0:
            raise ConfigError(
                f"fake ion lab: markovian_dephasing_time = {self.markovian_dephasing_time} µs must be > 0"
            )
        if not 0 <= self.stark_crosstalk < 1:
            raise ConfigError(f"fake ion lab: stark_crosstalk = {self.stark_crosstalk} not in [0, 1)")
        threshold = ion_chain.zigzag_threshold(n, self.axial_frequency)
        if not self.radial_frequency > max(threshold, self.axial_frequency):
            raise ConfigError(
                f"fake ion lab: radial_frequency = {self.radial_frequency:.6g} rad/µs is not above the "
                f"axial frequency and the zig-zag threshold {threshold:.6g} rad/µs of {n} ions"
            )

    @property
    def n_sites(self) -> int:
        return len(self.false_positive)


def default_hidden(profile: DeviceProfile, n_sites: int = 4) -> HiddenIonParameters:
    """A mis-calibrated version of ``profile``: Ω 5 % strong, B_0 = +2π·2 kHz (the qubit frequency
    moves by 2π·4 kHz), T2* at 70 % of nominal (1 ms if the profile has none), per-ion readout errors
    around the nominal ones (ε × [1.05 … 1.35], ε′ × [0.6 … 1.0]), s_J 5 % weak, axial frequency 3 %
    high, first radial frequency 0.5 % low, Stark gains of the pattern 1.05, 0.93, 1.1, 0.97 (times the
    nominal ones) and a cross-talk 0.01 above nominal (0.03 for yb171-chain)."""
    caps = profile.ions
    cal = profile.calibration
    eps = profile.noise.readout_false_positive
    eps_prime = profile.noise.readout_false_negative
    spread = np.linspace(-1.0, 1.0, n_sites) if n_sites > 1 else np.zeros(1)
    t2 = profile.noise.dephasing_time if math.isfinite(profile.noise.dephasing_time) else 1000.0
    pattern = np.resize(np.asarray(GAIN_PATTERN), n_sites)
    return HiddenIonParameters(
        rabi_scale=cal.rabi_scale * 1.05,
        detuning_offset=cal.detuning_offset + TWO_PI * 0.002,
        false_positive=tuple(float(x) for x in eps * (1.2 + 0.15 * spread)),
        false_negative=tuple(float(x) for x in eps_prime * (0.8 + 0.2 * spread)),
        dephasing_time=0.7 * t2,
        interaction_scale=cal.interaction_scale * 0.95,
        axial_frequency=caps.axial_frequency * 1.03,
        radial_frequency=caps.radial_frequencies[0] * 0.995,
        stark_gains=tuple(float(g) for g in profile.local_gains(n_sites) * pattern),
        stark_crosstalk=caps.stark_crosstalk + 0.01,
    )


#: the hidden fields that can drift, in the order of their random-walk streams
DRIFT_FIELDS = (
    "rabi_scale",
    "detuning_offset",
    "interaction_scale",
    "axial_frequency",
    "radial_frequency",
    "stark_gains",
    "false_positive",
    "false_negative",
    "dephasing_time",
)
#: a plausible day-to-day wander (rms change per √day, internal units): Ω scale 0.5 %, field offset
#: B_0 2π·0.2 kHz, coupling scale s_J 0.5 %, axial trap frequency 2π·0.5 kHz, first radial
#: 2π·1 kHz, Stark gains 0.5 %, ε and ε′ 0.1 % absolute; T2* held
DEFAULT_DRIFT = {
    "rabi_scale": 0.005,
    "detuning_offset": TWO_PI * 0.0002,
    "interaction_scale": 0.005,
    "axial_frequency": TWO_PI * 0.0005,
    "radial_frequency": TWO_PI * 0.001,
    "stark_gains": 0.005,
    "false_positive": 0.001,
    "false_negative": 0.001,
}
#: where a drifting field is clipped (a scale or frequency stays positive, a readout error below ½)
_DRIFT_BOUNDS = {
    "rabi_scale": (1e-3, math.inf),
    "interaction_scale": (1e-3, math.inf),
    "axial_frequency": (1e-3, math.inf),
    "radial_frequency": (1e-3, math.inf),
    "stark_gains": (1e-3, math.inf),
    "dephasing_time": (1e-3, math.inf),
    "false_positive": (0.0, 0.49),
    "false_negative": (0.0, 0.49),
}


@dataclass
class FakeIonLab(SimulatedDays, RunsSchedulesOnTrueProfile):
    """The fake chain: ``hidden`` parameters of the ions in the trap of the nominal ``profile`` (mass,
    Raman wavelength and angle), ``seed`` for the shot noise (one generator per lab). ``drift``: a
    random walk of fields of :data:`DRIFT_FIELDS` from ``hidden`` (its day-0 values) as the lab's
    simulated days pass; ``start``: what the lab's clock reads on day 0 (a calibration run then
    stamps its records with the lab's time).

    All controls are programmed values (rad/µs, µs); every experiment returns integer counts of '1'
    per point and ion, shape ``(points, n_sites)`` (``ms_pair``: ``(points, 1)``)."""

    hidden: HiddenIonParameters
    profile: DeviceProfile
    seed: int = 0
    name: str = "fake-lab"
    preparation: Preparation = "ground"
    drift: RandomWalk | None = None
    start: dt.datetime | None = None
    _rng: np.random.Generator = field(init=False, repr=False)
    _true: DeviceProfile = field(init=False, repr=False)
    _day: float = field(default=0.0, init=False, repr=False)
    _base: HiddenIonParameters = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_seed(self.seed, "fake ion lab", ConfigError)
        caps = self.profile.ions  # a Rydberg profile raises here
        if self.n_sites > caps.max_ions:
            raise ConfigError(f"fake ion lab: {self.n_sites} ions exceed the limit {caps.max_ions}")
        self._check_clock(DRIFT_FIELDS, "fake ion lab")
        self._rng = np.random.default_rng(self.seed)
        self._base = self.hidden
        self._true = self._build_true_profile()

    @classmethod
    def for_profile(
        cls,
        profile: DeviceProfile,
        n_sites: int = 4,
        seed: int = 0,
        *,
        drift: RandomWalk | None = None,
        start: dt.datetime | None = None,
    ) -> FakeIonLab:
        """A lab with the default mis-calibration of :func:`default_hidden`: Ω 5 % strong,
        B_0 = +2π·2 kHz, T2* at 70 %, per-ion ε and ε′ around nominal, s_J = 0.95 × nominal, axial
        frequency 3 % high, first radial frequency 0.5 % low, Stark gains 1.05, 0.93, 1.1, 0.97, …
        and cross-talk nominal + 0.01; ``drift`` and ``start`` as the class says."""
        return cls(default_hidden(profile, n_sites), profile, seed, drift=drift, start=start)

    @staticmethod
    def default_drift(seed: int = 0) -> RandomWalk:
        """The lab's stated day-to-day wander (:data:`DEFAULT_DRIFT`), seeded by ``seed``."""
        return RandomWalk(DEFAULT_DRIFT, seed)

    def _drift_to(self, day: float) -> None:
        assert self.drift is not None
        base = self._base
        values: dict[str, float | tuple[float, ...]] = {name: getattr(base, name) for name in DRIFT_FIELDS}
        moved = walked(values, self.drift, DRIFT_FIELDS, day, self.n_sites, _DRIFT_BOUNDS)
        self.hidden = dataclasses.replace(base, **moved)  # type: ignore[arg-type]
        self._true = self._build_true_profile()

    @property
    def n_sites(self) -> int:
        return self.hidden.n_sites

    # ------------------------------------------------------------------ the truth as a profile

    def _build_true_profile(self) -> DeviceProfile:
        h, p = self.hidden, self.profile
        caps = p.ions
        return dataclasses.replace(
            p,
            calibration=dataclasses.replace(
                p.calibration,
                rabi_scale=h.rabi_scale,
                detuning_offset=h.detuning_offset,
                interaction_scale=h.interaction_scale,
                local_gains=h.stark_gains,
            ),
            capabilities=dataclasses.replace(
                caps,
                axial_frequency=h.axial_frequency,
                radial_frequencies=(h.radial_frequency, caps.radial_frequencies[1]),
                stark_crosstalk=h.stark_crosstalk,
            ),
            noise=dataclasses.replace(
                p.noise,
                readout_false_positive=float(np.mean(h.false_positive)),
                readout_false_negative=float(np.mean(h.false_negative)),
                dephasing_time=h.dephasing_time,
                amplitude_jitter=h.amplitude_jitter,
                markovian_dephasing_time=h.markovian_dephasing_time,
            ),
        )

    def true_profile(self) -> DeviceProfile:
        """The nominal profile with the hidden calibration applied: calibration (rabi_scale,
        detuning_offset = B_0, interaction_scale, local_gains = Stark gains), trap (axial frequency,
        first radial frequency, Stark cross-talk) and noise (mean readout errors, T2*, amplitude
        jitter, Markovian dephasing time)."""
        return self._true

    @property
    def qubit_offset(self) -> float:
        """The true shift of the qubit frequency, 2·B_0 (rad/µs)."""
        return 2 * self.hidden.detuning_offset

    # ------------------------------------------------------------------ readout

    def _read(self, populations: NDArray, shots: int) -> NDArray:
        """Counts of '1' per point and ion for P(|1⟩) ``populations`` of shape (points, ions)."""
        eps = np.asarray(self.hidden.false_positive)
        eps_prime = np.asarray(self.hidden.false_negative)
        p = eps[None, :] + (1 - eps - eps_prime)[None, :] * np.clip(populations, 0.0, 1.0)
        return self._rng.binomial(shots, np.clip(p, 0.0, 1.0))

    @staticmethod
    def _check_shots(shots: int) -> None:
        if isinstance(shots, bool) or not isinstance(shots, int | np.integer) or shots < 1:
            raise ConfigError(f"fake ion lab: shots = {shots!r} is not a positive integer")

    @property
    def _noise(self) -> NDArray:
        """Gauss–Hermite nodes of the quasi-static detuning noise (rad/µs)."""
        return math.sqrt(2.0) / self.hidden.dephasing_time * NODES

    # ------------------------------------------------------------------ carrier experiments

    def square_pulse(self, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int) -> NDArray:
        """From |0⟩, one carrier pulse per point on every ion: duration (µs), programmed Rabi
        frequency and detuning (rad/µs); true Δ = δ + 2·B_0 + noise."""
        self._check_shots(shots)
        t, rabi, delta = np.broadcast_arrays(
            np.asarray(durations, float), np.asarray(rabis, float), np.asarray(detunings, float)
        )
        true_rabi = np.broadcast_to(rabi[:, None] * self.hidden.rabi_scale, (t.size, NODES.size))
        true_delta = delta[:, None] + self.qubit_offset + self._noise[None, :]
        jitter = self.hidden.amplitude_jitter
        if jitter == 0:
            population = driven_population(t[:, None], true_rabi, true_delta) @ WEIGHTS
        else:  # a last axis over the jitter's nodes: (points, detuning nodes, jitter nodes)
            scaled = true_rabi[..., None] * (1 + jitter * NODES)
            detuned = true_delta[..., None]
            population = driven_population(t[:, None, None], scaled, detuned) @ WEIGHTS @ WEIGHTS
        return self._read(np.repeat(population[:, None], self.n_sites, axis=1), shots)

    def _fringes(self, delays: NDArray, detunings: NDArray, shots: int) -> NDArray:
        """Ramsey counts for true per-ion detunings (rad/µs, shape (ions,))."""
        tau = np.asarray(delays, dtype=float)
        contrast = np.exp(-((tau / self.hidden.dephasing_time) ** 2))[:, None]
        return self._read(0.5 * (1 + contrast * np.cos(detunings[None, :] * tau[:, None])), shots)

    def ramsey(self, delays: NDArray, detuning: float, shots: int) -> NDArray:
        """From |0⟩: π/2, free evolution for each delay (µs) at ``detuning`` (rad/µs), π/2."""
        self._check_shots(shots)
        return self._fringes(delays, np.full(self.n_sites, detuning + self.qubit_offset), shots)

    def readout(self, prepared: NDArray, shots: int) -> NDArray:
        """Prepare every ion in |0⟩ or |1⟩ (0 or 1 per point) and read it out."""
        self._check_shots(shots)
        states = np.asarray(prepared, dtype=float)
        if not np.all((states == 0) | (states == 1)):
            raise ConfigError(f"fake ion lab: prepared states {states.tolist()} must be 0 or 1")
        return self._read(np.repeat(states[:, None], self.n_sites, axis=1), shots)

    def local_ramsey(
        self, delays: NDArray, detuning: float, site: int, amplitude: float, shots: int
    ) -> NDArray:
        """Ramsey as :meth:`ramsey` with the AC-Stark field aimed at ion ``site`` at programmed
        amplitude ``amplitude`` (rad/µs) during the free evolution: the qubit frequency of ion i
        moves by C_i,site · g_site · amplitude. ``site = -1``: no local field."""
        self._check_shots(shots)
        n = self.n_sites
        if isinstance(site, bool) or not isinstance(site, int | np.integer) or not -1 <= site < n:
            raise ConfigError(f"fake ion lab: local-field site {site!r} not in [-1, {n - 1}]")
        if not math.isfinite(amplitude):
            raise ConfigError(f"fake ion lab: local-field amplitude {amplitude} is not finite")
        shift = np.zeros(n)
        if site >= 0:
            crosstalk = ions.crosstalk_matrix(self._true, n)
            shift = crosstalk[:, site] * self.hidden.stark_gains[site] * amplitude
        return self._fringes(delays, detuning + self.qubit_offset + shift, shots)

    def local_ramsey_sites(
        self, delays: NDArray, detuning: float, sites: tuple[int, ...], amplitude: float, shots: int
    ) -> NDArray:
        """Ramsey as :meth:`local_ramsey` with the Stark field aimed at every ion of ``sites`` at once:
        the qubit frequency of ion i moves by Σ_k C_ik·g_k·amplitude over the addressed k."""
        self._check_shots(shots)
        n = self.n_sites
        chosen = [int(k) for k in sites]
        if not chosen or len(set(chosen)) != len(chosen) or not all(0 <= k < n for k in chosen):
            raise ConfigError(f"fake ion lab: addressed ions {sites} are not distinct ions of {n}")
        if not math.isfinite(amplitude):
            raise ConfigError(f"fake ion lab: local-field amplitude {amplitude} is not finite")
        crosstalk = ions.crosstalk_matrix(self._true, n)
        shift = crosstalk[:, chosen] @ (np.asarray(self.hidden.stark_gains)[chosen] * amplitude)
        return self._fringes(delays, detuning + self.qubit_offset + shift, shots)

    # ------------------------------------------------------------------ motional experiments

    def sideband_scan(self, detunings: NDArray, rabi: float, duration: float, shots: int) -> NDArray:
        """Blue-sideband spectroscopy of the transverse modes from the motional ground state.

        A probe at programmed detuning δ from the carrier (rad/µs), programmed carrier Rabi frequency
        ``rabi`` and ``duration`` (µs) drives mode m on ion i with Ω_im = η_m |b_im| rabi_scale·rabi;
        resolved-sideband, low-excitation approximation (each ion and mode an independent two-level
        system, carrier and red sideband neglected, P clipped to ≤ 1):
        P_i(↑) = Σ_m Ω_im²/Ω′_im² sin²(Ω′_im t/2), Ω′_im² = Ω_im² + (δ + 2·B_0 + noise − ω_m)²."""
        self._check_shots(shots)
        if not (math.isfinite(duration) and duration > 0 and math.isfinite(rabi) and rabi >= 0):
            raise ConfigError(f"fake ion lab: sideband duration {duration} µs or Rabi {rabi} invalid")
        modes = ions.chain_modes(self._true, self.n_sites)
        delta = np.asarray(detunings, dtype=float)
        coupling = modes.lamb_dicke[None, :] * np.abs(modes.vectors) * self.hidden.rabi_scale * rabi
        # axes: (points, ions, modes, noise nodes)
        off = delta[:, None, None, None] + self.qubit_offset + self._noise - modes.frequencies[:, None]
        rabis, off = np.broadcast_arrays(coupling[None, :, :, None], off)
        population = (driven_population(duration, rabis, off) @ WEIGHTS).sum(axis=2)
        return self._read(np.minimum(population, 1.0), shots)

    def ms_pair(
        self, pair: tuple[int, int], durations: NDArray, rabi: float, beat_note: float, shots: int
    ) -> NDArray:
        """Two-ion Mølmer–Sørensen oscillation: only ions ``pair`` = (i, j) driven at programmed
        Rabi frequency ``rabi`` (rad/µs) with beat note μ = ``beat_note`` (rad/µs from the carrier),
        for each duration (µs). Ideal spin-only H = J_ij X_i X_j with the true
        J_ij = s_J·(rΩ)²·K_ij(μ) of the true trap; from |↓↓⟩, P(↑↑) = sin²(J_ij t), P(↑↓) = P(↓↑) = 0
        (dephasing and phonon admixture neglected). Returns the counts of both ions read '1',
        shape (points, 1), with the readout errors of both ions."""
        self._check_shots(shots)
        i, j = (int(k) for k in pair)
        if not (0 <= i < self.n_sites and 0 <= j < self.n_sites and i != j):
            raise ConfigError(f"fake ion lab: pair {pair!r} is not two distinct ions of {self.n_sites}")
        if not (math.isfinite(rabi) and rabi >= 0):
            raise ConfigError(f"fake ion lab: MS Rabi frequency {rabi} rad/µs is invalid")
        coupling = rabi**2 * ions.coupling_kernel(self._true, self.n_sites, beat_note)[i, j]
        both = np.sin(coupling * np.asarray(durations, dtype=float)) ** 2
        zero = np.zeros_like(both)
        populations = np.column_stack([1 - both, zero, zero, both])  # ↓↓, ↓↑, ↑↓, ↑↑
        eps, eps_prime = self.hidden.false_positive, self.hidden.false_negative
        p11 = pair_read_both(populations, (eps[i], eps[j]), (eps_prime[i], eps_prime[j]))
        return self._rng.binomial(shots, np.clip(p11, 0.0, 1.0))[:, None]
