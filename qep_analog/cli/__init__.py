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
    EXIT_INTERRUPTED,
    EXIT_PENDING,
    EXIT_PRECONDITION,
    EXIT_SOLVER,
    Parser,
    deferred_warnings,
    flush_warnings,
    folded_warnings,
    one_line,
    warn,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_PENDING", "EXIT_PRECONDITION", "EXIT_SOLVER", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="qep-analog",
        description="Train and check analog quantum simulators with Quantum Equilibrium Propagation.",
        epilog="Exit status: 0 success, 2 bad input, 3 violated precondition (degenerate ground "
        "state), 4 solver did not converge, 5 a job bundle waits for the lab's counts, 130 interrupted "
        "(Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"qep-analog {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in (train, step, gradient, explore, device, counts, sequence, calibrate):
        module.register(commands)
    return parser


def _show_warning(message: Any, category: type[Warning], *rest: Any, **options: Any) -> None:
    """Every warning as one line: ours as their message, others with their kind (held until the
    command ends, see :func:`qep_analog.cli.common.warn`)."""
    warn(str(message) if issubclass(category, QEPWarning) else f"{category.__name__}: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("default", QEPWarning)  # the command line shows them, once each
        warnings.showwarning = _show_warning
        with deferred_warnings():
            return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command's status; a failure is one line on stderr, carrying the warnings before it."""
    try:
        status = int(args.handler(args))
    except BundlePending as exc:
        flush_warnings()
        print(f"qep-analog: waiting for the lab: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_PENDING
    except PreconditionError as exc:
        return _fail("precondition violated", exc, EXIT_PRECONDITION)
    except SolverError as exc:
        return _fail("solver failed", exc, EXIT_SOLVER)
    except QEPError as exc:
        return _fail("error", exc, EXIT_BAD_INPUT)
    except KeyboardInterrupt:  # Ctrl-C: one line, as every failure; what was stored stays stored
        flush_warnings()
        print(
            "qep-analog: interrupted (a run or calibration continues from its last checkpoint with "
            "--resume)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output stopped early (e.g. `| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    flush_warnings()
    return status


def _fail(kind: str, exc: Exception, status: int) -> int:
    print(f"qep-analog: {kind}: {one_line(str(exc))}{folded_warnings()}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
