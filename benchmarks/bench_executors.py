"""Executors on one training step of a 32-sample batch at N = 14 (the phase sensor on a 12-site
periodic chain, cross-entropy loss, symmetric nudges β = 0.4, ``check_gap: false``): 32 free ground
states, their error signals, and 64 nudged states warm-started from them, as the Trainer runs it.

Serial is this process with Numba and BLAS at one thread: the same work a single worker does.
Processes and Dask use 2 single-threaded workers, kept warm across steps (the compiled model is
built once per worker), one chunk of samples per worker and call; each worker runs its samples
whole (free state, error signal, both nudges) and returns their gradients.

All three executors stay up for the whole run. After one warm-up step each, every round times one
step on each executor back to back, so that each round's speed-ups compare steps taken within
seconds of each other (the shared machine's speed drifts by 10–20 % over minutes). The summary is
the median of the per-round speed-ups. Gradients are checked bitwise against serial.

    python benchmarks/bench_executors.py [--rounds 5] [--workers 2] [--two-rounds] [--only dask]

``--only processes`` (or ``dask``) leaves the other parallel executor out: its idle workers (Dask's
wake up 100 times a second) then take nothing from the timed ones.

``--two-rounds`` also times the step in two rounds through the executor (free batch, error signals
in this process, nudged batch; the free states go out again as warm starts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from qep_analog.execution.executors import Executor, make_executor, single_threaded
from qep_analog.execution.preparation import EquilibriumSpec, ExecutedEquilibrium
from qep_analog.model.standard import phase_sensor
from qep_analog.qep.gradients import qep_step, two_round_qep_step
from qep_analog.qep.losses import CrossEntropy
from qep_analog.tasks.phase_sensor import sample_simplex

BATCH = 32
N_CHAIN = 12  # + 2 sensor qubits = 14
BETA = 0.4

Data = tuple[np.ndarray, np.ndarray, np.ndarray]


def fused(eq: ExecutedEquilibrium, data: Data) -> np.ndarray:
    x, theta, targets = data
    return qep_step(eq, x, theta, targets, CrossEntropy(), BETA).gradient


def two_rounds(eq: ExecutedEquilibrium, data: Data) -> np.ndarray:
    x, theta, targets = data
    return two_round_qep_step(eq, x, theta, targets, CrossEntropy(), BETA).gradient


Step = Callable[[ExecutedEquilibrium, Data], np.ndarray]


def timed(step: Step, eq: ExecutedEquilibrium, data: Data) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    gradient = step(eq, data)
    return time.perf_counter() - start, gradient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--two-rounds", action="store_true")
    parser.add_argument("--only", choices=["processes", "dask"], help="one parallel executor")
    args = parser.parse_args()
    model = phase_sensor(N_CHAIN)
    rng = np.random.default_rng(0)
    data = (sample_simplex(rng, BATCH), rng.uniform(-0.1, 0.1, 51), np.eye(3)[rng.integers(0, 3, BATCH)])
    spec = EquilibriumSpec(model, tol=1e-6)
    names = ["serial", f"processes:{args.workers}", f"dask-local:{args.workers}"]
    names = [n for n in names if args.only is None or n == "serial" or n.startswith(args.only)]
    single_threaded()  # serial: this process at one thread, like one worker
    executors: dict[str, Executor] = {name: make_executor(name) for name in names}
    steps = {"": fused} | ({" two-round": two_rounds} if args.two_rounds else {})
    runs = [(name + label, "serial" + label, ExecutedEquilibrium(spec, executors[name]), step)
            for name in names for label, step in steps.items()]  # fmt: skip
    print(f"batch {BATCH} at N = {model.n_qubits}: {BATCH} free + {2 * BATCH} nudged ground states; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    try:
        reference = {}
        for name, _, eq, step in runs:  # warm-up: workers start, compile and build their model
            reference[name] = step(eq, data)
        times: dict[str, list[float]] = {name: [] for name, *_ in runs}
        for r in range(args.rounds):
            line = []
            for name, serial, eq, step in runs:
                seconds, gradient = timed(step, eq, data)
                if not np.array_equal(gradient, reference[name]):
                    raise SystemExit(f"{name}: gradient differs from its warm-up step")
                times[name].append(seconds)
                ratio = times[serial][-1] / seconds
                line.append(f"{name} {seconds:.2f} s" + ("" if name == serial else f" ({ratio:.2f}x)"))
            print(f"round {r + 1}: " + " | ".join(line) + f" | load {os.getloadavg()[0]:.2f}")
    finally:
        for executor in executors.values():
            executor.close()
    for name, serial, _, _ in runs:
        same = np.array_equal(reference[name], reference[serial])
        ratios = [s / t for s, t in zip(times[serial], times[name], strict=True)]
        print(f"{name:26s} median {statistics.median(times[name]):6.2f} s  "
              f"speed-up per round: median {statistics.median(ratios):.2f}x "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})  bitwise = serial: {same}")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
