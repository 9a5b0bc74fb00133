"""Executors on one QEP step of a 32-sample batch at N = 14 (the phase sensor on a 12-site periodic
chain): 32 free ground states, then 64 nudged ones warm-started from them (symmetric, beta 0.4), as
the Trainer's step runs them (``check_gap: false``).

Serial is this process with Numba and BLAS at one thread: the same work a single worker does.
Processes and Dask use 2 single-threaded workers, kept warm across steps (the compiled model is
built once per worker), one chunk of samples per worker and call. Each executor runs one warm-up
step, then ``--repeats`` timed steps; the gradients are checked bitwise against serial.

    python benchmarks/bench_executors.py [--repeats 2] [--workers 2] [--chunks 1] [--threaded]

``--threaded`` also times the in-process Equilibrium with Numba's own threads (slow on a loaded
machine: its threads wait for each other).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from qep_analog.execution.executors import Executor, make_executor, single_threaded
from qep_analog.execution.preparation import EquilibriumSpec, ExecutedEquilibrium
from qep_analog.model.standard import phase_sensor
from qep_analog.qep.gradients import qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.tasks.phase_sensor import sample_simplex

BATCH = 32
N_CHAIN = 12  # + 2 sensor qubits = 14


def step(eq: object, x: np.ndarray, theta: np.ndarray, eps: np.ndarray) -> np.ndarray:
    free = eq.prepare(x, theta, check_degeneracy=False)  # type: ignore[attr-defined]
    return qep_gradient(eq, x, theta, eps, 0.4, free=free, warn_small_gap=False)  # type: ignore[arg-type]


def timed(eq: object, repeats: int, data: tuple[np.ndarray, ...]) -> tuple[list[float], np.ndarray]:
    gradient = step(eq, *data)  # warm-up: workers start, compile and build their model
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        gradient = step(eq, *data)
        times.append(time.perf_counter() - start)
    return times, gradient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threaded", action="store_true")
    parser.add_argument("--chunks", type=int, default=1, help="chunks per worker (load balance)")
    args = parser.parse_args()
    model = phase_sensor(N_CHAIN)
    rng = np.random.default_rng(0)
    data = (sample_simplex(rng, BATCH), rng.uniform(-0.1, 0.1, 51), rng.normal(size=(BATCH, 3)))
    spec = EquilibriumSpec(model, tol=1e-6)
    print(f"batch {BATCH} at N = {model.n_qubits}: {BATCH} free + {2 * BATCH} nudged ground states; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    results: dict[str, tuple[list[float], np.ndarray]] = {}
    if args.threaded:
        results["in-process, Numba threads"] = timed(Equilibrium(model, tol=1e-6), args.repeats, data)
    for spec_text in ("serial", f"processes:{args.workers}", f"dask-local:{args.workers}"):
        options = {} if spec_text == "serial" else {"chunks_per_worker": args.chunks}
        executor: Executor = make_executor(spec_text, **options)
        try:
            if spec_text == "serial":
                import numba

                threads = numba.get_num_threads()
                single_threaded()
            results[spec_text] = timed(ExecutedEquilibrium(spec, executor), args.repeats, data)
            if spec_text == "serial":
                numba.set_num_threads(threads)
        finally:
            executor.close()
    serial = min(results["serial"][0])
    for name, (times, gradient) in results.items():
        same = np.array_equal(gradient, results["serial"][1])
        print(f"{name:28s} best {min(times):7.2f} s  (runs {', '.join(f'{t:.2f}' for t in times)})"
              f"  speed-up {serial / min(times):4.2f}x  bitwise equal to serial: {same}")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
