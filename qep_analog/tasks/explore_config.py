"""Exploration task files (schema ``qep-explore/1``) for ``qep-analog explore``: loading and running.

A file names one task of TASKS.md §2-3 on the 10-spin open cluster-Ising chain
(:mod:`qep_analog.tasks.exploration`), its starts and its step rule::

    schema: qep-explore/1
    name: explore_phase
    task: phase_exploration      # phase_exploration | sensitivity | boundary
    starts: [[-0.1, 0.4], [0.2, 0.9]]
    iterations: 100
    nudge: 0.1
    step_size: 0.1
    output: runs/explore_phase

``starts`` holds (theta_x, theta_zz) pairs for ``phase_exploration``, (theta_zz, g1, g2) triples
for ``sensitivity`` and one starting centre g_c per followed branch for ``boundary``, which also
needs a ``boundary`` section (``theta_zz`` list, ``separation``, ``tolerance``); there
``iterations`` is the most iterations per theta_zz. ``diagram`` (``theta_x``, ``theta_zz`` as
[low, high], ``points`` as [n_x, n_zz]) sets the phase-diagram grid; by default it covers the
trajectories. ``devices`` (profile names) adds to ``result.json`` how each device realises the
chain and what it cannot (``qep-analog device map``). :func:`run_exploration` runs a loaded file
and writes ``metrics.jsonl``, the PNGs and ``result.json``, all atomically and only once everything
is computed; a folder that holds a run is refused unless ``overwrite``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog.errors import ConfigError
from qep_analog.library import reference_from_file
from qep_analog.memory import require_memory
from qep_analog.schema import OMIT, Field, parse_section, parse_value
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.storage import (
    atomic_write_text,
    file_output,
    folder_lock,
    plain_name,
    present_files,
    read_yaml,
    refuse_held_run,
    write_json,
)
from qep_analog.tasks.exploration import (
    BOUNDARY_PARAMETERS,
    PHASE_PARAMETERS,
    SENSITIVITY_PARAMETERS,
    Boundary,
    Step,
    Trajectory,
    correlation_grid,
    explore_phase,
    follow_boundary,
    grid_bytes,
    open_cluster_ising,
    optimise_sensitivity,
)
from qep_analog.tasks.exploration_plots import (
    PLOT_POINT_BYTES,
    plot_boundary,
    plot_objective,
    plot_phase_diagram,
)

SCHEMA = "qep-explore/1"
METRICS_SCHEMA = "qep-explore-metrics/1"
RESULT_SCHEMA = "qep-explore-run/1"
TASKS = ("phase_exploration", "sensitivity", "boundary")
#: The paper quotes the objective "after 10 iterations" (k = 10); result.json reports it.
REPORT_STEP = 10
_DEFAULT_POINTS = (61, 41)
#: the starts of each task: one start centre g_c per followed branch, or one point per trajectory
_STARTS = {
    "boundary": Field("starts", "numbers", min_length=1),
    "phase_exploration": Field(
        "starts", "list", min_length=1,
        value=Field("start", "tuple", fields=(Field("theta_x"), Field("theta_zz"))),
    ),
    "sensitivity": Field(
        "starts", "list", min_length=1,
        value=Field("start", "tuple", fields=(Field("theta_zz"), Field("g1"), Field("g2"))),
    ),
}  # fmt: skip
_POSITIVE: dict[str, Any] = {"low": 0.0, "open_low": True}
_BOUNDARY = (
    Field("theta_zz", "numbers", min_length=1, help="the theta_zz values to follow"),
    Field("separation", **_POSITIVE, required=False, default=OMIT),
    Field("tolerance", **_POSITIVE, required=False, default=OMIT),
)
_DIAGRAM = (
    Field("theta_x", "range", required=False, nullable=True),
    Field("theta_zz", "range", required=False, nullable=True),
    Field("points", "integers", low=2, length=2, required=False, nullable=True),
)
_TOP = (
    Field("schema", "text", choices=(SCHEMA,)),
    Field("name", "text", required=False),
    Field("task", "text", choices=TASKS),
    Field("starts", "any"),
    Field("iterations", "integer", low=1, required=False, default=100),
    Field("nudge", **_POSITIVE, required=False, default=0.1),
    Field("step_size", **_POSITIVE, required=False, default=0.1),
    Field("solver_tol", **_POSITIVE, required=False, default=1e-10),
    Field("boundary", "section", fields=_BOUNDARY, required=False, nullable=True),
    Field("diagram", "section", fields=_DIAGRAM, required=False, nullable=True),
    Field("output", "text", required=False),
    Field("devices", "texts", required=False, default=[]),
)


@dataclass(frozen=True)
class Diagram:
    """The phase-diagram grid: extents (None: cover the trajectories) and points per axis."""

    theta_x: tuple[float, float] | None = None
    theta_zz: tuple[float, float] | None = None
    points: tuple[int, int] = _DEFAULT_POINTS


@dataclass(frozen=True)
class ExploreConfig:
    """A parsed exploration file."""

    name: str
    task: str
    starts: tuple[tuple[float, ...], ...]
    iterations: int
    nudge: float
    step_size: float
    solver_tol: float
    output: Path
    diagram: Diagram
    theta_zz: tuple[float, ...] = ()
    separation: float = 0.1
    tolerance: float = 1e-3
    devices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "task": self.task,
            "starts": [list(s) if self.task != "boundary" else s[0] for s in self.starts],
            "iterations": self.iterations,
            "nudge": self.nudge,
            "step_size": self.step_size,
            "solver_tol": self.solver_tol,
            "diagram": {
                "theta_x": None if self.diagram.theta_x is None else list(self.diagram.theta_x),
                "theta_zz": None if self.diagram.theta_zz is None else list(self.diagram.theta_zz),
                "points": list(self.diagram.points),
            },
        }
        if self.devices:
            out["devices"] = list(self.devices)
        if self.task == "boundary":
            out["boundary"] = {
                "theta_zz": list(self.theta_zz),
                "separation": self.separation,
                "tolerance": self.tolerance,
            }
        return out


def load_explore_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExploreConfig:
    """Read an exploration file; ``overrides`` (``iterations``, ``output``) replace its keys."""
    document = read_yaml(path, ConfigError)
    where = str(path)
    if isinstance(document, dict):
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        document.update({k: str(v) if isinstance(v, Path) else v for k, v in given.items()})
    top = parse_section(document, _TOP, where, ConfigError)
    task = top["task"]
    starts = tuple(
        tuple(start) if isinstance(start, list) else (start,)
        for start in parse_value(top["starts"], _STARTS[task], where, ConfigError)
    )
    for start in starts:
        if task == "sensitivity" and start[1] == start[2]:
            raise ConfigError(f"{where}: start {list(start)} needs g1 != g2 (the slope is undefined)")
    diagram_cfg = top["diagram"] or {}
    extents = {
        k: None if diagram_cfg.get(k) is None else tuple(diagram_cfg[k]) for k in ("theta_x", "theta_zz")
    }
    points = diagram_cfg.get("points") or _DEFAULT_POINTS
    diagram = Diagram(extents["theta_x"], extents["theta_zz"], (points[0], points[1]))
    extra: dict[str, Any] = {}
    if task == "boundary":
        if top["boundary"] is None:
            raise ConfigError(
                f"{where}: task boundary needs a boundary section "
                f"(keys: {', '.join(f.name for f in _BOUNDARY)})"
            )
        extra = {**top["boundary"], "theta_zz": tuple(top["boundary"]["theta_zz"])}
        tolerance = extra.get("tolerance", ExploreConfig.tolerance)
        if tolerance > top["step_size"]:
            raise ConfigError(
                f"{where}: boundary.tolerance = {tolerance!r} must be <= step_size {top['step_size']!r}"
            )
    elif top["boundary"] is not None:
        raise ConfigError(f"{where}: boundary section is only for task boundary, not {task}")
    name = plain_name(top["name"], f"{where}: name", ConfigError) if top["name"] else Path(path).stem
    if (overrides or {}).get("output") is not None:
        output = Path(top["output"])  # from the command line: the user's choice
    elif top["output"]:
        output = file_output(top["output"], where, ConfigError)
    else:
        output = Path("runs") / plain_name(
            name, f"{where}: name (from the file name; set name: or --output)", ConfigError
        )
    config = ExploreConfig(
        name=name,
        task=task,
        starts=starts,
        iterations=top["iterations"],
        nudge=top["nudge"],
        step_size=top["step_size"],
        solver_tol=top["solver_tol"],
        output=output,
        diagram=diagram,
        devices=tuple(reference_from_file("devices", name, path) for name in top["devices"]),
        **extra,
    )
    check_memory(config, where)
    return config


#: bytes kept per iteration (a step of a trajectory or boundary and its metrics record; measured
#: with tracemalloc: about 0.9 KB)
STEP_BYTES = 1024


def exploration_bytes(config: ExploreConfig) -> int:
    """The bytes :func:`run_exploration` keeps at its peak: the phase diagram (values and plot per
    grid point) and every iteration's step and record (at most ``iterations`` per start, and per
    theta_zz of a boundary)."""
    n_x, n_zz = config.diagram.points
    steps = len(config.starts) * config.iterations * max(1, len(config.theta_zz))
    return (grid_bytes(n_x, n_zz) + PLOT_POINT_BYTES * n_x * n_zz) + STEP_BYTES * steps


def check_memory(config: ExploreConfig, where: str = "explore") -> None:
    """Refuse a configuration whose run would exceed the memory limit, before anything runs."""
    n_x, n_zz = config.diagram.points
    require_memory(
        f"{where}: a phase diagram of {n_x} x {n_zz} points and {config.iterations} iterations per "
        f"start{' and theta_zz' if config.task == 'boundary' else ''}",
        exploration_bytes(config),
    )


# -- running -----------------------------------------------------------------------------------------

#: ``progress(stage, done, total, text)``: stage "iterations" or "diagram".
ProgressCallback = Callable[[str, int, int, str], None]


def device_reports(
    devices: tuple[str, ...], *, nominal: bool = False, history: str | Path | None = None
) -> dict[str, Any]:
    """How each device (with the calibration in force, or as its file says with ``nominal``) realises
    the chain's operators (``qep-analog device map``), what it cannot, and the profile used."""
    from qep_analog.calibration.in_force import load_profile
    from qep_analog.devices.mapping import map_model

    model = open_cluster_ising()
    reports = {}
    for name in devices:
        profile = load_profile(name, nominal=nominal, history=history)
        reports[name] = {**map_model(model, profile).to_document(), "profile": profile.provenance()}
    return reports


def _summary(trajectory: Trajectory) -> dict[str, Any]:
    names, objective = trajectory.parameter_names, trajectory.objective_name
    at = trajectory.at(REPORT_STEP)
    return {
        "start": list(trajectory.start),
        "iterations": len(trajectory),
        "final": trajectory.final.record(names, objective),
        "best": trajectory.best.record(names, objective),
        f"at_step_{REPORT_STEP}": None if at is None else at.record(names, objective),
        "degenerate_steps": trajectory.degenerate_steps,
        "small_gap_steps": trajectory.small_gap_steps,
        "trajectory": {
            "parameters": [list(s.parameters) for s in trajectory.steps],
            objective: [s.objective for s in trajectory.steps],
        },
    }


def _boundary_summary(boundary: Boundary) -> dict[str, Any]:
    return {
        "start": boundary.start_center,
        "iterations": sum(p.iterations for p in boundary.points),
        "converged": all(p.converged for p in boundary.points),
        "degenerate_points": sum(
            1 for p in boundary.points if p.gap is not None and p.gap < boundary.degeneracy_tol
        ),
        "points": [
            {
                "theta_zz": p.theta_zz,
                "center": p.center,
                "slope": p.slope,
                "iterations": p.iterations,
                "converged": p.converged,
                "gap": p.gap,
                "small_gap": p.steps[-1].small_gap,
            }
            for p in boundary.points
        ],
    }


def _extent(
    values: list[float], fixed: tuple[float, float] | None, minimum: tuple[float, float]
) -> tuple[float, float]:
    """The fixed extent, or the values' range padded by 10 % (at least 0.25), covering ``minimum``."""
    if fixed is not None:
        return fixed
    low, high = min([*values, minimum[0]]), max([*values, minimum[1]])
    pad = max(0.1 * (high - low), 0.25)
    return float(np.floor((low - pad) * 4) / 4), float(np.ceil((high + pad) * 4) / 4)


#: the files of a run an exploration would replace (a training's checkpoint among them)
RUN_FILES = ("checkpoint.json", "result.json", "metrics.jsonl")


def held_run_files(folder: Path) -> list[str]:
    """The files of a run in ``folder`` (:data:`RUN_FILES`), except the ``metrics.jsonl`` alone of an
    exploration killed while it wrote its files: an exploration has no resume, so a rerun writes
    that one again (a training's metrics, or any beside a result, count)."""
    held = present_files(folder, RUN_FILES)
    if held == ["metrics.jsonl"] and _exploration_metrics(folder / "metrics.jsonl"):
        return []
    return held


def _exploration_metrics(path: Path) -> bool:
    """Whether ``path`` starts with the header line of an exploration's metrics."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(4096)
        header = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and header.get("schema") == METRICS_SCHEMA


def run_exploration(
    config: ExploreConfig,
    output: str | Path | None = None,
    progress: ProgressCallback | None = None,
    *,
    nominal: bool = False,
    history: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run every start of ``config``, compute the phase diagram, write the run folder; returns the
    ``result.json`` document. ``nominal`` and ``history`` choose the calibration of the device
    reports' profiles (see :func:`device_reports`), made before anything runs so that an unknown
    device costs nothing. The folder is locked while the exploration runs (a second writer is
    refused at once); one that holds a run (:func:`held_run_files`) is refused unless ``overwrite``.
    Every file is written atomically once everything is computed, ``result.json`` last."""
    check_memory(config)
    folder = Path(output) if output is not None else config.output
    devices = device_reports(config.devices, nominal=nominal, history=history) if config.devices else {}
    with folder_lock(folder, "exploration folder"):
        if not overwrite:
            refuse_held_run(folder, held_run_files(folder), "pass --overwrite to replace it")
        result = _explore(config, folder, progress)
        if devices:
            result["devices"] = devices
        write_json(folder / "result.json", result, RESULT_SCHEMA)
        if overwrite:  # a training's checkpoint would resume with this exploration's metrics
            (folder / "checkpoint.json").unlink(missing_ok=True)
    return {"schema": RESULT_SCHEMA, **result}


def _explore(config: ExploreConfig, folder: Path, progress: ProgressCallback | None) -> dict[str, Any]:
    """The trajectories and the phase diagram of ``config``; writes ``metrics.jsonl`` and the plots
    to ``folder`` and returns the ``result.json`` document (without devices)."""
    eq = Equilibrium(open_cluster_ising(), tol=config.solver_tol)
    records: list[dict[str, Any]] = []
    trajectories: list[Trajectory] = []
    boundaries: list[Boundary] = []
    began = time.perf_counter()
    if config.task == "boundary":
        total = len(config.starts) * len(config.theta_zz)
        for index, (centre,) in enumerate(config.starts):
            position = {"done": index * len(config.theta_zz), "theta_zz": None}

            def on_boundary_step(step: Step, index: int = index, position: dict = position) -> None:
                records.append({"branch": index, **step.record(BOUNDARY_PARAMETERS, "slope")})
                theta_zz, centre_now = step.parameters
                if position["theta_zz"] is not None and theta_zz != position["theta_zz"]:
                    position["done"] += 1
                position["theta_zz"] = theta_zz
                if progress is not None:
                    text = f"branch {index + 1}  theta_zz {theta_zz:.3g}  g_c {centre_now:.4f}"
                    progress("iterations", position["done"], total, text)

            boundary = follow_boundary(
                config.theta_zz,
                centre,
                separation=config.separation,
                nudge=config.nudge,
                step_size=config.step_size,
                tolerance=config.tolerance,
                max_iterations=config.iterations,
                equilibrium=eq,
                progress=on_boundary_step,
            )
            boundaries.append(boundary)
            if progress is not None:
                progress("iterations", (index + 1) * len(config.theta_zz), total, "")
        points_x = [c for b in boundaries for c in b.centers]
        points_zz = [z for b in boundaries for z in b.theta_zz]
    else:
        total = len(config.starts) * config.iterations
        run = explore_phase if config.task == "phase_exploration" else optimise_sensitivity
        for index, start in enumerate(config.starts):

            def on_step(step: Step, index: int = index) -> None:
                names = PHASE_PARAMETERS if config.task == "phase_exploration" else SENSITIVITY_PARAMETERS
                objective = "cost" if config.task == "phase_exploration" else "slope"
                records.append({"start": index, **step.record(names, objective)})
                if progress is not None:
                    text = f"start {index + 1}/{len(config.starts)}  {objective} {step.objective:.4f}"
                    progress("iterations", index * config.iterations + step.iteration + 1, total, text)

            trajectories.append(
                run(
                    start,  # type: ignore[arg-type]
                    config.iterations,
                    config.nudge,
                    config.step_size,
                    eq,
                    progress=on_step,
                )
            )
        steps = [s for t in trajectories for s in t.steps]
        if config.task == "phase_exploration":
            points_x = [s.parameters[0] for s in steps]
            points_zz = [s.parameters[1] for s in steps]
        else:
            points_x = [g for s in steps for g in s.parameters[1:]]
            points_zz = [s.parameters[0] for s in steps]
    run_seconds = time.perf_counter() - began

    began = time.perf_counter()
    x_range = _extent(points_x, config.diagram.theta_x, (-1.0, 1.0))
    zz_range = _extent(points_zz, config.diagram.theta_zz, (-1.0, 1.0))
    nx, nzz = config.diagram.points
    grid = correlation_grid(
        np.linspace(*x_range, nx),
        np.linspace(*zz_range, nzz),
        eq,
        batch_size=256,
        progress=None if progress is None else lambda d, t: progress("diagram", d, t, "phase diagram"),
    )
    diagram_seconds = time.perf_counter() - began

    header = {"schema": METRICS_SCHEMA, "name": config.name, "task": config.task}
    lines = [json.dumps(header, allow_nan=False)] + [json.dumps(r, allow_nan=False) for r in records]
    atomic_write_text(folder / "metrics.jsonl", "\n".join(lines) + "\n")
    title = f"{config.name}: <X0 X4> ({config.task})"
    plot_phase_diagram(
        grid, folder / "phase_diagram.png", trajectories=trajectories, boundaries=boundaries, title=title
    )
    if trajectories:
        plot_objective(trajectories, folder / "objective.png")
    else:
        plot_boundary(boundaries, folder / "boundary.png")
    result: dict[str, Any] = {
        "name": config.name,
        "task": config.task,
        "config": config.to_dict(),
        "runs": [_summary(t) for t in trajectories] or [_boundary_summary(b) for b in boundaries],
        "diagram": {
            "theta_x": [*x_range, nx],
            "theta_zz": [*zz_range, nzz],
            "degenerate_points": int(grid.degenerate.sum()),
            "degeneracy_tol": grid.degeneracy_tol,
        },
        "seconds": {"iterations": round(run_seconds, 3), "diagram": round(diagram_seconds, 3)},
    }
    return result
