"""Executors (qep_analog.execution): the same results everywhere, retries after a killed worker."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qep_analog.errors import ConfigError
from qep_analog.execution.executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SerialExecutor,
    chunked,
    make_executor,
)
from qep_analog.execution.preparation import EquilibriumSpec, ExecutedEquilibrium
from qep_analog.model.standard import phase_sensor
from qep_analog.qep.gradients import qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[DaskExecutor]:
    with DaskExecutor(None, 2, retries=1) as executor:
        yield executor  # type: ignore[misc]


@pytest.fixture(scope="module")
def process_executor() -> Iterator[ProcessExecutor]:
    with ProcessExecutor(2, retries=1) as executor:
        yield executor  # type: ignore[misc]


def sensor_batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = 4.0 * rng.dirichlet(np.ones(3), size=5)
    return x, rng.uniform(-0.3, 0.3, 51), rng.normal(size=(5, 3))


def qep_step(eq: object, x: np.ndarray, theta: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, ...]:
    free = eq.prepare(x, theta, with_gap=True, check_degeneracy=False)  # type: ignore[attr-defined]
    gradient = qep_gradient(eq, x, theta, eps, 0.4, free=free, warn_small_gap=False)  # type: ignore[arg-type]
    return free.strings, free.energies, free.gaps, gradient


def test_chunks_cover_every_task_once() -> None:
    for count in (1, 5, 32):
        for chunks in (1, 2, 3, 7, 40):
            parts = chunked(count, chunks)
            assert [i for r in parts for i in r] == list(range(count))
            assert len(parts) == min(count, chunks)


def test_executor_specs() -> None:
    assert isinstance(make_executor("serial"), SerialExecutor)
    assert make_executor("processes:3").workers == 3
    for bad in ("threads", "processes:0", "processes:x", "serial:2"):
        with pytest.raises(ConfigError, match="executor"):
            make_executor(bad)


def test_executors_give_bitwise_identical_results(
    dask_executor: DaskExecutor, process_executor: ProcessExecutor
) -> None:
    # serial vs local processes vs a Dask LocalCluster, and the plain in-process Equilibrium
    model = phase_sensor(6)
    x, theta, eps = sensor_batch()
    reference = qep_step(Equilibrium(model, tol=1e-8), x, theta, eps)
    spec = EquilibriumSpec(model, tol=1e-8)
    executor: Executor
    for executor in (SerialExecutor(), process_executor, dask_executor):
        results = qep_step(ExecutedEquilibrium(spec, executor), x, theta, eps)
        for got, want in zip(results, reference, strict=True):
            assert np.array_equal(got, want), executor.name


def slow_identity(task: tuple[int, str]) -> tuple[int, int]:
    """Sleep a little (so that a kill lands mid-batch), log the run, return (index, pid)."""
    index, log = task
    time.sleep(0.2)
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"{index}\n")
    return index, os.getpid()


def kill_one_worker_soon(pids: list[int], delay: float) -> None:
    import threading

    def kill() -> None:
        time.sleep(delay)
        os.kill(pids[0], signal.SIGKILL)

    threading.Thread(target=kill, daemon=True).start()


def test_dask_retries_the_tasks_of_a_killed_worker(dask_executor: DaskExecutor, tmp_path: Path) -> None:
    log = tmp_path / "runs.txt"
    pids = sorted(dask_executor.client.run(os.getpid).values())
    dask_executor.chunks_per_worker = 4
    try:
        kill_one_worker_soon(pids, 0.5)
        results = dask_executor.map(slow_identity, [(i, str(log)) for i in range(24)])
    finally:
        dask_executor.chunks_per_worker = 1
    assert [r[0] for r in results] == list(range(24))  # nothing lost, nothing duplicated
    runs = [int(v) for v in log.read_text().split()]
    assert set(runs) == set(range(24))
    assert len(runs) > 24  # the killed worker's chunk ran again
    dask_executor.client.wait_for_workers(2, timeout=60)


def test_processes_retry_after_a_killed_worker(process_executor: ProcessExecutor, tmp_path: Path) -> None:
    log = tmp_path / "runs.txt"
    process_executor.warm_up()
    pids = sorted(process_executor.pool._processes)
    process_executor.chunks_per_worker = 4
    try:
        kill_one_worker_soon(pids, 0.5)
        results = process_executor.map(slow_identity, [(i, str(log)) for i in range(24)])
    finally:
        process_executor.chunks_per_worker = 1
    assert [r[0] for r in results] == list(range(24))
    runs = [int(v) for v in log.read_text().split()]
    assert set(runs) == set(range(24)) and len(runs) > 24
