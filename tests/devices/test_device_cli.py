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


def test_show_prints_internal_units(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, ["device", "show", "fresnel-like"])
    assert status == 0 and "max_rabi: 12.5664 rad/µs (2π·2 MHz)" in out
    assert "markovian_dephasing_time: none (no Markovian dephasing)" in out  # absent: none, not a limit
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
