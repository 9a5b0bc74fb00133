"""The command line run in process, for the tests."""

from __future__ import annotations

import pytest

from qep_analog.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """``qep-analog ARGV``: its exit status (argparse's exits included), standard output and error."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err
