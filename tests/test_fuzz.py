"""The fuzz harness of issue 16: mutations of every shipped file through the commands that read them.

Each case (tests/fuzz_cases.py: classes, targets, the deterministic generation) writes its files into
``tmp_path/work``, runs one command there and checks the contract of the command line:

- exit 0, or exit 2, 3 or 4 with exactly one error line on stderr (``qep-analog: warning:`` lines of
  our warnings may come before it), no traceback, a message of bounded length;
- no hang (an alarm in process, a timeout in a subprocess) and no memory beyond 1 GiB (an address-space
  ceiling: 1 GiB more than the test process holds, or 1 GiB for a subprocess);
- nothing written outside the work folder (the case's folder, pytest's base folder, the user's
  calibration history) and the checkout unmodified (checked once the module's cases ran);
- no ``!!python`` tag executed (it would create a sentinel file).

The fast variant runs in the default suite, almost all in process; the slow one (``-m slow``) has seven
times as many cases, and more of them in subprocesses. One case:
``pytest tests/test_fuzz.py -m "slow or not slow" -k NAME``; the counts per class:
``python tests/fuzz_cases.py``.
"""

from __future__ import annotations

import os
import resource
import shlex
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest
import yaml
from cli_run import ROOT, ProcessTimeout, run_process
from fuzz_cases import (
    GENERATED,
    STOPPED_PROGRAM,
    Made,
    Stopped,
    Target,
    catalogue,
    install_stops,
    make_case,
    shipped_source,
    write_files,
)

from qep_analog.cli import main

#: the memory a case may take beyond what the test process holds (bytes)
MEMORY = 2**30
#: the seconds an in-process case may take (generous: a case takes milliseconds to a second)
IN_PROCESS_SECONDS = 60
#: the longest error line (the file's path, a value cut at 120 characters, the valid keys)
MAX_MESSAGE = 2000
FAST = catalogue(slow=False)
SLOW = catalogue(slow=True)


# -- fixtures -----------------------------------------------------------------------------------------


def _tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime in ns) of every file and folder under ``root``."""
    out: dict[str, tuple[int, int]] = {}
    if not root.exists():
        return out
    for folder, folders, files in os.walk(root):
        folders[:] = [f for f in folders if f not in skip and not f.endswith(".egg-info")]
        for entry in [*folders, *files]:
            path = Path(folder, entry)
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            out[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return out


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "qep-analog"


CHECKOUT_SKIP = (".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "build")


@pytest.fixture(scope="module", autouse=True)
def _checkout_unmodified() -> Iterator[None]:
    """The checkout and the user's data folder are the same after the module's cases as before."""
    before = _tree(ROOT, CHECKOUT_SKIP), _tree(_data_home())
    yield
    after = _tree(ROOT, CHECKOUT_SKIP), _tree(_data_home())
    for was, now, where in zip(before, after, (ROOT, _data_home()), strict=True):
        changed = sorted(k for k in was.keys() | now.keys() if was.get(k) != now.get(k))
        assert not changed, f"the fuzz cases changed {where}: {changed[:20]}"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Target], bytes]:
    """The text of a target's file: shipped, or generated once (schedule files, a history)."""
    made: dict[str, bytes] = {}

    def source(target: Target) -> bytes:
        if not target.source.startswith("generated:"):
            return shipped_source(target)
        if target.name not in made:
            made[target.name] = GENERATED[target.name](tmp_path_factory.mktemp(target.name))
        return made[target.name]

    return source


# -- running a case -----------------------------------------------------------------------------------


class CaseTimeout(BaseException):
    """An in-process case ran past :data:`IN_PROCESS_SECONDS` (a BaseException: no handler takes it)."""


def _virtual_memory() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/self/status")


@contextmanager
def _bounded(memory: int, seconds: float) -> Iterator[None]:
    """An address-space ceiling ``memory`` bytes above what the process holds, and an alarm."""

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout(f"no end within {seconds:g} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = _virtual_memory() + memory
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    previous = signal.signal(signal.SIGALRM, alarm)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, previous)


def _python_warning_filters() -> None:
    """The warning filters of a plain ``python`` run (pytest's would turn some into errors)."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)


def _in_process(
    made: Made, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int | str, str]:
    """(exit status, or "traceback"/"hang"/"memory"; standard error) of the case run in process."""
    monkeypatch.chdir(work)
    monkeypatch.setenv("QEP_ANALOG_HISTORY", str(work / "history"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if made.stopped:
        install_stops(monkeypatch.setattr)
    capsys.readouterr()
    status: int | str
    extra = printed = ""
    try:
        with _bounded(MEMORY, IN_PROCESS_SECONDS), warnings.catch_warnings(record=True) as caught:
            _python_warning_filters()
            try:
                status = main(made.argv)
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1 if exc.code else 0
            except Stopped:
                status = 0
        # what Python prints for warnings not ours (our own are one line, printed by the CLI), placed
        # before the error line, where a terminal shows them
        printed = "".join(
            warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught
        )
    except CaseTimeout as exc:
        status, extra = "hang", f"{exc}\n{traceback.format_exc(limit=-8)}"
    except MemoryError:
        status, extra = "memory", f"more than {MEMORY} bytes\n{traceback.format_exc(limit=-8)}"
    except Exception:
        status, extra = "traceback", traceback.format_exc(limit=-12)
    return status, printed + capsys.readouterr().err + extra


def _in_subprocess(made: Made, work: Path) -> tuple[int | str, str]:
    program = STOPPED_PROGRAM if made.stopped else ("-m", "qep_analog.cli")
    try:
        completed = run_process(
            [sys.executable, *program, *made.argv], cwd=work, memory=MEMORY, timeout=made.timeout
        )
    except ProcessTimeout as exc:
        return "hang", str(exc)
    status: int | str = completed.returncode
    if completed.returncode < 0:  # killed by a signal (SIGKILL: out of memory, SIGSEGV, ...)
        status = f"signal {-completed.returncode}"
    return status, completed.stderr


def check_outcome(name: str, made: Made, status: int | str, stderr: str) -> None:
    """Exit 0, or 2/3/4 and one error line; warnings of ours (one line each) allowed before it."""
    where = f"{name} [{made.note}]\n  qep-analog {shlex.join(made.argv)[:400]}\n  "
    tail = stderr[-3000:]
    assert isinstance(status, int), f"{where}{status}:\n{tail}"
    assert "Traceback" not in stderr, f"{where}a traceback:\n{tail}"
    assert status in (0, 2, 3, 4), f"{where}exit {status}:\n{tail}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    if status != 0:
        assert lines, f"{where}exit {status} without a message"
        *lines, message = lines
        assert message.startswith("qep-analog"), f"{where}an error line not from qep-analog:\n{tail}"
        assert len(message) <= MAX_MESSAGE, (
            f"{where}an error of {len(message)} characters:\n{message[:600]}"
        )
    others = [line for line in lines if not line.startswith("qep-analog: warning: ")]
    assert not others, f"{where}exit {status} with more than one line:\n{tail}"


def _entries(folder: Path) -> set[str]:
    return {entry.name for entry in folder.iterdir()}


def run_case(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: Callable[[Target], bytes],
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    sentinel = tmp_path / "executed"
    made = make_case(name, source, work, sentinel)
    write_files(made, work)
    base = tmp_path.parent
    around = _entries(base)
    if made.subprocess:
        status, stderr = _in_subprocess(made, work)
    else:
        status, stderr = _in_process(made, work, monkeypatch, capsys)
    check_outcome(name, made, status, stderr)
    assert not sentinel.exists(), f"{name} [{made.note}]: a YAML tag ran a command"
    assert _entries(tmp_path) == {"work"}, f"{name} [{made.note}]: wrote {_entries(tmp_path) - {'work'}}"
    assert _entries(base) == around, f"{name} [{made.note}]: wrote {_entries(base) ^ around} into {base}"


@pytest.mark.parametrize("name", FAST)
def test_fuzz(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sources: Callable[[Target], bytes],
) -> None:
    run_case(name, tmp_path, monkeypatch, capsys, sources)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_fuzz_long(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sources: Callable[[Target], bytes],
) -> None:
    run_case(name, tmp_path, monkeypatch, capsys, sources)


def test_catalogue_sizes() -> None:
    """The issue asks for at least 200 fast and 2000 slow cases, over every class."""
    assert len(FAST) >= 200 and len(SLOW) >= 2000
    assert len(set(FAST)) == len(FAST) and len(set(SLOW)) == len(SLOW) and not set(FAST) & set(SLOW)
    for names in (FAST, SLOW):
        assert {name.split("-", 1)[0] for name in names} == {
            "structure", "types", "numbers", "tags", "aliases", "nesting", "qubits", "sizes", "special",
        }  # fmt: skip


def test_the_checks_catch_what_they_should(tmp_path: Path) -> None:
    """The outcome check refuses a traceback, a hang, exit 1, two lines, a long line, a foreign warning;
    the in-process ceiling stops an allocation of 2 GiB; an unsafe YAML load of a tag case runs it."""
    made = Made(argv=["gradient", "model.yaml"], note="check")
    error = "qep-analog: error: model.yaml: n_qubits = 'x' is not an integer\n"
    check_outcome("ok", made, 2, "qep-analog: warning: stale calibration\n" + error)
    check_outcome("ok", made, 0, "qep-analog: warning: stale calibration\n")
    bad = [
        ("traceback", "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n"),
        ("hang", "did not end within 60 s"),
        (1, error),
        (2, error + error),
        (2, "qep-analog: error: " + "x" * MAX_MESSAGE + "\n"),
        (2, ""),
        (0, "model.py:3: RuntimeWarning: divide by zero\n  x = 1 / y\n"),
    ]
    for status, stderr in bad:
        with pytest.raises(AssertionError):
            check_outcome("bad", made, status, stderr)
    with pytest.raises(MemoryError), _bounded(MEMORY, 60):
        bytearray(2 * MEMORY)
    sentinel = tmp_path / "executed"
    text = f'a: !!python/object/apply:os.system ["touch {sentinel}"]\n'
    yaml.unsafe_load(text)  # (what the harness's sentinel would see if a reader loaded unsafely)
    assert sentinel.exists()
