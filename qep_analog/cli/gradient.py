"""``qep-analog gradient``: the QEP gradient of a model file, with independent checks."""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any

from qep_analog import SCHEMES, ConfigError, QEPWarning
from qep_analog.cli.common import assignments, warn


def register(commands: Any) -> None:
    gradient = commands.add_parser("gradient", help="QEP gradient of a model file, with checks")
    gradient.add_argument("model", help="model file (qep-model/1)")
    for flag, what in (
        ("--x", "inputs (each required unless the model states a default)"),
        ("--theta", "parameters (each required unless the model states a default)"),
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
    gradient.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from qep_analog import (
        Equilibrium,
        exact_gradient,
        finite_difference_gradient,
        load_model,
        qep_gradient,
        reciprocity_check,
    )

    model = load_model(args.model)
    x = model.values("inputs", assignments(args.x, "--x"), "--x")
    theta = model.values("trainable", assignments(args.theta, "--theta"), "--theta")
    eps = model.vector("outputs", assignments(args.error_signal, "--error-signal"), 1.0)
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
        warn(str(warning.message))
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
