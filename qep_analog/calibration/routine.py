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
from typing import Any, ClassVar, Generic, TypeVar

from numpy.typing import NDArray

from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.records import FIELDS, CalibrationRecord, Quality
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError
from qep_analog.units import keys_for

RESULT_SCHEMA = "qep-calibration-result/1"
#: ``progress(done, total)``: how far a routine's acquisition is (points or preparations of its scan)
ItemReport = Callable[[int, int], None]


@dataclass(frozen=True)
class Estimate:
    """A fitted value of a profile field (internal units) with its standard error; ``site`` or None."""

    field: str
    value: float
    uncertainty: float
    site: int | None = None

    @property
    def unit(self) -> str:
        return FIELDS[self.field].unit


@dataclass(frozen=True)
class FitResult:
    """What a fit found, how well the model describes the data, and its verdict.

    ``reduced_chi2`` uses binomial standard errors; ``quality`` is "bad" when any of ``criteria``
    fails, with the failures in ``reasons``; ``curves`` holds the fitted model parameters per site
    (for reports and plots).
    """

    routine: str
    estimates: tuple[Estimate, ...]
    reduced_chi2: float
    quality: Quality
    reasons: tuple[str, ...]
    criteria: tuple[str, ...]
    curves: dict[str, list[float]] = dataclasses.field(default_factory=dict)

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
                {**dataclasses.asdict(e), "value": finite(e.value), "uncertainty": finite(e.uncertainty)}
                for e in self.estimates
            ],
            "reduced_chi2": finite(self.reduced_chi2),
            "quality": self.quality,
            "reasons": list(self.reasons),
            "criteria": list(self.criteria),
            "curves": {k: [finite(v) for v in vs] for k, vs in self.curves.items()},
        }

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
            )
            for e in self.estimates
            if math.isfinite(e.value) and math.isfinite(e.uncertainty)
        ]


def parse_parameters(cls: type[Any], document: Any, where: str) -> Any:
    """A Parameters dataclass from a stored mapping with closed, unit-suffixed keys.

    A field with ``metadata={"dimension": ...}`` is written with one of that dimension's suffixes
    (``rabi`` as ``rabi_MHz`` or ``rabi_rad_per_us``); unknown keys raise and list the valid ones.
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise CalibrationError(f"{where}: parameters must be a mapping, not {type(document).__name__}")
    accepted: dict[str, tuple[str, float]] = {}
    for f in dataclasses.fields(cls):
        for key, factor in keys_for(f.name, f.metadata.get("dimension", "dimensionless")).items():
            accepted[key] = (f.name, factor)
    values: dict[str, Any] = {}
    for key, raw in document.items():
        if key not in accepted:
            raise CalibrationError(f"{where}: unknown parameter {key!r} (valid: {', '.join(accepted)})")
        name, factor = accepted[key]
        if name in values:
            raise CalibrationError(f"{where}: parameter {name!r} given twice")
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise CalibrationError(f"{where}: {key} = {raw!r} is not a number")
        if not math.isfinite(raw):
            raise CalibrationError(f"{where}: {key} = {raw!r} is not finite")
        kind = {f.name: f.type for f in dataclasses.fields(cls)}[name]
        if kind in ("int", int):
            if not isinstance(raw, int) or raw < 1:
                raise CalibrationError(f"{where}: {key} = {raw!r} is not a positive integer")
            values[name] = raw
        else:
            values[name] = float(raw) * factor
    try:
        return cls(**values)
    except ValueError as exc:
        raise CalibrationError(f"{where}: {exc}") from None


def stored_parameters(parameters: Any) -> dict[str, Any]:
    """Parameters in their stored form: internal units, keys with the internal unit's suffix."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(parameters):
        dimension = f.metadata.get("dimension", "dimensionless")
        key = next(k for k, factor in keys_for(f.name, dimension).items() if factor == 1.0)
        out[key] = getattr(parameters, f.name)
    return out


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
    runcard's targets number their columns from 0)."""
    result = routine.fit(data)
    if not data.sites:
        return result
    estimates = tuple(
        e if e.site is None else dataclasses.replace(e, site=data.site(e.site)) for e in result.estimates
    )
    return dataclasses.replace(result, estimates=estimates)
