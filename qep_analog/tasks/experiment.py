"""Experiment configurations (schema ``qep-experiment/1``) for ``qep-analog train``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog.errors import ConfigError, StorageError
from qep_analog.qep.losses import loss_by_name
from qep_analog.qep.trainer import Penalty, TrainingConfig
from qep_analog.storage import read_yaml
from qep_analog.tasks.phase_sensor import PhaseSensorTask

SCHEMA = "qep-experiment/1"
TASKS = ("phase_sensor",)
_TOP = {"schema", "name", "task", "model", "training", "evaluation", "output"}
_MODEL = {"n_chain", "sites", "system_operators", "init", "coupling_range", "patches", "patch_side"}
_TRAINING = {
    "steps", "batch_size", "estimator", "scheme", "beta", "shots", "optimizer", "learning_rate",
    "seed", "checkpoint_every", "solver_tol", "check_gap", "bounds", "penalty", "loss",
}  # fmt: skip
_EVALUATION = {"test_size", "every"}
_PENALTY = {"strength", "threshold"}


def _closed(section: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - allowed, key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (valid: {', '.join(sorted(allowed))})")
    return dict(section)


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment: the task, the training configuration, the penalty, the run folder."""

    name: str
    task: PhaseSensorTask
    training: TrainingConfig
    penalty: Penalty | None
    output: Path


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> Experiment:
    """Read an experiment file; ``overrides`` replace keys of its ``training`` section."""
    try:
        document = read_yaml(path)
    except StorageError as exc:
        raise ConfigError(str(exc)) from None
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
    penalty_cfg = _closed(training.pop("penalty", None), _PENALTY, f"{where}: training.penalty")
    loss = loss_by_name(str(training.pop("loss", "squared_error")))
    if "sites" in model:
        model["sites"] = tuple(model["sites"])
    if model.get("patches") is not None:
        model["patches"] = np.array(model["patches"], dtype=float).reshape(-1, 2)
    if "bounds" in training and training["bounds"] is not None:
        training["bounds"] = tuple(training["bounds"])
    if "every" in evaluation:
        training["eval_every"] = evaluation.pop("every")
    try:
        config = TrainingConfig(**training)
        task = PhaseSensorTask(
            **model, test_size=evaluation.get("test_size", 200), seed=config.seed, loss=loss
        )
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    penalty = None
    if penalty_cfg:
        for key in _PENALTY:
            if not isinstance(penalty_cfg.get(key), int | float):
                raise ConfigError(f"{where}: training.penalty.{key} must be a number")
        penalty = task.penalty(float(penalty_cfg["strength"]), float(penalty_cfg["threshold"]))
    name = str(top.get("name") or Path(path).stem)
    output = Path(top.get("output") or Path("runs") / name)
    return Experiment(name, task, config, penalty, output)
