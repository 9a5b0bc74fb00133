"""The effective profile: a human-written profile with the latest usable calibration records applied.

Only records of the profile's device that are good, valid and device-wide count; of those the last
one in history order wins for each field. Records made against another profile version still apply
(they measure the same hardware); the profile file itself is never written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from qep_analog.calibration.records import FIELDS, CalibrationRecord
from qep_analog.devices.profile import DeviceProfile


def latest_values(profile: DeviceProfile, records: Iterable[CalibrationRecord]) -> dict[str, float]:
    """Field → value of the last usable record of ``profile``'s device."""
    values: dict[str, float] = {}
    for record in records:
        if record.device == profile.name and record.usable:
            values[record.field] = record.value
    return values


def resolve(profile: DeviceProfile, records: Iterable[CalibrationRecord]) -> DeviceProfile:
    """``profile`` with its ``calibration`` and ``noise`` fields replaced by the latest usable records."""
    values = latest_values(profile, records)
    calibration: dict[str, Any] = {k: v for k, v in values.items() if FIELDS[k][0] == "calibration"}
    noise: dict[str, Any] = {k: v for k, v in values.items() if FIELDS[k][0] == "noise"}
    return dataclasses.replace(
        profile,
        calibration=dataclasses.replace(profile.calibration, **calibration),
        noise=dataclasses.replace(profile.noise, **noise),
    )
