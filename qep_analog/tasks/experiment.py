"""Experiment configurations (schema ``qep-experiment/1``) for ``qep-analog train``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog.errors import ConfigError
from qep_analog.qep.losses import loss_by_name
from qep_analog.qep.trainer import Penalty, TrainingConfig
from qep_analog.storage import read_yaml
from qep_analog.tasks.phase_sensor import PhaseSensorTask

SCHEMA = "qep-experiment/1"
TASKS = ("phase_sensor",)
_TOP = {"schema", "name", "task", "model", "training", "evaluation", "output", "execution"}
#: ``execution:`` where preparations run (see qep_analog.execution); ``mps:`` the DMRG options
_EXECUTION = {"executor", "backend", "chunks_per_worker", "mps"}
_MODEL = {
    "n_chain", "sites", "system_operators", "init", "coupling_range", "patches", "patch_side", "periodic",
}  # fmt: skip
_TRAINING = {
    "steps", "batch_size", "estimator", "scheme", "beta", "shots", "optimizer", "learning_rate",
    "seed", "checkpoint_every", "solver_tol", "check_gap", "bounds", "penalty", "loss",
    "temperature", "measurement", "readout",
}  # fmt: skip
_EVALUATION = {"test_size", "every"}
_PENALTY = {"strength", "threshold"}
_READOUT = {"device", "false_positive", "false_negative", "mitigate"}


def _closed(section: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - allowed, key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (valid: {', '.join(sorted(allowed))})")
    return dict(section)


def _numbers(value: Any, where: str, integer: bool = False, nested: bool = False) -> list[float]:
    """A list of numbers (flattened one level when ``nested``), or a one-line ConfigError."""
    items = value if isinstance(value, list) else None
    if nested and items is not None:
        if not all(isinstance(row, list) for row in items):
            items = None
        else:
            items = [v for row in items for v in row]
    kind = int if integer else int | float
    if items is None or any(isinstance(v, bool) or not isinstance(v, kind) for v in items):
        what = "integers" if integer else "numbers"
        shape = "a list of lists of" if nested else "a list of"
        raise ConfigError(f"{where}: {value!r} is not {shape} {what}")
    return [float(v) if not integer else int(v) for v in items]


def _readout(
    section: Any, where: str, nominal: bool, history: str | Path | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``training.readout``: ``{device: NAME}`` (epsilon, epsilon' of the profile with the calibration in
    force, or of the file with ``nominal``) or explicit ``false_positive`` / ``false_negative``, and
    ``mitigate`` (default true); with the provenance of the profile used, if any."""
    readout = _closed(section, _READOUT, where)
    if not readout:
        return {}, None
    out: dict[str, Any] = {"mitigate_readout": readout.get("mitigate", True)}
    device = None
    if "device" in readout:
        if {"false_positive", "false_negative"} & set(readout):
            raise ConfigError(f"{where}: give either device or false_positive/false_negative, not both")
        from qep_analog.calibration.in_force import load_profile
        from qep_analog.errors import ProfileError

        try:
            profile = load_profile(str(readout["device"]), nominal=nominal, history=history)
        except ProfileError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        noise = profile.noise
        device = profile.provenance()
        out["readout_false_positive"] = noise.readout_false_positive
        out["readout_false_negative"] = noise.readout_false_negative
    else:
        for key in ("false_positive", "false_negative"):
            if key in readout:
                out[f"readout_{key}"] = readout[key]
    return out, device


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment: the task, the training configuration, the penalty, the run folder."""

    name: str
    task: PhaseSensorTask
    training: TrainingConfig
    penalty: Penalty | None
    output: Path
    execution: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] | None = None


def load_experiment(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    nominal: bool = False,
    history: str | Path | None = None,
) -> Experiment:
    """Read an experiment file; ``overrides`` replace keys of its ``training`` section. A device named
    in ``training.readout`` is loaded with the calibration in force (``history`` folder), or as its file
    says with ``nominal``."""
    document = read_yaml(path, ConfigError)
    where = str(path)
    top = _closed(document, _TOP, where)
    if top.get("schema") != SCHEMA:
        raise ConfigError(f"{where}: schema {top.get('schema')!r} is not {SCHEMA!r}")
    task_name = top.get("task")
    if task_name not in TASKS:
        raise ConfigError(f"{where}: task {task_name!r} is unknown (valid: {', '.join(TASKS)})")
    model = _closed(top.get("model"), _MODEL, f"{where}: model")
    training = _closed(top.get("training"), _TRAINING, f"{where}: training")
    training.update(overrides or {})
    evaluation = _closed(top.get("evaluation"), _EVALUATION, f"{where}: evaluation")
    execution = _closed(top.get("execution"), _EXECUTION, f"{where}: execution")
    penalty_cfg = _closed(training.pop("penalty", None), _PENALTY, f"{where}: training.penalty")
    readout, device = _readout(
        training.pop("readout", None), f"{where}: training.readout", nominal, history
    )
    training.update(readout)
    loss = loss_by_name(str(training.pop("loss", "squared_error")))
    if "sites" in model:
        model["sites"] = tuple(_numbers(model["sites"], f"{where}: model.sites", integer=True))
    if model.get("patches") is not None:
        flat = _numbers(model["patches"], f"{where}: model.patches", nested=True)
        if len(flat) == 0 or len(flat) % 2:
            raise ConfigError(f"{where}: model.patches must be a list of [g_x, g_zz] centres")
        model["patches"] = np.array(flat, dtype=float).reshape(-1, 2)
    if training.get("bounds") is not None:
        bounds = _numbers(training["bounds"], f"{where}: training.bounds")
        if len(bounds) != 2:
            raise ConfigError(f"{where}: training.bounds {bounds} must be [low, high]")
        training["bounds"] = (bounds[0], bounds[1])
    if "every" in evaluation:
        training["eval_every"] = evaluation.pop("every")
    try:
        config = TrainingConfig(**training)
        task = PhaseSensorTask(
            **model, test_size=evaluation.get("test_size", 200), seed=config.seed, loss=loss
        )
    except (TypeError, ConfigError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    penalty = None
    if penalty_cfg:
        values = {}
        for key in sorted(_PENALTY):
            value = penalty_cfg.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{where}: training.penalty.{key} = {value!r} must be a number >= 0")
            values[key] = float(value)
        penalty = task.penalty(values["strength"], values["threshold"])
    for key in ("name", "output"):
        if top.get(key) is not None and not isinstance(top[key], str):
            raise ConfigError(f"{where}: {key} = {top[key]!r} must be a string")
    name = str(top.get("name") or Path(path).stem)
    output = Path(top.get("output") or Path("runs") / name)
    return Experiment(name, task, config, penalty, output, execution, device)
