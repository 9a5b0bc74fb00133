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
from qep_analog.errors import CalibrationError
from qep_analog.figures import plt, save_figure
from qep_analog.schema import shown
from qep_analog.units import SUFFIXES, dimension_of


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
    fig, axes = plt.subplots(max(len(steps), 1), 1, figsize=(7, 2.8 * max(len(steps), 1)), squeeze=False)
    if not steps:  # a run stopped before its first step ended
        axes[0, 0].text(0.5, 0.5, "no finished step", ha="center", va="center")
        axes[0, 0].set_axis_off()
    panels = zip(axes[: len(steps), 0], steps, results, shown_units(run), strict=True)
    for ax, step, result, units in panels:
        path = step_folder(run_dir, step) / "data.json"
        data = read_data(path)
        suffix = _sweep_suffix(data, step, units.get(SWEEP), path)
        try:
            _panel(ax, data, result, suffix)
        except KeyError as exc:  # stored data a hand edit left without what its routine reads
            raise CalibrationError(
                f"{path}: the data lack {shown(exc.args[0])}, which routine {data.routine!r} needs"
            ) from None
    return fig


def _sweep_suffix(data: Any, step: dict[str, Any], suffix: str | None, path: Path) -> str | None:
    """The unit suffix the sweep of ``data`` is shown in, checked against the data (their routine and
    the dimension of their sweep) before anything is drawn."""
    if data.routine != step["routine"]:
        raise CalibrationError(
            f"{path}: data of routine {data.routine!r}, run.json names {step['routine']!r}"
        )
    known = SUFFIXES.get(dimension_of(data.sweep_unit), {})
    if suffix is not None and suffix not in known:
        raise CalibrationError(
            f"{path}: its run shows the sweep in {suffix!r}, not a unit of {data.sweep_unit!r} "
            f"({', '.join(known) or 'none'})"
        )
    return suffix


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
