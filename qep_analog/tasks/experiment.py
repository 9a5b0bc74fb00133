"""Experiment configurations (schema ``qep-experiment/1``) for ``qep-analog train``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qep_analog.backends.configure import FIELDS as BACKEND_FIELDS
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.library import beside_file, reference_from_file
from qep_analog.qep.losses import LOSSES, loss_by_name
from qep_analog.qep.trainer import Penalty, TrainingConfig
from qep_analog.schema import OMIT, Field, optional, parse_section
from qep_analog.solvers.mps import MPSOptions
from qep_analog.storage import file_output, plain_name, read_yaml
from qep_analog.tasks.ion_sensor import IonSensorTask
from qep_analog.tasks.phase_sensor import INITIALISATIONS, PhaseSensorTask
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask

SCHEMA = "qep-experiment/1"
TASKS = ("phase_sensor", "rydberg_sensor", "ion_sensor")
#: the tasks on a device's own Hamiltonian, with the model keys that are ranges
DEVICE_TASKS: dict[str, tuple[type[RydbergSensorTask] | type[IonSensorTask], tuple[str, ...]]] = {
    "rydberg_sensor": (RydbergSensorTask, ("delta_over_omega", "rb_over_a")),
    "ion_sensor": (IonSensorTask, ("field_over_j",)),
}


def _rule(fields: tuple[Field, ...], name: str, key: str, default: Any = OMIT) -> Field:
    """The rule of attribute ``name`` of a configuration class, read from the file's ``key``."""
    field = next(f for f in fields if f.name == name)
    return dataclasses.replace(field, name=key, required=False, default=default)


_TRAINING_ONLY = ("eval_every", "readout_false_positive", "readout_false_negative", "mitigate_readout")
_PENALTY = (Field("strength", low=0.0), Field("threshold", low=0.0))
#: ``training.readout``: ``{device: NAME}`` or explicit ``false_positive`` / ``false_negative``
_READOUT = (
    Field("device", "text", required=False, default=OMIT),
    _rule(TrainingConfig.FIELDS, "readout_false_positive", "false_positive"),
    _rule(TrainingConfig.FIELDS, "readout_false_negative", "false_negative"),
    _rule(TrainingConfig.FIELDS, "mitigate_readout", "mitigate", default=True),
)
_TRAINING = (
    *optional([f for f in TrainingConfig.FIELDS if f.name not in _TRAINING_ONLY]),
    Field("penalty", "section", fields=_PENALTY, required=False, nullable=True),
    Field("loss", "text", choices=tuple(LOSSES), required=False, default="squared_error"),
    Field("readout", "section", fields=_READOUT, required=False, nullable=True),
)
#: a task's ``model`` section: its settings but the test set's size and seed
_MODEL = {
    task: optional([f for f in cls.FIELDS if f.name not in ("test_size", "seed")])
    for task, cls in (("phase_sensor", PhaseSensorTask), *((t, c) for t, (c, _) in DEVICE_TASKS.items()))
}
_EVALUATION = (
    _rule(PhaseSensorTask.FIELDS, "test_size", "test_size"),
    _rule(TrainingConfig.FIELDS, "eval_every", "every"),
)
#: ``execution:`` where preparations run (see qep_analog.execution); ``mps:`` the DMRG options
_EXECUTION = (
    Field("executor", "text", required=False, default=OMIT),
    Field("backend", "text", required=False, default=OMIT),
    Field("chunks_per_worker", "integer", low=1, required=False, default=OMIT),
    Field(
        "mps", "section", fields=optional(MPSOptions.FIELDS), required=False, nullable=True, default=OMIT
    ),
)
_TOP = (
    Field("schema", "text", choices=(SCHEMA,)),
    Field("name", "text", required=False),
    Field("task", "text", choices=TASKS),
    Field("model", "any", required=False, nullable=True),
    Field("device", "text", required=False),
    Field("backend", "section", fields=BACKEND_FIELDS, required=False, nullable=True),
    Field("training", "section", fields=_TRAINING, required=False, nullable=True),
    Field("evaluation", "section", fields=_EVALUATION, required=False, nullable=True),
    Field("output", "text", required=False),
    Field("execution", "section", fields=_EXECUTION, required=False, nullable=True),
)


def _readout(
    readout: dict[str, Any], where: str, nominal: bool, history: str | Path | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The training keys of a parsed ``training.readout``: epsilon, epsilon' of the device profile with
    the calibration in force (or of the file with ``nominal``) or the explicit ones, and ``mitigate``;
    with the provenance of the profile used, if any."""
    out: dict[str, Any] = {"mitigate_readout": readout.pop("mitigate")}
    device = None
    if "device" in readout:
        if {"false_positive", "false_negative"} & set(readout):
            raise ConfigError(f"{where}: give either device or false_positive/false_negative, not both")
        from qep_analog.calibration.in_force import load_profile
        from qep_analog.errors import ProfileError

        try:
            profile = load_profile(readout["device"], nominal=nominal, history=history)
        except ProfileError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        noise = profile.noise
        device = profile.provenance()
        out["readout_false_positive"] = noise.readout_false_positive
        out["readout_false_negative"] = noise.readout_false_negative
    else:
        out.update({f"readout_{key}": value for key, value in readout.items() if key != "device"})
    return out, device


def _paths_beside_file(top: dict[str, Any], model: dict[str, Any], path: str | Path) -> None:
    """Take the paths the file names relative to its own folder: ``model.init`` (a run's
    ``result.json``; not the ``bounded``/``normal`` keywords), ``device``, ``training.readout.device``
    and ``backend.recipe`` (each a name on the search path, or a file). ``output`` stays relative to
    the working directory, like the default ``runs/NAME``."""
    if isinstance(model.get("init"), str) and model["init"] not in INITIALISATIONS:
        model["init"] = beside_file(model["init"], path)
    if top["device"] is not None:
        top["device"] = reference_from_file("devices", top["device"], path)
    readout = (top["training"] or {}).get("readout")
    if readout is not None and "device" in readout:
        readout["device"] = reference_from_file("devices", readout["device"], path)
    if top["backend"] is not None and top["backend"].get("recipe") is not None:
        top["backend"]["recipe"] = reference_from_file("sequences", top["backend"]["recipe"], path)


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment: the task, the training configuration, the penalty, the run folder."""

    name: str
    task: PhaseSensorTask | RydbergSensorTask | IonSensorTask
    training: TrainingConfig
    penalty: Penalty | None
    output: Path
    execution: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] | None = None
    #: the device profile the run uses (``device:``), with the calibration in force unless nominal
    profile: DeviceProfile | None = None
    #: the ``backend:`` section (name, recipe, options), if any
    backend: dict[str, Any] | None = None


def load_experiment(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    nominal: bool = False,
    history: str | Path | None = None,
    device_name: str | None = None,
    init: str | None = None,
    output: str | Path | None = None,
) -> Experiment:
    """Read an experiment file; ``overrides`` replace keys of its ``training`` section and
    ``device_name`` its ``device``, ``init`` its ``model.init`` (a run's ``result.json`` to start
    from), ``output`` (a run folder given on the command line) its ``output``. A ``name:`` must be a
    plain name and the file's own ``output:`` must stay inside the working directory (one-line errors).
    A device (``device:``, or named in ``training.readout``) is
    loaded with the calibration in force (``history`` folder), or as its file says with ``nominal``."""
    document = read_yaml(path, ConfigError)
    where = str(path)
    if overrides and isinstance(document, dict) and isinstance(document.get("training") or {}, dict):
        document = {**document, "training": {**(document.get("training") or {}), **overrides}}
    top = parse_section(document, _TOP, where, ConfigError)
    model = parse_section(top["model"] or {}, _MODEL[top["task"]], f"{where}: model", ConfigError)
    _paths_beside_file(top, model, path)
    if init is not None:
        model["init"] = init
    profile = None
    # a name given on the command line is its own source in messages, not the file
    device_source = "--device" if device_name else f"{where}: device"
    device_name = device_name or top["device"]
    if device_name is not None:
        from qep_analog.calibration.in_force import load_profile
        from qep_analog.errors import ProfileError

        try:
            profile = load_profile(device_name, nominal=nominal, history=history)
        except ProfileError as exc:
            raise ConfigError(f"{device_source}: {exc}") from None
    # an omitted (or empty) section is an empty one: every key takes its default
    training = top["training"] or parse_section({}, _TRAINING, f"{where}: training", ConfigError)
    evaluation = top["evaluation"] or parse_section({}, _EVALUATION, f"{where}: evaluation", ConfigError)
    penalty_cfg = training.pop("penalty")
    readout_cfg = training.pop("readout")
    device = None
    if readout_cfg is not None:
        readout, device = _readout(readout_cfg, f"{where}: training.readout", nominal, history)
        training.update(readout)
    loss = loss_by_name(training.pop("loss"))
    if "sites" in model:
        model["sites"] = tuple(model["sites"])
    if training.get("bounds") is not None:
        training["bounds"] = tuple(training["bounds"])
    if "every" in evaluation:
        training["eval_every"] = evaluation.pop("every")
    task: PhaseSensorTask | RydbergSensorTask | IonSensorTask
    try:
        config = TrainingConfig(**training)
        if top["task"] in DEVICE_TASKS:
            cls, ranges = DEVICE_TASKS[top["task"]]
            if profile is None:
                raise ConfigError(f"task {top['task']} needs a device (device: NAME or --device)")
            for key in ranges:
                if key in model:
                    model[key] = tuple(model[key])
            task = cls(profile=profile, **model, **evaluation, seed=config.seed, loss=loss)
        else:
            task = PhaseSensorTask(**model, **evaluation, seed=config.seed, loss=loss)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    penalty = None
    if penalty_cfg:
        if not isinstance(task, PhaseSensorTask):
            raise ConfigError(
                f"{where}: training.penalty: task {top['task']} trains device parameters, no penalty"
            )
        penalty = task.penalty(float(penalty_cfg["strength"]), float(penalty_cfg["threshold"]))
    name = plain_name(top["name"], f"{where}: name", ConfigError) if top["name"] else Path(path).stem
    if output is not None:
        run_dir = Path(output)
    elif top["output"]:
        run_dir = file_output(top["output"], where, ConfigError)
    else:
        run_dir = Path("runs") / plain_name(
            name, f"{where}: name (from the file name; set name: or --output)", ConfigError
        )
    if profile is not None:
        device = profile.provenance()
    return Experiment(
        name, task, config, penalty, run_dir, top["execution"] or {}, device, profile, top["backend"]
    )
