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
    assert main(["gradient-from-counts", str(tmp_path / "nowhere")]) == 2
    assert "no such file" in capsys.readouterr().err
