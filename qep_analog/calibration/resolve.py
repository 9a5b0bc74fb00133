"""The effective profile: a human-written profile with the latest usable calibration records applied.

Only good and valid records of the profile's device count. A device-wide field takes the value of its
last device-wide record. A per-site field (``local_gains``, ``site_detuning_offsets``, and the per-site
readout errors ``site_false_positive``/``site_false_negative`` from the per-site records of
``readout_false_positive``/``readout_false_negative``) takes the last usable value of each site, and
is applied once sites 0 … n−1 are all known (a runcard with targets updates only its sites). Records made
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

#: per-site profile fields filled by the per-site records of a device-wide field, and their sections
_SITE_FIELDS = {spec.site_field: spec.section for spec in FIELDS.values() if spec.site_field}


def latest_values(profile: DeviceProfile, records: Iterable[CalibrationRecord]) -> dict[str, Any]:
    """Field → value (a float, or a tuple over sites for per-site fields) of the last usable records
    of ``profile``'s device."""
    values: dict[str, Any] = {}
    per_site: dict[str, dict[int, float]] = {}  # field → site → last value
    for record in records:
        if record.device != profile.name or not record.usable:
            continue
        if profile.platform not in FIELDS[record.field].platforms:
            where = f"record {record.field!r} of run {record.run_id!r}"
            raise CalibrationError(f"{where}: not a field of a {profile.platform} device")
        if record.site is None:
            values[record.field] = record.value
        else:
            per_site.setdefault(record.target, {})[record.site] = record.value
    for name, sites in per_site.items():
        if sorted(sites) == list(range(len(sites))):  # sites 0 … n−1 known: the field is complete
            values[name] = tuple(sites[i] for i in range(len(sites)))
    return values


def resolve(profile: DeviceProfile, records: Iterable[CalibrationRecord]) -> DeviceProfile:
    """``profile`` with its calibrated fields replaced by the latest usable records."""
    sections: dict[str, dict[str, Any]] = {"calibration": {}, "noise": {}, "capabilities": {}}
    for name, value in latest_values(profile, records).items():
        section = FIELDS[name].section if name in FIELDS else _SITE_FIELDS[name]
        sections[section][name] = value
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
