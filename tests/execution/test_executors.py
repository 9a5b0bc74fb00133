"""Executors (qep_analog.execution): the same results everywhere, retries after a killed worker."""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qep_analog.errors import ConfigError
from qep_analog.execution.executors import (
    MALLOC_TUNING,
    SINGLE_THREAD_ENV,
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SerialExecutor,
    chunked,
    make_executor,
)
from qep_analog.execution.preparation import EquilibriumSpec, ExecutedEquilibrium
from qep_analog.model.standard import phase_sensor
from qep_analog.qep.gradients import qep_gradient, qep_step, small_gap_samples, two_round_qep_step
from qep_analog.qep.losses import CrossEntropy, CustomLoss
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


def two_rounds(eq: object, x: np.ndarray, theta: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, ...]:
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
    reference = two_rounds(Equilibrium(model, tol=1e-8), x, theta, eps)
    spec = EquilibriumSpec(model, tol=1e-8)
    executor: Executor
    for executor in (SerialExecutor(), process_executor, dask_executor):
        results = two_rounds(ExecutedEquilibrium(spec, executor), x, theta, eps)
        for got, want in zip(results, reference, strict=True):
            assert np.array_equal(got, want), executor.name


def step_setup() -> tuple[Equilibrium, EquilibriumSpec, np.ndarray, np.ndarray, np.ndarray]:
    """The plain equilibrium and the spec of the 6-site sensor, a batch of 5 and its targets."""
    model = phase_sensor(6)
    x, theta, _ = sensor_batch()
    targets = np.eye(3)[[0, 1, 2, 1, 0]]
    return Equilibrium(model, tol=1e-8), EquilibriumSpec(model, tol=1e-8), x, theta, targets


def step_arrays(step: object) -> list[np.ndarray]:
    free = step.free  # type: ignore[attr-defined]
    return [free.strings, free.energies, free.gaps, step.error_signal, step.gradient, step.nudge]  # type: ignore[attr-defined]


def test_fused_qep_step_is_identical_on_every_executor(
    dask_executor: DaskExecutor, process_executor: ProcessExecutor
) -> None:
    # one task per sample (free state, error signal, nudged states on one worker) against the
    # two-round step of the plain in-process Equilibrium
    plain, spec, x, theta, targets = step_setup()
    loss, beta = CrossEntropy(), 0.4
    reference = two_round_qep_step(plain, x, theta, targets, loss, beta, with_gap=True)
    fused = [
        qep_step(ExecutedEquilibrium(spec, executor), x, theta, targets, loss, beta, with_gap=True)
        for executor in (SerialExecutor(), process_executor, dask_executor)
    ]
    for step in fused[1:]:
        for got, want in zip(step_arrays(step), step_arrays(fused[0]), strict=True):
            assert np.array_equal(got, want)
    for got, want in zip(step_arrays(fused[0]), step_arrays(reference), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    free = plain.prepare(x, theta, with_gap=True, check_degeneracy=False)
    bad, _ = small_gap_samples(plain, free, reference.error_signal, 8.0)
    big = qep_step(ExecutedEquilibrium(spec, process_executor), x, theta, targets, loss, 8.0, with_gap=True)
    assert big.small_gap_count() == len(bad) > 0


def test_fused_step_with_a_loss_that_cannot_be_pickled(
    dask_executor: DaskExecutor, process_executor: ProcessExecutor
) -> None:
    # a lambda does not pickle: on processes the step runs in two rounds, same numbers; Dask's
    # cloudpickle sends it, and the step runs whole on the workers
    plain, spec, x, theta, targets = step_setup()
    loss = CustomLoss(lambda o, y: ((o - y) ** 2).sum(-1), lambda o, y: 2 * (o - y))
    assert not process_executor.can_send(loss)
    assert SerialExecutor().can_send(loss) and dask_executor.can_send(loss)
    eq = ExecutedEquilibrium(spec, process_executor)
    step = qep_step(eq, x, theta, targets, loss, 0.4)
    reference = two_round_qep_step(plain, x, theta, targets, loss, 0.4)
    assert np.array_equal(step.gradient, reference.gradient)
    on_dask = qep_step(ExecutedEquilibrium(spec, dask_executor), x, theta, targets, loss, 0.4)
    serial = qep_step(ExecutedEquilibrium(spec, SerialExecutor()), x, theta, targets, loss, 0.4)
    assert np.array_equal(on_dask.gradient, serial.gradient)
    outputs = plain.compiled.output_values(step.free.strings)
    assert np.array_equal(step.error_signal, 2 * (outputs - targets))
    for equilibrium in (eq, plain):
        with pytest.raises(ConfigError, match="qep step: 5 inputs but 4 targets"):
            qep_step(equilibrium, x, theta, targets[:4], CrossEntropy(), 0.4)


def malloc_tuning(_: int) -> str | None:
    return os.environ.get(MALLOC_TUNING)


def test_workers_keep_glibc_adaptive_malloc(
    dask_executor: DaskExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dask's nannies set MALLOC_TRIM_THRESHOLD_, which makes state-vector solves 35 % slower
    assert MALLOC_TUNING not in os.environ  # not left behind by the LocalCluster's nannies
    assert dask_executor.map(malloc_tuning, [0, 1]) == [None, None]
    monkeypatch.setenv(MALLOC_TUNING, "65536")
    with ProcessExecutor(1) as executor:
        assert executor.map(malloc_tuning, [0]) == [None]
    assert os.environ[MALLOC_TUNING] == "65536"  # the caller's environment as it was


def heap_faults(_: int) -> tuple[str | None, int]:
    """This process's malloc tuning, and its page faults over 200 allocations of 256 kB arrays."""
    np.ones(32768)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        np.ones(32768).sum()
    return os.environ.get(MALLOC_TUNING), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_workers_of_a_cluster_with_dask_malloc_tuning_reuse_freed_arrays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a cluster started with Dask's defaults (as `dask worker` does): its nanny sets
    # MALLOC_TRIM_THRESHOLD_ for the worker (and in this process: undone after the test)
    from distributed import LocalCluster

    for key in (MALLOC_TUNING, *SINGLE_THREAD_ENV):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        with DaskExecutor(cluster.scheduler_address) as executor:
            [(tuning, faults)] = executor.map(heap_faults, [0])
    assert tuning == "65536"  # Dask's value, still in the worker's environment
    assert faults < 1000  # mapped afresh each time, 200 arrays would fault in 200 x 64 pages
    assert heap_faults(0)[1] < 1000  # this process, without the tuning, for comparison


def slow_identity(task: tuple[int, str]) -> tuple[int, int]:
    """Sleep a little (so that a kill lands mid-batch), log the run, return (index, pid)."""
    index, log = task
    time.sleep(0.2)
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"{index}\n")
    return index, os.getpid()


def dying_identity(task: tuple[int, str]) -> tuple[int, int]:
    """``slow_identity``, except that the worker running task 5 kills itself once (right after logging
    it, in the middle of its chunk): a kill at a fixed point of the work, not at a time."""
    index, log = task
    result = slow_identity(task)
    flag = Path(log).with_suffix(".killed")
    if index == 5 and not flag.exists():
        flag.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return result


def test_dask_retries_the_tasks_of_a_killed_worker(dask_executor: DaskExecutor, tmp_path: Path) -> None:
    log = tmp_path / "runs.txt"
    dask_executor.chunks_per_worker = 4
    try:
        results = dask_executor.map(dying_identity, [(i, str(log)) for i in range(24)])
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
    process_executor.chunks_per_worker = 4
    try:
        results = process_executor.map(dying_identity, [(i, str(log)) for i in range(24)])
    finally:
        process_executor.chunks_per_worker = 1
    assert [r[0] for r in results] == list(range(24))
    runs = [int(v) for v in log.read_text().split()]
    assert set(runs) == set(range(24)) and len(runs) > 24
