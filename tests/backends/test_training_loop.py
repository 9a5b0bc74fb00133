"""Training through a backend: every step as phase jobs, the gradient from counts; the device's
parameters (sensor positions, detuning map) kept inside its limits; a bundle played by a lab and
resumed ends where the same lab run in process ends. Runs killed mid-step (and at other moments)
and resumed: tests/execution/test_kill_train.py."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lab_side import play_bundles

import qep_analog as qa
from qep_analog.backends.bundle import BundlePending
from qep_analog.backends.configure import backend_for_run, fake_lab
from qep_analog.backends.jobs import PhaseJob
from qep_analog.backends.schedules import job_schedules
from qep_analog.backends.step import measured_step
from qep_analog.errors import ConfigError
from qep_analog.qep.gradients import exact_gradient
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask

ROOT = Path(__file__).resolve().parents[2]
RECIPE = "rydberg-smooth"


def _task(device: str = "aquila-like", **options: Any) -> RydbergSensorTask:
    profile = qa.read_profile(device)
    if device == "fresnel-like":  # C6 of n = 60 and Ω ≤ 2π·2 MHz at 5 µm: R_b/a ≥ 1.28, no Z3
        options = {"phases": ("disordered", "Z2"), "rb_over_a": (1.3, 2.0), "spacing_um": 5.5, **options}
    return RydbergSensorTask(profile=profile, n_chain=3, test_size=4, **options)


def _config(**options: Any) -> qa.TrainingConfig:
    values: dict[str, Any] = dict(
        steps=3, batch_size=2, shots=400, beta=0.3, learning_rate=0.2, eval_every=100, seed=3
    )
    return qa.TrainingConfig(**{**values, **options})


def test_sensor_parameters_map_to_the_model_and_stay_inside_the_device() -> None:
    """dθ/dφ matches central differences; a step out of the field, onto another atom or beyond the
    detuning map's window is moved back and named."""
    task = _task()
    geometry = task.parameterisation
    phi = task.initial_parameters(np.random.default_rng(0))
    numeric = np.array(
        [
            (geometry.coefficients(phi + 1e-6 * e) - geometry.coefficients(phi - 1e-6 * e)) / 2e-6
            for e in np.eye(len(phi))
        ]
    ).T
    np.testing.assert_allclose(geometry.jacobian(phi), numeric, rtol=1e-6, atol=1e-9)
    caps = task.profile.rydberg
    bad = phi.copy()
    names = list(geometry.names)
    bad[names.index("x_A")], bad[names.index("y_A")] = 5.0, 0.5  # onto chain atom 2
    bad[names.index("x_B")], bad[names.index("y_B")] = 300.0, 0.0  # out of the field
    bad[names.index("delta_0")] = caps.local_detuning.max_per_site  # type: ignore[union-attr]
    bad[names.index("delta_1")] = -caps.local_detuning.max_per_site  # type: ignore[union-attr]
    moved, clipped = geometry.project(bad)
    assert {"y_A", "x_B", "delta_0", "delta_1"} <= set(clipped)  # A pushed straight off the atom
    positions = geometry.positions(moved)
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=2)[np.triu_indices(5, 1)]
    assert distances.min() >= caps.min_spacing - 1e-9
    assert np.linalg.norm(positions[-1]) <= caps.max_radius
    local = moved[: geometry.n_atoms]
    assert np.ptp(local) <= caps.local_detuning.max_per_site + 1e-9  # type: ignore[union-attr]
    # the moved register is one the device realises: the sequence of every phase builds
    backend = backend_for_run("qutip", task.model, task.profile, run_dir=".", seed=0, recipe=RECIPE)
    x, _ = task.test_set()
    job = PhaseJob(0, "free", tuple(x[0]), tuple(geometry.coefficients(moved)), (0.0, 0.0), ("ZZZZZ",), 10)
    assert job_schedules(backend.model, task.profile, backend.recipe, [job])["0/free"].duration == 4.0


def test_a_step_on_the_emulated_backend_records_its_bias_bound() -> None:
    """The metrics record of a step through the qutip backend holds the batch-mean bias bound of the
    ramps (one value ≥ 0 per model coefficient) next to the gradient's error bars."""
    task = _task()
    backend = backend_for_run("qutip", task.model, task.profile, run_dir=".", seed=0, recipe=RECIPE)
    trainer = qa.Trainer(task, _config(shots=None), ".", backend=backend)
    phi = task.initial_parameters(np.random.default_rng(1))
    x, y = task.test_set()
    _, record = trainer.gradient(phi, x[:2], y[:2], np.random.default_rng(0), step=1)
    assert len(record["gradient_bias"]) == len(record["gradient_errors"]) == len(backend.model.trainable)
    assert all(b >= 0 for b in record["gradient_bias"]) and max(record["gradient_bias"]) > 0


def test_exact_backend_gives_the_exact_gradient_of_the_device_parameters() -> None:
    """QEP on the exact backend (exact values, small β) against the linear-response gradient of the
    model chained through dθ/dφ: agree to the O(β²) bias of the symmetric scheme."""
    task = _task()
    trainer = qa.Trainer(
        task,
        _config(shots=None, beta=1e-3),
        ".",
        backend=backend_for_run("exact", task.model, None, run_dir=".", seed=0),
    )
    phi = task.initial_parameters(np.random.default_rng(1))
    x, y = task.test_set()
    measured, record = trainer.gradient(phi, x, y, np.random.default_rng(0), step=1)
    equilibrium = Equilibrium(task.model, tol=1e-10)
    theta = task.parameterisation.coefficients(phi)
    free = equilibrium.prepare(x, theta)
    eps = task.loss.error_signal(equilibrium.compiled.output_values(free.strings), y)
    reference = exact_gradient(equilibrium, x, theta, eps, free=free).mean(axis=0)
    expected = task.parameterisation.jacobian(phi).T @ reference
    np.testing.assert_allclose(measured, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    assert record["shots"] == 0 and record["device_time_s"] is None


@pytest.mark.parametrize("name", ["exact", "fake-lab", "qutip"])
def test_counted_steps_agree_with_the_exact_step_within_error_bars(name: str) -> None:
    """One step of the same batch on each backend: the gradient from counts is within 5 standard
    errors of the backend's own exact values — the ground states for exact and fake-lab (programmed
    with its true calibration, prepared as ground states); for qutip the emulated final states of
    the same schedules (a 4 µs ramp is not adiabatic for this sensor: how far those lie from the
    ground states is the preparation's bias, not the estimator's)."""
    task = _task()
    phi = task.initial_parameters(np.random.default_rng(2))
    theta = task.parameterisation.coefficients(phi)
    x, y = task.test_set()
    kwargs = dict(beta=0.3, scheme="symmetric", bases=["ZZZZZ"])
    profile = task.profile
    if name == "fake-lab":
        profile = dataclasses.replace(
            profile, calibration=fake_lab(profile, 5, 0).true_profile().calibration
        )
    backend = backend_for_run(
        name, task.model, profile, run_dir=".", seed=5, recipe=None if name == "exact" else RECIPE
    )
    truth = backend if name == "qutip" else backend_for_run("exact", task.model, None, run_dir=".", seed=0)
    reference = measured_step(truth, task.model, x[:2], theta, y[:2], task.loss, shots=None, **kwargs)
    step = measured_step(
        backend, task.model, x[:2], theta, y[:2], task.loss, shots=20_000, entropy=(5, 1), **kwargs
    )
    z = (step.gradients - reference.gradients) / np.maximum(step.errors, 1e-12)
    assert np.abs(z).max() < 5.0, (name, np.abs(z).max())
    assert step.shots == 2 * 3 * 20_000
    if name != "exact":
        overhead = profile.capabilities.shot_overhead
        assert step.device_time_s == pytest.approx(step.shots * (4.0 + overhead) * 1e-6)


def test_training_on_a_backend_records_what_a_lab_needs(tmp_path: Path) -> None:
    """metrics.jsonl: per step shots, device time, gradient error bars, clipped parameters and the
    profile snapshot; result.json: the device usage and the coefficients."""
    task = _task()
    backend = backend_for_run("fake-lab", task.model, task.profile, run_dir=tmp_path, seed=3, recipe=RECIPE)
    result = qa.Trainer(task, _config(learning_rate=40.0), tmp_path, backend=backend).run()
    steps = [
        r for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines()[1:]) if r["step"]
    ]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for record in steps:
        assert record["shots"] == 2 * 3 * 400
        assert record["snapshot"] == task.profile.snapshot_hash
        assert len(record["gradient"]) == len(record["gradient_errors"]) == len(task.model.parameter_names)
        assert all(e > 0 for e in record["gradient_errors"][:2])
        assert np.all(np.isfinite(record["gradient"])) and np.any(np.abs(record["gradient"]) > 0)
    assert any(record["clipped"] for record in steps)  # a step of 40 µm or 40 rad/µs leaves the limits
    usage = result["device_usage"]
    assert usage["shots"] == 3 * 2400 and usage["clipped_steps"] >= 1
    assert usage["device_time_s"] == pytest.approx(
        3 * 2400 * (4.0 + task.profile.capabilities.shot_overhead) * 1e-6
    )
    assert result["backend"] == "fake-lab" and set(result["coefficients"]) == set(
        task.model.parameter_names
    )


@pytest.mark.parametrize("name", ["fake-lab", "bundle"])
def test_a_lab_without_shots_is_refused_before_the_run_folder_exists(tmp_path: Path, name: str) -> None:
    """A lab returns counts only: training.shots null is one line before anything is written, so the
    corrected command is not blocked by a half-made run."""
    task = _task()
    run = tmp_path / "run"
    backend = backend_for_run(name, task.model, task.profile, run_dir=run, seed=3, recipe=RECIPE)
    with pytest.raises(
        ConfigError, match=rf"^backend {name}: a lab returns counts; training.shots is null"
    ):
        qa.Trainer(task, _config(shots=None), run, backend=backend)
    assert not run.exists() or not any(run.iterdir())


def test_bundle_round_trip_ends_where_the_fake_lab_run_ends(tmp_path: Path) -> None:
    """Write a round → a lab plays it through the fake lab → drop counts → resume, until the run
    ends: the parameters equal those of the same fake lab run in process with the same seeds (on
    fresnel-like, whose negative detuning map Pulser's sequences carry)."""
    task = _task("fresnel-like")
    config = _config(checkpoint_every=1)
    direct = backend_for_run(
        "fake-lab", task.model, task.profile, run_dir=tmp_path / "a", seed=3, recipe=RECIPE
    )
    expected = qa.Trainer(task, config, tmp_path / "a", backend=direct).run()["parameters"]

    run_dir = tmp_path / "b"
    lab = fake_lab(task.profile, task.model.n_qubits, 3)
    bundle = backend_for_run("bundle", task.model, task.profile, run_dir=run_dir, seed=3, recipe=RECIPE)
    rounds = 0
    with pytest.raises(BundlePending, match="sequences written"):
        qa.Trainer(task, config, run_dir, backend=bundle).run()
    while True:
        rounds += play_bundles(
            run_dir / "bundles", lab, task.model, task.profile, qa.load_recipe(RECIPE), seed=3
        )
        try:
            result = qa.Trainer(task, config, run_dir, backend=bundle).run(
                resume=(run_dir / "checkpoint.json").exists()
            )
            break
        except BundlePending:
            continue
    assert rounds == 2 * config.steps
    assert result["parameters"] == expected


def test_a_bad_counts_file_is_one_line_and_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the command line: exit 5 while the bundle waits, exit 2 with one line for counts of the
    wrong length, and the run folder (checkpoint, metrics, bundle) is as it was."""
    experiment = tmp_path / "sensor.yaml"
    experiment.write_text(
        textwrap.dedent(
            f"""\
            schema: qep-experiment/1
            task: rydberg_sensor
            device: fresnel-like
            model: {{n_chain: 3, spacing_um: 5.5, phases: [disordered, Z2], rb_over_a: [1.3, 2.0]}}
            training: {{steps: 2, batch_size: 2, shots: 50, beta: 0.3, learning_rate: 0.2, seed: 1,
                        checkpoint_every: 1}}
            evaluation: {{test_size: 4, every: 10}}
            backend: {{name: bundle, recipe: {RECIPE}}}
            """
        )
    )
    from qep_analog.cli import main

    command = [
        "train", str(experiment), "--quiet", "--nominal", "--history", str(tmp_path / "history"),
        "--output", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(command) == 5
    stderr = capsys.readouterr().err
    assert "waiting for the lab" in stderr and len(stderr.strip().splitlines()) == 1
    folder = tmp_path / "run" / "bundles" / "step-00001" / "free"
    manifest = json.loads((folder / "manifest.json").read_text())
    basis = manifest["jobs"][0]["bases"][0]
    (folder / "counts" / f"0-free-{basis}.json").write_text(
        json.dumps({"schema": "qep-bundle-counts/1", "job": "0/free", "bases": basis, "counts": {"01": 50}})
    )
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert main([*command, "--resume"]) == 2
    stderr = capsys.readouterr().err
    assert "bitstring '01' is not 5 characters" in stderr and len(stderr.strip().splitlines()) == 1
    after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert after == before


def test_backend_configuration_errors_are_one_line() -> None:
    task = _task()
    with pytest.raises(ConfigError, match=r"backend 'warp': unknown \(known: exact, mps, qutip"):
        backend_for_run("warp", task.model, task.profile, run_dir=".", seed=0)
    # no recipe named: the platform's default, quintic-ended (it was an error before boundary orders)
    assert backend_for_run("qutip", task.model, task.profile, run_dir=".", seed=0).recipe.name == (
        "rydberg-gap-quintic"
    )
    with pytest.raises(ConfigError, match="backend fake-lab: runs schedules on a device; name one"):
        backend_for_run("fake-lab", task.model, None, run_dir=".", seed=0, recipe=RECIPE)
    with pytest.raises(ConfigError, match="recipe 'ion-exponential' is for ion"):
        backend_for_run("qutip", task.model, task.profile, run_dir=".", seed=0, recipe="ion-exponential")
    with pytest.raises(ConfigError, match="backend pulser: takes no option 'noise'"):
        backend_for_run(
            "pulser", task.model, task.profile, run_dir=".", seed=0, recipe=RECIPE, options={"noise": True}
        )
    with pytest.raises(ConfigError, match="a backend measures QEP gradients, not estimator 'exact'"):
        qa.Trainer(
            task,
            _config(estimator="exact"),
            ".",
            backend=backend_for_run("exact", task.model, None, run_dir=".", seed=0),
        )


@pytest.mark.parametrize("example", ["rydberg_sensor.yaml", "rydberg_sensor_fresnel.yaml"])
def test_the_example_sensors_fit_their_devices(example: str) -> None:
    """Every corner of the input window, at the initial parameters and with the largest nudge a step
    of the example takes, translates into controls inside the device's limits (translate checks
    them), and the device realises every term of the model."""
    from qep_analog.devices.mapping import map_model
    from qep_analog.sequences.phases import target_controls

    experiment = qa.load_experiment(ROOT / "examples" / example, nominal=True)
    task = experiment.task
    assert isinstance(task, RydbergSensorTask)
    assert map_model(task.model, task.profile, rotate=False).fully_realisable
    theta = task.parameterisation.coefficients(task.initial_parameters(np.random.default_rng(0)))
    corners = np.array([[d, r] for d in task.delta_over_omega for r in task.rb_over_a])
    nudge = 2 * experiment.training.beta * np.ones(2)  # |ε| ≤ 2 for the squared error on [0, 1]
    for x in task.model_inputs(corners):
        free = target_controls(task.model, task.profile, x, theta)
        for sign in (1.0, -1.0):
            target_controls(task.model, task.profile, x, theta, sign * nudge, like=free)


def test_the_realised_model_keeps_the_constants_of_its_outputs() -> None:
    """⟨n_A⟩ = ⟨(1 − Z_A)/2⟩: on the device (exact backend with the profile) the outputs equal the
    model's own (the constant ½ is not a control, but it is part of the output)."""
    from qep_analog.sequences.phases import realised_model

    task = _task()
    realised = realised_model(task.model, task.profile)
    assert realised.outputs == task.model.outputs
    theta = task.parameterisation.coefficients(task.initial_parameters(np.random.default_rng(0)))
    x, _ = task.test_set()
    on_device = backend_for_run("exact", task.model, task.profile, run_dir=".", seed=0)
    plain = backend_for_run("exact", task.model, None, run_dir=".", seed=0)
    jobs = [PhaseJob(0, "free", tuple(x[0]), tuple(theta), (0.0, 0.0), (), None)]
    device_outputs = on_device.run(jobs).results[0].outputs
    np.testing.assert_allclose(device_outputs, plain.run(jobs).results[0].outputs, atol=1e-8)
    assert np.all((device_outputs >= 0) & (device_outputs <= 1))


def _excitations(counts: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each atom's fraction of 1s in Z counts, with its binomial standard error."""
    bits = (counts.outcomes[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1
    p = (counts.counts[:, None] * bits).sum(axis=0) / counts.shots
    return p, np.sqrt(np.maximum(p * (1 - p), 1e-4) / counts.shots)


def test_a_fake_lab_plays_the_schedules_when_asked() -> None:
    """``preparation: adiabatic``: the fake lab plays the schedule on its true device with its hidden
    noise, one trajectory per shot (up to 4096), and reads it with its readout errors. Each atom's
    excitation in 30 000 shots agrees (4 combined standard errors; the emulator's mean over 2048
    trajectories taken as ±0.003) with the emulator's mean over trajectories of the same schedule on
    the lab's true profile with that noise, flipped by the lab's per-atom readout errors; without the
    noise, or with the ground preparation (the default), the emulator is farther off than that (the
    4 µs ramp is not adiabatic for this sensor); an unknown preparation is one line."""
    from qep_analog.calibration.fakes.schedule_lab import LAB_SOURCES
    from qep_analog.emulation.qutip_emulator import QutipEmulator

    task = _task()
    theta = task.parameterisation.coefficients(task.initial_parameters(np.random.default_rng(2)))
    x, _ = task.test_set()
    n = task.model.n_qubits
    zeros = tuple(0.0 for _ in task.model.outputs)
    job = PhaseJob(0, "free", tuple(map(float, x[0])), tuple(theta), zeros, ("Z" * n,), 30_000)
    read: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for preparation in ("adiabatic", "ground"):
        backend = backend_for_run(
            "fake-lab", task.model, task.profile, run_dir=".", seed=4, recipe=RECIPE,
            options={"preparation": preparation},
        )  # fmt: skip
        batch = backend.run([job])
        assert batch.metadata["preparation"] == preparation  # what the metrics record of each round
        read[preparation] = _excitations(batch.results[0].counts["Z" * n], n)
    lab = backend.lab
    flips = np.asarray(lab.hidden.false_positive[:n]), np.asarray(lab.hidden.false_negative[:n])
    schedule = job_schedules(backend.model, task.profile, qa.load_recipe(RECIPE), [job])[job.key]
    bits = (np.arange(1 << n)[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1
    measured, error = read["adiabatic"]
    deviation = {}
    for noise in (sorted(LAB_SOURCES), False):
        state = QutipEmulator(lab.true_profile()).run(schedule, noise=noise, realisations=2048).state
        excited = (np.real(np.diag(state)) if state.ndim == 2 else np.abs(state) ** 2) @ bits
        expected = excited * (1 - flips[1]) + (1 - excited) * flips[0]
        deviation[bool(noise)] = float(np.max(np.abs(measured - expected) / np.hypot(error, 0.003)))
    assert deviation[True] < 4.0 < deviation[False], deviation
    ground, ground_error = read["ground"]
    assert np.max(np.abs(ground - measured) / np.hypot(error, ground_error)) > 8.0
    with pytest.raises(
        ConfigError, match=r"^backend fake-lab: preparation 'slow' is not one of adiabatic, ground$"
    ):
        backend_for_run(
            "fake-lab", task.model, task.profile, run_dir=".", seed=4, recipe=RECIPE,
            options={"preparation": "slow"},
        )  # fmt: skip
