"""The figure of a calibration run: one panel per routine, data with binomial error bars and fits."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog.calibration.data import read_data
from qep_analog.calibration.fitting import binomial_sigma
from qep_analog.calibration.registry import routine_named
from qep_analog.calibration.runner import read_results, read_run
from qep_analog.figures import plt, save_figure


def plot_run(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Draw every step of the run in ``run_dir`` into ``path`` (default ``run_dir/report.png``)."""
    run = read_run(run_dir)
    results = read_results(run_dir)
    steps = run["steps"]
    target = Path(path) if path is not None else Path(run_dir) / "report.png"
    fig, axes = plt.subplots(len(steps), 1, figsize=(7, 2.8 * max(len(steps), 1)), squeeze=False)
    for ax, step, result in zip(axes[:, 0], steps, results, strict=True):
        data = read_data(Path(run_dir) / step["folder"] / "data.json")
        _panel(ax, data, result)
    save_figure(fig, target, dpi=110)
    return target


def _panel(ax: Any, data: Any, result: dict[str, Any]) -> None:
    routine = routine_named(data.routine)
    if routine.draw(ax, data, result):
        return
    y = data.counts / data.shots
    errors = binomial_sigma(data.counts, data.shots)
    curves = {k: [math.nan if v is None else v for v in vs] for k, vs in result["curves"].items()}
    fine = np.linspace(data.sweep.min(), data.sweep.max(), 400)
    model = routine.curve(data, curves, fine) if curves else None
    for site in range(data.n_sites):
        color = f"C{site % 10}"
        ax.errorbar(
            data.sweep, y[:, site], errors[:, site], fmt=".", ms=3, color=color, label=f"site {site}"
        )
        if model is not None and np.all(np.isfinite(model[:, site])):
            ax.plot(fine, model[:, site], color=color, lw=1)
    ax.set_xlabel(f"{data.sweep_name} ({data.sweep_unit})" if data.sweep_unit else data.sweep_name)
    ax.set_ylabel("P(read 1)")
    chi2 = result["reduced_chi2"]
    ax.set_title(
        f"{data.routine}: {result['quality']}, χ²/dof = {chi2:.3g}" if chi2 is not None else data.routine,
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="best")
