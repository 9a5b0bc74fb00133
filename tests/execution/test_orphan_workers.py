"""Worker processes end with their parent, even a parent killed by SIGKILL (nothing to stop them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and re-parenting")

REPO = Path(__file__).resolve().parents[2]

#: The parent: starts an executor (from the main thread or another one), has every worker start,
#: prints the workers' pids and waits to be killed.
PARENT = textwrap.dedent(
    """
    import os, sys, threading, time
    from qep_analog.execution.executors import make_executor

    spec, in_thread = sys.argv[1], sys.argv[2] == "thread"
    executors = []

    def start():
        executor = make_executor(spec)
        if spec.startswith("processes"):
            executor.warm_up()
            pids = [process.pid for process in executor.pool._processes.values()]
        else:
            pids = list(executor.client.run(os.getpid).values())
        executors.append(executor)
        print(" ".join(map(str, pids)), flush=True)

    if in_thread:
        starter = threading.Thread(target=start)
        starter.start()
        starter.join()
    else:
        start()
    time.sleep(600)
    """
)


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # dead, not yet reaped by its new parent
    except psutil.NoSuchProcess:
        return True


def kill_parent_and_check_workers(spec: str, where: str = "main") -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, spec, where], stdout=subprocess.PIPE, text=True, env=env
    )
    descendants: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        worker_pids = {int(pid) for pid in line.split()}
        assert len(worker_pids) == int(spec.rpartition(":")[2]), line
        # every process the parent started (workers, and e.g. multiprocessing's resource tracker)
        descendants = psutil.Process(parent.pid).children(recursive=True)
        assert worker_pids <= {process.pid for process in descendants}
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
    deadline = time.monotonic() + 20.0
    alive = descendants
    while alive and time.monotonic() < deadline:
        alive = [process for process in alive if not gone(process)]
        time.sleep(0.1)
    for process in alive:  # do not leak them from the test either
        process.kill()
    assert not alive, f"{spec}: still alive 20 s after the parent was killed: {alive}"


@pytest.mark.parametrize("where", ["main", "thread"])
def test_process_workers_end_when_their_parent_is_killed(where: str) -> None:
    # from a thread: no parent-death signal (it would come when that thread ends), the watchdog
    kill_parent_and_check_workers("processes:2", where)


def test_dask_local_workers_end_when_their_parent_is_killed() -> None:
    kill_parent_and_check_workers("dask-local:2")
