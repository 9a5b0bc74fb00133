"""The figure of a calibration history: one panel per field, each series (site, routine) against
time with its error bars, the changes flagged by :mod:`qep_analog.calibration.drift` marked in red."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qep_analog.calibration.drift import CHANGE_THRESHOLD, Change, Series
from qep_analog.calibration.lab_units import axis_label, shown_in
from qep_analog.calibration.records import FIELDS
from qep_analog.figures import plt, save_figure

#: most series drawn with a legend entry each in one panel (more: the legend is left out)
LEGEND_ENTRIES = 12


def plot_history(
    series: Sequence[Series],
    changes: Sequence[Change],
    path: str | Path,
    *,
    title: str = "",
    threshold: float = CHANGE_THRESHOLD,
    units: Mapping[str, str] | None = None,
) -> Path:
    """Draw :func:`history_figure` into the PNG ``path``."""
    target = Path(path)
    figure = history_figure(series, changes, title=title, threshold=threshold, units=units)
    save_figure(figure, target, dpi=110)
    return target


def history_figure(
    series: Sequence[Series],
    changes: Sequence[Change],
    *,
    title: str = "",
    threshold: float = CHANGE_THRESHOLD,
    units: Mapping[str, str] | None = None,
) -> Any:
    """One panel per field of ``series``: value ± error against the record time, one colour per
    series; each change of ``changes`` larger than ``threshold`` combined errors is drawn as a red
    segment between its two records, its later record circled. Device-wide series are black. Each
    field is drawn in the unit of its suffix in ``units`` (:func:`~qep_analog.calibration.lab_units.
    profile_units`), else in its internal unit."""
    units = units or {}
    fields = list(dict.fromkeys(s.field for s in series))
    rows = max(len(fields), 1)
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.6 * rows), squeeze=False)
    if not fields:
        axes[0, 0].text(0.5, 0.5, "no good records", ha="center", va="center")
        axes[0, 0].set_axis_off()
    flagged = [c for c in changes if c.flagged(threshold)]
    for ax, name in zip(axes[:, 0], fields, strict=False):
        own = [s for s in series if s.field == name]
        unit, suffix = FIELDS[name].unit, units.get(name)

        def shown(value: float, unit: str = unit, suffix: str | None = suffix) -> float | None:
            return shown_in(value, unit, suffix)

        for k, s in enumerate(own):
            times = [r.time for r in s.records]
            values = [shown(r.value) for r in s.records]
            errors = [shown(r.uncertainty) for r in s.records]
            device_wide = s.site is None  # drawn in black, over the per-site series
            ax.errorbar(
                times, values, errors, fmt="o-", ms=3, lw=1.4 if device_wide else 0.7, capsize=2,
                color="k" if device_wide else f"C{k % 10}", label=s.label, zorder=3 if device_wide else 2,
            )  # fmt: skip
        marked = [c for c in flagged if c.series.field == name]
        for c in marked:
            ends = [shown(c.before.value), shown(c.after.value)]
            ax.plot([c.before.time, c.after.time], ends, color="red", lw=2)
            ax.plot([c.after.time], ends[1:], "o", ms=10, mfc="none", mec="red", mew=1.5)
        ax.set_ylabel(axis_label(name, unit, suffix), fontsize=8)  # name/2π (MHz) for a frequency
        ax.set_title(f"{name}: {len(marked)} change(s) > {threshold:g}σ of the combined errors", fontsize=9)
        if len(own) <= LEGEND_ENTRIES:
            ax.legend(fontsize=6, loc="best")
        ax.tick_params(axis="x", labelsize=7, rotation=20)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
