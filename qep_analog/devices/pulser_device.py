"""Profiles as Pulser devices, and controls as Pulser registers and sequences.

A strict Rydberg profile becomes a :class:`pulser.devices.Device` (a relaxed one a
:class:`pulser.devices.VirtualDevice` without control limits), so that Pulser's own validation of
registers and sequences can be run next to ours. Pulser's detuning map modulator (DMM) takes negative
detunings only: a profile whose map is positive (Aquila-like) converts without a DMM.
"""

from __future__ import annotations

import math
from typing import Literal

from pulser import Pulse, Register, Sequence
from pulser.channels import Rydberg
from pulser.channels.dmm import DMM
from pulser.devices import Device, VirtualDevice
from pulser.waveforms import ConstantWaveform

from qep_analog.devices.profile import DeviceProfile
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.errors import ProfileError

RYDBERG_CHANNEL = "rydberg_global"
DMM_CHANNEL = "dmm_0"


def _ns(value_us: float) -> int:
    return round(value_us * 1000)


def _limit(value: float) -> float | None:
    return None if math.isinf(value) else value


def to_pulser_device(profile: DeviceProfile) -> Device | VirtualDevice:
    """The profile as a Pulser device (strict: ``Device``; relaxed: ``VirtualDevice``)."""
    caps = profile.rydberg
    if not 50 <= caps.rydberg_level <= 100:
        raise ProfileError(
            f"device {profile.label!r}: Pulser knows Rydberg levels 50-100, not {caps.rydberg_level}"
        )
    dimensions: Literal[2, 3] = 3 if caps.dimensions == 3 else 2  # Pulser has no 1D devices
    channel = Rydberg.Global(
        max_abs_detuning=_limit(caps.max_abs_detuning),
        max_amp=_limit(caps.max_rabi),
        clock_period=max(1, _ns(caps.clock)),
        min_duration=max(1, _ns(caps.min_pulse)),
        mod_bandwidth=None,
    )
    dmms: tuple[DMM, ...] = ()
    local = caps.local_detuning
    if local is not None and local.sign in ("negative", "any"):
        dmms = (
            DMM(
                bottom_detuning=_limit(-local.max_per_site),
                total_bottom_detuning=_limit(-local.max_total),
                clock_period=max(1, _ns(caps.clock)),
                min_duration=max(1, _ns(caps.min_pulse)),
                mod_bandwidth=None,
            ),
        )
    if not profile.strict:
        return VirtualDevice(
            name=profile.name,
            dimensions=dimensions,
            rydberg_level=caps.rydberg_level,
            min_atom_distance=caps.min_spacing,
            channel_objects=(channel,),
            dmm_objects=dmms,
            supports_slm_mask=False,
            max_atom_num=None,
            max_radial_distance=None,
            max_sequence_duration=None,
        )
    radius = caps.max_radius
    if math.isinf(radius) or radius != int(radius):
        raise ProfileError(
            f"device {profile.label!r}: Pulser needs an integer maximum radial distance, not {radius} µm"
        )
    return Device(
        name=profile.name,
        dimensions=dimensions,
        rydberg_level=caps.rydberg_level,
        min_atom_distance=caps.min_spacing,
        channel_objects=(channel,),
        dmm_objects=dmms,
        supports_slm_mask=False,
        max_atom_num=caps.max_atoms,
        max_radial_distance=int(radius),
        max_sequence_duration=_ns(caps.max_duration),
        requires_layout=False,
    )


def to_pulser_register(controls: RydbergControls) -> Register:
    """The atoms as a Pulser register, qubit ``qi`` at ``controls.positions[i]`` (our qubit i)."""
    return Register({f"q{i}": tuple(p) for i, p in enumerate(controls.positions)})


def constant_sequence(controls: RydbergControls, profile: DeviceProfile, duration_us: float) -> Sequence:
    """A Pulser sequence holding ``controls`` for ``duration_us`` (Pulser validates it as it is built)."""
    device = to_pulser_device(profile)
    register = to_pulser_register(controls)
    sequence = Sequence(register, device)
    sequence.declare_channel("rydberg", RYDBERG_CHANNEL)
    duration = _ns(duration_us)
    sequence.add(Pulse.ConstantPulse(duration, controls.rabi, controls.detuning, controls.phase), "rydberg")
    weights = controls.local_weights
    if controls.local_amplitude != 0 and len(weights) and weights.max() > 0:
        detuning_map = register.define_detuning_map({f"q{i}": float(w) for i, w in enumerate(weights)})
        sequence.config_detuning_map(detuning_map, DMM_CHANNEL)
        sequence.add_dmm_detuning(ConstantWaveform(duration, controls.local_amplitude), DMM_CHANNEL)
    return sequence
