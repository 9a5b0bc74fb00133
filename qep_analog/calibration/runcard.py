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
from qep_analog.schema import Field, parse_section
from qep_analog.storage import read_yaml

SCHEMA = "qep-runcard/1"
POLICIES = ("append", "dry-run")
PLATFORMS = ("rydberg", "ion")
_STEP = (Field("routine", "text"), Field("parameters", "any", required=False))
_FIELDS = (
    Field("schema", "text", choices=(SCHEMA,)),
    Field("name", "text"),
    Field("platform", "text", choices=PLATFORMS),
    Field("update", "text", choices=POLICIES, required=False, default="append"),
    Field("description", "text", required=False, default=""),
    Field("targets", "integers", low=0, distinct=True, required=False, default=[], help="site indices"),
    Field("routines", "list", value=Field("routine", "section", fields=_STEP), min_length=1),
)


@dataclass(frozen=True)
class RunStep:
    """One routine of a runcard with its parsed parameters."""

    routine: str
    parameters: Any
    keys: tuple[str, ...] = ()  # the parameter keys as written (their suffixes: the units shown)


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
    values = parse_section(document, _FIELDS, source, CalibrationError)
    platform = values["platform"]
    steps = []
    for index, raw in enumerate(values["routines"]):
        try:
            routine = routine_named(raw["routine"], platform)
            parameters = routine.parameters(raw["parameters"])
        except CalibrationError as exc:
            raise CalibrationError(f"{source}: routines[{index}]: {exc}") from None
        written = raw["parameters"] if isinstance(raw["parameters"], dict) else {}
        steps.append(RunStep(routine.name, parameters, tuple(str(key) for key in written)))
    return Runcard(
        values["name"],
        cast(Literal["rydberg", "ion"], platform),
        values["update"],
        tuple(steps),
        values["description"],
        tuple(values["targets"]),
    )


def load_runcard(name_or_path: str | Path) -> Runcard:
    """A runcard by name (on the library's search path, :mod:`qep_analog.library`) or by path."""
    path = locate_file("calibration", name_or_path, CalibrationError)
    document = read_yaml(path, CalibrationError)
    return parse_runcard(document, str(path))
