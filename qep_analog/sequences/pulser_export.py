"""Rydberg schedules as Pulser sequences, and Pulser's abstract JSON (the format Pasqal's cloud takes).

Each control waveform becomes a Pulser ``CustomWaveform`` sampled at the middle of every nanosecond
(Pulser plays one sample per ns), the detuning map a ``DetuningMap`` on the register with the
schedule's (already rounded) weights. Building the sequence runs Pulser's own validation for the
profile's device (:func:`~qep_analog.devices.pulser_device.to_pulser_device`).

An exported sequence carries its readout (:func:`readout_sequence`): for an X or Y readout a resonant
π/2 pulse on the global Rydberg channel after the preparation (:func:`readout_rotation`; the atoms
interact during it, which biases the read: :mod:`qep_analog.emulation.readout_bias` says by how much),
then the measurement in Pulser's ``ground-rydberg`` basis. A global pulse turns every atom alike, so a
readout that mixes bases cannot be exported.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pulser import Pulse, Sequence
from pulser.devices import Device, VirtualDevice
from pulser.waveforms import ConstantWaveform, CustomWaveform
from pulser.waveforms import Waveform as PulserWaveform

from qep_analog.devices.profile import DeviceProfile
from qep_analog.devices.pulser_device import (
    DMM_CHANNEL,
    device_register,
    global_rydberg_channel,
    to_pulser_device,
)
from qep_analog.errors import ConfigError, ConstraintError, StorageError
from qep_analog.memory import require_memory
from qep_analog.sequences.schedule import Schedule
from qep_analog.sequences.waveforms import Waveform
from qep_analog.storage import atomic_write_text

#: the export format this module writes (``Platform.exporter_for``)
EXPORTER = "pulser"
#: Pulser's basis of the ground-Rydberg transition, the one a Rydberg device measures in
MEASUREMENT_BASIS = "ground-rydberg"
#: the channel name the sequences declare for the global Rydberg drive
DRIVE = "rydberg"
#: Pulser's phase φ (rad) of the resonant π/2 pulse that maps a basis onto Z. Pulser drives
#: Ω/2 (cos φ σx − sin φ σy) on its basis (|r⟩, |g⟩), which is Ω/2 (cos φ X + sin φ Y) on ours
#: (|0⟩ = g): φ = −π/2 turns about −Y (|+⟩ → |0⟩, |−⟩ → |1⟩), φ = 0 about X (|+i⟩ → |0⟩,
#: |−i⟩ → |1⟩) — the outcomes of the ideal rotations of ``rotate_to_basis`` (checked against
#: pulser-simulation in the tests)
ROTATION_PHASE = {"X": -math.pi / 2, "Y": 0.0}


@dataclass(frozen=True)
class ReadoutRotation:
    """The basis-rotation pulse of an X or Y readout: a constant resonant pulse of area π/2."""

    basis: str
    #: µs, a multiple of the channel's clock, at least its shortest pulse
    duration: float
    #: rad/µs, at most the channel's largest amplitude
    amplitude: float
    #: rad
    phase: float
    #: µs the atoms wait, undriven but interacting, between the preparation's end and the pulse
    #: (Pulser inserts it where the channel's modulation needs the previous pulse to fall)
    delay: float = 0.0

    def to_document(self) -> dict[str, float | str]:
        return {
            "basis": self.basis,
            "duration_us": self.duration,
            "amplitude_rad_per_us": self.amplitude,
            "phase_rad": self.phase,
            "delay_us": self.delay,
        }


#: bytes per nanosecond of a Pulser sequence (one sample per ns of each waveform) and of its abstract
#: JSON export (tracemalloc: 48 for the sequence, 480 with the export)
NANOSECOND_BYTES = 600


def _pulser_waveform(waveform: Waveform, duration_ns: int) -> PulserWaveform:
    values = waveform(np.arange(duration_ns) * 1e-3 + 0.5e-3)
    if np.ptp(values) == 0:
        return ConstantWaveform(duration_ns, float(values[0]))
    return CustomWaveform(values)


def readout_letter(schedule: Schedule) -> str:
    """The one basis letter of the schedule's readout (a global rotation turns every atom alike)."""
    letters = set(schedule.readout)
    if len(letters) != 1 or not letters <= {"X", "Y", "Z"}:
        raise ConfigError(
            f"schedule {schedule.label!r}: readout {schedule.readout} mixes bases; a Pulser export "
            "rotates every atom alike (one of X, Y, Z for all)"
        )
    return letters.pop()


def readout_rotation(
    schedule: Schedule,
    device: Device | VirtualDevice,
    max_amplitude: float | None = None,
    rabi_scale: float = 1.0,
) -> ReadoutRotation | None:
    """The π/2 pulse that turns the schedule's readout basis onto Z on ``device``'s global Rydberg
    channel (None for a Z readout): at the channel's largest amplitude (or ``max_amplitude``, rad/µs,
    where the channel has no limit), stretched to its clock and shortest pulse. The amplitude is the
    programmed one: the atoms see ``rabi_scale`` times it (the calibration), an area of π/2."""
    letter = readout_letter(schedule)
    if letter == "Z":
        return None
    _, channel = global_rydberg_channel(device)
    limit = channel.max_amp if channel.max_amp is not None else max_amplitude
    if limit is None or not limit > 0:
        raise ConfigError(
            f"schedule {schedule.label!r}: no drive amplitude for the {letter} readout rotation "
            f"(the channel of {device.name!r} has no limit and no amplitude was given)"
        )
    clock = channel.clock_period
    ticks = math.ceil((math.pi / 2) / (limit * rabi_scale) * 1000 / clock - 1e-9)
    duration_ns = max(ticks * clock, math.ceil(channel.min_duration / clock) * clock)
    amplitude = (math.pi / 2) / (duration_ns / 1000 * rabi_scale)
    return ReadoutRotation(letter, duration_ns / 1000, amplitude, ROTATION_PHASE[letter])


def _local_map_played(schedule: Schedule, profile: DeviceProfile) -> bool:
    """Whether the schedule plays its detuning map (weights and a waveform not zero throughout);
    a positive map is a one-line error (Pulser's DMM plays negative detunings only)."""
    local = schedule.controls.get("local_amplitude")
    weights = np.asarray(schedule.static.get("local_weights", []), dtype=float)
    if local is None or not weights.size or weights.max() <= 0 or not np.any(local.values != 0):
        return False
    sign = profile.rydberg.local_detuning
    if sign is not None and sign.sign == "positive":
        raise ConfigError(
            f"schedule {schedule.label!r} on {profile.label!r}: a positive detuning map, which "
            "Pulser's DMM (negative detunings only) cannot play: export it as Braket AHS (braket-ahs)"
        )
    return True


def to_pulser_sequence(schedule: Schedule, profile: DeviceProfile) -> Sequence:
    """The schedule's preparation as a ``pulser.Sequence`` on the profile's device (Pulser validates
    it), not measured: what an emulator evolves."""
    if schedule.platform_spec.exporter != EXPORTER:
        raise ConfigError(f"schedule {schedule.label!r}: only Rydberg schedules compile to Pulser")
    device = to_pulser_device(profile)
    positions = np.asarray(schedule.static["positions"], dtype=float)
    register = device_register(positions, device)
    duration = round(schedule.duration * 1000)
    require_memory(f"Pulser sequence of {schedule.label!r}: {duration} ns", NANOSECOND_BYTES * duration)
    sequence = Sequence(register, device)
    channel, _ = global_rydberg_channel(device)
    sequence.declare_channel(DRIVE, channel)
    amplitude = _pulser_waveform(schedule.controls["rabi"], duration)
    detuning = _pulser_waveform(schedule.controls["detuning"], duration)
    phase = float(schedule.static.get("phase", 0.0))
    sequence.add(Pulse(amplitude, detuning, phase), DRIVE)
    if _local_map_played(schedule, profile):
        weights = np.asarray(schedule.static["local_weights"], dtype=float)
        detuning_map = register.define_detuning_map({f"q{i}": float(w) for i, w in enumerate(weights)})
        sequence.config_detuning_map(detuning_map, DMM_CHANNEL)
        sequence.add_dmm_detuning(
            _pulser_waveform(schedule.controls["local_amplitude"], duration), DMM_CHANNEL
        )
    return sequence


def _rotation_on(schedule: Schedule, profile: DeviceProfile) -> ReadoutRotation | None:
    """The readout rotation for the schedule on the profile's device, before it is scheduled."""
    peak = float(np.max(np.abs(schedule.controls["rabi"].values)))
    limit = min(profile.rydberg.max_rabi, peak or math.inf)
    return readout_rotation(schedule, to_pulser_device(profile), limit, profile.calibration.rabi_scale)


def _measured(schedule: Schedule, profile: DeviceProfile) -> tuple[Sequence, ReadoutRotation | None]:
    """The measured sequence, and its readout rotation as scheduled (with the delay Pulser put
    before it)."""
    sequence = to_pulser_sequence(schedule, profile)
    rotation = _rotation_on(schedule, profile)
    if rotation is not None:
        ticks = round(rotation.duration * 1000)
        prepared = sequence.get_duration()
        limit = sequence.device.max_sequence_duration
        too_long = ConstraintError(
            f"schedule {schedule.label!r} on {profile.label!r}: {prepared} ns and the {rotation.basis} "
            f"readout rotation ({ticks} ns) exceed the limit {limit} ns"
        )
        with warnings.catch_warnings():  # Pulser warns or raises past the device's longest sequence
            warnings.simplefilter("ignore", UserWarning)
            try:
                sequence.add(Pulse.ConstantPulse(ticks, rotation.amplitude, 0.0, rotation.phase), DRIVE)
            except RuntimeError:
                raise too_long from None
        if limit is not None and sequence.get_duration() > limit:
            raise too_long
        delay = sequence.get_duration(DRIVE) - ticks - prepared
        rotation = dataclasses.replace(rotation, delay=delay / 1000)
    sequence.measure(MEASUREMENT_BASIS)
    return sequence, rotation


def schedule_rotation(schedule: Schedule, profile: DeviceProfile) -> ReadoutRotation | None:
    """The readout rotation the schedule's export plays on the profile's device, with the delay
    before it (None for Z)."""
    return _measured(schedule, profile)[1]


def readout_sequence(schedule: Schedule, profile: DeviceProfile) -> Sequence:
    """The schedule as it runs on the device: the preparation, the basis rotation of an X or Y
    readout, and the measurement in the ground-rydberg basis."""
    return _measured(schedule, profile)[0]


def abstract_json(schedule: Schedule, profile: DeviceProfile, where: str) -> str:
    """Pulser's abstract representation of the measured sequence, validated by Pulser on the way out
    and on reading back (a failed round trip is a one-line StorageError naming ``where``)."""
    text: str = readout_sequence(schedule, profile).to_abstract_repr()
    try:
        Sequence.from_abstract_repr(text)
    except Exception as exc:  # Pulser raises several types; any is a failed round trip
        raise StorageError(f"{where}: Pulser cannot read back the exported sequence ({exc})") from None
    return text


def abstract_json_file_text(text: str) -> str:
    """The file text of an abstract representation (indented)."""
    return json.dumps(json.loads(text), indent=1)


def export_abstract_json(schedule: Schedule, profile: DeviceProfile, path: str | Path) -> str:
    """Write Pulser's abstract representation of the measured sequence (:func:`abstract_json`);
    returns the JSON text."""
    text = abstract_json(schedule, profile, str(path))
    atomic_write_text(path, abstract_json_file_text(text))
    return text
