"""The ``qep-analog`` command.

Exit status: 0 success, 2 bad input (one line on stderr, no traceback), 3 a violated precondition
of the method (e.g. a degenerate ground state), 4 a solver that did not converge, 5 a job bundle
waits for the lab's counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from qep_analog import (
    BundlePending,
    PreconditionError,
    QEPError,
    QEPWarning,
    SolverError,
    __version__,
)
from qep_analog.cli import calibrate, counts, device, explore, gradient, sequence, step, train
from qep_analog.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_PENDING,
    EXIT_PRECONDITION,
    EXIT_SOLVER,
    Parser,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_PENDING", "EXIT_PRECONDITION", "EXIT_SOLVER", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="qep-analog",
        description="Train and check analog quantum simulators with Quantum Equilibrium Propagation.",
        epilog="Exit status: 0 success, 2 bad input, 3 violated precondition (degenerate ground "
        "state), 4 solver did not converge, 5 a job bundle waits for the lab's counts.",
    )
    parser.add_argument("--version", action="version", version=f"qep-analog {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in (train, step, gradient, explore, device, counts, sequence, calibrate):
        module.register(commands)
    return parser


def _show_warning(message: Any, category: type[Warning], *rest: Any, **options: Any) -> None:
    """Our warnings as one line on stderr; others as Python prints them."""
    if issubclass(category, QEPWarning):
        print(f"qep-analog: warning: {message}", file=sys.stderr)
    else:
        _PYTHON_SHOWWARNING(message, category, *rest, **options)


_PYTHON_SHOWWARNING = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("default", QEPWarning)  # the command line shows them, once each
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args))
    except BundlePending as exc:
        print(f"qep-analog: waiting for the lab: {exc}", file=sys.stderr)
        return EXIT_PENDING
    except PreconditionError as exc:
        print(f"qep-analog: precondition violated: {exc}", file=sys.stderr)
        return EXIT_PRECONDITION
    except SolverError as exc:
        print(f"qep-analog: solver failed: {exc}", file=sys.stderr)
        return EXIT_SOLVER
    except QEPError as exc:
        print(f"qep-analog: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # the reader of our output stopped early (e.g. `| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
