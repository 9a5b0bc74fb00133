"""Calibration records: one measured value of one profile field, with its provenance.

A record never changes a profile by itself: records are appended to a history
(:mod:`qep_analog.calibration.history`) and :func:`qep_analog.calibration.resolve.resolve` derives the
effective profile from the good and valid ones.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

from qep_analog.calibration.versions import schema_version
from qep_analog.devices.record_ids import RecordId as RecordId  # the ids of records, re-exported
from qep_analog.devices.record_ids import is_record_id
from qep_analog.errors import CalibrationError

#: the family of a record document's ``schema``; version 1 (no ``schema`` key, no ``step``) is read
RECORD_FAMILY = "qep-calibration-record"
RECORD_VERSION = 2
RECORD_SCHEMA = f"{RECORD_FAMILY}/{RECORD_VERSION}"
#: characters a run id may not hold: they separate the parts of a record id
ID_SEPARATORS = (":", "#", "@")

Quality = Literal["good", "bad"]
QUALITIES = ("good", "bad")


class FieldSpec(NamedTuple):
    """Where a calibrated field lives in a profile, its unit, whether the profile holds one value per
    site (a tuple filled from per-site records), the platforms that have it, and ``site_field``: the
    per-site profile field that this device-wide field's per-site records fill, if any."""

    section: str
    unit: str
    per_site: bool = False
    platforms: tuple[str, ...] = ("rydberg", "ion")
    site_field: str = ""


#: The profile fields a record may target. ``radial_frequency`` is the first radial trap frequency
#: (the axis of the ion couplings).
FIELDS: dict[str, FieldSpec] = {
    "rabi_scale": FieldSpec("calibration", ""),
    "detuning_offset": FieldSpec("calibration", "rad/µs"),
    "interaction_scale": FieldSpec("calibration", ""),
    "local_gains": FieldSpec("calibration", "", per_site=True),
    "site_detuning_offsets": FieldSpec("calibration", "rad/µs", per_site=True),
    "ramp_duration": FieldSpec("calibration", "µs"),
    "readout_false_positive": FieldSpec("noise", "", site_field="site_false_positive"),
    "readout_false_negative": FieldSpec("noise", "", site_field="site_false_negative"),
    "dephasing_time": FieldSpec("noise", "µs"),
    "amplitude_jitter": FieldSpec("noise", ""),
    "axial_frequency": FieldSpec("capabilities", "rad/µs", platforms=("ion",)),
    "radial_frequency": FieldSpec("capabilities", "rad/µs", platforms=("ion",)),
    "stark_crosstalk": FieldSpec("capabilities", "", platforms=("ion",)),
}


@dataclass(frozen=True, kw_only=True)
class CalibrationRecord:
    """One calibrated value (internal units: µs, rad/µs) and where it came from.

    ``site`` is ``None`` for a device-wide value, else the index of the atom it was measured on
    (per-site values are kept in the history; the profile holds device-wide ones). ``uses`` names the
    records (:attr:`record_id`) of the calibrated values the routine's model took as known;
    ``budget`` the contributions to ``uncertainty`` as (source, standard error) pairs that add in
    quadrature ("statistical" for the fit's own, else the field or record an upstream error came
    from); both are empty in records written before they existed. ``step`` is the 1-based index of
    the runcard step that made the record (None in records written before it existed): with it the
    record's id is unique within its run even when two routines of the run measure one field.
    """

    field: str
    value: float
    uncertainty: float
    unit: str
    timestamp: str
    run_id: str
    routine: str
    quality: Quality
    valid: bool
    device: str
    profile_version: int
    runcard: str
    site: int | None = None
    uses: tuple[str, ...] = ()
    budget: tuple[tuple[str, float], ...] = ()
    step: int | None = None

    def __post_init__(self) -> None:
        where = f"calibration record {self.field!r} of run {self.run_id!r}"
        if not self.run_id or any(c in self.run_id for c in ID_SEPARATORS):
            raise CalibrationError(
                f"{where}: run id is empty or holds one of {' '.join(ID_SEPARATORS)} "
                "(they separate the parts of a record id)"
            )
        if self.step is not None and (isinstance(self.step, bool) or self.step < 1):
            raise CalibrationError(f"{where}: step {self.step!r} is not a positive step index")
        if self.field not in FIELDS:
            raise CalibrationError(f"{where}: unknown field (known: {', '.join(FIELDS)})")
        if self.unit != FIELDS[self.field].unit:
            raise CalibrationError(f"{where}: unit {self.unit!r}, expected {FIELDS[self.field].unit!r}")
        if self.quality not in QUALITIES:
            raise CalibrationError(f"{where}: quality {self.quality!r} is not 'good' or 'bad'")
        if not (math.isfinite(self.value) and math.isfinite(self.uncertainty)):
            raise CalibrationError(f"{where}: value {self.value} ± {self.uncertainty} is not finite")
        if self.uncertainty < 0:
            raise CalibrationError(f"{where}: uncertainty {self.uncertainty} is negative")
        if self.site is not None and self.site < 0:
            raise CalibrationError(f"{where}: site {self.site} is negative")
        for used in self.uses:
            if not is_record_id(used):
                raise CalibrationError(f"{where}: uses {used!r}, which is not a record id")
        if any(not (math.isfinite(error) and error >= 0) for _, error in self.budget):
            raise CalibrationError(f"{where}: error budget {dict(self.budget)} holds a negative error")
        try:
            moment = dt.datetime.fromisoformat(self.timestamp)
        except (TypeError, ValueError):
            moment = None
        if moment is None or moment.tzinfo is None:
            raise CalibrationError(
                f"{where}: timestamp {self.timestamp!r} is not an ISO 8601 time with its time zone"
            )

    @property
    def usable(self) -> bool:
        """Whether this record may change the effective profile: good, valid, and device-wide for a
        device-wide field or per site for a per-site field."""
        spec = FIELDS[self.field]
        placed = self.site is None if not spec.per_site else self.site is not None
        return self.quality == "good" and self.valid and (placed or bool(spec.site_field))

    @property
    def time(self) -> dt.datetime:
        """When the record was made (time-zone aware)."""
        return dt.datetime.fromisoformat(self.timestamp)

    @property
    def record_id(self) -> str:
        """``RUN#STEP:FIELD`` or ``RUN#STEP:FIELD@SITE`` (``RUN:FIELD[@SITE]`` for a record without a
        step, written before records had one): names this record among all records of a device
        (:class:`RecordId` reads it back)."""
        return str(RecordId(self.run_id, self.step, self.field, self.site))

    @property
    def target(self) -> str:
        """The profile field this record sets (a per-site record may fill a per-site field)."""
        spec = FIELDS[self.field]
        return spec.site_field if self.site is not None and spec.site_field else self.field

    def to_document(self) -> dict[str, Any]:
        """The record as a :data:`RECORD_SCHEMA` document (every key present)."""
        document: dict[str, Any] = {"schema": RECORD_SCHEMA, **asdict(self)}
        document["uses"] = list(self.uses)
        document["budget"] = dict(self.budget)
        return document

    @classmethod
    def from_document(cls, document: Any, where: str = "calibration record") -> CalibrationRecord:
        """A record from its JSON form: a :data:`RECORD_SCHEMA` document (every key present), or a
        version-1 one (no ``schema`` key and no ``step``; ``site``, ``uses`` and ``budget`` may be
        missing, as in records written before they existed). A document of a newer version is a
        :class:`~qep_analog.calibration.versions.NewerSchemaError` naming ``where``; any other
        mistake a one-line :class:`CalibrationError`."""
        if not isinstance(document, dict):
            raise CalibrationError(f"{where}: a {type(document).__name__}, not an object")
        names = set(cls.__dataclass_fields__)
        if "schema" in document:
            schema_version(document["schema"], RECORD_FAMILY, RECORD_VERSION, where)
            document = {k: v for k, v in document.items() if k != "schema"}
            optional: tuple[str, ...] = ()
        else:  # version 1
            names.discard("step")
            optional = _OPTIONAL_V1
        unknown = set(document) - names
        missing = names - set(document) - set(optional)
        if unknown or missing:
            raise CalibrationError(
                f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}"
            )
        checks: dict[str, tuple[type, ...]] = {
            "uses": (list,),
            "budget": (dict,),
            "value": (int, float),
            "uncertainty": (int, float),
            "valid": (bool,),
            "profile_version": (int,),
            "site": (int, type(None)),
            "step": (int, type(None)),
        }
        for key, value in document.items():
            types = checks.get(key, (str,))
            bad_bool = isinstance(value, bool) and bool not in types
            if not isinstance(value, types) or bad_bool:
                raise CalibrationError(f"{where}: {key} = {value!r} has the wrong type")
        values = {key: value for key, value in document.items() if key not in ("uses", "budget")}
        values["uses"] = _uses(document.get("uses", []), where)
        values["budget"] = _budget(document.get("budget", {}), where)
        for key in ("value", "uncertainty"):
            try:
                values[key] = float(values[key])
            except OverflowError:  # an integer beyond the range of a float
                raise CalibrationError(f"{where}: {key} is beyond the float range") from None
        return cls(**values)


#: keys a version-1 record document may leave out (written before they existed)
_OPTIONAL_V1 = ("site", "uses", "budget")


def _uses(value: list[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(item, str) for item in value):
        raise CalibrationError(f"{where}: uses = {value!r} is not a list of record ids")
    return tuple(value)


def _budget(value: dict[str, Any], where: str) -> tuple[tuple[str, float], ...]:
    numbers = (int, float)
    if not all(isinstance(v, numbers) and not isinstance(v, bool) for v in value.values()):
        raise CalibrationError(f"{where}: budget = {value!r} is not a mapping to numbers")
    return tuple((str(k), float(v)) for k, v in value.items())
