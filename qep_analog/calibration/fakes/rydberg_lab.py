"""A seeded fake Rydberg lab: single atoms whose true parameters differ from the nominal profile.

Physics per atom (no interactions: calibration arrays are sparse): H = Ω/2 X − Δ n with
Ω = rabi_scale · Ω_programmed and Δ = δ_programmed + detuning_offset + δ_noise, the sign convention of
:func:`qep_analog.devices.rydberg.realize`. δ_noise is quasi-static Gaussian detuning noise of rms
√2/T2*, so a Ramsey fringe decays as exp(−(τ/T2*)²); it is averaged exactly (Ramsey) or by
Gauss–Hermite quadrature (driven pulses). The π/2 pulses of the Ramsey sequence and the state
preparation of the readout experiment are ideal. Readout flips 0 → 1 with ε_i and 1 → 0 with ε′_i
per site; counts are binomial. ``amplitude_jitter`` σ_a (default 0) scales the drive of a square pulse
by 1 + σ_a·ξ, ξ ~ N(0, 1) drawn per shot (one laser: the same ξ for every atom), averaged by
Gauss–Hermite quadrature; the π/2 pulses of Ramsey and the pair experiment do not see it.

Schedules (:class:`~qep_analog.calibration.fakes.schedule_lab.RunsSchedulesOnTrueProfile`): prepared
adiabatically, they carry the hidden T2* (quasi-static offsets per atom), amplitude jitter (one draw
per shot for every atom) and ``markovian_dephasing_time`` (default inf: none), through the
emulator's trajectories; read with the per-site readout errors.

Beyond single atoms: :meth:`FakeRydbergLab.local_ramsey` adds a detuning map aimed at one site (gain
g_k, a fraction ``local_crosstalk`` leaking to the nearest neighbours in array order), and
:meth:`FakeRydbergLab.pair_pulse` drives two atoms that interact with V = interaction_scale·C6/R⁶
(exact four-level evolution; each atom has its own quasi-static detuning noise, as from Doppler
shifts, independent of the other's); :meth:`FakeRydbergLab.pair_pulses` drives several such pairs at
once, coupled to each other by their van der Waals interaction in mean field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.fakes.random_walk import RandomWalk, SimulatedDays, walked
from qep_analog.calibration.fakes.schedule_lab import Preparation, RunsSchedulesOnTrueProfile
from qep_analog.calibration.lineshapes import (
    NODES,
    WEIGHTS,
    driven_population,
    pair_populations,
    pair_read_both,
)
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.schema import check_seed


@dataclass(frozen=True)
class HiddenRydbergParameters:
    """The true parameters of the fake device (internal units: rad/µs, µs).

    ``site_rabi_scales`` (multiplying ``rabi_scale``) and ``site_detuning_offsets`` (added to
    ``detuning_offset``) give each atom its own drive and light shift; empty means none.
    ``site_gains`` are the detuning-map gains g_i (empty: 1) and ``local_crosstalk`` the fraction of
    the map detuning aimed at one site that each nearest neighbour (in array order) feels."""

    rabi_scale: float
    detuning_offset: float
    false_positive: tuple[float, ...]
    false_negative: tuple[float, ...]
    dephasing_time: float
    interaction_scale: float = 1.0
    site_rabi_scales: tuple[float, ...] = ()
    site_detuning_offsets: tuple[float, ...] = ()
    site_gains: tuple[float, ...] = ()
    local_crosstalk: float = 0.0
    amplitude_jitter: float = 0.0
    markovian_dephasing_time: float = math.inf

    def __post_init__(self) -> None:
        if len(self.false_positive) != len(self.false_negative) or not self.false_positive:
            raise ConfigError("fake lab: false_positive and false_negative need one value per site")
        errors = (*self.false_positive, *self.false_negative)
        if any(not 0 <= e < 1 for e in errors):
            raise ConfigError(f"fake lab: readout errors {errors} must be in [0, 1)")
        if self.rabi_scale <= 0 or self.dephasing_time <= 0:
            raise ConfigError("fake lab: rabi_scale and dephasing_time must be positive")
        for name in ("site_rabi_scales", "site_detuning_offsets", "site_gains"):
            values = getattr(self, name)
            if values and len(values) != len(self.false_positive):
                raise ConfigError(
                    f"fake lab: {name} has {len(values)} values for {len(self.false_positive)} sites"
                )
        if any(x <= 0 for x in self.site_rabi_scales):
            raise ConfigError(f"fake lab: site_rabi_scales {self.site_rabi_scales} must be positive")
        if any(not g > 0 for g in self.site_gains):
            raise ConfigError(f"fake lab: site_gains {self.site_gains} must be positive")
        if not 0 <= self.local_crosstalk < 1:
            raise ConfigError(f"fake lab: local_crosstalk {self.local_crosstalk} must be in [0, 1)")
        if self.interaction_scale <= 0:
            raise ConfigError(f"fake lab: interaction_scale {self.interaction_scale} must be positive")
        if not 0 <= self.amplitude_jitter < 0.5:
            raise ConfigError(f"fake lab: amplitude_jitter {self.amplitude_jitter} must be in [0, 0.5)")
        if not self.markovian_dephasing_time > 0:
            raise ConfigError(
                f"fake lab: markovian_dephasing_time {self.markovian_dephasing_time} µs must be > 0"
            )

    @property
    def rabi_scales(self) -> NDArray:
        """The true Ω scale of each site."""
        n = len(self.false_positive)
        return self.rabi_scale * (
            np.asarray(self.site_rabi_scales) if self.site_rabi_scales else np.ones(n)
        )

    @property
    def detuning_offsets(self) -> NDArray:
        """The true detuning offset of each site (rad/µs)."""
        n = len(self.false_positive)
        local = np.asarray(self.site_detuning_offsets) if self.site_detuning_offsets else np.zeros(n)
        return self.detuning_offset + local

    @property
    def gains(self) -> NDArray:
        """The true detuning-map gain g_i of each site."""
        n = len(self.false_positive)
        return np.asarray(self.site_gains, dtype=float) if self.site_gains else np.ones(n)

    @property
    def crosstalk_matrix(self) -> NDArray:
        """C_ik: the fraction of the map detuning aimed at site k that site i feels (1 on the
        diagonal, ``local_crosstalk`` for the nearest neighbours in array order)."""
        n = len(self.false_positive)
        return np.eye(n) + self.local_crosstalk * (np.eye(n, k=1) + np.eye(n, k=-1))


#: pairs driven at once: the nearest other pairs whose states a pair's evolution is averaged over
NEAREST_PAIRS = 2
#: the pattern of hidden detuning-map gains, repeated over the sites
GAIN_PATTERN = (1.08, 0.95, 1.03, 0.9)


def default_hidden(profile: DeviceProfile, n_sites: int = 4) -> HiddenRydbergParameters:
    """A mis-calibrated version of ``profile``: Ω 6 % strong, +2π·0.15 MHz detuning offset, T2* at
    70 % of nominal, per-site readout errors around the nominal ones, C6 4 % weak, detuning-map gains
    1.08, 0.95, 1.03, 0.9, … (times the profile's gains when it has one per site) with 2 % leaking to
    each nearest neighbour."""
    eps = profile.noise.readout_false_positive
    eps_prime = profile.noise.readout_false_negative
    spread = np.linspace(-1.0, 1.0, n_sites) if n_sites > 1 else np.zeros(1)
    t2 = profile.noise.dephasing_time if math.isfinite(profile.noise.dephasing_time) else 5.0
    gains = [GAIN_PATTERN[i % len(GAIN_PATTERN)] for i in range(n_sites)]
    known = profile.calibration.local_gains
    nominal_gains = known if len(known) == n_sites else (1.0,) * n_sites
    return HiddenRydbergParameters(
        rabi_scale=profile.calibration.rabi_scale * 1.06,
        detuning_offset=profile.calibration.detuning_offset + 2 * math.pi * 0.15,
        false_positive=tuple(float(x) for x in eps * (1.2 + 0.3 * spread)),
        false_negative=tuple(float(x) for x in eps_prime * (0.8 + 0.2 * spread)),
        dephasing_time=0.7 * t2,
        interaction_scale=profile.calibration.interaction_scale * 0.96,
        site_gains=tuple(float(g) * pattern for g, pattern in zip(nominal_gains, gains, strict=True)),
        local_crosstalk=0.02,
    )


#: the hidden fields that can drift, in the order of their random-walk streams
DRIFT_FIELDS = (
    "rabi_scale",
    "detuning_offset",
    "interaction_scale",
    "site_detuning_offsets",
    "site_gains",
    "false_positive",
    "false_negative",
    "dephasing_time",
)
#: a plausible day-to-day wander (rms change per √day, internal units): Ω scale 1 %, detuning offset
#: 2π·20 kHz, C6 scale 0.5 %, per-site offsets 0.02 rad/µs, map gains 0.5 %, ε 0.2 % and ε′ 0.3 %
#: absolute; T2* held
DEFAULT_DRIFT = {
    "rabi_scale": 0.01,
    "detuning_offset": 2 * math.pi * 0.02,
    "interaction_scale": 0.005,
    "site_detuning_offsets": 0.02,
    "site_gains": 0.005,
    "false_positive": 0.002,
    "false_negative": 0.003,
}
#: where a drifting field is clipped (a scale stays positive, a readout error below ½)
_DRIFT_BOUNDS = {
    "rabi_scale": (1e-3, math.inf),
    "interaction_scale": (1e-3, math.inf),
    "site_gains": (1e-3, math.inf),
    "dephasing_time": (1e-3, math.inf),
    "false_positive": (0.0, 0.49),
    "false_negative": (0.0, 0.49),
}


@dataclass
class FakeRydbergLab(SimulatedDays, RunsSchedulesOnTrueProfile):
    """The fake lab: ``hidden`` parameters, ``seed`` for the shot noise (one generator per lab), and
    the nominal ``profile`` it was made from (None when constructed directly; the pair experiment
    and :meth:`true_profile` need it). ``drift``: a random walk of fields of :data:`DRIFT_FIELDS`
    from ``hidden`` (its day-0 values) as the lab's simulated days pass; ``start``: what the lab's
    clock reads on day 0 (a calibration run then stamps its records with the lab's time)."""

    hidden: HiddenRydbergParameters
    seed: int = 0
    name: str = "fake-lab"
    profile: DeviceProfile | None = None
    preparation: Preparation = "ground"
    drift: RandomWalk | None = None
    start: dt.datetime | None = None
    _rng: np.random.Generator = field(init=False, repr=False)
    _day: float = field(default=0.0, init=False, repr=False)
    _base: HiddenRydbergParameters = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_seed(self.seed, "fake Rydberg lab", ConfigError)
        self._check_clock(DRIFT_FIELDS, "fake Rydberg lab")
        self._rng = np.random.default_rng(self.seed)
        self._base = self.hidden

    @classmethod
    def for_profile(
        cls,
        profile: DeviceProfile,
        n_sites: int = 4,
        seed: int = 0,
        *,
        drift: RandomWalk | None = None,
        start: dt.datetime | None = None,
    ) -> FakeRydbergLab:
        return cls(default_hidden(profile, n_sites), seed, profile=profile, drift=drift, start=start)

    @staticmethod
    def default_drift(seed: int = 0) -> RandomWalk:
        """The lab's stated day-to-day wander (:data:`DEFAULT_DRIFT`), seeded by ``seed``."""
        return RandomWalk(DEFAULT_DRIFT, seed)

    def _drift_to(self, day: float) -> None:
        assert self.drift is not None
        base = self._base
        values: dict[str, float | tuple[float, ...]] = {name: getattr(base, name) for name in DRIFT_FIELDS}
        values["site_gains"] = tuple(float(g) for g in base.gains)  # empty: 1 on every site
        moved = walked(values, self.drift, DRIFT_FIELDS, day, self.n_sites, _DRIFT_BOUNDS)
        self.hidden = dataclasses.replace(base, **moved)  # type: ignore[arg-type]

    def _nominal(self, what: str) -> DeviceProfile:
        if self.profile is None:
            raise ConfigError(f"fake lab {self.name!r}: {what} needs the nominal profile (use for_profile)")
        return self.profile

    def true_profile(self) -> DeviceProfile:
        """The nominal profile with the hidden calibration (rabi_scale, detuning_offset,
        interaction_scale, local_gains, site_detuning_offsets) and noise (mean readout errors, T2*,
        amplitude jitter, Markovian dephasing time) applied. Per-site Ω scales and the map's leakage
        to neighbours have no profile field: the many-body experiments (:meth:`run_schedules`) do not
        see them."""
        profile = self._nominal("true_profile")
        h = self.hidden
        calibration = dataclasses.replace(
            profile.calibration,
            rabi_scale=h.rabi_scale,
            detuning_offset=h.detuning_offset,
            interaction_scale=h.interaction_scale,
            local_gains=tuple(float(g) for g in h.site_gains),
            site_detuning_offsets=tuple(float(b) for b in h.site_detuning_offsets),
        )
        noise = dataclasses.replace(
            profile.noise,
            readout_false_positive=float(np.mean(h.false_positive)),
            readout_false_negative=float(np.mean(h.false_negative)),
            dephasing_time=h.dephasing_time,
            amplitude_jitter=h.amplitude_jitter,
            markovian_dephasing_time=h.markovian_dephasing_time,
        )
        return dataclasses.replace(profile, calibration=calibration, noise=noise)

    @property
    def n_sites(self) -> int:
        return len(self.hidden.false_positive)

    @property
    def _noise_rms(self) -> float:
        return math.sqrt(2.0) / self.hidden.dephasing_time

    def _read(self, populations: NDArray, shots: int) -> NDArray:
        """Counts of '1' per point and site for P(|1⟩) ``populations``, (points,) or (points, sites)."""
        eps = np.asarray(self.hidden.false_positive)
        eps_prime = np.asarray(self.hidden.false_negative)
        populations = np.clip(populations, 0, 1)
        if populations.ndim == 1:
            populations = populations[:, None]
        p = eps[None, :] + (1 - eps - eps_prime)[None, :] * populations
        return self._rng.binomial(shots, np.clip(p, 0.0, 1.0))

    def square_pulse(self, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int) -> NDArray:
        t, rabi, delta = np.broadcast_arrays(
            np.asarray(durations, float), np.asarray(rabis, float), np.asarray(detunings, float)
        )
        true_rabi = rabi[:, None, None] * self.hidden.rabi_scales[None, :, None]  # (points, sites, 1)
        true_delta = delta[:, None, None] + self.hidden.detuning_offsets[None, :, None]
        noise = self._noise_rms * NODES[None, None, :]
        jitter = self.hidden.amplitude_jitter
        if jitter == 0:
            populations = driven_population(t[:, None, None], true_rabi, true_delta + noise) @ WEIGHTS
        else:  # a last axis over the jitter's nodes: (points, sites, detuning nodes, jitter nodes)
            scaled = true_rabi[..., None] * (1 + jitter * NODES)
            detuned = (true_delta + noise)[..., None]
            populations = driven_population(t[:, None, None, None], scaled, detuned) @ WEIGHTS @ WEIGHTS
        return self._read(populations, shots)

    def ramsey(self, delays: NDArray, detuning: float, shots: int) -> NDArray:
        tau = np.asarray(delays, dtype=float)
        true_delta = detuning + self.hidden.detuning_offsets[None, :]
        contrast = np.exp(-((tau / self.hidden.dephasing_time) ** 2))[:, None]
        return self._read(0.5 * (1 + contrast * np.cos(true_delta * tau[:, None])), shots)

    def local_ramsey(
        self, delays: NDArray, detuning: float, site: int, amplitude: float, shots: int
    ) -> NDArray:
        """Ramsey as :meth:`ramsey` with the detuning map aimed at ``site`` (weight 1 there, 0
        elsewhere) at programmed ``amplitude`` Δ (rad/µs) during the free evolution: atom i's
        detuning moves by C_i,site·g_site·Δ. ``site`` = −1: no local field."""
        if not -1 <= site < self.n_sites:
            raise ConfigError(f"fake lab: addressed site {site} not in [-1, {self.n_sites - 1}]")
        tau = np.asarray(delays, dtype=float)
        shift = (
            np.zeros(self.n_sites)
            if site < 0
            else self.hidden.crosstalk_matrix[:, site] * self.hidden.gains[site] * amplitude
        )
        true_delta = detuning + self.hidden.detuning_offsets + shift
        contrast = np.exp(-((tau / self.hidden.dephasing_time) ** 2))[:, None]
        return self._read(0.5 * (1 + contrast * np.cos(true_delta[None, :] * tau[:, None])), shots)

    def local_ramsey_sites(
        self, delays: NDArray, detuning: float, sites: tuple[int, ...], amplitude: float, shots: int
    ) -> NDArray:
        """Ramsey as :meth:`local_ramsey` with the detuning map aimed at every site of ``sites`` at
        once (weight 1 each): atom i's detuning moves by Σ_k C_ik·g_k·Δ over the addressed k."""
        chosen = list(sites)
        if not chosen or len(set(chosen)) != len(chosen) or not all(0 <= k < self.n_sites for k in chosen):
            raise ConfigError(f"fake lab: addressed sites {sites} are not distinct sites of {self.n_sites}")
        tau = np.asarray(delays, dtype=float)
        shift = self.hidden.crosstalk_matrix[:, chosen] @ (self.hidden.gains[chosen] * amplitude)
        true_delta = detuning + self.hidden.detuning_offsets + shift
        contrast = np.exp(-((tau / self.hidden.dephasing_time) ** 2))[:, None]
        return self._read(0.5 * (1 + contrast * np.cos(true_delta[None, :] * tau[:, None])), shots)

    def pair_pulse(
        self, distance: float, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray:
        """Atoms 0 and 1 at ``distance`` (µm), one square pulse per point from |gg⟩ (programmed
        durations, Ω, δ): counts of both atoms read '1', shape ``(points, 1)``.

        V = interaction_scale·C6/R⁶ (C6 of the nominal profile); each atom has its own true Ω, detuning
        offset, independent quasi-static detuning noise (rms √2/T2*) and readout errors."""
        profile = self._nominal("pair_pulse")
        if self.n_sites < 2:
            raise ConfigError(f"fake lab {self.name!r}: pair_pulse needs 2 sites, it has {self.n_sites}")
        if not distance > 0:
            raise ConfigError(f"fake lab: pair distance {distance} µm is not positive")
        t, rabi, delta = np.broadcast_arrays(
            np.asarray(durations, float), np.asarray(rabis, float), np.asarray(detunings, float)
        )
        t, rabi, delta = t.ravel(), rabi.ravel(), delta.ravel()
        interaction = self.hidden.interaction_scale * profile.rydberg.c6 / distance**6
        populations = pair_populations(
            t,
            rabi[:, None] * self.hidden.rabi_scales[None, :2],
            delta[:, None] + self.hidden.detuning_offsets[None, :2],
            interaction,
            self._noise_rms,
        )
        both = pair_read_both(populations, self.hidden.false_positive[:2], self.hidden.false_negative[:2])
        return self._rng.binomial(shots, np.clip(both, 0.0, 1.0))[:, None]

    def pair_pulses(
        self, positions: NDArray, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray:
        """Disjoint pairs driven by the same pulses at once: atoms 2k and 2k + 1 (pair k) at rows 2k
        and 2k + 1 of ``positions`` (µm, shape ``(2·pairs, 2)``). Counts of both atoms of each pair
        read '1' (marginalised over the other pairs), shape ``(points, pairs)``; the model is
        :meth:`pair_probabilities`."""
        both = self.pair_probabilities(positions, durations, rabis, detunings)
        return self._rng.binomial(shots, np.clip(both, 0.0, 1.0))

    def pair_probabilities(
        self, positions: NDArray, durations: NDArray, rabis: NDArray, detunings: NDArray
    ) -> NDArray:
        """P(both atoms of pair k read '1') of :meth:`pair_pulses`, shape ``(points, pairs)``.

        Each pair evolves exactly as in :meth:`pair_pulse` with V = interaction_scale·C6/R⁶ at its own
        distance R; the other pairs shift its atoms' detunings by −Σ_b V_ab n_b. The
        :data:`NEAREST_PAIRS` nearest other pairs enter by their state: pair k's evolution is averaged
        over their states gg, gr, rg, rr, weighted by the probabilities of the uncoupled evolution
        (each pair's line is then a mixture of shifted lines, as when a neighbour is in |rr⟩ or not);
        the farther pairs in mean field (n_b → ⟨n_b⟩). The back-action of pair k on its neighbours is
        left out (second order in the coupling between pairs)."""
        profile = self._nominal("pair_pulses")
        x = np.asarray(positions, dtype=float)
        count = len(x) // 2
        if x.ndim != 2 or x.shape[1] != 2 or len(x) % 2 or not 1 <= count <= self.n_sites // 2:
            raise ConfigError(
                f"fake lab {self.name!r}: positions of shape {x.shape}, expected (2·pairs, 2) with at "
                f"most {self.n_sites // 2} pairs"
            )
        gaps = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
        if not np.all(gaps[~np.eye(len(x), dtype=bool)] > 0):
            raise ConfigError(f"fake lab {self.name!r}: two atoms of the pairs at the same position")
        t, rabi, delta = np.broadcast_arrays(
            np.asarray(durations, float), np.asarray(rabis, float), np.asarray(detunings, float)
        )
        t, rabi, delta = t.ravel(), rabi.ravel(), delta.ravel()
        c6 = self.hidden.interaction_scale * profile.rydberg.c6
        coupling = c6 / np.where(gaps > 0, gaps, np.inf) ** 6
        scales = self.hidden.rabi_scales[: len(x)]
        offsets = self.hidden.detuning_offsets[: len(x)]

        def evolve(k: int, shift: NDArray) -> NDArray:
            atoms = slice(2 * k, 2 * k + 2)
            return pair_populations(
                t,
                rabi[:, None] * scales[None, atoms],
                delta[:, None] + offsets[None, atoms] - shift,
                c6 / gaps[2 * k, 2 * k + 1] ** 6,
                self._noise_rms,
            )

        uncoupled = [evolve(k, np.zeros((t.size, 2))) for k in range(count)]
        rydberg = np.column_stack(
            [column for p in uncoupled for column in (p[:, 2] + p[:, 3], p[:, 1] + p[:, 3])]
        )
        excited = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])  # atoms 2m, 2m + 1 in gg, gr, rg, rr
        eps, eps_prime = self.hidden.false_positive, self.hidden.false_negative
        out = []
        for k in range(count):
            mine = slice(2 * k, 2 * k + 2)
            others = sorted(
                (m for m in range(count) if m != k),
                key=lambda m: float(gaps[mine, 2 * m : 2 * m + 2].min()),
            )
            near, far = others[:NEAREST_PAIRS], others[NEAREST_PAIRS:]
            far_atoms = [a for m in far for a in (2 * m, 2 * m + 1)]
            mean_field = rydberg[:, far_atoms] @ coupling[far_atoms, mine]  # (points, 2)
            populations = np.zeros((t.size, 4))
            for states in itertools.product(range(4), repeat=len(near)):
                weight = np.ones(t.size)
                shift = mean_field.copy()
                for m, state in zip(near, states, strict=True):
                    weight = weight * uncoupled[m][:, state]
                    shift = shift + excited[state] @ coupling[2 * m : 2 * m + 2, mine]
                populations += weight[:, None] * evolve(k, shift)
            out.append(pair_read_both(populations, eps[mine], eps_prime[mine]))
        return np.column_stack(out)

    def readout(self, prepared: NDArray, shots: int) -> NDArray:
        states = np.asarray(prepared, dtype=float)
        if not np.all((states == 0) | (states == 1)):
            raise ConfigError(f"fake lab: prepared states {states.tolist()} must be 0 or 1")
        return self._read(states, shots)
