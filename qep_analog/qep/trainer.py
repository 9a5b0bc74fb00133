"""Training: mini-batches, QEP or exact gradients, optimizers, penalties, checkpoints, metrics log.

A run lives in a folder:

- ``checkpoint.json`` (schema ``qep-checkpoint/2``; ``/1`` files are read and migrated): parameters,
  optimizer and random-generator state at the start (before the first file of the run is written)
  and every ``checkpoint_every`` steps, written atomically;
- ``metrics.jsonl``: a header line ``{"schema": "qep-metrics/1"}``, then one JSON line per step
  (batch loss, and test metrics at evaluation steps);
- ``result.json`` (schema ``qep-run/1``): the final parameters and metrics.

A resumed run continues from the checkpoint and ends at the same parameters as an uninterrupted
run with the same seed: all randomness comes from one generator whose state is checkpointed.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from qep_analog.backends.sampled import sampled_qep_gradient
from qep_analog.errors import ConfigError, DamagedLogWarning, SolverError, StorageError
from qep_analog.measurement.gradient import BitstringSampler
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import MAX_SHOTS
from qep_analog.measurement.settings import measurement_plan
from qep_analog.memory import require_memory
from qep_analog.model.qep_model import MAX_MAGNITUDE, QEPModel
from qep_analog.qep.gradients import (
    SCHEMES,
    exact_gradient,
    nudge_sizes,
    qep_estimate,
    qep_step,
    small_gap_count,
)
from qep_analog.qep.losses import Loss
from qep_analog.qep.names import ESTIMATORS
from qep_analog.qep.optimizers import OPTIMIZERS, check_state, make_optimizer
from qep_analog.qep.shot_noise import ShotNoise
from qep_analog.schema import Field, check_attributes, parse_section, parse_value, seed_field, shown
from qep_analog.solvers.equilibrium import Equilibrium, Prepared
from qep_analog.solvers.thermal import check_gibbs_memory
from qep_analog.solvers.threads import single_blas_thread
from qep_analog.storage import (
    atomic_write_text,
    folder_lock,
    present_files,
    read_input_text,
    read_json,
    refuse_held_run,
    remove_stale_temporaries,
    write_json,
)

CHECKPOINT_SCHEMA = "qep-checkpoint/2"
#: the first checkpoint format, still read: its run fingerprint leaves out the configuration keys
#: added later (at their defaults then), which :func:`migrate_checkpoint` fills in
CHECKPOINT_SCHEMA_V1 = "qep-checkpoint/1"
METRICS_SCHEMA = "qep-metrics/1"
RESULT_SCHEMA = "qep-run/1"
#: How measured values are emulated: Gaussian noise on expectation values, or sampled bitstrings in
#: the qubit-wise commuting settings of the generators (with readout errors and their mitigation).
MEASUREMENTS = ("gaussian", "bitstrings")
#: Configuration keys that qep-checkpoint/1 fingerprints do not carry, with the values every /1
#: checkpoint was written under.
_ADDED_IN_V2 = {
    "measurement": "gaussian",
    "readout_false_positive": 0.0,
    "readout_false_negative": 0.0,
    "mitigate_readout": True,
}


def parameters_from_result(path: str | Path, names: Sequence[str], where: str) -> NDArray:
    """The parameters ``names`` of a finished run (its ``result.json``), in that order; an unreadable
    file or a missing parameter is a one-line :class:`ConfigError` starting with ``where``."""
    try:
        values = read_json(path, RESULT_SCHEMA).get("parameters")
    except StorageError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not isinstance(values, dict) or set(names) - set(values):
        missing = sorted(set(names) - set(values if isinstance(values, dict) else {}))[:3]
        raise ConfigError(f"{where} {str(path)!r} lacks the parameters {missing}")
    # each a finite number within the model's bound (a list, text or 1e308 is a one-line error)
    rule = Field("parameter", low=-MAX_MAGNITUDE, high=MAX_MAGNITUDE)
    return np.array(
        [
            parse_value(values[name], rule, f"{where} {str(path)!r}", ConfigError, f"parameters.{name}")
            for name in names
        ],
        dtype=float,
    )


def migrate_checkpoint(document: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint document in the current format (``qep-checkpoint/2``) from any version read."""
    if document["schema"] == CHECKPOINT_SCHEMA:
        return document
    run = dict(document.get("run") or {}) if isinstance(document.get("run"), dict) else {}
    if isinstance(run.get("config"), dict):
        run["config"] = {
            **run["config"],
            **{k: v for k, v in _ADDED_IN_V2.items() if k not in run["config"]},
        }
    return {**document, "schema": CHECKPOINT_SCHEMA, "run": run}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


#: what the readers of ``metrics.jsonl`` (the run's summary, its training curve) take from a record
_RECORD_KEYS: dict[str, Callable[[Any], bool]] = {
    "step": _count,
    "loss": _number,
    "test_loss": _number,
    "max_choice_accuracy": _number,
    "single_shot_accuracy": _number,
    "min_gap": _number,
    "degenerate": _count,
    "small_gap": _count,
    "shots": _count,
    "device_time_s": lambda value: value is None or _number(value),
}


def _is_step_record(record: Any) -> bool:
    """Whether ``record`` is a line of ``metrics.jsonl`` as the trainer writes it: a step (an integer
    >= 0) and, of the keys its readers use, values of the kind they read (a hand edit can leave
    anything)."""
    if not isinstance(record, dict) or "step" not in record:
        return False
    return all(check(record[key]) for key, check in _RECORD_KEYS.items() if key in record)


class SupervisedTask(Protocol):
    """What the trainer needs from a task."""

    model: QEPModel
    loss: Loss

    def sample_batch(self, rng: np.random.Generator, size: int) -> tuple[NDArray, NDArray]: ...

    def test_set(self) -> tuple[NDArray, NDArray]: ...

    def metrics(self, outputs: NDArray, targets: NDArray) -> dict[str, float]: ...

    def initial_parameters(self, rng: np.random.Generator) -> NDArray: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class Penalty:
    """Soft penalty ``strength * max(|theta_k| - threshold, 0)`` on the parameters in ``mask``."""

    strength: float
    threshold: float
    mask: NDArray

    def value(self, theta: NDArray) -> float:
        excess = np.maximum(np.abs(theta) - self.threshold, 0.0)
        return float(self.strength * excess[self.mask].sum())

    def gradient(self, theta: NDArray) -> NDArray:
        active = (np.abs(theta) > self.threshold) & self.mask
        return np.asarray(self.strength * np.sign(theta) * active)


#: bytes per step of the records a run keeps (a record and its metrics line; tracemalloc: 400 and 130)
RECORD_BYTES = 640
#: bytes per parameter of a step's record on a backend (its gradient's standard errors)
RECORD_ITEM_BYTES = 56


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Hyper-parameters of a run (keyword-only; see ``examples/phase_sensor.yaml``)."""

    steps: int = 1000
    batch_size: int = 10
    estimator: str = "qep"
    scheme: str = "symmetric"
    beta: float = 0.4
    shots: int | None = 10
    optimizer: str = "adam"
    learning_rate: float = 0.01
    seed: int = 0
    checkpoint_every: int = 50
    eval_every: int = 50
    solver_tol: float = 1e-6
    check_gap: bool = True
    bounds: tuple[float, float] | None = None
    temperature: float | None = None
    measurement: str = "gaussian"
    readout_false_positive: float = 0.0
    readout_false_negative: float = 0.0
    mitigate_readout: bool = True

    #: the rule of each attribute (the same rules read an experiment file's ``training`` section)
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("steps", "integer", low=1),
        Field("batch_size", "integer", low=1),
        Field("estimator", "text", choices=ESTIMATORS),
        Field("scheme", "text", choices=SCHEMES),
        Field("beta", low=0.0, open_low=True),
        Field("shots", "integer", low=1, high=MAX_SHOTS, nullable=True),
        Field("optimizer", "text", choices=OPTIMIZERS),
        Field("learning_rate", low=0.0, open_low=True),
        seed_field(),
        Field("checkpoint_every", "integer", low=1),
        Field("eval_every", "integer", low=1),
        Field("solver_tol", low=0.0, open_low=True),
        Field("check_gap", "flag"),
        Field("bounds", "range", nullable=True),
        Field("temperature", low=0.0, open_low=True, nullable=True),
        Field("measurement", "text", choices=MEASUREMENTS),
        Field("readout_false_positive", low=0.0, high=0.5, open_high=True),
        Field("readout_false_negative", low=0.0, high=0.5, open_high=True),
        Field("mitigate_readout", "flag"),
    )

    def __post_init__(self) -> None:
        check_attributes(self, self.FIELDS, "training", ConfigError)
        if self.measurement == "bitstrings":
            if self.shots is None:
                raise ConfigError("training: measurement 'bitstrings' needs shots per setting (not null)")
            if self.estimator != "qep":
                raise ConfigError(
                    f"training: measurement 'bitstrings' needs estimator 'qep', not {self.estimator!r}"
                )
            if self.temperature is not None:
                raise ConfigError(
                    "training: measurement 'bitstrings' samples ground states (temperature null)"
                )
        elif self.readout_false_positive or self.readout_false_negative:
            raise ConfigError("training: readout errors need measurement 'bitstrings'")


@dataclass
class TrainingState:
    """Everything a checkpoint restores."""

    step: int
    theta: NDArray
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


StepCallback = Callable[[int, dict[str, Any]], None]


class Parameterisation(Protocol):
    """What a task trains when it is not the model's coefficients (e.g. atom positions): the
    coefficients θ(φ), their Jacobian dθ/dφ (coefficients × parameters) and the device's limits
    (``project`` returns φ moved inside them and the names of the parameters moved)."""

    @property
    def names(self) -> tuple[str, ...]: ...

    def coefficients(self, parameters: NDArray) -> NDArray: ...

    def jacobian(self, parameters: NDArray) -> NDArray: ...

    def project(self, parameters: NDArray) -> tuple[NDArray, list[str]]: ...


class SampleParameterisation(Protocol):
    """A parameterisation whose coefficients depend on the sample as well (e.g. the settings a device
    uses for one class of inputs): θ_b = θ(φ, x_b) for each row x_b of the inputs, and the Jacobians
    dθ_b/dφ (samples × coefficients × parameters); dL/dφ = mean_b (dθ_b/dφ)ᵀ dL_b/dθ_b."""

    @property
    def names(self) -> tuple[str, ...]: ...

    def sample_coefficients(self, parameters: NDArray, inputs: NDArray) -> NDArray: ...

    def sample_jacobians(self, parameters: NDArray, inputs: NDArray) -> NDArray: ...

    def project(self, parameters: NDArray) -> tuple[NDArray, list[str]]: ...


class Trainer:
    """Trains ``task.model`` on ``task`` with ``config``, writing into ``run_dir``."""

    def __init__(
        self,
        task: SupervisedTask,
        config: TrainingConfig,
        run_dir: str | Path,
        *,
        penalty: Penalty | None = None,
        callback: StepCallback | None = None,
        equilibrium: Any | None = None,
        device: dict[str, Any] | None = None,
        backend: Any | None = None,
    ) -> None:
        """``equilibrium``: what prepares the states (anything with ``Equilibrium``'s ``prepare``
        contract and ``compiled`` strings, e.g. an executed or MPS one); by default an exact
        :class:`Equilibrium` of the task's model. ``device``: the provenance of the device profile the
        run uses (``DeviceProfile.provenance()``), recorded in ``result.json``. ``backend``: every
        step runs as phase jobs on it (:mod:`qep_analog.backends`) and the gradient comes from what
        it returns; test metrics are measured on it too, except on a bundle (the model's states).

        A task with a ``parameterisation`` (e.g. atom positions, see :class:`Parameterisation`) is
        trained in those parameters: θ(φ) sets the model, dL/dφ = (dθ/dφ)ᵀ dL/dθ, and every step is
        moved back inside the device's limits (the moved parameters are counted per step)."""
        self.task = task
        self.config = config
        self.run_dir = Path(run_dir)
        self.penalty = penalty
        self.callback = callback
        #: the line numbers of ``metrics.jsonl`` the last :meth:`read_metrics` skipped as damaged
        self.damaged_lines: list[int] = []
        self.device = device
        self.backend = backend
        self.parameters: Parameterisation | SampleParameterisation | None = getattr(
            task, "parameterisation", None
        )
        if self.parameters is not None and penalty is not None:
            raise ConfigError(
                "training: a penalty acts on model coefficients; this task trains device parameters"
            )
        self.bases: list[str] = []
        if backend is not None:
            from qep_analog.backends.step import backend_model
            from qep_analog.sequences.phases import readout_bases

            if config.estimator != "qep":
                raise ConfigError(
                    f"training: a backend measures QEP gradients, not estimator {config.estimator!r}"
                )
            if config.measurement != "gaussian" or config.temperature is not None:
                raise ConfigError(
                    "training: on a backend the counts are the measurement (no measurement or temperature)"
                )
            if getattr(backend, "counts_only", False) and config.shots is None:
                raise ConfigError(
                    f"backend {backend.name}: a lab returns counts; training.shots is null, which asks "
                    "for exact values (give the shots: training.shots, or --shots N)"
                )
            self.bases = readout_bases(backend_model(backend, task.model))
        if equilibrium is None:
            equilibrium = Equilibrium(task.model, temperature=config.temperature, tol=config.solver_tol)
        self.equilibrium = equilibrium
        self.compiled = self.equilibrium.compiled
        self._identity = np.array([not s.factors for s in self.compiled.table.strings])
        self.test_inputs, self.test_targets = task.test_set()
        self._check_memory()
        self.sampler: BitstringSampler | None = None
        if config.measurement == "bitstrings":
            assert config.shots is not None
            readout = ReadoutErrors.uniform(
                task.model.n_qubits, config.readout_false_positive, config.readout_false_negative
            )
            plan = measurement_plan(task.model)
            self.sampler = BitstringSampler(
                task.model, plan, config.shots, readout, config.mitigate_readout
            )

    def _check_memory(self) -> None:
        """Refuse, before the first step, a run whose records (kept for the whole run), batch or test
        set would exceed the memory limit (the exact, thermal and MPS solvers estimate their states; a
        backend's states are its own)."""
        cfg = self.config
        backend = self.backend is not None
        per_step = RECORD_BYTES + (RECORD_ITEM_BYTES * len(self.parameter_names) if backend else 0)
        require_memory(f"training: the records of {cfg.steps} steps", per_step * cfg.steps)
        solver = getattr(self.equilibrium, "solver", None)
        check = getattr(solver, "check_memory", None)
        if self.equilibrium.thermal:
            check = partial(check_gibbs_memory, self.compiled)
        if check is None:
            return
        if self.backend is None:
            # the free states stay while the nudged ones (two per sample) are prepared
            check(3 * cfg.batch_size, f"training: batch_size {cfg.batch_size}")
        if self.backend is None or hasattr(self.backend, "for_round"):
            check(len(self.test_inputs), f"training: a test set of {len(self.test_inputs)} points")

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.json"

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    # -- state -------------------------------------------------------------------------------

    @property
    def parameter_names(self) -> list[str]:
        """The names of what the optimizer moves: the model's coefficients or the task's parameters."""
        if self.parameters is not None:
            return list(self.parameters.names)
        return list(self.task.model.parameter_names)

    @property
    def per_sample(self) -> bool:
        """Whether the coefficients depend on the sample (:class:`SampleParameterisation`)."""
        return hasattr(self.parameters, "sample_coefficients")

    def coefficients(self, parameters: NDArray, inputs: NDArray | None = None) -> NDArray:
        """The model's coefficients θ for the trained parameters: one row per row of ``inputs`` for a
        per-sample parameterisation, else one vector."""
        if self.parameters is None:
            return parameters
        if hasattr(self.parameters, "sample_coefficients"):
            if inputs is None:
                raise ConfigError("training: this task's coefficients depend on the inputs")
            return np.asarray(self.parameters.sample_coefficients(parameters, np.atleast_2d(inputs)))
        return np.asarray(self.parameters.coefficients(parameters))

    def _chain_rule(self, parameters: NDArray, inputs: NDArray, per_sample: NDArray) -> NDArray:
        """The mean loss gradient in the trained parameters from each sample's dL/dθ."""
        if self.parameters is None:
            return per_sample.mean(axis=0)
        if hasattr(self.parameters, "sample_jacobians"):
            jacobians = np.asarray(self.parameters.sample_jacobians(parameters, np.atleast_2d(inputs)))
            return np.einsum("bp,bpf->f", per_sample, jacobians) / len(per_sample)
        return np.asarray(self.parameters.jacobian(parameters)).T @ per_sample.mean(axis=0)

    def initial_state(self) -> TrainingState:
        rng = np.random.default_rng(self.config.seed)
        theta = self.task.initial_parameters(rng)
        optimizer = make_optimizer(self.config.optimizer, self.config.learning_rate)
        return TrainingState(0, theta, optimizer.state(), dict(rng.bit_generator.state))

    def save_checkpoint(self, state: TrainingState) -> None:
        write_json(
            self.checkpoint_path,
            {
                "step": state.step,
                "seed": self.config.seed,
                "run": self._fingerprint(),
                "parameters": self.parameter_names,
                "theta": state.theta.tolist(),
                "optimizer": state.optimizer,
                "rng": state.rng,
            },
            CHECKPOINT_SCHEMA,
        )

    def _fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote the checkpoint (all but steps)."""
        config = {k: v for k, v in asdict(self.config).items() if k != "steps"}
        if config["bounds"] is not None:
            config["bounds"] = list(config["bounds"])
        fingerprint = {
            "config": config,
            "task": self.task.describe(),
            "n_qubits": self.task.model.n_qubits,
            "parameters": self.parameter_names,
            "penalty": None
            if self.penalty is None
            else [self.penalty.strength, self.penalty.threshold, self.penalty.mask.tolist()],
        }
        if self.backend is not None:  # (absent without one: older checkpoints keep resuming)
            fingerprint["backend"] = self.backend.name
        return fingerprint

    def load_checkpoint(self) -> TrainingState:
        document = migrate_checkpoint(
            read_json(self.checkpoint_path, (CHECKPOINT_SCHEMA, CHECKPOINT_SCHEMA_V1))
        )
        stored = document.get("run")
        if not isinstance(stored, dict):
            raise StorageError(f"{self.checkpoint_path}: run = {shown(stored)} is not a run's description")
        for key, value in self._fingerprint().items():
            if stored.get(key) == value:
                continue
            detail = key
            if key == "config" and isinstance(stored.get(key), dict):
                name = next((k for k in value if stored[key].get(k) != value[k]), key)
                detail = f"{name} = {stored[key].get(name)!r}, this run {value.get(name)!r}"
            raise StorageError(
                f"{self.checkpoint_path}: checkpoint belongs to another model or configuration "
                f"({detail}); resume only the run that wrote it"
            )
        names = self.parameter_names
        where = str(self.checkpoint_path)
        fields = (
            Field("step", "integer", low=0),
            Field("theta", "numbers", length=len(names), low=-MAX_MAGNITUDE, high=MAX_MAGNITUDE),
            Field("optimizer", "any"),
            Field("rng", "any"),
        )
        values = parse_section({f.name: document.get(f.name) for f in fields}, fields, where, StorageError)
        step, theta = values["step"], values["theta"]
        check_state(self.config.optimizer, document["optimizer"], len(names), where, StorageError)
        if not isinstance(document["rng"], dict):
            raise StorageError(f"{where}: rng = {shown(document['rng'])} is not a random generator state")
        try:  # numpy checks a generator state when it is set
            np.random.default_rng().bit_generator.state = document["rng"]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise StorageError(
                f"{where}: rng is not a random generator state ({type(exc).__name__})"
            ) from None
        history = [r for r in self.read_metrics() if r["step"] <= step]
        return TrainingState(
            step, np.array(theta, dtype=float), document["optimizer"], document["rng"], history
        )

    def read_metrics(self) -> list[dict[str, Any]]:
        """The step records of ``metrics.jsonl``. A damaged line (cut by a kill, or edited) is
        skipped with a :class:`DamagedLogWarning` naming it; every valid record, before and after
        it, is kept. The numbers of the skipped lines are left in ``damaged_lines``."""
        self.damaged_lines = []
        if not self.metrics_path.exists():
            return []
        lines = read_input_text(self.metrics_path).splitlines()
        try:
            header = json.loads(lines[0]) if lines else None
        except json.JSONDecodeError:
            header = None
        if header != {"schema": METRICS_SCHEMA}:
            raise StorageError(f"{self.metrics_path}: first line is not the {METRICS_SCHEMA} header")
        records = []
        for number, line in enumerate(lines[1:], start=2):
            try:
                record = json.loads(line)
            except ValueError:  # not JSON (bad syntax, an integer beyond Python's digit limit)
                record = None
            if not _is_step_record(record):
                self.damaged_lines.append(number)
                continue
            records.append(record)
        if self.damaged_lines:
            shown = ", ".join(str(n) for n in self.damaged_lines[:5])
            more = "" if len(self.damaged_lines) <= 5 else f" and {len(self.damaged_lines) - 5} more"
            warnings.warn(
                DamagedLogWarning(
                    f"{self.metrics_path}: line {shown}{more} is not a step record (damaged); "
                    f"skipped, the other {len(records)} records kept"
                ),
                stacklevel=2,
            )
        return records

    # -- one step ----------------------------------------------------------------------------

    def gradient(
        self,
        parameters: NDArray,
        inputs: NDArray,
        targets: NDArray,
        rng: np.random.Generator,
        step: int = 0,
    ) -> tuple[NDArray, dict[str, Any]]:
        """Mean loss gradient over a batch in the trained parameters, and the step's records."""
        theta = self.coefficients(parameters, inputs)
        if self.backend is not None:
            per_sample, record = self._backend_gradient(theta, inputs, targets, step)
        else:
            per_sample, record = self._model_gradient(theta, inputs, targets, rng)
        gradient = self._chain_rule(parameters, inputs, per_sample)
        if self.penalty is not None:
            gradient = gradient + self.penalty.gradient(theta)
            record["penalty"] = self.penalty.value(theta)
        return gradient, record

    def _backend_gradient(
        self, theta: NDArray, inputs: NDArray, targets: NDArray, step: int
    ) -> tuple[NDArray, dict[str, Any]]:
        """The step as phase jobs on the backend: free round, nudged round, each sample's gradient
        from counts."""
        from qep_analog.backends.step import measured_step

        cfg = self.config
        measured = measured_step(
            self.backend, self.task.model, inputs, theta, targets, self.task.loss,
            beta=cfg.beta, scheme=cfg.scheme, bases=self.bases, shots=cfg.shots,
            round_prefix=f"step-{step:05d}/", entropy=(cfg.seed, step),
        )  # fmt: skip
        device = measured.rounds[0].get("device") or {}
        record: dict[str, Any] = {
            "loss": float(self.task.loss.value(measured.outputs, targets).mean()),
            "shots": measured.shots,
            "device_time_s": measured.device_time_s,
            "gradient": measured.mean_gradient.tolist(),
            "gradient_errors": measured.mean_gradient_errors.tolist(),
            "snapshot": device.get("snapshot_hash"),
        }
        if measured.mean_gradient_bias is not None:
            record["gradient_bias"] = measured.mean_gradient_bias.tolist()
        return measured.gradients, record

    @single_blas_thread
    def _model_gradient(
        self, theta: NDArray, inputs: NDArray, targets: NDArray, rng: np.random.Generator
    ) -> tuple[NDArray, dict[str, Any]]:
        """Each sample's loss gradient from the model's states (exact, or emulated noise)."""
        cfg = self.config
        eq = self.equilibrium
        if cfg.shots is None and cfg.estimator == "qep":
            return self._exact_qep_gradient(theta, inputs, targets)
        noise = ShotNoise(cfg.shots, self._identity, rng) if cfg.shots is not None else None
        free = eq.prepare(inputs, theta, with_gap=cfg.check_gap, check_degeneracy=False)
        exact_outputs = self.compiled.output_values(free.strings)
        if self.sampler is not None:
            read = self.sampler.strings(np.asarray(free.states), rng, self.sampler.output_settings)
            measured = self.compiled.output_values(read)
        else:
            measured = self.compiled.output_values(noise(free.strings)) if noise else exact_outputs
        error_signal = self.task.loss.error_signal(measured, targets)
        crossed = None
        if self.sampler is not None:
            per_sample = sampled_qep_gradient(
                eq, inputs, theta, error_signal, cfg.beta, self.sampler, rng, scheme=cfg.scheme, free=free
            )
        elif cfg.estimator == "exact":
            per_sample = exact_gradient(eq, inputs, theta, error_signal, free=free)
        else:
            estimate = qep_estimate(
                eq, inputs, theta, error_signal, cfg.beta, cfg.scheme, free=free, noise=noise
            )  # fmt: skip
            per_sample, crossed = estimate.gradient, estimate.crossed
        small_gap = None
        nudge = nudge_sizes(eq, free, error_signal, cfg.beta) if cfg.estimator == "qep" else None
        if nudge is not None and free.gaps is not None:
            small_gap = small_gap_count(nudge, free.gaps, crossed)
        return self._step_result(per_sample, free, exact_outputs, targets, small_gap)

    def _exact_qep_gradient(
        self, theta: NDArray, inputs: NDArray, targets: NDArray
    ) -> tuple[NDArray, dict[str, Any]]:
        """The QEP step with exact expectation values: on an executed equilibrium, each sample's
        free state, error signal and nudged states are prepared together on one worker."""
        cfg = self.config
        step = qep_step(
            self.equilibrium, inputs, theta, targets, self.task.loss, cfg.beta, cfg.scheme,
            with_gap=cfg.check_gap,
        )  # fmt: skip
        outputs = self.compiled.output_values(step.free.strings)
        small_gap = None if step.nudge is None else step.small_gap_count()
        return self._step_result(step.gradient, step.free, outputs, targets, small_gap)

    def _step_result(
        self,
        per_sample: NDArray,
        free: Prepared,
        outputs: NDArray,
        targets: NDArray,
        small_gap: int | None,
    ) -> tuple[NDArray, dict[str, Any]]:
        """Each sample's gradient and the step's records."""
        record: dict[str, Any] = {"loss": float(self.task.loss.value(outputs, targets).mean())}
        if free.gaps is not None:
            record["min_gap"] = float(free.gaps.min())
            record["degenerate"] = int((free.gaps < self.equilibrium.solver.degeneracy_tol).sum())
            if small_gap is not None:
                record["small_gap"] = small_gap
        return per_sample, record

    def evaluate(self, parameters: NDArray, step: int = 0) -> dict[str, float]:
        """Test-set metrics: measured on the backend with the training's shots, or with the model's
        exact expectation values (infinitely many shots; always on a bundle)."""
        theta = self.coefficients(parameters, self.test_inputs)
        if self.backend is not None and not hasattr(self.backend, "for_round"):
            from qep_analog.backends.step import measure_outputs

            measured = measure_outputs(
                self.backend, self.task.model, self.test_inputs, theta, self.bases, self.config.shots,
                entropy=(self.config.seed, step, 2),
            )  # fmt: skip
            metrics = self.task.metrics(measured.values, self.test_targets)
            metrics["test_loss"] = float(self.task.loss.value(measured.values, self.test_targets).mean())
            return metrics
        return self._model_metrics(theta)

    @single_blas_thread
    def _model_metrics(self, theta: NDArray) -> dict[str, float]:
        free = self.equilibrium.prepare(self.test_inputs, theta, keep_states=False)
        outputs = self.compiled.output_values(free.strings)
        metrics = self.task.metrics(outputs, self.test_targets)
        metrics["test_loss"] = float(self.task.loss.value(outputs, self.test_targets).mean())
        return metrics

    # -- the loop ----------------------------------------------------------------------------

    def run(
        self,
        *,
        resume: bool = False,
        overwrite: bool = False,
        progress: Callable[[int, dict], None] | None = None,
    ) -> dict[str, Any]:
        """Train until ``config.steps``; with ``resume``, continue from the checkpoint. The run folder
        is locked while the run writes it (a second writer is refused at once); a folder that holds a
        run is refused unless ``resume`` or ``overwrite`` (which replaces that run)."""
        if resume and overwrite:
            raise ConfigError("training: resume and overwrite exclude each other (continue or replace)")
        with folder_lock(self.run_dir):
            return self._run(resume, overwrite, progress)

    def _run(
        self, resume: bool, overwrite: bool, progress: Callable[[int, dict], None] | None
    ) -> dict[str, Any]:
        cfg = self.config
        result_path = self.run_dir / "result.json"
        if resume:
            if not self.checkpoint_path.exists():
                raise StorageError(f"{self.checkpoint_path}: no checkpoint to resume from")
            state = self.load_checkpoint()
            if state.step > 0 and not self.metrics_path.exists():  # (at step 0 there is none yet)
                raise StorageError(
                    f"{self.metrics_path}: missing while {self.checkpoint_path.name} exists; the run's "
                    "history is gone: restore the file, or start again with --overwrite"
                )
            if state.step > cfg.steps:
                raise ConfigError(
                    f"training: steps = {cfg.steps} is below the checkpoint's step {state.step}"
                )
            if self.damaged_lines:  # keep the file as it was before the rewrite drops those lines
                damaged = self.run_dir / "metrics.jsonl.damaged"
                atomic_write_text(damaged, self.metrics_path.read_text(encoding="utf-8"))
        else:
            if not overwrite:
                names = (self.checkpoint_path.name, result_path.name, self.metrics_path.name)
                refuse_held_run(
                    self.run_dir,
                    present_files(self.run_dir, names),
                    "pass --resume to continue it or --overwrite to replace it",
                )
            for stale in (self.checkpoint_path, result_path, self.metrics_path):
                stale.unlink(missing_ok=True)
            state = self.initial_state()
            # the start is saved before anything else is written or computed: a run stopped at any
            # later moment (a kill in its first evaluation, a bundle waiting for counts) resumes
            self.save_checkpoint(state)
        remove_stale_temporaries(self.run_dir)  # of a run killed mid-write (this process holds the lock)
        self._rewrite_metrics(state.history)
        optimizer = make_optimizer(cfg.optimizer, cfg.learning_rate)
        optimizer.load_state(state.optimizer)
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng
        theta = state.theta
        history = state.history
        started = time.perf_counter()
        start_step = state.step
        with self.metrics_path.open("a", encoding="utf-8") as log:
            if state.step == 0 and not history:
                first = {"step": 0, **self.evaluate(theta, 0)}
                history.append(first)
                log.write(json.dumps(first, allow_nan=False) + "\n")
                log.flush()
            for step in range(state.step + 1, cfg.steps + 1):
                inputs, targets = self.task.sample_batch(rng, cfg.batch_size)
                gradient, record = self.gradient(theta, inputs, targets, rng, step)
                if not (np.isfinite(gradient).all() and np.isfinite(record["loss"])):
                    raise SolverError(f"training: non-finite loss or gradient at step {step}")
                theta = optimizer.step(theta, gradient)
                if cfg.bounds is not None:
                    theta = np.clip(theta, *cfg.bounds)
                if self.parameters is not None:
                    theta, clipped = self.parameters.project(theta)
                    record["clipped"] = clipped
                record = {"step": step, **record}
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    record.update(self.evaluate(theta, step))
                history.append(record)
                log.write(json.dumps(record, allow_nan=False) + "\n")
                log.flush()
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    self.save_checkpoint(
                        TrainingState(step, theta, optimizer.state(), dict(rng.bit_generator.state))
                    )
                if progress is not None:
                    progress(step, record)
                if self.callback is not None:
                    self.callback(step, record)
        elapsed = time.perf_counter() - started
        final = next(r for r in reversed(history) if "max_choice_accuracy" in r or "test_loss" in r)
        checked = [r for r in history if "min_gap" in r]
        gaps = {
            "samples_checked": len(checked) * cfg.batch_size,
            "min_gap": min((r["min_gap"] for r in checked), default=None),
            "degenerate": sum(r.get("degenerate", 0) for r in checked),
            "small_gap": sum(r.get("small_gap", 0) for r in checked),
        }
        result = {
            "steps": cfg.steps,
            "gaps": gaps,
            "seed": cfg.seed,
            "config": asdict(cfg),
            "parameters": dict(zip(self.parameter_names, theta.tolist(), strict=True)),
            "final": final,
            "seconds_per_step": elapsed / max(cfg.steps - start_step, 1),
        }
        if self.parameters is not None and not self.per_sample:
            coefficients = self.coefficients(theta).tolist()
            result["coefficients"] = dict(zip(self.task.model.parameter_names, coefficients, strict=True))
        counted = [r for r in history if "shots" in r]
        if counted:
            result["device_usage"] = {
                "shots": sum(r["shots"] for r in counted),
                "device_time_s": None
                if any(r["device_time_s"] is None for r in counted)
                else sum(r["device_time_s"] for r in counted),
                "clipped_steps": sum(bool(r.get("clipped")) for r in counted),
            }
        if self.backend is not None:
            result["backend"] = self.backend.name
        if self.device is not None:
            result["device"] = self.device
        write_json(self.run_dir / "result.json", result, RESULT_SCHEMA)
        return result

    def _rewrite_metrics(self, history: list[dict[str, Any]]) -> None:
        header = json.dumps({"schema": METRICS_SCHEMA}) + "\n"
        atomic_write_text(self.metrics_path, header + "".join(json.dumps(r) + "\n" for r in history))
