"""Executors: where a batch of independent tasks runs — in this process, in local worker processes,
or on a Dask cluster.

Every executor has one method that matters, :meth:`Executor.map` (``function`` over ``tasks``,
results in task order). Tasks are grouped into one chunk per worker (``chunks_per_worker`` more to
balance uneven costs), so a worker gets few, large calls; workers run single-threaded (Numba and
BLAS at one thread) so that N workers use N cores, and stay alive between calls (per-worker caches,
e.g. a compiled model, stay warm). A worker that dies mid-batch has its chunks run again elsewhere:
results come back exactly once per task. Specs: ``serial``, ``processes[:N]``, ``dask-local[:N]``,
``dask://HOST:PORT``.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qep_analog.errors import ConfigError, SolverError

T = TypeVar("T")
R = TypeVar("R")

#: Environment of worker processes: every thread pool at one thread.
SINGLE_THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


#: glibc's malloc tuning that Dask's nannies put in the environment of the workers they spawn (and
#: leave in the parent's): any fixed value stops glibc from raising its mmap threshold, so every
#: state-vector-sized array is mapped and faulted in afresh: measured 35 % slower solves at N = 14.
MALLOC_TUNING = "MALLOC_TRIM_THRESHOLD_"


def undo_malloc_tuning() -> bool:
    """Where ``MALLOC_TUNING`` is set (workers of a ``dask worker`` started elsewhere), fix glibc's
    thresholds where its adaptive rule would have taken them for large arrays (mmap above 32 MiB,
    trim above 64 MiB), so that freed state vectors are reused. Returns whether it did."""
    if MALLOC_TUNING not in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    mmap_ok = libc.mallopt(m_mmap_threshold, 32 << 20)
    trim_ok = libc.mallopt(m_trim_threshold, 64 << 20)
    return bool(mmap_ok and trim_ok)


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """``SINGLE_THREAD_ENV`` (and no ``MALLOC_TUNING``) in this process's environment while workers
    start, so that they are single-threaded from their first import on (a thread pool sized at
    import, e.g. Numba's when the main script imports it before a worker's initializer runs,
    otherwise takes every core and its spinning threads slow the other workers down: measured 3–5×
    on the executor benchmark) and keep glibc's adaptive malloc."""
    saved = {key: os.environ.get(key) for key in (*SINGLE_THREAD_ENV, MALLOC_TUNING)}
    os.environ.update(SINGLE_THREAD_ENV)
    os.environ.pop(MALLOC_TUNING, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def single_threaded() -> None:
    """Limit this process to one thread: Numba's pool and every BLAS (for worker processes).

    Numba re-reads ``NUMBA_*`` variables at each compilation and refuses a pool size other than
    the one its running pool was launched with; so the variable changes only where that pool has
    not started yet (re-read at once, before the pool starts), and is left as it was otherwise.
    """
    import numba
    from threadpoolctl import threadpool_limits

    previous = os.environ.get("NUMBA_NUM_THREADS")
    os.environ.update(SINGLE_THREAD_ENV)
    try:
        numba.config.reload_config()
    except RuntimeError:  # the pool runs already, at its own size
        if previous is None:
            os.environ.pop("NUMBA_NUM_THREADS")
        else:
            os.environ["NUMBA_NUM_THREADS"] = previous
    numba.set_num_threads(1)
    threadpool_limits(limits=1)


def run_chunk(function: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    """Run ``function`` on every task of a chunk, in order (what a worker executes)."""
    return [function(task) for task in chunk]


#: How often a worker's watchdog checks that the process that started it is still its parent.
PARENT_POLL_SECONDS = 0.5


def exit_with_parent(parent_pid: int, *, parent_is_main_thread: bool = True) -> None:
    """Make this (worker) process end when ``parent_pid``, the process that started it, dies.

    On Linux the kernel sends SIGKILL when the parent goes (``prctl(PR_SET_PDEATHSIG)``, through
    libc); that signal comes when the parent's *thread* that spawned the worker ends, so it is asked
    for only where that thread is the main one. Everywhere, a daemon thread polls ``os.getppid()``
    (a dead parent's orphans are re-parented) and exits at once when it changes; and a parent that
    died before this ran (its death signal lost) is caught by the same check here, at once.
    """
    if parent_is_main_thread and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="qep-exit-with-parent", daemon=True).start()


def _init_worker(parent_pid: int | None = None, parent_is_main_thread: bool = True) -> None:
    if parent_pid is not None:
        exit_with_parent(parent_pid, parent_is_main_thread=parent_is_main_thread)
    single_threaded()


def chunked(count: int, chunks: int) -> list[range]:
    """Split ``range(count)`` into ``chunks`` contiguous, nearly equal, non-empty ranges."""
    chunks = max(1, min(chunks, count))
    bounds = [round(k * count / chunks) for k in range(chunks + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(chunks) if bounds[k + 1] > bounds[k]]


class _TaskProgress:
    """A rich progress bar over tasks (disabled unless asked for)."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not enabled
        )
        self._task = self._progress.add_task(label, total=total)
        self.enabled = enabled

    def __enter__(self) -> _TaskProgress:
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.enabled:
            self._progress.stop()

    def advance(self, done: int) -> None:
        self._progress.advance(self._task, done)


class Executor:
    """Runs independent tasks; subclasses decide where. Use as a context manager (or ``close``)."""

    name = "executor"
    workers = 1

    def __init__(self, *, chunks_per_worker: int = 1, retries: int = 2, progress: bool = False) -> None:
        if chunks_per_worker < 1 or retries < 0:
            raise ConfigError(
                f"executor: chunks_per_worker = {chunks_per_worker} (>= 1), retries = {retries} (>= 0)"
            )
        self.chunks_per_worker = chunks_per_worker
        self.retries = retries
        self.progress = progress

    def map(self, function: Callable[[T], R], tasks: Sequence[T], *, label: str = "tasks") -> list[R]:
        """``[function(t) for t in tasks]``, computed by the workers, in task order."""
        tasks = list(tasks)
        if not tasks:
            return []
        ranges = chunked(len(tasks), self.workers * self.chunks_per_worker)
        chunks = [[tasks[i] for i in r] for r in ranges]
        results: list[list[R] | None] = [None] * len(chunks)
        with _TaskProgress(len(tasks), label, self.progress) as bar:
            self._run(function, chunks, results, bar)
        out: list[R] = []
        for part in results:
            assert part is not None
            out.extend(part)
        if len(out) != len(tasks):
            raise SolverError(f"{self.name}: {len(out)} results for {len(tasks)} tasks")
        return out

    def _run(
        self,
        function: Callable[[T], R],
        chunks: list[list[T]],
        results: list[list[R] | None],
        bar: _TaskProgress,
    ) -> None:
        raise NotImplementedError

    def can_send(self, value: object) -> bool:
        """Whether ``value`` can reach the workers (this process's executor: always)."""
        try:
            self.serialize(value)
        except (pickle.PicklingError, AttributeError, TypeError):
            return False
        return True

    @staticmethod
    def serialize(value: object) -> bytes:
        """How tasks travel to the workers: pickle (process pools)."""
        return pickle.dumps(value)

    def close(self) -> None:
        """Stop the workers (a no-op for the serial executor)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.name} ({self.workers} worker{'s' if self.workers > 1 else ''})"


class SerialExecutor(Executor):
    """Every task in this process, one after the other (threads as this process has them)."""

    name = "serial"

    def can_send(self, value: object) -> bool:
        return True

    def _run(
        self,
        function: Callable[[T], R],
        chunks: list[list[T]],
        results: list[list[R] | None],
        bar: _TaskProgress,
    ) -> None:
        for k, chunk in enumerate(chunks):
            results[k] = run_chunk(function, chunk)
            bar.advance(len(chunk))


class ProcessExecutor(Executor):
    """Local worker processes (spawned, single-threaded, kept alive between calls).

    A worker killed mid-batch breaks the pool: it is restarted and the unfinished chunks run again,
    at most ``retries`` times.
    """

    name = "processes"

    def __init__(self, workers: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    @property
    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                # workers end with this process, even killed (SIGKILL leaves no time to stop them)
                initargs=(os.getpid(), threading.current_thread() is threading.main_thread()),
            )
            with _worker_environment():  # the pool spawns its workers on these first calls
                wait([pool.submit(os.getpid) for _ in range(self.workers)])
            self._pool = pool
        return self._pool

    def warm_up(self) -> None:
        """Start every worker now (spawning takes a second or two)."""
        _ = self.pool

    def _run(
        self,
        function: Callable[[T], R],
        chunks: list[list[T]],
        results: list[list[R] | None],
        bar: _TaskProgress,
    ) -> None:
        attempts = 0
        while True:
            pending = [k for k, r in enumerate(results) if r is None]
            if not pending:
                return
            futures: dict[Future[list[R]], int] = {
                self.pool.submit(run_chunk, function, chunks[k]): k for k in pending
            }
            try:
                waiting = set(futures)
                while waiting:
                    done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for future in done:
                        k = futures[future]
                        results[k] = future.result()
                        bar.advance(len(chunks[k]))
            except BrokenProcessPool:
                attempts += 1
                if attempts > self.retries:
                    raise SolverError(
                        f"processes: a worker died {attempts} times in one batch (retries = {self.retries})"
                    ) from None
                broken, self._pool = self._pool, None
                if broken is not None:
                    broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor(Executor):
    """A Dask distributed cluster: ``address`` (``tcp://HOST:PORT``) or a LocalCluster started here.

    Chunks are pinned round-robin to the workers (``allow_other_workers``, so that a dead worker's
    chunk moves on); Dask re-runs the chunks of a worker that dies (``retries`` more for errors).
    """

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        import dask
        from distributed import Client, LocalCluster

        self.cluster: Any = None
        if address is None:
            n = workers or os.cpu_count() or 1
            spawn_env = dask.config.get("distributed.nanny.pre-spawn-environ")
            spawn_env = {key: value for key, value in spawn_env.items() if key != MALLOC_TUNING}
            with _worker_environment(), dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
                self.cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    env=dict(SINGLE_THREAD_ENV),
                )
            self.client: Any = Client(self.cluster)
        else:
            try:
                self.client = Client(address, timeout=10)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"executor dask: no scheduler at {address} ({exc})") from None
        self.client.register_plugin(_single_thread_plugin(), name="qep-single-thread")
        self.workers = max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))

    @staticmethod
    def serialize(value: object) -> bytes:
        """Dask sends with cloudpickle, which also takes lambdas and local functions."""
        import cloudpickle

        return bytes(cloudpickle.dumps(value))

    def worker_addresses(self) -> list[str]:
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def _run(
        self,
        function: Callable[[T], R],
        chunks: list[list[T]],
        results: list[list[R] | None],
        bar: _TaskProgress,
    ) -> None:
        from distributed import as_completed

        addresses = self.worker_addresses()
        futures: dict[Any, int] = {}
        for k, chunk in enumerate(chunks):
            with warnings.catch_warnings():
                # chunks carry state vectors (warm starts): large graphs are expected here
                warnings.filterwarnings("ignore", message=".*large graph.*")
                future = self._submit(addresses, k, function, chunk)
            futures[future] = k
        for future in as_completed(list(futures)):
            k = futures[future]
            results[k] = future.result()
            bar.advance(len(chunks[k]))

    def _submit(self, addresses: list[str], k: int, function: Callable[[T], R], chunk: list[T]) -> Any:
        return self.client.submit(
            run_chunk,
            function,
            chunk,
            pure=False,
            retries=self.retries,
            workers=[addresses[k % len(addresses)]] if addresses else None,
            allow_other_workers=True,
        )

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _single_thread_plugin() -> Any:
    """A Dask worker plugin: every (re)started worker runs single-threaded, with glibc's malloc
    keeping large arrays on its heap."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class SingleThread(WorkerPlugin):
        idempotent = True

        def setup(self, worker: Any) -> None:
            single_threaded()
            undo_malloc_tuning()

    return SingleThread()


def make_executor(spec: str | None, **options: Any) -> Executor:
    """An executor from a spec: ``serial``, ``processes[:N]``, ``dask-local[:N]``, ``dask://HOST:PORT``."""
    text = (spec or "serial").strip()
    kind, _, count = text.partition(":")
    if text.startswith("dask://"):
        return DaskExecutor("tcp://" + text[len("dask://") :], **options)
    workers: int | None = None
    if count:
        try:
            workers = int(count)
        except ValueError:
            workers = 0
        if workers < 1:
            raise ConfigError(f"executor {text!r}: worker count {count!r} is not a positive integer")
    if kind == "serial" and not count:
        return SerialExecutor(**options)
    if kind == "processes":
        return ProcessExecutor(workers, **options)
    if kind == "dask-local":
        return DaskExecutor(None, workers, **options)
    raise ConfigError(
        f"executor {text!r} is unknown (valid: serial, processes[:N], dask-local[:N], dask://HOST:PORT)"
    )
