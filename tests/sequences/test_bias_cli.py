"""The bias budget on the command line: ``sequence build --bias-fraction``, ``emulate`` (the emulated
gradient next to the exact one and the bound), the counts run's ``preparation`` and
``gradient-from-counts``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli

from qep_analog.backends.emulated_gradient import emulated_qep_gradient
from qep_analog.cli import EXIT_BAD_INPUT
from qep_analog.devices.profile import read_profile
from qep_analog.errors import MeasurementError
from qep_analog.measurement.counts_file import read_counts_run
from qep_analog.model.model_file import load_model, save_model
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.recipes import default_recipe, load_recipe

POINT = ["--theta", "h=3", "delta=1", "J=1", "--beta", "0.1"]


@pytest.fixture
def pair(tmp_path: Path) -> Path:
    """A two-atom Rydberg model file (drive, detuning, coupling; output Z0)."""
    model = QEPModel(
        2,
        {
            "h": pauli_sum([(1.0, "X0"), (1.0, "X1")]),
            "delta": pauli_sum([(1.0, "Z0"), (1.0, "Z1")]),
            "J": pauli_sum([(1.0, "Z0 Z1")]),
        },
        {"m": pauli_sum([(1.0, "Z0")])},
    )
    path = tmp_path / "pair.yaml"
    save_model(model, path)
    return path


def test_build_reports_the_budget_and_the_duration_for_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pair: Path
) -> None:
    out = tmp_path / "pair.json"
    argv = [
        "sequence",
        "build",
        "--device",
        "fresnel-like",
        "--model",
        str(pair),
        *POINT,
        "--out",
        str(out),
    ]
    status, stdout, _ = run_cli(capsys, [*argv, "--bias-fraction", "0.05"])
    assert status == 0 and "recipe 'rydberg-gap-quintic'" in stdout  # the default
    line = next(
        x
        for x in stdout.splitlines()
        if x.startswith("bias budget: gap_aware ramp with quintic ends (boundary order 2)")
    )
    assert "T·Δ_min" in line and "µs" in line
    budget = json.loads(out.read_text(encoding="utf-8"))["schedules"][0]["metadata"]["bias_budget"]
    assert budget["boundary_order"] == 2 and budget["bias_fraction"] == 0.05
    assert len(budget["bias"]) == 3 and all(b > 0 for b in budget["bias"])
    status, _, err = run_cli(capsys, [*argv, "--bias-fraction", "1.5"])
    assert status == EXIT_BAD_INPUT and "bias fraction 1.5 is outside (0, 1]" in err


def test_emulate_reports_the_gradient_with_its_bias_and_the_counts_carry_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pair: Path
) -> None:
    out = tmp_path / "pair.json"
    argv = [
        "sequence",
        "build",
        "--device",
        "fresnel-like",
        "--model",
        str(pair),
        *POINT,
        "--out",
        str(out),
    ]
    assert run_cli(capsys, argv)[0] == 0
    status, stdout, _ = run_cli(capsys, ["emulate", str(out), "--json", "--shots", "200"])
    assert status == 0
    gradient = json.loads(stdout)["gradient"]
    # the same step through the library: the same emulated and exact gradients
    profile = read_profile("fresnel-like")
    library = emulated_qep_gradient(
        load_model(pair), profile, load_recipe("rydberg-gap-quintic"), [], [3, 1, 1], [1.0], 0.1
    )
    np.testing.assert_allclose(gradient["exact"], library.exact, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gradient["emulated"], library.emulated, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gradient["bias"], library.bias, rtol=1e-6)
    measured = np.array(gradient["emulated"]) - np.array(gradient["exact"])
    np.testing.assert_allclose(gradient["measured_bias"], measured, rtol=1e-12, atol=1e-15)
    assert gradient["boundary_order"] == 2 and gradient["shape"] == "gap_aware"
    assert "recommended_duration_us" in gradient
    # the counts run records the preparation's bias; gradient-from-counts prints it by the error bars
    counts = tmp_path / "pair.counts"
    run = read_counts_run(counts)
    assert run.preparation is not None and run.preparation["boundary_order"] == 2
    assert list(run.preparation["bias"]) == ["h", "delta", "J"]
    assert run.preparation["duration"] == pytest.approx(load_recipe(default_recipe("rydberg")).duration)
    status, stdout, _ = run_cli(capsys, ["gradient-from-counts", str(counts)])
    assert status == 0
    header = next(x for x in stdout.splitlines() if x.startswith("parameter"))
    assert "std. error" in header and "prep. bias" in header and "measured" in header
    assert "boundary order 2" in stdout
    # text output: the gradient table and the budget line
    status, stdout, _ = run_cli(capsys, ["emulate", str(out), "--quiet", "--bias-fraction", "0.2"])
    assert status == 0 and "measured bias  bias bound" in stdout
    assert "bias budget: gap_aware ramp with quintic ends (boundary order 2)" in stdout
    assert "20 %" in stdout


def test_a_counts_run_with_a_bad_preparation_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pair: Path
) -> None:
    out = tmp_path / "pair.json"
    argv = [
        "sequence",
        "build",
        "--device",
        "fresnel-like",
        "--model",
        str(pair),
        *POINT,
        "--out",
        str(out),
    ]
    assert run_cli(capsys, argv)[0] == 0
    assert run_cli(capsys, ["emulate", str(out), "--quiet", "--shots", "20"])[0] == 0
    path = tmp_path / "pair.counts" / "run.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["preparation"]["bias"]["theta9"] = 1.0
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(MeasurementError, match=r"preparation\.bias names 'theta9', not a parameter"):
        read_counts_run(path.parent)
    document["preparation"]["bias"] = {"h": -1.0}
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(MeasurementError, match="bias"):
        read_counts_run(path.parent)
