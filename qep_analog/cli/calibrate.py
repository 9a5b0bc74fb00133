"""``qep-analog calibrate``: run a runcard, show a device's calibration history, report a run.

qep-analog calibrate RUNCARD --device NAME --backend fake-lab --out DIR [--history DIR] [--day D]
qep-analog calibrate RUNCARD --device NAME [--sites N] --plan
qep-analog calibrate history NAME [--history DIR] [--field FIELD] [--plot FILE]
qep-analog calibrate report DIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from qep_analog import CalibrationError
from qep_analog.cli.common import seed

BACKENDS = ("fake-lab",)


def register(commands: Any) -> None:
    command = commands.add_parser(
        "calibrate",
        help="calibration runcards, device histories and run reports",
        description="calibrate RUNCARD --device NAME --backend fake-lab --out DIR runs a runcard "
        "(qep-runcard/1, by path or by name from calibration/); calibrate history NAME lists a "
        "device's records, its effective calibration and the changes between consecutive records "
        "larger than 3 sigma (--plot FILE: each field against time); calibrate report DIR "
        "summarises a run.",
    )
    command.add_argument("target", help="RUNCARD, or 'history' or 'report'")
    command.add_argument("argument", nargs="?", help="NAME after 'history', DIR after 'report'")
    command.add_argument("--device", help="device profile (name or path) to calibrate")
    command.add_argument("--backend", choices=BACKENDS, help="where to run (only the fake lab so far)")
    command.add_argument("--out", help="run folder to create")
    command.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run in --out (same runcard, device and options) from its "
        "first unfinished step",
    )
    command.add_argument(
        "--history",
        metavar="DIR",
        help="calibration history folder (default $QEP_ANALOG_HISTORY, else the per-user data folder)",
    )
    command.add_argument(
        "--seed", type=seed, default=0, help="fake lab: seed of the shot noise, in [0, 2**32)"
    )
    command.add_argument("--sites", type=int, default=4, help="fake lab: number of atoms or ions")
    command.add_argument(
        "--preparation",
        choices=("ground", "adiabatic"),
        default="ground",
        help="fake lab: many-body schedules reach the exact ground state, or are emulated (QuTiP)",
    )
    command.add_argument(
        "--day",
        type=float,
        metavar="DAYS",
        help="fake lab: drift it to this simulated day (its stated default random walk, seeded by "
        "--drift-seed, not by --seed: the same device every run); its records are stamped with the "
        "lab's clock: 2026-01-01 08:00 UTC + DAYS + the device time the run has spent",
    )
    command.add_argument(
        "--drift-seed", type=seed, default=0, help="fake lab with --day: seed of its random walk"
    )
    command.add_argument("--field", help="history: only this field (e.g. rabi_scale)")
    command.add_argument(
        "--plot", metavar="FILE", help="history: draw each field against time (PNG) with its changes"
    )
    command.add_argument(
        "--plan",
        action="store_true",
        help="print the most shots and device time each step of the runcard can take on --sites "
        "sites of --device, and run nothing",
    )
    command.add_argument("--json", action="store_true", help="print JSON")
    command.add_argument("--quiet", action="store_true", help="no progress bar (the summary still prints)")
    command.add_argument("--no-plot", action="store_true", help="report: do not draw report.png")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for option in ("field", "plot"):
        if getattr(args, option) is not None and args.target != "history":
            raise CalibrationError(f"calibrate: --{option} is an option of 'calibrate history'")
    if args.plan and args.target in ("history", "report"):
        raise CalibrationError("calibrate: --plan is an option of a runcard")
    if args.day is not None and args.target in ("history", "report"):
        raise CalibrationError("calibrate: --day is an option of a runcard run on the fake lab")
    if args.target == "history":
        if args.argument is None:
            raise CalibrationError("calibrate history: give the device NAME")
        return run_history(args)
    if args.target == "report":
        if args.argument is None:
            raise CalibrationError("calibrate report: give the run folder DIR")
        return run_report(args)
    if args.argument is not None:
        raise CalibrationError(f"calibrate: unexpected argument {args.argument!r} after the runcard")
    return run_runcard_command(args)


#: what the fake lab's clock reads at the start of simulated day 0 (``--day D``: records are stamped
#: with DAY_ZERO + D days + the device time the run has spent)
DAY_ZERO = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC)


def _drift(args: argparse.Namespace, lab: Any) -> Any:
    """The fake lab's default random walk when ``--day`` is given, else None (no drift)."""
    return None if args.day is None else lab.default_drift(args.drift_seed)


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.6g}"


def run_runcard_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qep_analog import (
        CalibrationHistory,
        history_directory,
        load_runcard,
        read_profile,
        run_runcard,
    )

    needed = ("device",) if args.plan else ("device", "backend", "out")
    for option in needed:
        if getattr(args, option) is None:
            raise CalibrationError(f"calibrate: --{option} is required to run a runcard")
    if args.sites < 1:
        raise CalibrationError(f"calibrate: --sites {args.sites} must be positive")
    runcard = load_runcard(args.target)
    profile = read_profile(args.device)  # the runner applies the history itself
    if args.sites > profile.capabilities.max_sites:
        raise CalibrationError(
            f"calibrate: --sites {args.sites} is more than the {profile.capabilities.max_sites} "
            f"{profile.platform_spec.particles} of {profile.name}"
        )
    if profile.platform != runcard.platform:
        raise CalibrationError(
            f"calibrate: runcard {runcard.name!r} is for {runcard.platform}, device {profile.name!r} "
            f"is {profile.platform}"
        )
    if args.plan:
        return _print_plan(runcard, profile, args.sites)
    out = Path(args.out)
    if args.backend == "fake-lab":
        from qep_analog import FakeIonLab, FakeRydbergLab  # the fakes are imported only here

        # the fake lab of each platform, by the name the profile stores
        labs: dict[str, type[FakeRydbergLab] | type[FakeIonLab]] = {
            "rydberg": FakeRydbergLab,
            "ion": FakeIonLab,
        }
        lab = labs[profile.platform]
        backend = lab.for_profile(
            profile,
            n_sites=args.sites,
            seed=args.seed,
            drift=_drift(args, lab),
            start=None if args.day is None else DAY_ZERO,  # records on the lab's clock
        )
        backend.preparation = args.preparation
        if args.day is not None:
            backend.set_day(args.day)
    else:
        raise CalibrationError(f"calibrate: --backend {args.backend!r} is not one of {', '.join(BACKENDS)}")
    from qep_analog import StageProgress

    history = CalibrationHistory(history_directory(args.history), profile.name)
    with StageProgress(enabled=not (args.json or args.quiet), stderr=True) as bar:

        def report(done: int, total: int, routine: str) -> None:
            bar.update("calibrate", done, total, routine)
            finished = done == total  # a new step starts its scan bar at 0 (one part until told more)
            bar.update("scan", int(finished), 1, "done" if finished else routine)

        def report_scan(routine: str, done: int, total: int) -> None:
            bar.update("scan", done, total, routine)

        outcome = run_runcard(
            runcard,
            profile,
            backend,
            out,
            history,
            progress=report,
            scan_progress=report_scan,
            resume=args.resume,
            settings={
                "seed": args.seed,
                "sites": args.sites,
                "preparation": args.preparation,
                **({} if args.day is None else {"day": args.day, "drift_seed": args.drift_seed}),
            },
        )
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": outcome.run_id,
                    "steps": [s.result.to_document() for s in outcome.steps],
                    "budgets": [
                        {"shots": s.shots, "device_time_s": s.device_time / 1e6} for s in outcome.steps
                    ],
                    "effective": outcome.profile.to_document(),
                },
                indent=2,
            )
        )
        return 0
    where = "dry run, history untouched" if runcard.update == "dry-run" else f"history {history.path}"
    print(f"run {outcome.run_id}: {runcard.name} on {profile.name} ({backend.name}); {where}")
    _print_steps(
        [s.result.to_document() for s in outcome.steps],
        [s.units for s in outcome.steps],
        [s.budget for s in outcome.steps],
    )
    after = outcome.profile
    in_force = len(after.calibration_records)
    if runcard.update == "append":
        counted = _records_text(history.read().records, in_force)
        print(f"profile in force now: snapshot {after.snapshot_hash}; history: {counted}")
    else:  # the run's records stay in the run folder: counted with the history's, as if applied
        made = [r for s in outcome.steps for r in s.records]
        counted = _records_text([*history.read().records, *made], in_force)
        print(
            f"profile if applied (dry run: not in force): snapshot {after.snapshot_hash}; history and "
            f"this run's {len(made)} records: {counted}"
        )
    print(f"results in {out}")
    return 0


def _records_text(records: Sequence[Any], in_force: int | None) -> str:
    """``12 records over 3 runs, 9 in force (...)``: what a history holds (every record of every run,
    superseded and bad ones included) and how many of them set the profile (the last good record of
    each field, and of each site of a per-site field); ``in_force`` None: not known."""
    runs = len({r.run_id for r in records})
    text = f"{len(records)} records over {runs} run{'' if runs == 1 else 's'}"
    if in_force is None:
        return text
    return f"{text}, {in_force} in force (the last good record of each field and site)"


def _print_plan(runcard: Any, profile: Any, n_sites: int) -> int:
    """What a run of ``runcard`` on ``n_sites`` sites of ``profile`` can cost, step by step, before
    it runs: the most shots of each step and their device time at the profile's overhead per shot."""
    from qep_analog import planned_budgets

    overhead = profile.capabilities.shot_overhead / 1e6  # µs to s
    plan = planned_budgets(runcard, profile, n_sites)
    print(
        f"plan of {runcard.name} on {n_sites} sites of {profile.name} (at most: a re-scan or every "
        f"iteration included; {overhead:g} s per shot):"
    )
    for index, (step, budget) in enumerate(zip(runcard.steps, plan, strict=True), start=1):
        cost = "shots not known before the run"
        if budget is not None:
            cost = _budget_text(budget.shots, budget.device_time_s)
        print(f"  {index:>2}. {step.routine:<22} {cost}")
    known = [budget for budget in plan if budget is not None]
    some = " (of the steps whose shots are known)" if len(known) < len(plan) else ""
    total_s = sum(b.device_time_s or 0.0 for b in known)
    print(f"all steps{some}: {_budget_text(sum(b.shots for b in known), total_s)}")
    return 0


def _print_steps(results: list[dict[str, Any]], units: list[dict[str, str]], budgets: list[Any]) -> None:
    """The summary table: values and errors in each step's display units (``units``, per field),
    each step's shots and device time (``budgets``) and their totals."""
    from qep_analog import FIELDS, shown_in, unit_label

    print(
        f"{'routine':<22} {'quality':<8} {'chi2/dof':>9}  {'field':<24} {'value':>12} {'error':>10}  unit"
    )
    for result, shown, budget in zip(results, units, budgets, strict=True):
        first = True
        for estimate in result["estimates"]:
            per_site = FIELDS[estimate["field"]].per_site
            if (estimate["site"] is not None) != per_site:
                continue  # per-site values of device-wide fields stay in the result files
            name = estimate["field"] + (f"[{estimate['site']}]" if per_site else "")
            head = (
                f"{result['routine']:<22} {result['quality']:<8} {_number(result['reduced_chi2']):>9}"
                if first
                else " " * 41
            )
            unit, suffix = FIELDS[estimate["field"]].unit, shown.get(estimate["field"])
            value = shown_in(estimate["value"], unit, suffix)
            error = shown_in(estimate["uncertainty"], unit, suffix)
            print(
                f"{head}  {name:<24} {_number(value):>12} {_number(error):>10}  {unit_label(unit, suffix)}"
            )
            first = False
        if first:
            print(f"{result['routine']:<22} {result['quality']:<8} {_number(result['reduced_chi2']):>9}")
        for key in ("cosine", "relative_error"):  # the gradient check
            if key in result["curves"]:
                print(f"{'':<41}  {key:<24} {_number(result['curves'][key][0]):>12}")
        print(f"    {_budget_text(budget.shots, budget.device_time_s)}")
        for reason in result["reasons"]:
            print(f"    bad: {reason}")
    times = [b.device_time_s for b in budgets]
    total = None if None in times else sum(times)
    print(
        f"all steps: {_budget_text(sum(b.shots for b in budgets), total)} (shots × the profile's "
        "overhead per shot; the pulses themselves left out)"
    )
    checks = _gradient_checks(results)
    if checks:
        print("QEP gradient check: " + "; ".join(checks))


def _budget_text(shots: int, seconds: float | None) -> str:
    """``N shots, device time T`` (T in s, min or h; unknown for runs stored without the profile's
    overhead per shot)."""
    if seconds is None:
        return f"{shots} shots, device time unknown (run stored without the overhead per shot)"
    if seconds < 120:
        shown = f"{seconds:.3g} s"
    elif seconds < 7200:
        shown = f"{seconds / 60:.3g} min"
    else:
        shown = f"{seconds / 3600:.3g} h"
    return f"{shots} shots, device time {shown}"


def _gradient_checks(results: list[dict[str, Any]]) -> list[str]:
    """The QEP gradient checks of a run, the first named 'before' and the last 'after' when the
    runcard checks before and after calibrating."""
    checks = [r for r in results if "cosine" in r["curves"]]
    names = ["before", "after"] if len(checks) == 2 else [f"step {k + 1}" for k in range(len(checks))]
    if len(checks) == 1:
        names = [""]
    return [
        f"{name + ': ' if name else ''}cosine {_number(r['curves']['cosine'][0])}, relative error "
        f"{_number(r['curves']['relative_error'][0])} ({r['quality']})"
        for name, r in zip(names, checks, strict=True)
    ]


def run_history(args: argparse.Namespace) -> int:
    from qep_analog import (
        CHANGE_THRESHOLD,
        FIELDS,
        CalibrationHistory,
        false_alarm_rate,
        history_directory,
        history_series,
        latest_values,
        list_profiles,
        read_profile,
        series_changes,
        shown_in,
        unit_label,
    )

    history = CalibrationHistory(history_directory(args.history), args.argument)
    if args.argument not in list_profiles() and not history.path.exists():
        raise CalibrationError(
            f"calibrate history: {args.argument!r} is neither a known profile nor a device with a "
            f"history in {history.path.parent}"
        )
    read = history.read()
    series = history_series(read.records, args.field)  # a field without good records: one line
    changes = series_changes(series)
    records = [r for r in read.records if args.field is None or r.field == args.field]
    effective: dict[str, Any] = {}
    shown: dict[str, str] = {}  # field → the unit suffix it is shown in
    in_force = None
    if args.argument in list_profiles():
        from qep_analog import profile_units, records_in_force

        profile = read_profile(args.argument)
        effective = latest_values(profile, read.records)
        in_force = sum(len(used) for used in records_in_force(profile, read.records).values())
        if args.field is not None:
            effective = {k: v for k, v in effective.items() if k == args.field}
        # each value in the unit its profile writes it in (else the profile's unit of its dimension),
        # as the run summary and the report show it
        fields = [*(_record_field(k) for k in effective), *(r.field for r in records)]
        shown = profile_units(profile, dict.fromkeys(fields))
    plotted = None
    if args.plot is not None:
        from qep_analog import plot_history

        title = f"calibration history of {args.argument}"
        plotted = plot_history(series, changes, args.plot, title=title, units=shown)
    if args.json:
        print(
            json.dumps(
                {
                    "device": args.argument,
                    "path": str(history.path),
                    "records": [{"record_id": r.record_id, **r.to_document()} for r in records],
                    "torn_lines": list(read.torn),
                    "damaged_lines": [{"line": d.number, "reason": d.reason} for d in read.damaged],
                    "effective": effective,
                    "effective_units": {k: FIELDS[_record_field(k)].unit for k in effective},
                    "threshold_sigma": CHANGE_THRESHOLD,
                    "changes": [c.to_document() for c in changes],
                    **({"plot": str(plotted)} if plotted is not None else {}),
                },
                indent=2,
            )
        )
        return 0
    print(f"{history.path}: {_records_text(read.records, in_force)}")
    for number in read.torn:
        print(f"  line {number} is torn (a writer was interrupted) and skipped")
    for damaged in read.damaged:
        print(f"  line {damaged.number} is damaged and skipped: {damaged.reason}")
    width = max([len("record id"), *(len(r.record_id) for r in records)])
    print(
        f"{'timestamp':<25} {'record id':<{width}} {'routine':<22} {'value':>12} "
        f"{'error':>10} {'unit':<6} {'quality':<7} valid"
    )
    for r in records:
        valid = "yes" if r.valid else "no"
        when = r.time.isoformat(timespec="seconds")  # ISO 8601 with the record's time zone
        value, error = (shown_in(v, r.unit, shown.get(r.field)) for v in (r.value, r.uncertainty))
        print(
            f"{when:<25} {r.record_id:<{width}} {r.routine:<22} {value:>12.6g} {error:>10.3g} "
            f"{unit_label(r.unit, shown.get(r.field)):<6} {r.quality:<7} {valid}"
        )
    for field, value in effective.items():
        unit, suffix = FIELDS[_record_field(field)].unit, shown.get(_record_field(field))
        values = value if isinstance(value, tuple) else (value,)
        text = ", ".join(_number(shown_in(v, unit, suffix)) for v in values)
        label = unit_label(unit, suffix)
        print(f"effective {field} = {text}" + (f" {label}" if label else ""))
    _print_changes(changes, CHANGE_THRESHOLD, false_alarm_rate(CHANGE_THRESHOLD), shown)
    if plotted is not None:
        print(f"plot in {plotted}")
    return 0


def _record_field(name: str) -> str:
    """The record field that fills the profile field ``name`` (``site_false_positive`` is filled by
    the per-site records of ``readout_false_positive``)."""
    from qep_analog import FIELDS

    return next((f for f, spec in FIELDS.items() if spec.site_field == name), name)


def _print_changes(changes: list[Any], threshold: float, rate: float, shown: Mapping[str, str]) -> None:
    """The changes between consecutive good records larger than ``threshold`` combined errors, each
    field's values in the unit of its suffix in ``shown`` (else internal)."""
    from qep_analog import FIELDS, shown_in, unit_label

    flagged = [c for c in changes if c.flagged(threshold)]
    print(
        f"changes between consecutive good records of a field, site and routine: {len(changes)}, "
        f"{len(flagged)} larger than {threshold:g} sigma (a stable device with honest errors: "
        f"about {len(changes) * rate:.2g} expected)"
    )
    if not flagged:
        return
    print(
        f"{'field':<24} {'site':>4} {'routine':<22} {'from':<25} {'to':<25} {'unit':<6} "
        f"{'before':>11} {'after':>11} {'jump':>11} {'sigma':>9} {'jump/sigma':>10}"
    )
    for c in flagged:
        site = "-" if c.series.site is None else str(c.series.site)
        unit, suffix = FIELDS[c.series.field].unit, shown.get(c.series.field)
        before, after, jump, sigma = (
            shown_in(v, unit, suffix) for v in (c.before.value, c.after.value, c.jump, c.sigma)
        )
        print(
            f"{c.series.field:<24} {site:>4} {c.series.routine:<22} "
            f"{c.before.time.isoformat(timespec='seconds'):<25} "
            f"{c.after.time.isoformat(timespec='seconds'):<25} {unit_label(unit, suffix):<6} "
            f"{before:>11.6g} {after:>11.6g} {jump:>+11.4g} {sigma:>9.3g} {c.significance:>10.3g}"
        )


def run_report(args: argparse.Namespace) -> int:
    from qep_analog import read_budgets, read_results, read_run, read_run_records, run_state, shown_units

    run = read_run(args.argument)
    results = read_results(args.argument)
    budgets = read_budgets(args.argument)
    records = read_run_records(args.argument)
    state = run_state(run)
    if args.json:
        steps = [
            {
                "shots": b.shots,
                "device_time_s": b.device_time_s,
                "record_ids": [r.record_id for r in made],
                "uses": sorted({u for r in made for u in r.uses}),
            }
            for b, made in zip(budgets, records, strict=True)
        ]
        print(json.dumps({"run": run, "state": state, "results": results, "steps": steps}, indent=2))
        return 0
    plots = None
    # drawn first (it reads the stored data, so a damaged file stops it early); a run stopped in its
    # first step has nothing to draw
    if not args.no_plot and run["steps"]:
        from qep_analog import plot_run

        plots = plot_run(args.argument)
    print(
        f"run {run['run_id']}: runcard {run['runcard']} on {run['device']} (profile version "
        f"{run['profile_version']}, backend {run['backend']}, update {run['update']}): {state}"
    )
    _print_steps(results, shown_units(run), budgets)
    print("records made by each step, and the records its model took as known:")
    for step, made in zip(run["steps"], records, strict=True):
        ids = _ids_text([r.record_id for r in made]) or "none"
        used = _ids_text(sorted({u for r in made for u in r.uses})) or "none"
        print(f"  {step['folder']}: {ids}; used {used}")
    if plots is not None:
        print(f"plots in {plots}")
    return 0


def _ids_text(ids: list[str]) -> str:
    """Record ids in short: those of one run and step together, each field with its sites
    (``RUN#3: detuning_offset, detuning_offset@0-3``)."""
    from qep_analog import RecordId

    groups: dict[str, dict[str, list[int]]] = {}
    for text in ids:
        rid = RecordId.parse(text)
        head = rid.run_id if rid.step is None else f"{rid.run_id}#{rid.step}"
        sites = groups.setdefault(head, {}).setdefault(rid.field, [])
        sites.append(-1 if rid.site is None else rid.site)
    parts = []
    for head, fields in groups.items():
        shown = []
        for name, sites in fields.items():
            if -1 in sites:
                shown.append(name)
            placed = sorted(s for s in sites if s >= 0)
            if placed:
                shown.append(f"{name}@{_site_ranges(placed)}")
        parts.append(f"{head}: {', '.join(shown)}")
    return "; ".join(parts)


def _site_ranges(sites: list[int]) -> str:
    """``0-3,5`` for sites 0, 1, 2, 3, 5 (sorted)."""
    ranges: list[list[int]] = []
    for site in sites:
        if ranges and site == ranges[-1][1] + 1:
            ranges[-1][1] = site
        else:
            ranges.append([site, site])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
