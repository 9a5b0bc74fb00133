"""``qep-analog gradient-from-counts``: the QEP gradient with error bars from a measured run."""

from __future__ import annotations

import argparse
import json
from typing import Any

from qep_analog.cli.common import add_calibration_options


def register(commands: Any) -> None:
    command = commands.add_parser(
        "gradient-from-counts",
        help="QEP gradient with standard errors from measured counts (qep-counts/2 or /1)",
        description="Read RUN_DIR/run.json (qep-counts/2 or /1: counts per setting of the free and nudged "
        "phases) and print dL/dtheta per parameter with its standard error.",
    )
    command.add_argument("run_dir", help="run directory holding run.json (or the JSON file)")
    command.add_argument("--no-mitigate", action="store_true", help="do not invert the readout errors")
    command.add_argument(
        "--compare-exact",
        action="store_true",
        help="also the exact linear-response gradient of the model at the run's x, theta, error signal",
    )
    command.add_argument(
        "--device",
        help="mitigate with this profile's readout errors (per site where calibrated) instead of the run's",
    )
    add_calibration_options(command)
    command.add_argument("--json", action="store_true", help="print JSON")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from qep_analog import ConfigError, ReadoutErrors, load_profile, read_counts_run

    if args.device is None and (args.nominal or args.history is not None):
        raise ConfigError("gradient-from-counts: --nominal and --history choose the profile of --device")
    if args.device is not None and args.no_mitigate:
        raise ConfigError(
            "gradient-from-counts: --device gives readout errors to mitigate; not with --no-mitigate"
        )
    counts = read_counts_run(args.run_dir)
    device = None
    if args.device is not None:
        profile = load_profile(args.device, nominal=args.nominal, history=args.history)
        readout = ReadoutErrors.from_profile(profile, counts.model.n_qubits)
        counts = dataclasses.replace(counts, readout=readout)
        device = profile.provenance()
    plan = counts.plan()
    mitigate = counts.mitigate and not args.no_mitigate and counts.readout is not None
    result = counts.gradient(mitigate=mitigate)
    report: dict[str, Any] = result.describe()
    report["mitigated"] = mitigate
    if device is not None:
        report["device"] = device
    report["settings"] = [s.describe() for s in plan.settings]
    preparation = counts.preparation
    if preparation is not None:
        report["preparation"] = preparation
    if args.compare_exact:
        from qep_analog import Equilibrium, exact_gradient

        model = counts.model
        eq = Equilibrium(model)
        exact = exact_gradient(
            eq,
            model.vector("inputs", counts.x, 0.0),
            model.vector("trainable", counts.theta, 0.0),
            model.vector("outputs", counts.error_signal, 1.0),
        )[0]
        report["exact"] = exact.tolist()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    shots = {name: sum(values) for name, values in result.shots.items()}
    print(
        f"{len(plan.settings)} settings; shots per phase: "
        + ", ".join(f"{name} {total}" for name, total in shots.items())
        + f"; beta = {result.beta:g} ({result.scheme}); readout "
        + ("mitigated" if mitigate else "not mitigated")
        + (
            f" with {device['name']} (snapshot {device['snapshot_hash']}, "
            f"{len(device['calibration_records'])} calibration records)"
            if device is not None
            else ""
        )
    )
    if result.outputs is not None:
        for label, mean, error in zip(
            result.outputs.labels, result.outputs.means, result.outputs.standard_errors, strict=True
        ):
            print(f"<{label}> = {mean:.6g} ± {error:.2g}")
    width = max(len("parameter"), *(len(n) for n in result.parameters))
    header = f"{'parameter':<{width}}  {'gradient':>14}  {'std. error':>12}"
    if preparation is not None:
        header += f"  {'prep. bias':>10}" + (
            f"  {'measured':>10}" if preparation.get("measured_bias") else ""
        )
    print(header + (f"  {'exact':>14}" if "exact" in report else ""))
    for j, name in enumerate(result.parameters):
        line = f"{name:<{width}}  {result.values[j]:>14.6g}  {result.standard_errors[j]:>12.3g}"
        if preparation is not None:
            line += f"  {preparation['bias'].get(name, float('nan')):>10.3g}"
            if preparation.get("measured_bias"):
                line += f"  {preparation['measured_bias'].get(name, float('nan')):>10.3g}"
        if "exact" in report:
            line += f"  {report['exact'][j]:>14.6g}"
        print(line)
    if preparation is not None:
        print(
            f"prep. bias: the bound on the bias the {preparation['shape']} ramp (boundary order "
            f"{preparation['boundary_order']}, {preparation['duration']:g} µs, smallest gap "
            f"{preparation['min_gap']:.3g} rad/µs) leaves in each component; measured: emulated − exact"
        )
    return 0
