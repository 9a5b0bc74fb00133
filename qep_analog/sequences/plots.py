"""A PNG of the schedules of one QEP step in lab units: what is static (Rydberg: the register in µm and
the detuning-map weights, where the nudge lives; ions: the Rabi frequencies Ω_i/2π and Stark shifts
Δ_i/2π in kHz) and every control against time (Rydberg: Ω/2π, δ/2π, Δ/2π in MHz; ions: the field
B/2π in kHz and the dimensionless coupling and Stark scales)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.devices.platform import ION, RYDBERG, Platform
from qep_analog.figures import plt, save_figure
from qep_analog.sequences.schedule import Schedule

#: rad/µs per unit of each cyclic frequency unit
PER_UNIT = {"MHz": 2 * math.pi, "kHz": 2 * math.pi * 1e-3}
#: the unit each platform's frequencies are shown in
FREQUENCY_UNIT = {RYDBERG: "MHz", ION: "kHz"}
#: controls without a dimension (drawn as they are)
SCALES = ("coupling_scale", "stark_scale")
LABELS = {
    "rabi": "Ω/2π",
    "detuning": "δ/2π",
    "local_amplitude": "Δ/2π (map)",
    "global_field": "B/2π",
    "coupling_scale": "coupling scale",
    "stark_scale": "Stark scale",
}


def in_unit(values: Any, unit: str) -> NDArray:
    """Angular frequencies (rad/µs) as cyclic frequencies in ``unit`` (MHz or kHz)."""
    return np.asarray(values, dtype=float) / PER_UNIT[unit]


def phases(schedules: list[Schedule]) -> list[Schedule]:
    """One schedule per phase label (the readout bases of a phase share their controls)."""
    first: dict[str, Schedule] = {}
    for schedule in schedules:
        first.setdefault(schedule.label, schedule)
    return list(first.values())


def plot_schedules(schedules: list[Schedule], path: str | Path) -> None:
    """Write :func:`schedule_figure` as a PNG."""
    save_figure(schedule_figure(schedules), path)


def schedule_figure(schedules: list[Schedule]) -> Any:
    """The static settings and every control of every phase; phases of one QEP step share the panels."""
    shown = phases(schedules)
    platform = shown[0].platform_spec
    unit = FREQUENCY_UNIT[platform]
    statics = _STATIC_PANELS[platform]
    names = list(dict.fromkeys(name for s in shown for name in s.controls))
    rows = len(statics) + len(names)
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.4 * rows), squeeze=False)
    for ax, draw in zip(axes[: len(statics), 0], statics, strict=True):
        draw(ax, shown, unit)
    for ax, name in zip(axes[len(statics) :, 0], names, strict=True):
        _control(ax, shown, name, unit)
    axes[-1, 0].set_xlabel("time (µs)")
    fig.suptitle(f"{shown[0].device}: {shown[0].metadata.get('recipe', '')}")
    return fig


def _control(ax: Any, schedules: list[Schedule], name: str, unit: str) -> None:
    scale = name in SCALES
    for schedule in schedules:
        waveform = schedule.controls.get(name)
        if waveform is not None:
            values = waveform.values if scale else in_unit(waveform.values, unit)
            ax.plot(waveform.times, values, label=schedule.label)
    ax.set_ylabel(LABELS.get(name, name) + ("" if scale else f" ({unit})"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _bars(ax: Any, schedules: list[Schedule], key: str, scale: Callable[[NDArray], NDArray]) -> None:
    """One group of bars per site, one bar per phase."""
    width = 0.8 / len(schedules)
    for k, schedule in enumerate(schedules):
        values = scale(np.asarray(schedule.static[key], dtype=float))
        sites = np.arange(values.size)
        ax.bar(sites + (k - (len(schedules) - 1) / 2) * width, values, width, label=schedule.label)
    ax.set_xlabel("site")
    ax.set_xticks(np.arange(schedules[0].n_qubits))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)


def _register(ax: Any, schedules: list[Schedule], unit: str) -> None:
    positions = np.asarray(schedules[0].static["positions"], dtype=float)
    weights = np.asarray(schedules[0].static.get("local_weights", np.zeros(len(positions))), dtype=float)
    points = ax.scatter(positions[:, 0], positions[:, 1], c=weights, cmap="viridis", vmin=0, vmax=1, s=80)
    for site, (x, y) in enumerate(positions):
        ax.annotate(str(site), (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"register ({schedules[0].label} phase's detuning-map weight in colour)", fontsize=9)
    plt.colorbar(points, ax=ax, label="weight")


def _weights(ax: Any, schedules: list[Schedule], unit: str) -> None:
    if "local_weights" not in schedules[0].static:
        ax.set_title("no detuning map", fontsize=9)
        return
    _bars(ax, schedules, "local_weights", lambda w: w)
    ax.set_ylabel("detuning-map weight")


def _rabi(ax: Any, schedules: list[Schedule], unit: str) -> None:
    _bars(ax, schedules[:1], "rabi", lambda v: in_unit(v, unit))
    ax.set_ylabel(f"Ω_i/2π ({unit})")


def _stark(ax: Any, schedules: list[Schedule], unit: str) -> None:
    _bars(ax, schedules, "stark_shifts", lambda v: in_unit(v, unit))
    ax.set_ylabel(f"Stark shift Δ_i/2π ({unit})")


Panel = Callable[[Any, list[Schedule], str], None]
#: the panels of each platform's static settings, drawn above the controls
_STATIC_PANELS: dict[Platform, tuple[Panel, ...]] = {
    RYDBERG: (_register, _weights),
    ION: (_rabi, _stark),
}
