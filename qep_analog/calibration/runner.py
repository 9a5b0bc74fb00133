"""Run a runcard: each routine acquires, its data are saved, it fits, and its records are kept.

Run folder layout (``OUT``)::

    run.json                         qep-calibration-run/1: run id, device, runcard, steps, verdicts,
                                     the units each step is shown in (lab_units), and the
                                     profile's overhead per shot (``shot_overhead_s``)
    01-readout/data.json             qep-calibration-data/2, written before the fit
    01-readout/result.json           qep-calibration-result/2
    01-readout/records.json          qep-calibration-records/2: the proposed records
                                     (qep-calibration-record/2 documents)

Each record names its step (:attr:`CalibrationRecord.step`, the 1-based index of the step in the
runcard), so its id ``RUN#STEP:FIELD[@SITE]`` is unique within the run even when two routines measure
one field (detuning spectroscopy and Ramsey both give ``detuning_offset``).

A record is stamped with the wall time (UTC), or, on a backend with a simulated clock
(:class:`~qep_analog.calibration.backend.DeviceClock`: a fake lab put on a simulated day), with that
clock plus the device time the run has spent before the step's records were made: each step's shots
times the profile's ``shot_overhead`` (:func:`step_device_time`).

After each routine the effective profile is re-resolved, so later routines use what earlier ones
found (e.g. Rabi is driven at the detuning offset Ramsey just measured). With ``update: append`` the
records (good and bad: bad ones never change the effective profile) are appended to the history.

Every step is rehearsed before the folder is made (:mod:`qep_analog.calibration.rehearsal`).
``run.json`` is written with the first data and says what the run planned (``planned``: routines
and parameters), with which backend ``settings``, and its ``status``: ``running`` (or killed),
``stopped`` (by the error in ``stopped``) or ``complete``. A step is done once ``run.json`` lists it
(with the backend's draws so far, ``noise_state``, when they can be restored); its records then go
to the history. A run that is not complete is continued by ``resume`` from its first unfinished step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from qep_analog.calibration.backend import CalibrationBackend, DeviceClock, ResumableNoise
from qep_analog.calibration.data import CalibrationData, read_data, write_data
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.known import Known
from qep_analog.calibration.lab_units import SWEEP, profile_keys, step_units
from qep_analog.calibration.records import FIELDS, ID_SEPARATORS, QUALITIES, CalibrationRecord
from qep_analog.calibration.registry import routine_named
from qep_analog.calibration.rehearsal import rehearse, selected
from qep_analog.calibration.resolve import resolve
from qep_analog.calibration.routine import (
    RESULT_SCHEMA,
    FitResult,
    ItemReport,
    fit_sites,
    read_result,
    stored_parameters,
)
from qep_analog.calibration.runcard import POLICIES, Runcard, RunStep
from qep_analog.calibration.versions import schema_version
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError, StorageError
from qep_analog.memory import require_memory
from qep_analog.schema import Field, parse_section, shown
from qep_analog.storage import (
    confined_path,
    folder_lock,
    load_json,
    present_files,
    read_json,
    refuse_held_run,
    write_json,
)
from qep_analog.units import SUFFIXES, dimension_of

RUN_SCHEMA = "qep-calibration-run/1"
#: ``progress(done, total, routine)``: how far a run is (steps done of the runcard's total)
StepReport = Callable[[int, int, str], None]
#: ``scan_progress(routine, done, total)``: how far the running routine's acquisition is
ScanReport = Callable[[str, int, int], None]
RECORDS_FAMILY = "qep-calibration-records"
RECORDS_VERSION = 2
RECORDS_SCHEMA = f"{RECORDS_FAMILY}/{RECORDS_VERSION}"
US_PER_SECOND = 1e6


def record_time(backend: CalibrationBackend, elapsed: float = 0.0) -> dt.datetime:
    """When a record is made: the backend's simulated clock if it has one (a fake lab's day) plus
    ``elapsed`` µs of device time the run has spent, else the wall time (UTC)."""
    moment = backend.device_now() if isinstance(backend, DeviceClock) else None
    if moment is None:
        return dt.datetime.now(dt.UTC)
    return moment + dt.timedelta(microseconds=elapsed)


def step_device_time(data: CalibrationData, profile: DeviceProfile) -> float:
    """The device time (µs) a step's data took: its shots times the profile's overhead per shot (the
    pulses themselves, at most a few ms each against an overhead of tens to hundreds of ms, are left
    out)."""
    return data.total_shots * profile.capabilities.shot_overhead


def new_run_id(now: dt.datetime | None = None) -> str:
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class StepOutcome:
    routine: str
    folder: Path
    result: FitResult
    records: tuple[CalibrationRecord, ...]
    #: the unit suffix each quantity is shown in (:mod:`qep_analog.calibration.lab_units`)
    units: dict[str, str] = field(default_factory=dict)
    #: the shots the step's data took, and their device time (µs; :func:`step_device_time`)
    shots: int = 0
    device_time: float = 0.0

    @property
    def budget(self) -> StepBudget:
        """Its shots and device time (s)."""
        return StepBudget(self.shots, self.device_time / US_PER_SECOND)


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    steps: tuple[StepOutcome, ...]
    profile: DeviceProfile  # the effective profile after the run


def planned_budgets(runcard: Runcard, profile: DeviceProfile, n_sites: int) -> list[StepBudget | None]:
    """The most each step of ``runcard`` can take on ``n_sites`` sites of ``profile``
    (:func:`planned_shots`), with its device time at the profile's overhead per shot; None for a step
    whose shots are not known before it runs."""
    overhead = profile.capabilities.shot_overhead / US_PER_SECOND
    return [
        None if shots is None else StepBudget(shots, shots * overhead)
        for shots in planned_shots(runcard, n_sites)
    ]


def planned_shots(runcard: Runcard, n_sites: int) -> list[int | None]:
    """The most shots each step of ``runcard`` can take on ``n_sites`` sites: the rows of its largest
    data (:meth:`~qep_analog.calibration.routine.Routine.data_shape`: a re-scan or every iteration
    included) times its shots per row; None for a routine without a ``shots`` parameter."""
    out: list[int | None] = []
    for step in runcard.steps:
        routine = routine_named(step.routine, runcard.platform)
        shots = getattr(step.parameters, "shots", None)
        rows = routine.data_shape(step.parameters, n_sites)[0]
        out.append(None if not isinstance(shots, int) else rows * shots)
    return out


def check_memory(runcard: Runcard, n_sites: int) -> None:
    """Refuse, before anything runs or is written, a runcard one of whose routines would exceed the
    memory limit on ``n_sites`` sites (:meth:`~qep_analog.calibration.routine.Routine.memory_bytes`)."""
    for index, step in enumerate(runcard.steps):
        routine = routine_named(step.routine, runcard.platform)
        rows, columns = routine.data_shape(step.parameters, n_sites)
        require_memory(
            f"runcard {runcard.name!r}: routines[{index}] {routine.name} ({rows} x {columns} data on "
            f"{n_sites} sites)",
            routine.memory_bytes(step.parameters, n_sites),
        )


def run_runcard(
    runcard: Runcard,
    profile: DeviceProfile,
    backend: CalibrationBackend,
    out_dir: str | Path,
    history: CalibrationHistory | None = None,
    run_id: str | None = None,
    progress: StepReport | None = None,
    scan_progress: ScanReport | None = None,
    *,
    resume: bool = False,
    settings: dict[str, Any] | None = None,
) -> RunOutcome:
    """Run every routine of ``runcard`` on ``backend`` against ``profile`` (the human-written one).
    ``progress(done, total, routine)`` is called before each step and once at the end;
    ``scan_progress(routine, done, total)`` within a routine that acquires in several parts.

    Every step is rehearsed first (:func:`~qep_analog.calibration.rehearsal.rehearse`): a mistake
    it finds leaves ``out_dir`` as it was. The folder is locked while the run writes it (a second
    writer is refused at once); one that holds a run (``run.json``) is refused unless ``resume``,
    which continues an interrupted or stopped run of the same runcard, device, backend and
    ``settings`` (what else chose the backend's draws, e.g. its seed) from its first unfinished
    step: the records of the finished steps are in the history once, and a backend whose draws can
    be restored (:class:`~qep_analog.calibration.backend.ResumableNoise`) draws what the
    uninterrupted run would have drawn."""
    if run_id is not None and (not run_id or any(c in run_id for c in ID_SEPARATORS)):
        raise CalibrationError(
            f"run id {run_id!r} is empty or holds one of {' '.join(ID_SEPARATORS)} (they separate the "
            "parts of a record id)"
        )
    if history is not None and history.device != profile.name:
        raise CalibrationError(f"history of {history.device!r} given for device {profile.name!r}")
    if runcard.platform != profile.platform:
        raise CalibrationError(
            f"runcard {runcard.name!r}: for {runcard.platform} devices, not {profile.name!r} "
            f"({profile.platform})"
        )
    check_memory(runcard, backend.n_sites)
    out = Path(out_dir)
    if not resume:  # before the folder is made: a mistake leaves it as it was
        rehearse(runcard, runcard.steps, resolve(profile, _history_records(history)), backend)
    with folder_lock(out, "calibration run folder"):
        if resume:
            run = _resumable_run(out, runcard, profile, backend, settings or {})
        else:
            refuse_held_run(
                out,
                present_files(out, ("run.json",)),
                "pass --resume to continue it if it is unfinished, or choose another --out",
            )
            run_id = run_id or new_run_id(record_time(backend))
            run = _new_run(run_id, runcard, profile, backend, settings or {})
        return _run_steps(run, out, history, progress, scan_progress)


def _history_records(history: CalibrationHistory | None) -> list[CalibrationRecord]:
    return list(history.read().records) if history is not None else []


@dataclass
class _Run:
    """A run in progress: its inputs, its ``run.json`` document and the steps done so far."""

    runcard: Runcard
    profile: DeviceProfile
    backend: CalibrationBackend
    summary: dict[str, Any]
    done: list[StepOutcome] = field(default_factory=list)
    resumed: bool = False

    @property
    def run_id(self) -> str:
        return str(self.summary["run_id"])


def _new_run(
    run_id: str,
    runcard: Runcard,
    profile: DeviceProfile,
    backend: CalibrationBackend,
    settings: dict[str, Any],
) -> _Run:
    summary: dict[str, Any] = {
        "run_id": run_id,
        "status": "running",
        "device": profile.name,
        "profile_version": profile.version,
        "runcard": runcard.name,
        "targets": list(runcard.targets),
        "update": runcard.update,
        "backend": backend.name,
        "settings": json_ready(settings),
        "planned": _planned(runcard),
        "shot_overhead_s": profile.capabilities.shot_overhead / US_PER_SECOND,
        "started": dt.datetime.now(dt.UTC).isoformat(),
        "steps": [],
    }
    return _Run(runcard, profile, backend, summary)


def _planned(runcard: Runcard) -> list[dict[str, Any]]:
    """Each step's routine and parameters as stored (what a resumed run must repeat)."""
    return [
        {"routine": step.routine, "parameters": stored_parameters(step.parameters)}
        for step in runcard.steps
    ]


def _resumable_run(
    out: Path,
    runcard: Runcard,
    profile: DeviceProfile,
    backend: CalibrationBackend,
    settings: dict[str, Any],
) -> _Run:
    """The run stored in ``out``, checked to be the one asked for, with its finished steps."""
    if not (out / "run.json").exists():
        raise CalibrationError(f"{out}: holds no run to resume (no run.json)")
    summary = read_run(out)
    if "planned" not in summary:
        raise CalibrationError(f"{out / 'run.json'}: written by an earlier version; it cannot be resumed")
    asked = {
        "device": profile.name,
        "runcard": runcard.name,
        "targets": list(runcard.targets),
        "update": runcard.update,
        "backend": backend.name,
        "settings": json_ready(settings),
        "planned": json_ready(_planned(runcard)),
    }
    for key, value in asked.items():
        if summary.get(key) != value:
            raise CalibrationError(
                f"{out / 'run.json'}: {key} {_shown(summary.get(key))} differs from this command's "
                f"{_shown(value)}; resume with the command that started the run"
            )
    run = _Run(runcard, profile, backend, summary, resumed=True)
    for index, stored in enumerate(summary["steps"], start=1):
        run.done.append(_stored_step(out, runcard.steps[index - 1], stored, profile))
    if "noise_state" in summary and isinstance(backend, ResumableNoise):
        backend.restore_noise_state(summary["noise_state"])
    summary["status"] = "running"
    summary.pop("stopped", None)
    summary.setdefault("resumed", []).append(dt.datetime.now(dt.UTC).isoformat())
    return run


def json_ready(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _stored_step(out: Path, step: RunStep, stored: dict[str, Any], profile: DeviceProfile) -> StepOutcome:
    """A finished step of a stored run, from its folder."""
    folder = step_folder(out, stored)
    result = read_result(folder / "result.json")
    records = read_step_records(folder)
    data = read_data(folder / "data.json")
    return StepOutcome(
        step.routine,
        folder,
        result,
        records,
        dict(stored.get("units", {})),
        data.total_shots,
        step_device_time(data, profile),
    )


def read_step_records(folder: Path) -> tuple[CalibrationRecord, ...]:
    """The records a step proposed (``records.json``, version 1 or 2; a newer version is refused in
    one line naming the file)."""
    path = folder / "records.json"
    try:
        document = load_json(path)
    except StorageError as exc:
        raise CalibrationError(str(exc)) from None
    if not isinstance(document, dict) or not isinstance(document.get("records"), list):
        schema_version(
            document.get("schema") if isinstance(document, dict) else None,
            RECORDS_FAMILY,
            RECORDS_VERSION,
            str(path),
        )
        raise CalibrationError(f"{path}: no list of records")
    schema_version(document.get("schema"), RECORDS_FAMILY, RECORDS_VERSION, str(path))
    return tuple(
        CalibrationRecord.from_document(d, f"{path}, records[{k}]")
        for k, d in enumerate(document["records"])
    )


def _run_steps(
    run: _Run,
    out: Path,
    history: CalibrationHistory | None,
    progress: StepReport | None,
    scan_progress: ScanReport | None,
) -> RunOutcome:
    """Run the steps ``run`` has not done (rehearsed first when it resumes), marking each done in
    ``run.json`` before its records go to the history; a step that fails marks the run stopped."""
    runcard, profile, summary = run.runcard, run.profile, run.summary
    append = history is not None and runcard.update == "append"
    finished = [r for step in run.done for r in step.records]
    if append:
        _complete_history(history, run.run_id, finished)
    known = _history_records(history) + ([] if append else finished)
    effective = resolve(profile, known)
    summary.setdefault("profile_in_force", effective.provenance())
    remaining = runcard.steps[len(run.done) :]
    if run.resumed:
        rehearse(runcard, remaining, effective, run.backend)
        write_json(out / "run.json", summary, RUN_SCHEMA)
    steps = list(run.done)
    total = len(runcard.steps)
    try:
        for index, step in enumerate(remaining, start=len(run.done) + 1):
            if progress is not None:
                progress(index - 1, total, step.routine)
            within = None if scan_progress is None else partial(scan_progress, step.routine)
            elapsed = sum(s.device_time for s in steps)
            outcome = _run_step(
                run, index, step, effective, Known.from_records(profile.name, known), out, within, elapsed
            )
            steps.append(outcome)
            known.extend(outcome.records)
            effective = resolve(profile, known)
            _mark_done(run, outcome, effective, out)
            if append and history is not None:
                history.append(outcome.records)
        summary["status"] = "complete"
        write_json(out / "run.json", summary, RUN_SCHEMA)
    except BaseException as exc:
        _mark_stopped(summary, exc, out)
        raise
    if progress is not None:
        progress(total, total, "done")
    return RunOutcome(run.run_id, tuple(steps), effective)


def _run_step(
    run: _Run,
    index: int,
    step: RunStep,
    effective: DeviceProfile,
    known: Known,
    out: Path,
    within: ItemReport | None,
    elapsed: float = 0.0,
) -> StepOutcome:
    """Acquire (with what is ``known``: the errors and per-site values of the records so far), save
    the data (the first data of a run write its ``run.json``), fit, and save the result and the
    proposed records of step ``index`` with the criteria they were judged by. ``elapsed``: the device
    time (µs) the run spent before this step (a simulated clock's records are stamped after it and
    this step's own)."""
    runcard, profile = run.runcard, run.profile
    routine = routine_named(step.routine, profile.platform)
    folder = out / f"{index:02d}-{routine.name}"
    acquired = routine.acquire_known(step.parameters, run.backend, effective, known, within)
    data = selected(runcard, routine, acquired, run.backend)
    if not (out / "run.json").exists():
        write_json(out / "run.json", run.summary, RUN_SCHEMA)  # from its first data on, a run is held
    write_data(folder / "data.json", data)  # saved before any fit
    result = fit_sites(routine, data)
    write_json(folder / "result.json", result.to_document(), RESULT_SCHEMA)
    spent = step_device_time(data, profile)
    proposed = result.records(
        device=profile.name,
        profile_version=profile.version,
        runcard=runcard.name,
        run_id=run.run_id,
        timestamp=record_time(run.backend, elapsed + spent).isoformat(),
    )
    records = [dataclasses.replace(r, step=index) for r in proposed]  # ids unique within the run
    write_json(
        folder / "records.json",
        {
            "records": [r.to_document() for r in records],
            "quality": result.quality,
            "criteria": list(result.criteria),
            "reasons": list(result.reasons),
        },
        RECORDS_SCHEMA,
    )
    runcard_keys = [key for s in runcard.steps for key in s.keys]
    fields = dict.fromkeys(e.field for e in result.estimates)
    units = step_units(step.keys, runcard_keys, profile_keys(profile), data.sweep_unit, fields)
    return StepOutcome(routine.name, folder, result, tuple(records), units, data.total_shots, spent)


def _mark_done(run: _Run, step: StepOutcome, effective: DeviceProfile, out: Path) -> None:
    """Add ``step`` to ``run.json`` with the profile after it and the backend's draws so far: a resume
    skips it from now on."""
    summary = run.summary
    summary["steps"].append(
        {
            "routine": step.routine,
            "folder": step.folder.name,
            "quality": step.result.quality,
            "reasons": list(step.result.reasons),
            "units": step.units,
        }
    )
    # dry run: the records stay in the run folder, so the profile in force does not change
    key = "profile_after" if run.runcard.update == "append" else "profile_if_applied"
    summary[key] = effective.provenance()
    if isinstance(run.backend, ResumableNoise):
        summary["noise_state"] = run.backend.noise_state()
    write_json(out / "run.json", summary, RUN_SCHEMA)


def _mark_stopped(summary: dict[str, Any], exc: BaseException, out: Path) -> None:
    """Record in ``run.json`` (if the run wrote one) that an error stopped the run, and which."""
    if (out / "run.json").exists():
        summary["status"] = "stopped"
        summary["stopped"] = (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]
        write_json(out / "run.json", summary, RUN_SCHEMA)


def _complete_history(
    history: CalibrationHistory | None, run_id: str, finished: list[CalibrationRecord]
) -> None:
    """Append the records of a run's finished steps that its history misses (a run killed between
    marking a step done and appending its records)."""
    if history is None:
        return
    present = {r for r in history.read().records if r.run_id == run_id}
    missing = [r for r in finished if r not in present]
    if missing:
        history.append(missing)


def run_state(run: dict[str, Any]) -> str:
    """``complete``, or what is missing from a run document and why (a run without ``status`` was
    written before runs recorded it: it is taken as complete)."""
    status = run.get("status", "complete")
    if status == "complete":
        return "complete"
    planned = run.get("planned")
    of = f" of {len(planned)}" if isinstance(planned, list) else ""
    done = f"{len(run.get('steps', []))}{of} steps done"
    if status == "stopped":
        return f"incomplete: {done}; stopped by {run.get('stopped', 'an error')}; --resume continues it"
    return f"incomplete: {done}; the run was interrupted (or is still running); --resume continues it"


_STEP_FIELDS = (
    Field("routine", "text"),
    Field("folder", "text"),
    Field("quality", "text", choices=QUALITIES),
    Field("reasons", "texts"),
    Field("units", "mapping", value=Field("suffix", "text"), required=False, default={}),
)
#: the keys of ``run.json`` its readers use; keys a later ``/1`` writer adds are kept, not checked
_RUN_FIELDS = (
    Field("schema", "text", choices=(RUN_SCHEMA,)),
    Field("run_id", "text"),
    Field("device", "text"),
    Field("profile_version", "integer", low=1),
    Field("runcard", "text"),
    Field("targets", "integers", low=0, required=False, default=[]),
    Field("update", "text", choices=POLICIES),
    Field("backend", "text"),
    Field("steps", "list", value=Field("step", "section", fields=_STEP_FIELDS)),
)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The run document ``RUN_DIR/run.json``, checked: a missing, malformed or hand-damaged file is a
    one-line :class:`CalibrationError` naming it."""
    path = Path(run_dir) / "run.json"
    try:
        document = read_json(path, RUN_SCHEMA)
    except StorageError as exc:
        raise CalibrationError(str(exc)) from None
    checked = {f.name for f in _RUN_FIELDS}
    values = parse_section(
        {k: v for k, v in document.items() if k in checked}, _RUN_FIELDS, str(path), CalibrationError
    )
    for index, step in enumerate(values["steps"]):
        _check_units(step["units"], f"{path}: steps[{index}].units")
    return {**document, **values}


def _check_units(units: dict[str, str], where: str) -> None:
    """Each quantity's display suffix is one of its dimension's (a sweep's: of any dimension)."""
    for quantity, suffix in units.items():
        if quantity == SWEEP:
            known = [s for suffixes in SUFFIXES.values() for s in suffixes]
        elif quantity in FIELDS:
            known = list(SUFFIXES.get(dimension_of(FIELDS[quantity].unit), {}))
        else:
            raise CalibrationError(f"{where}: {shown(quantity)} is not {SWEEP!r} nor a calibrated field")
        if suffix not in known:
            raise CalibrationError(
                f"{where}.{quantity}: unit {shown(suffix)} is not one of {', '.join(known) or 'none'}"
            )


def step_folder(run_dir: str | Path, step: dict[str, Any]) -> Path:
    """The folder of one step of a run document: ``steps[k].folder``, inside the run folder (a name
    that leaves it, or an absolute path, is a one-line :class:`CalibrationError`)."""
    folder = step.get("folder") if isinstance(step, dict) else None
    where = f"{Path(run_dir) / 'run.json'}: step folder"
    if not isinstance(folder, str):
        raise CalibrationError(f"{where} {folder!r} is not a folder name")
    return confined_path(folder, run_dir, where, CalibrationError)


def shown_units(run: dict[str, Any]) -> list[dict[str, str]]:
    """The display units of each step of a run document (empty for runs stored without them: those
    are shown in internal units)."""
    return [dict(step.get("units", {})) for step in run["steps"]]


@dataclass(frozen=True)
class StepBudget:
    """What one step of a stored run took: its shots and, when the run stored the profile's overhead
    per shot, their device time (s; :func:`step_device_time`), else None."""

    shots: int
    device_time_s: float | None


def read_run_records(run_dir: str | Path) -> list[tuple[CalibrationRecord, ...]]:
    """The records each finished step of a stored run proposed, in run order (:func:`read_step_records`)."""
    return [read_step_records(step_folder(run_dir, step)) for step in read_run(run_dir)["steps"]]


def read_budgets(run_dir: str | Path) -> list[StepBudget]:
    """The shots and device time of each finished step of a run, from its stored data."""
    run = read_run(run_dir)
    stored = run.get("shot_overhead_s")
    overhead = None
    if isinstance(stored, int | float) and not isinstance(stored, bool) and stored >= 0:
        overhead = float(stored)
    out = []
    for step in run["steps"]:
        shots = read_data(step_folder(run_dir, step) / "data.json").total_shots
        out.append(StepBudget(shots, None if overhead is None else shots * overhead))
    return out


def read_results(run_dir: str | Path) -> list[dict[str, Any]]:
    """The stored result documents of a run, in run order, each checked (:meth:`FitResult.from_document`:
    a hand-damaged ``result.json`` is a one-line :class:`CalibrationError` naming it)."""
    run = read_run(run_dir)
    out = []
    for step in run["steps"]:
        path = step_folder(run_dir, step) / "result.json"
        result = read_result(path)
        if result.routine != step["routine"]:
            raise CalibrationError(
                f"{path}: result of routine {shown(result.routine)}, its run names {shown(step['routine'])}"
            )
        out.append(result.to_document())
    return out


def refit(run_dir: str | Path) -> list[FitResult]:
    """Re-run every fit of a run folder offline, from its stored data only."""
    run = read_run(run_dir)
    results = []
    for step in run["steps"]:
        path = step_folder(run_dir, step) / "data.json"
        data = read_data(path)
        try:
            results.append(fit_sites(routine_named(data.routine), data))
        except KeyError as exc:  # stored data a hand edit left without what its routine reads
            raise CalibrationError(
                f"{path}: the data lack {shown(exc.args[0])}, which routine {data.routine!r} needs"
            ) from None
    return results
