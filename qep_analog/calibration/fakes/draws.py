"""Hidden parameters drawn at random around a shipped profile: fake devices with a lab's plausible
spread of mis-calibration, for checking that calibration works away from the fake labs' defaults and
that its error bars hold (pull tests).

Every value is drawn uniformly in a stated range (:data:`RYDBERG_SPREAD`, :data:`ION_SPREAD`) around
the profile's value; what is not drawn keeps the fake lab's default mis-calibration
(:func:`~qep_analog.calibration.fakes.rydberg_lab.default_hidden`,
:func:`~qep_analog.calibration.fakes.ion_lab.default_hidden`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from qep_analog.calibration.fakes import ion_lab, rydberg_lab
from qep_analog.devices.profile import DeviceProfile

TWO_PI = 2 * math.pi

#: Rydberg arrays: relative half-ranges (``*_rel``), absolute half-ranges (rad/µs) and the readout
#: error range; the per-site offsets add to the device-wide one
RYDBERG_SPREAD: dict[str, float | tuple[float, float]] = {
    "rabi_scale_rel": 0.10,
    "detuning_offset": TWO_PI * 0.2,
    "interaction_scale_rel": 0.10,
    "site_detuning_offsets": 0.4,
    "gains_rel": 0.15,
    "readout": (0.005, 0.08),
}

#: ion chains, what a lab's chain plausibly drifts or is mis-set by between calibrations: the first
#: radial frequency ±2.5 % (a transverse trap of 2π·4.7 MHz moves by ±120 kHz when the rf amplitude
#: is mis-set by ±5 %, ω_x ∝ V_rf), the axial frequency ±5 % (the end-cap voltages, ω_z ∝ √V, set to
#: ±10 %), the field offset B_0 ±2π·5 kHz (the qubit frequency, which moves by 2·B_0, ±2π·10 kHz: a
#: magnetic field off by a few mG), Rabi and coupling scales ±10 % (beam power and pointing), Stark
#: gains ±15 % (addressing-beam alignment per ion), readout errors 0.5–8 % (detection efficiency
#: and the state-dependent fluorescence threshold)
ION_SPREAD: dict[str, float | tuple[float, float]] = {
    "rabi_scale_rel": 0.10,
    "detuning_offset": TWO_PI * 0.005,
    "interaction_scale_rel": 0.10,
    "axial_frequency_rel": 0.05,
    "radial_frequency_rel": 0.025,
    "gains_rel": 0.15,
    "readout": (0.005, 0.08),
}


def _scalar(spread: dict[str, float | tuple[float, float]], key: str) -> float:
    value = spread[key]
    assert isinstance(value, float), key
    return value


def _readout(
    rng: np.random.Generator, spread: dict[str, float | tuple[float, float]], n: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Readout errors ε, ε′ of ``n`` sites, each drawn in the range ``spread["readout"]``."""
    bounds = spread["readout"]
    assert isinstance(bounds, tuple)
    low, high = bounds
    return (
        tuple(float(x) for x in rng.uniform(low, high, n)),
        tuple(float(x) for x in rng.uniform(low, high, n)),
    )


def draw_rydberg_hidden(
    profile: DeviceProfile,
    n_sites: int,
    rng: np.random.Generator,
    spread: dict[str, float | tuple[float, float]] | None = None,
) -> rydberg_lab.HiddenRydbergParameters:
    """A Rydberg device drawn around ``profile`` (:data:`RYDBERG_SPREAD` unless ``spread``)."""
    s = RYDBERG_SPREAD if spread is None else spread
    cal = profile.calibration
    base = rydberg_lab.default_hidden(profile, n_sites)
    eps, eps_prime = _readout(rng, s, n_sites)

    def scaled(value: float, key: str) -> float:
        return value * float(rng.uniform(1 - _scalar(s, key), 1 + _scalar(s, key)))

    gains = [scaled(g, "gains_rel") for g in profile.local_gains(n_sites)]
    site = _scalar(s, "site_detuning_offsets")
    return dataclasses.replace(
        base,
        rabi_scale=scaled(cal.rabi_scale, "rabi_scale_rel"),
        detuning_offset=cal.detuning_offset + float(rng.uniform(-1, 1) * _scalar(s, "detuning_offset")),
        interaction_scale=scaled(cal.interaction_scale, "interaction_scale_rel"),
        site_detuning_offsets=tuple(float(x) for x in rng.uniform(-site, site, n_sites)),
        site_gains=tuple(gains),
        false_positive=eps,
        false_negative=eps_prime,
    )


def draw_ion_hidden(
    profile: DeviceProfile,
    n_sites: int,
    rng: np.random.Generator,
    spread: dict[str, float | tuple[float, float]] | None = None,
) -> ion_lab.HiddenIonParameters:
    """An ion chain drawn around ``profile`` (:data:`ION_SPREAD` unless ``spread``)."""
    s = ION_SPREAD if spread is None else spread
    cal, caps = profile.calibration, profile.ions
    base = ion_lab.default_hidden(profile, n_sites)
    eps, eps_prime = _readout(rng, s, n_sites)

    def scaled(value: float, key: str) -> float:
        return value * float(rng.uniform(1 - _scalar(s, key), 1 + _scalar(s, key)))

    gains = [scaled(g, "gains_rel") for g in profile.local_gains(n_sites)]
    return dataclasses.replace(
        base,
        rabi_scale=scaled(cal.rabi_scale, "rabi_scale_rel"),
        detuning_offset=cal.detuning_offset + float(rng.uniform(-1, 1) * _scalar(s, "detuning_offset")),
        interaction_scale=scaled(cal.interaction_scale, "interaction_scale_rel"),
        axial_frequency=scaled(caps.axial_frequency, "axial_frequency_rel"),
        radial_frequency=scaled(caps.radial_frequencies[0], "radial_frequency_rel"),
        stark_gains=tuple(gains),
        false_positive=eps,
        false_negative=eps_prime,
    )
