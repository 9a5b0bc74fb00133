"""The noise sources of a profile's noise model, switched on one by one by name.

An emulator with noise applies the sources it is given (all of them for ``noise: true`` or a bare
``--noise``), each only where the profile gives it a value. Each is one channel of Pulser 1.9's
``NoiseModel`` (its name there in brackets; the conversions are in
:mod:`qep_analog.devices.pulser_noise`):

- ``detuning`` [``doppler``]: the profile's T2* (``dephasing_time``) as quasi-static detuning
  noise — each shot (each trajectory) draws a static frequency offset δ_i ~ N(0, σ²) per site,
  σ = √2/T2*, acting as (δ_i/2)·Z_i (on a Rydberg array a detuning offset: −δ_i n_i up to a
  constant; on an ion chain a field offset δ_i/2 on σz). A free coherence then decays on average as
  exp(−(t/T2*)²), the Ramsey contrast the calibration routines fit and the fake labs draw;
- ``dephasing`` [``dephasing``]: Markovian dephasing at the rate γ = 1/``markovian_dephasing_time``
  (Lindblad operators √(γ/2)·Z_i ≡ Pulser's √(2γ)·|r⟩⟨r|: coherences decay as exp(−γt));
- ``relaxation`` [``relaxation``]: decay |1⟩ → |0⟩ at the rate 1/``relaxation_time`` (T1),
  Lindblad operators √(1/T1)·|0⟩⟨1| on every site;
- ``depolarizing`` [``depolarizing``]: at the rate r = 1/``depolarizing_time``, Lindblad operators
  √(r/4)·X_i, √(r/4)·Y_i, √(r/4)·Z_i;
- ``amplitude_jitter`` [``amplitude``, ``amp_sigma``]: the drive Ω scaled by a = max(0, 1 + σ·ξ),
  ξ ~ N(0, 1), per shot (the ``amplitude_jitter`` routine measures σ on the carrier); the ion
  couplings, ∝ Ω_i Ω_j, by a²;
- ``laser_waist`` [``amplitude``, ``laser_waist``]: Ω on the atom at (x, y, z) scaled by
  exp(−(x² + z²)/w²), the Gaussian profile of a beam of waist w along y through the origin;
- ``detuning_jitter`` [``detuning``, ``detuning_sigma``]: one detuning offset δ ~ N(0, σ²) shared
  by all sites, drawn per shot (H gains −δ Σ_i n_i);
- ``detuning_map_jitter`` [``dmm_sigma``]: the detuning map's waveform scaled by max(0, 1 + σ·ξ)
  per shot;
- ``state_prep`` [``SPAM``, ``state_prep_error``]: each atom of a Rydberg array is missing from a
  shot with probability ``state_prep_error``: not driven and not interacting, it stays in |0⟩ (read
  as 0 before the readout errors); ion chains have no such model (the source does nothing there);
- ``readout`` [``SPAM``, ``p_false_pos``, ``p_false_neg``]: the false positive / false negative
  rates ε, ε′ flip the read bits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qep_analog.devices.profile import NoiseModel
from qep_analog.errors import ConfigError

if TYPE_CHECKING:
    from qep_analog.devices.platform import Platform

#: every source's name and what it does
NOISE_SOURCES: dict[str, str] = {
    "detuning": "quasi-static detuning offsets of rms sqrt(2)/T2* (dephasing_time), per site and shot",
    "dephasing": "Markovian dephasing at 1/markovian_dephasing_time (none when the profile has none)",
    "amplitude_jitter": "drive amplitude x (1 + amplitude_jitter * N(0, 1)) per shot (ion J: squared)",
    "readout": "readout errors readout_false_positive, readout_false_negative",
    "relaxation": "decay |1> -> |0> at 1/relaxation_time (T1)",
    "depolarizing": "depolarizing noise at 1/depolarizing_time",
    "laser_waist": "drive amplitude of each atom scaled by the Gaussian profile of the beam (laser_waist)",
    "detuning_jitter": "one detuning offset of rms detuning_jitter shared by all sites, per shot",
    "detuning_map_jitter": "detuning map's waveform scaled by 1 + detuning_map_jitter * N(0, 1) per shot",
    "state_prep": "each atom missing from a shot with probability state_prep_error (Rydberg arrays)",
}
#: the noise model's fields each source reads, with their units (what ``emulate --noise`` lists for
#: the sources that act)
SOURCE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "readout": (
        ("site_false_positive", ""),
        ("site_false_negative", ""),
        ("readout_false_positive", ""),
        ("readout_false_negative", ""),
    ),
    "detuning": (("dephasing_time", "µs"),),
    "dephasing": (("markovian_dephasing_time", "µs"),),
    "amplitude_jitter": (("amplitude_jitter", ""),),
    "relaxation": (("relaxation_time", "µs"),),
    "depolarizing": (("depolarizing_time", "µs"),),
    "laser_waist": (("laser_waist", "µm"),),
    "detuning_jitter": (("detuning_jitter", "rad/µs"),),
    "detuning_map_jitter": (("detuning_map_jitter", ""),),
    "state_prep": (("state_prep_error", ""),),
}
#: the sources that act on tweezer arrays only (missing atoms, the beam's profile, the map's scale):
#: they do nothing on a platform without ``tweezer_noise``
TWEEZER_SOURCES = frozenset({"state_prep", "laser_waist", "detuning_map_jitter"})
#: every source
ALL_SOURCES: frozenset[str] = frozenset(NOISE_SOURCES)
#: what switches every source on (``--noise all``, ``noise: all``)
ALL = "all"


def noise_sources(value: Any, where: str = "noise") -> frozenset[str]:
    """The sources ``value`` switches on: ``True`` or ``"all"`` every one, ``False`` or ``None`` none,
    a comma-separated text or a list of texts those named. Anything else, or an unknown name, is a
    one-line :class:`ConfigError` naming ``where``, the value and the known names."""
    if value is None or value is False:
        return frozenset()
    if value is True:
        return ALL_SOURCES
    if isinstance(value, frozenset | set | list | tuple) and all(isinstance(v, str) for v in value):
        names = [str(v).strip() for v in value]
    elif isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    else:
        raise ConfigError(f"{where}: noise = {value!r} is not true, false or source names ({_known()})")
    if names == [ALL]:
        return ALL_SOURCES
    for name in names:
        if name not in NOISE_SOURCES:
            raise ConfigError(f"{where}: noise = {value!r} names an unknown source {name!r} ({_known()})")
    return frozenset(names)


def platform_sources(sources: Iterable[str], platform: Platform) -> frozenset[str]:
    """The sources of ``sources`` that act on ``platform``: all of them on tweezer arrays, the others
    without :data:`TWEEZER_SOURCES`."""
    on = frozenset(sources)
    return on if platform.tweezer_noise else on - TWEEZER_SOURCES


def _known() -> str:
    return f"known: {', '.join(NOISE_SOURCES)}, or {ALL}"


#: the sources drawn anew for every shot (trajectories average them)
DRAWN_SOURCES = frozenset(
    {"detuning", "amplitude_jitter", "detuning_jitter", "detuning_map_jitter", "state_prep"}
)
#: the sources that make one shot differ from the next: the drawn ones and the Markovian kicks
STOCHASTIC_SOURCES = DRAWN_SOURCES | {"dephasing", "depolarizing"}


@dataclass(frozen=True)
class NoiseRates:
    """The rates of the sources switched on (0, or inf for the waist, for the others):
    ``detuning_rms`` σ = √2/T2* (rad/µs), ``dephasing_rate`` γ (1/µs), relative
    ``amplitude_jitter``, readout ``flips`` (ε, ε′), ``relaxation_rate`` 1/T1 (1/µs),
    ``depolarizing_rate`` (1/µs), ``laser_waist`` (µm), ``detuning_jitter`` (rad/µs, rms of the
    shared offset), relative ``map_jitter``, ``state_prep`` (probability of a missing atom)."""

    detuning_rms: float = 0.0
    dephasing_rate: float = 0.0
    amplitude_jitter: float = 0.0
    flips: tuple[float, float] = (0.0, 0.0)
    relaxation_rate: float = 0.0
    depolarizing_rate: float = 0.0
    laser_waist: float = math.inf
    detuning_jitter: float = 0.0
    map_jitter: float = 0.0
    state_prep: float = 0.0

    @property
    def active(self) -> frozenset[str]:
        """The names of the sources switched on that have a value (a rate, a waist, a flip)."""
        values = {
            "detuning": self.detuning_rms > 0,
            "dephasing": self.dephasing_rate > 0,
            "amplitude_jitter": self.amplitude_jitter > 0,
            "readout": any(f > 0 for f in self.flips),
            "relaxation": self.relaxation_rate > 0,
            "depolarizing": self.depolarizing_rate > 0,
            "laser_waist": math.isfinite(self.laser_waist),
            "detuning_jitter": self.detuning_jitter > 0,
            "detuning_map_jitter": self.map_jitter > 0,
            "state_prep": self.state_prep > 0,
        }
        return frozenset(name for name, on in values.items() if on)

    @property
    def stochastic(self) -> bool:
        """Whether a shot differs from the next (trajectories or draws are needed)."""
        return bool(self.active & STOCHASTIC_SOURCES)

    @property
    def drawn(self) -> bool:
        """Whether some source draws per shot (a Lindblad solution alone does not average them)."""
        return bool(self.active & DRAWN_SOURCES)

    @classmethod
    def of(cls, noise: NoiseModel, sources: Iterable[str]) -> NoiseRates:
        on = frozenset(sources)
        return cls(
            detuning_rms=quasi_static_rms(noise.dephasing_time) if "detuning" in on else 0.0,
            dephasing_rate=_rate(noise.markovian_dephasing_time) if "dephasing" in on else 0.0,
            amplitude_jitter=noise.amplitude_jitter if "amplitude_jitter" in on else 0.0,
            flips=_flips(noise) if "readout" in on else (0.0, 0.0),
            relaxation_rate=_rate(noise.relaxation_time) if "relaxation" in on else 0.0,
            depolarizing_rate=_rate(noise.depolarizing_time) if "depolarizing" in on else 0.0,
            laser_waist=noise.laser_waist if "laser_waist" in on else math.inf,
            detuning_jitter=noise.detuning_jitter if "detuning_jitter" in on else 0.0,
            map_jitter=noise.detuning_map_jitter if "detuning_map_jitter" in on else 0.0,
            state_prep=noise.state_prep_error if "state_prep" in on else 0.0,
        )


def quasi_static_rms(dephasing_time: float) -> float:
    """σ = √2/T2* (rad/µs) of the quasi-static frequency offsets whose mean free coherence decays as
    exp(−(t/T2*)²) (E[exp(iδt)] = exp(−σ²t²/2)); 0 for T2* = inf."""
    return math.sqrt(2.0) / dephasing_time if math.isfinite(dephasing_time) else 0.0


def _flips(noise: NoiseModel) -> tuple[float, float]:
    return noise.readout_false_positive, noise.readout_false_negative


def _rate(time: float) -> float:
    return 1.0 / time if math.isfinite(time) else 0.0
