"""PNG plots of the unsupervised tasks: the <X0 X4> phase diagram with the trajectories and the
followed boundary overlaid, the objective per iteration, the boundary's slope per theta_zz.

Written atomically with :func:`qep_analog.figures.save_figure` (temporary file, then rename).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qep_analog.figures import plt, save_figure
from qep_analog.tasks.exploration import Boundary, CorrelationGrid, Trajectory

COLOURS = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def _label(trajectory: Trajectory) -> str:
    start = ", ".join(f"{v:g}" for v in trajectory.start)
    return f"start ({start})"


#: bytes per grid point of :func:`plot_phase_diagram`: Matplotlib's meshes (a quadrilateral, its
#: colour and mask per point, twice when degenerate points are greyed) and the masked copies
#: (measured with tracemalloc: about 870 from 2e4 to 5e5 points)
PLOT_POINT_BYTES = 1000


def plot_phase_diagram(
    grid: CorrelationGrid,
    path: str | Path,
    *,
    trajectories: Sequence[Trajectory] = (),
    boundaries: Sequence[Boundary] = (),
    title: str = "",
) -> None:
    """<X0 X4> over (theta_x, theta_zz), degenerate points in grey, overlays on top.

    Phase-exploration trajectories are drawn as (theta_x, theta_zz); sensitivity trajectories as
    both of their points (g1, theta_zz) (solid) and (g2, theta_zz) (dashed); boundaries as
    (g_c, theta_zz) with markers.
    """
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    values = np.ma.masked_where(grid.degenerate, grid.correlation)
    mesh = ax.pcolormesh(
        grid.theta_x, grid.theta_zz, values, cmap="RdBu_r", vmin=-1, vmax=1, shading="nearest"
    )
    fig.colorbar(mesh, ax=ax, label="<X0 X4>")
    degenerate = int(grid.degenerate.sum())
    if degenerate:
        ax.pcolormesh(
            grid.theta_x,
            grid.theta_zz,
            np.ma.masked_where(~grid.degenerate, np.ones_like(grid.correlation)),
            cmap="Greys",
            vmin=0,
            vmax=2,
            shading="nearest",
        )
        ax.plot([], [], "s", color="0.5", label=f"degenerate (gap < {grid.degeneracy_tol:g}): {degenerate}")
    for k, trajectory in enumerate(trajectories):
        colour = COLOURS[k % len(COLOURS)]
        points = np.array([s.parameters for s in trajectory.steps])
        if trajectory.task == "sensitivity":
            ax.plot(
                points[:, 1], points[:, 0], "-", color=colour, lw=1.2, label=f"{_label(trajectory)}: g1"
            )
            ax.plot(points[:, 2], points[:, 0], "--", color=colour, lw=1.2, label="g2")
            ends = [(points[-1, 1], points[-1, 0]), (points[-1, 2], points[-1, 0])]
            starts = [(points[0, 1], points[0, 0]), (points[0, 2], points[0, 0])]
        else:
            ax.plot(points[:, 0], points[:, 1], ".-", color=colour, ms=3, lw=1, label=_label(trajectory))
            ends, starts = [tuple(points[-1])], [tuple(points[0])]
        for x, y in starts:
            ax.plot(x, y, "o", color=colour, mec="k", ms=7)
        for x, y in ends:
            ax.plot(x, y, "*", color=colour, mec="k", ms=12)
    for k, boundary in enumerate(boundaries):
        ax.plot(
            boundary.centers,
            boundary.theta_zz,
            "D-",
            color="k",
            mfc=COLOURS[k % len(COLOURS)],
            ms=4,
            lw=1,
            label=f"boundary from g = {boundary.start_center:g}",
        )
    ax.set(
        xlabel="field theta_x = g",
        ylabel="theta_zz",
        title=title or "<X0 X4>, 10-spin open cluster-Ising chain",
        xlim=(grid.theta_x.min(), grid.theta_x.max()),
        ylim=(grid.theta_zz.min(), grid.theta_zz.max()),
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=7, framealpha=0.8)
    save_figure(fig, path)


def plot_objective(trajectories: Sequence[Trajectory], path: str | Path) -> None:
    """The recorded objective against the iteration k, the best value of each run marked."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, trajectory in enumerate(trajectories):
        colour = COLOURS[k % len(COLOURS)]
        ks = [s.iteration for s in trajectory.steps]
        ax.plot(
            ks, [s.objective for s in trajectory.steps], "-", color=colour, lw=1, label=_label(trajectory)
        )
        best = trajectory.best
        ax.plot(best.iteration, best.objective, "*", color=colour, mec="k", ms=10)
    name = trajectories[0].objective_name if trajectories else "objective"
    ylabel = "cost -|<X0 X4>|" if name == "cost" else "slope S"
    ax.set(xlabel="iteration k", ylabel=ylabel, title=f"{ylabel} per iteration (star: best)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_boundary(boundaries: Sequence[Boundary], path: str | Path) -> None:
    """Boundary centre g_c and the slope S there against theta_zz, one line per branch."""
    fig, (ax_c, ax_s) = plt.subplots(1, 2, figsize=(10, 4))
    for k, boundary in enumerate(boundaries):
        colour = COLOURS[k % len(COLOURS)]
        label = f"from g = {boundary.start_center:g}"
        ax_c.plot(boundary.theta_zz, boundary.centers, "D-", color=colour, ms=4, label=label)
        ax_s.plot(boundary.theta_zz, boundary.slopes, "D-", color=colour, ms=4, label=label)
    ax_c.set(xlabel="theta_zz", ylabel="boundary centre g_c", title="followed boundary")
    ax_s.set(xlabel="theta_zz", ylabel="slope S at g_c", title="steepest two-point slope")
    ax_c.legend(fontsize=8)
    save_figure(fig, path)
