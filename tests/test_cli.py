"""The qep-analog command: gradient and train, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qep_analog.cli import EXIT_BAD_INPUT, EXIT_PRECONDITION, main

MODEL = """\
schema: qep-model/1
n_qubits: 3
fixed:
  - [-1.0, "Z0 Z1"]
  - [-0.7, "X0"]
  - [-0.5, "X1"]
  - [0.3, "Z2"]
inputs:
  g: [[-1.0, "X2"]]
trainable:
  a: [[1.0, "Z1 Z2"]]
  b: [[0.5, "X1"], [0.2, "Y0 Y1"]]
outputs:
  m: [[1.0, "Z0"]]
  n: [[1.0, "X2 Z1"]]
defaults: {g: 0.0, a: 0.0, b: 0.0}
"""

DEGENERATE = """\
schema: qep-model/1
n_qubits: 3
fixed: [[-1, "Z0 Z1"]]
trainable:
  a: [[1, "X2"]]
outputs:
  m: [[1, "Z2"]]
"""

EXPERIMENT = """\
schema: qep-experiment/1
name: tiny
task: phase_sensor
model:
  n_chain: 3
training:
  steps: 50
  batch_size: 4
  shots: 10
  seed: 2
  checkpoint_every: 2
  penalty: {strength: 0.02, threshold: 0.1}
evaluation:
  test_size: 10
  every: 2
"""

POINT = ["--x", "g=0.4", "--theta", "a=0.3", "b=-0.2", "--error-signal", "m=1", "n=-0.5"]


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(MODEL, encoding="utf-8")
    return path


@pytest.fixture
def experiment_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(EXPERIMENT, encoding="utf-8")
    return path


def run_main(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``main(argv)`` (argparse errors exit via SystemExit)."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code) if exc.code is not None else 0
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, err: str, expected_status: int = EXIT_BAD_INPUT) -> None:
    assert status == expected_status
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("qep-analog")


def executable() -> str:
    candidate = Path(sys.executable).parent / "qep-analog"
    found = str(candidate) if candidate.exists() else shutil.which("qep-analog")
    if found is None:
        pytest.fail("the qep-analog executable is not installed")
    return found


# -- gradient --------------------------------------------------------------------------------------


def test_gradient_json_compare(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    status, out, err = run_main(
        capsys, ["gradient", str(model_file), "--json", "--compare", "exact,finite-difference", *POINT]
    )
    assert status == 0, err
    result = json.loads(out)
    assert set(result) == {"parameters", "qep", "exact", "finite_difference", "energy", "gap", "outputs"}
    assert result["parameters"] == ["a", "b"]
    assert set(result["outputs"]) == {"m", "n"}
    qep, exact, fd = (np.array(result[k]) for k in ("qep", "exact", "finite_difference"))
    assert np.abs(exact).max() > 0.05  # a non-trivial gradient
    np.testing.assert_allclose(qep, exact, rtol=0, atol=1e-5)
    np.testing.assert_allclose(fd, exact, rtol=0, atol=1e-5)
    assert result["gap"] > 0.1
    assert -1.0 <= result["outputs"]["m"] <= 1.0


def test_gradient_default_point(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    """Defaults: x = 0, theta = 0, eps = 1; the result depends on the point given."""
    status, out, _ = run_main(capsys, ["gradient", str(model_file), "--json", "--compare", "exact"])
    assert status == 0
    default = json.loads(out)
    # a smaller gap at this point: the O(beta^2) bias of beta = 1e-3 is about 1.5e-5 here
    np.testing.assert_allclose(default["qep"], default["exact"], rtol=0, atol=1e-4)
    _, out, _ = run_main(capsys, ["gradient", str(model_file), "--json", *POINT])
    moved = json.loads(out)
    assert abs(moved["energy"] - default["energy"]) > 1e-3


def test_gradient_only_requested_methods(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    status, out, _ = run_main(capsys, ["gradient", str(model_file), "--json", "--compare", "exact"])
    assert status == 0
    result = json.loads(out)
    assert "exact" in result and "finite_difference" not in result
    status, out, _ = run_main(capsys, ["gradient", str(model_file), "--json"])
    assert status == 0
    result = json.loads(out)
    assert "exact" not in result and "finite_difference" not in result
    assert "qep" in result


def test_gradient_temperature(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    status, out, err = run_main(
        capsys,
        ["gradient", str(model_file), "--json", "--temperature", "0.5", "--compare", "exact", *POINT],
    )
    assert status == 0, err
    result = json.loads(out)
    assert result["temperature"] == 0.5
    assert "gap" not in result
    np.testing.assert_allclose(result["qep"], result["exact"], rtol=0, atol=1e-5)
    _, out, _ = run_main(capsys, ["gradient", str(model_file), "--json", *POINT])
    ground = json.loads(out)
    assert not np.allclose(result["qep"], ground["qep"], atol=1e-3)


def test_gradient_table_output(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    status, out, _ = run_main(capsys, ["gradient", str(model_file), "--compare", "exact", *POINT])
    assert status == 0
    assert "ground energy E0" in out and "gap" in out
    assert "<m> =" in out and "<n> =" in out
    header = next(line for line in out.splitlines() if line.startswith("parameter"))
    assert "qep" in header and "exact" in header and "finite_difference" not in header
    assert any(line.startswith("a ") for line in out.splitlines())


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--theta", "zz=1"], "'zz'"),
        (["--x", "g"], "NAME=VALUE"),
        (["--x", "g=abc"], "not a number"),
        (["--x", "g=inf"], "not finite"),
        (["--error-signal", "q=1"], "'q'"),
        (["--compare", "exact,bogus"], "'bogus'"),
        (["--temperature", "0"], "--temperature"),
        (["--beta", "0"], "beta"),
        (["--scheme", "both"], "--scheme"),
        (["--beta", "x"], "--beta"),
    ],
)
def test_gradient_bad_arguments(
    capsys: pytest.CaptureFixture[str], model_file: Path, arguments: list[str], fragment: str
) -> None:
    status, out, err = run_main(capsys, ["gradient", str(model_file), *arguments])
    assert_one_line_error(status, err)
    assert fragment in err
    assert out == ""


def test_gradient_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run_main(capsys, ["gradient", str(tmp_path / "absent.yaml")])
    assert_one_line_error(status, err)
    assert "no such file" in err


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (MODEL.replace("qep-model/1", "qep-model/9"), "schema"),
        (MODEL.replace('"Z0"]]', '"Q0"]]'), "outputs"),
        (MODEL.replace("n_qubits: 3", "n_qubits: 0"), "n_qubits"),
        (MODEL.replace("  a: [[1.0", "  a: [[one"), "coefficient"),
        (MODEL + "extra: 1\n", "'extra'"),
        (MODEL.replace("fixed:\n", "fixed: [\n"), "invalid YAML"),
    ],
)
def test_gradient_bad_model_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    status, _, err = run_main(capsys, ["gradient", str(path)])
    assert_one_line_error(status, err)
    assert fragment in err


@pytest.mark.parametrize("theta", ["a=0", "a=1"])
def test_gradient_degenerate_ground_state(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, theta: str
) -> None:
    """-Z0 Z1 has the two ground states |00> and |11> whatever a X2 does: QEP is undefined."""
    path = tmp_path / "degenerate.yaml"
    path.write_text(DEGENERATE, encoding="utf-8")
    status, out, err = run_main(capsys, ["gradient", str(path), "--theta", theta])
    assert_one_line_error(status, err, EXIT_PRECONDITION)
    assert "degenerate" in err
    assert out == ""


def test_gradient_precondition_exit_status(
    capsys: pytest.CaptureFixture[str], model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exit-3 path itself, with the solver made to report a zero gap."""
    from qep_analog.solvers.exact import ExactSolver

    monkeypatch.setattr(ExactSolver, "_gaps", lambda self, d, c, s, e: np.zeros(len(e)))
    status, _, err = run_main(capsys, ["gradient", str(model_file)])
    assert_one_line_error(status, err, EXIT_PRECONDITION)
    assert "precondition" in err and "degenerate" in err


def test_gradient_small_gap_warning(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    status, out, err = run_main(capsys, ["gradient", str(model_file), "--json", "--beta", "10"])
    assert status == 0
    assert "warning" in err and "gap" in err
    json.loads(out)


def test_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(capsys, [])
    assert_one_line_error(status, err)


def test_gradient_subprocess(model_file: Path) -> None:
    completed = subprocess.run(
        [executable(), "gradient", str(model_file), "--json", "--compare", "exact", *POINT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    np.testing.assert_allclose(result["qep"], result["exact"], rtol=0, atol=1e-5)


def test_gradient_subprocess_bad_input(tmp_path: Path) -> None:
    completed = subprocess.run(
        [executable(), "gradient", str(tmp_path / "absent.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


# -- train ----------------------------------------------------------------------------------------


def test_train_writes_run_files(
    capsys: pytest.CaptureFixture[str], experiment_file: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    status, out, err = run_main(
        capsys, ["train", str(experiment_file), "--steps", "3", "--output", str(output), "--quiet"]
    )
    assert status == 0, err
    for name in (
        "metrics.jsonl",
        "checkpoint.json",
        "result.json",
        "training_curve.png",
        "phase_diagram.png",
    ):
        assert (output / name).stat().st_size > 0, name
    for name in ("training_curve.png", "phase_diagram.png"):
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()[1:]]
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    assert all("penalty" in r for r in records[1:])
    result = json.loads((output / "result.json").read_text())
    assert result["schema"] == "qep-run/1"
    assert result["steps"] == 3
    assert result["grid"]["points"] == 210
    assert 0.0 <= result["grid"]["max_choice_accuracy"] <= 1.0
    assert result["grid"]["min_gap"] > 0 and result["grid"]["degenerate_points"] == 0
    assert out == ""  # --quiet


def test_train_json_and_resume(
    capsys: pytest.CaptureFixture[str], experiment_file: Path, tmp_path: Path
) -> None:
    """--steps 2 then --resume --steps 4 ends where an uninterrupted 4-step run ends."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    base = ["train", str(experiment_file), "--quiet"]
    status, _, _ = run_main(capsys, [*base, "--steps", "4", "--output", str(straight)])
    assert status == 0
    status, _, _ = run_main(capsys, [*base, "--steps", "2", "--output", str(resumed)])
    assert status == 0
    status, out, _ = run_main(
        capsys, [*base, "--steps", "4", "--output", str(resumed), "--resume", "--json"]
    )
    assert status == 0
    report = json.loads(out)
    assert report["final"]["step"] == 4
    expected = json.loads((straight / "result.json").read_text())["parameters"]
    np.testing.assert_allclose(list(report["parameters"].values()), list(expected.values()), atol=1e-12)
    lines = (resumed / "metrics.jsonl").read_text().splitlines()[1:]
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == [0, 1, 2, 3, 4]


def test_train_json_stdout_is_only_json(
    capsys: pytest.CaptureFixture[str], experiment_file: Path, tmp_path: Path
) -> None:
    """``train --json`` without --quiet: stdout must still be one JSON document (for pipes)."""
    status, out, _ = run_main(
        capsys, ["train", str(experiment_file), "--steps", "1", "--output", str(tmp_path / "run"), "--json"]
    )
    assert status == 0
    assert json.loads(out)["final"]["step"] == 1


def test_train_overrides(capsys: pytest.CaptureFixture[str], experiment_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "run"
    status, _, err = run_main(
        capsys,
        [
            "train", str(experiment_file), "--steps", "1", "--seed", "9", "--shots", "exact",
            "--estimator", "exact", "--output", str(output), "--quiet",
        ],
    )  # fmt: skip
    assert status == 0, err
    config = json.loads((output / "result.json").read_text())["config"]
    assert (config["steps"], config["seed"], config["shots"], config["estimator"]) == (1, 9, None, "exact")


def test_train_summary(capsys: pytest.CaptureFixture[str], experiment_file: Path, tmp_path: Path) -> None:
    status, out, _ = run_main(
        capsys, ["train", str(experiment_file), "--steps", "1", "--output", str(tmp_path / "run")]
    )
    assert status == 0
    assert "tiny: step 1" in out and "grid max-choice" in out


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--shots", "0"], "--shots"),
        (["--shots", "many"], "--shots"),
        (["--steps", "0"], "steps"),
        (["--steps", "x"], "--steps"),
        (["--estimator", "guess"], "--estimator"),
        (["--device", "fresnel-lik"], "--device: device 'fresnel-lik': not a known name"),
        (["--init", "no/such/result.json"], "--init: no/such/result.json: no such file"),
        (["--init", "."], "--init: .: is a folder: give a finished run's result.json"),
    ],
)
def test_train_bad_arguments(
    capsys: pytest.CaptureFixture[str],
    experiment_file: Path,
    tmp_path: Path,
    arguments: list[str],
    fragment: str,
) -> None:
    status, _, err = run_main(
        capsys, ["train", str(experiment_file), *arguments, "--output", str(tmp_path / "run"), "--quiet"]
    )
    assert_one_line_error(status, err)
    assert fragment in err
    assert not (tmp_path / "run" / "result.json").exists()


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("  n_chain: 3\n", "  n_chain: 3\n  colour: red\n", "'colour'"),
        ("schema: qep-experiment/1", "schema: qep-experiment/0", "schema"),
        ("  steps: 50\n", "  steps: 50\n  steps: 60\n", "duplicate key"),
        ("  n_chain: 3\n", "  n_chain: [3\n", "invalid YAML"),
    ],
)
def test_train_bad_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(EXPERIMENT.replace(old, new), encoding="utf-8")
    status, _, err = run_main(capsys, ["train", str(path), "--output", str(tmp_path / "run"), "--quiet"])
    assert_one_line_error(status, err)
    assert fragment in err
    assert "bad.yaml" in err


def test_train_missing_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run_main(capsys, ["train", str(tmp_path / "absent.yaml")])
    assert_one_line_error(status, err)


def test_train_resume_of_another_seed(
    capsys: pytest.CaptureFixture[str], experiment_file: Path, tmp_path: Path
) -> None:
    output = str(tmp_path / "run")
    status, _, _ = run_main(
        capsys, ["train", str(experiment_file), "--steps", "2", "--output", output, "--quiet"]
    )
    assert status == 0
    status, _, err = run_main(
        capsys,
        [
            "train",
            str(experiment_file),
            "--steps",
            "4",
            "--seed",
            "3",
            "--output",
            output,
            "--resume",
            "--quiet",
        ],
    )
    assert_one_line_error(status, err)
    assert "seed" in err


def test_train_subprocess_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(EXPERIMENT.replace("task: phase_sensor", "task: sorting"), encoding="utf-8")
    completed = subprocess.run(
        [executable(), "train", str(path), "--output", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines() == [
        line for line in completed.stderr.strip().splitlines() if "'sorting'" in line
    ]
    assert len(completed.stderr.strip().splitlines()) == 1


def test_repeated_options_accumulate(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    """``--theta a=0.3 --theta b=-0.2`` is the same as ``--theta a=0.3 b=-0.2``."""
    joined = run_main(capsys, ["gradient", str(model_file), *POINT, "--json"])
    split = ["--x", "g=0.4", "--theta", "a=0.3", "--theta", "b=-0.2", "--error-signal", "m=1"]
    split += ["--error-signal", "n=-0.5"]
    repeated = run_main(capsys, ["gradient", str(model_file), *split, "--json"])
    assert joined[0] == repeated[0] == 0
    assert json.loads(joined[1]) == json.loads(repeated[1])


def test_binary_model_file_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    status, _, err = run_main(capsys, ["gradient", str(path)])
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "cannot be read" in err


def test_table_header_lines_up_with_rows(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    status, out, _ = run_main(capsys, ["gradient", str(model_file), *POINT])
    assert status == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("parameter"))
    assert len(lines[header]) == len(lines[header + 1])


def test_reciprocity_option(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    status, out, _ = run_main(
        capsys, ["gradient", str(model_file), *POINT, "--reciprocity", "a:m", "b:n", "--json"]
    )
    assert status == 0
    rows = json.loads(out)["reciprocity"]
    assert [(r["parameter"], r["output"]) for r in rows] == [("a", "m"), ("b", "n")]
    for row in rows:
        assert abs(row["d_output_d_theta"] - row["d_generator_d_nu"]) < 1e-8
    assert max(abs(r["d_output_d_theta"]) for r in rows) > 1e-3
    status, _, err = run_main(capsys, ["gradient", str(model_file), *POINT, "--reciprocity", "a"])
    assert status == 2 and "PARAMETER:OUTPUT" in err and len(err.strip().splitlines()) == 1


def test_reciprocity_pairs_are_checked_before_solving(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A bad pair is bad input (exit 2) even where the solve would fail (degenerate, exit 3)."""
    path = tmp_path / "degenerate.yaml"
    path.write_text(DEGENERATE, encoding="utf-8")
    for pair in ("a", "zz:m", "a:zz"):
        status, _, err = run_main(capsys, ["gradient", str(path), "--reciprocity", pair])
        assert status == 2, (pair, err)
        assert len(err.strip().splitlines()) == 1


# -- explore --------------------------------------------------------------------------------------

EXPLORE = """\
schema: qep-explore/1
name: sens
task: sensitivity
starts:
  - [-1.5, -0.2, -1.5]
  - [1.0, -0.5, 0.3]
iterations: 11
diagram: {points: [5, 4]}
"""


@pytest.fixture
def explore_file(tmp_path: Path) -> Path:
    path = tmp_path / "sens.yaml"
    path.write_text(EXPLORE, encoding="utf-8")
    return path


def test_explore_writes_run_files(
    capsys: pytest.CaptureFixture[str], explore_file: Path, tmp_path: Path
) -> None:
    """11 iterations (k = 0..10) reproduce the paper's slopes after 10 iterations within 1 %."""
    output = tmp_path / "run"
    status, out, err = run_main(capsys, ["explore", str(explore_file), "--output", str(output), "--quiet"])
    assert status == 0, err
    assert out == ""
    lines = (output / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["schema"] == "qep-explore-metrics/1"
    records = [json.loads(line) for line in lines[1:]]
    assert [(r["start"], r["iteration"]) for r in records] == [(s, k) for s in (0, 1) for k in range(11)]
    assert {"theta_zz", "g1", "g2", "slope", "gradient", "gap", "x0x4"} <= set(records[0])
    result = json.loads((output / "result.json").read_text())
    assert result["schema"] == "qep-explore-run/1" and result["task"] == "sensitivity"
    assert result["config"]["iterations"] == 11
    for run, (start, slope_10) in zip(
        result["runs"], [([-1.5, -0.2, -1.5], 1.30), ([1.0, -0.5, 0.3], 1.116)], strict=True
    ):
        assert run["start"] == start and run["iterations"] == 11
        assert run["at_step_10"] == run["final"] and run["final"]["iteration"] == 10
        assert run["final"]["slope"] == pytest.approx(slope_10, rel=0.01)
        assert run["best"]["slope"] == max(run["trajectory"]["slope"])
        assert len(run["trajectory"]["parameters"]) == 11
    assert result["diagram"]["theta_x"][2] == 5 and result["diagram"]["theta_zz"][2] == 4
    for name in ("phase_diagram.png", "objective.png"):
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in output.glob(".*")] == [".lock"]  # no temporary files left


def test_explore_phase_json_and_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "phase.yaml"
    path.write_text(
        EXPLORE.replace("task: sensitivity", "task: phase_exploration").replace(
            "  - [-1.5, -0.2, -1.5]\n  - [1.0, -0.5, 0.3]\n", "  - [-0.1, 0.4]\n  - [0.2, 0.9]\n"
        ),
        encoding="utf-8",
    )
    status, out, _ = run_main(capsys, ["explore", str(path), "--output", str(tmp_path / "a"), "--json"])
    assert status == 0
    report = json.loads(out)  # stdout is only the JSON document
    assert report["schema"] == "qep-explore-run/1"
    costs = [run["at_step_10"]["cost"] for run in report["runs"]]
    assert costs == pytest.approx([-0.94, -0.88], rel=0.01)
    status, out, _ = run_main(
        capsys, ["explore", str(path), "--output", str(tmp_path / "b"), "--iterations", "3"]
    )
    assert status == 0
    assert "start (-0.1, 0.4): cost k=0 -0.0087" in out and "final (k=2)" in out and "k=10 -" in out
    assert json.loads((tmp_path / "b" / "result.json").read_text())["runs"][0]["at_step_10"] is None


def test_explore_boundary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "boundary.yaml"
    path.write_text(
        "schema: qep-explore/1\ntask: boundary\nstarts: [1.0]\niterations: 40\n"
        "boundary: {theta_zz: [1.0, 1.2], separation: 0.1, tolerance: 0.002}\n"
        "diagram: {points: [4, 3]}\n",
        encoding="utf-8",
    )
    output = tmp_path / "run"
    status, out, err = run_main(capsys, ["explore", str(path), "--output", str(output)])
    assert status == 0, err
    result = json.loads((output / "result.json").read_text())
    (branch,) = result["runs"]
    assert branch["converged"] and [p["theta_zz"] for p in branch["points"]] == [1.0, 1.2]
    assert branch["points"][0]["center"] == pytest.approx(1.036, abs=0.015)  # dense argmax 1.0359
    assert (output / "boundary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()[1:]]
    assert len(records) == branch["iterations"] and {"center", "slope", "branch"} <= set(records[0])
    assert "g_c" in out and "converged" in out


@pytest.mark.parametrize(
    ("old", "new", "arguments", "fragment"),
    [
        ("iterations: 11", "iterations: 11\ncolour: red", [], "'colour'"),
        ("task: sensitivity", "task: sorting", [], "'sorting'"),
        ("  - [1.0, -0.5, 0.3]\n", "  - [1.0, 0.3, 0.3]\n", [], "g1 != g2"),
        ("iterations: 11", "iterations: 11\niterations: 12", [], "duplicate key"),
        ("", "", ["--iterations", "0"], "--iterations"),
        ("", "", ["--iterations", "many"], "--iterations"),
    ],
)
def test_explore_bad_input(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    old: str,
    new: str,
    arguments: list[str],
    fragment: str,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(EXPLORE.replace(old, new) if old else EXPLORE, encoding="utf-8")
    output = tmp_path / "run"
    status, _, err = run_main(
        capsys, ["explore", str(path), *arguments, "--output", str(output), "--quiet"]
    )
    assert_one_line_error(status, err)
    assert fragment in err
    assert not output.exists()


def test_explore_missing_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run_main(capsys, ["explore", str(tmp_path / "absent.yaml")])
    assert_one_line_error(status, err)
    assert "no such file" in err


def test_explore_subprocess_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(EXPLORE.replace("iterations: 11", "iterations: -3"), encoding="utf-8")
    completed = subprocess.run(
        [executable(), "explore", str(path), "--output", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines() == [
        "qep-analog: error: " + completed.stderr.split("error: ", 1)[1].strip()
    ]
    assert "iterations = -3" in completed.stderr


def test_explore_checks_its_devices_before_it_computes(
    capsys: pytest.CaptureFixture[str], explore_file: Path, tmp_path: Path
) -> None:
    """An unknown device in ``devices:`` is refused before any iteration: no folder, no files."""
    explore_file.write_text(EXPLORE + "devices: [fresnel-like, nowhere-like]\n", encoding="utf-8")
    output = tmp_path / "run"
    status, _, err = run_main(capsys, ["explore", str(explore_file), "--output", str(output), "--quiet"])
    assert_one_line_error(status, err)
    assert "'nowhere-like'" in err
    assert not output.exists()


def test_explore_refuses_a_folder_with_a_run_unless_overwrite(
    capsys: pytest.CaptureFixture[str], explore_file: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    base = ["explore", str(explore_file), "--output", str(output), "--quiet", "--iterations", "2"]
    assert run_main(capsys, base)[0] == 0
    result = (output / "result.json").read_bytes()
    status, _, err = run_main(capsys, [*base[:-1], "3"])
    assert_one_line_error(status, err)
    assert f"{output}: already holds a run (result.json, metrics.jsonl); pass --overwrite" in err
    assert (output / "result.json").read_bytes() == result  # nothing of the first run is gone
    assert run_main(capsys, [*base[:-1], "3", "--overwrite"])[0] == 0
    assert json.loads((output / "result.json").read_text())["config"]["iterations"] == 3


def test_explore_refuses_a_folder_another_process_writes(
    capsys: pytest.CaptureFixture[str], explore_file: Path, tmp_path: Path
) -> None:
    from qep_analog.storage import folder_lock

    output = tmp_path / "run"
    with folder_lock(output):  # as another exploration writing into the folder holds it
        status, _, err = run_main(capsys, ["explore", str(explore_file), "--output", str(output)])
    assert_one_line_error(status, err)
    assert f"exploration folder {output}: another process is writing it" in err
    assert not output.exists()  # the holder created it and left it empty


def test_explore_reruns_over_what_a_killed_exploration_left(
    capsys: pytest.CaptureFixture[str], explore_file: Path, tmp_path: Path
) -> None:
    """An exploration killed while it wrote its files leaves its metrics without a result: a rerun
    writes them again; a training's metrics alone are a run, kept unless --overwrite."""
    output = tmp_path / "run"
    base = ["explore", str(explore_file), "--output", str(output), "--quiet", "--iterations", "2"]
    output.mkdir()
    (output / "metrics.jsonl").write_text('{"schema": "qep-explore-metrics/1"}\n{"start": 0}\n')
    assert run_main(capsys, base)[0] == 0
    assert len((output / "metrics.jsonl").read_text().splitlines()) == 1 + 2 * 2
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "metrics.jsonl").write_text('{"step": 0, "loss": 0.5}\n')
    status, _, err = run_main(capsys, [*base[:3], str(trained), *base[4:]])
    assert_one_line_error(status, err)
    assert "already holds a run (metrics.jsonl)" in err
    assert (trained / "metrics.jsonl").read_text() == '{"step": 0, "loss": 0.5}\n'


def test_train_noise_names_its_sources(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = str(Path(__file__).resolve().parents[1] / "examples" / "rydberg_sensor.yaml")
    argv = ["train", config, "--noise", "detuning,doppler", "--output", str(tmp_path / "run")]
    status, _, err = run_main(capsys, argv)
    assert status == EXIT_BAD_INPUT and err.count("\n") == 1
    assert "--noise: noise = 'detuning,doppler' names an unknown source 'doppler' (known: detuning" in err


def test_module_entry_point(tmp_path: Path) -> None:
    """``python -m qep_analog.cli`` is the same command as the ``qep-analog`` script."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(
        [sys.executable, "-m", "qep_analog.cli", "--version"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert completed.returncode == 0 and completed.stdout.startswith("qep-analog "), completed.stderr


def test_train_refuses_a_folder_with_a_run_unless_overwrite(
    capsys: pytest.CaptureFixture[str], experiment_file: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    base = ["train", str(experiment_file), "--quiet", "--steps", "2", "--output", str(run_dir)]
    assert run_main(capsys, base)[0] == 0
    result = (run_dir / "result.json").read_bytes()
    status, _, err = run_main(capsys, [*base, "--seed", "5"])
    assert_one_line_error(status, err)
    assert "already holds a run" in err and "--overwrite" in err
    assert (run_dir / "result.json").read_bytes() == result  # nothing of the first run is gone
    assert run_main(capsys, [*base, "--seed", "5", "--overwrite"])[0] == 0
    assert json.loads((run_dir / "result.json").read_text())["seed"] == 5
    status, _, err = run_main(capsys, [*base, "--resume", "--overwrite"])
    assert_one_line_error(status, err)


LINE_BREAK = "a\nb.yaml"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", LINE_BREAK],
        ["gradient", LINE_BREAK],
        ["explore", LINE_BREAK],
        ["device", "validate", LINE_BREAK],
        ["emulate", LINE_BREAK],
        ["sequence", "plot", LINE_BREAK],
        ["gradient-from-counts", LINE_BREAK],
        ["calibrate", "report", LINE_BREAK],
        ["calibrate", "rydberg-basic", "--device", LINE_BREAK, "--backend", "fake-lab", "--out", "c"],
    ],
)
def test_a_line_break_in_an_argument_stays_inside_the_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a\\nb.yaml" in err, err


def test_a_warning_before_an_error_is_carried_in_the_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QEP_ANALOG_PATH", str(tmp_path / "nowhere"))
    assert main(["device", "show", "no-such-device"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qep-analog: error: device 'no-such-device'"), err
    assert f"(after the warning: $QEP_ANALOG_PATH: {tmp_path / 'nowhere'} is not a folder" in err
    # a command that ends well prints its warnings, one line each
    assert main(["device", "show", "fresnel-like"]) == 0
    err = capsys.readouterr().err
    assert (
        err
        == f"qep-analog: warning: $QEP_ANALOG_PATH: {tmp_path / 'nowhere'} is not a folder; it is skipped\n"
    )


def test_other_warnings_are_one_line_too(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    """A warning of a library (numpy's RuntimeWarning here) is one line with its kind, not Python's
    two (message and source line)."""
    from qep_analog.cli import _show_warning
    from qep_analog.cli.common import deferred_warnings

    with deferred_warnings():
        _show_warning(RuntimeWarning("overflow encountered in divide"), RuntimeWarning, "x.py", 1)
    assert (
        capsys.readouterr().err == "qep-analog: warning: RuntimeWarning: overflow encountered in divide\n"
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny experiment file and a 2-step run of it (copy the run before damaging it)."""
    folder = tmp_path_factory.mktemp("finished")
    experiment = folder / "tiny.yaml"
    experiment.write_text(EXPERIMENT, encoding="utf-8")
    argv = ["train", str(experiment), "--steps", "2", "--output", str(folder / "run"), "--quiet"]
    assert main(argv) == 0
    return experiment, folder / "run"


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("run", "x", ["run = 'x'"]),
        pytest.param("theta/0", 2**1100, ["theta[0] = ", "is not finite"], id="theta/0-huge"),
        ("theta/0", "x", ["theta[0] = 'x' is not a number"]),
        ("optimizer", {}, ["missing key optimizer.t"]),
        ("optimizer/t", "x", ["optimizer.t = 'x' is not an integer"]),
        ("optimizer/t", 0, ["t = 0, but the moments m and v must be null at t = 0"]),
        ("optimizer/m/0", 1e308, ["optimizer.m[0] = 1e+308 breaks the rule"]),
        ("optimizer/v/0", -1.0, ["optimizer.v[0] = -1.0 breaks the rule"]),
        ("optimizer/v", [1.0], ["optimizer.v = [1.0] is not a list of"]),
        ("rng", {}, ["rng is not a random generator state"]),
        ("rng", "x", ["rng = 'x' is not a random generator state"]),
        ("rng/state/state", "x", ["rng is not a random generator state"]),
    ],
)
def test_a_damaged_checkpoint_is_one_line_on_resume(
    capsys: pytest.CaptureFixture[str], finished_run: tuple[Path, Path], tmp_path: Path, path: str,
    value: object, words: list[str],
) -> None:  # fmt: skip
    experiment, run = finished_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    document = json.loads((copy / "checkpoint.json").read_text(encoding="utf-8"))
    *parents, last = [int(k) if k.isdigit() else k for k in path.split("/")]
    inner = document
    for key in parents:
        inner = inner[key]
    inner[last] = value
    (copy / "checkpoint.json").write_text(json.dumps(document), encoding="utf-8")
    argv = ["train", str(experiment), "--steps", "3", "--output", str(copy), "--resume", "--quiet"]
    status, _, err = run_main(capsys, argv)
    assert_one_line_error(status, err)
    assert f"{copy / 'checkpoint.json'}: " in err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("x", ["= 'x' is not a number"]),
        (None, ["= None is not a number"]),
        pytest.param(2**1100, ["is not finite"], id="huge"),
    ],
)
def test_a_damaged_result_is_one_line_as_init(
    capsys: pytest.CaptureFixture[str], finished_run: tuple[Path, Path], tmp_path: Path, value: object,
    words: list[str],
) -> None:  # fmt: skip
    experiment, run = finished_run
    document = json.loads((run / "result.json").read_text(encoding="utf-8"))
    first = next(iter(document["parameters"]))
    document["parameters"][first] = value
    damaged = tmp_path / "result.json"
    damaged.write_text(json.dumps(document), encoding="utf-8")
    argv = ["train", str(experiment), "--steps", "1", "--output", str(tmp_path / "new"), "--quiet"]
    status, _, err = run_main(capsys, [*argv, "--init", str(damaged)])
    assert_one_line_error(status, err)
    assert f"init '{damaged}': parameters.{first}" in err and not (tmp_path / "new").exists()
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(
    "damage",
    [{"min_gap": "x"}, {"degenerate": None}, {"test_loss": [1.0]}, {"step": -1}],
    ids=["min_gap-text", "degenerate-null", "test_loss-list", "negative-step"],
)
def test_a_damaged_metrics_record_is_skipped_and_named_on_resume(
    capsys: pytest.CaptureFixture[str], finished_run: tuple[Path, Path], tmp_path: Path,
    damage: dict[str, object],
) -> None:  # fmt: skip
    """A step record with a field no trainer writes (text, null, a list) is a damaged line: resume
    names it, keeps every other record and finishes (it was a traceback in the summary or a plot)."""
    experiment, run = finished_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    lines = (copy / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    lines[2] = json.dumps({**json.loads(lines[2]), **damage})  # the record of step 1
    (copy / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["train", str(experiment), "--steps", "3", "--output", str(copy), "--resume", "--quiet"]
    status, _, err = run_main(capsys, argv)
    assert status == 0, err
    assert err.count("\n") == 1 and "metrics.jsonl: line 3 is not a step record (damaged)" in err
    steps = [json.loads(x)["step"] for x in (copy / "metrics.jsonl").read_text().splitlines()[1:]]
    assert steps == [0, 2, 3]


def test_an_interrupt_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C during a command: one line on stderr and the shell's status 130, no traceback."""
    import qep_analog.cli as cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    args = cli.build_parser().parse_args(["device", "list"])
    args.handler = interrupted
    status = cli._run(args)
    err = capsys.readouterr().err
    assert status == 130
    assert err.count("\n") == 1 and err.startswith("qep-analog: interrupted") and "Traceback" not in err
