"""The noise sources of a profile's noise model, switched on one by one by name.

An emulator with noise applies the sources it is given (all of them for ``noise: true`` or a bare
``--noise``), each only where the profile gives it a value:

- ``detuning``: the profile's T2* (``dephasing_time``) as quasi-static detuning noise — each shot
  (each trajectory) draws a static frequency offset δ_i ~ N(0, σ²) per site, σ = √2/T2*, acting as
  (δ_i/2)·Z_i (on a Rydberg array a detuning offset: −δ_i n_i up to a constant; on an ion chain a
  field offset δ_i/2 on σz). A free coherence then decays on average as exp(−(t/T2*)²), the Ramsey
  contrast the calibration routines fit and the fake labs draw (Doppler shifts, laser phase and
  field noise from shot to shot; Pulser's ``doppler`` noise);
- ``dephasing``: Markovian dephasing at the rate 1/``markovian_dephasing_time`` (Lindblad operators
  √(γ/2)·Z_i, coherences decay as exp(−γt)); absent from the profile: none;
- ``amplitude_jitter``: the drive (Ω, or the ion couplings) scaled by 1 + σ·ξ, ξ ~ N(0, 1), per shot;
- ``readout``: the false positive / false negative rates ε, ε′ flip the read bits.

The profile's ``state_prep_error`` is not emulated (no emulator here removes atoms per shot).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qep_analog.devices.profile import NoiseModel
from qep_analog.errors import ConfigError

#: every source's name and what it does
NOISE_SOURCES: dict[str, str] = {
    "detuning": "quasi-static detuning offsets of rms sqrt(2)/T2* (dephasing_time), per site and shot",
    "dephasing": "Markovian dephasing at 1/markovian_dephasing_time (none when the profile has none)",
    "amplitude_jitter": "drive amplitude scaled by 1 + amplitude_jitter * N(0, 1) per shot",
    "readout": "readout errors readout_false_positive, readout_false_negative",
}
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


def _known() -> str:
    return f"known: {', '.join(NOISE_SOURCES)}, or {ALL}"


@dataclass(frozen=True)
class NoiseRates:
    """The rates of the sources switched on (0 for the others): ``detuning_rms`` σ = √2/T2* (rad/µs),
    ``dephasing_rate`` γ (1/µs), relative ``amplitude_jitter``, readout ``flips`` (ε, ε′)."""

    detuning_rms: float = 0.0
    dephasing_rate: float = 0.0
    amplitude_jitter: float = 0.0
    flips: tuple[float, float] = (0.0, 0.0)

    @property
    def stochastic(self) -> bool:
        """Whether a shot differs from the next (trajectories or draws are needed)."""
        return self.detuning_rms > 0 or self.dephasing_rate > 0 or self.amplitude_jitter > 0

    @classmethod
    def of(cls, noise: NoiseModel, sources: Iterable[str]) -> NoiseRates:
        on = frozenset(sources)
        return cls(
            detuning_rms=quasi_static_rms(noise.dephasing_time) if "detuning" in on else 0.0,
            dephasing_rate=_rate(noise.markovian_dephasing_time) if "dephasing" in on else 0.0,
            amplitude_jitter=noise.amplitude_jitter if "amplitude_jitter" in on else 0.0,
            flips=_flips(noise) if "readout" in on else (0.0, 0.0),
        )


def quasi_static_rms(dephasing_time: float) -> float:
    """σ = √2/T2* (rad/µs) of the quasi-static frequency offsets whose mean free coherence decays as
    exp(−(t/T2*)²) (E[exp(iδt)] = exp(−σ²t²/2)); 0 for T2* = inf."""
    return math.sqrt(2.0) / dephasing_time if math.isfinite(dephasing_time) else 0.0


def _flips(noise: NoiseModel) -> tuple[float, float]:
    return noise.readout_false_positive, noise.readout_false_negative


def _rate(time: float) -> float:
    return 1.0 / time if math.isfinite(time) else 0.0
