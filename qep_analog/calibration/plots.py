"""The figure of a calibration run: one panel per routine, data with binomial error bars and fits,
the sweep in the unit the run's runcard or profile was written in (``calibration.lab_units``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog.calibration.data import read_data
from qep_analog.calibration.fitting import binomial_sigma
from qep_analog.calibration.lab_units import SWEEP, axis_label, shown_in
from qep_analog.calibration.registry import routine_named
from qep_analog.calibration.runner import read_results, read_run, shown_units, step_folder
from qep_analog.figures import plt, save_figure


def plot_run(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Draw :func:`run_figure` into ``path`` (default ``run_dir/report.png``)."""
    target = Path(path) if path is not None else Path(run_dir) / "report.png"
    save_figure(run_figure(run_dir), target, dpi=110)
    return target


def run_figure(run_dir: str | Path) -> Any:
    """One panel per step of the run in ``run_dir``, each sweep in the unit the run shows it in."""
    run = read_run(run_dir)
    results = read_results(run_dir)
    steps = run["steps"]
    fig, axes = plt.subplots(len(steps), 1, figsize=(7, 2.8 * max(len(steps), 1)), squeeze=False)
    for ax, step, result, units in zip(axes[:, 0], steps, results, shown_units(run), strict=True):
        data = read_data(step_folder(run_dir, step) / "data.json")
        _panel(ax, data, result, units.get(SWEEP))
    return fig


def _panel(ax: Any, data: Any, result: dict[str, Any], suffix: str | None) -> None:
    """The routine's own panel, or P(read 1) per site against the sweep shown in ``suffix``'s unit."""
    routine = routine_named(data.routine)
    if routine.draw(ax, data, result):
        return
    y = data.counts / data.shots
    errors = binomial_sigma(data.counts, data.shots)
    curves = {k: [math.nan if v is None else v for v in vs] for k, vs in result["curves"].items()}
    fine = np.linspace(data.sweep.min(), data.sweep.max(), 400)
    model = routine.curve(data, curves, fine) if curves else None
    x, fine_x = (_in_unit(values, data.sweep_unit, suffix) for values in (data.sweep, fine))
    for site in range(data.n_sites):
        color = f"C{site % 10}"
        ax.errorbar(x, y[:, site], errors[:, site], fmt=".", ms=3, color=color, label=f"site {site}")
        if model is not None and np.all(np.isfinite(model[:, site])):
            ax.plot(fine_x, model[:, site], color=color, lw=1)
    ax.set_xlabel(axis_label(data.sweep_name, data.sweep_unit, suffix))
    ax.set_ylabel("P(read 1)")
    chi2 = result["reduced_chi2"]
    ax.set_title(
        f"{data.routine}: {result['quality']}, χ²/dof = {chi2:.3g}" if chi2 is not None else data.routine,
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="best")


def _in_unit(values: Any, unit: str, suffix: str | None) -> Any:
    """Sweep values (internal ``unit``) in the unit of ``suffix`` (None: as they are)."""
    return np.array([shown_in(float(v), unit, suffix) for v in values])
