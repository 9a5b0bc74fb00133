"""Runcards (``qep-runcard/1``, YAML in ``calibration/``): ordered routines, their parameters, a policy.

    schema: qep-runcard/1
    name: rydberg-basic
    platform: rydberg         # rydberg | ion: every routine must run on it
    update: append            # append: records go to the device history; dry-run: run folder only
    targets: [0, 1, 2, 3]     # optional: the sites fitted and recorded (default: all)
    routines:
      - routine: readout
        parameters: {repeats: 4, shots: 1000}
      - routine: ramsey
        parameters: {detuning_MHz: 1.0, stop_us: 4.0}

Every level has closed keys; routine parameters carry unit suffixes like device profiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from qep_analog.calibration.registry import routine_named
from qep_analog.errors import CalibrationError
from qep_analog.library import locate_file
from qep_analog.storage import read_yaml

SCHEMA = "qep-runcard/1"
POLICIES = ("append", "dry-run")
PLATFORMS = ("rydberg", "ion")
_TOP = ("schema", "name", "platform", "update", "description", "targets", "routines")
_STEP = ("routine", "parameters")


@dataclass(frozen=True)
class RunStep:
    """One routine of a runcard with its parsed parameters."""

    routine: str
    parameters: Any


@dataclass(frozen=True)
class Runcard:
    name: str
    platform: Literal["rydberg", "ion"]
    update: Literal["append", "dry-run"]
    steps: tuple[RunStep, ...]
    description: str = ""
    targets: tuple[int, ...] = ()  # empty: every site of the backend


def parse_runcard(document: Any, source: str = "<runcard>") -> Runcard:
    """A runcard from its parsed YAML; every mistake is one :class:`CalibrationError` line."""
    if not isinstance(document, dict):
        raise CalibrationError(f"{source}: a runcard is a mapping, not {type(document).__name__}")
    if document.get("schema") != SCHEMA:
        raise CalibrationError(f"{source}: schema {document.get('schema')!r}, expected {SCHEMA!r}")
    unknown = set(document) - set(_TOP)
    if unknown:
        raise CalibrationError(f"{source}: unknown keys {sorted(unknown)} (valid: {', '.join(_TOP)})")
    for key in ("name", "platform", "routines"):
        if key not in document:
            raise CalibrationError(f"{source}: missing key {key!r}")
    name = document["name"]
    if not isinstance(name, str) or not name:
        raise CalibrationError(f"{source}: name {name!r} is not a text")
    platform = document["platform"]
    if platform not in PLATFORMS:
        raise CalibrationError(f"{source}: platform {platform!r} is not one of {', '.join(PLATFORMS)}")
    targets = document.get("targets", [])
    valid = isinstance(targets, list) and all(type(t) is int and t >= 0 for t in targets)
    if not valid or len(set(targets)) != len(targets):
        raise CalibrationError(f"{source}: targets {targets!r} must be distinct site indices ≥ 0")
    update = document.get("update", "append")
    if update not in POLICIES:
        raise CalibrationError(f"{source}: update {update!r} is not one of {', '.join(POLICIES)}")
    raw_steps = document["routines"]
    if not isinstance(raw_steps, list) or not raw_steps:
        raise CalibrationError(f"{source}: routines must be a non-empty list")
    steps = []
    for index, raw in enumerate(raw_steps):
        where = f"{source}: routines[{index}]"
        if not isinstance(raw, dict) or "routine" not in raw:
            raise CalibrationError(f"{where}: expected a mapping with a 'routine' key")
        extra = set(raw) - set(_STEP)
        if extra:
            raise CalibrationError(f"{where}: unknown keys {sorted(extra)} (valid: {', '.join(_STEP)})")
        try:
            routine = routine_named(str(raw["routine"]), platform)
            parameters = routine.parameters(raw.get("parameters"))
        except CalibrationError as exc:
            raise CalibrationError(f"{where}: {exc}") from None
        steps.append(RunStep(routine.name, parameters))
    return Runcard(
        name,
        cast(Literal["rydberg", "ion"], platform),
        update,
        tuple(steps),
        str(document.get("description", "")),
        tuple(targets),
    )


def load_runcard(name_or_path: str | Path) -> Runcard:
    """A runcard by name (on the library's search path, :mod:`qep_analog.library`) or by path."""
    path = locate_file("calibration", name_or_path, CalibrationError)
    document = read_yaml(path, CalibrationError)
    return parse_runcard(document, str(path))
