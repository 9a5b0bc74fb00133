"""Why the Rydberg sensor does not recover through the emulated ramp: what the 3.8 µs ramp prepares
for each phase, what a longer ramp would, and the best the emulated device can be trained to.

Starts from a sensor trained on exact states (a run's ``result.json``, e.g. seed 0 of
``examples/results/rydberg_sensor/run.sh``) and reads the 200 test inputs of
``examples/rydberg_sensor_device.yaml`` (or ``--experiment FILE``: another device's fine-tuning file)
through the noiseless ``qutip`` backend (exact emulated outputs, no shots), on the nominal profile:

    python benchmarks/rydberg_sensor_ramp_limit.py phases RESULT [--duration 3.8] [--recipe rydberg-aquila]
    python benchmarks/rydberg_sensor_ramp_limit.py fine-tune RESULT [--steps 100] [--rate 0.1]
    python benchmarks/rydberg_sensor_ramp_limit.py fake-lab RESULT [--history H] [--inputs 60] [--shots 300]

``phases``: max-choice accuracy per phase and per R_b/a band, exact states against the emulated
ramp; ``--duration`` longer than the device's longest sequence (4 µs on aquila-like) uses the
profile's relaxed variant (limits lifted, physics kept). ``fine-tune``: Adam on the gradient of the
*emulated* loss by central finite differences (h = 0.2 rad/µs for the detunings, 0.1 µm for the
positions; batches of 10, no shots): not QEP and not what a lab can afford, the upper bound of what
any estimator could reach through these preparations. ``fake-lab``: the first ``--inputs`` test
inputs read with ``--shots`` shots through the fake lab of the experiment's device (seed 0, as in
the committed runs) playing the ramps on its true device with its hidden noise (``preparation:
adiabatic``), programmed with the nominal profile or, with ``--history``, with the calibration in
force there (the daily runcard's records).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog import Trainer, load_recipe
from qep_analog.backends.configure import backend_for_run
from qep_analog.backends.emulated import QutipBackend
from qep_analog.backends.step import measure_outputs
from qep_analog.tasks.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "examples" / "rydberg_sensor_device.yaml"
#: finite-difference steps: local detunings (rad/µs), sensor coordinates (µm)
H_DETUNING, H_POSITION = 0.2, 0.1


def setup(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(task, trainer, backend): the sensor of ``args.result`` and the noiseless qutip backend."""
    result, recipe, duration = args.result, args.recipe, args.duration
    experiment = load_experiment(args.experiment, {"shots": None}, nominal=True, init=result)
    task: Any = experiment.task
    loaded = load_recipe(recipe)
    profile = experiment.profile
    assert profile is not None  # the experiment names its device
    if duration is not None:
        segments = max(loaded.segments, round(duration / 0.05))
        loaded = dataclasses.replace(loaded, duration=duration, segments=segments)
        if duration > profile.capabilities.max_duration:  # the device's longest sequence
            profile = profile.relaxed()
    backend = QutipBackend(task.model, profile, loaded, bias_budget=False)
    trainer = Trainer(task, experiment.training, ROOT / "runs" / "ramp_limit", backend=backend)
    return task, trainer, backend


def outputs(task: Any, trainer: Any, backend: Any, phi: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    theta = trainer.coefficients(phi, inputs)
    return measure_outputs(backend, task.model, inputs, theta, trainer.bases, None).values


def nearest(task: Any, values: np.ndarray) -> np.ndarray:
    return np.argmin(((values[:, None, :] - task.codewords[None]) ** 2).sum(-1), axis=1)


def phases(args: argparse.Namespace) -> None:
    task, trainer, backend = setup(args)
    phi = task.initial_parameters(np.random.default_rng(0))
    emulated = outputs(task, trainer, backend, phi, trainer.test_inputs)
    free = trainer.equilibrium.prepare(trainer.test_inputs, trainer.coefficients(phi, trainer.test_inputs))
    exact = trainer.compiled.output_values(free.strings)
    truth = nearest(task, trainer.test_targets)
    on_exact, on_ramp = nearest(task, exact) == truth, nearest(task, emulated) == truth
    print(
        f"{backend.recipe.name}, {backend.recipe.duration:g} µs ({backend.profile.label}): test max-choice "
        f"exact {on_exact.mean():.3f}, emulated ramp {on_ramp.mean():.3f}"
    )
    for k, phase in enumerate(task.phases):
        chosen = truth == k
        print(
            f"  {phase:<11} {chosen.sum():3d} inputs: exact {on_exact[chosen].mean():.3f}, ramp "
            f"{on_ramp[chosen].mean():.3f}; <n_A>, <n_B> exact {np.round(exact[chosen].mean(0), 3)}, "
            f"ramp {np.round(emulated[chosen].mean(0), 3)}"
        )
    points = task.phase_points(trainer.test_inputs)
    low_rb, high_rb = task.rb_over_a
    edges = np.linspace(float(low_rb), float(high_rb), 6)
    for low, high in itertools.pairwise(edges):
        band = (points[:, 1] >= low) & (points[:, 1] < high + 1e-12)
        omega = float(task.omega(np.array((low + high) / 2)))
        product = omega * backend.recipe.duration
        print(
            f"  R_b/a {low:.2f}-{high:.2f} (Ω ≈ {omega:.2f} rad/µs, T·Ω ≈ {product:.0f}): "
            f"{band.sum():3d} inputs, exact {on_exact[band].mean():.3f}, ramp {on_ramp[band].mean():.3f}"
        )


def fine_tune(args: argparse.Namespace) -> None:
    task, trainer, backend = setup(args)
    geometry = task.parameterisation
    phi = task.initial_parameters(np.random.default_rng(0))
    steps = np.where(np.arange(len(phi)) < geometry.n_atoms, H_DETUNING, H_POSITION)
    rng = np.random.default_rng(args.seed)
    first, second = np.zeros_like(phi), np.zeros_like(phi)
    beta1, beta2 = 0.9, 0.999

    def loss(p: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
        return float(task.loss.value(outputs(task, trainer, backend, p, x), y).mean())

    def accuracy(p: np.ndarray) -> float:
        values = outputs(task, trainer, backend, p, trainer.test_inputs)
        return float(np.mean(nearest(task, values) == nearest(task, trainer.test_targets)))

    print(f"step 0: test max-choice through the ramp {accuracy(phi):.3f}", flush=True)
    started = time.perf_counter()
    for k in range(1, args.steps + 1):
        x, y = task.sample_batch(rng, 10)
        gradient = np.array(
            [
                (loss(phi + h * e, x, y) - loss(phi - h * e, x, y)) / (2 * h)
                for h, e in zip(steps, np.eye(len(phi)), strict=True)
            ]
        )
        first = beta1 * first + (1 - beta1) * gradient
        second = beta2 * second + (1 - beta2) * gradient**2
        move = (first / (1 - beta1**k)) / (np.sqrt(second / (1 - beta2**k)) + 1e-8)
        phi = geometry.project(phi - args.rate * move)[0]
        if k % args.every == 0 or k == args.steps:
            print(
                f"step {k}: test max-choice through the ramp {accuracy(phi):.3f} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )


def fake_lab(args: argparse.Namespace) -> None:
    history = args.history
    experiment = load_experiment(
        args.experiment, {"shots": args.shots}, nominal=history is None, history=history, init=args.result
    )
    task: Any = experiment.task
    backend = backend_for_run(
        "fake-lab", task.model, experiment.profile, run_dir=ROOT / "runs" / "ramp_limit", seed=0,
        recipe=args.recipe, options={"preparation": "adiabatic", "bias_budget": False},
    )  # fmt: skip
    trainer = Trainer(task, experiment.training, ROOT / "runs" / "ramp_limit", backend=backend)
    phi = task.initial_parameters(np.random.default_rng(0))
    inputs, targets = trainer.test_inputs[: args.inputs], trainer.test_targets[: args.inputs]
    theta = trainer.coefficients(phi, inputs)
    values = measure_outputs(
        backend, task.model, inputs, theta, trainer.bases, args.shots, entropy=(0, 0)
    ).values
    truth = nearest(task, targets)
    right = nearest(task, values) == truth
    profile = "nominal" if history is None else f"calibrated ({history})"
    print(
        f"fake lab playing {args.recipe}, {profile}: {len(inputs)} test inputs, {args.shots} shots: "
        f"{right.mean():.3f}"
    )
    for k, phase in enumerate(task.phases):
        print(f"  {phase:<11} {(truth == k).sum():3d} inputs: {right[truth == k].mean():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, function in (("phases", phases), ("fine-tune", fine_tune), ("fake-lab", fake_lab)):
        command = commands.add_parser(name)
        command.add_argument("result", help="result.json of a sensor trained on exact states")
        command.add_argument("--experiment", default=str(EXPERIMENT), help="the device fine-tuning file")
        command.add_argument("--recipe", default="rydberg-aquila")
        command.add_argument("--duration", type=float, default=None, help="µs (default: the recipe's)")
        command.set_defaults(function=function)
        if name == "fine-tune":
            command.add_argument("--steps", type=int, default=100)
            command.add_argument("--rate", type=float, default=0.1)
            command.add_argument("--seed", type=int, default=7)
            command.add_argument("--every", type=int, default=25)
        if name == "fake-lab":
            command.add_argument("--history", default=None, help="calibration history folder")
            command.add_argument("--inputs", type=int, default=60)
            command.add_argument("--shots", type=int, default=300)
    args = parser.parse_args()
    args.function(args)


if __name__ == "__main__":
    main()
