"""A noisy emulation reports its trajectories as they finish (both methods), and ``emulate --noise``
draws them on standard error unless --quiet."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli
from conftest import ROOT

from qep_analog.devices.profile import NoiseModel, read_profile
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.emulation.magnus import BLOCK
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule

MODEL = str(ROOT / "examples" / "models" / "rydberg_chain.yaml")
POINT = ["--theta", "h=4", "delta=3", "s=0.5", "J=1.5", "--beta", "0.1"]
#: quasi-static detuning noise (T2*), Markovian dephasing and amplitude jitter
NOISE = NoiseModel(0.0, 0.0, dephasing_time=4.0, markovian_dephasing_time=20.0, amplitude_jitter=0.05)


def pair() -> tuple[Schedule, QutipEmulator, QutipEmulator]:
    profile = dataclasses.replace(read_profile("fresnel-like", relaxed=True), noise=NOISE)
    recipe = dataclasses.replace(load_recipe("rydberg-linear"), duration=0.5)
    positions = np.array([[0.0, 0.0], [8.0, 0.0]])
    schedule = build_schedule(recipe, profile, RydbergControls(positions, rabi=6.0, detuning=2.0))
    return schedule, QutipEmulator(profile), QutipEmulator(profile, method="qutip")


def reported(emulator: QutipEmulator, schedule: Schedule, realisations: int) -> list[tuple[int, int]]:
    reports: list[tuple[int, int]] = []
    emulator.run(
        schedule, noise=True, seed=3, realisations=realisations,
        progress=lambda done, total: reports.append((done, total)),
    )  # fmt: skip
    return reports


def test_trajectories_are_reported_block_by_block() -> None:
    schedule, magnus, qutip = pair()
    realisations = 2 * BLOCK + 3
    assert reported(magnus, schedule, realisations) == [
        (BLOCK, realisations),
        (2 * BLOCK, realisations),
        (realisations, realisations),
    ]
    assert reported(qutip, schedule, 3) == [(1, 3), (2, 3), (3, 3)]
    # the report changes nothing: the same state as without it
    quiet = magnus.run(schedule, noise=True, seed=3, realisations=realisations).state
    loud = magnus.run(schedule, noise=True, seed=3, realisations=realisations, progress=print).state
    np.testing.assert_array_equal(quiet, loud)


def test_emulate_noise_draws_a_trajectory_bar_unless_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "chain.json"
    argv = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--model", MODEL, *POINT]
    assert run_cli(capsys, [*argv, "--out", str(out), "--duration", "0.5"])[0] == 0
    status, _, err = run_cli(capsys, ["emulate", str(out), "--noise", "detuning"])
    # (off a terminal the bars are drawn once, as they end)
    assert status == 0 and "noise" in err and "16/16" in err and "trajectories" in err
    status, stdout, err = run_cli(capsys, ["emulate", str(out), "--noise", "detuning", "--quiet"])
    assert status == 0 and err == "" and "fidelity" in stdout
