"""``qep-analog step``: one QEP step of an experiment ready for hardware, as job bundles."""

from __future__ import annotations

import argparse
import json
from typing import Any

from qep_analog.cli.common import add_calibration_options, result_file


def register(commands: Any) -> None:
    step = commands.add_parser(
        "step",
        help="write one QEP step as job bundles for a device (shots and β planned, cost estimated)",
        description="Plans one QEP step of EXPERIMENT on the device (β and shots per phase and basis "
        "for --target-error, from the model as the device realises it), writes plan.json and the free "
        "round's bundle into --out, and stops (exit 5) until the lab's counts are there; run it again "
        "for the nudged round and the reciprocity check, and once more for gradient.json.",
    )
    step.add_argument("config", help="experiment file (qep-experiment/1)")
    step.add_argument("--out", required=True, help="folder of the step's plan, bundles and gradient")
    step.add_argument("--device", help="device profile (overrides the experiment's device:)")
    step.add_argument(
        "--recipe",
        help="schedules of the phases (overrides backend.recipe; default: rydberg-gap-quintic "
        "(rydberg-quintic past 14 atoms) or ion-exponential-smooth)",
    )
    step.add_argument(
        "--parameters", help="a finished run's result.json: its parameters (default: the task's start)"
    )
    step.add_argument(
        "--target-error",
        type=float,
        default=0.1,
        help="relative error of the batch-mean gradient the shots are planned for (default 0.1)",
    )
    step.add_argument("--json", action="store_true", help="print the plan (and gradient) as JSON")
    add_calibration_options(step)
    step.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import qep_analog as qa

    parameters = result_file(args.parameters, "--parameters")
    experiment = qa.load_experiment(
        args.config,
        nominal=args.nominal,
        history=args.history,
        device_name=args.device,
        output=args.out,
    )
    step = qa.HardwareStep.of(experiment, args.out, args.recipe, parameters)
    document = qa.plan_hardware_step(step, args.target_error)
    if not args.json:
        _print_plan(document)
    gradient = qa.run_hardware_step(step, document)
    if args.json:
        print(json.dumps({"plan": document, "gradient": gradient}, indent=2))
        return 0
    print("gradient (batch mean ± standard error):")
    for name, value, error in zip(
        gradient["parameters"], gradient["gradient"], gradient["standard_errors"], strict=True
    ):
        print(f"  {name:<14} {value:+.5g} ± {error:.2g}")
    check = gradient["reciprocity"]
    print(f"reciprocity {check['parameter']}/{check['output']}: {check['verdict']}")
    print(f"written {args.out}/gradient.json")
    return 0


def _print_plan(document: dict[str, Any]) -> None:
    plan, cost = document["plan"], document["cost"]
    state = "meets" if plan["met"] else "misses (largest budget)"
    print(
        f"plan: β = {plan['beta']:.3g}, {plan['shots']} shots per phase and basis; predicted error "
        f"{plan['relative_error']:.3g} (bias {plan['relative_bias']:.3g}, shots "
        f"{plan['relative_noise']:.3g}) {state} the target {plan['target']:g}"
    )
    for part in ("step", "reciprocity"):
        c = cost[part]
        print(
            f"cost of the {part}: {c['sequences']} sequences, {c['shots']} shots, "
            f"device time {c['device_time_s']:.4g} s"
        )
