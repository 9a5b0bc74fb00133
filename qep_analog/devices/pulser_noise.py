"""A profile's noise section as Pulser's ``NoiseModel`` and back.

Each source of :mod:`qep_analog.devices.noise_sources` is one channel (or one parameter) of Pulser 1.9's
noise model; the profile holds times where Pulser holds rates:

==========================  =========================================  ==============================
profile field               Pulser parameter (noise type)              relation
==========================  =========================================  ==============================
readout_false_positive      ``p_false_pos`` (SPAM)                     equal
readout_false_negative      ``p_false_neg`` (SPAM)                     equal
state_prep_error            ``state_prep_error`` (SPAM)                equal
dephasing_time (T2*)        ``temperature`` (doppler), µK              σ = k_eff·√(k_B T/m) = √2/T2*
markovian_dephasing_time    ``dephasing_rate`` (dephasing)             rate = 1/time
relaxation_time (T1)        ``relaxation_rate`` (relaxation)           rate = 1/T1
depolarizing_time           ``depolarizing_rate`` (depolarizing)       rate = 1/time
amplitude_jitter            ``amp_sigma`` (amplitude)                  equal
laser_waist                 ``laser_waist`` (amplitude), µm            equal (inf: None)
detuning_jitter             ``detuning_sigma`` (detuning), rad/µs      equal
detuning_map_jitter         ``dmm_sigma`` (dmm_sigma)                  equal
==========================  =========================================  ==============================

Pulser's channels that a profile does not carry (and our emulator does not emulate) are
:data:`PULSER_ONLY`: thermal register motion (``register``), high-frequency detuning noise
(``detuning_hf_psd``), effective Lindblad operators and leakage (``eff_noise``, ``leakage``),
dephasing of a hyperfine state (no analog run drives it) and the detuning map's crosstalk
(``dmm_crosstalk``). :func:`noise_model_from_pulser` refuses a model that uses them;
:func:`qep_analog.emulation.noise_routing.emulate_noise_model` runs such a model with pulser-simulation.
"""

from __future__ import annotations

import math
import warnings

import pulser
from pulser.constants import KB, KEFF, MASS

from qep_analog.devices.noise_sources import quasi_static_rms
from qep_analog.devices.profile import NoiseModel
from qep_analog.errors import ConfigError, QEPWarning

#: the channels of Pulser's model our emulator lacks, and what each needs of the model
PULSER_ONLY = (
    "register",
    "detuning_hf",
    "eff_noise",
    "leakage",
    "hyperfine_dephasing",
    "dmm_crosstalk",
)


class PerSiteReadoutWarning(QEPWarning):
    """Per-site readout errors have no place in Pulser's noise model (one rate for all atoms)."""


def doppler_temperature(dephasing_time: float) -> float:
    """The temperature (µK) whose Doppler σ = k_eff·√(k_B T/m) in Pulser is √2/T2* (0 for inf)."""
    sigma = quasi_static_rms(dephasing_time)
    return 1e6 * MASS * (sigma / KEFF) ** 2 / KB


def doppler_dephasing_time(temperature: float) -> float:
    """T2* (µs) = √2/σ of Pulser's Doppler σ at ``temperature`` (µK; inf at 0)."""
    sigma = float(pulser.noise_model._doppler_sigma(temperature * 1e-6))
    return math.sqrt(2.0) / sigma if sigma > 0 else math.inf


def _rate(time: float) -> float:
    return 1.0 / time if math.isfinite(time) else 0.0


def _time(rate: float) -> float:
    return 1.0 / rate if rate > 0 else math.inf


def noise_model_to_pulser(noise: NoiseModel) -> pulser.NoiseModel:
    """The profile's noise section as Pulser's ``NoiseModel`` (the table in the module doc); per-site
    readout errors are left out with a warning (Pulser has one rate for all atoms)."""
    if noise.site_false_positive or noise.site_false_negative:
        warnings.warn(
            PerSiteReadoutWarning(
                "noise: per-site readout errors have no place in Pulser's NoiseModel; it takes the "
                f"device-wide ε = {noise.readout_false_positive:g}, ε′ = {noise.readout_false_negative:g}"
            ),
            stacklevel=2,
        )
    return pulser.NoiseModel(
        p_false_pos=noise.readout_false_positive,
        p_false_neg=noise.readout_false_negative,
        state_prep_error=noise.state_prep_error,
        temperature=doppler_temperature(noise.dephasing_time),
        dephasing_rate=_rate(noise.markovian_dephasing_time),
        relaxation_rate=_rate(noise.relaxation_time),
        depolarizing_rate=_rate(noise.depolarizing_time),
        amp_sigma=noise.amplitude_jitter,
        laser_waist=noise.laser_waist if math.isfinite(noise.laser_waist) else None,
        detuning_sigma=noise.detuning_jitter,
        dmm_sigma=noise.detuning_map_jitter,
    )


def pulser_only_channels(model: pulser.NoiseModel) -> list[str]:
    """The channels of ``model`` that our emulator lacks (names of :data:`PULSER_ONLY`)."""
    types = set(model.noise_types)
    lacking: list[str] = [
        name for name in ("register", "eff_noise", "leakage", "dmm_crosstalk") if name in types
    ]
    if model.detuning_hf_psd:
        lacking.append("detuning_hf")
    if model.hyperfine_dephasing_rate > 0:
        lacking.append("hyperfine_dephasing")
    return [name for name in PULSER_ONLY if name in lacking]


def noise_model_from_pulser(model: pulser.NoiseModel) -> NoiseModel:
    """Pulser's ``NoiseModel`` as a profile's noise section (the table in the module doc); a model
    with a channel our emulator lacks is a one-line :class:`ConfigError` naming it."""
    lacking = pulser_only_channels(model)
    if lacking:
        raise ConfigError(
            f"Pulser noise model: {', '.join(lacking)} have no place in a profile's noise section "
            "(our emulator lacks them); run the model with pulser-simulation (emulate_noise_model)"
        )
    types = set(model.noise_types)
    return NoiseModel(
        readout_false_positive=float(model.p_false_pos),
        readout_false_negative=float(model.p_false_neg),
        state_prep_error=float(model.state_prep_error),
        dephasing_time=doppler_dephasing_time(model.temperature) if "doppler" in types else math.inf,
        markovian_dephasing_time=_time(model.dephasing_rate),
        relaxation_time=_time(model.relaxation_rate),
        depolarizing_time=_time(model.depolarizing_rate),
        amplitude_jitter=float(model.amp_sigma),
        laser_waist=float(model.laser_waist) if model.laser_waist else math.inf,
        detuning_jitter=float(model.detuning_sigma),
        detuning_map_jitter=float(model.dmm_sigma),
    )


def sources_of(model: pulser.NoiseModel) -> frozenset[str]:
    """The names of our sources (:data:`~qep_analog.devices.noise_sources.NOISE_SOURCES`) that
    ``model``'s channels switch on."""
    types = set(model.noise_types)
    on = {
        "detuning": "doppler" in types,
        "dephasing": model.dephasing_rate > 0,
        "relaxation": model.relaxation_rate > 0,
        "depolarizing": model.depolarizing_rate > 0,
        "amplitude_jitter": model.amp_sigma > 0,
        "laser_waist": bool(model.laser_waist),
        "detuning_jitter": model.detuning_sigma > 0,
        "detuning_map_jitter": model.dmm_sigma > 0,
        "state_prep": model.state_prep_error > 0,
        "readout": model.p_false_pos > 0 or model.p_false_neg > 0,
    }
    return frozenset(name for name, active in on.items() if active)
