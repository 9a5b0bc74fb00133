"""The effective profile: a human-written profile with the latest usable calibration records applied.

Only good and valid records of the profile's device count. A device-wide field takes the value of its
last device-wide record. A per-site field (``local_gains``, ``site_detuning_offsets``, and the per-site
readout errors ``site_false_positive``/``site_false_negative`` from the per-site records of
``readout_false_positive``/``readout_false_negative``) takes the last usable value of each site on
sites 0 … k−1, as far as they are known without a gap (a runcard with targets updates only its
sites; a model on more sites takes the nominal value on the others, with a warning). Every value must
obey the rule of the profile field it sets: a record that breaks it is a one-line error naming it.
Records made against another profile version still apply (they measure the same hardware); the
profile file itself is never written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from qep_analog.calibration.records import FIELDS, CalibrationRecord
from qep_analog.devices.profile import DeviceProfile, section_fields
from qep_analog.errors import CalibrationError
from qep_analog.schema import parse_value

#: per-site profile fields filled by the per-site records of a device-wide field, and their sections
_SITE_FIELDS = {spec.site_field: spec.section for spec in FIELDS.values() if spec.site_field}


def records_in_force(
    profile: DeviceProfile, records: Iterable[CalibrationRecord]
) -> dict[str, tuple[CalibrationRecord, ...]]:
    """Field → the records that set it: the last usable record of a device-wide field, or the last
    usable record of each site 0 … k−1 of a per-site field, the sites known without a gap (a site
    whose last good record is missing ends the field there)."""
    last: dict[str, CalibrationRecord] = {}
    per_site: dict[str, dict[int, CalibrationRecord]] = {}  # field → site → last record
    for record in records:
        if record.device != profile.name or not record.usable:
            continue
        if profile.platform not in FIELDS[record.field].platforms:
            where = f"record {record.field!r} of run {record.run_id!r}"
            raise CalibrationError(f"{where}: not a field of a {profile.platform} device")
        if record.site is None:
            last[record.field] = record
        else:
            per_site.setdefault(record.target, {})[record.site] = record
    in_force: dict[str, tuple[CalibrationRecord, ...]] = {name: (record,) for name, record in last.items()}
    for name, sites in per_site.items():
        known = 0
        while known in sites:  # sites 0 … k−1 without a gap: a model on them uses these values
            known += 1
        if known:
            in_force[name] = tuple(sites[i] for i in range(known))
    return in_force


def field_value(used: tuple[CalibrationRecord, ...]) -> float | tuple[float, ...]:
    """The value the records in force of one field give it: one number, or one per site."""
    return used[0].value if used[0].site is None else tuple(r.value for r in used)


def latest_values(profile: DeviceProfile, records: Iterable[CalibrationRecord]) -> dict[str, Any]:
    """Field → value (a float, or a tuple over sites for per-site fields) of the last usable records
    of ``profile``'s device."""
    return {name: field_value(used) for name, used in records_in_force(profile, records).items()}


def _check_value(
    profile: DeviceProfile, section: str, name: str, value: Any, used: tuple[CalibrationRecord, ...]
) -> None:
    """A record's value obeys the rule of the profile field it sets, or a one-line error naming it."""
    rules = {f.name: f for f in section_fields(profile, section)}
    rule = rules.get(name) or rules.get(f"{name}s")  # radial_frequency sets radial_frequencies[0]
    if rule is None:
        return
    if rule.kind == "pair":
        rule = dataclasses.replace(rule, kind="number")
    ids = used[0].record_id if len(used) == 1 else f"{used[0].record_id} … ({len(used)} records)"
    where = f"calibration record {ids} of device {profile.name!r}"
    parse_value(list(value) if isinstance(value, tuple) else value, rule, where, CalibrationError, name)


def resolve(profile: DeviceProfile, records: Iterable[CalibrationRecord]) -> DeviceProfile:
    """``profile`` with its calibrated fields replaced by the latest usable records, whose ids it
    lists in ``calibration_records``."""
    in_force = records_in_force(profile, records)
    sections: dict[str, dict[str, Any]] = {"calibration": {}, "noise": {}, "capabilities": {}}
    for name, used in in_force.items():
        section = FIELDS[name].section if name in FIELDS else _SITE_FIELDS[name]
        value = field_value(used)
        _check_value(profile, section, name, value, used)
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
        calibration_records=tuple(r.record_id for used in in_force.values() for r in used),
    )
