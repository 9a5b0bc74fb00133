"""The ``qep-analog`` command.

Exit status: 0 success, 2 bad input (one line on stderr, no traceback), 3 a violated precondition
of the method (e.g. a degenerate ground state), 4 a solver that did not converge.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from qep_analog.errors import ConfigError, PreconditionError, QEPError, QEPWarning, SolverError
from qep_analog.qep.gradients import SCHEMES
from qep_analog.qep.trainer import ESTIMATORS

EXIT_BAD_INPUT = 2
EXIT_PRECONDITION = 3
EXIT_SOLVER = 4


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _assignments(items: Sequence[str] | None, what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"{what}: {item!r} is not NAME=VALUE")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{what}: value {value!r} of {name!r} is not a number") from None
        if not np.isfinite(number):
            raise ConfigError(f"{what}: value {value!r} of {name!r} is not finite")
        out[name] = number
    return out


def _gradient(args: argparse.Namespace) -> int:
    from qep_analog.model.model_file import load_model
    from qep_analog.qep.gradients import (
        exact_gradient,
        finite_difference_gradient,
        qep_gradient,
        reciprocity_check,
    )
    from qep_analog.solvers.equilibrium import Equilibrium

    model = load_model(args.model)
    x = model.vector("inputs", _assignments(args.x, "--x"), 0.0)
    theta = model.vector("trainable", _assignments(args.theta, "--theta"), 0.0)
    eps = model.vector("outputs", _assignments(args.error_signal, "--error-signal"), 1.0)
    methods = [m for m in (args.compare or "").split(",") if m]
    for method in methods:
        if method not in ("exact", "finite-difference"):
            raise ConfigError(f"--compare: method {method!r} is unknown (valid: exact, finite-difference)")
    if args.temperature is not None and not args.temperature > 0:
        raise ConfigError(f"--temperature: {args.temperature} must be positive")
    pairs = [_pair(item) for item in args.reciprocity or []]
    for parameter, output in pairs:
        model.vector("trainable", {parameter: 0.0}, 0.0)
        model.vector("outputs", {output: 0.0}, 0.0)
    eq = Equilibrium(model, temperature=args.temperature, tol=1e-10)
    free = eq.prepare(x, theta, with_gap=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QEPWarning)
        qep = qep_gradient(eq, x, theta, eps, args.beta, args.scheme, free=free)[0]
    for warning in caught:
        print(f"qep-analog: warning: {warning.message}", file=sys.stderr)
    result: dict[str, Any] = {"parameters": model.parameter_names, "qep": qep.tolist()}
    if "exact" in methods:
        result["exact"] = exact_gradient(eq, x, theta, eps, free=free)[0].tolist()
    if "finite-difference" in methods:
        result["finite_difference"] = finite_difference_gradient(eq, x, theta, eps, free=free)[0].tolist()
    result["energy"] = float(free.energies[0])
    assert free.gaps is not None
    if eq.thermal:
        result["temperature"] = args.temperature
    else:
        result["gap"] = float(free.gaps[0])
    outputs = eq.compiled.output_values(free.strings[0])
    result["outputs"] = dict(zip(model.output_names, outputs.tolist(), strict=True))
    if pairs:
        check = reciprocity_check(eq, x, theta, pairs)
        result["reciprocity"] = [
            {"parameter": p, "output": o, "d_output_d_theta": left, "d_generator_d_nu": right}
            for (p, o), left, right in zip(
                pairs, check.d_output_d_theta.tolist(), check.d_generator_d_nu.tolist(), strict=True
            )
        ]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    energy_label = "free energy F" if eq.thermal else "ground energy E0"
    print(f"{energy_label} = {result['energy']:.10g}", end="")
    print(f"   T = {args.temperature:g}" if eq.thermal else f"   gap = {result['gap']:.6g}")
    for name, value in result["outputs"].items():
        print(f"<{name}> = {value:.8g}")
    columns = ["qep", *(m.replace("-", "_") for m in methods)]
    width = max(len("parameter"), *(len(n) for n in model.parameter_names))
    print(f"{'parameter':<{width}}  " + "  ".join(f"{c:>18}" for c in columns))
    for j, name in enumerate(model.parameter_names):
        print(f"{name:<{width}}  " + "  ".join(f"{result[c][j]:>18.10g}" for c in columns))
    for row in result.get("reciprocity", []):
        print(
            f"reciprocity {row['parameter']}:{row['output']}: d<O>/dtheta = "
            f"{row['d_output_d_theta']:.12g}, d<A>/dnu = {row['d_generator_d_nu']:.12g}"
        )
    return 0


def _pair(item: str) -> tuple[str, str]:
    parameter, sep, output = item.partition(":")
    if not sep or not parameter or not output:
        raise ConfigError(f"--reciprocity: {item!r} is not PARAMETER:OUTPUT")
    return parameter, output


def _train(args: argparse.Namespace) -> int:
    from qep_analog.qep.trainer import Trainer
    from qep_analog.tasks.experiment import load_experiment
    from qep_analog.tasks.reporting import TrainingProgress, write_report

    overrides: dict[str, Any] = {}
    for key in ("steps", "seed", "estimator"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.shots is not None:
        overrides["shots"] = None if args.shots == "exact" else _positive_int(args.shots, "--shots")
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


def _positive_int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not an integer or 'exact'") from None
    if value < 1:
        raise ConfigError(f"{what}: {value} must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qep-analog",
        description="Train and check analog quantum simulators with Quantum Equilibrium Propagation.",
        epilog="Exit status: 0 success, 2 bad input, 3 violated precondition (degenerate ground "
        "state), 4 solver did not converge.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    train.set_defaults(handler=_train)

    gradient = commands.add_parser("gradient", help="QEP gradient of a model file, with checks")
    gradient.add_argument("model", help="model file (qep-model/1)")
    for flag, what in (
        ("--x", "inputs (default 0)"),
        ("--theta", "parameters (default 0)"),
        ("--error-signal", "eps per output (default 1)"),
    ):
        gradient.add_argument(flag, nargs="*", action="extend", metavar="NAME=VALUE", help=what)
    gradient.add_argument("--beta", type=float, default=1e-3, help="nudge strength (default 1e-3)")
    gradient.add_argument("--scheme", choices=SCHEMES, default="symmetric")
    gradient.add_argument("--temperature", type=float, help="Gibbs state at T (omitted: ground state)")
    gradient.add_argument("--compare", help="comma-separated: exact,finite-difference")
    gradient.add_argument(
        "--reciprocity",
        nargs="+",
        action="extend",
        metavar="PARAMETER:OUTPUT",
        help="check d<O>/dtheta = d<A>/dnu for these pairs (two independent responses)",
    )
    gradient.add_argument("--json", action="store_true", help="print JSON")
    gradient.set_defaults(handler=_gradient)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except PreconditionError as exc:
        print(f"qep-analog: precondition violated: {exc}", file=sys.stderr)
        return EXIT_PRECONDITION
    except SolverError as exc:
        print(f"qep-analog: solver failed: {exc}", file=sys.stderr)
        return EXIT_SOLVER
    except QEPError as exc:
        print(f"qep-analog: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
