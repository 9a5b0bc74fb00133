"""Summarise finished phase-sensor runs: test accuracies per seed, mean and spread, and the mean
evaluation curve; writes one compact JSON per run (evaluation steps only) into ``--into``.

    python benchmarks/summarize_runs.py runs/phase_sensor_paper_seed* --into examples/results/paper
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from qep_analog.storage import read_json, write_json

SUMMARY_SCHEMA = "qep-run-summary/1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--into", type=Path, required=True)
    parser.add_argument("--command", default="", help="the command that produced the runs")
    args = parser.parse_args()
    finals, curves = [], []
    for run in args.runs:
        result = read_json(run / "result.json", "qep-run/1")
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        evaluations = [r for r in map(json.loads, lines) if "max_choice_accuracy" in r]
        write_json(
            args.into / f"seed{result['seed']}.json",
            {
                "seed": result["seed"],
                "config": result["config"],
                "final": result["final"],
                "grid": result.get("grid"),
                "gaps": result.get("gaps"),
                "seconds_per_step": result["seconds_per_step"],
                "evaluations": evaluations,
                **{
                    k: result[k]
                    for k in ("backend", "device", "device_usage", "model_states")
                    if k in result
                },
            },
            SUMMARY_SCHEMA,
        )
        finals.append(result)
        curves.append({r["step"]: r["max_choice_accuracy"] for r in evaluations})
    max_choice = np.array([r["final"]["max_choice_accuracy"] for r in finals])
    single = np.array([r["final"]["single_shot_accuracy"] for r in finals])
    grid = np.array([r["grid"]["max_choice_accuracy"] for r in finals if r.get("grid")])
    print(f"{'seed':>5} {'max-choice':>11} {'single-shot':>12} {'grid':>7} {'s/step':>7}")
    for r in finals:
        g = r.get("grid", {}).get("max_choice_accuracy", float("nan"))
        print(
            f"{r['seed']:>5} {r['final']['max_choice_accuracy']:>11.4f} "
            f"{r['final']['single_shot_accuracy']:>12.4f} {g:>7.4f} {r['seconds_per_step']:>7.3f}"
        )
    print(
        f"mean  {max_choice.mean():.4f} ± {max_choice.std(ddof=1) if len(finals) > 1 else 0:.4f}"
        f"  single-shot {single.mean():.4f}  grid {grid.mean() if len(grid) else float('nan'):.4f}"
        f"  ({len(finals)} seeds)"
    )
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    marks = steps if len(steps) <= 10 else [s for s in steps if s in (0, 500, 1000, 2000, 3000, 4000, 5000)]
    print("mean curve: " + ", ".join(f"{s}: {np.mean([c[s] for c in curves]):.3f}" for s in marks))
    write_json(
        args.into / "summary.json",
        {
            "command": args.command,
            "seeds": [r["seed"] for r in finals],
            "max_choice_accuracy": {"mean": float(max_choice.mean()), "values": max_choice.tolist()},
            "single_shot_accuracy": {"mean": float(single.mean()), "values": single.tolist()},
            "grid_max_choice_accuracy": grid.tolist(),
            "mean_curve": {str(s): float(np.mean([c[s] for c in curves])) for s in steps},
        },
        SUMMARY_SCHEMA,
    )


if __name__ == "__main__":
    main()
