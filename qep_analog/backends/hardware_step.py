"""One QEP step ready for hardware: the shot budget and β from the measurement module's planner, the
cost, and the step written as job bundles with the pair of preparations of a reciprocity check.

The planner works on the model as the device realises it, with the profile's readout errors: the
bias of the symmetric (one-sided) difference grows as κ β² (κ β), fitted from exact gradients at a
few β; the shot noise of the batch-mean gradient is c2 / (M β²) for M shots per phase and basis;
:func:`~qep_analog.measurement.gradient.choose_beta` gives the β of least error for each M, and the
plan takes the smallest M on the grid whose predicted error ‖δg‖/‖g‖ meets the target.

    OUT/plan.json            qep-step-plan/1: β, shots, predicted error, cost, the reciprocity pair
    OUT/free/                the free phases (bundle): their outputs give ε
    OUT/nudged/              written once free/ has its counts: the ±βε phases
    OUT/reciprocity/         θ_j ± d and ν_k ± d at the batch's first input
    OUT/gradient.json        qep-step-gradient/1, once every bundle has its counts
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.backends.bundle import BundleBackend
from qep_analog.backends.exact import ExactBackend
from qep_analog.backends.jobs import PhaseJob
from qep_analog.backends.schedules import device_time, job_schedules
from qep_analog.backends.step import measure_outputs, measured_step, shots_of
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError, ConstraintError, StorageError
from qep_analog.measurement.counts_file import plan_from_settings
from qep_analog.measurement.estimators import MAX_SHOTS
from qep_analog.measurement.gradient import (
    BetaChoice,
    bias_coefficients,
    choose_beta,
    setting_variances,
)
from qep_analog.measurement.reciprocity import PREPARATIONS, reciprocity_from_counts
from qep_analog.model.qep_model import MAX_MAGNITUDE, QEPModel
from qep_analog.qep.losses import Loss
from qep_analog.qep.names import SCHEMES
from qep_analog.qep.scheme import PHASES, SIGNS
from qep_analog.schema import Field, parse_section, shown
from qep_analog.sequences.recipes import Recipe
from qep_analog.storage import read_json, write_json

PLAN_SCHEMA = "qep-step-plan/1"
GRADIENT_SCHEMA = "qep-step-gradient/1"
#: the shots per phase and basis the planner considers
SHOT_GRID = (50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000)
#: the β at which the bias is fitted, in units of the experiment's β (its energy scale: 0.2 rad/µs
#: for the Rydberg sensor, 1e-4 rad/µs for the ion sensor)
BIAS_BETAS = (0.25, 0.5, 1.0, 1.5)


@dataclass(frozen=True)
class StepPlan:
    """β and shots per phase and basis, and the predicted relative error of the batch-mean gradient
    (its bias and shot-noise parts), against the target; ``met`` is False when even the largest
    budget of the grid misses it."""

    beta: float
    shots: int
    relative_error: float
    relative_bias: float
    relative_noise: float
    target: float
    met: bool


def _states(
    backend: ExactBackend, inputs: NDArray, theta: NDArray, eps: NDArray, beta: float, scheme: str
) -> list[dict[str, NDArray]]:
    """Per input, the state of each phase of the scheme (the backend's ground states)."""
    out: list[dict[str, NDArray]] = [{} for _ in inputs]
    for phase in PHASES[scheme]:
        nu = SIGNS[phase] * beta * eps
        thetas = theta if theta.ndim == 2 else np.repeat(theta[None], len(inputs), 0)
        prepared = backend.equilibrium.prepare(inputs, thetas, nu)
        for b, state in enumerate(np.asarray(prepared.states)):
            out[b][phase] = state
    return out


def within_fit(choice: BetaChoice, largest: float) -> BetaChoice:
    """``choice``, or the same budget at ``largest`` β when it chose more: the bias κβ² is fitted at
    β up to half of that and says nothing far beyond it (nor does a nudge that large stay on the
    device)."""
    if choice.beta <= largest:
        return choice
    bias, variance = choice.terms(largest)
    return dataclasses.replace(choice, beta=largest, bias_term=bias, variance_term=variance)


def plan_step(
    backend: ExactBackend,
    inputs: NDArray,
    theta: NDArray,
    targets: NDArray,
    loss: Loss,
    bases: Sequence[str],
    scheme: str,
    target: float,
    beta_scale: float = 0.2,
) -> StepPlan:
    """The smallest shot budget of :data:`SHOT_GRID` whose predicted relative error meets ``target``,
    with its β (see the module doc). ``backend``: the exact backend of the realised model;
    ``beta_scale``: the experiment's β, which sets the β at which the bias is fitted."""
    assert backend.profile is not None
    model = backend.model
    betas = tuple(beta_scale * b for b in BIAS_BETAS)
    gradients = [
        measured_step(
            backend, model, inputs, theta, targets, loss, beta=b, scheme=scheme, bases=bases, shots=None
        )
        for b in betas
    ]
    means = np.array([g.mean_gradient for g in gradients])
    norm = float(np.linalg.norm(means[0]))
    if not norm > 0:
        raise ConfigError("step: the gradient of this batch is zero; nothing to measure")
    kappa = bias_coefficients(betas, means, scheme)
    plan = plan_from_settings(model, list(bases), outputs=False)
    probe = betas[1]
    eps = loss.error_signal(gradients[1].outputs, targets)
    per_sample = [
        setting_variances(model, plan, states, probe, scheme, backend.readout).sum()
        for states in _states(backend, inputs, theta, eps, probe, scheme)
    ]
    c2 = float(np.sum(per_sample)) * probe**2 / len(inputs) ** 2
    choice = None
    for shots in SHOT_GRID:
        choice = within_fit(choose_beta(kappa, c2, shots, scheme), 2 * betas[-1])
        if np.sqrt(choice.mse) / norm <= target:
            break
    assert choice is not None
    error = float(np.sqrt(choice.mse) / norm)
    return StepPlan(
        choice.beta,
        choice.shots,
        error,
        float(np.sqrt(choice.bias_term) / norm),
        float(np.sqrt(choice.variance_term) / norm),
        target,
        error <= target,
    )


def reciprocity_jobs(
    model: QEPModel,
    x: NDArray,
    theta: NDArray,
    pair: tuple[int, int],
    shift: float,
    bases: Sequence[str],
    shots: int,
) -> list[PhaseJob]:
    """The four preparations of :data:`~qep_analog.measurement.reciprocity.PREPARATIONS` for the pair
    (parameter j, output k): θ_j ± d with ν = 0, then ν_k ± d; keys ``0/free`` … ``3/free``."""
    j, k = pair
    out = []
    for index, name in enumerate(PREPARATIONS):
        sign = 1.0 if name.endswith("plus") else -1.0
        shifted, nu = theta.copy(), np.zeros(len(model.outputs))
        if name.startswith("theta"):
            shifted[j] += sign * shift
        else:
            nu[k] = sign * shift
        out.append(
            PhaseJob(
                index,
                "free",
                tuple(map(float, x)),
                tuple(map(float, shifted)),
                tuple(nu),
                tuple(bases),
                shots,
            )
        )
    return out


def strongest_pair(backend: ExactBackend, x: NDArray, theta: NDArray, shift: float) -> tuple[int, int]:
    """The (parameter, output) pair with the largest response ∂⟨O_k⟩/∂θ_j at ``x`` (exact)."""
    model = backend.model
    jobs: list[PhaseJob] = []
    for j in range(len(theta)):
        for sign in (1.0, -1.0):
            shifted = theta.copy()
            shifted[j] += sign * shift
            jobs.append(
                PhaseJob(
                    len(jobs),
                    "free",
                    tuple(map(float, x)),
                    tuple(map(float, shifted)),
                    tuple(0.0 for _ in model.outputs),
                    (),
                    None,
                )
            )
    outputs = np.array([r.outputs for r in backend.run(jobs).results])
    response = np.abs(outputs[0::2] - outputs[1::2])
    # only a parameter whose shift the device plays (an ion's single coupling is not: the Rabi
    # frequencies set every coupling of an ion at once)
    playable = [_realisable(backend, x, np.asarray(jobs[2 * j].theta)) for j in range(len(theta))]
    if not any(playable):
        raise ConfigError(
            "step: the device realises no shift of a single coefficient for the reciprocity pair"
        )
    response[~np.array(playable)] = -1.0
    flat = int(np.argmax(response))
    return flat // response.shape[1], flat % response.shape[1]


def _realisable(backend: ExactBackend, x: NDArray, theta: NDArray) -> bool:
    from qep_analog.sequences.phases import target_controls

    assert backend.profile is not None
    try:
        target_controls(backend.model, backend.profile, x, theta)
    except ConstraintError:
        return False
    return True


def step_cost(
    model: QEPModel, profile: DeviceProfile, recipe: Recipe, jobs: Sequence[PhaseJob]
) -> dict[str, Any]:
    """Sequences, shots and device time (durations and the per-shot overhead) of ``jobs``."""
    schedules = job_schedules(model, profile, recipe, jobs)
    return {
        "sequences": sum(len(j.bases) for j in jobs),
        "shots": shots_of(jobs),
        "device_time_s": device_time(schedules, jobs, profile),
    }


def write_plan(out: str | Path, document: dict[str, Any]) -> None:
    write_json(Path(out) / "plan.json", document, PLAN_SCHEMA)


def finish_step(
    out: str | Path,
    bundle: BundleBackend,
    model: QEPModel,
    inputs: NDArray,
    theta: NDArray,
    targets: NDArray,
    loss: Loss,
    plan: StepPlan,
    scheme: str,
    bases: Sequence[str],
    pair: tuple[int, int],
    shift: float,
) -> dict[str, Any]:
    """Run the step's rounds on ``bundle`` (each writes its bundle and stops until its counts are
    there), then the reciprocity check; write and return ``gradient.json``."""
    step = measured_step(
        bundle,
        model,
        inputs,
        theta,
        targets,
        loss,
        beta=plan.beta,
        scheme=scheme,
        bases=bases,
        shots=plan.shots,
    )
    jobs = reciprocity_jobs(model, inputs[0], theta, pair, shift, bases, plan.shots)
    checked = bundle.for_round("reciprocity").run(jobs)
    settings = plan_from_settings(model, list(bases), outputs=True)
    data = {
        name: [(r.counts or {})[b] for b in bases]
        for name, r in zip(PREPARATIONS, checked.results, strict=True)
    }
    names = (model.parameter_names[pair[0]], model.output_names[pair[1]])
    reciprocity = reciprocity_from_counts(
        model, settings, names, data, shift, shift, mitigation=bundle.mitigation
    )
    document = {
        "parameters": model.parameter_names,
        "gradient": step.mean_gradient.tolist(),
        "standard_errors": step.mean_gradient_errors.tolist(),
        **({} if step.mean_gradient_bias is None else {"bias": step.mean_gradient_bias.tolist()}),
        "outputs": step.outputs.tolist(),
        "output_errors": step.output_errors.tolist(),
        "shots": step.shots,
        "device_time_s": step.device_time_s,
        "plan": asdict(plan),
        "reciprocity": reciprocity.describe(),
    }
    write_json(Path(out) / "gradient.json", document, GRADIENT_SCHEMA)
    return document


@dataclass(frozen=True)
class HardwareStep:
    """What one hardware step works on: the experiment's model and device, the batch, the
    coefficients θ, the recipe and the folder."""

    model: QEPModel
    profile: DeviceProfile
    recipe: Recipe
    inputs: NDArray
    targets: NDArray
    theta: NDArray
    loss: Loss
    scheme: str
    bases: tuple[str, ...]
    out: Path
    beta: float = 0.2

    @property
    def first_theta(self) -> NDArray:
        """θ of the first input (where the reciprocity pair is measured)."""
        return self.theta[0] if self.theta.ndim == 2 else self.theta

    @classmethod
    def of(
        cls,
        experiment: Any,
        out: str | Path,
        recipe: str | None,
        parameters: dict[str, float] | str | Path | None = None,
    ) -> HardwareStep:
        """The step of an experiment (:func:`~qep_analog.tasks.experiment.load_experiment`): its
        first batch (training seed), at ``parameters`` (by name, or a finished run's ``result.json``;
        default: the task's initial ones)."""
        from qep_analog.sequences.phases import readout_bases, realised_model
        from qep_analog.sequences.recipes import default_recipe, load_recipe

        profile = experiment.profile
        if profile is None:
            raise ConfigError("step: name the device (device: in the experiment, or --device)")
        if experiment.backend is not None:  # the step writes bundles; the section must still be valid
            from qep_analog.backends.configure import check_options

            section = {k: v for k, v in experiment.backend.items() if k not in ("name", "recipe")}
            check_options(experiment.backend["name"], section)
        recipe = (
            recipe
            or (experiment.backend or {}).get("recipe")
            or default_recipe(profile.platform, experiment.task.model.n_qubits)
        )
        loaded = load_recipe(recipe)
        if loaded.platform != profile.platform:
            raise ConfigError(
                f"step: recipe {loaded.name!r} is for {loaded.platform}, the device is {profile.platform}"
            )
        task, config = experiment.task, experiment.training
        rng = np.random.default_rng(config.seed)
        start = task.initial_parameters(rng)
        inputs, targets = task.sample_batch(rng, config.batch_size)
        geometry: Any = getattr(task, "parameterisation", None)
        names = list(geometry.names) if geometry is not None else task.model.parameter_names
        if isinstance(parameters, str | Path):
            from qep_analog.qep.trainer import parameters_from_result

            start = parameters_from_result(parameters, names, "step: parameters")
        elif parameters is not None:
            missing = [n for n in names if n not in parameters]
            if missing:
                raise ConfigError(f"step: the parameters given lack {missing[:3]}")
            start = np.array([float(parameters[n]) for n in names])
        if hasattr(geometry, "sample_coefficients"):  # coefficients per sample (e.g. per beat note)
            theta = np.asarray(geometry.sample_coefficients(start, inputs))
        else:
            theta = np.asarray(geometry.coefficients(start)) if geometry is not None else start
        model = realised_model(task.model, profile)
        return cls(
            model,
            profile,
            loaded,
            inputs,
            targets,
            theta,
            task.loss,
            config.scheme,
            tuple(readout_bases(model)),
            Path(out),
            config.beta,
        )


_BOUNDED: dict[str, Any] = {"low": 0.0, "high": MAX_MAGNITUDE}
_COST = (
    Field("sequences", "integer", low=0),
    Field("shots", "integer", low=0),
    Field("device_time_s", **_BOUNDED),
)
#: the keys of ``plan.json`` its readers use (the profile's provenance is kept as it is)
_PLAN_FIELDS = (
    Field("schema", "text", choices=(PLAN_SCHEMA,)),
    Field("device", "any"),
    Field("recipe", "text"),
    Field("scheme", "text", choices=SCHEMES),
    Field("bases", "texts", min_length=1),
    Field("plan", "section", fields=(
        Field("beta", open_low=True, **_BOUNDED),
        Field("shots", "integer", low=1, high=MAX_SHOTS),
        Field("relative_error", **_BOUNDED),
        Field("relative_bias", **_BOUNDED),
        Field("relative_noise", **_BOUNDED),
        Field("target", low=0.0, high=1.0, open_low=True, open_high=True),
        Field("met", "flag"),
    )),
    Field("cost", "section", fields=(
        Field("step", "section", fields=_COST), Field("reciprocity", "section", fields=_COST),
    )),
    Field("reciprocity_pair", "tuple", fields=(Field("parameter", "text"), Field("output", "text"))),
    Field("reciprocity_shift", open_low=True, **_BOUNDED),
    Field("theta", "any"),
    Field("inputs", "any"),
)  # fmt: skip


def read_plan(path: Path) -> dict[str, Any]:
    """A step's ``plan.json``, every key its readers use checked: a hand-damaged one is a one-line
    :class:`ConfigError` naming it."""
    try:
        document = read_json(path, PLAN_SCHEMA)
    except StorageError as exc:
        raise ConfigError(str(exc)) from None
    return {**document, **parse_section(document, _PLAN_FIELDS, str(path), ConfigError)}


def plan_hardware_step(step: HardwareStep, target: float) -> dict[str, Any]:
    """The step's plan (``plan.json``): read when the folder has one, else made and written."""
    path = step.out / "plan.json"
    if path.exists():
        return read_plan(path)
    if not 0 < target < 1:
        raise ConfigError(f"step: target relative error {target!r} must be in (0, 1)")
    exact = ExactBackend(step.model, step.profile)
    plan = plan_step(
        exact, step.inputs, step.theta, step.targets, step.loss, step.bases, step.scheme, target,
        step.beta,
    )  # fmt: skip
    shift = plan.beta
    pair = strongest_pair(exact, step.inputs[0], step.first_theta, shift)
    free = measure_outputs(exact, step.model, step.inputs, step.theta, step.bases, None)
    eps = step.loss.error_signal(free.values, step.targets)
    from qep_analog.backends.jobs import phase_jobs

    jobs = phase_jobs(step.inputs, step.theta, eps, plan.beta, step.scheme, step.bases, plan.shots)
    checks = reciprocity_jobs(
        step.model, step.inputs[0], step.first_theta, pair, shift, step.bases, plan.shots
    )
    document = {
        "device": step.profile.provenance(),
        "recipe": step.recipe.name,
        "scheme": step.scheme,
        "bases": list(step.bases),
        "plan": asdict(plan),
        "cost": {
            "step": step_cost(step.model, step.profile, step.recipe, jobs),
            "reciprocity": step_cost(step.model, step.profile, step.recipe, checks),
        },
        "reciprocity_pair": [step.model.parameter_names[pair[0]], step.model.output_names[pair[1]]],
        "reciprocity_shift": shift,
        "theta": step.theta.tolist(),
        "inputs": step.inputs.tolist(),
    }
    step.out.mkdir(parents=True, exist_ok=True)
    write_plan(step.out, document)
    return document


def _same(stored: Any, values: NDArray) -> bool:
    """Whether ``stored`` (read from a file) holds exactly ``values``."""
    try:
        array = np.asarray(stored, dtype=float)
    except (TypeError, ValueError, OverflowError):
        return False
    return array.shape == values.shape and bool(np.array_equal(array, values))


def run_hardware_step(step: HardwareStep, document: dict[str, Any]) -> dict[str, Any]:
    """The step's bundles in order (free, nudged, reciprocity; each raises
    :class:`~qep_analog.backends.bundle.BundlePending` until its counts are there), then
    ``gradient.json``."""
    plan = StepPlan(**document["plan"])
    path = step.out / "plan.json"
    if not (_same(document["theta"], step.theta) and _same(document["inputs"], step.inputs)):
        raise ConfigError(f"step: {path} was made for other parameters or inputs; use a fresh --out")
    bundle = BundleBackend(step.model, step.profile, step.recipe, directory=step.out)
    names = step.model.parameter_names, step.model.output_names
    parameter, output = document["reciprocity_pair"]
    if parameter not in names[0] or output not in names[1]:
        raise ConfigError(
            f"{path}: reciprocity_pair [{shown(parameter)}, {shown(output)}] is not a parameter and an "
            "output of this step's model"
        )
    pair = (names[0].index(parameter), names[1].index(output))
    return finish_step(
        step.out,
        bundle,
        step.model,
        step.inputs,
        step.theta,
        step.targets,
        step.loss,
        plan,
        step.scheme,
        step.bases,
        pair,
        document["reciprocity_shift"],
    )
