"""What is known when a calibration step runs: each calibrated value a routine takes as known, with
its standard error and the id of the record it came from.

A runcard's step sees the profile in force (:func:`qep_analog.calibration.resolve.resolve`), which
holds values only. :class:`Known` adds what the profile does not hold: the errors of those values and
the per-site values of device-wide fields (Ramsey's offset of each site, a record ``detuning_offset``
with a site). Routines centre their scans on these values, put them into their models, propagate
their errors and name their records in ``uses``. A value without a record (the profile file's own)
has error 0 and no record id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from qep_analog.calibration.records import CalibrationRecord, RecordId
from qep_analog.devices.profile import DeviceProfile


@dataclass(frozen=True)
class KnownValue:
    """A value taken as known: its standard error and the ids of the records that gave it (empty: the
    profile file's value, error 0)."""

    value: float
    uncertainty: float = 0.0
    record_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Known:
    """The good and valid records of one device, in the order they were made."""

    records: tuple[CalibrationRecord, ...] = ()

    @classmethod
    def from_records(cls, device: str, records: Iterable[CalibrationRecord]) -> Known:
        return cls(tuple(r for r in records if r.device == device and r.quality == "good" and r.valid))

    def _last(self, field: str, site: int | None) -> tuple[int, CalibrationRecord | None]:
        """(position, record) of the last record of ``field`` at ``site``; (−1, None) if none."""
        for position in range(len(self.records) - 1, -1, -1):
            record = self.records[position]
            if record.field == field and record.site == site:
                return position, record
        return -1, None

    def record(self, field: str, site: int | None = None) -> CalibrationRecord | None:
        """The last good and valid record of ``field`` at ``site`` (None: device-wide)."""
        return self._last(field, site)[1]

    def device_value(self, profile: DeviceProfile, field: str) -> KnownValue:
        """A device-wide field: the profile's value, with the error and id of its last record."""
        value = _profile_value(profile, field)
        record = self.record(field)
        if record is None or not math.isclose(record.value, value, rel_tol=1e-12, abs_tol=1e-12):
            return KnownValue(value)
        return KnownValue(value, record.uncertainty, (record.record_id,))

    def site_offset(self, profile: DeviceProfile, site: int) -> KnownValue:
        """The total detuning offset of ``site``: Ramsey's (or any routine's) per-site record of
        ``detuning_offset`` when it is no older than the device-wide offset and the site's
        ``site_detuning_offsets`` record in force; else the profile's device-wide offset plus its
        per-site one, their errors added in quadrature."""
        position, own = self._last("detuning_offset", site)
        device_position, device_record = self._last("detuning_offset", None)
        site_position, site_record = self._last("site_detuning_offsets", site)
        same_run = device_record is not None and own is not None and own.run_id == device_record.run_id
        if own is not None and (same_run or position > device_position) and position > site_position:
            return KnownValue(own.value, own.uncertainty, (own.record_id,))
        device = self.device_value(profile, "detuning_offset")
        offsets = profile.calibration.site_detuning_offsets
        local = offsets[site] if site < len(offsets) else 0.0
        if site_record is None or site >= len(offsets):
            return KnownValue(device.value + local, device.uncertainty, device.record_ids)
        return KnownValue(
            device.value + local,
            math.hypot(device.uncertainty, site_record.uncertainty),
            (*device.record_ids, site_record.record_id),
        )

    def site_readout(self, profile: DeviceProfile, site: int) -> tuple[KnownValue, KnownValue]:
        """ε and ε′ of ``site``: its per-site records in force, else the device-wide values."""
        out = []
        for field, per_site in (
            ("readout_false_positive", profile.noise.site_false_positive),
            ("readout_false_negative", profile.noise.site_false_negative),
        ):
            record = self.record(field, site)
            if site < len(per_site):
                known = KnownValue(per_site[site])
                if record is not None and math.isclose(record.value, per_site[site], abs_tol=1e-12):
                    known = KnownValue(record.value, record.uncertainty, (record.record_id,))
                out.append(known)
            else:
                out.append(self.device_value(profile, field))
        return out[0], out[1]


def _profile_value(profile: DeviceProfile, field: str) -> float:
    """The value a profile holds for the device-wide calibrated ``field``."""
    if field in ("readout_false_positive", "readout_false_negative", "dephasing_time"):
        return float(getattr(profile.noise, field))
    if field == "axial_frequency":
        return float(profile.ions.axial_frequency)
    if field == "radial_frequency":
        return float(profile.ions.radial_frequencies[0])
    if field == "stark_crosstalk":
        return float(profile.ions.stark_crosstalk)
    return float(getattr(profile.calibration, field))


def record_ids(profile: DeviceProfile, fields: Iterable[str]) -> tuple[str, ...]:
    """The ids of the records in force (``profile.calibration_records``) whose field is any of
    ``fields`` (ids read by :meth:`RecordId.parse <qep_analog.calibration.records.RecordId.parse>`)."""
    wanted = set(fields)
    return tuple(rid for rid in profile.calibration_records if RecordId.parse(rid).field in wanted)
