"""Numbers at the edges: huge coefficients, inputs and nudges, bad seeds, a β lost to round-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_run import run_cli

MODEL = """schema: qep-model/1
n_qubits: 2
fixed:
  - [0.3, "Z0"]
inputs:
  h: [[{coefficient}, "X0"], [-1, "X1"]]
trainable:
  j: [[-1, "Z0 Z1"]]
outputs:
  m: [[1, "Z0"]]
"""


def _model(tmp_path: Path, coefficient: str = "-1") -> str:
    path = tmp_path / "model.yaml"
    path.write_text(MODEL.format(coefficient=coefficient))
    return str(path)


def _one_line_error(status: int, err: str) -> str:
    assert status == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_huge_model_coefficient_refused_naming_value_and_bound(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _, err = run_cli(
        capsys, ["gradient", _model(tmp_path, "1e160"), "--x", "h=1", "--theta", "j=1"]
    )
    err = _one_line_error(status, err)
    assert "1e+160" in err and "1e+150" in err and "inputs.h" in err


@pytest.mark.parametrize(
    ("option", "value", "name"),
    [("--x", "h=1e308", "h"), ("--theta", "j=1e200", "j")],
)
def test_huge_input_or_parameter_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, value: str, name: str
) -> None:
    argv = ["gradient", _model(tmp_path), "--x", "h=1", "--theta", "j=1", option, value]
    err = _one_line_error(*run_cli(capsys, argv)[::2])
    assert name in err and value.split("=")[1].replace("e", "e+") in err and "1e+150" in err


def test_norm_overflow_of_products_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # each number within the bound, their product (coefficient x input) beyond it
    argv = ["gradient", _model(tmp_path, "1e100"), "--x", "h=1e100", "--theta", "j=1"]
    err = _one_line_error(*run_cli(capsys, argv)[::2])
    assert "norm" in err and "1e+150" in err


def test_huge_beta_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["gradient", _model(tmp_path), "--x", "h=1", "--theta", "j=1", "--beta", "1e300"]
    err = _one_line_error(*run_cli(capsys, argv)[::2])
    assert "beta" in err and "1e+300" in err and "1e+150" in err


def test_tiny_beta_warns_of_round_off(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["gradient", _model(tmp_path), "--x", "h=1", "--theta", "j=1", "--beta", "1e-13"]
    status, _, err = run_cli(capsys, argv)
    assert status == 0, err
    assert "warning" in err and "round-off" in err and "%" in err and "1e-13" in err


def test_ordinary_beta_does_not_warn_of_round_off(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _, err = run_cli(capsys, ["gradient", _model(tmp_path), "--x", "h=1", "--theta", "j=1"])
    assert status == 0 and "round-off" not in err, err


@pytest.mark.parametrize("value", ["-1", "4294967296", "1.5"])
@pytest.mark.parametrize(
    "command", [["calibrate", "rydberg-basic"], ["emulate", "schedules.json"], ["train", "x.yaml"]]
)
def test_bad_seed_is_one_line(capsys: pytest.CaptureFixture[str], command: list[str], value: str) -> None:
    status, _, err = run_cli(capsys, [*command, "--seed", value])
    err = _one_line_error(status, err)
    assert "seed" in err and value in err


EXPERIMENT = (Path(__file__).resolve().parents[1] / "examples" / "phase_sensor.yaml").read_text()


@pytest.mark.parametrize("value", ["-1", "4294967296", "1208925819614629174706176"])
@pytest.mark.parametrize("path", ["training.seed", "backend.seed"])
def test_seed_in_an_experiment_file_has_the_range_of_seed_option(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    value: str,
) -> None:
    if path == "training.seed":
        text = EXPERIMENT.replace("  seed: 0\n", f"  seed: {value}\n")
    else:
        text = EXPERIMENT.replace("training:\n", f"backend: {{name: exact, seed: {value}}}\ntraining:\n")
    assert f"seed: {value}" in text
    (tmp_path / "seeded.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    err = _one_line_error(*run_cli(capsys, ["train", "seeded.yaml", "--steps", "1", "--quiet"])[::2])
    assert f"{path} = {value} breaks the rule {path} >= 0 and < 4294967296" in err
    assert not (tmp_path / "runs").exists()


def test_seeds_of_configurations_and_fake_labs_are_range_checked() -> None:
    from qep_analog import ConfigError, FakeIonLab, FakeRydbergLab, TrainingConfig, read_profile
    from qep_analog.calibration.fakes.schedule_lab import FakeScheduleLab
    from qep_analog.measurement.readout import ReadoutErrors

    assert TrainingConfig(seed=2**32 - 1).seed == 2**32 - 1
    with pytest.raises(ConfigError, match=r"seed = 4294967296 breaks the rule seed >= 0 and < 4294967296"):
        TrainingConfig(seed=2**32)
    rydberg, ion = read_profile("fresnel-like"), read_profile("yb171-chain")
    for make in (
        lambda seed: FakeRydbergLab.for_profile(rydberg, seed=seed),
        lambda seed: FakeIonLab.for_profile(ion, seed=seed),
        lambda seed: FakeScheduleLab(rydberg, ReadoutErrors.none(2), seed=seed),
    ):
        for seed in (-1, 2**32, 2**70):
            with pytest.raises(ConfigError, match=rf"fake .*lab: seed = {seed} breaks the rule"):
                make(seed)
