"""The effective profile: a human-written profile with the latest usable calibration records applied.

Only good and valid records of the profile's device count. A device-wide field takes the value of its
last device-wide record. A per-site field (``local_gains``, ``site_detuning_offsets``) takes the
per-site records of the run that wrote its last one, which must cover sites 0 … n−1. Records made
against another profile version still apply (they measure the same hardware); the profile file itself
is never written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from qep_analog.calibration.records import FIELDS, CalibrationRecord
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError


def latest_values(profile: DeviceProfile, records: Iterable[CalibrationRecord]) -> dict[str, Any]:
    """Field → value (a float, or a tuple over sites for per-site fields) of the last usable records
    of ``profile``'s device."""
    values: dict[str, Any] = {}
    per_site: dict[str, dict[str, dict[int, float]]] = {}  # field → run → site → value
    last_run: dict[str, str] = {}
    for record in records:
        if record.device != profile.name or not record.usable:
            continue
        if profile.platform not in FIELDS[record.field].platforms:
            where = f"record {record.field!r} of run {record.run_id!r}"
            raise CalibrationError(f"{where}: not a field of a {profile.platform} device")
        if record.site is None:
            values[record.field] = record.value
        else:
            per_site.setdefault(record.field, {}).setdefault(record.run_id, {})[record.site] = record.value
            last_run[record.field] = record.run_id
    for name, run in last_run.items():
        sites = per_site[name][run]
        if sorted(sites) != list(range(len(sites))):
            raise CalibrationError(
                f"records {name!r} of run {run!r}: sites {sorted(sites)} are not 0 … {len(sites) - 1}"
            )
        values[name] = tuple(sites[i] for i in range(len(sites)))
    return values


def resolve(profile: DeviceProfile, records: Iterable[CalibrationRecord]) -> DeviceProfile:
    """``profile`` with its calibrated fields replaced by the latest usable records."""
    sections: dict[str, dict[str, Any]] = {"calibration": {}, "noise": {}, "capabilities": {}}
    for name, value in latest_values(profile, records).items():
        sections[FIELDS[name].section][name] = value
    capabilities = sections["capabilities"]
    if "radial_frequency" in capabilities:
        radial = profile.ions.radial_frequencies
        capabilities["radial_frequencies"] = (capabilities.pop("radial_frequency"), radial[1])
    return dataclasses.replace(
        profile,
        calibration=dataclasses.replace(profile.calibration, **sections["calibration"]),
        noise=dataclasses.replace(profile.noise, **sections["noise"]),
        capabilities=dataclasses.replace(profile.capabilities, **capabilities),
    )
