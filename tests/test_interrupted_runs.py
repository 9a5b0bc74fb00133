"""kill -9 of ``calibrate`` and ``explore`` at moments defined by what the run has written, then a
resume or a rerun (issue 16): the history keeps what it held plus at most the finished steps'
records, no process of the killed run survives, and the final files equal an uninterrupted run's.

Each command runs in a subprocess of this checkout in its own session. The test waits until the run
has written a given file (or a given number of history records, chosen by a seeded generator) and
then sends SIGKILL to the command's process, as ``kill -9 PID`` would. Where the kill lands after
that moment depends on the machine's load; every assertion holds wherever it lands (a run that
finished before the signal resumes as a no-op, an exploration that wrote its result is refused a
rerun without --overwrite).

Bitwise equality: both runs do the same arithmetic in the same order in one single-threaded
process (OPENBLAS_NUM_THREADS=1), and a resumed calibration restores the fake lab's generator state
stored after each step, so data, fits, records and explorations agree to the last bit; only run
ids, timestamps and wall-clock seconds differ, and they are left out of the comparisons.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import qep_analog
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.records import CalibrationRecord

ROOT = Path(qep_analog.__file__).resolve().parent.parent
CALIBRATE = ["calibrate", "rydberg-basic", "--device", "fresnel-like", "--backend", "fake-lab"]
CALIBRATE += ["--seed", "7"]
DEVICE = "fresnel-like"
#: the moments of the kill; the generator chooses the step and the number of records
MOMENTS = random.Random(16)
#: records the four steps of rydberg-basic append on 4 sites (readout 10, detuning 5, Ramsey 10, Rabi 5)
RECORDS = 30
EXPLORE = """\
schema: qep-explore/1
name: killed
task: phase_exploration
starts: [[-0.1, 0.4], [0.2, 0.9]]
iterations: 8
diagram: {points: [9, 7]}
"""


def environment(history: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QEP_ANALOG_HISTORY": str(history),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }


def run_cli(argv: list[str], cwd: Path, history: Path) -> subprocess.CompletedProcess[str]:
    """``qep-analog ARGV`` to its end (at most two minutes)."""
    return subprocess.run(
        [sys.executable, "-m", "qep_analog.cli", *argv],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd, env=environment(history),
    )  # fmt: skip


def kill_when(argv: list[str], cwd: Path, history: Path, moment: Callable[[], bool]) -> int:
    """Start ``qep-analog ARGV`` in its own session, SIGKILL its process once ``moment()`` holds
    (or leave it if it ended first), and return its process id (the session's id)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "qep_analog.cli", *argv, "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=environment(history),
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while process.poll() is None and not moment():
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"qep-analog {' '.join(argv)}: the moment never came")
        time.sleep(0.002)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    return process.pid


def survivors(session: int) -> list[int]:
    """The processes of session ``session`` still alive (zombies too)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended while we looked
        if int(fields[3]) == session:
            alive.append(int(entry.name))
    return alive


def assert_no_survivor(session: int) -> None:
    deadline = time.monotonic() + 10  # a worker's watchdog may take a moment to notice
    while survivors(session) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = survivors(session)
    if left:
        os.killpg(session, signal.SIGKILL)
    assert not left, f"processes of the killed run still alive: {left}"


# -- calibrate ------------------------------------------------------------------------------------


def old_record() -> CalibrationRecord:
    """A record the history held before the runs (bad: it does not change the profile in force)."""
    return CalibrationRecord(
        field="rabi_scale", value=0.9, uncertainty=0.1, unit="", run_id="earlier", routine="rabi",
        timestamp="2026-01-05T09:00:00+00:00", quality="bad", valid=True, device=DEVICE,
        profile_version=1, runcard="rydberg-basic",
    )  # fmt: skip


def history_at(folder: Path) -> CalibrationHistory:
    history = CalibrationHistory(folder, DEVICE)
    if not history.path.exists():
        history.append([old_record()])
    return history


def comparable(records: tuple[CalibrationRecord, ...]) -> list[dict[str, Any]]:
    """Records without what differs between two runs of one runcard (run id, time; the run's own id
    in the records they used)."""
    out = []
    for r in records:
        document = {k: v for k, v in r.to_document().items() if k not in ("run_id", "timestamp")}
        document["uses"] = [u.replace(r.run_id, "RUN") for u in document.get("uses", [])]
        out.append(document)
    return out


def step_files(out: Path) -> dict[str, bytes]:
    """The steps' data and fits, byte for byte, but for the run's own id (the records a step used
    are named by it: ``uses``)."""
    run_id = json.loads((out / "run.json").read_text(encoding="utf-8"))["run_id"].encode()
    return {
        str(path.relative_to(out)): path.read_bytes().replace(run_id, b"RUN")
        for path in sorted(out.glob("*/*.json"))
        if path.name in ("data.json", "result.json")
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The run folder and the history records of one uninterrupted calibration."""
    root = tmp_path_factory.mktemp("uninterrupted")
    history = history_at(root / "history")
    completed = run_cli([*CALIBRATE, "--out", str(root / "run"), "--quiet"], root, history.path.parent)
    assert completed.returncode == 0, completed.stderr
    read = history.read()
    assert read.torn == () and len(read.records) == 1 + RECORDS
    return root / "run", comparable(read.records)


def _history_holds(history: CalibrationHistory, count: int) -> Callable[[], bool]:
    return lambda: history.path.stat().st_size > 0 and len(history.read().records) >= count


CALIBRATE_MOMENTS = [  # the first in the default suite, the others in the slow one
    ("data.json", MOMENTS.randint(2, 4)),  # a step's data are saved, its fit not yet
    pytest.param("run.json", 0, marks=pytest.mark.slow),  # the first data are on disk
    pytest.param("records", MOMENTS.randint(1, RECORDS - 1), marks=pytest.mark.slow),  # some records
]


@pytest.mark.parametrize(("what", "which"), CALIBRATE_MOMENTS)
def test_a_killed_calibration_resumes_to_the_uninterrupted_run(
    what: str, which: int, tmp_path: Path, uninterrupted: tuple[Path, list[dict[str, Any]]]
) -> None:
    reference, reference_records = uninterrupted
    history = history_at(tmp_path / "history")
    out = tmp_path / "run"
    moments: dict[str, Callable[[], bool]] = {
        "run.json": lambda: (out / "run.json").exists(),
        "data.json": lambda: any(out.glob(f"{which:02d}-*/data.json")),
        "records": _history_holds(history, 1 + which),
    }
    argv = [*CALIBRATE, "--out", str(out)]
    session = kill_when(argv, tmp_path, history.path.parent, moments[what])
    assert_no_survivor(session)

    # the history holds what it held, then whole steps of the run in their order: nothing else
    read = history.read()
    assert read.torn in ((), (len(read.records) + 2,))  # at most a last line cut by the kill
    assert comparable(read.records) == reference_records[: len(read.records)]

    report = run_cli(["calibrate", "report", str(out), "--no-plot"], tmp_path, history.path.parent)
    assert report.returncode == 0 and "Traceback" not in report.stderr
    state = json.loads((out / "run.json").read_text())["status"]
    first = report.stdout.splitlines()[0]
    assert first.endswith(": complete") if state == "complete" else "incomplete" in first

    resumed = run_cli([*argv, "--resume", "--quiet"], tmp_path, history.path.parent)
    assert resumed.returncode == 0, resumed.stderr
    assert step_files(out) == step_files(reference)  # bitwise: data, fits
    final = history.read()
    assert final.torn == read.torn and comparable(final.records) == reference_records
    report = run_cli(["calibrate", "report", str(out), "--no-plot"], tmp_path, history.path.parent)
    assert report.stdout.splitlines()[0].endswith(": complete")


# -- explore --------------------------------------------------------------------------------------


def comparable_result(folder: Path) -> dict[str, Any]:
    result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    result.pop("seconds")  # wall-clock time
    return dict(result)


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explored")
    (root / "explore.yaml").write_text(EXPLORE, encoding="utf-8")
    completed = run_cli(["explore", "explore.yaml", "--output", "run", "--quiet"], root, root / "h")
    assert completed.returncode == 0, completed.stderr
    return root / "run"


@pytest.mark.parametrize(
    "moment",
    ["metrics.jsonl", pytest.param(".lock", marks=pytest.mark.slow),
     pytest.param("phase_diagram.png", marks=pytest.mark.slow)],
)  # fmt: skip
def test_a_killed_exploration_reruns_to_the_uninterrupted_result(
    moment: str, tmp_path: Path, explored: Path
) -> None:
    (tmp_path / "explore.yaml").write_text(EXPLORE, encoding="utf-8")
    out = tmp_path / "run"
    argv = ["explore", "explore.yaml", "--output", "run"]
    session = kill_when(argv, tmp_path, tmp_path / "h", lambda: (out / moment).exists())
    assert_no_survivor(session)
    finished = (out / "result.json").exists()
    if finished:  # the kill came after the exploration wrote its result
        assert comparable_result(out) == comparable_result(explored)
    rerun = run_cli([*argv, "--quiet"], tmp_path, tmp_path / "h")
    if finished:
        assert rerun.returncode == 2 and "already holds a run" in rerun.stderr
        assert len(rerun.stderr.strip().splitlines()) == 1
        rerun = run_cli([*argv, "--quiet", "--overwrite"], tmp_path, tmp_path / "h")
    assert rerun.returncode == 0, rerun.stderr
    assert comparable_result(out) == comparable_result(explored)
    assert (out / "metrics.jsonl").read_bytes() == (explored / "metrics.jsonl").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in explored.iterdir())
