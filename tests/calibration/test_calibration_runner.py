"""Runcards, the runner, resolve and offline re-fits."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.records import CalibrationRecord
from qep_analog.calibration.resolve import resolve
from qep_analog.calibration.runcard import load_runcard, parse_runcard
from qep_analog.calibration.runner import RUN_SCHEMA, read_results, refit, run_runcard
from qep_analog.devices.profile import UncalibratedSitesWarning, read_profile
from qep_analog.errors import CalibrationError, StorageError
from qep_analog.library import builtin_directory
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.storage import write_json

PROFILE = read_profile("fresnel-like")

RUNCARDS_DIR = builtin_directory("calibration")


def record(field: str, value: float, **changes: object) -> CalibrationRecord:
    fields: dict[str, object] = dict(
        field=field,
        value=value,
        uncertainty=0.01,
        unit="",
        timestamp="2026-01-01T00:00:00+00:00",
        run_id="r",
        routine="x",
        quality="good",
        valid=True,
        device="fresnel-like",
        profile_version=1,
        runcard="c",
    )
    fields.update(changes)
    return CalibrationRecord(**fields)  # type: ignore[arg-type]


def test_resolve_takes_the_latest_usable_record() -> None:
    records = [
        record("rabi_scale", 1.1),
        record("rabi_scale", 1.2),
        record("rabi_scale", 9.0, quality="bad"),
        record("rabi_scale", 8.0, valid=False),
        record("rabi_scale", 7.0, site=0),
        record("rabi_scale", 6.0, device="aquila-like"),
        record("detuning_offset", 0.9, unit="rad/µs"),
        record("dephasing_time", 3.0, unit="µs"),
        record("readout_false_positive", 0.03),
    ]
    effective = resolve(PROFILE, records)
    assert effective.calibration.rabi_scale == 1.2 and effective.calibration.detuning_offset == 0.9
    assert effective.noise.dephasing_time == 3.0 and effective.noise.readout_false_positive == 0.03
    assert effective.noise.readout_false_negative == PROFILE.noise.readout_false_negative
    assert effective.calibration.interaction_scale == PROFILE.calibration.interaction_scale
    assert resolve(PROFILE, [r for r in records if not r.usable]) == PROFILE


def test_shipped_runcards_parse() -> None:
    paths = sorted(RUNCARDS_DIR.glob("*.yaml"))
    assert paths
    for path in paths:
        assert load_runcard(path).steps


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "qep-runcard/0"}, "schema"),
        ({"extra": 1}, "unknown key 'extra'"),
        ({"update": "always"}, "update"),
        ({"platform": "superconducting"}, "platform"),
        ({"routines": []}, r"routines = \[\] is empty"),
        ({"routines": [{"routine": "nope"}]}, "unknown"),
        ({"routines": [{"routine": "rabi", "parameters": {"speed": 1}}]}, "unknown key 'speed'"),
        ({"routines": [{"routine": "rabi", "target": 1}]}, r"routines\[0\]: unknown key 'target'"),
    ],
)
def test_runcard_errors_are_one_line(change: dict[str, object], message: str) -> None:
    document = yaml.safe_load((RUNCARDS_DIR / "rydberg-basic.yaml").read_text())
    document.update(change)
    with pytest.raises(CalibrationError, match=message) as info:
        parse_runcard(document, "card.yaml")
    assert "\n" not in str(info.value)


def test_basic_runcard_brings_the_profile_to_the_hidden_values(tmp_path: Path) -> None:
    lab = FakeRydbergLab.for_profile(PROFILE, n_sites=4, seed=11)
    history = CalibrationHistory(tmp_path / "history", PROFILE.name)
    profile_text = Path(PROFILE.source).read_text()
    outcome = run_runcard(load_runcard("rydberg-basic"), PROFILE, lab, tmp_path / "run", history)
    assert [s.result.quality for s in outcome.steps] == ["good"] * 4
    hidden, effective = lab.hidden, outcome.profile
    assert effective.calibration.rabi_scale == pytest.approx(hidden.rabi_scale, abs=0.005)
    assert effective.calibration.detuning_offset == pytest.approx(hidden.detuning_offset, abs=0.02)
    assert effective.noise.dephasing_time == pytest.approx(hidden.dephasing_time, abs=0.15)
    assert effective.noise.readout_false_positive == pytest.approx(
        np.mean(hidden.false_positive), abs=0.006
    )
    assert effective.noise.readout_false_negative == pytest.approx(
        np.mean(hidden.false_negative), abs=0.008
    )
    assert resolve(PROFILE, history.read().records) == effective  # the history alone gives it back
    assert Path(PROFILE.source).read_text() == profile_text  # the human-written profile is untouched
    records = history.read().records
    assert {r.run_id for r in records} == {outcome.run_id}
    assert all(r.runcard == "rydberg-basic" and r.profile_version == PROFILE.version for r in records)
    # offline re-fit from the stored data gives the stored results
    stored = read_results(tmp_path / "run")
    for again, document in zip(refit(tmp_path / "run"), stored, strict=True):
        assert again.to_document() == document


def test_a_bad_step_changes_nothing(tmp_path: Path) -> None:
    card = yaml.safe_load((RUNCARDS_DIR / "rydberg-basic.yaml").read_text())
    card["routines"] = [{"routine": "ramsey", "parameters": {"stop_us": 0.5}}]
    lab = FakeRydbergLab.for_profile(PROFILE, seed=1)
    history = CalibrationHistory(tmp_path, PROFILE.name)
    outcome = run_runcard(parse_runcard(card), PROFILE, lab, tmp_path / "run", history)
    assert outcome.steps[0].result.quality == "bad"
    assert history.read().records and all(r.quality == "bad" for r in history.read().records)
    assert outcome.profile == PROFILE and resolve(PROFILE, history.read().records) == PROFILE


def test_the_runner_reports_its_progress(tmp_path: Path) -> None:
    card = yaml.safe_load((RUNCARDS_DIR / "rydberg-basic.yaml").read_text())
    card["routines"] = [{"routine": "ramsey", "parameters": {"stop_us": 0.5, "points": 21}}] * 2
    reports: list[tuple[int, int, str]] = []
    lab = FakeRydbergLab.for_profile(PROFILE, seed=1)
    run_runcard(parse_runcard(card), PROFILE, lab, tmp_path / "run", progress=lambda *r: reports.append(r))
    assert reports == [(0, 2, "ramsey"), (1, 2, "ramsey"), (2, 2, "done")]


def test_dry_run_keeps_the_history_untouched(tmp_path: Path) -> None:
    card = dataclasses.replace(load_runcard("rydberg-basic"), update="dry-run")
    history = CalibrationHistory(tmp_path / "h", PROFILE.name)
    outcome = run_runcard(
        card, PROFILE, FakeRydbergLab.for_profile(PROFILE, seed=2), tmp_path / "run", history
    )
    assert not history.path.exists()
    assert outcome.profile.calibration.rabi_scale == pytest.approx(1.06, abs=0.005)
    saved = json.loads((tmp_path / "run" / "04-rabi" / "records.json").read_text())
    assert saved["schema"] == "qep-calibration-records/2" and saved["records"]


def test_data_are_on_disk_before_the_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qep_analog.calibration.registry import routine_named

    seen: list[bool] = []

    def crashing_fit(data: object) -> None:
        seen.append((tmp_path / "run" / "01-readout" / "data.json").is_file())
        raise RuntimeError("fit crashed")

    monkeypatch.setattr(routine_named("readout"), "fit", crashing_fit)
    card = load_runcard("rydberg-basic")
    with pytest.raises(RuntimeError, match="fit crashed"):
        run_runcard(card, PROFILE, FakeRydbergLab.for_profile(PROFILE), tmp_path / "run")
    assert seen == [True]
    monkeypatch.undo()
    assert refit(tmp_path / "run") == []  # the run summary lists finished steps only
    from qep_analog.calibration.data import read_data

    assert read_data(tmp_path / "run" / "01-readout" / "data.json").routine == "readout"


def test_resolve_fills_per_site_fields_from_the_last_run() -> None:
    gains = [record("local_gains", g, site=i, run_id="old") for i, g in enumerate((2.0, 2.0, 2.0))]
    gains += [record("local_gains", g, site=i, run_id="new") for i, g in enumerate((1.1, 0.9))]
    gains.append(record("local_gains", 5.0, site=1, run_id="new", quality="bad"))
    effective = resolve(PROFILE, gains)
    assert effective.calibration.local_gains == (1.1, 0.9, 2.0)  # the last value of each site
    gap = [record("local_gains", 1.0, site=s, run_id="gap") for s in (0, 2)]
    assert resolve(PROFILE, gap).calibration.local_gains == (1.0,)  # sites 0 … k−1 without a gap
    readout = [record("readout_false_positive", e, site=i) for i, e in enumerate((0.01, 0.02))]
    effective = resolve(PROFILE, [*readout, record("readout_false_positive", 0.015)])
    assert effective.noise.site_false_positive == (0.01, 0.02)
    assert effective.noise.readout_false_positive == 0.015
    # mitigation takes the per-site values of the measured sites, the device-wide one elsewhere (warned)
    assert ReadoutErrors.from_profile(effective, 2).false_positive.tolist() == [0.01, 0.02]
    with pytest.warns(UncalibratedSitesWarning, match="site_false_positive calibrated on sites 0-1 only"):
        assert ReadoutErrors.from_profile(effective, 3).false_positive.tolist() == [0.01, 0.02, 0.015]
    assert ReadoutErrors.from_profile(effective, 1).false_positive.tolist() == [0.01]
    offsets = [record("site_detuning_offsets", v, site=i, unit="rad/µs") for i, v in enumerate((0.1, -0.2))]
    effective = resolve(PROFILE, [*offsets, record("detuning_offset", 0.5, unit="rad/µs")])
    assert effective.site_offsets(2) == pytest.approx([0.6, 0.3])


def test_readout_errors_on_fewer_sites_warn_once_naming_both() -> None:
    """ε and ε′ measured on sites 0-1, a model on 4 sites: one warning names both and what the other
    sites take; the values are the per-site ones, then the device-wide ones."""
    readout = [record("readout_false_positive", e, site=i) for i, e in enumerate((0.01, 0.02))]
    readout += [record("readout_false_negative", e, site=i) for i, e in enumerate((0.05, 0.06))]
    device_wide = [record("readout_false_positive", 0.015), record("readout_false_negative", 0.055)]
    effective = resolve(PROFILE, [*readout, *device_wide])
    with pytest.warns(UncalibratedSitesWarning) as caught:
        errors = ReadoutErrors.from_profile(effective, 4)
    assert errors.false_positive.tolist() == [0.01, 0.02, 0.015, 0.015]
    assert errors.false_negative.tolist() == [0.05, 0.06, 0.055, 0.055]
    warned = [str(w.message) for w in caught if issubclass(w.category, UncalibratedSitesWarning)]
    assert warned == [
        "device 'fresnel-like': site_false_positive calibrated on sites 0-1 only (sites 2-3 take "
        "0.015); site_false_negative calibrated on sites 0-1 only (sites 2-3 take 0.055)"
    ]


def test_resolve_updates_ion_trap_frequencies_and_refuses_foreign_fields() -> None:
    ions = read_profile("yb171-chain")
    radial = record("radial_frequency", 29.0, unit="rad/µs", device=ions.name)
    axial = record("axial_frequency", 1.9, unit="rad/µs", device=ions.name)
    effective = resolve(ions, [radial, axial, record("stark_crosstalk", 0.03, device=ions.name)])
    assert effective.ions.radial_frequencies == (29.0, ions.ions.radial_frequencies[1])
    assert effective.ions.axial_frequency == 1.9 and effective.ions.stark_crosstalk == 0.03
    with pytest.raises(CalibrationError, match="not a field of a rydberg device"):
        resolve(PROFILE, [record("axial_frequency", 1.9, unit="rad/µs")])


def test_targets_restrict_the_fitted_sites(tmp_path: Path) -> None:
    card = yaml.safe_load((RUNCARDS_DIR / "rydberg-basic.yaml").read_text())
    card["routines"] = card["routines"][:1]
    card["targets"] = [3, 1]
    lab = FakeRydbergLab.for_profile(PROFILE, n_sites=4, seed=3)
    outcome = run_runcard(parse_runcard(card), PROFILE, lab, tmp_path / "run")
    sites = {r.site for r in outcome.steps[0].records}
    assert sites == {None, 1, 3}
    eps = outcome.steps[0].result.estimate("readout_false_positive", 3).value
    assert eps == pytest.approx(lab.hidden.false_positive[3], abs=0.01)
    assert refit(tmp_path / "run")[0].to_document() == read_results(tmp_path / "run")[0]
    with pytest.raises(CalibrationError, match="for rydberg devices, not 'yb171-chain'"):
        run_runcard(parse_runcard(card), read_profile("yb171-chain"), lab, tmp_path / "ion")
    card["targets"] = [1, 1]
    with pytest.raises(CalibrationError, match=r"targets = \[1, 1\] lists an item twice"):
        parse_runcard(card)


#: the keys of a ``run.json`` before its steps
RUN_HEAD = {
    "run_id": "r1",
    "device": "fresnel-like",
    "profile_version": 1,
    "runcard": "rydberg-basic",
    "update": "append",
    "backend": "fake-lab",
}


@pytest.mark.parametrize("folder", ["../elsewhere", "/tmp"])
def test_a_step_folder_outside_the_run_folder_is_refused(tmp_path: Path, folder: str) -> None:
    run_dir = tmp_path / "run"
    (tmp_path / "elsewhere").mkdir()
    step = {"routine": "rabi", "folder": folder, "quality": "good", "reasons": []}
    write_json(run_dir / "run.json", {**RUN_HEAD, "steps": [step]}, RUN_SCHEMA)
    for read in (read_results, refit):
        with pytest.raises(CalibrationError, match=r"run\.json: step folder"):
            read(run_dir)


def comparable(records: tuple[CalibrationRecord, ...]) -> list[dict[str, object]]:
    """Records without what differs between two runs of one runcard (run id, time)."""
    return [{k: v for k, v in r.to_document().items() if k not in ("run_id", "timestamp")} for r in records]


def step_files(run_dir: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(run_dir)): path.read_bytes()
        for path in sorted(run_dir.glob("*/*.json"))
        if path.name in ("data.json", "result.json")
    }


def test_a_run_stopped_by_an_error_resumes_to_the_uninterrupted_run(tmp_path: Path) -> None:
    """A lab that fails in the third step stops the run: run.json says where and why, the history
    holds the two finished steps, a new run into the folder is refused, and a resume (a new lab
    object, as a new process makes) finishes with the data, fits and records of an uninterrupted
    run, bit for bit (the lab's draws after each step are restored)."""
    from qep_analog.calibration.runner import read_run, run_state

    card = load_runcard("rydberg-basic")
    reference = CalibrationHistory(tmp_path / "reference-history", PROFILE.name)
    lab = FakeRydbergLab.for_profile(PROFILE, n_sites=4, seed=11)
    # one run id for both: the data and results name the records their models used by it
    run_id = "20260101T000000Z-000001"
    expected = run_runcard(card, PROFILE, lab, tmp_path / "reference", reference, run_id)

    history = CalibrationHistory(tmp_path / "history", PROFILE.name)
    failing = FakeRydbergLab.for_profile(PROFILE, n_sites=4, seed=11)

    def lost(*arguments: object) -> None:
        raise CalibrationError("the laser lost its lock")

    failing.ramsey = lost  # type: ignore[method-assign]
    run_dir = tmp_path / "run"
    with pytest.raises(CalibrationError, match="the laser lost its lock"):
        run_runcard(card, PROFILE, failing, run_dir, history, run_id, settings={"seed": 11})
    stopped = read_run(run_dir)
    assert stopped["status"] == "stopped" and [s["routine"] for s in stopped["steps"]] == [
        "readout",
        "detuning_spectroscopy",
    ]
    assert run_state(stopped) == (
        "incomplete: 2 of 4 steps done; stopped by CalibrationError: the laser lost its lock; "
        "--resume continues it"
    )
    assert {r.routine for r in history.read().records} == {"readout", "detuning_spectroscopy"}
    with pytest.raises(StorageError, match=r"already holds a run \(run.json\); pass --resume"):
        run_runcard(card, PROFILE, lab, run_dir, history, settings={"seed": 11})
    other = FakeRydbergLab.for_profile(PROFILE, n_sites=4, seed=11)
    with pytest.raises(
        CalibrationError, match=r"settings \{\"seed\": 11\} differs from .*\{\"seed\": 12\}"
    ):
        run_runcard(card, PROFILE, other, run_dir, history, resume=True, settings={"seed": 12})

    resumed = run_runcard(card, PROFILE, other, run_dir, history, resume=True, settings={"seed": 11})
    assert read_run(run_dir)["status"] == "complete" and run_state(read_run(run_dir)) == "complete"
    assert step_files(run_dir) == step_files(tmp_path / "reference")
    assert comparable(history.read().records) == comparable(reference.read().records)
    unnamed = {"calibration_records": ()}  # the records' ids name their runs
    assert dataclasses.replace(resumed.profile, **unnamed) == dataclasses.replace(
        expected.profile, **unnamed
    )
    assert [s.result for s in resumed.steps] == [s.result for s in expected.steps]
    again = run_runcard(card, PROFILE, other, run_dir, history, resume=True, settings={"seed": 11})
    assert len(again.steps) == 4 and len(history.read().records) == len(reference.read().records)


def test_a_resume_appends_the_records_a_kill_kept_from_the_history(tmp_path: Path) -> None:
    """Killed after a step was marked done and before its records reached the history: the resume
    appends them (once)."""
    card = dataclasses.replace(load_runcard("rydberg-basic"), steps=load_runcard("rydberg-basic").steps[:2])
    history = CalibrationHistory(tmp_path / "history", PROFILE.name)
    lab = FakeRydbergLab.for_profile(PROFILE, n_sites=4, seed=3)
    run_runcard(card, PROFILE, lab, tmp_path / "run", history)
    lines = history.path.read_text().splitlines(keepends=True)
    second = [line for line in lines if '"detuning_spectroscopy"' in line]
    history.path.write_text("".join(line for line in lines if line not in second))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    run["status"] = "running"  # as the kill left it
    (tmp_path / "run" / "run.json").write_text(json.dumps(run))
    run_runcard(card, PROFILE, lab, tmp_path / "run", history, resume=True)
    assert history.path.read_text().splitlines(keepends=True)[-len(second) :] == second
    assert len(history.read().records) == len(lines) - 1


def test_a_rehearsal_refuses_a_runcard_before_anything_runs(tmp_path: Path) -> None:
    """A ramp scan whose start (2.5 µs) lies beyond its default stop (2 µs): refused before the
    readout step measures, with no run folder and no record."""
    card = yaml.safe_load((RUNCARDS_DIR / "rydberg-basic.yaml").read_text())
    card["routines"] = [
        {"routine": "readout", "parameters": {"repeats": 2, "shots": 100}},
        {"routine": "ramp_duration_scan", "parameters": {"start_us": 2.5, "points": 6, "shots": 100}},
    ]
    history = CalibrationHistory(tmp_path / "history", PROFILE.name)
    lab = FakeRydbergLab.for_profile(PROFILE, seed=1)
    with pytest.raises(CalibrationError, match=r"scan \[2.5, 2\] µs with 6 points"):
        run_runcard(parse_runcard(card), PROFILE, lab, tmp_path / "run", history)
    assert not (tmp_path / "run").exists() and not history.path.exists()


def test_fit_result_round_trip_and_refusals() -> None:
    from qep_analog.calibration.routine import Estimate, FitResult
    from qep_analog.calibration.versions import NewerSchemaError

    result = FitResult(
        "rabi",
        (Estimate("rabi_scale", 1.02, 0.003), Estimate("rabi_scale", math.nan, math.inf, site=1)),
        math.nan,
        "bad",
        ("reduced chi2 is not finite",),
        ("reduced chi2 < 3.0",),
        {"frequency": [1.0, math.nan]},
    )
    document = json.loads(json.dumps(result.to_document()))
    again = FitResult.from_document(document, "result.json")
    assert again.to_document() == result.to_document()
    assert math.isnan(again.estimates[1].value) and math.isnan(again.reduced_chi2)
    with pytest.raises(CalibrationError, match=r"result.json: rabi: quality 'good' with 1 failed"):
        FitResult.from_document({**document, "quality": "good"}, "result.json")
    with pytest.raises(CalibrationError, match=r"result.json: estimates\[0\].field = 'speed'"):
        FitResult.from_document(
            {**document, "estimates": [{**document["estimates"][0], "field": "speed"}]}, "result.json"
        )
    # written as /2; /1 (the same keys, uses and budget optional) is read; a newer version is refused
    assert document["schema"] == "qep-calibration-result/2"
    old = {k: v for k, v in document.items() if k != "uses"} | {"schema": "qep-calibration-result/1"}
    old["estimates"] = [{k: v for k, v in e.items() if k != "budget"} for e in document["estimates"]]
    assert FitResult.from_document(old, "old.json").to_document() == document
    with pytest.raises(NewerSchemaError, match=r"new.json: written by a newer version .*result/3"):
        FitResult.from_document({**document, "schema": "qep-calibration-result/3"}, "new.json")


#: detuning spectroscopy and Ramsey both measure the detuning offset in one run (short scans)
BOTH_OFFSETS = """\
schema: qep-runcard/1
name: both-offsets
platform: rydberg
routines:
  - routine: readout
    parameters: {repeats: 2, shots: 200}
  - routine: detuning_spectroscopy
    parameters: {rabi_MHz: 0.5, duration_us: 1.0, start_MHz: -1.5, stop_MHz: 1.5, points: 31, shots: 200}
  - routine: ramsey
    parameters: {detuning_MHz: 1.0, start_us: 0.0, stop_us: 4.0, points: 41, shots: 200}
  - routine: rabi
    parameters: {rabi_MHz: 1.0, start_us: 0.0, stop_us: 2.5, points: 31, shots: 200}
"""


def test_record_ids_are_unique_within_a_run_and_uses_names_the_right_one(tmp_path: Path) -> None:
    from qep_analog.calibration.known import record_ids
    from qep_analog.calibration.records import RecordId

    card = parse_runcard(yaml.safe_load(BOTH_OFFSETS))
    history = CalibrationHistory(tmp_path / "h", PROFILE.name)
    outcome = run_runcard(
        card, PROFILE, FakeRydbergLab.for_profile(PROFILE, seed=3), tmp_path / "run", history
    )
    assert all(s.result.quality == "good" for s in outcome.steps)
    records = history.read().records
    ids = [r.record_id for r in records]
    assert len(set(ids)) == len(ids)  # before: both steps wrote RUN:detuning_offset (and @SITE)
    by_id = {r.record_id: r for r in records}
    offsets = [r for r in records if r.field == "detuning_offset" and r.site is None]
    assert [(r.routine, r.step) for r in offsets] == [("detuning_spectroscopy", 2), ("ramsey", 3)]
    assert offsets[0].record_id == f"{outcome.run_id}#2:detuning_offset"
    # Rabi is driven at Ramsey's offsets (the later ones): its uses name Ramsey's records only
    rabi = next(r for r in records if r.routine == "rabi")
    used = [by_id[u] for u in rabi.uses if RecordId.parse(u).field == "detuning_offset"]
    assert used and {(r.routine, r.step) for r in used} == {("ramsey", 3)}
    assert {r.site for r in used} == {None, 0, 1, 2, 3}
    # the profile in force names Ramsey's record, and record_ids reads it through the one parser
    assert record_ids(outcome.profile, ("detuning_offset",)) == (offsets[1].record_id,)
    assert by_id[offsets[1].record_id].value == outcome.profile.calibration.detuning_offset


def test_a_run_id_that_would_break_record_ids_is_refused_before_anything_runs(tmp_path: Path) -> None:
    card = parse_runcard(yaml.safe_load(BOTH_OFFSETS))
    lab = FakeRydbergLab.for_profile(PROFILE, seed=3)
    with pytest.raises(CalibrationError, match=r"run id 'day#1' is empty or holds one of : # @"):
        run_runcard(card, PROFILE, lab, tmp_path / "run", run_id="day#1")
    assert not (tmp_path / "run").exists()


def test_step_records_of_version_1_read_and_a_newer_version_is_refused(tmp_path: Path) -> None:
    from qep_analog.calibration.runner import read_step_records
    from qep_analog.calibration.versions import NewerSchemaError

    old = {k: v for k, v in record("rabi_scale", 1.0).to_document().items() if k not in ("schema", "step")}
    write_json(tmp_path / "records.json", {"records": [old]}, "qep-calibration-records/1")
    assert read_step_records(tmp_path) == (record("rabi_scale", 1.0),)
    write_json(tmp_path / "records.json", {"records": []}, "qep-calibration-records/3")
    with pytest.raises(NewerSchemaError, match=r"records.json: written by a newer .*records/3\)"):
        read_step_records(tmp_path)
