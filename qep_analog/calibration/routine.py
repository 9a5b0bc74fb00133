"""The shape of a calibration routine: Parameters → acquire → Data → fit → Result → proposed records.

A routine's ``fit`` has no side effects and judges its own quality by criteria it states
(``FitResult.criteria``); a "bad" result proposes records marked bad, which never change the
effective profile.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from numpy.typing import NDArray

from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.known import Known, record_ids
from qep_analog.calibration.records import FIELDS, QUALITIES, CalibrationRecord, Quality
from qep_analog.calibration.versions import schema_version
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError, StorageError
from qep_analog.schema import OMIT, Field, parse_section
from qep_analog.storage import load_json
from qep_analog.units import keys_for

#: the result format written; /1 (the same keys, ``uses`` and ``budget`` optional) is read too
RESULT_FAMILY = "qep-calibration-result"
RESULT_VERSION = 2
RESULT_SCHEMA = f"{RESULT_FAMILY}/{RESULT_VERSION}"
#: ``progress(done, total)``: how far a routine's acquisition is (points or preparations of its scan)
ItemReport = Callable[[int, int], None]


@dataclass(frozen=True)
class Estimate:
    """A fitted value of a profile field (internal units) with its standard error; ``site`` or None.

    ``budget``: the contributions to ``uncertainty`` as (source, standard error) pairs that add in
    quadrature — "statistical" (the fit's own) and one per upstream calibrated value whose error was
    propagated, named by its field (``detuning_offset.0``: of site 0); empty: the statistical error
    only."""

    field: str
    value: float
    uncertainty: float
    site: int | None = None
    budget: tuple[tuple[str, float], ...] = ()

    @property
    def unit(self) -> str:
        return FIELDS[self.field].unit


#: a stored value: null where it was not finite
_MAYBE_NUMBER: dict[str, Any] = {"kind": "number", "nullable": True}
_ESTIMATE_FIELDS = (
    Field("field", "text", choices=tuple(FIELDS)),
    Field("value", **_MAYBE_NUMBER),
    Field("uncertainty", **_MAYBE_NUMBER),
    Field("site", "integer", low=0, nullable=True),
    Field("budget", "mapping", value=Field("error", low=0.0), required=False, default={}),
)
#: a stored :class:`FitResult` (``result.json`` of a calibration step; its version checked first)
_RESULT_FIELDS = (
    Field("schema", "text"),
    Field("routine", "text"),
    Field("estimates", "list", value=Field("estimate", "section", fields=_ESTIMATE_FIELDS)),
    Field("reduced_chi2", **_MAYBE_NUMBER),
    Field("quality", "text", choices=QUALITIES),
    Field("reasons", "texts"),
    Field("criteria", "texts"),
    Field("curves", "mapping", value=Field("curve", "list", value=Field("point", **_MAYBE_NUMBER))),
    Field("uses", "texts", required=False, default=[]),
)


@dataclass(frozen=True)
class FitResult:
    """What a fit found, how well the model describes the data, and its verdict.

    ``reduced_chi2`` uses binomial standard errors; ``quality`` is "bad" when any of ``criteria``
    fails, with the failures in ``reasons``; ``curves`` holds the fitted model parameters per site
    (for reports and plots); ``uses`` the ids of the records whose values the model took as known
    (from the data, :attr:`CalibrationData.uses`).
    """

    routine: str
    estimates: tuple[Estimate, ...]
    reduced_chi2: float
    quality: Quality
    reasons: tuple[str, ...]
    criteria: tuple[str, ...]
    curves: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    uses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """The verdict is the criteria's: "bad" exactly when a criterion failed (has a reason)."""
        if self.quality != ("bad" if self.reasons else "good"):
            raise CalibrationError(
                f"{self.routine}: quality {self.quality!r} with {len(self.reasons)} failed criteria "
                f"({'; '.join(self.reasons) or 'none'}); the verdict must be 'bad' exactly when one fails"
            )

    def estimate(self, field: str, site: int | None = None) -> Estimate:
        for estimate in self.estimates:
            if estimate.field == field and estimate.site == site:
                return estimate
        raise CalibrationError(f"result of {self.routine!r}: no estimate of {field!r} at site {site}")

    def to_document(self) -> dict[str, Any]:
        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "schema": RESULT_SCHEMA,
            "routine": self.routine,
            "estimates": [
                {
                    **dataclasses.asdict(e),
                    "value": finite(e.value),
                    "uncertainty": finite(e.uncertainty),
                    "budget": dict(e.budget),
                }
                for e in self.estimates
            ],
            "reduced_chi2": finite(self.reduced_chi2),
            "quality": self.quality,
            "reasons": list(self.reasons),
            "criteria": list(self.criteria),
            "curves": {k: [finite(v) for v in vs] for k, vs in self.curves.items()},
            "uses": list(self.uses),
        }

    @classmethod
    def from_document(cls, document: Any, source: str = "<result>") -> FitResult:
        """A result from its stored form (:meth:`to_document`; null for a value that was not finite);
        any mistake is a one-line :class:`CalibrationError` naming ``source``, a newer version a
        :class:`~qep_analog.calibration.versions.NewerSchemaError`)."""
        if not isinstance(document, dict):
            raise CalibrationError(f"{source}: a {type(document).__name__}, not a calibration result")
        schema_version(document.get("schema"), RESULT_FAMILY, RESULT_VERSION, source)
        values = parse_section(document, _RESULT_FIELDS, source, CalibrationError)

        def real(value: float | None) -> float:
            return math.nan if value is None else float(value)

        estimates = tuple(
            Estimate(
                e["field"],
                real(e["value"]),
                real(e["uncertainty"]),
                e["site"],
                tuple((str(k), float(v)) for k, v in e["budget"].items()),
            )
            for e in values["estimates"]
        )
        curves = {name: [real(v) for v in curve] for name, curve in values["curves"].items()}
        try:
            return cls(
                values["routine"], estimates, real(values["reduced_chi2"]), values["quality"],
                tuple(values["reasons"]), tuple(values["criteria"]), curves, tuple(values["uses"]),
            )  # fmt: skip
        except CalibrationError as exc:
            raise CalibrationError(f"{source}: {exc}") from None

    def records(
        self, *, device: str, profile_version: int, runcard: str, run_id: str, timestamp: str
    ) -> list[CalibrationRecord]:
        """The records this result proposes (finite estimates only), carrying its quality."""
        return [
            CalibrationRecord(
                field=e.field,
                value=e.value,
                uncertainty=e.uncertainty,
                unit=e.unit,
                timestamp=timestamp,
                run_id=run_id,
                routine=self.routine,
                quality=self.quality,
                valid=True,
                device=device,
                profile_version=profile_version,
                runcard=runcard,
                site=e.site,
                uses=self.uses,
                budget=e.budget,
            )
            for e in self.estimates
            if math.isfinite(e.value) and math.isfinite(e.uncertainty)
        ]


def read_result(path: Path) -> FitResult:
    """The result stored in ``path``, of any version this reader knows (:meth:`FitResult.from_document`;
    an unreadable file is a one-line :class:`CalibrationError`)."""
    try:
        document = load_json(path)
    except StorageError as exc:
        raise CalibrationError(str(exc)) from None
    return FitResult.from_document(document, str(path))


def parameter_fields(cls: type[Any]) -> tuple[Field, ...]:
    """The schema fields of a Parameters dataclass, every key optional (absent: the class's default).

    A parameter states its rule as ``metadata={"rule": Field(...)}`` (kind, dimension and bounds; see
    :mod:`qep_analog.calibration.routines.scans`); an integer without one counts things (≥ 1).
    """
    out = []
    for f in dataclasses.fields(cls):
        rule = f.metadata.get("rule")
        if rule is None:
            if f.type not in ("int", int):
                raise CalibrationError(f"{cls.__name__}.{f.name}: the parameter states no rule")
            rule = Field(f.name, "integer", low=1)
        out.append(dataclasses.replace(rule, name=f.name, required=False, default=OMIT))
    return tuple(out)


def parse_parameters(cls: type[Any], document: Any, where: str) -> Any:
    """A Parameters dataclass from a stored mapping with closed, unit-suffixed keys, each value within
    its parameter's rule (:func:`parameter_fields`); a dimensional parameter is written with one of
    its dimension's suffixes (``rabi`` as ``rabi_MHz`` or ``rabi_rad_per_us``)."""
    values = parse_section(
        {} if document is None else document, parameter_fields(cls), where, CalibrationError
    )
    try:
        return cls(**values)
    except ValueError as exc:
        raise CalibrationError(f"{where}: {exc}") from None


def stored_parameters(parameters: Any) -> dict[str, Any]:
    """Parameters in their stored form: internal units, keys with the internal unit's suffix."""
    out: dict[str, Any] = {}
    for f in parameter_fields(type(parameters)):
        key = next(k for k, factor in keys_for(f.name, f.dimension).items() if factor == 1.0)
        out[key] = getattr(parameters, f.name)
    return out


class RoutineParameters:
    """Base of the routines' Parameters dataclasses: a value object checks every value against its
    parameter's rule when it is made (by a runcard or in code), with the messages of a runcard's."""

    def __post_init__(self) -> None:
        where = type(self).__name__
        parse_section(stored_parameters(self), parameter_fields(type(self)), where, CalibrationError)


P = TypeVar("P")
B = TypeVar("B")


class Routine(ABC, Generic[P, B]):
    """A calibration routine for backends of type ``B`` with parameters of type ``P``."""

    name: ClassVar[str]
    parameters_type: ClassVar[type[Any]]
    #: the platforms whose backends can run it
    platforms: ClassVar[tuple[str, ...]] = ("rydberg", "ion")
    #: whether each data column is one site that can be fitted alone (a runcard's targets select them)
    site_columns: ClassVar[bool] = True
    #: the quality criteria, in words (also stored with every result)
    criteria: ClassVar[tuple[str, ...]]
    #: whether the acquisition chooses its next experiments from what it measured (a rehearsal,
    #: :mod:`qep_analog.calibration.rehearsal`, then checks it up to its first experiment only)
    adaptive: ClassVar[bool] = False
    #: the calibrated profile fields the acquisition or the model takes as known: the ids of their
    #: records in force go to the data's ``uses`` (a routine that names them itself, from
    #: :meth:`acquire_known`, may leave this empty)
    known_fields: ClassVar[tuple[str, ...]] = ()

    #: bytes per data cell (scan point x column) at the peak of acquiring, saving and fitting the
    #: data: the backend's arrays per point, the counts and their JSON text, the fit's residuals
    #: (measured with tracemalloc on the fake labs; see each routine)
    cell_bytes: ClassVar[int] = 256

    def data_shape(self, parameters: P, n_sites: int) -> tuple[int, int]:
        """(rows, columns) of the data :meth:`acquire` returns on a backend of ``n_sites`` sites: by
        default a row per scan point (``parameters.points``) and a column per site."""
        return int(getattr(parameters, "points", 1)), n_sites

    def memory_bytes(self, parameters: P, n_sites: int) -> int:
        """The bytes a run of this routine allocates at its peak on ``n_sites`` sites:
        :attr:`cell_bytes` per cell of its data (:meth:`data_shape`)."""
        rows, columns = self.data_shape(parameters, n_sites)
        return self.cell_bytes * rows * columns

    def parameters(self, document: Any = None) -> P:
        parsed: P = parse_parameters(self.parameters_type, document, f"routine {self.name!r}")
        return parsed

    @abstractmethod
    def acquire(
        self, parameters: P, backend: B, profile: DeviceProfile, progress: ItemReport | None = None
    ) -> CalibrationData:
        """Run the experiment on ``backend``; ``profile`` is the current effective profile. Routines
        that acquire in several backend calls report ``progress(done, total)`` after each (the last
        with done = total); one-call scans report nothing."""

    def acquire_known(
        self,
        parameters: P,
        backend: B,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire` with what is known beyond the profile (the errors and per-site values of
        the records in force, :class:`~qep_analog.calibration.known.Known`); the data name the
        records of :attr:`known_fields` in ``uses``. Routines whose scans or models use the errors
        override it (their :meth:`acquire` then takes the profile's values as exact)."""
        data = self.acquire(parameters, backend, profile, progress)
        if data.uses or not self.known_fields:
            return data
        return dataclasses.replace(data, uses=record_ids(profile, self.known_fields))

    @abstractmethod
    def fit(self, data: CalibrationData) -> FitResult:
        """Fit the model to ``data`` (no side effects) and judge the result by ``criteria``."""

    def curve(self, data: CalibrationData, curves: dict[str, list[float]], x: NDArray) -> NDArray | None:
        """The fitted model at sweep values ``x``, shape ``(len(x), n_sites)``; None if it has none."""
        return None

    def draw(self, ax: Any, data: CalibrationData, result: dict[str, Any]) -> bool:
        """Draw the report panel on the matplotlib axes ``ax`` when the generic one (P(read 1) per
        site against the sweep) does not suit; return whether it drew."""
        return False


def fit_sites(routine: Routine, data: CalibrationData) -> FitResult:
    """``routine.fit(data)`` with per-site estimates labelled by device site (data restricted to a
    runcard's targets number their columns from 0) and the records its model used (``data.uses``)."""
    result = dataclasses.replace(routine.fit(data), uses=data.uses)
    if not data.sites:
        return result
    estimates = tuple(
        e if e.site is None else dataclasses.replace(e, site=data.site(e.site)) for e in result.estimates
    )
    return dataclasses.replace(result, estimates=estimates)
