"""``qep-analog explore``: the unsupervised tasks (phase exploration, sensitivity, boundary)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qep_analog.cli.common import add_calibration_options


def register(commands: Any) -> None:
    explore = commands.add_parser(
        "explore", help="phase exploration, sensitivity optimisation or boundary following"
    )
    explore.add_argument(
        "config", help="exploration file (qep-explore/1), e.g. examples/explore_phase.yaml"
    )
    explore.add_argument(
        "--iterations", type=int, help="override iterations (boundary: the most per theta_zz)"
    )
    explore.add_argument("--output", help="run folder (default: the file's output, or runs/NAME)")
    explore.add_argument(
        "--overwrite", action="store_true", help="replace the run the folder holds (default: refuse)"
    )
    explore.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_calibration_options(explore)
    explore.add_argument("--json", action="store_true", help="print result.json to stdout")
    explore.set_defaults(handler=run)


def _value(record: dict[str, Any] | None, key: str) -> str:
    return "-" if record is None else f"{record[key]:.5g}"


def _summary_lines(result: dict[str, Any]) -> list[str]:
    task = result["task"]
    lines = []
    if task == "boundary":
        for run in result["runs"]:
            points = run["points"]
            state = "converged" if run["converged"] else "NOT all converged"
            lines.append(
                f"branch from g = {run['start']:g}: {len(points)} points, "
                f"{run['iterations']} iterations, {state}"
            )
            lines.extend(
                f"  theta_zz {p['theta_zz']:7.3f}  g_c {p['center']:8.4f}  S {p['slope']:.4f}"
                for p in points
            )
        return lines
    objective = "cost" if task == "phase_exploration" else "slope"
    for run in result["runs"]:
        start = ", ".join(f"{v:g}" for v in run["start"])
        final, best = run["final"], run["best"]
        lines.append(
            f"start ({start}): {objective} k=0 {run['trajectory'][objective][0]:.5g}"
            f"  k=10 {_value(run['at_step_10'], objective)}  final (k={final['iteration']}) "
            f"{final[objective]:.5g}  best {best[objective]:.5g} (k={best['iteration']})"
        )
        notes = []
        if run["degenerate_steps"]:
            notes.append(f"{run['degenerate_steps']} with a degenerate ground state")
        if run["small_gap_steps"]:
            notes.append(f"{run['small_gap_steps']} with a nudge not small against the gap")
        if notes:
            lines.append(f"  of {run['iterations']} iterations: " + "; ".join(notes))
    return lines


def run(args: argparse.Namespace) -> int:
    from qep_analog import ConfigError, ExploreProgress, load_explore_config, run_exploration

    overrides: dict[str, Any] = {}
    if args.iterations is not None:
        if args.iterations < 1:
            raise ConfigError(f"--iterations: {args.iterations} must be positive")
        overrides["iterations"] = args.iterations
    if args.output:
        overrides["output"] = args.output
    config = load_explore_config(args.config, overrides)
    output = Path(args.output) if args.output else config.output
    show = not (args.quiet or args.json)
    with ExploreProgress(enabled=show) as progress:
        result = run_exploration(
            config,
            output,
            progress=progress.update,
            nominal=args.nominal,
            history=args.history,
            overwrite=args.overwrite,
        )
    if args.json:
        print(json.dumps(result, indent=2))
    elif not args.quiet:
        print(f"{config.name} ({config.task}):")
        for line in _summary_lines(result):
            print(line)
        diagram = result["diagram"]
        print(
            f"phase diagram: {diagram['theta_x'][2]} x {diagram['theta_zz'][2]} points, "
            f"{diagram['degenerate_points']} degenerate (gap < {diagram['degeneracy_tol']:g}, masked)"
        )
        for device, report in result.get("devices", {}).items():
            done = (
                "fully realisable"
                if report["fully_realisable"]
                else (f"not realisable: {len(report['dropped'])} terms, e.g. {report['dropped'][0]}")
            )
            print(f"on {device} ({report['basis']}): {done}")
        print(f"results in {output}/ (metrics.jsonl, result.json, *.png)")
    return 0
