"""``qep-analog device``: list, show, validate and map, with one-line errors and exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import run_cli

from qep_analog.cli import EXIT_BAD_INPUT
from qep_analog.library import builtin_directory

DEVICES_DIR = builtin_directory("devices")

ROOT = Path(__file__).resolve().parents[2]


def test_list_names_the_shipped_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, ["device", "list", "--json"])
    assert status == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert {"fresnel-like", "aquila-like", "yb171-chain", "ca40-chain"} <= set(rows)
    assert rows["yb171-chain"]["platform"] == "ion"


def test_list_skips_a_bad_file_on_the_search_path_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = tmp_path / "lab" / "devices"
    lab.mkdir(parents=True)
    good = (DEVICES_DIR / "aquila-like.yaml").read_text(encoding="utf-8")
    (lab / "ours.yaml").write_text(good.replace("name: aquila-like", "name: ours"), encoding="utf-8")
    (lab / "syntax.yaml").write_text("schema: qep-device/1\nname: [\n", encoding="utf-8")
    (lab / "fresnel-like.yaml").write_text("schema: qep-device/1\nname: fresnel-like\n", encoding="utf-8")
    (lab / "folder.yaml").mkdir()
    (lab / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    monkeypatch.setenv("QEP_ANALOG_PATH", str(tmp_path / "lab"))
    for json_flag in ([], ["--json"]):
        status, out, err = run_cli(capsys, ["device", "list", *json_flag])
        assert status == 0
        listed = (
            [row["name"] for row in json.loads(out)]
            if json_flag
            else [x.split()[0] for x in out.splitlines()]
        )
        assert sorted(listed) == ["aquila-like", "ca40-chain", "ours", "yb171-chain"]
        warnings = err.splitlines()
        assert len(warnings) == 4 and all(
            w.startswith("qep-analog: warning: device list: skipped ") for w in warnings
        )
        for name, reason in [
            ("syntax", "invalid YAML at line 3"),
            ("fresnel-like", "missing key platform; it hides the built-in profile of that name"),
            ("folder", "is a directory, not a file"),
            ("binary", "cannot be read (UnicodeDecodeError)"),
        ]:
            assert any(f"skipped {lab / name}.yaml: {reason}" in w for w in warnings), (name, err)
    for name in ("syntax", "fresnel-like"):  # shown by name, the bad profile is still an error
        status, out, err = run_cli(capsys, ["device", "show", name])
        assert status == EXIT_BAD_INPUT and out == "" and err.count("\n") == 1
        assert err.startswith(f"qep-analog: error: {lab / name}.yaml: ")


def test_show_prints_internal_units(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, ["device", "show", "fresnel-like"])
    assert status == 0 and "max_rabi: 12.5664 rad/µs (2π·2 MHz)" in out
    assert "markovian_dephasing_time: none (no Markovian dephasing)" in out  # absent: none, not a limit
    for line in ("relaxation_time: none (no T1 decay)", "laser_waist: none (a uniform drive)"):
        assert line in out
    assert "no limit" not in out.split("noise:")[1].split("calibration:")[0]
    status, out, _ = run_cli(capsys, ["device", "show", "fresnel-like", "--relaxed", "--json"])
    document = json.loads(out)
    assert document["variant"] == "relaxed" and document["capabilities"]["max_rabi_rad_per_us"] is None


def test_validate_accepts_and_refuses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run_cli(capsys, ["device", "validate", str(DEVICES_DIR / "aquila-like.yaml")])
    assert status == 0 and "valid rydberg profile 'aquila-like'" in out
    broken = tmp_path / "broken.yaml"
    text = (DEVICES_DIR / "fresnel-like.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("min_spacing_um: 5.0", "min_spacing_um: -5.0"), encoding="utf-8")
    status, out, err = run_cli(capsys, ["device", "validate", str(broken)])
    assert status == EXIT_BAD_INPUT and out == ""
    assert err.count("\n") == 1 and "min_spacing_um = -5.0 breaks the rule min_spacing_um > 0" in err
    status, _, err = run_cli(capsys, ["device", "show", "no-such-device"])
    assert status == EXIT_BAD_INPUT and "not a known name" in err


def test_map_reports_levels(capsys: pytest.CaptureFixture[str]) -> None:
    model = str(ROOT / "examples" / "models" / "rydberg_chain.yaml")
    status, out, _ = run_cli(capsys, ["device", "map", model, "--device", "fresnel-like"])
    assert status == 0 and "trainable.J      register   atom positions" in out
    status, out, _ = run_cli(capsys, ["device", "map", model, "--device", "yb171-chain", "--json"])
    report = json.loads(out)
    assert status == 0 and not report["fully_realisable"]
    assert any(d.startswith("trainable.h: X") for d in report["dropped"])
    cluster = str(ROOT / "examples" / "models" / "cluster_ising_open.yaml")
    status, out, _ = run_cli(
        capsys, ["device", "map", cluster, "--device", "aquila-like", "--basis", "as-written"]
    )
    assert status == 0 and "outputs.m: X0 X4" in out
