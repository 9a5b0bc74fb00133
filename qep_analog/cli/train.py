"""``qep-analog train``: train a model from an experiment file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qep_analog.cli.common import positive_int
from qep_analog.qep.trainer import ESTIMATORS


def register(commands: Any) -> None:
    train = commands.add_parser("train", help="train a model from an experiment file")
    train.add_argument("config", help="experiment file (qep-experiment/1), e.g. examples/phase_sensor.yaml")
    train.add_argument("--steps", type=int, help="override training.steps")
    train.add_argument("--seed", type=int, help="override training.seed")
    train.add_argument("--estimator", choices=ESTIMATORS, help="override training.estimator")
    train.add_argument("--shots", help="shots per expectation value, or 'exact'")
    train.add_argument("--output", help="run folder (default: the file's output, or runs/NAME)")
    train.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    train.add_argument("--json", action="store_true", help="print the final report as JSON")
    train.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from qep_analog.qep.trainer import Trainer
    from qep_analog.tasks.experiment import load_experiment
    from qep_analog.tasks.reporting import TrainingProgress, write_report

    overrides: dict[str, Any] = {}
    for key in ("steps", "seed", "estimator"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.shots is not None:
        overrides["shots"] = None if args.shots == "exact" else positive_int(args.shots, "--shots")
    experiment = load_experiment(args.config, overrides)
    output = Path(args.output) if args.output else experiment.output
    trainer = Trainer(experiment.task, experiment.training, output, penalty=experiment.penalty)
    show = not (args.quiet or args.json)
    with TrainingProgress(experiment.training.steps, enabled=show) as progress:
        result = trainer.run(resume=args.resume, progress=progress.update)
    report = write_report(trainer, result)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.quiet:
        final = result["final"]
        print(
            f"{experiment.name}: step {final['step']}  test max-choice accuracy "
            f"{final['max_choice_accuracy']:.4f}  single-shot {final['single_shot_accuracy']:.4f}"
            f"  grid max-choice {report['grid']['max_choice_accuracy']:.4f}"
        )
        gaps = result["gaps"]
        if gaps["samples_checked"]:
            print(
                f"gaps: minimum {gaps['min_gap']:.3g} over {gaps['samples_checked']} training "
                f"samples; {gaps['degenerate']} degenerate; {gaps['small_gap']} with a nudge not "
                "small against the gap (biased QEP estimates)"
            )
        print(f"results in {output}/ (metrics.jsonl, result.json, *.png)")
    return 0
