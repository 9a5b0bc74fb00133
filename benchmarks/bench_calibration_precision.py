"""Calibration precision at 200 shots per point, and the daily runcards on 20 sites.

Each case runs a runcard of ``calibration/`` on fake labs whose hidden values are drawn around the
shipped profile (:mod:`qep_analog.calibration.fakes.draws`: Ω ±10 %, offsets ±2π·200 kHz, C6 ±10 %,
per-site offsets ±0.4 rad/µs, gains ±15 %, readout errors 0.5–8 %; ions: B_0 ±2π·5 kHz, axial and
first radial trap frequencies ±5 % / ±2.5 %, Stark gains ±15 %), one device per seed, and compares
every calibrated quantity with the hidden truth
(:mod:`qep_analog.calibration.fakes.precision`): rms and largest error over seeds (and sites), the
mean stated error, the goal and a verdict: "holds" when twice the rms error is within the goal (about
95 % of calibrations then are) and every value was; and the shots per point at which twice the rms
error would equal the goal if the error is statistical, 200·(2·rms/goal)² (below 200: the budget
has room; above: what the goal needs). Then the shots each run took, and the device
time at the profile's overhead per shot.

    python benchmarks/bench_calibration_precision.py [--seeds 5] [--cases rydberg-4,rydberg-20,ion-4,ion-20]

Cases: ``rydberg-4`` (rydberg-daily-200 on 4 atoms of fresnel-like), ``rydberg-20`` (rydberg-daily-20
on 20 atoms: 9 pairs at once), ``ion-4`` (ion-daily-200 on 4 ions of yb171-chain), ``ion-20``
(ion-daily-20 on 20 ions). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog.calibration.fakes.draws import draw_ion_hidden, draw_rydberg_hidden
from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.fakes.precision import (
    ION_GOALS,
    RYDBERG_GOALS,
    Budget,
    Goal,
    ion_errors,
    run_budget,
    rydberg_errors,
)
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
from qep_analog.calibration.runcard import load_runcard
from qep_analog.calibration.runner import run_runcard
from qep_analog.devices.profile import read_profile

#: case → (platform, runcard, sites)
CASES = {
    "rydberg-4": ("rydberg", "rydberg-daily-200", 4),
    "rydberg-20": ("rydberg", "rydberg-daily-20", 20),
    "ion-4": ("ion", "ion-daily-200", 4),
    "ion-20": ("ion", "ion-daily-20", 20),
}


Errors = dict[str, list[tuple[float, float]]]


def run_case(case: str, seed: int, folder: Path) -> tuple[Errors, Budget, Any]:
    """One drawn device through the case's runcard: errors per quantity, the run's budget, outcome."""
    platform, card, sites = CASES[case]
    rng = np.random.default_rng((1000 if platform == "rydberg" else 2000) + seed)
    if platform == "rydberg":
        profile = read_profile("fresnel-like")
        lab: Any = FakeRydbergLab(draw_rydberg_hidden(profile, sites, rng), seed, profile=profile)
    else:
        profile = read_profile("yb171-chain")
        lab = FakeIonLab(draw_ion_hidden(profile, sites, rng), profile, seed)
    outcome = run_runcard(load_runcard(card), profile, lab, folder)
    errors = rydberg_errors(outcome, lab) if platform == "rydberg" else ion_errors(outcome, lab)
    return errors, run_budget(outcome, profile.capabilities.shot_overhead), outcome


def _format(value: float, goal: Goal) -> str:
    if goal.unit == "relative":
        return f"{100 * value:.3g} %"
    if goal.unit == "absolute":
        return f"{100 * value:.3g} % abs."
    return f"{value:.3g} kHz"


def precision_table(errors: dict[str, list[tuple[float, float]]], goals: dict[str, Goal]) -> list[str]:
    rows = [
        "| quantity | goal | rms error | largest error | mean stated error | values | verdict | "
        "shots/point at 2·rms = goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, goal in goals.items():
        if name not in errors:
            rows.append(f"| {goal.label} | {_format(goal.limit, goal)} | not measured | | | 0 | no | |")
            continue
        e = np.array([x for x, _ in errors[name]])
        stated = float(np.mean([s for _, s in errors[name]]))
        rms, worst = math.sqrt(float(np.mean(e**2))), float(np.max(np.abs(e)))
        needed = 200 * (2 * rms / goal.limit) ** 2  # if the error is statistical
        if 2 * rms <= goal.limit:
            verdict = "holds" if worst <= goal.limit else "holds (2·rms), not every value"
        else:
            verdict = "rms only" if rms <= goal.limit else "no"
        rows.append(
            f"| {goal.label} | {_format(goal.limit, goal)} | {_format(rms, goal)} | "
            f"{_format(worst, goal)} | {_format(stated, goal)} | {e.size} | {verdict} | {needed:.3g} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores); seeds 0–{args.seeds - 1}\n")
    budgets: list[str] = [
        "| case | runcard | sites | steps judged good | shots/point | shots per run | device time | "
        "wall time (fake lab) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            platform, card, sites = CASES[case]
            pooled: dict[str, list[tuple[float, float]]] = defaultdict(list)
            good = total = 0
            runs: list[Budget] = []
            start = time.perf_counter()
            for seed in range(args.seeds):
                errors, budget, outcome = run_case(case, seed, Path(tmp) / f"{case}-{seed}")
                for name, values in errors.items():
                    pooled[name].extend(values)
                good += sum(step.result.quality == "good" for step in outcome.steps)
                total += len(outcome.steps)
                runs.append(budget)
                bad = [(s.routine, s.result.reasons) for s in outcome.steps if s.result.quality != "good"]
                if bad:
                    print(f"{case} seed {seed}: judged bad: {bad}")
            wall = (time.perf_counter() - start) / args.seeds
            goals = RYDBERG_GOALS if platform == "rydberg" else ION_GOALS
            print(f"### {case}: {card} on {sites} sites, {args.seeds} drawn devices\n")
            print("\n".join(precision_table(dict(pooled), goals)) + "\n")
            shots = runs[0]
            budgets.append(
                f"| {case} | {card} | {sites} | {good}/{total} | {shots.shots_per_point} | "
                f"{shots.total_shots:,} | {shots.device_time / 3.6e9:.2f} h | {wall:.1f} s |"
            )
    print("### Shots and device time per run\n")
    print("\n".join(budgets))


if __name__ == "__main__":
    main()
