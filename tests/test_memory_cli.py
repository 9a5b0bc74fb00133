"""Sizes that would exhaust memory (issue 16, item 9), through the command line.

Each command runs in a subprocess of this checkout with a 3 GiB address-space ceiling: a size beyond
the memory limit (2 GiB by default) ends in one line on stderr with exit 2, within seconds, before
anything is allocated (no ``MemoryError``, no traceback, nothing written); 1e13 emulated shots are
drawn at once and need no memory of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import qep_analog

ROOT = Path(qep_analog.__file__).resolve().parent.parent
#: the ceiling of the subprocess's address space (bytes): above the 2 GiB limit, below the sizes
ADDRESS_SPACE = 3 * 2**30
#: how long a refusal may take (s): reading the file and estimating, nothing computed
QUICK = 10.0


def run_cli(*argv: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """``qep-analog ARGV`` in a subprocess bounded in address space; its result and duration (s)."""

    def limit_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env.pop("QEP_ANALOG_MEMORY_LIMIT", None)
    env["QEP_ANALOG_HISTORY"] = str(cwd / "history")
    began = time.perf_counter()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "qep_analog.cli", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=cwd,
            env=env,
            preexec_fn=limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"qep-analog {' '.join(argv)} did not end within 120 s")
    return completed, time.perf_counter() - began


def assert_refused_quickly(run: tuple[subprocess.CompletedProcess[str], float], *words: str) -> None:
    """Exit 2, one line on stderr naming ``words`` and the limit, no traceback, within :data:`QUICK`."""
    completed, seconds = run
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr and "MemoryError" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr[-2000:]
    line = completed.stderr
    assert "GiB" in line and "memory limit of 2 GiB" in line and "QEP_ANALOG_MEMORY_LIMIT" in line, line
    for word in words:
        assert word in line, line
    assert seconds < QUICK, f"refused after {seconds:.1f} s"


def test_device_map_of_10000_qubits_is_refused(tmp_path: Path) -> None:
    n = 10_000
    chain = "\n".join(f'  - [-1.0, "Z{i} Z{i + 1}"]' for i in range(n - 1))
    model = tmp_path / "big.yaml"
    model.write_text(
        f"schema: qep-model/1\nn_qubits: {n}\nfixed:\n{chain}\n"
        f'trainable:\n  a: [[1.0, "X0"]]\noutputs:\n  m: [[1.0, "Z{n - 1}"]]\n'
    )
    run = run_cli("device", "map", str(model), "--device", "fresnel-like", cwd=tmp_path)
    assert_refused_quickly(run, "10000 qubits", "fresnel-like")


def test_exploration_diagram_of_1e10_points_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "explore_phase.yaml").read_text()
    assert "points: [73, 41]" in text
    config = tmp_path / "huge.yaml"
    config.write_text(text.replace("points: [73, 41]", "points: [100000, 100000]"))
    out = tmp_path / "run"
    run = run_cli("explore", str(config), "--output", str(out), "--quiet", cwd=tmp_path)
    assert_refused_quickly(run, "100000 x 100000 points", "huge.yaml")
    assert not out.exists()


def test_calibration_scan_of_1e8_points_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "calibration" / "rydberg-basic.yaml").read_text()
    assert "points: 41, shots: 400" in text
    runcard = tmp_path / "huge.yaml"
    runcard.write_text(text.replace("points: 41, shots: 400", "points: 100000000, shots: 400"))
    out = tmp_path / "run"
    argv = ["calibrate", str(runcard), "--device", "fresnel-like", "--backend", "fake-lab"]
    run = run_cli(*argv, "--out", str(out), "--quiet", cwd=tmp_path)
    # twice the points: the re-scan a line at the edge may take
    assert_refused_quickly(run, "detuning_spectroscopy", "200000000 x 4")
    assert not out.exists()  # refused before the run folder is made: a rerun is not blocked
    assert not (tmp_path / "history").exists()


MODEL = """schema: qep-model/1
n_qubits: 3
trainable:
  h: [[1.0, "X0"], [1.0, "X1"], [1.0, "X2"]]
  delta: [[1.0, "Z0"], [1.0, "Z1"], [1.0, "Z2"]]
  J: [[1.0, "Z0 Z1"], [1.0, "Z1 Z2"]]
outputs:
  m: [[0.5, "Z0"], [0.5, "Z1"]]
"""


@pytest.fixture
def schedules(tmp_path: Path) -> Path:
    """The free and nudged schedules of a 3-atom chain on the relaxed Fresnel-like array."""
    (tmp_path / "chain.yaml").write_text(MODEL)
    argv = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--relaxed"]
    argv += ["--model", "chain.yaml", "--theta", "h=4", "delta=3", "J=1.5", "--beta", "0.1"]
    completed, _ = run_cli(*argv, "--out", "chain.json", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return tmp_path / "chain.json"


def test_1e13_emulated_shots_are_drawn_at_once(tmp_path: Path, schedules: Path) -> None:
    shots = 10**13
    completed, seconds = run_cli(
        "emulate", str(schedules), "--shots", str(shots), "--counts", "counts", "--quiet", cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
    assert seconds < QUICK + 20, f"took {seconds:.1f} s"  # emulation included
    document = json.loads((tmp_path / "counts" / "run.json").read_text())
    totals = [sum(s["counts"].values()) for phase in document["phases"].values() for s in phase]
    assert totals and all(total == shots for total in totals)
    completed, _ = run_cli("gradient-from-counts", "counts", "--json", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_shots_beyond_2_to_the_53_are_refused(tmp_path: Path, schedules: Path) -> None:
    completed, seconds = run_cli("emulate", str(schedules), "--shots", str(10**20), "--quiet", cwd=tmp_path)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.strip() == (
        f"qep-analog: error: emulator: shots = {10**20} is not in [0, {2**53}]"
    )
    assert seconds < QUICK
