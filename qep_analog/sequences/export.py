"""One entry point for the hardware files of a schedule: the profile picks the format
(:meth:`~qep_analog.devices.platform.Platform.exporter_for`: Pulser's abstract JSON for a Rydberg array
with a negative or no detuning map, a Braket AHS program for a positive map (Aquila-like), our ion
schedule JSON for an ion chain), or the caller names one of the platform's formats."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qep_analog.devices.platform import EXPORT_SUFFIXES
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.sequences.schedule import Schedule
from qep_analog.storage import atomic_write_text


def exporter_of(profile: DeviceProfile, exporter: str | None = None) -> str:
    """``exporter`` if the profile's platform can write it (else a one-line ConfigError), or the
    profile's own format when it is None or ``"auto"``."""
    platform = profile.platform_spec
    if exporter in (None, "auto"):
        return platform.exporter_for(profile)
    if exporter not in platform.exporters:
        raise ConfigError(
            f"export {exporter!r}: {platform.name} schedules export as {', '.join(platform.exporters)}"
        )
    own = platform.exporter_for(profile)
    if exporter == "pulser" and own == "braket-ahs":
        raise ConfigError(
            f"export 'pulser': device {profile.label!r} has a positive detuning map, which Pulser's DMM "
            "(negative detunings only) cannot play: export it as Braket AHS (braket-ahs)"
        )
    return exporter


#: what each format's files can read, for the messages about the bases they cannot
READOUT_LIMITS = {"braket-ahs": "read in Z only", "pulser": "read all atoms in one basis"}


def unsupported_readout(exporter: str, basis: str) -> bool:
    """Whether ``exporter``'s files cannot carry a readout in ``basis``: Braket AHS reads in Z only;
    a Pulser file turns every atom by one global rotation, so its basis is one letter for all."""
    if exporter == "braket-ahs":
        return bool(set(basis) - {"Z"})
    return exporter == "pulser" and len(set(basis)) > 1


@dataclass(frozen=True)
class HardwareFile:
    """A schedule's hardware file, made and checked in memory; :meth:`write` writes it atomically."""

    path: Path
    text: str

    def write(self) -> Path:
        atomic_write_text(self.path, self.text)
        return self.path


def hardware_file(
    schedule: Schedule, profile: DeviceProfile, stem: str | Path, exporter: str | None = None
) -> HardwareFile:
    """The schedule's hardware file ``STEM`` + the format's suffix (``.pulser.json``, ``.ahs.json``,
    ``.ion.json``) in ``exporter``'s format (default: the profile's), checked but not written: a
    refusal (one line) comes before anything is on disk."""
    chosen = exporter_of(profile, exporter)
    path = Path(f"{stem}{EXPORT_SUFFIXES[chosen]}")
    if chosen == "pulser":
        from qep_analog.sequences.pulser_export import abstract_json, abstract_json_file_text

        text = abstract_json_file_text(abstract_json(schedule, profile, str(path)))
    elif chosen == "braket-ahs":
        from qep_analog.sequences.braket_export import ahs_json_text, to_ahs_program

        text = ahs_json_text(to_ahs_program(schedule, profile))
    else:
        from qep_analog.sequences.ion_export import ion_json_text

        text = ion_json_text(schedule, profile.capabilities.clock, str(path))
    return HardwareFile(path, text)


def export_schedule(
    schedule: Schedule, profile: DeviceProfile, stem: str | Path, exporter: str | None = None
) -> Path:
    """Write the schedule's hardware file (:func:`hardware_file`) atomically; returns its path."""
    return hardware_file(schedule, profile, stem, exporter).write()
