"""The calibration in force reaches every consumer: load_profile resolves the history, --nominal opts
out, stale fields warn, and sequence build, emulate, train, gradient-from-counts and the exploration's
device reports name the profile snapshot and the records they used."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_run import run_cli

import qep_analog
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.in_force import calibration_report
from qep_analog.calibration.records import FIELDS, CalibrationRecord
from qep_analog.cli import main
from qep_analog.tasks.explore_config import device_reports

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "examples" / "models" / "rydberg_chain.yaml")
POINT = ["--theta", "h=4", "delta=3", "s=0.5", "J=1.5", "--beta", "0.1"]
NOW = dt.datetime.now(dt.UTC)  # ages are hours and days: seconds of test time do not matter


def record(
    field: str,
    value: float,
    *,
    device: str = "fresnel-like",
    hours_ago: float = 1.0,
    site: int | None = None,
    quality: str = "good",
    run: str = "run-a",
) -> CalibrationRecord:
    return CalibrationRecord(
        field=field,
        value=value,
        uncertainty=0.01 * abs(value) + 1e-4,
        unit=FIELDS[field].unit,
        timestamp=(NOW - dt.timedelta(hours=hours_ago)).isoformat(),
        run_id=run,
        routine="test",
        quality=quality,  # type: ignore[arg-type]
        valid=True,
        device=device,
        profile_version=1,
        runcard="test",
        site=site,
    )


def test_load_profile_applies_records_far_from_the_defaults(tmp_path: Path) -> None:
    offset = -2 * math.pi * 0.08  # a negative offset and a strong C6: unlike the fake lab's defaults
    CalibrationHistory(tmp_path, "fresnel-like").append(
        [
            record("rabi_scale", 0.81),
            record("rabi_scale", 0.5, quality="bad", run="run-b"),  # a bad fit changes nothing
            record("detuning_offset", offset),
            record("interaction_scale", 1.07),
            record("readout_false_positive", 0.041),
            *[record("site_detuning_offsets", 0.3 * (-1) ** i, site=i) for i in range(3)],
            record("local_gains", 0.9, site=1),  # site 0 unknown: the field is incomplete
        ]
    )
    calibrated = qep_analog.load_profile("fresnel-like", history=tmp_path)
    nominal = qep_analog.load_profile("fresnel-like", history=tmp_path, nominal=True)
    assert calibrated.calibration.rabi_scale == 0.81
    assert calibrated.calibration.detuning_offset == pytest.approx(offset, rel=1e-15)
    assert calibrated.calibration.interaction_scale == 1.07
    assert calibrated.noise.readout_false_positive == 0.041
    assert calibrated.calibration.site_detuning_offsets == (0.3, -0.3, 0.3)
    assert calibrated.calibration.local_gains == ()
    assert nominal.calibration.rabi_scale == 1.0 and nominal.noise.readout_false_positive == 0.025
    assert nominal.calibration_records == ()
    assert set(calibrated.calibration_records) == {
        "run-a:rabi_scale",
        "run-a:detuning_offset",
        "run-a:interaction_scale",
        "run-a:readout_false_positive",
        "run-a:site_detuning_offsets@0",
        "run-a:site_detuning_offsets@1",
        "run-a:site_detuning_offsets@2",
    }
    assert calibrated.snapshot_hash != nominal.snapshot_hash
    assert nominal.snapshot_hash == qep_analog.read_profile("fresnel-like").snapshot_hash
    relaxed = qep_analog.load_profile("fresnel-like", history=tmp_path, relaxed=True)
    assert not relaxed.strict and relaxed.calibration.rabi_scale == 0.81


def test_ion_profile_capabilities_from_records(tmp_path: Path) -> None:
    nominal = qep_analog.read_profile("yb171-chain")
    axial = nominal.ions.axial_frequency * 0.97
    CalibrationHistory(tmp_path, "yb171-chain").append(
        [record("axial_frequency", axial, device="yb171-chain")]
    )
    calibrated = qep_analog.load_profile("yb171-chain", history=tmp_path)
    assert calibrated.ions.axial_frequency == axial
    assert calibrated.calibration_records == ("run-a:axial_frequency",)


def test_stale_fields_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = CalibrationHistory(tmp_path, "fresnel-like")
    history.append(
        [record("rabi_scale", 0.95, hours_ago=72.0), record("interaction_scale", 0.98, hours_ago=2.0)]
    )
    nominal = qep_analog.read_profile("fresnel-like")
    assert nominal.calibration.max_age == pytest.approx(24 * 3.6e9)  # max_age_h: 24 in the profile
    fields = {f.field: f for f in calibration_report(nominal, history.read().records, now=NOW)}
    assert fields["rabi_scale"].stale and not fields["interaction_scale"].stale
    assert fields["rabi_scale"].age == pytest.approx(72 * 3.6e9)
    assert fields["rabi_scale"].record_ids == ("run-a:rabi_scale",)

    status, out, err = run_cli(capsys, ["device", "show", "fresnel-like", "--history", str(tmp_path)])
    assert status == 0
    assert "warning: device 'fresnel-like': calibrated rabi_scale is" in err and "older than" in err
    assert "interaction_scale" not in err
    line = next(x for x in out.splitlines() if x.startswith("  rabi_scale: 0.95 ±"))
    assert "record run-a:rabi_scale, 3 d old  STALE" in line
    status, out, err = run_cli(
        capsys, ["device", "show", "fresnel-like", "--history", str(tmp_path), "--json"]
    )
    document = json.loads(out)
    assert document["calibration"]["rabi_scale"] == 0.95
    assert {f["field"]: f["stale"] for f in document["calibration_in_force"]} == {
        "rabi_scale": True,
        "interaction_scale": False,
    }
    status, out, err = run_cli(
        capsys, ["device", "show", "fresnel-like", "--history", str(tmp_path), "--nominal"]
    )
    assert "rabi_scale: 1.0" in out and "calibration in force: none (--nominal" in out and err == ""


@pytest.fixture(scope="module")
def calibrated_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A history written by the rydberg-basic runcard on the fake lab (mis-calibrated device)."""
    root = tmp_path_factory.mktemp("runcard")
    argv = [
        "calibrate",
        "rydberg-basic",
        "--device",
        "fresnel-like",
        "--backend",
        "fake-lab",
        "--seed",
        "2",
    ]
    assert main([*argv, "--out", str(root / "run"), "--history", str(root / "history")]) == 0
    run = json.loads((root / "run" / "run.json").read_text(encoding="utf-8"))
    assert run["profile_in_force"]["calibration_records"] == []  # an empty history to begin with
    assert len(run["profile_after"]["calibration_records"]) >= 4
    return root / "history"


def test_sequence_build_and_emulate_use_the_calibration(
    calibrated_history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibrated = qep_analog.load_profile("fresnel-like", history=calibrated_history)
    assert calibrated.calibration.rabi_scale != 1.0
    built = {}
    for variant, extra in (("calibrated", []), ("nominal", ["--nominal"])):
        out = tmp_path / f"{variant}.json"
        argv = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--model", MODEL, *POINT]
        status, stdout, _ = run_cli(
            capsys, [*argv, "--out", str(out), "--history", str(calibrated_history), *extra]
        )
        assert status == 0, stdout
        built[variant] = json.loads(out.read_text(encoding="utf-8"))
    device = built["calibrated"]["schedules"][0]["metadata"]["device"]
    assert device["snapshot_hash"] == calibrated.snapshot_hash
    assert device["calibration_records"] == list(calibrated.calibration_records)
    assert built["nominal"]["schedules"][0]["metadata"]["device"]["calibration_records"] == []
    # the programmed Rabi frequency compensates the calibrated scale: Ω_programmed ∝ 1/rabi_scale
    rabi = [
        np.max(built[v]["schedules"][0]["controls"]["rabi"]["values_rad_per_us"])
        for v in ("calibrated", "nominal")
    ]
    assert rabi[0] * calibrated.calibration.rabi_scale == pytest.approx(rabi[1], rel=1e-9)

    history = ["--history", str(calibrated_history)]
    status, stdout, stderr = run_cli(
        capsys, ["emulate", str(tmp_path / "calibrated.json"), "--json", *history]
    )
    assert status == 0 and stderr == ""
    assert json.loads(stdout)["device"]["snapshot_hash"] == calibrated.snapshot_hash
    status, stdout, stderr = run_cli(
        capsys, ["emulate", str(tmp_path / "calibrated.json"), "--json", *history, "--nominal"]
    )
    assert status == 0 and "the schedules were built on profile snapshot" in stderr
    assert json.loads(stdout)["device"]["calibration_records"] == []


def test_train_records_the_profile_it_used(
    calibrated_history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    experiment = yaml.safe_load(
        (ROOT / "examples" / "phase_sensor_bitstrings.yaml").read_text(encoding="utf-8")
    )
    experiment["model"]["n_chain"] = 4
    experiment["training"].update(steps=2, batch_size=2, checkpoint_every=1)
    experiment["evaluation"] = {"test_size": 8, "every": 2}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment), encoding="utf-8")
    calibrated = qep_analog.load_profile("fresnel-like", history=calibrated_history)
    argv = ["train", str(path), "--quiet", "--history", str(calibrated_history), "--output"]
    assert main([*argv, str(tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text(encoding="utf-8"))
    assert result["device"] == calibrated.provenance()
    assert result["config"]["readout_false_positive"] == calibrated.noise.readout_false_positive
    assert calibrated.noise.readout_false_positive != 0.025  # the runcard measured its own value
    assert main([*argv, str(tmp_path / "nominal"), "--nominal"]) == 0
    nominal = json.loads((tmp_path / "nominal" / "result.json").read_text(encoding="utf-8"))
    assert nominal["config"]["readout_false_positive"] == 0.025
    assert nominal["device"]["calibration_records"] == []
    capsys.readouterr()


def test_counts_and_exploration_reports_name_the_profile(
    calibrated_history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibrated = qep_analog.load_profile("fresnel-like", history=calibrated_history)
    run = str(ROOT / "examples" / "counts_example")
    argv = ["gradient-from-counts", run, "--device", "fresnel-like", "--history", str(calibrated_history)]
    status, stdout, _ = run_cli(capsys, [*argv, "--json"])
    assert status == 0
    assert json.loads(stdout)["device"] == calibrated.provenance()
    status, plain, _ = run_cli(capsys, ["gradient-from-counts", run, "--json"])
    values = (json.loads(stdout)["gradient"], json.loads(plain)["gradient"])
    assert values[0] != values[1]  # mitigated with the calibrated readout errors instead of the run's
    reports = device_reports(("fresnel-like",), history=calibrated_history)
    assert reports["fresnel-like"]["profile"] == calibrated.provenance()


def test_a_profile_whose_name_cannot_have_a_history_loads_as_written(tmp_path: Path) -> None:
    text = (qep_analog.library_entries("devices")["aquila-like"].path).read_text(encoding="utf-8")
    path = tmp_path / "bench.yaml"
    path.write_text(text.replace("name: aquila-like", "name: our bench array"), encoding="utf-8")
    profile = qep_analog.load_profile(path, history=tmp_path)
    assert profile.name == "our bench array" and profile.calibration_records == ()
    assert profile.snapshot_hash == qep_analog.read_profile(path).snapshot_hash


def test_emulate_uses_the_profile_file_and_choice_of_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schedule built on a user profile in $QEP_ANALOG_PATH is emulated on that file even when the
    variable is gone; one built --nominal is emulated nominal."""
    text = (qep_analog.library_entries("devices")["fresnel-like"].path).read_text(encoding="utf-8")
    user = tmp_path / "lab" / "devices"
    user.mkdir(parents=True)
    (user / "fresnel-like.yaml").write_text(text.replace("max_rabi_MHz: 2.0", "max_rabi_MHz: 1.9"))
    CalibrationHistory(tmp_path / "h", "fresnel-like").append([record("rabi_scale", 0.93)])
    monkeypatch.setenv("QEP_ANALOG_PATH", str(tmp_path / "lab"))
    argv = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--model", MODEL, *POINT]
    history = ["--history", str(tmp_path / "h")]
    for name, extra in (("calibrated", []), ("nominal", ["--nominal"])):
        assert run_cli(capsys, [*argv, *history, *extra, "--out", str(tmp_path / f"{name}.json")])[0] == 0
    built = {
        name: json.loads((tmp_path / f"{name}.json").read_text())["schedules"][0]["metadata"]["device"]
        for name in ("calibrated", "nominal")
    }
    assert built["calibrated"]["calibration_records"] == ["run-a:rabi_scale"]
    assert built["nominal"]["calibration_records"] == []
    monkeypatch.delenv("QEP_ANALOG_PATH")
    for name in ("calibrated", "nominal"):
        status, out, err = run_cli(capsys, ["emulate", str(tmp_path / f"{name}.json"), "--json", *history])
        assert status == 0 and err == "", err
        assert json.loads(out)["device"] == built[name]


def test_snapshot_hash_is_of_the_acting_values() -> None:
    import dataclasses

    profile = qep_analog.read_profile("fresnel-like")
    same = dataclasses.replace(profile, calibration=dataclasses.replace(profile.calibration, rabi_scale=1))
    assert same == profile and same.snapshot_hash == profile.snapshot_hash  # 1 and 1.0 alike
    hash(profile)  # every per-site value is a tuple
    described = dataclasses.replace(profile, description="another text", source="elsewhere.yaml")
    assert described.snapshot_hash == profile.snapshot_hash
    changed = dataclasses.replace(
        profile, calibration=dataclasses.replace(profile.calibration, rabi_scale=1.001)
    )
    assert changed.snapshot_hash != profile.snapshot_hash
    assert profile.relaxed().snapshot_hash != profile.snapshot_hash  # the limits act


def test_bad_records_and_uncalibrated_sites(tmp_path: Path) -> None:
    history = CalibrationHistory(tmp_path, "yb171-chain")
    history.append([record("local_gains", 1.1 + 0.01 * i, device="yb171-chain", site=i) for i in range(4)])
    # a later run: site 4 bad, site 5 good: sites 0-3 keep their values, 4 ends the field
    history.append(
        [
            record("local_gains", 1.2, device="yb171-chain", site=0, run="run-b"),
            record("local_gains", 0.5, device="yb171-chain", site=4, run="run-b", quality="bad"),
            record("local_gains", 0.9, device="yb171-chain", site=5, run="run-b"),
        ]
    )
    profile = qep_analog.load_profile("yb171-chain", history=tmp_path)
    assert profile.calibration.local_gains == pytest.approx((1.2, 1.11, 1.12, 1.13), rel=1e-15)
    with pytest.warns(UserWarning, match=r"local_gains calibrated on sites 0-3 only \(sites 4-5 take 1\)"):
        gains = profile.local_gains(6)
    np.testing.assert_allclose(gains, [1.2, 1.11, 1.12, 1.13, 1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(profile.local_gains(2), [1.2, 1.11], rtol=1e-15)
    bad = tmp_path / "bad"
    CalibrationHistory(bad, "fresnel-like").append([record("readout_false_positive", 0.7)])
    with pytest.raises(
        qep_analog.CalibrationError, match=r"record run-a:readout_false_positive .* = 0\.7 breaks"
    ):
        qep_analog.load_profile("fresnel-like", history=bad)


def test_damaged_histories_are_one_line_errors_or_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = CalibrationHistory(tmp_path, "fresnel-like")
    history.append([record("rabi_scale", 0.95), record("interaction_scale", 0.98)])
    lines = history.path.read_text().splitlines()
    history.path.write_text("\n".join([lines[0], "xx garbage", *lines[1:]]) + "\n")
    status, _, err = run_cli(capsys, ["device", "show", "fresnel-like", "--history", str(tmp_path)])
    assert status == 0 and "warning: calibration history" in err and "damaged line(s) 2 (" in err
    assert "torn" not in err and err.count("\n") == 1
    afile = tmp_path / "afile"
    afile.write_text("")
    status, _, err = run_cli(capsys, ["device", "show", "fresnel-like", "--history", str(afile)])
    assert status == 2 and "is a file, not a folder" in err and err.count("\n") == 1
    folder = tmp_path / "dir-history"
    (folder / "fresnel-like.jsonl").mkdir(parents=True)
    status, _, err = run_cli(capsys, ["device", "show", "fresnel-like", "--history", str(folder)])
    assert status == 2 and "is a directory, not a file" in err and err.count("\n") == 1


def test_record_times_are_checked_and_future_ones_are_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(qep_analog.CalibrationError, match="timestamp 'yesterday' is not an ISO 8601 time"):
        CalibrationRecord.from_document(
            {**record("rabi_scale", 1.0).to_document(), "timestamp": "yesterday"}
        )
    with pytest.raises(qep_analog.CalibrationError, match="with its time zone"):
        CalibrationRecord.from_document(
            {**record("rabi_scale", 1.0).to_document(), "timestamp": "2026-01-01T00:00:00"}
        )
    CalibrationHistory(tmp_path, "fresnel-like").append([record("rabi_scale", 0.97, hours_ago=-48.0)])
    status, out, err = run_cli(capsys, ["device", "show", "fresnel-like", "--history", str(tmp_path)])
    assert status == 0 and "rabi_scale is dated 2 d in the future" in err
    assert "dated in the future  STALE" in out


def test_dry_run_history_and_name_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    card = yaml.safe_load((ROOT / "calibration" / "rydberg-basic.yaml").read_text(encoding="utf-8"))
    card["update"] = "dry-run"
    card["routines"] = card["routines"][:1]  # the readout routine alone
    (tmp_path / "dry.yaml").write_text(yaml.safe_dump(card), encoding="utf-8")
    history = ["--history", str(tmp_path / "h")]
    argv = ["calibrate", str(tmp_path / "dry.yaml"), "--device", "fresnel-like", "--backend", "fake-lab"]
    status, out, _ = run_cli(capsys, [*argv, "--out", str(tmp_path / "run"), *history])
    assert status == 0 and "profile if applied (dry run: not in force)" in out
    run = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert "profile_after" not in run and run["profile_if_applied"]["calibration_records"]
    assert qep_analog.load_profile("fresnel-like", history=tmp_path / "h").calibration_records == ()

    status, _, err = run_cli(capsys, ["calibrate", "history", "fresnel-lik", *history])
    assert status == 2 and "neither a known profile nor a device with a history" in err

    monkeypatch.chdir(tmp_path)
    text = (ROOT / "devices" / "fresnel-like.yaml").read_text(encoding="utf-8")
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "lab2.yaml").write_text(text, encoding="utf-8")  # copied, not renamed
    (tmp_path / "devices" / "broken.yaml").write_text("schema: qep-device/1\nname: [\n", encoding="utf-8")
    status, _, err = run_cli(capsys, ["device", "show", "lab2"])
    assert status == 2 and "found for the name 'lab2' but names device 'fresnel-like'" in err
    assert qep_analog.read_profile(tmp_path / "devices" / "lab2.yaml").name == "fresnel-like"  # by path
    status, out, err = run_cli(capsys, ["device", "list"])
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert status == 0 and "broken" not in rows and "lab2" not in rows  # skipped, with a warning each
    assert f"skipped {tmp_path / 'devices' / 'broken.yaml'}: invalid YAML" in err
    assert "found for the name 'lab2' but names device 'fresnel-like'" in err and err.count("\n") == 2
    assert "fresnel-like" in rows and "aquila-like" in rows


def test_search_path_entries_and_quoted_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "devices" / "aquila-like.yaml").read_text(encoding="utf-8")
    flat = tmp_path / "flat"
    flat.mkdir()
    quoted = text.replace("schema: qep-device/1", 'schema: "qep-device/1"').replace(
        "name: aquila-like", "name: quoted"
    )
    (flat / "quoted.yaml").write_text(quoted, encoding="utf-8")
    monkeypatch.setenv("QEP_ANALOG_PATH", f"{tmp_path / 'nowhere'}:{flat}")
    status, out, err = run_cli(capsys, ["device", "list"])
    assert status == 0 and "quoted" in out
    assert f"$QEP_ANALOG_PATH: {tmp_path / 'nowhere'} is not a folder; it is skipped" in err


def test_gradient_from_counts_refuses_options_that_do_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    run = str(ROOT / "examples" / "counts_example")
    status, _, err = run_cli(
        capsys, ["gradient-from-counts", run, "--device", "fresnel-like", "--no-mitigate"]
    )
    assert status == 2 and "not with --no-mitigate" in err
    status, _, err = run_cli(capsys, ["gradient-from-counts", run, "--nominal"])
    assert status == 2 and "choose the profile of --device" in err
