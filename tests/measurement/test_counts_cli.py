"""qep-analog gradient-from-counts: output, JSON, exit statuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qep_analog.cli import main


def test_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_run: Callable[..., tuple[Path, Any]]
) -> None:
    run_dir, _ = make_run(tmp_path)
    assert main(["gradient-from-counts", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "settings; shots per phase" in out and "mitigated" in out
    assert any(line.startswith("a ") for line in out.splitlines())
    assert main(["gradient-from-counts", str(run_dir), "--json", "--compare-exact"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parameters"] == ["a", "b"] and report["mitigated"] is True
    g, se, exact = (np.array(report[k]) for k in ("gradient", "standard_error", "exact"))
    assert np.all(np.abs(g - exact) < 4 * se + 0.01)  # beta = 0.1: bias below 0.01
    assert set(report["outputs"]) == {"m"}
    assert main(["gradient-from-counts", str(run_dir), "--json", "--no-mitigate"]) == 0
    assert json.loads(capsys.readouterr().out)["mitigated"] is False


def test_bad_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_run: Callable[..., tuple[Path, Any]]
) -> None:
    run_dir, _ = make_run(tmp_path, shots=20)
    path = run_dir / "run.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["phases"]["minus"] = document["phases"]["minus"][::-1]
    path.write_text(json.dumps(document), encoding="utf-8")
    assert main(["gradient-from-counts", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "differ from the first phase" in err
    first = next(iter(document["phases"]))  # the message names both phases that disagree
    assert "phases.minus: settings" in err and f"(phases.{first}: " in err
    assert main(["gradient-from-counts", str(tmp_path / "nowhere")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("count", ["count 1180591620717411303424 of", "beyond the limit of 9007199254740992 (2^53)"]),
        ("n_qubits", ["is not 1180591620717411303424 letters"]),
    ],
)
def test_oversized_numbers_in_a_counts_file_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_run: Callable[..., tuple[Path, Any]],
    damage: str, words: list[str],
) -> None:  # fmt: skip
    run_dir, _ = make_run(tmp_path, shots=20)
    path = run_dir / "run.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    if damage == "count":
        counts = document["phases"]["plus"][0]["counts"]
        counts[next(iter(counts))] = 2**70
    else:
        document["model"]["n_qubits"] = 2**70
    path.write_text(json.dumps(document), encoding="utf-8")
    assert main(["gradient-from-counts", str(run_dir), "--compare-exact"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"qep-analog: error: {path}"), err
    for word in words:
        assert word in err, err


def test_committed_example_run(capsys: pytest.CaptureFixture[str]) -> None:
    """examples/counts_example (the README's numbers): a within 4 standard errors of the exact
    gradient; unmitigated, a shrinks by about (1 - eps - eps')^2."""
    run_dir = Path(__file__).resolve().parents[2] / "examples" / "counts_example"
    assert main(["gradient-from-counts", str(run_dir), "--json", "--compare-exact"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gradient"][0] == pytest.approx(-0.451164, abs=1e-6)
    assert abs(report["gradient"][0] - report["exact"][0]) < 4 * report["standard_error"][0]
    assert main(["gradient-from-counts", str(run_dir), "--json", "--no-mitigate"]) == 0
    raw = json.loads(capsys.readouterr().out)["gradient"][0]
    assert raw / report["gradient"][0] == pytest.approx((1 - 0.025 - 0.1) ** 2, abs=0.03)
