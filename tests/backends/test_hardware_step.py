"""``qep-analog step``: one QEP step planned (β, shots, cost), written as bundles round by round,
played by a lab, and ending in a gradient with error bars and a reciprocity check."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from lab_side import play_bundles

import qep_analog as qa
from qep_analog.backends.configure import fake_lab
from qep_analog.backends.exact import ExactBackend
from qep_analog.backends.step import measured_step
from qep_analog.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def experiment_file(tmp_path: Path) -> Path:
    path = tmp_path / "sensor.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            schema: qep-experiment/1
            task: rydberg_sensor
            device: fresnel-like
            model: {n_chain: 3, spacing_um: 5.5, phases: [disordered, Z2], rb_over_a: [1.3, 2.0]}
            training: {batch_size: 3, seed: 2}
            backend: {name: bundle, recipe: rydberg-smooth}
            """
        )
    )
    return path


def test_a_step_is_planned_played_and_measured(
    tmp_path: Path, experiment_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three runs of the command, each after the lab played the last bundle: plan and free round,
    nudged round and reciprocity pair, then gradient.json. With the device's true calibration the
    measured gradient agrees with the exact QEP gradient at the planned β within its error bars, and
    the reciprocity check holds (ground-state preparation)."""
    history = tmp_path / "history"
    out = tmp_path / "step"
    command = [
        "step",
        str(experiment_file),
        "--out",
        str(out),
        "--history",
        str(history),
        "--target-error",
        "0.2",
    ]
    experiment = qa.load_experiment(experiment_file, history=history)
    lab = fake_lab(experiment.profile, 5, 4)
    true = lab.true_profile()
    # the lab's history says what the fake lab's truth is (as a daily runcard would have found)
    experiment = dataclasses.replace(
        experiment, profile=dataclasses.replace(experiment.profile, calibration=true.calibration)
    )
    step = qa.HardwareStep.of(experiment, out, None)
    document = qa.plan_hardware_step(step, 0.2)  # the command reads this plan.json from now on
    assert main(command) == 5
    printed = capsys.readouterr()
    assert "waiting for the lab" in printed.err and "sequences written" in printed.err
    plan = json.loads((out / "plan.json").read_text())
    assert plan["plan"] == document["plan"] and plan["plan"]["met"]
    cost = plan["cost"]["step"]
    assert cost["sequences"] == 3 * 3 and cost["shots"] == 9 * plan["plan"]["shots"]
    overhead = experiment.profile.capabilities.shot_overhead
    assert cost["device_time_s"] == pytest.approx(cost["shots"] * (4.0 + overhead) * 1e-6)
    rounds = 0
    while True:
        rounds += play_bundles(out, lab, step.model, step.profile, step.recipe)
        try:
            gradient = qa.run_hardware_step(step, plan)
            break
        except qa.BundlePending:
            continue
    assert rounds == 3  # free, nudged, reciprocity
    exact = measured_step(
        ExactBackend(step.model), step.model, step.inputs, step.theta, step.targets, step.loss,
        beta=plan["plan"]["beta"], scheme="symmetric", bases=step.bases, shots=None,
    )  # fmt: skip
    z = (np.array(gradient["gradient"]) - exact.mean_gradient) / np.array(gradient["standard_errors"])
    assert np.abs(z).max() < 5.0
    assert gradient["reciprocity"]["consistent"]
    assert main(command) == 0  # the command reads the counts and writes the same gradient.json
    assert "reciprocity" in capsys.readouterr().out
    assert json.loads((out / "gradient.json").read_text())["gradient"] == gradient["gradient"]


def test_step_errors_are_one_line(
    tmp_path: Path, experiment_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["step", str(experiment_file), "--out", str(tmp_path / "s"), "--history", str(tmp_path / "h")]
    assert main([*base, "--target-error", "1.5"]) == 2
    assert "target relative error 1.5 must be in (0, 1)" in capsys.readouterr().err
    assert main([*base, "--recipe", "ion-exponential"]) == 2
    assert "recipe 'ion-exponential' is for ion" in capsys.readouterr().err
    assert main([*base, "--parameters", str(experiment_file)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main([*base, "--parameters", str(tmp_path / "run" / "result.json")]) == 2
    assert f"--parameters: {tmp_path / 'run' / 'result.json'}: no such file" in capsys.readouterr().err
    # the experiment's backend section is checked though the step writes bundles whatever it names
    text = experiment_file.read_text()
    for section, message in (
        ("{name: fake-lab, preparation: slow}", "backend fake-lab: preparation 'slow' is not one of"),
        ("{name: qutip, preparation: adiabatic}", "backend qutip: takes no option 'preparation' (its"),
    ):
        experiment_file.write_text(text.replace("{name: bundle, recipe: rydberg-smooth}", section))
        assert main(base) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s" / "plan.json").exists()


def test_an_ion_sensor_step_plans_at_its_own_scale_and_shifts_only_what_the_chain_plays(
    tmp_path: Path,
) -> None:
    """The ion sensor (coefficients per beat-note side, energies ~1e-3 rad/µs): the bias is fitted at
    β around the experiment's 1e-4, the planned β stays within twice the largest fitted one, the
    reciprocity pair shifts a field (an ion's single coupling is not a setting of the chain), and
    the free round is written as ion schedules read in Z and in X."""
    from qep_analog.backends.hardware_step import BIAS_BETAS, HardwareStep, plan_hardware_step

    experiment = qa.load_experiment(ROOT / "examples" / "ion_sensor_device.yaml", nominal=True)
    experiment = dataclasses.replace(
        experiment, training=dataclasses.replace(experiment.training, batch_size=2)
    )
    step = HardwareStep.of(experiment, tmp_path / "step", "ion-exponential")
    assert step.theta.ndim == 2 and step.beta == pytest.approx(1e-4)
    document = plan_hardware_step(step, 0.5)
    assert document["plan"]["beta"] <= 2 * BIAS_BETAS[-1] * 1e-4 * (1 + 1e-12)
    assert document["reciprocity_pair"][0].startswith("h_")
    with pytest.raises(qa.BundlePending):
        qa.run_hardware_step(step, document)
    written = sorted(p.name for p in (tmp_path / "step" / "free" / "sequences").glob("*.ion.json"))
    assert written == [
        "0-free-XXXXXXXX.ion.json",
        "0-free-ZZZZZZZZ.ion.json",
        "1-free-XXXXXXXX.ion.json",
        "1-free-ZZZZZZZZ.ion.json",
    ]


@pytest.fixture(scope="module")
def planned_step(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The experiment file and the folder of a step whose free round the lab has played."""
    folder = tmp_path_factory.mktemp("planned")
    experiment_file = folder / "sensor.yaml"
    experiment_file.write_text(
        textwrap.dedent(
            """\
            schema: qep-experiment/1
            task: rydberg_sensor
            device: fresnel-like
            model: {n_chain: 3, spacing_um: 5.5, phases: [disordered, Z2], rb_over_a: [1.3, 2.0]}
            training: {batch_size: 3, seed: 2}
            backend: {name: bundle, recipe: rydberg-smooth}
            """
        )
    )
    out, history = folder / "step", folder / "history"
    argv = ["step", str(experiment_file), "--out", str(out), "--history", str(history)]
    assert main([*argv, "--target-error", "0.2"]) == 5
    experiment = qa.load_experiment(experiment_file, history=history)
    step = qa.HardwareStep.of(experiment, out, None)
    assert play_bundles(out, fake_lab(experiment.profile, 5, 4), step.model, step.profile, step.recipe) == 1
    return experiment_file, out


@pytest.mark.parametrize(
    ("file", "path", "value", "words"),
    [
        ("plan.json", "plan", "x", ["plan.json: plan: expected a mapping"]),
        ("plan.json", "plan/beta", "x", ["plan.beta = 'x' is not a number"]),
        ("plan.json", "plan/shots", 0, ["plan.shots = 0 breaks the rule"]),
        ("plan.json", "cost", {}, ["missing key cost.step"]),
        ("plan.json", "reciprocity_pair", ["nope", "n_A"], ["reciprocity_pair ['nope', 'n_A']"]),
        ("plan.json", "reciprocity_pair", None, ["reciprocity_pair = None"]),
        ("plan.json", "reciprocity_shift", "x", ["reciprocity_shift = 'x'"]),
        ("plan.json", "theta", [], ["was made for other parameters or inputs"]),
        ("plan.json", "inputs", "x", ["was made for other parameters or inputs"]),
        ("free/manifest.json", "metadata", None, ["metadata = None is not"]),
        ("free/counts/0-free-ZZZZZ.json", "counts/*", 2**70, ["more than the limit 9007199254740992"]),
    ],
)
def test_a_damaged_step_folder_is_one_line(
    planned_step: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str,
    path: str, value: object, words: list[str],
) -> None:  # fmt: skip
    import shutil

    experiment_file, planned = planned_step
    out = tmp_path / "step"
    shutil.copytree(planned, out)
    target = out / file
    document = json.loads(target.read_text(encoding="utf-8"))
    *parents, last = path.split("/")
    inner = document
    for key in parents:
        inner = inner[key]
    inner[next(iter(inner)) if last == "*" else last] = value  # "*": the first key
    history = planned.parent / "history"
    target.write_text(json.dumps(document), encoding="utf-8")
    capsys.readouterr()
    assert main(["step", str(experiment_file), "--out", str(out), "--history", str(history)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qep-analog: error: ") and "Traceback" not in err
    for word in words:
        assert word in err, err
