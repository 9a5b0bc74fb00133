"""Routines that acquire in several backend calls report their progress within: through the runner
to the scan loops (ramp-duration scan, QEP gradient check), and the command line draws it on
standard error unless --quiet or --json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli

from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
from qep_analog.calibration.fakes.schedule_lab import FakeScheduleLab
from qep_analog.calibration.routines.ramp_duration_scan import RampDurationScan
from qep_analog.calibration.runcard import load_runcard
from qep_analog.calibration.runner import run_runcard
from qep_analog.devices.profile import read_profile
from qep_analog.measurement.readout import ReadoutErrors

PROFILE = read_profile("fresnel-like")
#: a QEP gradient check (free, +βε and −βε phases) and a one-call scan
RUNCARD = """\
schema: qep-runcard/1
name: progress
platform: rydberg
update: dry-run
routines:
  - routine: qep_gradient_check
    parameters: {transverse_rad_per_us: 1.0, coupling_rad_per_us: 1.25, fields_rad_per_us: 0.3,
                 beta_rad_per_us: 0.6, shots: 2000}
  - routine: readout
    parameters: {repeats: 4, shots: 100}
"""


def assert_monotone_to_done(reports: list[tuple[int, int]], parts: int) -> None:
    """``parts`` reports of one total, fractions strictly increasing, the last done = total."""
    assert len(reports) == parts and {total for _, total in reports} == {parts}
    fractions = [done / total for done, total in reports]
    assert np.all(np.diff(fractions) > 0) and fractions[0] > 0
    assert reports[-1] == (parts, parts)


def test_the_ramp_scan_reports_each_duration() -> None:
    routine = RampDurationScan()
    parameters = routine.parameters({"start_us": 0.5, "stop_us": 3.0, "points": 6, "shots": 50})
    reports: list[tuple[int, int]] = []

    def lab() -> FakeScheduleLab:
        return FakeScheduleLab(PROFILE, ReadoutErrors.none(4), 0, "ground")

    data = routine.acquire(parameters, lab(), PROFILE, lambda done, total: reports.append((done, total)))
    assert_monotone_to_done(reports, data.sweep.size)
    # one backend call per duration: the same counts as without a report (same seed)
    np.testing.assert_array_equal(routine.acquire(parameters, lab(), PROFILE).counts, data.counts)


def test_the_runner_passes_progress_to_the_gradient_check(tmp_path: Path) -> None:
    card = tmp_path / "progress.yaml"
    card.write_text(RUNCARD)
    lab = FakeRydbergLab.for_profile(PROFILE, 4, seed=0)
    reports: dict[str, list[tuple[int, int]]] = {}

    def scan(routine: str, done: int, total: int) -> None:
        reports.setdefault(routine, []).append((done, total))

    run_runcard(load_runcard(card), PROFILE, lab, tmp_path / "run", scan_progress=scan)
    assert list(reports) == ["qep_gradient_check"]  # readout is one call: nothing to report within
    assert_monotone_to_done(reports["qep_gradient_check"], 3)  # free, plus, minus


def test_the_bar_is_on_stderr_and_quiet_has_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = tmp_path / "progress.yaml"
    card.write_text(RUNCARD)
    argv = ["calibrate", str(card), "--device", "fresnel-like", "--backend", "fake-lab"]
    status, out, err = run_cli(capsys, [*argv, "--out", str(tmp_path / "a"), "--history", str(tmp_path)])
    # (off a terminal the bars are drawn once, as they end)
    assert status == 0 and "scan" in err and "1/1 done" in err and "━" not in out
    status, out, err = run_cli(
        capsys, [*argv, "--out", str(tmp_path / "b"), "--history", str(tmp_path), "--quiet"]
    )
    assert status == 0 and err == "" and "qep_gradient_check" in out
