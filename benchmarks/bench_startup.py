"""Start-up of the command line: ``qep-analog --help`` and ``qep-analog device list`` as whole
processes, for this tree and for an earlier commit in the same run (interleaved, so drift of a shared
machine cancels in the ratio). The earlier commit is checked out into a temporary git worktree and run
from source with ``PYTHONPATH``, like this tree.

    python benchmarks/bench_startup.py [--baseline e1fac23] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"--help": ["--help"], "device list": ["device", "list"]}


def run_once(source: Path, argv: list[str], cwd: Path) -> float:
    """Wall seconds of one ``python -m qep_analog.cli ARGV`` with ``source`` first on the path."""
    environment = {**os.environ, "PYTHONPATH": str(source)}
    code = "import sys; from qep_analog.cli import main; sys.exit(main(sys.argv[1:]))"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=cwd, env=environment, check=True, capture_output=True
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="e1fac23", help="git commit to compare with")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        baseline = Path(folder) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(baseline), args.baseline],
            check=True,
            capture_output=True,
        )
        try:
            # from a neutral folder: `python -c` puts the working directory first on the path
            cwd = Path(folder)
            print(f"{'command':<14} {'this tree (s)':>14} {args.baseline + ' (s)':>16} {'ratio':>7}")
            for label, argv in COMMANDS.items():
                for source in (ROOT, baseline):  # warm the file cache once
                    run_once(source, argv, cwd)
                ours, theirs, ratios = [], [], []
                for _ in range(args.runs):
                    a = run_once(ROOT, argv, cwd)
                    b = run_once(baseline, argv, cwd)
                    ours.append(a)
                    theirs.append(b)
                    ratios.append(a / b)
                print(
                    f"{label:<14} {statistics.median(ours):>14.3f} {statistics.median(theirs):>16.3f} "
                    f"{statistics.median(ratios):>7.2f}"
                )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)],
                check=True,
                capture_output=True,
            )


if __name__ == "__main__":
    main()
