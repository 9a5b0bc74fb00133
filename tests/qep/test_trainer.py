"""The trainer: checkpoint/resume equivalence, shot noise, estimators, penalty, config checks, files.

Every run uses a tiny phase-sensor task (a 3-site chain plus the 2-qubit sensor: 32 amplitudes).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qep_analog.errors import ConfigError, DamagedLogWarning, QEPError, StorageError
from qep_analog.qep.trainer import (
    CHECKPOINT_SCHEMA,
    CHECKPOINT_SCHEMA_V1,
    RESULT_SCHEMA,
    Penalty,
    Trainer,
    TrainingConfig,
)
from qep_analog.storage import folder_lock, temporary_sibling
from qep_analog.tasks.phase_sensor import PhaseSensorTask

N_CHAIN = 3
TEST_SIZE = 10
STEPS = 12
EVERY = 4


def tiny_task(**kwargs: Any) -> PhaseSensorTask:
    return PhaseSensorTask(n_chain=N_CHAIN, test_size=TEST_SIZE, **kwargs)


def tiny_config(**kwargs: Any) -> TrainingConfig:
    settings: dict[str, Any] = {
        "steps": STEPS,
        "batch_size": 4,
        "checkpoint_every": EVERY,
        "eval_every": EVERY,
        "shots": 10,
        "seed": 3,
    }
    settings.update(kwargs)
    return TrainingConfig(**settings)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"schema": "qep-metrics/1"}
    return [json.loads(line) for line in lines[1:]]


def final_theta(run_dir: Path) -> np.ndarray:
    result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    return np.array(list(result["parameters"].values()))


def checkpoint_step(run_dir: Path) -> int | None:
    try:
        return int(json.loads((run_dir / "checkpoint.json").read_text(encoding="utf-8"))["step"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def last_metrics_step(run_dir: Path) -> int:
    try:
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return -1
    steps = []
    for line in lines[1:]:
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:
            break
    return max(steps, default=-1)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Run A: uninterrupted, STEPS steps."""
    run_dir = tmp_path_factory.mktemp("run_a")
    result = Trainer(tiny_task(), tiny_config(), run_dir).run()
    return run_dir, result


def assert_one_record_per_step(run_dir: Path, steps: int) -> list[dict[str, Any]]:
    records = read_metrics(run_dir)
    assert [r["step"] for r in records] == list(range(steps + 1))
    return records


# -- (a) checkpoint and resume -------------------------------------------------------------------


def test_uninterrupted_run_files(reference_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, result = reference_run
    records = assert_one_record_per_step(run_dir, STEPS)
    evaluated = [r["step"] for r in records if "max_choice_accuracy" in r]
    assert evaluated == [0, 4, 8, 12]
    assert all("loss" in r for r in records[1:])
    assert checkpoint_step(run_dir) == STEPS
    np.testing.assert_array_equal(final_theta(run_dir), list(result["parameters"].values()))
    assert result["final"]["step"] == STEPS


class Interrupt(KeyboardInterrupt):
    pass


def interrupt_at(step_to_stop: int):  # type: ignore[no-untyped-def]
    def callback(step: int, record: dict[str, Any]) -> None:
        if step == step_to_stop:
            raise Interrupt

    return callback


def test_resume_after_in_process_interrupt(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    """Stopped by an exception after step 6 (checkpoint at 4, metrics up to 6), then resumed."""
    run_a, _ = reference_run
    with pytest.raises(Interrupt):
        Trainer(tiny_task(), tiny_config(), tmp_path, callback=interrupt_at(6)).run()
    assert checkpoint_step(tmp_path) == 4
    assert last_metrics_step(tmp_path) == 6  # steps 5 and 6 are logged but not checkpointed
    assert not (tmp_path / "result.json").exists()
    Trainer(tiny_task(), tiny_config(), tmp_path).run(resume=True)
    np.testing.assert_allclose(final_theta(tmp_path), final_theta(run_a), rtol=0, atol=1e-12)
    records = assert_one_record_per_step(tmp_path, STEPS)
    reference = read_metrics(run_a)
    for mine, theirs in zip(records, reference, strict=True):
        assert mine["loss" if "loss" in mine else "step"] == pytest.approx(
            theirs["loss" if "loss" in theirs else "step"], abs=1e-12
        )


def test_resume_ignores_a_line_cut_by_a_kill(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    run_a, _ = reference_run
    with pytest.raises(Interrupt):
        Trainer(tiny_task(), tiny_config(), tmp_path, callback=interrupt_at(5)).run()
    with (tmp_path / "metrics.jsonl").open("a", encoding="utf-8") as log:
        log.write('{"step": 6, "loss": 0.')  # half a line, as a kill mid-write leaves it
    with pytest.warns(DamagedLogWarning, match="line 8 is not a step record"):
        Trainer(tiny_task(), tiny_config(), tmp_path).run(resume=True)
    np.testing.assert_allclose(final_theta(tmp_path), final_theta(run_a), rtol=0, atol=1e-12)
    assert_one_record_per_step(tmp_path, STEPS)


def test_resume_keeps_every_record_after_a_damaged_line(tmp_path: Path) -> None:
    steps = 24
    with pytest.raises(Interrupt):
        Trainer(tiny_task(), tiny_config(steps=steps), tmp_path, callback=interrupt_at(22)).run()
    metrics = tmp_path / "metrics.jsonl"
    lines = metrics.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2][:10]  # step 1's record damaged, 21 good records after it (steps 2-22)
    original = "\n".join(lines) + "\n"
    metrics.write_text(original, encoding="utf-8")
    with pytest.warns(DamagedLogWarning, match=r"metrics.jsonl: line 3 is not a step record"):
        Trainer(tiny_task(), tiny_config(steps=steps), tmp_path).run(resume=True)
    steps_kept = [r["step"] for r in read_metrics(tmp_path)]
    assert steps_kept == [0, *range(2, steps + 1)]  # only the damaged record is missing
    assert (tmp_path / "metrics.jsonl.damaged").read_text(encoding="utf-8") == original


def test_resume_without_metrics_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Interrupt):
        Trainer(tiny_task(), tiny_config(), tmp_path, callback=interrupt_at(5)).run()
    (tmp_path / "metrics.jsonl").unlink()
    with pytest.raises(StorageError, match=r"metrics.jsonl: missing while checkpoint.json exists"):
        Trainer(tiny_task(), tiny_config(), tmp_path).run(resume=True)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_training_into_a_folder_with_a_run_is_refused(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    run_a, _ = reference_run
    shutil.copytree(run_a, tmp_path / "copy")
    before = {p.name: p.read_bytes() for p in (tmp_path / "copy").iterdir() if p.is_file()}
    with pytest.raises(StorageError, match=r"already holds a run \(checkpoint.json, result.json"):
        Trainer(tiny_task(), tiny_config(seed=4), tmp_path / "copy").run()
    assert {p.name: p.read_bytes() for p in (tmp_path / "copy").iterdir() if p.is_file()} == before
    with pytest.raises(ConfigError, match="resume and overwrite"):
        Trainer(tiny_task(), tiny_config(), tmp_path / "copy").run(resume=True, overwrite=True)
    result = Trainer(tiny_task(), tiny_config(seed=4), tmp_path / "copy").run(overwrite=True)
    assert result["seed"] == 4
    assert_one_record_per_step(tmp_path / "copy", STEPS)


def test_a_second_writer_of_a_run_folder_is_refused(tmp_path: Path) -> None:
    with folder_lock(tmp_path):  # as another process training into the folder holds it
        with pytest.raises(StorageError, match="another process is writing it"):
            Trainer(tiny_task(), tiny_config(), tmp_path).run()
    assert not (tmp_path / "metrics.jsonl").exists()
    Trainer(tiny_task(), tiny_config(steps=1), tmp_path).run()  # the lock went with its holder


def test_resume_of_a_finished_run_changes_nothing(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    run_a, _ = reference_run
    shutil.copytree(run_a, tmp_path / "copy")
    result = Trainer(tiny_task(), tiny_config(), tmp_path / "copy").run(resume=True)
    np.testing.assert_array_equal(final_theta(tmp_path / "copy"), final_theta(run_a))
    assert result["final"]["step"] == STEPS
    assert_one_record_per_step(tmp_path / "copy", STEPS)


def test_a_run_stopped_in_its_first_evaluation_resumes(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped while it evaluates its starting point (the metrics header written, no record yet): the
    start was checkpointed first, so --resume continues, and ends where run A ends."""
    run_a, _ = reference_run
    evaluate = Trainer.evaluate

    def stopped_at_the_start(self: Trainer, parameters: np.ndarray, step: int = 0) -> dict[str, float]:
        if step == 0:
            raise Interrupt
        return evaluate(self, parameters, step)

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "evaluate", stopped_at_the_start)
        with pytest.raises(Interrupt):
            Trainer(tiny_task(), tiny_config(), tmp_path).run()
    assert read_metrics(tmp_path) == [] and checkpoint_step(tmp_path) == 0
    Trainer(tiny_task(), tiny_config(), tmp_path).run(resume=True)
    np.testing.assert_array_equal(final_theta(tmp_path), final_theta(run_a))
    assert read_metrics(tmp_path) == read_metrics(run_a)


def test_a_run_stopped_before_its_metrics_file_resumes(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    """A checkpoint at step 0 without metrics.jsonl (stopped between the two first writes) has lost
    nothing: --resume starts the history afresh."""
    run_a, _ = reference_run
    trainer = Trainer(tiny_task(), tiny_config(), tmp_path)
    trainer.save_checkpoint(trainer.initial_state())
    trainer.run(resume=True)
    np.testing.assert_array_equal(final_theta(tmp_path), final_theta(run_a))
    assert read_metrics(tmp_path) == read_metrics(run_a)


def test_resume_removes_the_temporary_files_a_kill_left_mid_write(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    """A kill between writing a file's temporary copy and renaming it leaves the copy; the next run
    into the folder (which holds its lock) removes it, and leaves the other hidden files alone."""
    run_a, _ = reference_run
    with pytest.raises(Interrupt):
        Trainer(tiny_task(), tiny_config(), tmp_path, callback=interrupt_at(6)).run()
    stale = [
        Path(temporary_sibling(tmp_path / "checkpoint.json")),
        Path(temporary_sibling(tmp_path / "training_curve.png", suffix=".png")),
    ]
    stale[0].write_text('{"schema": "qep-checkpoint/2", "step": 8, "th', encoding="utf-8")
    (tmp_path / ".notes.tmp").write_text("mine", encoding="utf-8")
    Trainer(tiny_task(), tiny_config(), tmp_path).run(resume=True)
    assert not any(path.exists() for path in stale)
    assert (tmp_path / ".notes.tmp").read_text(encoding="utf-8") == "mine"
    np.testing.assert_array_equal(final_theta(tmp_path), final_theta(run_a))


def test_resume_without_checkpoint_is_refused(tmp_path: Path) -> None:
    metrics = '{"schema": "qep-metrics/1"}\n{"step": 0}\n{"step": 99}\n'
    (tmp_path / "metrics.jsonl").write_text(metrics, encoding="utf-8")
    with pytest.raises(StorageError, match="no checkpoint to resume"):
        Trainer(tiny_task(), tiny_config(), tmp_path).run(resume=True)
    assert (tmp_path / "metrics.jsonl").read_text(encoding="utf-8") == metrics


def test_overwrite_removes_a_stale_checkpoint(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    run_a, _ = reference_run
    shutil.copytree(run_a, tmp_path / "old")
    with pytest.raises(Interrupt):
        trainer = Trainer(tiny_task(), tiny_config(), tmp_path / "old", callback=interrupt_at(1))
        trainer.run(overwrite=True)
    # the old run's checkpoint is gone: the one there is the new run's start (step 0)
    checkpoint = json.loads((tmp_path / "old" / "checkpoint.json").read_text(encoding="utf-8"))
    assert checkpoint["step"] == 0
    assert not (tmp_path / "old" / "result.json").exists()


def test_resume_with_fewer_steps_than_the_checkpoint_is_refused(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    run_a, _ = reference_run
    shutil.copytree(run_a, tmp_path / "copy")
    with pytest.raises(ConfigError, match="below the checkpoint"):
        Trainer(tiny_task(), tiny_config(steps=2), tmp_path / "copy").run(resume=True)


def test_checkpoint_file_contents(reference_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = reference_run
    document = json.loads((run_dir / "checkpoint.json").read_text(encoding="utf-8"))
    assert document["schema"] == CHECKPOINT_SCHEMA
    assert document["seed"] == 3
    assert document["parameters"] == tiny_task().model.parameter_names
    assert len(document["theta"]) == len(document["parameters"]) == 51
    assert document["optimizer"]["t"] == STEPS


def test_a_version_1_checkpoint_resumes_to_the_same_theta(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    """A qep-checkpoint/1 file (no measurement or readout keys in its fingerprint) is migrated."""
    run_a, _ = reference_run
    with pytest.raises(Interrupt):
        Trainer(tiny_task(), tiny_config(), tmp_path, callback=interrupt_at(6)).run()
    document = json.loads((tmp_path / "checkpoint.json").read_text(encoding="utf-8"))
    added = ("measurement", "readout_false_positive", "readout_false_negative", "mitigate_readout")
    assert all(key in document["run"]["config"] for key in added)
    for key in added:
        del document["run"]["config"][key]
    document["schema"] = CHECKPOINT_SCHEMA_V1
    (tmp_path / "checkpoint.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(StorageError, match=r"another model or configuration \(measurement = 'gaussian'"):
        Trainer(tiny_task(), tiny_config(measurement="bitstrings"), tmp_path).run(resume=True)
    Trainer(tiny_task(), tiny_config(), tmp_path).run(resume=True)
    np.testing.assert_allclose(final_theta(tmp_path), final_theta(run_a), rtol=0, atol=1e-12)
    saved = json.loads((tmp_path / "checkpoint.json").read_text(encoding="utf-8"))
    assert saved["schema"] == CHECKPOINT_SCHEMA and saved["run"]["config"]["measurement"] == "gaussian"


def test_an_unknown_checkpoint_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Interrupt):
        Trainer(tiny_task(), tiny_config(), tmp_path, callback=interrupt_at(5)).run()
    document = json.loads((tmp_path / "checkpoint.json").read_text(encoding="utf-8"))
    (tmp_path / "checkpoint.json").write_text(json.dumps({**document, "schema": "qep-checkpoint/9"}))
    with pytest.raises(StorageError, match=r"schema 'qep-checkpoint/9', expected 'qep-checkpoint/2' or"):
        Trainer(tiny_task(), tiny_config(), tmp_path).run(resume=True)


# -- (b) shot noise and seeds ----------------------------------------------------------------------


def batch_and_theta(task: PhaseSensorTask, seed: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = task.initial_parameters(rng)
    inputs, targets = task.sample_batch(rng, 4)
    return theta, inputs, targets


def test_shot_noise_changes_the_gradient(tmp_path: Path) -> None:
    task = tiny_task()
    theta, inputs, targets = batch_and_theta(task)
    exact = Trainer(task, tiny_config(shots=None), tmp_path)
    noisy = Trainer(task, tiny_config(shots=10), tmp_path)
    g_exact, _ = exact.gradient(theta, inputs, targets, np.random.default_rng(0))
    g_noisy, _ = noisy.gradient(theta, inputs, targets, np.random.default_rng(0))
    g_noisy2, _ = noisy.gradient(theta, inputs, targets, np.random.default_rng(1))
    assert np.abs(g_exact - g_noisy).max() > 1e-3
    assert np.abs(g_noisy - g_noisy2).max() > 1e-3
    # without shots the generator is not used: the gradient does not depend on it
    g_exact2, _ = exact.gradient(theta, inputs, targets, np.random.default_rng(1))
    np.testing.assert_array_equal(g_exact, g_exact2)
    # same generator state, same noisy gradient
    g_noisy3, _ = noisy.gradient(theta, inputs, targets, np.random.default_rng(0))
    np.testing.assert_array_equal(g_noisy, g_noisy3)


def test_same_seed_same_run_other_seed_other_run(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    run_a, _ = reference_run
    Trainer(tiny_task(), tiny_config(steps=6), tmp_path / "same").run()
    Trainer(tiny_task(), tiny_config(steps=6, seed=4), tmp_path / "other").run()
    same = read_metrics(tmp_path / "same")
    reference = read_metrics(run_a)[: len(same)]
    assert [r.get("loss") for r in same] == [r.get("loss") for r in reference]
    other = read_metrics(tmp_path / "other")
    assert [r.get("loss") for r in other[1:]] != [r.get("loss") for r in same[1:]]
    assert np.abs(final_theta(tmp_path / "same") - final_theta(tmp_path / "other")).max() > 1e-3


def test_shots_none_and_shots_10_runs_differ(tmp_path: Path) -> None:
    Trainer(tiny_task(), tiny_config(steps=3, shots=None), tmp_path / "exact").run()
    Trainer(tiny_task(), tiny_config(steps=3, shots=10), tmp_path / "noisy").run()
    assert np.abs(final_theta(tmp_path / "exact") - final_theta(tmp_path / "noisy")).max() > 1e-6


# -- (c) estimators -------------------------------------------------------------------------------


def test_qep_matches_exact_gradient_for_small_beta(tmp_path: Path) -> None:
    """Symmetric QEP at beta = 1e-3 (bias O(beta^2)) equals the linear-response gradient to 1e-4;
    one-sided (bias O(beta)) is close but measurably worse."""
    task = tiny_task()
    theta, inputs, targets = batch_and_theta(task)
    rng = np.random.default_rng(0)
    common: dict[str, Any] = {"shots": None, "solver_tol": 1e-10}
    exact = Trainer(task, tiny_config(estimator="exact", **common), tmp_path)
    g_exact, record_exact = exact.gradient(theta, inputs, targets, rng)
    assert np.abs(g_exact).max() > 1e-2  # a non-trivial gradient
    errors = {}
    for scheme in ("symmetric", "one-sided"):
        qep = Trainer(task, tiny_config(estimator="qep", beta=1e-3, scheme=scheme, **common), tmp_path)
        g_qep, record_qep = qep.gradient(theta, inputs, targets, rng)
        errors[scheme] = np.abs(g_qep - g_exact).max()
        assert record_exact["loss"] == pytest.approx(record_qep["loss"], abs=1e-10)
    assert errors["symmetric"] < 1e-4
    assert errors["one-sided"] < 1e-3
    assert errors["symmetric"] < errors["one-sided"]


def test_large_beta_is_biased(tmp_path: Path) -> None:
    """The comparison above could not fail if beta did nothing: at beta = 2 the estimates differ."""
    task = tiny_task()
    theta, inputs, targets = batch_and_theta(task)
    rng = np.random.default_rng(0)
    exact = Trainer(task, tiny_config(estimator="exact", shots=None), tmp_path)
    qep = Trainer(task, tiny_config(beta=2.0, scheme="one-sided", shots=None), tmp_path)
    g_exact, _ = exact.gradient(theta, inputs, targets, rng)
    g_qep, _ = qep.gradient(theta, inputs, targets, rng)
    assert np.abs(g_qep - g_exact).max() > 1e-3


def test_gradient_record_with_check_gap(tmp_path: Path) -> None:
    task = tiny_task()
    theta, inputs, targets = batch_and_theta(task)
    trainer = Trainer(task, tiny_config(shots=None, check_gap=True, beta=1e-3), tmp_path)
    _, record = trainer.gradient(theta, inputs, targets, np.random.default_rng(0))
    assert record["min_gap"] > 0
    assert record["degenerate"] == 0
    assert record["small_gap"] == 0
    big = Trainer(task, tiny_config(shots=None, check_gap=True, beta=50.0), tmp_path / "big")
    _, record = big.gradient(theta, inputs, targets, np.random.default_rng(0))
    assert record["small_gap"] == len(inputs)  # a huge nudge is not small against any gap


def test_run_reports_gap_statistics(tmp_path: Path) -> None:
    result = Trainer(tiny_task(), tiny_config(steps=3, beta=50.0), tmp_path).run()
    gaps = result["gaps"]
    assert gaps["samples_checked"] == 3 * 4
    assert gaps["min_gap"] > 0 and gaps["degenerate"] == 0
    assert gaps["small_gap"] == 12


# -- (d) penalty ----------------------------------------------------------------------------------


def test_penalty_hand_example() -> None:
    penalty = Penalty(strength=0.5, threshold=0.1, mask=np.array([True, True, False, True, True]))
    theta = np.array([0.3, -0.05, 2.0, -0.4, 0.1])
    # masked excesses: 0.2, 0, (1.9 not masked), 0.3, 0 (|0.1| is at the threshold)
    assert penalty.value(theta) == pytest.approx(0.5 * (0.2 + 0.3), abs=1e-15)
    np.testing.assert_array_equal(penalty.gradient(theta), [0.5, 0.0, 0.0, -0.5, 0.0])


def test_penalty_enters_the_trainer_gradient(tmp_path: Path) -> None:
    task = tiny_task()
    theta, inputs, targets = batch_and_theta(task)
    theta = theta * 5.0  # couplings beyond the threshold
    penalty = task.penalty(0.02, 0.1)
    config = tiny_config(shots=None)
    plain, record_plain = Trainer(task, config, tmp_path).gradient(
        theta, inputs, targets, np.random.default_rng(0)
    )
    with_penalty, record = Trainer(task, config, tmp_path, penalty=penalty).gradient(
        theta, inputs, targets, np.random.default_rng(0)
    )
    np.testing.assert_allclose(with_penalty - plain, penalty.gradient(theta), rtol=0, atol=1e-12)
    assert record["penalty"] == pytest.approx(penalty.value(theta))
    assert record["penalty"] > 0
    assert "penalty" not in record_plain
    # only the couplings are penalised
    assert np.all(penalty.gradient(theta)[~task.coupling_mask] == 0)
    assert np.any(penalty.gradient(theta)[task.coupling_mask] != 0)


# -- (e) configuration errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"steps": True}, "steps"),
        ({"batch_size": -1}, "batch_size"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"eval_every": 0}, "eval_every"),
        ({"scheme": "x"}, "scheme"),
        ({"estimator": "x"}, "estimator"),
        ({"optimizer": "x"}, "optimizer"),
        ({"beta": -1}, "beta"),
        ({"beta": 0}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"beta": "0.4"}, "beta"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"solver_tol": -1e-6}, "solver_tol"),
        ({"shots": 0}, "shots"),
        ({"shots": 2.5}, "shots"),
        ({"bounds": (1.0, -1.0)}, "bounds"),
    ],
)
def test_bad_config_values(kwargs: dict[str, Any], word: str) -> None:
    with pytest.raises(ConfigError, match=word) as info:
        TrainingConfig(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("training:")


def test_good_config_defaults() -> None:
    config = TrainingConfig()
    assert (config.beta, config.shots, config.learning_rate, config.optimizer) == (0.4, 10, 0.01, "adam")
    assert TrainingConfig(shots=None).shots is None


# -- (f) checkpoints of another run ---------------------------------------------------------------


def test_checkpoint_of_another_seed(tmp_path: Path) -> None:
    Trainer(tiny_task(), tiny_config(steps=4, seed=3), tmp_path).run()
    with pytest.raises(StorageError, match="seed") as info:
        Trainer(tiny_task(), tiny_config(steps=8, seed=4), tmp_path).run(resume=True)
    assert "\n" not in str(info.value)


def test_checkpoint_of_another_model(tmp_path: Path) -> None:
    Trainer(tiny_task(), tiny_config(steps=4), tmp_path).run()
    with pytest.raises(StorageError, match="another model"):
        Trainer(tiny_task(system_operators="Z"), tiny_config(steps=8), tmp_path).run(resume=True)


def test_corrupt_checkpoint(tmp_path: Path) -> None:
    Trainer(tiny_task(), tiny_config(steps=4), tmp_path).run()
    (tmp_path / "checkpoint.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(StorageError, match="not valid JSON"):
        Trainer(tiny_task(), tiny_config(steps=8), tmp_path).run(resume=True)


def test_checkpoint_of_another_optimizer(tmp_path: Path) -> None:
    """An SGD checkpoint resumed by an Adam run must be refused with a QEPError, not a KeyError."""
    Trainer(tiny_task(), tiny_config(steps=4, optimizer="sgd"), tmp_path).run()
    with pytest.raises(QEPError):
        Trainer(tiny_task(), tiny_config(steps=8, optimizer="adam"), tmp_path).run(resume=True)


# -- (g) result file ----------------------------------------------------------------------------------


def test_result_json(reference_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, result = reference_run
    text = (run_dir / "result.json").read_text(encoding="utf-8")

    def no_constants(value: str) -> None:
        raise AssertionError(f"non-standard JSON constant {value}")

    document = json.loads(text, parse_constant=no_constants)
    assert document["schema"] == RESULT_SCHEMA == "qep-run/1"
    assert document["steps"] == STEPS and document["seed"] == 3
    assert list(document["parameters"]) == tiny_task().model.parameter_names
    assert document["config"]["steps"] == STEPS
    assert document["final"]["step"] == STEPS
    assert 0.0 <= document["final"]["max_choice_accuracy"] <= 1.0
    assert document["seconds_per_step"] > 0
    assert document["parameters"] == result["parameters"]


def test_bounds_clip_parameters(tmp_path: Path) -> None:
    result = Trainer(tiny_task(init="normal"), tiny_config(steps=2, bounds=(-0.5, 0.5)), tmp_path).run()
    theta = np.array(list(result["parameters"].values()))
    assert np.abs(theta).max() <= 0.5
    assert np.isclose(np.abs(theta).max(), 0.5)  # some standard-normal parameter was clipped


def test_thermal_training_gradient_matches_exact_response(tmp_path: Path) -> None:
    """With temperature set, the trainer's QEP step is the Gibbs-state gradient (Kubo-Mori)."""
    task = tiny_task()
    rng = np.random.default_rng(11)
    theta = task.initial_parameters(rng)
    inputs, targets = task.sample_batch(rng, 3)
    gradients = {}
    for estimator, beta in (("qep", 1e-3), ("exact", 0.4)):
        config = tiny_config(shots=None, temperature=0.4, estimator=estimator, beta=beta)
        trainer = Trainer(task, config, tmp_path / estimator)
        gradients[estimator], _ = trainer.gradient(theta, inputs, targets, rng)
    assert trainer.equilibrium.thermal
    np.testing.assert_allclose(gradients["qep"], gradients["exact"], atol=1e-5)


def test_bad_temperature_is_rejected() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        tiny_config(temperature=-1.0)


def test_corrupt_metrics_header_is_a_storage_error(
    tmp_path: Path, reference_run: tuple[Path, dict[str, Any]]
) -> None:
    run_a, _ = reference_run
    shutil.copytree(run_a, tmp_path / "copy")
    metrics = tmp_path / "copy" / "metrics.jsonl"
    metrics.write_text('{"sche\n' + "\n".join(metrics.read_text().splitlines()[1:]) + "\n")
    with pytest.raises(StorageError, match="qep-metrics/1 header"):
        Trainer(tiny_task(), tiny_config(), tmp_path / "copy").run(resume=True)


# -- (g) measured bitstrings (issue 5) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"measurement": "photons"}, "measurement"),
        ({"measurement": "bitstrings", "shots": None}, "needs shots"),
        ({"measurement": "bitstrings", "estimator": "exact"}, "estimator 'qep'"),
        ({"measurement": "bitstrings", "temperature": 0.5}, "temperature null"),
        ({"readout_false_positive": 0.1}, "need measurement 'bitstrings'"),
        ({"measurement": "bitstrings", "readout_false_negative": 0.5}, "readout_false_negative"),
        ({"measurement": "bitstrings", "mitigate_readout": "yes"}, "mitigate_readout"),
    ],
)
def test_bad_measurement_config(kwargs: dict[str, Any], word: str) -> None:
    with pytest.raises(ConfigError, match=word) as info:
        TrainingConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_bitstring_training_runs_and_resumes(tmp_path: Path) -> None:
    """A bitstring run (9 settings of the tiny sensor, readout errors mitigated) is reproducible
    from its seed and a resumed run ends at the same parameters; the gradient differs from the
    Gaussian model's."""
    config = tiny_config(
        measurement="bitstrings", readout_false_positive=0.025, readout_false_negative=0.1, steps=8
    )
    first = Trainer(tiny_task(), config, tmp_path / "a").run()
    second = Trainer(tiny_task(), config, tmp_path / "b").run()
    assert first["parameters"] == second["parameters"]
    assert first["config"]["measurement"] == "bitstrings"
    Trainer(tiny_task(), tiny_config(**{**asdict_config(config), "steps": 4}), tmp_path / "c").run()
    Trainer(tiny_task(), config, tmp_path / "c").run(resume=True)
    assert np.array_equal(final_theta(tmp_path / "c"), final_theta(tmp_path / "a"))
    trainer = Trainer(tiny_task(), config, tmp_path / "d")
    assert trainer.sampler is not None and len(trainer.sampler.plan.settings) == 9
    gaussian = Trainer(tiny_task(), tiny_config(), tmp_path / "e")
    rng = np.random.default_rng(0)
    theta = tiny_task().initial_parameters(rng)
    inputs, targets = tiny_task().sample_batch(rng, 4)
    g_bits, record = trainer.gradient(theta, inputs, targets, np.random.default_rng(1))
    g_gauss, _ = gaussian.gradient(theta, inputs, targets, np.random.default_rng(1))
    assert np.isfinite(g_bits).all() and not np.allclose(g_bits, g_gauss)
    assert "loss" in record


def test_bitstring_gradient_approaches_the_exact_value_gradient(tmp_path: Path) -> None:
    """With many shots per setting (and mitigation) the bitstring gradient of a batch agrees with
    the gradient from exact expectation values (same beta) to within 0.05 (shot noise ~ 0.01)."""
    rng = np.random.default_rng(2)
    task = tiny_task()
    theta = task.initial_parameters(rng)
    inputs, targets = task.sample_batch(rng, 4)
    exact, _ = Trainer(task, tiny_config(shots=None), tmp_path / "x").gradient(theta, inputs, targets, rng)
    config = tiny_config(
        measurement="bitstrings", shots=200_000, readout_false_positive=0.05, readout_false_negative=0.1
    )
    sampled, _ = Trainer(task, config, tmp_path / "y").gradient(theta, inputs, targets, rng)
    assert np.abs(sampled - exact).max() < 0.05


def test_config_fingerprint_holds_every_key_but_steps(tmp_path: Path) -> None:
    """qep-checkpoint/2 fingerprints the whole configuration (/1 files are migrated on read)."""
    fingerprint = Trainer(tiny_task(), tiny_config(), tmp_path)._fingerprint()
    assert set(fingerprint["config"]) == set(asdict_config(tiny_config())) - {"steps"}
    assert fingerprint["config"]["measurement"] == "gaussian"
    bits = Trainer(tiny_task(), tiny_config(measurement="bitstrings"), tmp_path)._fingerprint()
    assert bits["config"]["measurement"] == "bitstrings"


def asdict_config(config: TrainingConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
