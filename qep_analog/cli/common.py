"""What every subcommand shares: exit statuses, a one-line-error parser, argument parsing."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from qep_analog import ConfigError

EXIT_BAD_INPUT = 2
EXIT_PRECONDITION = 3
EXIT_SOLVER = 4
#: a job bundle was written (or is incomplete) and waits for the lab's counts: run again with them
EXIT_PENDING = 5
#: the user interrupted the command (Ctrl-C; the shell's 128 + SIGINT)
EXIT_INTERRUPTED = 130


def one_line(text: str) -> str:
    """``text`` on one line: a line break inside it (a value from a file, an argument) is shown as
    ``\\n``, so that every message the command prints is exactly one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {one_line(message)}\n")


#: warnings of the running command not yet printed (None: print each at once)
_pending: list[str] | None = None
#: the most warnings an error line carries along (the rest are counted)
FOLDED_WARNINGS = 2


def warn(message: str) -> None:
    """A warning of the command: one line on stderr when the command ends well; folded into the
    error line when it fails (so that a failed command prints exactly one line)."""
    text = one_line(message)
    if _pending is None:
        _print_warning(text)
    elif text not in _pending:
        _pending.append(text)


def _print_warning(text: str) -> None:
    print(f"qep-analog: warning: {text}", file=sys.stderr)


@contextmanager
def deferred_warnings() -> Iterator[None]:
    """Hold the warnings of the block until :func:`flush_warnings` or :func:`folded_warnings`; any
    still held at its end (after a traceback) are printed then."""
    global _pending
    _pending = []
    try:
        yield
    finally:
        flush_warnings()
        _pending = None


def flush_warnings() -> None:
    """Print the held warnings, one line each (the command ended well)."""
    for text in _pending or []:
        _print_warning(text)
    if _pending:
        _pending.clear()


def folded_warnings() -> str:
    """The held warnings as the end of an error line (the command failed), and forget them."""
    if not _pending:
        return ""
    held = list(_pending)
    _pending.clear()
    shown = "; ".join(held[:FOLDED_WARNINGS])
    more = f"; and {len(held) - FOLDED_WARNINGS} more" if len(held) > FOLDED_WARNINGS else ""
    return f" (after the warning{'s' if len(held) > 1 else ''}: {shown}{more})"


def assignments(items: Sequence[str] | None, what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"{what}: {item!r} is not NAME=VALUE")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{what}: value {value!r} of {name!r} is not a number") from None
        if not math.isfinite(number):
            raise ConfigError(f"{what}: value {value!r} of {name!r} is not finite")
        out[name] = number
    return out


#: Seeds are integers in [0, SEED_LIMIT) (numpy's seeds are non-negative; 32 bits are portable).
SEED_LIMIT = 2**32


def seed(text: str) -> int:
    """An argparse type: a seed, an integer in [0, 2**32) (a bad one is a one-line exit-2 error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not an integer") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"seed {value} is outside [0, 2**32)")
    return value


def result_file(value: str | None, option: str) -> str | None:
    """``value`` when it is a file (a finished run's result.json), else a one-line ConfigError
    naming ``option``; None stays None."""
    if value is not None and not Path(value).is_file():
        state = "is a folder" if Path(value).is_dir() else "no such file"
        raise ConfigError(f"{option}: {value}: {state}: give a finished run's result.json")
    return value


def positive_int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not an integer or 'exact'") from None
    if value < 1:
        raise ConfigError(f"{what}: {value} must be positive")
    return value


def add_calibration_options(parser: argparse.ArgumentParser) -> None:
    """``--nominal`` and ``--history DIR``: which calibration a command's device profile carries."""
    parser.add_argument(
        "--nominal", action="store_true", help="the profile file's values, without calibration records"
    )
    parser.add_argument(
        "--history",
        metavar="DIR",
        help="calibration history folder (default $QEP_ANALOG_HISTORY, else the per-user data folder)",
    )
