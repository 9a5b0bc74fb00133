"""``qep-analog train`` held still at a named point of its run, for the kill tests (a test aid).

    python train_until.py POINT MARKER ARGS...

runs ``qep-analog ARGS`` (a ``train`` command) in this process; when the run reaches POINT it writes
the file MARKER and waits there (at most ``HOLD_SECONDS``, then exits 3), so that a test can kill it
at a moment the run's state defines, whatever the machine's load. A kill can only leave behind the
writes done before it, so the points are the run's writes, and the rounds of work between them:

- ``record:S`` — step S's line of ``metrics.jsonl`` written and flushed, its checkpoint not yet;
- ``torn:S`` — the first half of step S's line written and flushed (a kill inside the write);
- ``checkpoint:S`` — step S's checkpoint in its temporary file, written and synced, not yet renamed;
- ``evaluation:S`` — the test-set evaluation of step S about to start (S = 0: the first one);
- ``round:S`` — the middle of step S's gradient: on an executor, its round with the chunks handed
  out and the workers computing while the parent waits (processes, dask-local), or about to be
  computed here (serial); on a backend (``--backend``), its nudged round about to run, the free
  round done;
- ``before:GLOB:N`` / ``after:GLOB:N`` — just before / after the rename that ends this process's
  N-th atomic write of a file whose name matches GLOB (``after:result.json:1``: the run's result
  written, its report not yet; ``before:*.ahs.json:2``: a bundle's second sequence half-made).
"""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any

#: how long a held run waits to be killed before it gives up (a test that failed to kill it)
HOLD_SECONDS = 300.0


def hold(marker: str, point: str) -> None:
    """Say that the run stands at ``point`` (the marker file) and wait to be killed."""
    pathlib.Path(marker).write_text(point, encoding="utf-8")
    time.sleep(HOLD_SECONDS)
    os._exit(3)


def hold_in_log(step: int, whole: bool, marker: str, point: str) -> None:
    """Hold once step ``step``'s line of the metrics log is written (``whole``) or half written."""
    opened = pathlib.Path.open

    class Log:
        def __init__(self, handle: Any) -> None:
            self._handle = handle

        def write(self, text: str) -> int:
            if json.loads(text).get("step") == step:
                self._handle.write(text if whole else text[: len(text) // 2])
                self._handle.flush()
                hold(marker, point)
            return int(self._handle.write(text))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._handle, name)

        def __enter__(self) -> Log:
            return self

        def __exit__(self, *exc: object) -> None:
            self._handle.close()

    def open_log(self: pathlib.Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = opened(self, mode, *args, **kwargs)
        return Log(handle) if self.name == "metrics.jsonl" and mode == "a" else handle

    pathlib.Path.open = open_log  # type: ignore[method-assign]


def hold_at_rename(when: str, matches: Any, marker: str, point: str) -> None:
    """Hold just ``when`` ("before"/"after") the first rename for which ``matches(source, target)``."""
    replace = os.replace

    def held_replace(source: Any, target: Any, **kwargs: Any) -> None:
        now = matches(os.fspath(source), os.fspath(target))
        if now and when == "before":
            hold(marker, point)
        replace(source, target, **kwargs)
        if now:
            hold(marker, point)

    os.replace = held_replace


def hold_in_round(step: int, marker: str, point: str) -> None:
    """Hold in the middle of step ``step``'s gradient: in the executor's round once its work is
    handed out, or before the backend's second (nudged) round."""
    import qep_analog
    from qep_analog.backends import configure
    from qep_analog.execution import executors
    from qep_analog.qep.trainer import Trainer

    state: Counter[str] = Counter()
    gradient = Trainer.gradient

    def step_gradient(self: Any, *args: Any, **kwargs: Any) -> Any:
        state["step"] = kwargs.get("step", args[4] if len(args) > 4 else 0)  # (θ, x, y, rng, step)
        try:
            return gradient(self, *args, **kwargs)
        finally:
            state["step"] = -1

    Trainer.gradient = step_gradient  # type: ignore[method-assign]

    backend_for_run = configure.backend_for_run

    def held_backend(*args: Any, **kwargs: Any) -> Any:
        backend = backend_for_run(*args, **kwargs)
        run = backend.run

        def held_run(jobs: Any) -> Any:
            if state["step"] == step:
                state["backend rounds"] += 1
                if state["backend rounds"] == 2:
                    hold(marker, point)
            return run(jobs)

        backend.run = held_run
        return backend

    configure.backend_for_run = held_backend  # type: ignore[assignment]
    qep_analog.backend_for_run = held_backend  # type: ignore[attr-defined]

    serial_run = executors.SerialExecutor._run

    def serial(self: Any, *args: Any, **kwargs: Any) -> Any:
        if state["step"] == step:
            hold(marker, point)
        return serial_run(self, *args, **kwargs)

    executors.SerialExecutor._run = serial  # type: ignore[method-assign]

    submit = ProcessPoolExecutor.submit

    def counted_submit(self: Any, function: Any, *args: Any, **kwargs: Any) -> Any:
        if function is executors.run_chunk and state["step"] == step:
            state["chunks"] += 1
        return submit(self, function, *args, **kwargs)

    ProcessPoolExecutor.submit = counted_submit  # type: ignore[method-assign]
    wait = executors.wait

    def held_wait(futures: Any, *args: Any, **kwargs: Any) -> Any:
        if state["chunks"]:  # (not the wait for a pool's workers to start)
            hold(marker, point)
        return wait(futures, *args, **kwargs)

    executors.wait = held_wait  # type: ignore[assignment]

    start_dask = executors.DaskExecutor.__init__

    def dask_executor(self: Any, *args: Any, **kwargs: Any) -> None:
        import distributed  # (imported by the executor anyway: only then)

        as_completed = distributed.as_completed

        def held_as_completed(*args: Any, **kwargs: Any) -> Any:
            if state["step"] == step:
                hold(marker, point)
            return as_completed(*args, **kwargs)

        distributed.as_completed = held_as_completed
        start_dask(self, *args, **kwargs)

    executors.DaskExecutor.__init__ = dask_executor  # type: ignore[method-assign]


def install(point: str, marker: str) -> None:
    """Patch the run so that it holds at ``point``."""
    kind, _, rest = point.partition(":")
    if kind in ("record", "torn"):
        hold_in_log(int(rest), kind == "record", marker, point)
    elif kind == "checkpoint":

        def checkpoint_of_step(source: str, target: str) -> bool:
            if os.path.basename(target) != "checkpoint.json":
                return False
            with open(source, encoding="utf-8") as handle:
                return bool(json.load(handle)["step"] == int(rest))

        hold_at_rename("before", checkpoint_of_step, marker, point)
    elif kind in ("before", "after"):
        pattern, _, count = rest.rpartition(":")
        seen: Counter[str] = Counter()

        def nth_match(source: str, target: str) -> bool:
            if fnmatch.fnmatch(os.path.basename(target), pattern):
                seen["matches"] += 1
                return seen["matches"] == int(count)
            return False

        hold_at_rename(kind, nth_match, marker, point)
    elif kind == "evaluation":
        from qep_analog.qep.trainer import Trainer

        evaluate = Trainer.evaluate

        def held_evaluate(self: Any, parameters: Any, step: int = 0) -> Any:
            if step == int(rest):
                hold(marker, point)
            return evaluate(self, parameters, step)

        Trainer.evaluate = held_evaluate  # type: ignore[method-assign]
    elif kind == "round":
        hold_in_round(int(rest), marker, point)
    else:
        raise SystemExit(f"train_until: unknown point {point!r}")


def main() -> None:
    point, marker, *argv = sys.argv[1:]
    install(point, marker)
    from qep_analog.cli import main as cli

    raise SystemExit(cli(argv))


if __name__ == "__main__":
    main()
