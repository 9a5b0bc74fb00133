"""A PNG of a schedule's waveforms (one panel per control, MHz on the axis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qep_analog.figures import plt, save_figure
from qep_analog.sequences.schedule import Schedule


def plot_schedules(schedules: list[Schedule], path: str | Path) -> None:
    """Every control of every schedule against time; phases of one QEP step share the panels."""
    names = list(dict.fromkeys(name for s in schedules for name in s.controls))
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 * len(names)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        for schedule in schedules:
            waveform = schedule.controls.get(name)
            if waveform is None:
                continue
            scale = 1.0 if name.endswith("scale") else 1 / (2 * np.pi)
            ax.plot(
                waveform.times, waveform.values * scale, label=f"{schedule.label} ({schedule.readout[0]})"
            )
        ax.set_ylabel(f"{name}\n{'' if name.endswith('scale') else '/2π (MHz)'}")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("time (µs)")
    fig.suptitle(f"{schedules[0].device}: {schedules[0].metadata.get('recipe', '')}")
    save_figure(fig, path)
