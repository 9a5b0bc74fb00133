"""One QEP step through each backend: the 6-atom Rydberg chain of examples/models/rydberg_chain.yaml
on fresnel-like (rydberg-smooth, 4 µs), a batch of 10 samples × 3 phases (free, ±βε), each read in
the Z and X bases with 1000 shots — 60 sequences. Backends timed in turn within each round, so drift
of a shared machine cancels in the ratios; medians over rounds.

    python benchmarks/bench_backends.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

import qep_analog as qa

ROOT = Path(__file__).resolve().parents[1]
BATCH = 10
SHOTS = 1000
BETA = 0.1


def step(backend: Any, jobs: list[Any]) -> float:
    started = time.perf_counter()
    batch = backend.run(jobs)
    qa.sample_gradients(backend.model, jobs, batch, BETA, "symmetric")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = qa.load_model(ROOT / "examples" / "models" / "rydberg_chain.yaml")
    profile = qa.read_profile("fresnel-like")
    recipe = qa.load_recipe("rydberg-smooth")
    rng = np.random.default_rng(0)
    base = model.vector("trainable", {"h": 4, "delta": 3, "s": 0.5, "J": 1.5}, 0.0)
    theta = base * (1 + 0.05 * rng.standard_normal(len(base)))
    eps = rng.choice([-1.0, 1.0], size=(BATCH, 1))
    jobs = qa.phase_jobs(np.zeros((BATCH, 0)), theta, eps, BETA, "symmetric", ["Z" * 6, "X" * 6], SHOTS)
    backends = {
        "exact": qa.make_backend("exact", model, profile),
        "qutip": qa.make_backend("qutip", model, profile, recipe),
        "qutip (QuTiP)": qa.make_backend("qutip", model, profile, recipe, method="qutip"),
        "qutip + noise": qa.make_backend("qutip", model, profile, recipe, noise=True),
        "pulser": qa.make_backend("pulser", model, profile, recipe),
    }
    for backend in backends.values():  # warm caches and compiled kernels
        backend.run(jobs[:3])
    times: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(args.rounds):
        for name, backend in backends.items():
            times[name].append(step(backend, jobs))
    device_time = backends["qutip"].run(jobs[:3]).metadata["device_time_s"] * BATCH
    print(f"{len(jobs)} phase jobs x 2 bases x {SHOTS} shots; device time of the step {device_time:.3f} s")
    qutip = statistics.median(times["qutip"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<14} {median:8.2f} s   ({median / qutip:6.2f} x qutip)")


if __name__ == "__main__":
    main()
