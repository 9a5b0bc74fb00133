"""A seeded fake Rydberg lab: single atoms whose true parameters differ from the nominal profile.

Physics per atom (no interactions: calibration arrays are sparse): H = Ω/2 X − Δ n with
Ω = rabi_scale · Ω_programmed and Δ = δ_programmed + detuning_offset + δ_noise, the sign convention of
:func:`qep_analog.devices.rydberg.realize`. δ_noise is quasi-static Gaussian detuning noise of rms
√2/T2*, so a Ramsey fringe decays as exp(−(τ/T2*)²); it is averaged exactly (Ramsey) or by
Gauss–Hermite quadrature (driven pulses). The π/2 pulses of the Ramsey sequence and the state
preparation of the readout experiment are ideal. Readout flips 0 → 1 with ε_i and 1 → 0 with ε′_i
per site; counts are binomial. ``interaction_scale`` (the C6 scale) is kept for routines to come.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.typing import NDArray

from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError

_NODES, _RAW_WEIGHTS = hermegauss(21)
#: Gauss–Hermite nodes and weights of a standard normal average
_WEIGHTS = _RAW_WEIGHTS / _RAW_WEIGHTS.sum()


@dataclass(frozen=True)
class HiddenRydbergParameters:
    """The true parameters of the fake device (internal units: rad/µs, µs).

    ``site_rabi_scales`` (multiplying ``rabi_scale``) and ``site_detuning_offsets`` (added to
    ``detuning_offset``) give each atom its own drive and light shift; empty means none."""

    rabi_scale: float
    detuning_offset: float
    false_positive: tuple[float, ...]
    false_negative: tuple[float, ...]
    dephasing_time: float
    interaction_scale: float = 1.0
    site_rabi_scales: tuple[float, ...] = ()
    site_detuning_offsets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.false_positive) != len(self.false_negative) or not self.false_positive:
            raise ConfigError("fake lab: false_positive and false_negative need one value per site")
        errors = (*self.false_positive, *self.false_negative)
        if any(not 0 <= e < 1 for e in errors):
            raise ConfigError(f"fake lab: readout errors {errors} must be in [0, 1)")
        if self.rabi_scale <= 0 or self.dephasing_time <= 0:
            raise ConfigError("fake lab: rabi_scale and dephasing_time must be positive")
        for name in ("site_rabi_scales", "site_detuning_offsets"):
            values = getattr(self, name)
            if values and len(values) != len(self.false_positive):
                raise ConfigError(
                    f"fake lab: {name} has {len(values)} values for {len(self.false_positive)} sites"
                )
        if any(x <= 0 for x in self.site_rabi_scales):
            raise ConfigError(f"fake lab: site_rabi_scales {self.site_rabi_scales} must be positive")

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


def default_hidden(profile: DeviceProfile, n_sites: int = 4) -> HiddenRydbergParameters:
    """A mis-calibrated version of ``profile``: Ω 6 % strong, +2π·0.15 MHz detuning offset, T2* at
    70 % of nominal, per-site readout errors around the nominal ones, C6 4 % weak."""
    eps = profile.noise.readout_false_positive
    eps_prime = profile.noise.readout_false_negative
    spread = np.linspace(-1.0, 1.0, n_sites) if n_sites > 1 else np.zeros(1)
    t2 = profile.noise.dephasing_time if math.isfinite(profile.noise.dephasing_time) else 5.0
    return HiddenRydbergParameters(
        rabi_scale=profile.calibration.rabi_scale * 1.06,
        detuning_offset=profile.calibration.detuning_offset + 2 * math.pi * 0.15,
        false_positive=tuple(float(x) for x in eps * (1.2 + 0.3 * spread)),
        false_negative=tuple(float(x) for x in eps_prime * (0.8 + 0.2 * spread)),
        dephasing_time=0.7 * t2,
        interaction_scale=profile.calibration.interaction_scale * 0.96,
    )


def driven_population(
    durations: NDArray | float, rabis: NDArray | float, detunings: NDArray | float
) -> NDArray:
    """P(|1⟩) after a square pulse from |0⟩: Ω²/Ω′² sin²(Ω′t/2), Ω′ = √(Ω² + Δ²)."""
    rabis, detunings = np.asarray(rabis, dtype=float), np.asarray(detunings, dtype=float)
    generalized = np.sqrt(rabis**2 + detunings**2)
    safe = np.where(generalized > 0, generalized, 1.0)
    return np.where(generalized > 0, (rabis / safe) ** 2 * np.sin(safe * durations / 2) ** 2, 0.0)


@dataclass
class FakeRydbergLab:
    """The fake lab: ``hidden`` parameters, ``seed`` for the shot noise (one generator per lab)."""

    hidden: HiddenRydbergParameters
    seed: int = 0
    name: str = "fake-lab"
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    @classmethod
    def for_profile(cls, profile: DeviceProfile, n_sites: int = 4, seed: int = 0) -> FakeRydbergLab:
        return cls(default_hidden(profile, n_sites), seed)

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
        noise = self._noise_rms * _NODES[None, None, :]
        populations = driven_population(t[:, None, None], true_rabi, true_delta + noise) @ _WEIGHTS
        return self._read(populations, shots)

    def ramsey(self, delays: NDArray, detuning: float, shots: int) -> NDArray:
        tau = np.asarray(delays, dtype=float)
        true_delta = detuning + self.hidden.detuning_offsets[None, :]
        contrast = np.exp(-((tau / self.hidden.dephasing_time) ** 2))[:, None]
        return self._read(0.5 * (1 + contrast * np.cos(true_delta * tau[:, None])), shots)

    def readout(self, prepared: NDArray, shots: int) -> NDArray:
        states = np.asarray(prepared, dtype=float)
        if not np.all((states == 0) | (states == 1)):
            raise ConfigError(f"fake lab: prepared states {states.tolist()} must be 0 or 1")
        return self._read(states, shots)
