"""Progress display and the final report (grid evaluation, plots) of a training run."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from qep_analog.progress import LazyProgress, StageProgress
from qep_analog.qep.trainer import RESULT_SCHEMA, Trainer
from qep_analog.storage import write_json
from qep_analog.tasks.phase_sensor import accuracy_metrics, phase_grid, phase_labels
from qep_analog.tasks.plots import plot_phase_diagram, plot_training_curve


class TrainingProgress(LazyProgress):
    """A progress bar with the live batch loss and the last test accuracy."""

    def __init__(self, steps: int, enabled: bool = True) -> None:
        super().__init__(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  test acc {task.fields[accuracy]}"),
            TimeRemainingColumn(),
            enabled=enabled,
        )
        self._task = self._progress.add_task("train", total=steps, loss="-", accuracy="-")

    def update(self, step: int, record: dict[str, Any]) -> None:
        self._start()
        fields: dict[str, Any] = {"loss": f"{record['loss']:.4f}"}
        if "max_choice_accuracy" in record:
            fields["accuracy"] = f"{record['max_choice_accuracy']:.3f}"
        self._progress.update(self._task, completed=step, **fields)


def write_report(trainer: Trainer, result: dict[str, Any]) -> dict[str, Any]:
    """Evaluate on the 210-point grid, draw the plots, and add both to ``result.json``."""
    theta = np.array(list(result["parameters"].values()))
    grid = phase_grid()
    free = trainer.equilibrium.prepare(grid, theta, with_gap=True, check_degeneracy=False)
    assert free.gaps is not None
    outputs = trainer.compiled.output_values(free.strings)
    grid_metrics: dict[str, Any] = accuracy_metrics(outputs, phase_labels(grid))
    grid_metrics["min_gap"] = float(free.gaps.min())
    grid_metrics["degenerate_points"] = int((free.gaps < trainer.equilibrium.solver.degeneracy_tol).sum())
    plot_training_curve(trainer.read_metrics(), trainer.run_dir / "training_curve.png")
    plot_phase_diagram(
        grid,
        outputs,
        trainer.run_dir / "phase_diagram.png",
        f"predicted phase, grid max-choice {grid_metrics['max_choice_accuracy']:.3f}",
    )
    report = {**result, "grid": {"points": len(grid), **grid_metrics}}
    write_json(trainer.run_dir / "result.json", report, RESULT_SCHEMA)
    return report


def write_sensor_report(trainer: Trainer, result: dict[str, Any]) -> dict[str, Any]:
    """The training curve, and the test set's predicted phases over the phase diagram of a task with
    ``phase_points`` (from the model's exact states: the device's own are in ``metrics.jsonl``)."""
    from qep_analog.tasks.plots import plot_sensor_predictions

    task: Any = trainer.task
    theta = trainer.coefficients(np.array(list(result["parameters"].values())), trainer.test_inputs)
    free = trainer.equilibrium.prepare(trainer.test_inputs, theta, keep_states=False)
    outputs = trainer.compiled.output_values(free.strings)
    metrics = task.metrics(outputs, trainer.test_targets)
    plot_training_curve(trainer.read_metrics(), trainer.run_dir / "training_curve.png")
    plot_sensor_predictions(
        task.phase_points(trainer.test_inputs),
        task.predicted_phases(outputs),
        task.predicted_phases(trainer.test_targets),
        trainer.run_dir / "phase_diagram.png",
        f"test set on the model's states: max-choice {metrics['max_choice_accuracy']:.3f}",
        task.phases,
        task.plot_axes,
    )
    report = {**result, "model_states": metrics}
    write_json(trainer.run_dir / "result.json", report, RESULT_SCHEMA)
    return report


class ExploreProgress(StageProgress):
    """A progress bar over the iterations (boundary: the theta_zz points), then the phase diagram."""
