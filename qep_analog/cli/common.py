"""What every subcommand shares: exit statuses, a one-line-error parser, argument parsing."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import NoReturn

from qep_analog import ConfigError

EXIT_BAD_INPUT = 2
EXIT_PRECONDITION = 3
EXIT_SOLVER = 4
#: a job bundle was written (or is incomplete) and waits for the lab's counts: run again with them
EXIT_PENDING = 5


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


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
