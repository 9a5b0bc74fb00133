"""Ramp durations on the command line (``--duration``, the calibrated ``ramp_duration``, recommendations
within the profile's limit) and ``emulate --shots`` → ``gradient-from-counts``."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli

from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.records import CalibrationRecord
from qep_analog.cli import EXIT_BAD_INPUT
from qep_analog.devices.profile import read_profile
from qep_analog.emulation.diagnostics import Adiabaticity, recommended_duration
from qep_analog.sequences.schedule import load_schedules

#: three atoms in a chain: a fixed drive, a uniform and a staggered detuning, the couplings; output: the
#: magnetisation of the left pair
MODEL = """schema: qep-model/1
n_qubits: 3
fixed: [[2.0, "X0"], [2.0, "X1"], [2.0, "X2"]]
trainable:
  delta: [[1.0, "Z0"], [1.0, "Z1"], [1.0, "Z2"]]
  s: [[1.0, "Z0"], [-1.0, "Z1"], [1.0, "Z2"]]
  J: [[1.0, "Z0 Z1"], [1.0, "Z1 Z2"]]
outputs:
  m: [[0.5, "Z0"], [0.5, "Z1"]]
"""
#: a paramagnetic point: gap ≈ 3.7 rad/µs along the ramp, fidelity ≈ 0.9997 at 10 µs
PARAMAGNET = ["--theta", "delta=-1", "s=0.3", "J=0.5", "--beta", "0.2"]
#: the same point's ramp needs about 12 µs: more than the strict profile's 6 µs
SLOW = PARAMAGNET
#: a point with a larger gap: about 3.5 µs suffice
FAST = ["--theta", "delta=-3", "s=0.3", "J=0.5", "--beta", "0.2"]


@pytest.fixture
def model_file(tmp_path: Path) -> str:
    path = tmp_path / "three.yaml"
    path.write_text(MODEL, encoding="utf-8")
    return str(path)


def _build(
    capsys: pytest.CaptureFixture[str], model: str, out: Path, *options: str
) -> tuple[int, str, str]:
    argv = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--model", model]
    return run_cli(capsys, [*argv, *options, "--out", str(out)])


def _emulate(capsys: pytest.CaptureFixture[str], file: Path, *options: str) -> dict:
    status, out, err = run_cli(capsys, ["emulate", str(file), "--json", *options])
    assert status == 0, err
    return json.loads(out)


def _diagnosis(duration: float, required: float) -> Adiabaticity:
    return Adiabaticity(1.0, 0.0, 1.0, 1.0, 0.0, 0.05 * required / duration, required, duration)


def test_recommended_duration_is_on_the_clock_and_within_the_limit() -> None:
    profile = read_profile("fresnel-like")  # clock 4 ns, max_duration 6 µs
    assert recommended_duration(_diagnosis(1.0, 3.5161), profile) == pytest.approx(3.52, abs=1e-12)
    assert recommended_duration(_diagnosis(4.0, 12.1), profile) is None  # beyond 6 µs: none
    assert recommended_duration(_diagnosis(4.0, 6.0), profile) == pytest.approx(6.0, abs=1e-12)
    relaxed = read_profile("fresnel-like", relaxed=True)  # no limit on the duration
    assert recommended_duration(_diagnosis(4.0, 12.1), relaxed) == pytest.approx(12.1, abs=1e-12)


def test_emulate_recommends_only_what_the_device_allows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_file: str
) -> None:
    slow, fast = tmp_path / "slow.json", tmp_path / "fast.json"
    assert _build(capsys, model_file, slow, *SLOW, "--duration", "1")[0] == 0
    assert _build(capsys, model_file, fast, *FAST, "--duration", "1")[0] == 0
    for row in _emulate(capsys, slow)["schedules"]:
        d = row["diagnostics"]
        assert (
            d["required_duration"] > 6.0 and d["recommended_duration"] is None and d["max_duration"] == 6.0
        )
    for row in _emulate(capsys, fast)["schedules"]:
        d = row["diagnostics"]
        assert 1.0 < d["recommended_duration"] <= 6.0 and not d["slow_enough"]
        ticks = d["recommended_duration"] / 0.004
        assert (
            abs(ticks - round(ticks)) < 1e-6 and d["recommended_duration"] - d["required_duration"] < 0.004
        )
    status, out, _ = run_cli(capsys, ["emulate", str(slow), "--quiet"])
    assert status == 0 and out.count("no duration the device allows is slow enough") == 3
    assert "the limit is 6 µs" in out and "recommended" not in out  # nothing beyond the limit


def test_duration_option_is_checked_against_the_profile(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_file: str
) -> None:
    out = tmp_path / "s.json"
    status, stdout, _ = _build(capsys, model_file, out, *FAST, "--duration", "2.5")
    assert status == 0 and "duration 2.5 µs (--duration)" in stdout
    assert {s.duration for s in load_schedules(out)} == {2.5}
    status, _, err = _build(capsys, model_file, tmp_path / "long.json", *FAST, "--duration", "8")
    assert status == EXIT_BAD_INPUT and err.count("\n") == 1
    assert "--duration" in err and "duration 8 µs exceeds the limit 6 µs" in err
    assert not (tmp_path / "long.json").exists()
    status, _, err = run_cli(capsys, ["emulate", str(out), "--duration", "7", "--quiet"])
    assert status == EXIT_BAD_INPUT and "duration 7 µs exceeds the limit 6 µs" in err
    report = _emulate(capsys, out, "--duration", "4")  # the file's ramp, stretched_recipe
    assert report["duration_us"] == 4.0 and report["duration_source"] == "--duration"
    assert {row["diagnostics"]["duration"] for row in report["schedules"]} == {4.0}


def _ramp_record(value: float) -> CalibrationRecord:
    return CalibrationRecord(
        field="ramp_duration", value=value, uncertainty=0.1, unit="µs",
        timestamp=dt.datetime.now(dt.UTC).isoformat(), run_id="ramp-run", routine="ramp_duration_scan",
        quality="good", valid=True, device="fresnel-like", profile_version=1, runcard="rydberg-ramp",
    )  # fmt: skip


def test_the_calibrated_ramp_duration_is_used_and_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_file: str
) -> None:
    plain = tmp_path / "plain.json"
    status, stdout, _ = _build(capsys, model_file, plain, *FAST)
    assert status == 0 and "duration 4 µs (recipe 'rydberg-smooth')" in stdout
    history = tmp_path / "history"
    CalibrationHistory(history, "fresnel-like").append([_ramp_record(2.5031)])
    calibrated = tmp_path / "calibrated.json"
    status, stdout, _ = _build(capsys, model_file, calibrated, *FAST, "--history", str(history))
    assert status == 0
    assert "duration 2.504 µs (calibrated ramp_duration, record ramp-run:ramp_duration)" in stdout
    assert [s.duration for s in load_schedules(calibrated)] == [pytest.approx(2.504, abs=1e-12)] * 3
    # emulate: the calibration in force sets the duration of a file built from the recipe's
    report = _emulate(capsys, plain, "--history", str(history))
    assert report["duration_us"] == pytest.approx(2.504, abs=1e-12)
    assert report["duration_source"].startswith("calibrated ramp_duration")
    # a file whose duration was asked for keeps it
    asked = tmp_path / "asked.json"
    assert _build(capsys, model_file, asked, *FAST, "--duration", "3", "--history", str(history))[0] == 0
    report = _emulate(capsys, asked, "--history", str(history))
    assert report["duration_us"] == 3.0 and "built from --duration" in report["duration_source"]
    # a calibrated duration beyond the limit is refused, naming it
    CalibrationHistory(history, "fresnel-like").append([_ramp_record(9.0)])
    status, _, err = _build(capsys, model_file, tmp_path / "x.json", *FAST, "--history", str(history))
    assert status == EXIT_BAD_INPUT and "calibrated ramp_duration" in err and "limit 6 µs" in err


def test_emulated_counts_give_the_exact_gradient_within_error_bars(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_file: str
) -> None:
    """schedules → emulate --shots → gradient-from-counts: the measured gradient agrees with the
    exact linear-response gradient of the realised model within 4 standard errors (40 000 shots per
    phase, β = 0.2; the ramp's fidelity ≈ 0.9997 makes its bias ≈ 0.01, below one error ≈ 0.027)."""
    schedules = tmp_path / "three.json"
    build = [*PARAMAGNET, "--relaxed", "--duration", "10"]
    assert _build(capsys, model_file, schedules, *build)[0] == 0
    report = _emulate(capsys, schedules, "--shots", "40000")
    counts = Path(report["counts_file"])
    assert counts == tmp_path / "three.counts" / "run.json" and counts.is_file()
    status, out, err = run_cli(
        capsys, ["gradient-from-counts", str(counts.parent), "--compare-exact", "--json"]
    )
    assert status == 0, err
    result = json.loads(out)
    assert result["parameters"] == ["delta", "s", "J"] and result["mitigated"] is False
    values, errors, exact = (np.array(result[k]) for k in ("gradient", "standard_error", "exact"))
    assert np.all(errors > 0.01) and np.all(errors < 0.05)
    assert np.all(np.abs(values - exact) < 4 * errors), (values, errors, exact)
    assert math.isclose(exact[0], -0.3069, abs_tol=1e-3)  # the model's, not the emulator's


def test_emulated_counts_with_noise_carry_the_readout_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_file: str
) -> None:
    schedules = tmp_path / "three.json"
    assert _build(capsys, model_file, schedules, *FAST, "--duration", "0.5")[0] == 0
    counts = tmp_path / "noisy"
    status, out, err = run_cli(
        capsys, ["emulate", str(schedules), "--shots", "200", "--noise", "--counts", str(counts), "--quiet"]
    )
    assert status == 0, err
    assert f"counts: {counts / 'run.json'}" in out
    document = json.loads((counts / "run.json").read_text(encoding="utf-8"))
    profile = read_profile("fresnel-like")
    readout = document["readout"]
    assert readout["mitigate"] is True
    assert np.allclose(readout["false_positive"], profile.noise.readout_false_positive)
    assert np.allclose(readout["false_negative"], profile.noise.readout_false_negative)
    assert sum(document["phases"]["plus"][0]["counts"].values()) == 200
    status, _, err = run_cli(capsys, ["emulate", str(schedules), "--counts", str(counts)])
    assert status == EXIT_BAD_INPUT and "--shots" in err
