"""PNG plots of a phase-sensor run: the training curve and the predicted phase diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.figures import plt, save_figure
from qep_analog.tasks.codewords import SensorAxes
from qep_analog.tasks.phase_sensor import PHASE_NAMES, triangle_coordinates

PHASE_COLOURS = ("tab:blue", "tab:orange", "tab:green")


def plot_training_curve(history: list[dict[str, Any]], path: str | Path) -> None:
    """Batch loss per step and test accuracies at evaluation steps."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [r["step"] for r in history if "loss" in r]
    ax_loss.plot(steps, [r["loss"] for r in history if "loss" in r], lw=0.6, alpha=0.6, label="batch")
    evaluated = ("test_loss", "max_choice_accuracy", "single_shot_accuracy")
    evals = [r for r in history if all(key in r for key in evaluated)]
    ax_loss.plot([r["step"] for r in evals], [r["test_loss"] for r in evals], "k-", label="test")
    ax_loss.set(xlabel="step", ylabel="loss", yscale="log", title="Loss")
    ax_loss.legend()
    for key, label in (("max_choice_accuracy", "max-choice"), ("single_shot_accuracy", "single-shot")):
        ax_acc.plot([r["step"] for r in evals], [r[key] for r in evals], label=label)
    ax_acc.set(xlabel="step", ylabel="test accuracy", ylim=(0, 1), title="Accuracy")
    ax_acc.legend()
    save_figure(fig, path)


def plot_phase_diagram(inputs: NDArray, outputs: NDArray, path: str | Path, title: str) -> None:
    """Predicted phase (argmax of the outputs) over the simplex, with the true phase boundaries."""
    u, v = triangle_coordinates(inputs)
    predicted = outputs.argmax(axis=1)
    fig, ax = plt.subplots(figsize=(6, 5))
    for phase, (name, colour) in enumerate(zip(PHASE_NAMES, PHASE_COLOURS, strict=True)):
        mask = predicted == phase
        ax.scatter(u[mask], v[mask], c=colour, s=40, label=name, edgecolors="none")
    ax.plot([0, 2, 4, 0], [0, 4, 0, 0], "k-", lw=1)
    ax.plot([1, 3], [2, 2], "k--", lw=1)  # g_zz = 2
    ax.plot([2, 2], [0, 2], "k--", lw=1)  # g_x = g_zxz below g_zz = 2
    ax.set(xlabel="g_x + g_zz / 2", ylabel="g_zz", title=title, aspect="equal")
    ax.legend(loc="upper right", fontsize=8)
    save_figure(fig, path)


def plot_sensor_predictions(
    points: NDArray,
    predicted: NDArray,
    truth: NDArray,
    path: str | Path,
    title: str,
    names: tuple[str, ...],
    axes: SensorAxes,
) -> None:
    """Predicted phase of each point: filled by the prediction, ringed where it is wrong."""
    fig, ax = plt.subplots(figsize=(6, 5))
    x = points[:, axes.columns[0]]
    y = points[:, axes.columns[1]] + axes.spread * np.random.default_rng(0).uniform(-1, 1, len(points))
    for phase, (name, colour) in enumerate(zip(names, PHASE_COLOURS, strict=False)):
        mask = predicted == phase
        ax.scatter(x[mask], y[mask], c=colour, s=30, label=name, edgecolors="none")
    wrong = predicted != truth
    ax.scatter(x[wrong], y[wrong], s=70, facecolors="none", edgecolors="k", label="wrong")
    ax.set(xlabel=axes.labels[0], ylabel=axes.labels[1], xscale=axes.xscale, title=title)
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)
