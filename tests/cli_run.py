"""The command line run for the tests: in process (fast), or in a subprocess bounded in time and memory
(for inputs that could hang or exhaust memory)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

import qep_analog
from qep_analog.cli import main

#: the checkout whose package the subprocesses import
ROOT = Path(qep_analog.__file__).resolve().parent.parent
#: the address-space ceiling of a subprocess (bytes) unless a test asks for another
MEMORY_LIMIT = 3 * 2**30
#: the seconds a subprocess may take unless a test asks for another
TIME_LIMIT = 60.0


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """``qep-analog ARGV``: its exit status (argparse's exits included), standard output and error."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class ProcessTimeout(Exception):
    """A subprocess ran past its time limit (it was killed, with its process group)."""


def run_cli_process(
    *argv: str,
    cwd: Path,
    memory: int = MEMORY_LIMIT,
    timeout: float = TIME_LIMIT,
    program: Sequence[str] = ("-m", "qep_analog.cli"),
) -> subprocess.CompletedProcess[str]:
    """``qep-analog ARGV`` in a subprocess of this checkout (``python PROGRAM ARGV``), in ``cwd`` with
    its calibration history in ``cwd/history``, bounded by an address-space ceiling of ``memory``
    bytes and ``timeout`` seconds: a process past its time is killed with its process group and the
    test fails (:class:`ProcessTimeout` through :func:`pytest.fail`)."""
    try:
        return run_process([sys.executable, *program, *argv], cwd=cwd, memory=memory, timeout=timeout)
    except ProcessTimeout as exc:
        pytest.fail(f"qep-analog {' '.join(argv)} {exc}")


def run_process(
    command: Sequence[str], *, cwd: Path, memory: int, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as :func:`run_cli_process` does; past ``timeout``, raise :class:`ProcessTimeout`."""

    def limit_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env["QEP_ANALOG_HISTORY"] = str(cwd / "history")
    env.pop("QEP_ANALOG_PATH", None)
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        preexec_fn=limit_memory,
        start_new_session=True,  # its own process group: a timeout ends the workers it started too
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()
        raise ProcessTimeout(f"did not end within {timeout:g} s") from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
