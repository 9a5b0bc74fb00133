"""``qep-analog train`` killed with SIGKILL at moments the run's state defines, on every executor and
on the exact, counted (fake-lab) and bundle backends, then resumed: after each kill no process of the
run is left, the run folder is readable and unlocked, and every record it holds is the uninterrupted
run's; ``train --resume`` then ends with the uninterrupted run's result.json and metrics.jsonl.

The kill moments are the run's writes (a kill can only leave behind what was written before it) and
the executor's rounds between them: each killed run is held still at its moment by ``train_until.py``
(see there), so that the kill lands there whatever the machine's load. The moments of a run are
drawn from a seeded generator over the run's steps and killed one after the other, each in the run
resumed after the previous kill (or run again, when the kill came before its first checkpoint). An
executor with workers is killed at least once in a round, and there only the ``train`` process is
killed (``kill -9 PID``: the workers, computing, must end by themselves); elsewhere the whole
process group is. The fake lab is killed at least once in the middle of a step (its nudged round
about to run).

Equality is bitwise, and across executors: the runs are single-threaded (``ONE_THREAD``: on one
thread the arithmetic is deterministic), each step's samples are computed whole by one worker from
the same inputs, whatever the split (tests/execution/test_executors.py), and a checkpoint restores
parameters, optimizer and random state exactly (floats through JSON round-trip exactly).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import qep_analog as qa
from qep_analog.cli import main
from qep_analog.qep.trainer import CHECKPOINT_SCHEMA, METRICS_SCHEMA
from qep_analog.storage import LOCK_FILE, read_json

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL, /proc")

ROOT = Path(__file__).resolve().parents[2]
UNTIL = Path(__file__).with_name("train_until.py")
STEPS = 6
EXPERIMENT = f"""\
schema: qep-experiment/1
task: rydberg_sensor
device: aquila-like
model: {{n_chain: 3}}
training: {{steps: {STEPS}, batch_size: 2, shots: null, beta: 0.3, learning_rate: 0.2, seed: 3,
            checkpoint_every: 2}}
evaluation: {{test_size: 4, every: 3}}
"""
CHECKPOINTS = (2, 4, 6)
EVALUATIONS = (3, 6)
#: every thread pool of the runs at one thread: deterministic arithmetic, and lean on a shared machine
ONE_THREAD = {name: "1" for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
#: how long a killed run's processes may take to be gone: the kernel reaping a killed group, or
#: workers noticing that their parent died (a watchdog polling every 0.5 s; Dask's nannies)
GONE_WITHIN_S = 20.0
#: how long a run may take to reach its moment (a bound against a hang, not a timing)
REACH_WITHIN_S = 300.0

#: the configurations killed: train options, the reference run's options (the serial executor's
#: run for every executor), the kinds of moment drawn and how many (one more in the slow test), and
#: moments always killed first or last
CONFIGS: dict[str, dict[str, Any]] = {
    "serial": {
        "options": ["--executor", "serial"],
        "kinds": ("record", "torn", "checkpoint", "evaluation"),
        "count": 1,
        "first": ["evaluation:0"],  # in its first evaluation: such a run could not resume (fixed)
        "last": ["after:result.json:1"],  # the run's result written, its report not yet
    },
    "processes": {
        "options": ["--executor", "processes:2"],
        "reference": ["--executor", "serial"],
        "kinds": ("record", "torn", "checkpoint", "round"),
        "count": 2,
    },
    "dask": {
        "options": ["--executor", "dask-local:2"],
        "reference": ["--executor", "serial"],
        "kinds": ("record", "checkpoint", "round"),
        "count": 1,
    },
    "exact-backend": {
        "options": ["--backend", "exact"],
        "kinds": ("record", "torn", "checkpoint", "evaluation"),
        "count": 1,
        "first": ["before:checkpoint.json:1"],  # its first write cut: nothing to resume, rerun
    },
    "fake-lab": {
        "options": ["--backend", "fake-lab", "--recipe", "rydberg-smooth", "--shots", "100"],
        "kinds": ("record", "torn", "checkpoint", "evaluation", "round"),
        "count": 1,
    },
}
#: the executors with worker processes: in a round only the train process is killed
WORKERS = ("processes", "dask")
#: the configurations killed in a round first (workers computing; a backend between its rounds)
ROUND_FIRST = (*WORKERS, "fake-lab")
#: the order of the moments within one step
WITHIN_STEP = ("round", "evaluation", "torn", "record", "checkpoint")


def moments(name: str, seed: int, more: int = 0) -> list[str]:
    """The kill moments of configuration ``name``: steps and kinds drawn from ``seed`` (a checkpoint
    or an evaluation moves to the next step that has one), in the run's order. A kill leaves the
    checkpoint of a step before its moment's, so the run resumed after it reaches the next moment."""
    config = CONFIGS[name]
    rng = random.Random(f"{seed}-{name}")
    drawn: set[tuple[int, int, str]] = set()
    while len(drawn) < config["count"] + more:
        step = rng.randint(1, STEPS)
        kind = "round" if not drawn and name in ROUND_FIRST else rng.choice(config["kinds"])
        if kind == "checkpoint":
            step = next(s for s in CHECKPOINTS if s >= step)
        elif kind == "evaluation":
            step = next(s for s in EVALUATIONS if s >= step)
        drawn.add((step, WITHIN_STEP.index(kind), kind))
    chosen = [f"{kind}:{step}" for step, _, kind in sorted(drawn)]
    return [*config.get("first", []), *chosen, *config.get("last", [])]


# -- running and killing ---------------------------------------------------------------------------


class Runs:
    """Runs of ``qep-analog train`` on the experiment in ``folder``, each in its own session and
    marked by a token in its environment (which every process it starts inherits)."""

    def __init__(self, folder: Path, experiment: str = EXPERIMENT) -> None:
        self.folder = folder
        self.experiment = folder / "sensor.yaml"
        self.experiment.write_text(experiment, encoding="utf-8")
        self.token = uuid.uuid4().hex

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **ONE_THREAD,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "QEP_ANALOG_HISTORY": str(self.folder / "history"),
            "QEP_KILL_TEST_TOKEN": self.token,
        }

    def argv(self, run_dir: Path, options: list[str]) -> list[str]:
        return ["train", str(self.experiment), "--nominal", "--quiet", "--output", str(run_dir), *options]

    def train(self, run_dir: Path, options: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [sys.executable, "-m", "qep_analog.cli", *self.argv(run_dir, options)],
                capture_output=True, text=True, env=self.env(), cwd=self.folder, timeout=REACH_WITHIN_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail(f"train {' '.join(options)} did not end within {REACH_WITHIN_S} s")

    def kill_at(self, point: str, run_dir: Path, options: list[str], *, group: bool) -> None:
        """Start the run, let it reach ``point``, SIGKILL it (its process group, or only itself), and
        check that every process it started is gone."""
        marker = self.folder / f"held-{uuid.uuid4().hex}"
        process = subprocess.Popen(
            [sys.executable, str(UNTIL), point, str(marker), *self.argv(run_dir, options)],
            stderr=subprocess.PIPE, text=True, env=self.env(), cwd=self.folder, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + REACH_WITHIN_S
            while not marker.exists():
                if process.poll() is not None:
                    stderr = process.stderr.read()[-2000:] if process.stderr else ""
                    pytest.fail(f"{point}: the run ended ({process.returncode}) before it: {stderr}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{point}: not reached within {REACH_WITHIN_S} s")
                time.sleep(0.02)
        finally:
            with contextlib.suppress(ProcessLookupError):  # (a run that ended early: the group gone)
                if group:
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            if process.stderr:
                process.stderr.close()
        assert process.returncode == -signal.SIGKILL, (point, process.returncode)
        left = self.wait_gone(process.pid)
        assert not left, f"{point}: still alive {GONE_WITHIN_S} s after the kill: {left}"

    def wait_gone(self, session: int) -> list[str]:
        """Wait until no live process carries the token or belongs to the killed session; those
        left after ``GONE_WITHIN_S`` (then killed, not to leak them from the test)."""
        deadline = time.monotonic() + GONE_WITHIN_S
        while (left := self.survivors(session)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return [description for _, description in left]

    def survivors(self, session: int) -> list[tuple[int, str]]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                stat = (entry / "stat").read_text()
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone meanwhile, or not ours
                continue
            # the fields after the command's closing parenthesis: state, ppid, pgrp, session
            state, _, _, sid = stat.rpartition(")")[2].split()[:4]
            if state == "Z":  # dead, waiting to be reaped by its (new) parent
                continue
            if int(sid) == session or self.token.encode() in environ:
                found.append((int(entry.name), stat[: stat.index(")") + 1]))
        return found


# -- what a run folder holds -------------------------------------------------------------------


def assert_intact(run_dir: Path, reference: Path, point: str) -> None:
    """After a kill: the folder's lock is free; the checkpoint reads; metrics.jsonl is its header and
    one record per step from 0, each line the uninterrupted run's, up to the checkpoint's step at
    least (only a last line cut by the kill may be partial). A run killed before its checkpoint's
    first write has written nothing else (so that it can be run again without --resume)."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a process still holds it
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    if not (run_dir / "checkpoint.json").exists():  # killed before its first write: rerun it
        assert not {"metrics.jsonl", "result.json"} & {p.name for p in run_dir.iterdir()}, point
        return
    saved = read_json(run_dir / "checkpoint.json", CHECKPOINT_SCHEMA)["step"]
    expected = (reference / "metrics.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        assert point.startswith("torn:"), (point, lines[-1])
        lines.pop()
    assert json.loads(lines[0]) == {"schema": METRICS_SCHEMA}
    assert lines == expected[: len(lines)], point
    assert saved == 0 or len(lines) - 2 >= saved, (point, saved)  # a record for every saved step


def outcome(run_dir: Path) -> tuple[dict[str, Any], str, list[str]]:
    """What a finished run must share with another: result.json but its timing, metrics.jsonl, and
    the names of its files (the lock the only hidden one: no temporary file left)."""
    result = read_json(run_dir / "result.json", "qep-run/1")
    result.pop("seconds_per_step")
    names = sorted(p.name for p in run_dir.iterdir() if p.name != "metrics.jsonl.damaged")
    return result, (run_dir / "metrics.jsonl").read_text(encoding="utf-8"), names


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Uninterrupted runs, one per experiment and options, made once and shared."""
    made: dict[tuple[str, ...], Path] = {}

    def reference(options: list[str], experiment: str = EXPERIMENT) -> Path:
        key = (experiment, *options)
        if key not in made:
            runs = Runs(tmp_path_factory.mktemp("reference"), experiment)
            run_dir = runs.folder / "run"
            finished = runs.train(run_dir, options)
            assert finished.returncode == 0, finished.stderr[-2000:]
            made[key] = run_dir
        return made[key]

    return reference


def resumed(run_dir: Path) -> list[str]:
    """How a killed run goes on: ``--resume`` from its checkpoint, or run again if it has none."""
    return ["--resume"] if (run_dir / "checkpoint.json").exists() else []


def kill_and_resume(name: str, seed: int, tmp_path: Path, references: Any, more: int = 0) -> None:
    config = CONFIGS[name]
    reference = references(config.get("reference", config["options"]))
    runs = Runs(tmp_path)
    run_dir = tmp_path / "run"
    for point in moments(name, seed, more):
        # in a round, only the train process (its workers must end by themselves), else the group
        group = not (point.startswith("round:") and name in WORKERS)
        runs.kill_at(point, run_dir, [*config["options"], *resumed(run_dir)], group=group)
        assert_intact(run_dir, reference, point)
    finished = runs.train(run_dir, [*config["options"], *resumed(run_dir)])
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "Traceback" not in finished.stderr
    assert outcome(run_dir) == outcome(reference)


#: configurations whose default-suite kills the others cover (the exact backend's path is the serial
#: run's with the backend contract around it; it runs in the slow variant and test_training_loop)
SLOW_ONLY = ("exact-backend",)


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_ONLY else name for name in CONFIGS],
    ids=lambda name: f"{name}-{'-'.join(moments(name, 16))}",
)
def test_a_killed_run_resumes_to_the_uninterrupted_run(name: str, tmp_path: Path, references: Any) -> None:
    kill_and_resume(name, 16, tmp_path, references)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 5))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_killed_runs_resume_at_more_moments(name: str, seed: int, tmp_path: Path, references: Any) -> None:
    kill_and_resume(name, seed, tmp_path, references, more=1)


# -- the bundle backend --------------------------------------------------------------------------


def play_bundles(run_dir: Path, experiment: Path) -> int:
    """A lab plays the run's bundles still without counts (tests/backends/lab_side.py)."""
    lab_side = sys.modules.get("lab_side")
    if lab_side is None:
        path = ROOT / "tests" / "backends" / "lab_side.py"
        spec = importlib.util.spec_from_file_location("lab_side", path)
        assert spec is not None and spec.loader is not None
        lab_side = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lab_side)
    from qep_analog.backends.configure import fake_lab

    task = qa.load_experiment(experiment, nominal=True).task
    lab = fake_lab(task.profile, task.model.n_qubits, 3)
    recipe = qa.load_recipe("rydberg-smooth")
    return int(lab_side.play_bundles(run_dir / "bundles", lab, task.model, task.profile, recipe, seed=3))


#: one step on fresnel-like, whose sequences are Pulser's (aquila-like's AHS programs cannot end a
#: 4 µs schedule within the device's 4 µs)
BUNDLE_EXPERIMENT = """\
schema: qep-experiment/1
task: rydberg_sensor
device: fresnel-like
model: {n_chain: 3, spacing_um: 5.5, phases: [disordered, Z2], rb_over_a: [1.3, 2.0]}
training: {steps: 1, batch_size: 2, shots: 100, beta: 0.3, learning_rate: 0.2, seed: 3}
evaluation: {test_size: 4, every: 1}
"""
BUNDLE = ["--backend", "bundle", "--recipe", "rydberg-smooth"]


@pytest.mark.parametrize(
    ("round_name", "point"),
    [
        # the step's free round: 2 jobs, one sequence each; its nudged round: 4
        ("free", "after:*.pulser.json:1"),  # one sequence written, the other and the manifest not
        pytest.param("nudged", "before:*.pulser.json:3", marks=pytest.mark.slow),  # the third half-made
        pytest.param("nudged", "before:manifest.json:1", marks=pytest.mark.slow),  # all but it
    ],
)
def test_a_run_killed_while_it_writes_a_bundle_resumes(
    round_name: str, point: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed while a bundle's sequences are written (before its manifest, which makes it whole):
    the resumed run writes the bundle anew (no temporary file of the killed write left), the lab
    plays it, and the run ends where the fake lab ends (tests/backends/test_training_loop.py: the
    same counts, seeded alike). Only the killed run is a process of its own: the parameters come
    from counts, which do not depend on the threads that computed the lab's states."""
    runs = Runs(tmp_path, BUNDLE_EXPERIMENT)
    run_dir = tmp_path / "run"

    def train(*options: str) -> int:
        status = main(runs.argv(run_dir, [*BUNDLE, *options]))
        capsys.readouterr()
        return status

    resume: list[str] = []
    if round_name == "nudged":
        assert train() == 5  # waiting for the lab
        assert play_bundles(run_dir, runs.experiment) == 1
        resume = ["--resume"]
    runs.kill_at(point, run_dir, [*BUNDLE, *resume], group=True)
    bundle = run_dir / "bundles" / "step-00001" / round_name
    assert not (bundle / "manifest.json").exists()
    played = 0
    while (status := train("--resume")) == 5:
        assert (bundle / "manifest.json").exists()
        played += play_bundles(run_dir, runs.experiment)
    assert status == 0
    assert played == (2 if round_name == "free" else 1)
    hidden = list((run_dir / "bundles").rglob(".*"))
    assert not hidden, hidden
    expected = tmp_path / "fake-lab"
    assert main(runs.argv(expected, ["--backend", "fake-lab", *BUNDLE[2:]])) == 0
    result = read_json(run_dir / "result.json", "qep-run/1")
    reference = read_json(expected / "result.json", "qep-run/1")
    assert result["parameters"] == reference["parameters"]
    assert result["coefficients"] == reference["coefficients"]
