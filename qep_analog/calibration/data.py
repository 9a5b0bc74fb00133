"""Acquired calibration data (``qep-calibration-data/2``): what a backend returned, before any fit.

Data are written to the run directory before fitting, so that every fit can be re-run offline
(:func:`qep_analog.calibration.runner.refit`). Version 2 holds every key (``context``, ``sites`` and
``uses`` included); version-1 files, which may lack those three, are read as they are; a file of a
newer version is refused in one line naming it and its version.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.versions import schema_version
from qep_analog.errors import CalibrationError, StorageError
from qep_analog.schema import shown
from qep_analog.storage import load_json, write_json
from qep_analog.units import INTERNAL_UNIT

DATA_FAMILY = "qep-calibration-data"
DATA_VERSION = 2
SCHEMA = f"{DATA_FAMILY}/{DATA_VERSION}"
_KEYS = ("schema", "routine", "parameters", "sweep_name", "sweep_unit", "sweep", "shots", "counts")
#: keys a version-1 file may leave out (version 2 holds them all)
_OPTIONAL_V1 = ("context", "sites", "uses")


@dataclass(frozen=True, kw_only=True, eq=False)
class CalibrationData:
    """Counts of '1' (``counts[point, site]``) out of ``shots`` at each point of a one-dimensional sweep.

    ``parameters`` are the routine's parameters in their stored (unit-suffixed) form; ``context``
    holds numbers the fit needs besides them, in internal units (e.g. the programmed Rabi frequency).
    ``sites`` names the device site of each column when the data were restricted to a runcard's
    targets (empty: column k is site k). ``uses`` names the records (their ids,
    :class:`~qep_analog.calibration.records.RecordId`) of the calibrated values the acquisition and
    the model took as known (their values and errors are in ``context``).
    """

    routine: str
    parameters: dict[str, Any]
    sweep_name: str
    sweep_unit: str
    sweep: NDArray
    shots: int
    counts: NDArray
    context: dict[str, float] = field(default_factory=dict)
    sites: tuple[int, ...] = ()
    uses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"calibration data of {self.routine!r}"
        sweep = np.asarray(self.sweep, dtype=float)
        counts = np.asarray(self.counts)
        if sweep.ndim != 1 or not np.all(np.isfinite(sweep)):
            raise CalibrationError(f"{where}: the sweep is not a finite list of numbers")
        if counts.ndim != 2 or counts.shape[0] != sweep.size or counts.shape[1] < 1:
            raise CalibrationError(
                f"{where}: counts of shape {counts.shape}, expected ({sweep.size}, n_sites)"
            )
        if not np.issubdtype(counts.dtype, np.integer):
            raise CalibrationError(f"{where}: counts are not integers")
        if isinstance(self.shots, bool) or not isinstance(self.shots, int | np.integer) or self.shots < 1:
            raise CalibrationError(f"{where}: shots = {self.shots!r} is not a positive integer")
        if counts.min() < 0 or counts.max() > self.shots:
            raise CalibrationError(f"{where}: counts outside [0, {self.shots}]")
        if self.sweep_unit not in INTERNAL_UNIT.values():
            raise CalibrationError(
                f"{where}: sweep unit {shown(self.sweep_unit)} is not an internal unit "
                f"({', '.join(repr(u) for u in INTERNAL_UNIT.values())})"
            )
        for key, value in self.context.items():
            if not math.isfinite(value):
                raise CalibrationError(f"{where}: context {key} = {value} is not finite")
        if self.sites and (len(self.sites) != counts.shape[1] or min(self.sites) < 0):
            raise CalibrationError(f"{where}: sites {list(self.sites)} for {counts.shape[1]} columns")
        object.__setattr__(self, "sweep", sweep)
        object.__setattr__(self, "counts", counts.astype(np.int64))

    @property
    def n_sites(self) -> int:
        return int(self.counts.shape[1])

    def site(self, column: int) -> int:
        """The device site of column ``column``."""
        return self.sites[column] if self.sites else column

    def select(self, targets: tuple[int, ...]) -> CalibrationData:
        """The data of the ``targets`` sites only (columns relabelled by :meth:`site`)."""
        if max(targets) >= self.n_sites:
            raise CalibrationError(
                f"calibration data of {self.routine!r}: target site {max(targets)} not among "
                f"{self.n_sites} sites"
            )
        return dataclasses.replace(
            self, counts=self.counts[:, list(targets)], sites=tuple(self.site(t) for t in targets)
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "routine": self.routine,
            "parameters": self.parameters,
            "sweep_name": self.sweep_name,
            "sweep_unit": self.sweep_unit,
            "sweep": self.sweep.tolist(),
            "shots": int(self.shots),
            "counts": self.counts.tolist(),
            "context": dict(self.context),
            "sites": list(self.sites),
            "uses": list(self.uses),
        }

    @property
    def total_shots(self) -> int:
        """The shots the data took: one sequence of ``shots`` per row, all sites at once."""
        return int(self.sweep.size) * int(self.shots)

    @classmethod
    def from_document(cls, document: dict[str, Any], source: str = "<data>") -> CalibrationData:
        """Data from a version-1 or version-2 document (a newer one: a one-line
        :class:`~qep_analog.calibration.versions.NewerSchemaError` naming ``source``)."""
        if not isinstance(document, dict):
            raise CalibrationError(f"{source}: a {type(document).__name__}, not calibration data")
        version = schema_version(document.get("schema"), DATA_FAMILY, DATA_VERSION, source)
        keys = (*_KEYS, *_OPTIONAL_V1)
        unknown = set(document) - set(keys)
        missing = set(_KEYS if version == 1 else keys) - set(document)
        if unknown or missing:
            raise CalibrationError(
                f"{source}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}"
            )
        try:
            return cls(
                routine=str(document["routine"]),
                parameters=dict(document["parameters"]),
                sweep_name=str(document["sweep_name"]),
                sweep_unit=str(document["sweep_unit"]),
                sweep=np.asarray(document["sweep"], dtype=float),
                shots=document["shots"],
                counts=np.asarray(document["counts"]),
                context={str(k): float(v) for k, v in dict(document.get("context", {})).items()},
                sites=tuple(int(k) for k in document.get("sites", [])),
                uses=tuple(str(k) for k in document.get("uses", [])),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, CalibrationError):
                raise CalibrationError(f"{source}: {exc}") from None
            raise CalibrationError(f"{source}: malformed calibration data ({exc})") from None


def write_data(path: str | Path, data: CalibrationData) -> None:
    """Write ``data`` atomically (temporary file + rename)."""
    document = data.to_document()
    CalibrationData.from_document(document, str(path))  # validated on write as on read
    write_json(path, document, SCHEMA)


def read_data(path: str | Path) -> CalibrationData:
    """The data in ``path``, of any version this reader knows (:meth:`CalibrationData.from_document`)."""
    try:
        document = load_json(path)
    except StorageError as exc:
        raise CalibrationError(str(exc)) from None
    return CalibrationData.from_document(document, str(path))
