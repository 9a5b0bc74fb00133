"""Wall time of one training step of the paper's phase sensor: batch 10, symmetric QEP (beta 0.4),
10 shots, 51 parameters, 3 ground states per sample (30 per step).

Measured for qep-analog (the Trainer's step: compiled batched Lanczos, nudged states warm-started
from the free ones, and by default a gap solve per free state), for its exact linear-response
trainer, and, in the same run, for a plain SciPy step as the method's reference code takes it
(Kronecker-built sparse H, ``eigsh`` per solve, no gap check).

    python benchmarks/bench_training_step.py [--steps 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from reference import ScipyReference

from qep_analog.qep.trainer import Trainer, TrainingConfig
from qep_analog.tasks.phase_sensor import PhaseSensorTask


def time_trainer(estimator: str, steps: int, check_gap: bool = True) -> float:
    task = PhaseSensorTask(test_size=1)
    config = TrainingConfig(estimator=estimator, solver_tol=1e-6, check_gap=check_gap)
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(task, config, folder, penalty=task.penalty(0.02, 0.1))
    rng = np.random.default_rng(1)
    theta = task.initial_parameters(rng)
    batches = [task.sample_batch(rng, 10) for _ in range(steps + 3)]
    for inputs, targets in batches[:3]:  # compile and warm up
        trainer.gradient(theta, inputs, targets, rng)
    start = time.perf_counter()
    for inputs, targets in batches[3:]:
        trainer.gradient(theta, inputs, targets, rng)
    return (time.perf_counter() - start) / steps


def time_reference(steps: int) -> float:
    task = PhaseSensorTask(test_size=1)
    reference = ScipyReference(task.model)
    rng = np.random.default_rng(1)
    theta = task.initial_parameters(rng)
    beta = 0.4
    start = time.perf_counter()
    for _ in range(steps):
        inputs, targets = task.sample_batch(rng, 10)
        gradient = np.zeros_like(theta)
        for x, y in zip(inputs, targets, strict=True):
            free = reference.ground_state(reference.hamiltonian(x, theta, np.zeros(3)))
            outputs = reference.expectations(free, reference.outputs)
            eps = 2.0 * (outputs - y)
            plus = reference.ground_state(reference.hamiltonian(x, theta, beta * eps))
            minus = reference.ground_state(reference.hamiltonian(x, theta, -beta * eps))
            gradient += (
                reference.expectations(plus, reference.trainable)
                - reference.expectations(minus, reference.trainable)
            ) / (2 * beta)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    ours = time_trainer("qep", args.steps)
    unchecked = time_trainer("qep", args.steps, check_gap=False)
    adjoint = time_trainer("exact", args.steps)
    adjoint_unchecked = time_trainer("exact", args.steps, check_gap=False)
    reference = time_reference(max(args.steps // 4, 3))
    print(f"qep-analog QEP step (30 solves + 10 gaps):     {ours * 1000:8.1f} ms")
    print(f"qep-analog QEP step, check_gap false:          {unchecked * 1000:8.1f} ms")
    print(f"qep-analog exact linear-response step:         {adjoint * 1000:8.1f} ms")
    print(f"qep-analog exact step, check_gap false:        {adjoint_unchecked * 1000:8.1f} ms")
    print(f"plain SciPy QEP step (eigsh per solve):        {reference * 1000:8.1f} ms")
    print(f"speed-up over plain SciPy (with gap checks):   {reference / ours:8.1f} x")


if __name__ == "__main__":
    main()
