"""Why two workers do not reach 2× on the executor benchmark's batch: per-sample solve costs.

The same batch as ``bench_executors.py`` (32 samples of the phase sensor at N = 14, tolerance 1e-6),
solved sample by sample in this process at one thread: the free ground state, then its two nudged
states (±β ε, ε the cross-entropy error signal of its outputs, warm-started). From the per-sample
times it prints the step time two workers need

- with the executor's split of a training step (``qep_step``: contiguous halves of the samples,
  each sample's three solves on one worker),
- with the split of the two-round step (free round: contiguous halves of the samples; nudged round:
  the +βε half and the −βε half, i.e. every sample on both workers),
- with a strided split (task k to worker k mod 2, both rounds),
- with a perfect split (half the total), and
- with both rounds split by longest-processing-time first on the *true* costs (an oracle: the
  costs are not known before the solves).

    python benchmarks/bench_sample_costs.py
"""

from __future__ import annotations

import time

import numpy as np

from qep_analog.execution.executors import single_threaded
from qep_analog.model.standard import phase_sensor
from qep_analog.qep.losses import CrossEntropy
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.tasks.phase_sensor import sample_simplex

BATCH = 32
BETA = 0.4


def longest_first(costs: np.ndarray, workers: int = 2) -> float:
    """Makespan of greedy longest-processing-time scheduling."""
    loads = np.zeros(workers)
    for cost in np.sort(costs)[::-1]:
        loads[np.argmin(loads)] += cost
    return float(loads.max())


def main() -> None:
    single_threaded()
    model = phase_sensor(12)
    rng = np.random.default_rng(0)  # the executor benchmark's batch
    x, theta = sample_simplex(rng, BATCH), rng.uniform(-0.1, 0.1, 51)
    targets = np.eye(3)[rng.integers(0, 3, BATCH)]
    eq = Equilibrium(model, tol=1e-6)
    eq.prepare(x[:1], theta, check_degeneracy=False)  # compile
    free_t, plus_t, minus_t = np.zeros(BATCH), np.zeros(BATCH), np.zeros(BATCH)
    for i in range(BATCH):
        start = time.perf_counter()
        free = eq.prepare(x[i : i + 1], theta, check_degeneracy=False)
        free_t[i] = time.perf_counter() - start
        eps = CrossEntropy().error_signal(eq.compiled.output_values(free.strings), targets[i : i + 1])
        for sign, store in ((1.0, plus_t), (-1.0, minus_t)):
            start = time.perf_counter()
            eq.prepare(x[i : i + 1], theta, sign * BETA * eps, start=np.asarray(free.states))
            store[i] = time.perf_counter() - start
    half = BATCH // 2
    serial = free_t.sum() + plus_t.sum() + minus_t.sum()
    whole = free_t + plus_t + minus_t
    split = max(whole[:half].sum(), whole[half:].sum())
    two_rounds = max(free_t[:half].sum(), free_t[half:].sum()) + max(plus_t.sum(), minus_t.sum())
    nudged = np.concatenate([plus_t, minus_t])  # the nudged round's task order
    strided = max(free_t[0::2].sum(), free_t[1::2].sum()) + max(nudged[0::2].sum(), nudged[1::2].sum())
    oracle = longest_first(free_t) + longest_first(nudged)
    print(f"serial sum {serial:.2f} s; largest free solves {np.round(np.sort(free_t)[::-1][:4], 2)} s")
    print(f"free halves {free_t[:half].sum():.2f} s / {free_t[half:].sum():.2f} s; "
          f"nudged +/− {plus_t.sum():.2f} s / {minus_t.sum():.2f} s")  # fmt: skip
    bounds = (
        ("executor split", split),
        ("two-round split", two_rounds),
        ("strided split", strided),
        ("perfect split", serial / 2),
        ("LPT oracle", oracle),
    )
    for name, step in bounds:
        print(f"{name:15s} two-worker step {step:6.2f} s  speed-up bound {serial / step:4.2f}x")


if __name__ == "__main__":
    main()
