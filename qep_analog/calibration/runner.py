"""Run a runcard: each routine acquires, its data are saved, it fits, and its records are kept.

Run folder layout (``OUT``)::

    run.json                         qep-calibration-run/1: run id, device, runcard, steps, verdicts
                                     and the units each step is shown in (lab_units)
    01-readout/data.json             qep-calibration-data/1, written before the fit
    01-readout/result.json           qep-calibration-result/1
    01-readout/records.json          qep-calibration-records/1: the proposed records

After each routine the effective profile is re-resolved, so later routines use what earlier ones
found (e.g. Rabi is driven at the detuning offset Ramsey just measured). With ``update: append`` the
records (good and bad: bad ones never change the effective profile) are appended to the history.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from qep_analog.calibration.backend import CalibrationBackend
from qep_analog.calibration.data import read_data, write_data
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.lab_units import SWEEP, profile_keys, step_units
from qep_analog.calibration.records import FIELDS, QUALITIES, CalibrationRecord
from qep_analog.calibration.registry import routine_named
from qep_analog.calibration.resolve import resolve
from qep_analog.calibration.routine import RESULT_SCHEMA, FitResult, fit_sites
from qep_analog.calibration.runcard import POLICIES, Runcard
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError, StorageError
from qep_analog.schema import Field, parse_section, shown
from qep_analog.storage import confined_path, read_json, write_json
from qep_analog.units import SUFFIXES, dimension_of

RUN_SCHEMA = "qep-calibration-run/1"
#: ``progress(done, total, routine)``: how far a run is (steps done of the runcard's total)
StepReport = Callable[[int, int, str], None]
#: ``scan_progress(routine, done, total)``: how far the running routine's acquisition is
ScanReport = Callable[[str, int, int], None]
RECORDS_SCHEMA = "qep-calibration-records/1"


def new_run_id(now: dt.datetime | None = None) -> str:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class StepOutcome:
    routine: str
    folder: Path
    result: FitResult
    records: tuple[CalibrationRecord, ...]
    #: the unit suffix each quantity is shown in (:mod:`qep_analog.calibration.lab_units`)
    units: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    steps: tuple[StepOutcome, ...]
    profile: DeviceProfile  # the effective profile after the run


def run_runcard(
    runcard: Runcard,
    profile: DeviceProfile,
    backend: CalibrationBackend,
    out_dir: str | Path,
    history: CalibrationHistory | None = None,
    run_id: str | None = None,
    progress: StepReport | None = None,
    scan_progress: ScanReport | None = None,
) -> RunOutcome:
    """Run every routine of ``runcard`` on ``backend`` against ``profile`` (the human-written one).
    ``progress(done, total, routine)`` is called before each step and once at the end;
    ``scan_progress(routine, done, total)`` within a routine that acquires in several parts."""
    if history is not None and history.device != profile.name:
        raise CalibrationError(f"history of {history.device!r} given for device {profile.name!r}")
    if runcard.platform != profile.platform:
        raise CalibrationError(
            f"runcard {runcard.name!r}: for {runcard.platform} devices, not {profile.name!r} "
            f"({profile.platform})"
        )
    out = Path(out_dir)
    run_id = run_id or new_run_id()
    known = list(history.read().records) if history is not None else []
    effective = resolve(profile, known)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "device": profile.name,
        "profile_version": profile.version,
        "runcard": runcard.name,
        "targets": list(runcard.targets),
        "update": runcard.update,
        "backend": backend.name,
        "started": dt.datetime.now(dt.UTC).isoformat(),
        "profile_in_force": effective.provenance(),
        "steps": [],
    }
    write_json(out / "run.json", summary, RUN_SCHEMA)
    steps = []
    total = len(runcard.steps)
    runcard_keys = [key for step in runcard.steps for key in step.keys]
    written = profile_keys(profile)
    for index, step in enumerate(runcard.steps, start=1):
        routine = routine_named(step.routine, profile.platform)
        if progress is not None:
            progress(index - 1, total, routine.name)
        folder = out / f"{index:02d}-{routine.name}"
        within = None if scan_progress is None else partial(scan_progress, routine.name)
        data = routine.acquire(step.parameters, backend, effective, within)
        if runcard.targets and routine.site_columns and data.n_sites == backend.n_sites:
            data = data.select(runcard.targets)
        write_data(folder / "data.json", data)  # saved before any fit
        result = fit_sites(routine, data)
        write_json(folder / "result.json", result.to_document(), RESULT_SCHEMA)
        records = result.records(
            device=profile.name,
            profile_version=profile.version,
            runcard=runcard.name,
            run_id=run_id,
            timestamp=dt.datetime.now(dt.UTC).isoformat(),
        )
        write_json(folder / "records.json", {"records": [r.to_document() for r in records]}, RECORDS_SCHEMA)
        if history is not None and runcard.update == "append":
            history.append(records)
        known.extend(records)
        effective = resolve(profile, known)
        fields = dict.fromkeys(e.field for e in result.estimates)
        units = step_units(step.keys, runcard_keys, written, data.sweep_unit, fields)
        steps.append(StepOutcome(routine.name, folder, result, tuple(records), units))
        summary["steps"].append(
            {
                "routine": routine.name,
                "folder": folder.name,
                "quality": result.quality,
                "reasons": list(result.reasons),
                "units": units,
            }
        )
        # dry run: the records stay in the run folder, so the profile in force does not change
        key = "profile_after" if runcard.update == "append" else "profile_if_applied"
        summary[key] = effective.provenance()
        write_json(out / "run.json", summary, RUN_SCHEMA)
    if progress is not None:
        progress(total, total, "done")
    return RunOutcome(run_id, tuple(steps), effective)


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


def read_results(run_dir: str | Path) -> list[dict[str, Any]]:
    """The stored result documents of a run, in run order, each checked (:meth:`FitResult.from_document`:
    a hand-damaged ``result.json`` is a one-line :class:`CalibrationError` naming it)."""
    run = read_run(run_dir)
    out = []
    for step in run["steps"]:
        path = step_folder(run_dir, step) / "result.json"
        try:
            document = read_json(path, RESULT_SCHEMA)
        except StorageError as exc:
            raise CalibrationError(str(exc)) from None
        result = FitResult.from_document(document, str(path))
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
