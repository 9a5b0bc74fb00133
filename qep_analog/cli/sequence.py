"""``qep-analog sequence build|plot`` and ``qep-analog emulate``: adiabatic preparations of QEP phases."""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog import NOISE_SOURCES, ConfigError, ConstraintError, QEPWarning
from qep_analog.cli.bias_report import (
    QEPStep,
    bias_fraction,
    budget_line,
    build_report,
    gradient_report,
    print_gradient_report,
    qep_step_of,
)
from qep_analog.cli.common import SEED_LIMIT, Parser, add_calibration_options, assignments, seed, warn

#: the default fraction of the gradient ``emulate`` brings the bias bound under
BIAS_FRACTION = 0.05

DURATION_HELP = (
    "ramp duration in µs, checked against the profile (default: the calibrated ramp_duration in force, "
    "else the recipe's, or for emulate the schedule file's)"
)
#: export formats (``auto``: the profile's own, ``Platform.exporter_for``)
EXPORTS = ("auto", "pulser", "braket-ahs", "ion")


def register(commands: Any) -> None:
    sequence = commands.add_parser("sequence", help="adiabatic sequences for the free and nudged phases")
    actions = sequence.add_subparsers(dest="action", required=True, parser_class=Parser)
    build = actions.add_parser("build", help="free, +βε and −βε schedules of a model on a device")
    build.add_argument(
        "recipe", nargs="?",
        help="recipe (qep-recipe/1): a file or a name in sequences/ (default: the platform's "
        "quintic-ended recipe, rydberg-gap-quintic (rydberg-quintic past 14 atoms) or "
        "ion-exponential-smooth)",
    )  # fmt: skip
    build.add_argument("--device", required=True, help="built-in profile name or profile file")
    build.add_argument("--relaxed", action="store_true", help="the emulation variant of the profile")
    add_calibration_options(build)
    build.add_argument("--model", required=True, help="model file (qep-model/1)")
    required = "each required unless the model states a default"
    for flag, what in (("--x", f"inputs ({required})"), ("--theta", f"parameters ({required})"),
                       ("--error-signal", "eps per output (default 1)")):  # fmt: skip
        build.add_argument(flag, nargs="*", action="extend", metavar="NAME=VALUE", help=what)
    build.add_argument("--beta", type=float, default=0.05, help="nudge strength (default 0.05)")
    build.add_argument("--duration", type=float, metavar="US", help=DURATION_HELP)
    build.add_argument(
        "--bias-fraction", type=bias_fraction, metavar="F",
        help="also estimate the gradient's bias from the path's exact spectrum (up to 14 qubits) and "
        "recommend the duration that brings it under this fraction of the exact gradient (e.g. 0.05)",
    )  # fmt: skip
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
    emulate.add_argument(
        "--method", choices=("magnus", "qutip", "mps"), default="magnus",
        help="qutip backend: exact propagation (magnus, default), QuTiP's solvers, or matrix product "
        "states by TDVP (mps: long chains and 2D arrays, noiseless; no adiabaticity diagnostics)",
    )  # fmt: skip
    emulate.add_argument(
        "--chi-max", type=int, metavar="CHI",
        help="--method mps: the largest bond dimension (default 64)",
    )  # fmt: skip
    emulate.add_argument(
        "--shots", type=int,
        help="sample this many bitstrings per schedule and write them as a qep-counts run (--counts)",
    )  # fmt: skip
    emulate.add_argument(
        "--counts", metavar="DIR",
        help="run folder for the counts of --shots (default: the schedule file without .json, plus "
        "'.counts'); read it with 'qep-analog gradient-from-counts DIR'",
    )  # fmt: skip
    emulate.add_argument("--duration", type=float, metavar="US", help=DURATION_HELP)
    emulate.add_argument(
        "--trajectories", type=int, default=16, metavar="N",
        help="--noise: trajectories (QuTiP method: draws) averaged per schedule (default 16; their "
        "statistical error enters the measured bias, which divides by 2β)",
    )  # fmt: skip
    emulate.add_argument(
        "--noise", nargs="?", const=True, default=False, metavar="SOURCES",
        help="the profile's noise: all sources, or those named (comma-separated: "
        f"{', '.join(NOISE_SOURCES)})",
    )  # fmt: skip
    emulate.add_argument(
        "--seed", type=seed, default=0, help="random seed for noise and shots, in [0, 2**32)"
    )
    emulate.add_argument(
        "--bias-fraction", type=bias_fraction, default=BIAS_FRACTION, metavar="F",
        help="for a QEP step: recommend the duration that brings the gradient's bias bound under this "
        f"fraction of the exact gradient's norm (default {BIAS_FRACTION:g})",
    )  # fmt: skip
    emulate.add_argument(
        "--blockade-radius", type=blockade_radius, metavar="auto|UM",
        help="qutip backend: evolve in the blockade subspace (no two excited atoms closer than this "
        "radius in µm; auto: the radius of --blockade-tolerance); lifts the 16-qubit limit",
    )  # fmt: skip
    emulate.add_argument(
        "--blockade-tolerance", type=float, default=None, metavar="EPS",
        help="with --blockade-radius auto: the largest doubly excited population of a blockaded pair "
        "(default 0.01)",
    )  # fmt: skip
    emulate.add_argument(
        "--blockade-order", type=int, default=0, metavar="K",
        help="with --blockade-radius: keep the configurations with up to K excited blockaded pairs "
        "(0: none; each order shrinks the subspace's error, see the README)",
    )  # fmt: skip
    add_calibration_options(emulate)
    emulate.add_argument("--json", action="store_true", help="print JSON")
    emulate.add_argument("--quiet", action="store_true", help="no progress bar")
    emulate.set_defaults(handler=run_emulate)


def blockade_radius(text: str) -> str | float:
    """``--blockade-radius``: ``auto`` or a radius in µm (finite, ≥ 0)."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a radius in µm") from None
    if not (np.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"{text!r} µm is not a finite radius ≥ 0")
    return value


def _blockade_options(args: argparse.Namespace) -> dict[str, Any]:
    """The emulator's subspace options of ``--blockade-radius`` (none without it)."""
    if args.blockade_radius is None:
        if args.blockade_tolerance is not None or args.blockade_order:
            raise ConfigError("--blockade-tolerance, --blockade-order: give --blockade-radius auto|UM")
        return {}
    if args.backend != "qutip":
        raise ConfigError(
            f"--blockade-radius: the {args.backend} backend evolves the full space (use qutip)"
        )
    options: dict[str, Any] = {"subspace": "blockade", "blockade_order": args.blockade_order}
    if args.blockade_radius == "auto":
        if args.blockade_tolerance is not None:
            options["blockade_tolerance"] = args.blockade_tolerance
    elif args.blockade_tolerance is not None:
        raise ConfigError(
            "--blockade-tolerance: sets the radius of --blockade-radius auto, not of a given one"
        )
    else:
        options["blockade_radius"] = args.blockade_radius
    return options


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
        warn(f"the profile file {source} the schedules were built with is gone; using {name!r}")
        source = name
    return load_profile(
        source,
        relaxed=bool(metadata.get("relaxed", False)),
        nominal=args.nominal or bool(metadata.get("nominal", False)),
        history=args.history,
    )


def run_build(args: argparse.Namespace) -> int:
    from qep_analog import (
        DurationChoice,
        choose_duration,
        default_recipe,
        duration_metadata,
        exporter_of,
        hardware_file,
        load_model,
        load_profile,
        load_recipe,
        qep_phase_schedules,
        realised_model,
        save_schedules,
        stretched_recipe,
        unsupported_readout,
    )

    profile = load_profile(args.device, relaxed=args.relaxed, nominal=args.nominal, history=args.history)
    exporter = exporter_of(profile, args.export) if args.export else None
    model = load_model(args.model)
    recipe = load_recipe(args.recipe or default_recipe(profile.platform, model.n_qubits))
    choice = choose_duration(
        profile, args.duration, DurationChoice(recipe.duration, f"recipe {recipe.name!r}")
    )
    recipe = stretched_recipe(recipe, choice.duration)
    x = model.values("inputs", assignments(args.x, "--x"), "--x")
    theta = model.values("trainable", assignments(args.theta, "--theta"), "--theta")
    eps = model.vector("outputs", assignments(args.error_signal, "--error-signal"), 1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QEPWarning)
        schedules = qep_phase_schedules(model, profile, recipe, x, theta, eps, args.beta)
    for warning in caught:
        warn(str(warning.message))
    provenance = {"profile": str(Path(profile.source).resolve()), "relaxed": not profile.strict,
                  "nominal": args.nominal, "model": str(Path(args.model).resolve()),
                  "device": profile.provenance(), **duration_metadata(choice)}  # fmt: skip
    for schedule in schedules:
        schedule.metadata.update(provenance)
    bias = None
    if args.bias_fraction is not None:
        step = QEPStep(realised_model(model, profile), x, theta, eps, args.beta)
        bias = build_report(schedules, profile, step, args.bias_fraction)
        for schedule in schedules:
            schedule.metadata["bias_budget"] = bias
    out = Path(args.out)
    skipped = [s for s in schedules if exporter and unsupported_readout(exporter, s.readout)]
    rotations = _readout_rotations(schedules, profile) if exporter == "pulser" else []
    files = [  # every hardware file made and checked before anything is written
        hardware_file(schedule, profile, f"{out.with_suffix('')}.{schedule.label}.{schedule.readout[0]}",
                      exporter)
        for schedule in schedules if exporter and schedule not in skipped
    ]  # fmt: skip
    save_schedules(out, schedules)
    written = [str(out), *(str(file.write()) for file in files)]
    if skipped:
        from qep_analog import READOUT_LIMITS

        names = ", ".join(f"{s.label}/{s.readout if len(set(s.readout)) > 1 else s.readout[0]}"
                          for s in skipped)  # fmt: skip
        limit = READOUT_LIMITS[str(exporter)]
        warn(f"{names} not exported: {exporter} files {limit} (the schedules are in {out})")
    first = schedules[0]
    print(f"{len(schedules)} schedules ({', '.join(f'{s.label}/{s.readout[0]}' for s in schedules)}), "
          f"{first.duration:g} µs on {profile.label}: {', '.join(written)}")  # fmt: skip
    print(f"duration {choice.describe()}")
    if bias is not None:
        print(budget_line(bias))
    for line in [*rotations, *_platform_lines(first, profile)]:
        print(line)
    print(_calibration_line(profile))
    return 0


def _platform_lines(schedule: Any, profile: Any) -> list[str]:
    """What a lab checks before it runs the schedules: for ions the beat note, J0 and α, and the
    ramp against the coherence time."""
    from qep_analog import IonControls, coupling_summary

    lines = []
    static = schedule.static
    if "beat_note" in static:
        controls = IonControls(np.asarray(static["rabi"], dtype=float), float(static["beat_note"]))
        lines.append(coupling_summary(controls, profile))
    t2 = profile.noise.dephasing_time
    if schedule.duration > t2:
        warn(
            f"the ramp ({schedule.duration:g} µs) is longer than the T2* of device {profile.label!r} "
            f"({t2:g} µs): expect dephasing to lower the preparation's fidelity (emulate --noise shows "
            "by how much)"
        )
    return lines


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
    from qep_analog import (
        StageProgress,
        check_switch_on,
        load_schedules,
        noise_sources,
        schedule_duration,
    )

    if args.shots is not None and args.shots < 2:
        raise ConfigError(f"--shots: {args.shots} must be at least 2 (a standard error needs two)")
    if args.counts is not None and args.shots is None:
        raise ConfigError("--counts: the counts come from --shots; give --shots N")
    _check_method(args)
    from qep_analog import MAX_TRAJECTORIES

    if not 1 <= args.trajectories <= MAX_TRAJECTORIES:
        raise ConfigError(f"--trajectories: {args.trajectories} is not in [1, {MAX_TRAJECTORIES}]")
    args.noise = noise_sources(args.noise, "--noise")
    args.blockade = _blockade_options(args)
    schedules = load_schedules(args.file)
    if not schedules:
        raise ConfigError(f"{args.file}: holds no schedule")
    rows: list[dict[str, Any]] = []
    profile = _profile_of(schedules[0].metadata, args)  # one build: one profile for every schedule
    if profile.platform != schedules[0].platform:
        raise ConfigError(
            f"{args.file}: {schedules[0].platform} schedules, but their profile {profile.label!r} is "
            f"{profile.platform}"
        )
    _warn_if_changed(schedules[0].metadata, profile)
    for schedule in schedules:
        check_switch_on(schedule, profile)
    choice = schedule_duration(schedules[0], profile, args.duration)
    try:
        schedules = [_at_duration(s, choice, profile) for s in schedules]
    except ConstraintError as exc:  # the file's schedules (or --duration) break a limit of the device
        raise ConstraintError(f"{args.file}: {exc}") from None
    step = qep_step_of(schedules, profile)
    with StageProgress(enabled=not (args.json or args.quiet), stderr=True) as progress:
        for k, schedule in enumerate(schedules):
            name = f"{schedule.label}/{schedule.readout[0]}"
            progress.update("emulate", k, len(schedules), name)

            def trajectories(done: int, total: int, name: str = name) -> None:
                progress.update("noise", done, total, f"{name} trajectories")

            rows.append(_emulated_row(args, schedule, profile, k, trajectories, step))
        progress.update("emulate", len(schedules), len(schedules), "done")
    if args.method == "mps":
        return _report_mps(args, schedules, rows, profile, choice, step)
    return _report_exact(args, schedules, rows, profile, choice, step)


def _noise_listing(profile: Any, noise: Any) -> Any:
    """The noise parameters of the twin the emulator runs (the profile with the calibration in force)
    that the sources switched on use, and the sources that are off."""
    from qep_analog import noise_listing

    return noise_listing(profile, noise)


def _noise_lines(profile: Any, noise: Any = True) -> list[str]:
    """Each noise parameter in use, its value and where it comes from (records in force, or the
    file), then one line naming the sources that are off."""
    lines: list[str] = _noise_listing(profile, noise).lines()
    return lines


def _emulated_row(
    args: argparse.Namespace,
    schedule: Any,
    profile: Any,
    index: int,
    progress: Callable[[int, int], None] | None = None,
    step: Any = None,
) -> dict[str, Any]:
    """One schedule emulated: its expectation values of Z_i (and of the QEP step's generators),
    counts (with ``--shots``) and result; ``progress(done, total)`` over the trajectories of a noisy
    emulation."""
    from qep_analog import QutipEmulator, pauli_sum, run_pulser

    observables = {f"Z{q}": pauli_sum([(1.0, f"Z{q}")]) for q in range(schedule.n_qubits)}
    generators = {} if step is None else {f"A:{name}": op for name, op in step.model.trainable.items()}
    observables = {**observables, **generators}
    result: Any
    if args.backend == "pulser":
        if args.noise or args.shots:
            raise ConfigError("--backend pulser: noiseless final states only (qutip: noise, shots)")
        result = run_pulser(schedule, profile, observables)
    elif args.method == "mps":
        from qep_analog import MPSEmulator, MPSEvolutionOptions

        options = MPSEvolutionOptions(**({} if args.chi_max is None else {"chi_max": args.chi_max}))
        result = MPSEmulator(profile, options).run(
            schedule, observables, shots=args.shots, seed=(args.seed + index) % SEED_LIMIT
        )
    else:
        emulator = QutipEmulator(profile, method=args.method, **getattr(args, "blockade", {}))
        result = emulator.run(
            schedule,
            observables,
            noise=args.noise,
            shots=args.shots,
            seed=(args.seed + index) % SEED_LIMIT,
            realisations=args.trajectories,
            progress=progress,
        )
    expectations = {k: v for k, v in result.expectations.items() if k not in generators}
    subspace = {}
    if getattr(result, "subspace", None) is not None:  # an MPS result has none
        subspace = {
            "blockade": {
                "radius_um": result.subspace.radius,
                "order": result.subspace.order,
                "dimension": result.subspace.dimension,
            }
        }
    return {
        "label": schedule.label,
        "readout": schedule.readout,
        **subspace,
        "expectations": expectations,
        "generators": [result.expectations[k] for k in generators],
        "counts": result.counts,
        "result": result,
    }


def _check_method(args: argparse.Namespace) -> None:
    """--method and --chi-max fit the backend and each other (one-line errors)."""
    if args.method != "magnus" and args.backend != "qutip":
        raise ConfigError(f"--method {args.method}: a method of the qutip backend, not {args.backend}")
    if args.chi_max is not None and args.method != "mps":
        raise ConfigError(f"--chi-max {args.chi_max}: applies to --method mps only")
    if args.chi_max is not None and not 1 <= args.chi_max <= 4096:
        raise ConfigError(f"--chi-max: {args.chi_max} is not in [1, 4096]")
    if args.method == "mps" and args.noise:
        raise ConfigError("--method mps: evolves closed systems; drop --noise")
    if args.method == "mps" and args.blockade_radius is not None:
        raise ConfigError("--blockade-radius: the blockade subspace is an option of --method magnus")


def _report_exact(
    args: argparse.Namespace,
    schedules: list[Any],
    rows: list[dict[str, Any]],
    profile: Any,
    choice: Any,
    step: Any,
) -> int:
    """The exactly evolved schedules: expectation values, counts and each one's adiabaticity
    diagnostics (fidelity, energy above the ground state, smallest gap, the duration to use), a QEP
    step's gradient against the exact one with its bias budget, and the noise model in use."""
    from qep_analog import MAX_DIAGNOSED_QUBITS, adiabaticity, path_spectrum, recommended_duration

    spectra = {}
    # the exact spectra stop at MAX_DIAGNOSED_QUBITS: a larger blockade-subspace run goes without
    diagnosed = not args.blockade or schedules[0].n_qubits <= MAX_DIAGNOSED_QUBITS
    for k, (row, schedule) in enumerate(zip(rows, schedules, strict=True)):
        result = row.pop("result")
        if not diagnosed:
            row["diagnosis"], row["diagnostics"] = None, None
            continue
        spectra[k] = path_spectrum(schedule, profile, nudge=None if step is None else step.nudge)
        d = adiabaticity(schedule, profile, result, spectrum=spectra[k])
        row["diagnosis"] = d
        row["diagnostics"] = {
            **d.to_document(),
            "recommended_duration": recommended_duration(d, profile),
            "max_duration": profile.capabilities.max_duration,
        }
    report = None
    if not diagnosed:
        warn(
            f"{schedules[0].n_qubits} atoms: no adiabaticity diagnostics or bias budget (exact spectra "
            f"stop at {MAX_DIAGNOSED_QUBITS} qubits)"
        )
    elif step is not None:
        report = gradient_report(schedules, rows, profile, step, args.bias_fraction, spectra)
    for row in rows:
        row.pop("diagnosis")
    counts_file = _write_counts(args, schedules, rows, profile, report) if args.shots else None
    fields: dict[str, Any] = {}
    notes = []
    if args.noise:
        listing = _noise_listing(profile, args.noise)
        fields["noise_model"] = [p.to_document() for p in listing.active]
        fields["noise_off"] = list(listing.off)
        acting = sorted(set(args.noise) - set(listing.off))  # asked for and with a value
        notes.append(f"noise model ({', '.join(acting) or 'no source'} on): " + "; ".join(listing.lines()))
    if report is not None:
        fields["gradient"] = report
    return _print_emulation(
        args, profile, choice, rows, counts_file,
        fields=fields,
        row_line=_exact_row_line,
        print_gradient=None if report is None else partial(print_gradient_report, report, bool(args.noise)),
        notes=notes,
    )  # fmt: skip


def _report_mps(
    args: argparse.Namespace,
    schedules: list[Any],
    rows: list[dict[str, Any]],
    profile: Any,
    choice: Any,
    step: Any,
) -> int:
    """The MPS-evolved schedules: expectation values, counts, bond dimension, truncation error and the
    van der Waals cutoff of each, and a QEP step's gradient from the phases' generators."""
    gradient = None
    if step is not None:
        index = {schedule.label: k for k, schedule in reversed(list(enumerate(schedules)))}
        plus, minus = (np.asarray(rows[index[label]]["generators"]) for label in ("plus", "minus"))
        gradient = dict(zip(step.model.trainable, ((plus - minus) / (2 * step.beta)).tolist(), strict=True))
    for row in rows:
        row["diagnostics"] = row.pop("result").diagnostics()
    counts_file = _write_counts(args, schedules, rows, profile) if args.shots else None
    return _print_emulation(
        args, profile, choice, rows, counts_file,
        method="mps",
        fields={} if gradient is None else {"gradient": {"emulated": gradient}},
        row_line=_mps_row_line,
        print_gradient=None if gradient is None else partial(_print_mps_gradient, gradient),
    )  # fmt: skip


def _print_emulation(
    args: argparse.Namespace,
    profile: Any,
    choice: Any,
    rows: list[dict[str, Any]],
    counts_file: Path | None,
    *,
    fields: dict[str, Any],
    row_line: Callable[[dict[str, Any]], str],
    method: str | None = None,
    print_gradient: Callable[[], None] | None = None,
    notes: Sequence[str] = (),
) -> int:
    """Print the emulation of the schedules (``rows``, one per schedule), as JSON with ``--json``,
    else as text. Every path prints the backend, the device, the duration and where it comes from,
    each schedule's label, readout, expectation values of Z_i and counts, the counts file and the
    profile used; the calling path adds its own: ``method``, named after the backend (None: not
    named); ``fields``, its top-level JSON fields after the schedules; ``row_line``, the first printed
    line of a schedule (what the path tells of its preparation, from the row's ``diagnostics``);
    ``print_gradient``, its printed gradient; ``notes``, its lines after the counts file."""
    rows = [{key: value for key, value in row.items() if key != "generators"} for row in rows]
    if args.json:
        document: dict[str, Any] = {
            "backend": args.backend, **({} if method is None else {"method": method}),
            "device": profile.provenance(), "duration_us": choice.duration,
            "duration_source": choice.source, "schedules": rows, **fields,
        }  # fmt: skip
        if counts_file is not None:
            document["counts_file"] = str(counts_file)
        print(json.dumps(document, indent=2))
        return 0
    print(f"duration {choice.describe()}")
    for row in rows:
        print(row_line(row))
        z = np.array(list(row["expectations"].values()))
        print(f"       <Z_i> = {np.array2string(z, precision=4)}")
        if row["counts"]:
            top = sorted(row["counts"].items(), key=lambda kv: -kv[1])[:3]
            print(f"       most frequent: {', '.join(f'{b} ({c})' for b, c in top)}")
    if print_gradient is not None:
        print_gradient()
    if counts_file is not None:
        print(f"counts: {counts_file} (qep-analog gradient-from-counts {counts_file.parent})")
    for line in notes:
        print(line)
    print(_calibration_line(profile))
    return 0


def _mps_row_line(row: dict[str, Any]) -> str:
    """An MPS-evolved schedule: bond dimension, truncation error, steps, the van der Waals cutoff."""
    d = row["diagnostics"]
    cut = "none" if d["cutoff_um"] is None else f"{d['cutoff_um']:.4g} µm"
    return (
        f"{row['label']:<6} {row['readout']}: MPS chi {d['chi']}, truncation error "
        f"{d['truncation_error']:.3g}, {d['steps']} steps, van der Waals cutoff {cut} (dropped "
        f"≤ {d['dropped_coupling_per_atom']:.3g} rad/µs per atom)"
    )


def _print_mps_gradient(gradient: dict[str, float]) -> None:
    print("gradient from the MPS-prepared phases (no bias budget: it needs the exact spectrum)")
    for name, value in gradient.items():
        print(f"  {name}: {value:.6g}")


def _at_duration(schedule: Any, choice: Any, profile: Any) -> Any:
    """The schedule played in the chosen duration, checked against the profile's limits either way
    (a schedule file may have been edited since it was built)."""
    from qep_analog import check_schedule, duration_metadata, stretch_schedule

    if abs(schedule.duration - choice.duration) <= 1e-9:
        check_schedule(schedule, profile)
        return schedule
    return stretch_schedule(schedule, choice.duration, profile, duration_metadata(choice))


def _write_counts(
    args: argparse.Namespace,
    schedules: list[Any],
    rows: list[dict[str, Any]],
    profile: Any,
    report: dict[str, Any] | None = None,
) -> Path:
    """The sampled counts as a ``qep-counts`` run of the model the schedules realise."""
    import dataclasses

    from qep_analog import (
        ReadoutErrors,
        counts_run_from_phases,
        load_model,
        realised_model,
        write_counts_run,
    )
    from qep_analog.cli.bias_report import preparation_of

    metadata = schedules[0].metadata
    source = metadata.get("model")
    if not source or not Path(source).is_file():
        raise ConfigError(f"{args.file}: the model file {source!r} the schedules were built from is gone")
    if "beta" not in metadata:
        raise ConfigError(f"{args.file}: the schedules record no beta; they are not a QEP step")
    model = realised_model(load_model(source), profile)
    readout = ReadoutErrors.from_profile(profile, model.n_qubits) if "readout" in args.noise else None
    sampled = [(row["label"], row["readout"], row["counts"]) for row in rows]
    point = {key: metadata.get(key, []) for key in ("x", "theta", "error_signal")}
    run = counts_run_from_phases(model, point, float(metadata["beta"]), sampled, readout)
    if report is not None:
        run = dataclasses.replace(run, preparation=preparation_of(report))
    folder = Path(args.counts) if args.counts else Path(args.file).with_suffix(".counts")
    return write_counts_run(folder, run)


def _warn_if_changed(metadata: dict[str, Any], profile: Any) -> None:
    """Warn when the profile used now differs from the one the schedules were built with."""
    built = metadata.get("device", {}).get("snapshot_hash")
    if built is not None and built != profile.snapshot_hash:
        warn(
            f"the schedules were built on profile snapshot {built}; emulating on {profile.snapshot_hash} "
            "(the profile file or its calibration in force changed since, or --nominal)"
        )


def _verdict(d: dict[str, Any]) -> str:
    """Slow enough; or the duration to use, only if the device allows it; or that none does."""
    if d["slow_enough"]:
        return "slow enough"
    if d["recommended_duration"] is not None:
        return f"too fast: recommended {d['recommended_duration']:.4g} µs"
    return (
        f"too fast, and no duration the device allows is slow enough: it needs about "
        f"{d['required_duration']:.3g} µs, the limit is {d['max_duration']:.4g} µs"
    )


def _exact_row_line(row: dict[str, Any]) -> str:
    """An exactly evolved schedule: fidelity, energy above ground, smallest gap and the verdict
    (none past the diagnosed size), and the blockade subspace it was evolved in."""
    d = row["diagnostics"]
    blockade = row.get("blockade")
    where = (
        ""
        if blockade is None
        else f" [blockade subspace r_c {blockade['radius_um']:.3g} µm, order {blockade['order']}, "
        f"{blockade['dimension']} configurations]"
    )
    if d is None:
        return f"{row['label']:<6} {row['readout']}:{where}"
    return (
        f"{row['label']:<6} {row['readout']}: fidelity {d['fidelity']:.6f}, energy above ground "
        f"{d['energy_above_ground']:.3g} rad/µs, min gap {d['min_gap']:.3g} rad/µs, {_verdict(d)}" + where
    )
