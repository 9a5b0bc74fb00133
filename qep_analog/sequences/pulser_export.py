"""Rydberg schedules as Pulser sequences, and Pulser's abstract JSON (the format Pasqal's cloud takes).

Each control waveform becomes a Pulser ``CustomWaveform`` sampled at the middle of every nanosecond
(Pulser plays one sample per ns), the detuning map a ``DetuningMap`` on the register with the
schedule's (already rounded) weights. Building the sequence runs Pulser's own validation for the
profile's device.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pulser import Pulse, Sequence
from pulser.waveforms import ConstantWaveform, CustomWaveform
from pulser.waveforms import Waveform as PulserWaveform

from qep_analog.devices.profile import DeviceProfile
from qep_analog.devices.pulser_device import (
    DMM_CHANNEL,
    RYDBERG_CHANNEL,
    to_pulser_device,
    to_pulser_register,
)
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.errors import ConfigError, StorageError
from qep_analog.sequences.schedule import Schedule
from qep_analog.sequences.waveforms import Waveform
from qep_analog.storage import atomic_write_text

#: the export format this module writes (``Platform.exporter_for``)
EXPORTER = "pulser"


def _pulser_waveform(waveform: Waveform, duration_ns: int) -> PulserWaveform:
    values = waveform(np.arange(duration_ns) * 1e-3 + 0.5e-3)
    if np.ptp(values) == 0:
        return ConstantWaveform(duration_ns, float(values[0]))
    return CustomWaveform(values)


def to_pulser_sequence(schedule: Schedule, profile: DeviceProfile) -> Sequence:
    """The schedule as a ``pulser.Sequence`` on the profile's device (Pulser validates it)."""
    if schedule.platform_spec.exporter != EXPORTER:
        raise ConfigError(f"schedule {schedule.label!r}: only Rydberg schedules compile to Pulser")
    positions = np.asarray(schedule.static["positions"], dtype=float)
    register = to_pulser_register(RydbergControls(positions, 0.0, 0.0))
    sequence = Sequence(register, to_pulser_device(profile))
    sequence.declare_channel("rydberg", RYDBERG_CHANNEL)
    duration = round(schedule.duration * 1000)
    amplitude = _pulser_waveform(schedule.controls["rabi"], duration)
    detuning = _pulser_waveform(schedule.controls["detuning"], duration)
    phase = float(schedule.static.get("phase", 0.0))
    sequence.add(Pulse(amplitude, detuning, phase), "rydberg")
    local = schedule.controls.get("local_amplitude")
    weights = np.asarray(schedule.static.get("local_weights", []), dtype=float)
    if local is not None and weights.size and weights.max() > 0:
        sign = profile.rydberg.local_detuning
        if sign is not None and sign.sign == "positive" and np.any(local.values != 0):
            raise ConfigError(
                f"schedule {schedule.label!r} on {profile.label!r}: a positive detuning map, which "
                "Pulser's DMM (negative detunings only) cannot play: export it as Braket AHS (braket-ahs)"
            )
        detuning_map = register.define_detuning_map({f"q{i}": float(w) for i, w in enumerate(weights)})
        sequence.config_detuning_map(detuning_map, DMM_CHANNEL)
        sequence.add_dmm_detuning(_pulser_waveform(local, duration), DMM_CHANNEL)
    return sequence


def export_abstract_json(schedule: Schedule, profile: DeviceProfile, path: str | Path) -> str:
    """Write Pulser's abstract representation of the schedule (validated by Pulser on the way out
    and on reading back); returns the JSON text."""
    sequence = to_pulser_sequence(schedule, profile)
    text = sequence.to_abstract_repr()
    try:
        Sequence.from_abstract_repr(text)
    except Exception as exc:  # Pulser raises several types; any is a failed round trip
        raise StorageError(f"{path}: Pulser cannot read back the exported sequence ({exc})") from None
    atomic_write_text(path, json.dumps(json.loads(text), indent=1))
    return text
