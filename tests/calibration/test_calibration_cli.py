"""qep-analog calibrate: run a runcard on the fake lab, the history, the report; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qep_analog.cli import main


def test_calibrate_history_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history, out = tmp_path / "history", tmp_path / "run"
    argv = ["calibrate", "rydberg-basic", "--device", "fresnel-like", "--backend", "fake-lab"]
    assert main([*argv, "--out", str(out), "--history", str(history), "--seed", "4"]) == 0
    text = capsys.readouterr().out
    assert "rabi_scale" in text and "bad:" not in text
    assert (out / "01-readout" / "data.json").is_file() and (history / "fresnel-like.jsonl").is_file()

    assert main(["calibrate", "report", str(out)]) == 0
    report = capsys.readouterr().out
    assert "ramsey" in report and "dephasing_time" in report
    assert (out / "report.png").stat().st_size > 10_000

    assert main(["calibrate", "history", "fresnel-like", "--history", str(history), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["torn_lines"] == [] and len(document["records"]) == 30
    assert document["effective"]["rabi_scale"] == pytest.approx(1.06, abs=0.005)
    assert document["effective"]["detuning_offset"] == pytest.approx(0.9425, abs=0.02)


def test_history_shows_timestamps_with_their_time_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qep_analog.calibration.history import CalibrationHistory
    from qep_analog.calibration.records import CalibrationRecord

    record = CalibrationRecord(
        field="rabi_scale", value=1.02, uncertainty=0.001, unit="", run_id="r1", routine="rabi",
        timestamp="2026-11-23T16:00:00.123456+01:00", quality="good", valid=True,
        device="fresnel-like", profile_version=1, runcard="rydberg-basic",
    )  # fmt: skip
    CalibrationHistory(tmp_path, "fresnel-like").append([record])
    assert main(["calibrate", "history", "fresnel-like", "--history", str(tmp_path)]) == 0
    assert "2026-11-23T16:00:00+01:00 r1" in capsys.readouterr().out


def test_history_names_damaged_and_torn_lines_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qep_analog.calibration.history import CalibrationHistory
    from qep_analog.calibration.records import CalibrationRecord

    def record(value: float) -> CalibrationRecord:
        return CalibrationRecord(
            field="rabi_scale", value=value, uncertainty=0.001, unit="", run_id="r1", routine="rabi",
            timestamp="2026-11-23T16:00:00+00:00", quality="good", valid=True,
            device="fresnel-like", profile_version=1, runcard="rydberg-basic",
        )  # fmt: skip

    history = CalibrationHistory(tmp_path, "fresnel-like")
    history.append([record(1.01), record(1.02), record(1.03)])
    lines = history.path.read_text(encoding="utf-8").splitlines()
    lines[2] = "#" + lines[2][1:]  # line 3 damaged in the middle
    history.path.write_text("\n".join([*lines, lines[3][:20]]), encoding="utf-8")  # line 5 torn
    assert main(["calibrate", "history", "fresnel-like", "--history", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "line 3 is damaged and skipped: not valid JSON" in text
    assert "line 5 is torn" in text and "line 3 is torn" not in text
    assert main(["calibrate", "history", "fresnel-like", "--history", str(tmp_path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [r["value"] for r in document["records"]] == [1.01, 1.03]
    assert document["torn_lines"] == [5] and [d["line"] for d in document["damaged_lines"]] == [3]


def test_history_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QEP_ANALOG_HISTORY", str(tmp_path))
    assert main(["calibrate", "history", "fresnel-like"]) == 0
    assert "0 records" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "calibrate",
                "missing.yaml",
                "--device",
                "fresnel-like",
                "--backend",
                "fake-lab",
                "--out",
                "o",
            ],
            "no such file",
        ),
        (["calibrate", "rydberg-basic", "--device", "fresnel-like", "--out", "o"], "--backend is required"),
        (
            [
                "calibrate",
                "rydberg-basic",
                "--device",
                "yb171-chain",
                "--backend",
                "fake-lab",
                "--out",
                "o",
            ],
            "is ion",
        ),
        (["calibrate", "report"], "give the run folder"),
        (["calibrate", "report", "nowhere"], "no such file"),
        (["calibrate", "history", "../x"], "plain name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_existing_run_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "calibrate",
        "rydberg-basic",
        "--device",
        "fresnel-like",
        "--backend",
        "fake-lab",
        "--out",
        str(tmp_path / "run"),
        "--history",
        str(tmp_path / "h"),
    ]
    assert main(argv) == 0
    assert main(argv) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_ion_daily_runcard_on_the_fake_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["calibrate", "ion-daily", "--device", "yb171-chain", "--backend", "fake-lab"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--history", str(tmp_path / "h")]) == 0
    text = capsys.readouterr().out
    # the gradient check before calibrating is off (bad); every step after it is good
    assert text.count("bad:") >= 1 and text.index("bad:") < text.index("readout ")
    summary = text.splitlines()[-3]
    assert summary.startswith("QEP gradient check: before: cosine ") and "(bad); after: cosine " in summary
    assert summary.endswith("(good)")
    for name in ("radial_frequency", "axial_frequency", "stark_crosstalk", "local_gains[3]", "cosine"):
        assert name in text
    assert main(["calibrate", "history", "yb171-chain", "--history", str(tmp_path / "h"), "--json"]) == 0
    effective = json.loads(capsys.readouterr().out)["effective"]
    assert effective["interaction_scale"] == pytest.approx(0.95, abs=0.005)
    assert len(effective["local_gains"]) == 4


BAD_SCAN = """\
schema: qep-runcard/1
name: bad-scan
platform: rydberg
routines:
  - routine: readout
    parameters: {repeats: 2, shots: 100}
  - routine: ramp_duration_scan
    parameters: {start_us: 2.5, points: 6, shots: 100}
"""


@pytest.mark.parametrize(
    ("runcard", "device", "message"),
    [
        ("bad-scan.yaml", "fresnel-like", "scan [2.5, 2] µs with 6 points"),
        ("ion-daily", "ca40-chain", "exceeds the limit 0.628319 rad/µs"),  # its first QEP check
    ],
)
def test_a_runcard_refused_leaves_no_run_folder_and_no_record(
    runcard: str, device: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad-scan.yaml").write_text(BAD_SCAN, encoding="utf-8")
    out, history = tmp_path / "run", tmp_path / "h"
    argv = ["calibrate", str(tmp_path / runcard) if runcard.endswith(".yaml") else runcard]
    argv += ["--device", device, "--backend", "fake-lab", "--out", str(out), "--history", str(history)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists() and not history.exists()


def test_a_run_folder_another_calibration_writes_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qep_analog.storage import folder_lock

    out = tmp_path / "run"
    argv = ["calibrate", "rydberg-basic", "--device", "fresnel-like", "--backend", "fake-lab"]
    with folder_lock(out):  # as another calibration writing into it holds it
        assert main([*argv, "--out", str(out), "--history", str(tmp_path / "h"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"calibration run folder {out}: another process is writing it" in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "h").exists()


def test_a_stopped_run_reports_incomplete_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from qep_analog import CalibrationError as Failure
    from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab

    def lost(*arguments: object) -> None:
        raise Failure("the laser lost its lock")

    out = tmp_path / "run"
    argv = ["calibrate", "rydberg-basic", "--device", "fresnel-like", "--backend", "fake-lab", "--quiet"]
    argv += ["--out", str(out), "--history", str(tmp_path / "h")]
    monkeypatch.setattr(FakeRydbergLab, "ramsey", lost)  # the third step's experiment
    assert main(argv) == 2
    assert "the laser lost its lock" in capsys.readouterr().err
    assert main(["calibrate", "report", str(out), "--no-plot"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(
        ": incomplete: 2 of 4 steps done; stopped by CalibrationError: the laser lost its lock; "
        "--resume continues it"
    )
    assert main(argv) == 2
    assert "already holds a run (run.json); pass --resume" in capsys.readouterr().err
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0
    capsys.readouterr()
    assert main(["calibrate", "report", str(out), "--no-plot", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["state"] == "complete" and len(report["results"]) == 4
    assert main(["calibrate", "history", "fresnel-like", "--history", str(tmp_path / "h"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["records"]) == 30  # each step's records once


def test_report_of_a_run_stopped_in_its_first_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from qep_analog.calibration.registry import routine_named

    def crash(data: object) -> None:
        raise RuntimeError("fit crashed")

    monkeypatch.setattr(routine_named("readout"), "fit", crash)
    out = tmp_path / "run"
    argv = ["calibrate", "rydberg-basic", "--device", "fresnel-like", "--backend", "fake-lab", "--quiet"]
    with pytest.raises(RuntimeError, match="fit crashed"):
        main([*argv, "--out", str(out), "--history", str(tmp_path / "h")])
    assert main(["calibrate", "report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "incomplete: 0 of 4 steps done; stopped by RuntimeError: fit crashed" in text.splitlines()[0]
    assert not (out / "report.png").exists()


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of rydberg-basic on the fake lab (copy it before damaging it)."""
    folder = tmp_path_factory.mktemp("calibrated")
    argv = ["calibrate", "rydberg-basic", "--device", "fresnel-like", "--backend", "fake-lab", "--quiet"]
    assert main([*argv, "--out", str(folder / "run"), "--history", str(folder / "history")]) == 0
    return folder / "run"


def _damaged(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``document`` with the value at ``path`` (keys and indices split by '/') replaced, or deleted
    when ``value`` is ``DELETE``."""
    *parents, last = [int(k) if k.isdigit() else k for k in path.split("/")]
    inner: Any = document
    for key in parents:
        inner = inner[key]
    if value is DELETE:
        del inner[last]
    else:
        inner[last] = value
    return document


DELETE = object()


@pytest.mark.parametrize(
    ("file", "path", "value", "words"),
    [
        ("run.json", "steps", DELETE, ["missing key steps"]),
        ("run.json", "steps", 5, ["steps = 5 is not a list"]),
        ("run.json", "steps/0", 1, ["steps[0]: expected a mapping"]),
        ("run.json", "run_id", ["a"], ["run_id"]),
        ("run.json", "steps/1/units/sweep", "furlong", ["steps[1].units.sweep: unit 'furlong'"]),
        ("run.json", "steps/1/units/detuning_offset", "us", ["units.detuning_offset: unit 'us'"]),
        ("02-detuning_spectroscopy/result.json", "estimates", None, ["estimates = None"]),
        ("02-detuning_spectroscopy/result.json", "estimates/0/value", "x", ["estimates[0].value"]),
        ("02-detuning_spectroscopy/result.json", "estimates/0/site", DELETE, ["missing key"]),
        ("02-detuning_spectroscopy/result.json", "reduced_chi2", "x", ["reduced_chi2 = 'x'"]),
        ("02-detuning_spectroscopy/result.json", "curves", None, ["curves = None"]),
        ("02-detuning_spectroscopy/result.json", "routine", "rabi", ["result of routine 'rabi'"]),
        ("02-detuning_spectroscopy/data.json", "sweep_unit", "x", ["sweep unit 'x'"]),
        ("02-detuning_spectroscopy/data.json", "context", {}, ["the data lack 'duration'"]),
    ],
)
def test_a_damaged_run_folder_is_one_line_in_report(
    calibrated_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, path: str,
    value: Any, words: list[str],
) -> None:  # fmt: skip
    import shutil

    run = tmp_path / "run"
    shutil.copytree(calibrated_run, run)
    target = run / file
    document = json.loads(target.read_text(encoding="utf-8"))
    target.write_text(json.dumps(_damaged(document, path, value)), encoding="utf-8")
    status = main(["calibrate", "report", str(run)])
    out, err = capsys.readouterr()
    assert status == 2 and out == "", err
    assert err.count("\n") == 1 and err.startswith(f"qep-analog: error: {target}"), err
    for word in words:
        assert word in err


def test_a_run_stopped_before_its_first_step_reports_without_a_traceback(
    calibrated_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(calibrated_run, run)
    document = json.loads((run / "run.json").read_text(encoding="utf-8"))
    (run / "run.json").write_text(json.dumps({**document, "steps": []}), encoding="utf-8")
    assert main(["calibrate", "report", str(run)]) == 0
    assert not (run / "report.png").exists() and capsys.readouterr().err == ""  # nothing to draw


def test_history_prints_effective_values_in_the_profiles_units(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ca40-chain writes ``axial_frequency_MHz`` and ``dephasing_time_ms``: the effective values are
    printed in those units (f = ω/2π for frequencies), a dimensionless one without a unit."""
    import math

    from qep_analog.calibration.history import CalibrationHistory
    from qep_analog.calibration.records import CalibrationRecord

    def made(field: str, value: float, unit: str) -> CalibrationRecord:
        return CalibrationRecord(
            field=field, value=value, uncertainty=value * 1e-3, unit=unit, run_id="r1", step=1,
            routine="x", timestamp="2026-11-23T16:00:00+00:00", quality="good", valid=True,
            device="ca40-chain", profile_version=1, runcard="ion-daily",
        )  # fmt: skip

    records = [
        made("axial_frequency", 2 * math.pi * 0.2125, "rad/µs"),  # 0.2125 MHz
        made("dephasing_time", 2500.0, "µs"),  # 2.5 ms
        made("rabi_scale", 0.98, ""),
    ]
    CalibrationHistory(tmp_path, "ca40-chain").append(records)
    assert main(["calibrate", "history", "ca40-chain", "--history", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "effective axial_frequency = 0.2125 MHz" in lines
    assert "effective dephasing_time = 2.5 ms" in lines
    assert "effective rabi_scale = 0.98" in lines
    assert main(["calibrate", "history", "ca40-chain", "--history", str(tmp_path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["effective"]["dephasing_time"] == 2500.0  # JSON keeps internal units
    assert document["effective_units"]["dephasing_time"] == "µs"
    assert document["records"][0]["record_id"] == "r1#1:axial_frequency"


#: two steps whose shots follow from the runcard alone: 41 × 200 and 31 × 200
TWO_STEPS = """\
schema: qep-runcard/1
name: two-steps
platform: rydberg
routines:
  - routine: ramsey
    parameters: {detuning_MHz: 1.0, start_us: 0.0, stop_us: 4.0, points: 41, shots: 200}
  - routine: rabi
    parameters: {rabi_MHz: 1.0, start_us: 0.0, stop_us: 2.5, points: 31, shots: 200, rescan: false}
"""


def test_run_and_report_print_each_steps_shots_and_device_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ramsey 41 × 200 = 8200 shots, Rabi 31 × 200 = 6200, at fresnel-like's 300 ms per shot: 41 min,
    31 min and 72 min in all."""
    (tmp_path / "two.yaml").write_text(TWO_STEPS)
    argv = ["calibrate", str(tmp_path / "two.yaml"), "--device", "fresnel-like", "--backend", "fake-lab"]
    out = tmp_path / "run"
    # the plan, before anything runs (these two routines take exactly their planned shots)
    assert main([*argv, "--plan"]) == 0
    plan = capsys.readouterr().out.splitlines()
    assert plan[1:] == [
        "   1. ramsey                 8200 shots, device time 41 min",
        "   2. rabi                   6200 shots, device time 31 min",
        "all steps: 14400 shots, device time 72 min",
    ]
    assert not out.exists()
    assert main([*argv, "--out", str(out), "--history", str(tmp_path / "h"), "--quiet"]) == 0
    expected = [
        "    8200 shots, device time 41 min",
        "    6200 shots, device time 31 min",
    ]
    total = "all steps: 14400 shots, device time 72 min"
    for text in (capsys.readouterr().out, None):
        if text is None:
            assert main(["calibrate", "report", str(out), "--no-plot"]) == 0
            text = capsys.readouterr().out
        lines = text.splitlines()
        assert [line for line in lines if line.startswith("    ") and "shots" in line] == expected
        assert any(line.startswith(total) for line in lines)
    # the report names each step's records (ids with their step) and the records it used
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert f"  02-rabi: {run_id}#2: rabi_scale, rabi_scale@0-3; used {run_id}#1: " in text
    assert main(["calibrate", "report", str(out), "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert [(s["shots"], s["device_time_s"]) for s in steps] == [
        (8200, pytest.approx(2460.0)),
        (6200, pytest.approx(1860.0)),
    ]
    assert f"{run_id}#1:detuning_offset" in steps[1]["uses"]


#: one Ramsey step written in kHz on fresnel-like, whose file writes its offsets in MHz
RAMSEY_KHZ = """\
schema: qep-runcard/1
name: ramsey-khz
platform: rydberg
routines:
  - routine: ramsey
    parameters: {detuning_kHz: 1000.0, start_us: 0.0, stop_us: 4.0, points: 41, shots: 200}
"""


def _summary_row(text: str, field: str) -> tuple[float, float, str]:
    """(value, error, unit) of the summary's row of ``field``."""
    tokens = next(line.split() for line in text.splitlines() if field in line.split())
    at = tokens.index(field)
    return float(tokens[at + 1]), float(tokens[at + 2]), tokens[at + 3]


def _history_row(text: str, record_id: str) -> tuple[float, float, str]:
    """(value, error, unit) of the history's row of the record ``record_id``."""
    tokens = next(line.split() for line in text.splitlines() if record_id in line.split())
    at = tokens.index(record_id) + 2  # after the id and the routine
    return float(tokens[at]), float(tokens[at + 1]), tokens[at + 2]


def test_a_field_is_shown_in_its_profiles_unit_in_every_view(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The step writes kHz, fresnel-like its offsets in MHz: the summary, the report and the history
    (its record rows and the value in force) all show the offset in MHz, as f = ω/2π of the stored
    rad/µs; the fake device hides +2π·0.15 MHz."""
    import math

    (tmp_path / "card.yaml").write_text(RAMSEY_KHZ)
    history, out = tmp_path / "h", tmp_path / "run"
    argv = ["calibrate", str(tmp_path / "card.yaml"), "--device", "fresnel-like", "--backend", "fake-lab"]
    assert main([*argv, "--out", str(out), "--history", str(history), "--quiet"]) == 0
    summary = _summary_row(capsys.readouterr().out, "detuning_offset")
    stored = next(
        r for r in json.loads((out / "01-ramsey" / "records.json").read_text())["records"]
        if r["field"] == "detuning_offset" and r["site"] is None
    )  # fmt: skip
    assert stored["unit"] == "rad/µs"  # records keep internal units
    per_mhz = 2 * math.pi
    assert summary[2] == "MHz"
    assert summary[0] == pytest.approx(stored["value"] / per_mhz, rel=1e-5)
    assert summary[1] == pytest.approx(stored["uncertainty"] / per_mhz, rel=1e-5)
    assert summary[0] == pytest.approx(0.15, abs=0.005)

    assert main(["calibrate", "report", str(out), "--no-plot"]) == 0
    assert _summary_row(capsys.readouterr().out, "detuning_offset") == summary

    history_argv = ["calibrate", "history", "fresnel-like", "--history", str(history)]
    assert main([*history_argv, "--field", "detuning_offset"]) == 0
    text = capsys.readouterr().out
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    value, error, unit = _history_row(text, f"{run_id}#1:detuning_offset")
    assert unit == "MHz" and value == pytest.approx(summary[0], rel=1e-5)
    assert error == pytest.approx(summary[1], rel=1e-2)  # the history prints 3 digits of the error
    assert f"effective detuning_offset = {summary[0]:.6g} MHz" in text.splitlines()


def test_history_shows_per_site_offsets_in_the_profiles_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per-site offsets of fresnel-like (its file writes ``detuning_offset_MHz``): each record row and
    the values in force in MHz (f = ω/2π), as the QEP Hamiltonian step of rydberg-daily shows them
    although its parameters are written in rad/µs."""
    import math

    from good_records import good_record

    from qep_analog import load_runcard, read_profile
    from qep_analog.calibration.history import CalibrationHistory
    from qep_analog.calibration.lab_units import profile_keys, step_units

    offsets = (0.1, -0.2)  # rad/µs
    records = [
        good_record("site_detuning_offsets", v, 0.03, "fresnel-like", site=i) for i, v in enumerate(offsets)
    ]
    CalibrationHistory(tmp_path, "fresnel-like").append(records)
    assert main(["calibrate", "history", "fresnel-like", "--history", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    for site, offset in enumerate(offsets):
        value, error, unit = _history_row(text, f"r1:site_detuning_offsets@{site}")
        assert unit == "MHz"
        assert value == pytest.approx(offset / (2 * math.pi), rel=1e-5)
        assert error == pytest.approx(0.03 / (2 * math.pi), rel=1e-2)
    shown = ", ".join(f"{v / (2 * math.pi):.6g}" for v in offsets)
    assert f"effective site_detuning_offsets = {shown} MHz" in text.splitlines()
    # its plot likewise
    from qep_analog.calibration.drift import history_series
    from qep_analog.calibration.drift_plot import history_figure

    figure = history_figure(history_series(records), [], units={"site_detuning_offsets": "MHz"})
    axes = figure.axes[0]
    assert axes.get_ylabel() == "site_detuning_offsets/2π (MHz)"
    drawn = sorted(float(bars.lines[0].get_ydata()[0]) for bars in axes.containers)  # one per site
    assert drawn == pytest.approx(sorted(v / (2 * math.pi) for v in offsets), rel=1e-12)

    # the run summary and the report show the step's records in the units run.json stores for it
    step = next(s for s in load_runcard("rydberg-daily").steps if s.routine == "qep_hamiltonian")
    assert any(key.endswith("_rad_per_us") for key in step.keys)
    keys = profile_keys(read_profile("fresnel-like"))
    units = step_units(step.keys, [], keys, "", ["site_detuning_offsets"])
    assert units == {"site_detuning_offsets": "MHz"}


def test_history_and_run_summary_count_records_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A history holding an earlier run's two detuning offsets, then a Ramsey run: every record of both
    runs is counted, and in force are the run's device-wide offset and T2* only (the earlier offsets
    superseded, per-site records of device-wide fields never in force)."""
    from good_records import good_record

    from qep_analog.calibration.history import CalibrationHistory

    history, out = tmp_path / "h", tmp_path / "run"
    earlier = [good_record("detuning_offset", v, 0.01, "fresnel-like", run="r0") for v in (0.5, 0.6)]
    CalibrationHistory(history, "fresnel-like").append(earlier)
    (tmp_path / "card.yaml").write_text(RAMSEY_KHZ)
    argv = ["calibrate", str(tmp_path / "card.yaml"), "--device", "fresnel-like", "--backend", "fake-lab"]
    assert main([*argv, "--out", str(out), "--history", str(history), "--quiet"]) == 0
    summary = capsys.readouterr().out.splitlines()
    documents = [json.loads(line) for line in (history / "fresnel-like.jsonl").read_text().splitlines()]
    lines = [d for d in documents if d["schema"].startswith("qep-calibration-record/")]  # not the head
    made = json.loads((out / "01-ramsey" / "records.json").read_text())["records"]
    after = json.loads((out / "run.json").read_text())["profile_after"]["calibration_records"]
    assert len(lines) == len(made) + 2 and len(after) == 2
    counted = f"{len(lines)} records over 2 runs, 2 in force (the last good record of each field and site)"
    assert any(line.endswith(f"; history: {counted}") for line in summary)
    assert main(["calibrate", "history", "fresnel-like", "--history", str(history)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{history / 'fresnel-like.jsonl'}: {counted}"

    # a dry run counts its records with the history's, as if applied; the history stays as it was
    (tmp_path / "dry.yaml").write_text(RAMSEY_KHZ.replace("platform:", "update: dry-run\nplatform:"))
    argv[1] = str(tmp_path / "dry.yaml")
    assert main([*argv, "--out", str(tmp_path / "dry"), "--history", str(history), "--quiet"]) == 0
    dry = capsys.readouterr().out.splitlines()
    total = len(lines) + len(made)  # the dry run makes as many records as the run before it
    assert any(
        line.endswith(
            f"; history and this run's {len(made)} records: {total} records over 3 runs, 2 in force "
            "(the last good record of each field and site)"
        )
        for line in dry
    )
    assert main(["calibrate", "history", "fresnel-like", "--history", str(history)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{history / 'fresnel-like.jsonl'}: {counted}"
