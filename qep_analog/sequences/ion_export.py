"""Ion schedules as ``qep-ion-schedule/1`` JSON (docs/ion-schedule.md), validated by its JSON Schema.

The file lists breakpoint times and, at each, every ion's Rabi frequency, the global field and every
ion's Stark shift; a control system plays them linearly in between (Ω_i² linear, so the couplings
are). Files are checked against the schema and for consistency (lengths, times on the clock, the
duration) when written and when read.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from qep_analog.errors import StorageError
from qep_analog.sequences.schedule import Schedule
from qep_analog.storage import atomic_write_text, load_json

SCHEMA = "qep-ion-schedule/1"
#: the export format this module writes (``Platform.exporter_for``)
EXPORTER = "ion"


def ion_schema() -> dict[str, Any]:
    text = resources.files("qep_analog.sequences").joinpath("ion_schedule.schema.json").read_text("utf-8")
    return dict(json.loads(text))


def ion_document(schedule: Schedule, clock: float) -> dict[str, Any]:
    """The ``qep-ion-schedule/1`` document of an ion schedule (all controls on one breakpoint grid)."""
    if schedule.platform_spec.exporter != EXPORTER:
        raise StorageError(f"schedule {schedule.label!r}: only ion schedules export to {SCHEMA}")
    times = np.unique(np.concatenate([w.times for w in schedule.controls.values()]))
    scale = schedule.controls["coupling_scale"](times)
    stark = schedule.controls["stark_scale"](times)
    rabi = np.asarray(schedule.static["rabi"], dtype=float)
    shifts = np.asarray(schedule.static["stark_shifts"], dtype=float)
    return {
        "schema": SCHEMA,
        "device": schedule.device,
        "label": schedule.label,
        "n_ions": schedule.n_qubits,
        "duration_us": schedule.duration,
        "clock_us": clock,
        "initial_state": schedule.initial_state,
        "readout_basis": schedule.readout,
        "beat_note_rad_per_us": float(schedule.static["beat_note"]),
        "times_us": times.tolist(),
        "rabi_rad_per_us": (np.sqrt(np.clip(scale, 0, None))[:, None] * rabi[None, :]).tolist(),
        "global_field_rad_per_us": schedule.controls["global_field"](times).tolist(),
        "stark_shift_rad_per_us": (stark[:, None] * shifts[None, :]).tolist(),
        "metadata": schedule.metadata,
    }


def validate_ion_document(document: Any, where: str = "ion schedule") -> None:
    """Schema and consistency checks; the first problem is a one-line :class:`StorageError`."""
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(ion_schema()).iter_errors(document)
    )
    if error is not None:
        place = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise StorageError(f"{where}: at {place}: {error.message}")
    n, times = document["n_ions"], np.asarray(document["times_us"], dtype=float)
    rows = len(times)
    for key in ("rabi_rad_per_us", "global_field_rad_per_us", "stark_shift_rad_per_us"):
        if len(document[key]) != rows:
            raise StorageError(f"{where}: {key} has {len(document[key])} breakpoints, times_us has {rows}")
    for key in ("rabi_rad_per_us", "stark_shift_rad_per_us"):
        if any(len(row) != n for row in document[key]):
            raise StorageError(f"{where}: {key} rows must list {n} ions")
    if len(document["initial_state"]) != n or len(document["readout_basis"]) != n:
        raise StorageError(f"{where}: initial_state and readout_basis must have {n} characters")
    if times[0] != 0 or np.any(np.diff(times) <= 0) or abs(times[-1] - document["duration_us"]) > 1e-9:
        raise StorageError(f"{where}: times_us must rise from 0 to duration_us = {document['duration_us']}")
    ticks = times / document["clock_us"]
    if np.abs(ticks - np.round(ticks)).max() > 1e-6:
        raise StorageError(f"{where}: a breakpoint is off the {document['clock_us']} µs clock")


def ion_json_text(schedule: Schedule, clock: float, where: str) -> str:
    """The checked ``qep-ion-schedule/1`` file of ``schedule`` (named ``where`` in messages)."""
    document = ion_document(schedule, clock)
    validate_ion_document(document, where)
    try:
        return json.dumps(document, indent=1, allow_nan=False)
    except ValueError:
        raise StorageError(f"{where}: a value is not finite") from None


def export_ion_json(schedule: Schedule, clock: float, path: str | Path) -> dict[str, Any]:
    atomic_write_text(path, ion_json_text(schedule, clock, str(path)))
    return ion_document(schedule, clock)


def read_ion_json(path: str | Path) -> dict[str, Any]:
    document = load_json(path)
    validate_ion_document(document, str(path))
    return dict(document)
