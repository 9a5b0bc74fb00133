"""Calibration results, reports and plots in the units the runcard (sweeps) and profile (calibrated
fields) were written in; stored results stay in internal units (rad/µs, µs)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli

from qep_analog.calibration.data import read_data
from qep_analog.calibration.lab_units import axis_label, step_units
from qep_analog.calibration.plots import run_figure
from qep_analog.calibration.runner import read_results

#: the summary prints 6 significant digits
PRINTED = 1e-5
#: rad/µs per MHz and per kHz, and µs per ms, written out here rather than taken from the package
PER_MHZ, PER_KHZ, US_PER_MS = 2 * math.pi, 2 * math.pi / 1000, 1000.0

ION_RUNCARD = """\
schema: qep-runcard/1
name: ion-lab-units
platform: ion
update: dry-run
routines:
  - routine: detuning_spectroscopy
    parameters: {rabi_kHz: 10.0, duration_ms: 0.05, start_kHz: -40.0, stop_kHz: 40.0, points: 41,
                 shots: 400}
  - routine: ramsey
    parameters: {detuning_kHz: 15.0, start_ms: 0.0, stop_ms: 3.0, points: 151, shots: 400}
"""


def printed_rows(text: str, field: str) -> list[tuple[float, float, str]]:
    """(value, error, unit) of every summary row of ``field``, in order."""
    rows = []
    for line in text.splitlines():
        tokens = line.split()
        if field in tokens:
            at = tokens.index(field)
            unit = tokens[at + 3] if len(tokens) > at + 3 else ""
            rows.append((float(tokens[at + 1]), float(tokens[at + 2]), unit))
    return rows


def stored(run: Path, field: str) -> list[tuple[float, float]]:
    """(value, error) in internal units of every device-wide estimate of ``field`` in the run."""
    return [
        (e["value"], e["uncertainty"])
        for result in read_results(run)
        for e in result["estimates"]
        if e["field"] == field and e["site"] is None
    ]


def assert_converted(text: str, run: Path, field: str, per_unit: float, unit: str) -> None:
    rows, values = printed_rows(text, field), stored(run, field)
    assert len(rows) == len(values) >= 1
    for (value, error, shown), (internal, internal_error) in zip(rows, values, strict=True):
        assert shown == unit
        assert value == pytest.approx(internal / per_unit, rel=PRINTED)
        assert error == pytest.approx(internal_error / per_unit, rel=PRINTED)


def assert_axis(ax: object, label: str, sweep: np.ndarray, per_unit: float) -> None:
    assert ax.get_xlabel() == label  # type: ignore[attr-defined]
    points = ax.lines[0].get_xdata()  # type: ignore[attr-defined]  # site 0's data points
    np.testing.assert_allclose(points, sweep / per_unit, rtol=1e-12)


def test_a_rydberg_run_is_shown_in_MHz_and_us(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = ["calibrate", "rydberg-basic", "--device", "fresnel-like", "--backend", "fake-lab", "--quiet"]
    status, text, err = run_cli(capsys, [*argv, "--out", str(run), "--history", str(tmp_path / "h")])
    assert status == 0 and err == ""
    assert_converted(text, run, "detuning_offset", PER_MHZ, "MHz")  # spectroscopy and Ramsey
    assert_converted(text, run, "dephasing_time", 1.0, "µs")
    # the hidden offset is +2π·0.15 MHz: shown near 0.15
    assert printed_rows(text, "detuning_offset")[1][0] == pytest.approx(0.15, abs=0.005)
    # the records keep internal units
    records = json.loads((run / "03-ramsey" / "records.json").read_text())["records"]
    assert {r["unit"] for r in records if r["field"] == "detuning_offset"} == {"rad/µs"}
    assert stored(run, "detuning_offset")[1][0] == pytest.approx(2 * math.pi * 0.15, abs=0.03)

    status, report, _ = run_cli(capsys, ["calibrate", "report", str(run), "--no-plot"])
    assert status == 0
    assert printed_rows(report, "detuning_offset") == printed_rows(text, "detuning_offset")

    fig = run_figure(run)
    spectroscopy, ramsey = fig.axes[1], fig.axes[2]
    sweep = read_data(run / "02-detuning_spectroscopy" / "data.json").sweep
    assert_axis(spectroscopy, "detuning/2π (MHz)", sweep, PER_MHZ)
    assert_axis(ramsey, "delay (µs)", read_data(run / "03-ramsey" / "data.json").sweep, 1.0)


def test_an_ion_run_is_shown_in_kHz_and_ms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card, run = tmp_path / "ion-lab-units.yaml", tmp_path / "run"
    card.write_text(ION_RUNCARD)
    argv = ["calibrate", str(card), "--device", "yb171-chain", "--backend", "fake-lab", "--quiet"]
    status, text, err = run_cli(capsys, [*argv, "--out", str(run), "--history", str(tmp_path / "h")])
    assert status == 0 and err == ""
    assert_converted(text, run, "detuning_offset", PER_KHZ, "kHz")
    assert_converted(text, run, "dephasing_time", US_PER_MS, "ms")
    # the fake chain hides B_0 = 2π·2 kHz and T2* = 0.7 × 2.5 ms
    assert printed_rows(text, "detuning_offset")[1][0] == pytest.approx(2.0, abs=0.01)
    assert printed_rows(text, "dephasing_time")[0][0] == pytest.approx(1.75, abs=0.05)

    fig = run_figure(run)
    sweep = read_data(run / "01-detuning_spectroscopy" / "data.json").sweep
    assert_axis(fig.axes[0], "detuning/2π (kHz)", sweep, PER_KHZ)
    assert_axis(fig.axes[1], "delay (ms)", read_data(run / "02-ramsey" / "data.json").sweep, US_PER_MS)
    assert fig.axes[1].lines[0].get_xdata()[-1] == pytest.approx(3.0, rel=1e-12)

    # a run stored before runs kept their units is shown in internal units
    document = json.loads((run / "run.json").read_text())
    for step in document["steps"]:
        del step["units"]
    (run / "run.json").write_text(json.dumps(document))
    status, report, _ = run_cli(capsys, ["calibrate", "report", str(run), "--no-plot"])
    assert status == 0
    assert_converted(report, run, "detuning_offset", 1.0, "rad/µs")


def test_units_per_quantity() -> None:
    # the sweep in its bounds' unit; the fields in the profile's units, whatever the step writes
    sideband = ("rabi_MHz", "duration_us", "start_kHz", "stop_kHz", "points")
    profile = ("axial_frequency_MHz", "radial_frequencies_MHz", "dephasing_time_ms", "max_rabi_MHz")
    fields = ("radial_frequency", "axial_frequency")
    assert step_units(sideband, sideband, profile, "rad/µs", fields) == {
        "sweep": "kHz",
        "radial_frequency": "MHz",
        "axial_frequency": "MHz",
    }
    ramsey = ("detuning_kHz", "stop_us")
    # the step agrees on kHz and µs: the sweep takes µs, the offset the profile's first frequency unit
    # (it writes no offset) and T2* the profile's ms
    assert step_units(ramsey, ramsey, profile, "µs", ("detuning_offset", "dephasing_time")) == {
        "sweep": "us",
        "detuning_offset": "MHz",
        "dephasing_time": "ms",
    }
    # per-site offsets follow the device-wide offset's key when the profile writes only that one
    written = ("max_rabi_MHz", "detuning_offset_kHz")
    assert step_units(ramsey, (), written, "µs", ("site_detuning_offsets",)) == {
        "sweep": "us",
        "site_detuning_offsets": "kHz",
    }
    # nothing of that dimension in the profile: the internal unit (the runcard's ms is the sweep's only)
    assert step_units((), ("stop_ms",), ("max_rabi_MHz",), "µs", ("dephasing_time", "ramp_duration")) == {
        "sweep": "ms",
        "dephasing_time": "us",
        "ramp_duration": "us",
    }
    assert step_units((), (), (), "", ("detuning_offset", "rabi_scale")) == {
        "detuning_offset": "rad_per_us"
    }
    # `_rad_per_us` is not read as `_us`
    assert step_units(("transverse_rad_per_us",), (), (), "µs", ()) == {"sweep": "us"}


def test_axis_labels() -> None:
    assert axis_label("detuning", "rad/µs", "kHz") == "detuning/2π (kHz)"
    assert axis_label("detuning", "rad/µs", "rad_per_us") == "detuning (rad/µs)"
    assert axis_label("delay", "µs", "ms") == "delay (ms)"
    assert axis_label("delay", "µs", None) == "delay (µs)"
    assert axis_label("prepared", "", None) == "prepared"
