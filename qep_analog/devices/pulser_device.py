"""Profiles as Pulser devices, and controls as Pulser registers and sequences.

A strict Rydberg profile becomes a :class:`pulser.devices.Device` (a relaxed one a
:class:`pulser.devices.VirtualDevice` without control limits), so that Pulser's own validation of
registers and sequences can be run next to ours. Pulser's detuning map modulator (DMM) takes negative
detunings only: a profile whose map is positive (Aquila-like) converts without a DMM.

A strict profile that names the real device it mirrors (``capabilities.pulser_device``: a device of
``pulser.devices`` such as ``AnalogDevice``, or a device-specs JSON file as a cloud gives it) is built
on that device itself, after a check that none of the profile's limits is looser than the device's
(:func:`check_against_device`); where the device requires a register layout, the register is taken
from the traps of one of its calibrated layouts (:func:`device_register`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import pulser.devices
from numpy.typing import NDArray
from pulser import Pulse, Register, Sequence
from pulser.channels import Rydberg
from pulser.channels.dmm import DMM
from pulser.devices import Device, VirtualDevice
from pulser.register.base_register import BaseRegister
from pulser.register.register_layout import RegisterLayout
from pulser.waveforms import ConstantWaveform

from qep_analog.devices.profile import DeviceProfile
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.errors import ConfigError, ProfileError, StorageError
from qep_analog.storage import read_input_text

RYDBERG_CHANNEL = "rydberg_global"
DMM_CHANNEL = "dmm_0"


def _ns(value_us: float) -> int:
    return round(value_us * 1000)


def _limit(value: float) -> float | None:
    return None if math.isinf(value) else value


def to_pulser_device(profile: DeviceProfile) -> Device | VirtualDevice:
    """The profile as a Pulser device: the real device a strict profile names (checked against the
    profile), else a custom ``Device`` (strict) or ``VirtualDevice`` (relaxed) named after it."""
    if profile.strict and profile.rydberg.pulser_device is not None:
        device = named_device(profile)
        check_against_device(profile, device)
        return device
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


def named_device(profile: DeviceProfile) -> Device:
    """The Pulser device the profile names: a ``Device`` of ``pulser.devices`` by its name, or one
    read from a device-specs JSON file (Pulser's abstract representation; a relative path is taken
    from the profile's folder)."""
    name = profile.rydberg.pulser_device
    assert name is not None
    where = f"device {profile.label!r}: pulser_device {name!r}"
    found = getattr(pulser.devices, name, None)
    if isinstance(found, Device):
        return found
    if not name.endswith(".json"):
        known = sorted(n for n in dir(pulser.devices) if isinstance(getattr(pulser.devices, n), Device))
        raise ProfileError(
            f"{where} is neither a device of pulser.devices ({', '.join(known)}) nor a .json file"
        )
    path = Path(name) if Path(name).is_absolute() else Path(profile.source).parent / name
    try:
        text = read_input_text(path)
    except StorageError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    try:
        return Device.from_abstract_repr(text)
    except Exception as exc:  # Pulser raises several types for a bad specification
        raise ProfileError(f"{where}: {path} is not a Pulser device specification ({exc})") from None


def global_rydberg_channel(device: Device | VirtualDevice) -> tuple[str, Rydberg]:
    """The id and the channel of the device's global Rydberg drive (one-line error if it has none)."""
    for name, channel in device.channels.items():
        if isinstance(channel, Rydberg) and channel.addressing == "Global":
            return name, channel
    raise ProfileError(f"Pulser device {device.name!r}: has no global Rydberg channel")


def _looser(profile: DeviceProfile, device: Device) -> list[str]:
    """Every limit of the profile that is looser than the device's (one phrase each)."""
    caps = profile.rydberg
    name, channel = global_rydberg_channel(device)
    out = []
    if caps.rydberg_level != device.rydberg_level:
        out.append(f"rydberg_level {caps.rydberg_level} differs from its {device.rydberg_level}")
    if caps.dimensions > device.dimensions:
        out.append(f"dimensions {caps.dimensions} exceed its {device.dimensions}")
    pairs = [
        ("max_rabi", caps.max_rabi, channel.max_amp, " rad/µs", f"{name}.max_amp"),
        ("max_abs_detuning", caps.max_abs_detuning, channel.max_abs_detuning, " rad/µs",
         f"{name}.max_abs_detuning"),
        ("max_atoms", caps.max_atoms, device.max_atom_num, "", "max_atom_num"),
        ("max_radius", caps.max_radius, device.max_radial_distance, " µm", "max_radial_distance"),
        ("max_duration", caps.max_duration * 1000, device.max_sequence_duration, " ns",
         "max_sequence_duration"),
    ]  # fmt: skip
    for field, ours, theirs, unit, their_name in pairs:
        if theirs is not None and ours > theirs * (1 + 1e-9):
            out.append(f"{field} {ours:g}{unit} exceeds its {their_name} {theirs:g}{unit}")
    if caps.min_spacing < device.min_atom_distance * (1 - 1e-9):
        out.append(f"min_spacing {caps.min_spacing:g} µm is below its min_atom_distance "
                   f"{device.min_atom_distance:g} µm")  # fmt: skip
    if _ns(caps.min_pulse) < channel.min_duration:
        out.append(
            f"min_pulse {_ns(caps.min_pulse)} ns is below its {name}.min_duration {channel.min_duration} ns"
        )
    if _ns(caps.clock) % channel.clock_period:
        out.append(f"clock {_ns(caps.clock)} ns is not a multiple of its {name}.clock_period "
                   f"{channel.clock_period} ns")  # fmt: skip
    local = caps.local_detuning
    if local is not None:
        dmm = next(iter(device.dmm_channels.values()), None)
        if dmm is None:
            out.append("local_detuning: it has no detuning map modulator (DMM)")
        elif local.sign != "negative":
            out.append(f"local_detuning sign {local.sign!r}: its DMM plays negative detunings only")
        elif dmm.bottom_detuning is not None and -local.max_per_site < dmm.bottom_detuning * (1 + 1e-9):
            out.append(f"local_detuning max_per_site {local.max_per_site:g} rad/µs exceeds its DMM's "
                       f"{-dmm.bottom_detuning:g} rad/µs")  # fmt: skip
    return out


def check_against_device(profile: DeviceProfile, device: Device) -> None:
    """A one-line :class:`ProfileError` naming the first limit of the profile that is looser than the
    device's (exports within the profile's limits must be playable on the device)."""
    looser = _looser(profile, device)
    if looser:
        more = f" (and {len(looser) - 1} more)" if len(looser) > 1 else ""
        raise ProfileError(f"device {profile.label!r} mirrors Pulser's {device.name}: {looser[0]}{more}")


def _nearest_traps(layout: RegisterLayout, positions: NDArray) -> tuple[NDArray, NDArray]:
    """(trap id, distance in µm) of the trap nearest to each position."""
    ids = np.array(sorted(layout.traps_dict))
    traps = np.array([layout.traps_dict[i] for i in ids], dtype=float)
    distances = np.linalg.norm(positions[:, None, :] - traps[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    return ids[nearest], distances[np.arange(len(positions)), nearest]


def device_register(positions: NDArray, device: Device | VirtualDevice) -> BaseRegister:
    """The atoms as a Pulser register, qubit ``qi`` at ``positions[i]`` (our qubit i): free positions,
    or, where the device requires a layout, the traps of its first calibrated layout that holds every
    atom (within 1e-6 µm); atoms off the traps are a one-line error naming the worst atom."""
    qubit_ids = [f"q{i}" for i in range(len(positions))]
    if not device.requires_layout:
        return Register(dict(zip(qubit_ids, map(tuple, positions), strict=True)))
    layouts = device.pre_calibrated_layouts if isinstance(device, Device) else ()
    if not layouts:
        raise ConfigError(
            f"Pulser device {device.name!r}: requires a register layout and has no calibrated one"
        )
    best: tuple[float, int, RegisterLayout] | None = None
    for layout in layouts:
        if layout.dimensionality != positions.shape[1]:
            continue
        ids, distances = _nearest_traps(layout, positions)
        if distances.max() <= 1e-6 and len(set(ids.tolist())) == len(ids):
            return layout.define_register(*map(int, ids), qubit_ids=qubit_ids)
        worst = int(distances.argmax())
        if best is None or distances[worst] < best[0]:
            best = (float(distances[worst]), worst, layout)
    if best is None:
        raise ConfigError(f"Pulser device {device.name!r}: no calibrated layout in {positions.shape[1]}D")
    distance, atom, layout = best
    x = ", ".join(f"{c:g}" for c in positions[atom])
    raise ConfigError(
        f"register on Pulser's {device.name}: atom q{atom} at ({x}) µm is {distance:.3g} µm from the "
        f"nearest trap of its calibrated layout {layout} (the device requires atoms on its traps)"
    )


def constant_sequence(controls: RydbergControls, profile: DeviceProfile, duration_us: float) -> Sequence:
    """A Pulser sequence holding ``controls`` for ``duration_us`` (Pulser validates it as it is built)."""
    device = to_pulser_device(profile)
    register = device_register(np.asarray(controls.positions, dtype=float), device)
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
