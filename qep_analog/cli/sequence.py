"""``qep-analog sequence build|plot`` and ``qep-analog emulate``: adiabatic preparations of QEP phases."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from qep_analog import ConfigError, QEPWarning
from qep_analog.cli.common import Parser, add_calibration_options, assignments

#: export formats (``auto``: the profile's own, ``Platform.exporter_for``)
EXPORTS = ("auto", "pulser", "braket-ahs", "ion")


def register(commands: Any) -> None:
    sequence = commands.add_parser("sequence", help="adiabatic sequences for the free and nudged phases")
    actions = sequence.add_subparsers(dest="action", required=True, parser_class=Parser)
    build = actions.add_parser("build", help="free, +βε and −βε schedules of a model on a device")
    build.add_argument("recipe", help="recipe (qep-recipe/1): a file or a name in sequences/")
    build.add_argument("--device", required=True, help="built-in profile name or profile file")
    build.add_argument("--relaxed", action="store_true", help="the emulation variant of the profile")
    add_calibration_options(build)
    build.add_argument("--model", required=True, help="model file (qep-model/1)")
    for flag, what in (("--x", "inputs (default 0)"), ("--theta", "parameters (default 0)"),
                       ("--error-signal", "eps per output (default 1)")):  # fmt: skip
        build.add_argument(flag, nargs="*", action="extend", metavar="NAME=VALUE", help=what)
    build.add_argument("--beta", type=float, default=0.05, help="nudge strength (default 0.05)")
    build.add_argument("--out", required=True, help="schedule file to write (qep-schedule/1 JSON)")
    build.add_argument(
        "--export", nargs="?", const="auto", choices=EXPORTS,
        help="also write the hardware files next to it (default format: the device's own — Pulser JSON, "
        "Braket AHS for a positive detuning map, ion schedule JSON)",
    )  # fmt: skip
    build.set_defaults(handler=run_build)

    plot = actions.add_parser("plot", help="PNG of a schedule file's waveforms")
    plot.add_argument("file", help="schedule file (qep-schedule/1)")
    plot.add_argument("--out", help="PNG path (default: the file with .png)")
    plot.set_defaults(handler=run_plot)

    emulate = commands.add_parser("emulate", help="emulate a schedule file; fidelity and adiabaticity")
    emulate.add_argument("file", help="schedule file (qep-schedule/1)")
    emulate.add_argument("--backend", choices=("qutip", "pulser"), default="qutip")
    emulate.add_argument("--shots", type=int, help="sample this many bitstrings per schedule")
    emulate.add_argument("--noise", action="store_true", help="dephasing, amplitude jitter, readout errors")
    emulate.add_argument("--seed", type=int, default=0, help="random seed for noise and shots")
    add_calibration_options(emulate)
    emulate.add_argument("--json", action="store_true", help="print JSON")
    emulate.set_defaults(handler=run_emulate)


def _profile_of(metadata: dict[str, Any], args: argparse.Namespace) -> Any:
    """The profile a schedule was built with: its file (else its name on the search path, with a
    warning), nominal if it was built nominal or ``--nominal`` is given, else with the calibration
    in force now."""
    from qep_analog import load_profile

    if "profile" not in metadata:
        raise ConfigError("schedule file: metadata names no device profile")
    source = metadata["profile"]
    if Path(source).suffix in (".yaml", ".yml") and not Path(source).is_file():
        name = metadata.get("device", {}).get("name")
        if not name:
            raise ConfigError(f"schedule file: its profile file {source} is gone and it names no device")
        _warn(f"the profile file {source} the schedules were built with is gone; using {name!r}")
        source = name
    return load_profile(
        source,
        relaxed=bool(metadata.get("relaxed", False)),
        nominal=args.nominal or bool(metadata.get("nominal", False)),
        history=args.history,
    )


def _warn(message: str) -> None:
    print(f"qep-analog: warning: {message}", file=sys.stderr)


def run_build(args: argparse.Namespace) -> int:
    from qep_analog import (
        export_schedule,
        exporter_of,
        load_model,
        load_profile,
        load_recipe,
        qep_phase_schedules,
        save_schedules,
        unsupported_readout,
    )

    profile = load_profile(args.device, relaxed=args.relaxed, nominal=args.nominal, history=args.history)
    exporter = exporter_of(profile, args.export) if args.export else None
    model = load_model(args.model)
    recipe = load_recipe(args.recipe)
    x = model.vector("inputs", assignments(args.x, "--x"), 0.0)
    theta = model.vector("trainable", assignments(args.theta, "--theta"), 0.0)
    eps = model.vector("outputs", assignments(args.error_signal, "--error-signal"), 1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QEPWarning)
        schedules = qep_phase_schedules(model, profile, recipe, x, theta, eps, args.beta)
    for warning in caught:
        _warn(str(warning.message))
    provenance = {"profile": str(Path(profile.source).resolve()), "relaxed": not profile.strict,
                  "nominal": args.nominal, "model": str(args.model),
                  "device": profile.provenance()}  # fmt: skip
    for schedule in schedules:
        schedule.metadata.update(provenance)
    out = Path(args.out)
    skipped = [s for s in schedules if exporter and unsupported_readout(exporter, s.readout)]
    rotations = _readout_rotations(schedules, profile) if exporter == "pulser" else []
    save_schedules(out, schedules)
    written = [str(out)]
    if exporter:
        if skipped:
            from qep_analog import READOUT_LIMITS

            names = ", ".join(f"{s.label}/{s.readout if len(set(s.readout)) > 1 else s.readout[0]}"
                              for s in skipped)  # fmt: skip
            limit = READOUT_LIMITS[exporter]
            _warn(f"{names} not exported: {exporter} files {limit} (the schedules are in {out})")
        for schedule in schedules:
            if schedule not in skipped:
                stem = f"{out.with_suffix('')}.{schedule.label}.{schedule.readout[0]}"
                written.append(str(export_schedule(schedule, profile, stem, exporter)))
    first = schedules[0]
    print(f"{len(schedules)} schedules ({', '.join(f'{s.label}/{s.readout[0]}' for s in schedules)}), "
          f"{first.duration:g} µs on {profile.label}: {', '.join(written)}")  # fmt: skip
    for line in rotations:
        print(line)
    print(_calibration_line(profile))
    return 0


def _readout_rotations(schedules: list[Any], profile: Any) -> list[str]:
    """The readout rotation each X or Y schedule's Pulser export plays and its bias under the
    interactions (emulated), stored in the schedule's metadata (``readout_rotation``); one line each."""
    from qep_analog import readout_bias, unsupported_readout

    lines = []
    for schedule in schedules:
        if unsupported_readout("pulser", schedule.readout):
            continue
        bias = readout_bias(schedule, profile)
        if bias is not None:
            schedule.metadata["readout_rotation"] = bias.to_document()
            lines.append(bias.summary(schedule.label))
    return lines


def _calibration_line(profile: Any) -> str:
    records = profile.calibration_records
    used = f"{len(records)} calibration records" if records else "no calibration records"
    return f"profile {profile.name} snapshot {profile.snapshot_hash}, {used}"


def run_plot(args: argparse.Namespace) -> int:
    from qep_analog import load_schedules, plot_schedules

    schedules = load_schedules(args.file)
    out = args.out or str(Path(args.file).with_suffix(".png"))
    plot_schedules(schedules, out)
    print(out)
    return 0


def run_emulate(args: argparse.Namespace) -> int:
    from qep_analog import QutipEmulator, adiabaticity, load_schedules, pauli_sum, run_pulser

    if args.shots is not None and args.shots < 1:
        raise ConfigError(f"--shots: {args.shots} must be positive")
    schedules = load_schedules(args.file)
    if not schedules:
        raise ConfigError(f"{args.file}: holds no schedule")
    rows: list[dict[str, Any]] = []
    profile = _profile_of(schedules[0].metadata, args)  # one build: one profile for every schedule
    _warn_if_changed(schedules[0].metadata, profile)
    for k, schedule in enumerate(schedules):
        n = schedule.n_qubits
        observables = {f"Z{q}": pauli_sum([(1.0, f"Z{q}")]) for q in range(n)}
        if args.backend == "pulser":
            if args.noise or args.shots:
                raise ConfigError("--backend pulser: noiseless final states only (qutip: noise, shots)")
            result = run_pulser(schedule, profile, observables)
        else:
            emulator = QutipEmulator(profile)
            seed = args.seed + k
            result = emulator.run(schedule, observables, noise=args.noise, shots=args.shots, seed=seed)
        diagnostics = adiabaticity(schedule, profile, result).to_document()
        rows.append(
            {
                "label": schedule.label,
                "readout": schedule.readout,
                "expectations": result.expectations,
                "counts": result.counts,
                "diagnostics": diagnostics,
            }
        )
    if args.json:
        print(
            json.dumps(
                {"backend": args.backend, "device": profile.provenance(), "schedules": rows}, indent=2
            )
        )
        return 0
    for row in rows:
        _print_row(row)
    print(_calibration_line(profile))
    return 0


def _warn_if_changed(metadata: dict[str, Any], profile: Any) -> None:
    """Warn when the profile used now differs from the one the schedules were built with."""
    built = metadata.get("device", {}).get("snapshot_hash")
    if built is not None and built != profile.snapshot_hash:
        _warn(
            f"the schedules were built on profile snapshot {built}; emulating on {profile.snapshot_hash} "
            "(the profile file or its calibration in force changed since, or --nominal)"
        )


def _print_row(row: dict[str, Any]) -> None:
    d = row["diagnostics"]
    recommended = f"too fast: recommended {d['recommended_duration']:.3g} µs"
    verdict = "slow enough" if d["slow_enough"] else recommended
    print(
        f"{row['label']:<6} {row['readout']}: fidelity {d['fidelity']:.6f}, energy above ground "
        f"{d['energy_above_ground']:.3g} rad/µs, min gap {d['min_gap']:.3g} rad/µs, {verdict}"
    )
    import numpy as np

    z = np.array(list(row["expectations"].values()))
    print(f"       <Z_i> = {np.array2string(z, precision=4)}")
    if row["counts"]:
        top = sorted(row["counts"].items(), key=lambda kv: -kv[1])[:3]
        print(f"       most frequent: {', '.join(f'{b} ({c})' for b, c in top)}")
