"""Drift over days: the fake labs' random walk, the lab's clock on the records, and
``calibrate history`` flagging changes larger than 3σ (table, plot, one-line errors)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import poisson

from qep_analog.calibration.drift import (
    CHANGE_THRESHOLD,
    Change,
    false_alarm_rate,
    history_series,
    series_changes,
)
from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.fakes.random_walk import STEPS_PER_DAY, RandomWalk
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab, HiddenRydbergParameters
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.runcard import load_runcard
from qep_analog.calibration.runner import run_runcard
from qep_analog.cli import main
from qep_analog.devices.profile import read_profile
from qep_analog.errors import ConfigError

#: the changes of a history and the lab's true parameters on each day
Days = tuple[list[Change], list[HiddenRydbergParameters]]
#: the folder of a drifting lab's history, its changes and its true parameters
Drifting = tuple[Path, list[Change], list[HiddenRydbergParameters]]
START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
DAYS = 8
#: a short single-atom runcard: readout errors, detuning offset and T2*, Ω scale (≈ 0.3 s a day)
RUNCARD = """schema: qep-runcard/1
name: rydberg-drift-check
platform: rydberg
routines:
  - routine: readout
    parameters: {repeats: 4, shots: 250}
  - routine: ramsey
    parameters: {detuning_MHz: 1.0, start_us: 0.0, stop_us: 4.0, points: 41, shots: 200}
  - routine: rabi
    parameters: {rabi_MHz: 1.0, start_us: 0.0, stop_us: 2.5, points: 31, shots: 200}
"""
#: drifting fields of the test lab: Ω scale 2 %/√day, detuning offset 0.15 rad/µs/√day (others held)
WALK = {"rabi_scale": 0.02, "detuning_offset": 0.15}
#: a change whose true size is at least this many combined errors must be flagged (a miss at 6σ
#: true is a 3σ fluctuation: 0.13 %), one at most this many must not (a false flag at 0.5σ true:
#: 0.6 %)
CLEARLY_ABOVE, CLEARLY_BELOW = 6.0, 0.5


def calibrated_days(
    tmp_path: Path, walk: RandomWalk | None, seed: int, bad: list[str] | None = None
) -> Days:
    """The changes of a history written by the test runcard on days 0 … DAYS−1 of a lab drifting
    by ``walk``, and the lab's true parameters on each day; every step must be good unless ``bad``
    (a list) is given, which then collects the bad steps' reasons."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "runcard.yaml").write_text(RUNCARD)
    runcard = load_runcard(str(tmp_path / "runcard.yaml"))
    profile = read_profile("fresnel-like")
    lab = FakeRydbergLab.for_profile(profile, 4, seed=seed, drift=walk, start=START)
    history = CalibrationHistory(tmp_path / "history", profile.name)
    truth = []
    for day in range(DAYS):
        lab.set_day(day)
        truth.append(lab.hidden)
        outcome = run_runcard(runcard, profile, lab, tmp_path / f"day{day}", history)
        reasons = [f"day {day} {s.routine}: {r}" for s in outcome.steps for r in s.result.reasons]
        if bad is None:
            assert reasons == []
        else:  # kept: a bad step's records are left out of the series
            bad += reasons
    return series_changes(history_series(history.read().records)), truth


def true_value(hidden: HiddenRydbergParameters, field: str, site: int | None) -> float:
    """The true value a record of ``field`` on ``site`` (None: device-wide) measures."""
    if field == "rabi_scale":
        return float(hidden.rabi_scale if site is None else hidden.rabi_scales[site])
    return float(hidden.detuning_offset if site is None else hidden.detuning_offsets[site])


def day_of(change_time: dt.datetime, start: dt.datetime = START) -> int:
    """The lab day of a record: its time is the day's start plus the device time the run spent
    before it (hours, less than a day here)."""
    days = (change_time - start) / dt.timedelta(days=1)
    assert 0 <= days - math.floor(days) < 0.5
    return math.floor(days)


def test_the_walk_is_seeded_reproducible_and_has_its_stated_rms() -> None:
    walk = RandomWalk({"rabi_scale": 0.01}, seed=3)
    # a function of (seed, field, site, day) alone: the same value whatever was asked before
    assert walk.change("rabi_scale", 0, 4, 3.0) == pytest.approx(walk.change("rabi_scale", 0, 4, 3.0))
    assert np.all(RandomWalk({"rabi_scale": 0.01}, seed=4).change("rabi_scale", 0, 4, 3.0) != 0)
    assert np.all(walk.change("held", 1, 4, 3.0) == 0)
    # over many independent walks (sites) the change after d days has rms σ·√d (stat. error ≈ 2 %)
    changes = walk.change("rabi_scale", 0, 2000, 4.0)
    assert np.sqrt(np.mean(changes**2)) == pytest.approx(0.01 * 2.0, rel=0.06)
    assert STEPS_PER_DAY == 24
    profile = read_profile("fresnel-like")
    lab = FakeRydbergLab.for_profile(profile, 4, drift=RandomWalk({"rabi_scale": 0.01}, seed=3))
    other = FakeRydbergLab.for_profile(profile, 4, drift=RandomWalk({"rabi_scale": 0.01}, seed=3))
    lab.advance(1.0)
    lab.advance(2.0)
    other.set_day(3.0)
    assert lab.hidden == other.hidden and lab.day == 3.0
    assert lab.hidden.rabi_scale == pytest.approx(1.06 + walk.change("rabi_scale", 0, 1, 3.0)[0])
    assert lab.hidden.detuning_offset == lab._base.detuning_offset  # held: not in the walk
    assert lab.device_now() is None  # no start: the lab follows the wall clock


def test_the_ion_lab_drifts_its_trap_and_rebuilds_its_true_profile() -> None:
    profile = read_profile("ca40-chain")
    lab = FakeIonLab.for_profile(profile, 3, drift=FakeIonLab.default_drift(seed=1), start=START)
    axial = lab.true_profile().ions.axial_frequency
    lab.advance(5.0)
    assert lab.true_profile().ions.axial_frequency == lab.hidden.axial_frequency != axial
    assert lab.device_now() == START + dt.timedelta(days=5)
    unchanged = FakeIonLab.for_profile(profile, 3)
    unchanged.advance(5.0)
    assert unchanged.hidden == FakeIonLab.for_profile(profile, 3).hidden


def test_drift_arguments_are_checked_in_one_line() -> None:
    profile = read_profile("fresnel-like")
    with pytest.raises(ConfigError, match=r"field 'speed' cannot drift \(known: rabi_scale"):
        FakeRydbergLab.for_profile(profile, drift=RandomWalk({"speed": 0.1}))
    with pytest.raises(ConfigError, match="negative"):
        RandomWalk({"rabi_scale": -0.1})
    with pytest.raises(ConfigError, match="time zone"):
        FakeRydbergLab.for_profile(profile, start=dt.datetime(2026, 1, 1))
    lab = FakeRydbergLab.for_profile(profile)
    with pytest.raises(ConfigError, match="advance by -1"):
        lab.advance(-1)


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory) -> Drifting:
    """A history of DAYS days of the test lab drifting by WALK (seed 1), its folder and truth."""
    folder = tmp_path_factory.mktemp("drifting")
    changes, truth = calibrated_days(folder, RandomWalk(WALK, seed=1), seed=1)
    return folder, changes, truth


def test_drifting_lab_history_flags_exactly_the_clear_jumps(
    drifting: Drifting,
) -> None:
    _, changes, truth = drifting
    assert {c.series.field for c in changes} >= {"rabi_scale", "detuning_offset", "dephasing_time"}
    above = below = 0
    held = []
    for c in changes:
        assert c.after.time - c.before.time == dt.timedelta(days=1)  # the lab's clock on the records
        if c.series.field not in WALK:
            held.append(c)
            continue
        before, after = day_of(c.before.time), day_of(c.after.time)
        field, site = c.series.field, c.series.site
        jump = true_value(truth[after], field, site) - true_value(truth[before], field, site)
        if abs(jump) >= CLEARLY_ABOVE * c.sigma:
            above += 1
            assert c.flagged(), f"{c.series.label} day {before}→{after}: true jump {jump:.4g} missed"
        elif abs(jump) <= CLEARLY_BELOW * c.sigma:
            below += 1
            assert not c.flagged(), f"{c.series.label} day {before}→{after}: flagged, true {jump:.4g}"
    assert above >= 10 and below >= 3  # both kinds occur on this seed
    # the held fields (readout errors, T2*): no more flags than honest errors give by chance
    bound = poisson.ppf(0.999, len(held) * false_alarm_rate())
    assert sum(c.flagged() for c in held) <= bound


def test_without_drift_the_flags_stay_at_the_false_alarm_rate(tmp_path: Path) -> None:
    changes, truth = calibrated_days(tmp_path, None, seed=5)
    assert all(t == truth[0] for t in truth)
    expected = len(changes) * false_alarm_rate()
    assert false_alarm_rate(CHANGE_THRESHOLD) == pytest.approx(0.0026998, rel=1e-4)
    assert len(changes) == 7 * 25  # 25 series (fields × sites) of 8 days
    assert sum(c.flagged() for c in changes) <= poisson.ppf(0.999, expected)  # λ ≈ 0.47: ≤ 4


def test_calibrate_history_prints_the_flags_and_draws_them(
    drifting: Drifting, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, changes, _ = drifting
    flagged = [c for c in changes if c.flagged() and c.series.field == "rabi_scale"]
    history, plot = str(folder / "history"), tmp_path / "drift.png"
    argv = ["calibrate", "history", "fresnel-like", "--history", history, "--field", "rabi_scale"]
    assert main([*argv, "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert f"{len(changes_of(changes, 'rabi_scale'))}, {len(flagged)} larger than 3 sigma" in text
    table = text.split("jump/sigma\n", 1)[1].split("plot in")[0].splitlines()
    assert len(table) == len(flagged) >= 5
    for row, change in zip(table, flagged, strict=True):  # field, site, routine, …, jump/σ
        site = "-" if change.series.site is None else str(change.series.site)
        assert row.split()[:3] == ["rabi_scale", site, "rabi"]
        assert float(row.split()[-1]) == pytest.approx(change.significance, rel=5.1e-3)  # 3 digits
    assert "dephasing_time" not in text  # --field keeps the one field
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    from matplotlib.image import imread

    assert imread(plot).ndim == 3  # a PNG matplotlib reads back

    assert main([*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert sum(c["flagged"] for c in document["changes"]) == len(flagged)
    first = next(c for c in document["changes"] if c["flagged"])
    assert abs(first["jump"]) > 3 * first["sigma"] and first["significance"] > 3
    assert all(r["field"] == "rabi_scale" for r in document["records"])
    assert math.isclose(document["threshold_sigma"], 3.0)


def changes_of(changes: list[Change], field: str) -> list[Change]:
    return [c for c in changes if c.series.field == field]


def test_calibrate_history_names_the_known_fields_of_a_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = CalibrationHistory(tmp_path, "fresnel-like")
    from qep_analog.calibration.records import CalibrationRecord

    history.append(
        [
            CalibrationRecord(
                field="rabi_scale", value=1.02, uncertainty=0.001, unit="", run_id="r1",
                routine="rabi", timestamp="2026-11-23T16:00:00+00:00", quality="good", valid=True,
                device="fresnel-like", profile_version=1, runcard="rydberg-basic",
            )
        ]
    )  # fmt: skip
    argv = ["calibrate", "history", "fresnel-like", "--history", str(tmp_path)]
    assert main([*argv, "--field", "speed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'speed' is not a calibrated field (recorded: rabi_scale)" in err[0]
    assert main([*argv, "--field", "dephasing_time"]) == 2
    assert "no good record" in capsys.readouterr().err
    assert main(["calibrate", "report", str(tmp_path), "--field", "rabi_scale"]) == 2
    assert "option of 'calibrate history'" in capsys.readouterr().err


def test_calibrate_day_runs_the_fake_lab_on_that_day_of_its_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--day 6``: the lab of the command line at day 6 of its default drift (``--drift-seed``)."""
    argv = ["calibrate", "rydberg-basic", "--device", "fresnel-like", "--backend", "fake-lab", "--quiet"]
    history = ["--history", str(tmp_path / "h")]
    assert main([*argv, "--out", str(tmp_path / "run"), *history, "--day", "6", "--drift-seed", "2"]) == 0
    capsys.readouterr()
    lab = FakeRydbergLab.for_profile(read_profile("fresnel-like"), 4, drift=FakeRydbergLab.default_drift(2))
    lab.set_day(6)
    start = FakeRydbergLab.for_profile(read_profile("fresnel-like"), 4).hidden
    records = CalibrationHistory(tmp_path / "h", "fresnel-like").read().records
    by_id = {r.record_id.split(":", 1)[1]: r for r in records}
    for key in ("rabi_scale", "detuning_offset"):
        true, record = getattr(lab.hidden, key), by_id[key]
        assert abs(true - getattr(start, key)) > 5 * record.uncertainty  # the walk moved it clearly
        assert abs(record.value - true) < 4 * record.uncertainty, (key, record.value, true)
    assert main([*argv, "--out", str(tmp_path / "bad"), *history, "--day", "-1"]) == 2
    assert "simulated day -1.0 is not in [0, 10000]" in capsys.readouterr().err


@pytest.mark.slow
def test_the_stated_errors_make_the_false_alarm_rate_honest(tmp_path: Path) -> None:
    """Over 6 seeds of a stable lab (6 days each) the changes' jump/σ has rms within [0.7, 1.3] for
    every field, and the flags stay within the 99.9 % Poisson quantile of 2Φ(−3) per change."""
    pulls: dict[str, list[float]] = {}
    total = flagged = 0
    bad: list[str] = []
    for seed in range(3, 9):
        changes, _ = calibrated_days(tmp_path / f"seed{seed}", None, seed=seed, bad=bad)
        for c in changes:
            pulls.setdefault(c.series.field, []).append(c.jump / c.sigma)
        total += len(changes)
        flagged += sum(c.flagged() for c in changes)
    for field, values in pulls.items():
        rms = float(np.sqrt(np.mean(np.square(values))))
        assert 0.7 < rms < 1.3, f"{field}: rms of jump/sigma {rms:.3g} over {len(values)} changes"
    assert flagged <= poisson.ppf(0.999, total * false_alarm_rate())
    assert len(bad) <= 3, bad  # a bad readout fit now and then (block χ² ≥ 3 of 4 blocks)


#: fresnel-like's overhead per shot (its ``shot_overhead_ms: 300``), in s
FRESNEL_OVERHEAD_S = 0.3
#: the lab days the command-line test calibrates on, and the seed of its default drift
CLI_DAYS, CLI_DRIFT_SEED = (0, 1, 2, 5), 4


def test_calibrate_on_lab_days_stamps_the_records_with_the_labs_clock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``calibrate … --day D`` on days 0, 1, 2, 5 (run seconds apart): every record is stamped with
    the lab's clock (day D's start plus the device time spent before it), so the history's series,
    its flags and its plot are on the lab's days."""
    from matplotlib.dates import num2date

    from qep_analog.calibration.data import read_data
    from qep_analog.calibration.drift_plot import history_figure
    from qep_analog.cli.calibrate import DAY_ZERO

    (tmp_path / "runcard.yaml").write_text(RUNCARD)
    history = ["--history", str(tmp_path / "h")]
    argv = ["calibrate", str(tmp_path / "runcard.yaml"), "--device", "fresnel-like", "--quiet"]
    argv += ["--backend", "fake-lab", "--drift-seed", str(CLI_DRIFT_SEED), *history]
    for day in CLI_DAYS:
        out = ["--out", str(tmp_path / f"day{day}"), "--day", str(day), "--seed", str(day)]
        assert main([*argv, *out]) == 0
    capsys.readouterr()
    records = CalibrationHistory(tmp_path / "h", "fresnel-like").read().records
    started = []
    for day in CLI_DAYS:
        run = json.loads((tmp_path / f"day{day}" / "run.json").read_text())
        started.append(dt.datetime.fromisoformat(run["started"]))
        spent = 0.0  # device time before each step's records: its data's shots × 0.3 s, summed
        for index, step in enumerate(run["steps"], start=1):
            data = read_data(tmp_path / f"day{day}" / step["folder"] / "data.json")
            spent += len(data.sweep) * data.shots * FRESNEL_OVERHEAD_S
            made = [r for r in records if r.run_id == run["run_id"] and r.step == index]
            assert made, (day, step["routine"])
            expected = DAY_ZERO + dt.timedelta(days=day, seconds=spent)
            assert all(abs((r.time - expected).total_seconds()) < 1e-3 for r in made)
    assert max(started) - min(started) < dt.timedelta(minutes=5)  # the runs: seconds apart
    assert sorted({day_of(r.time, DAY_ZERO) for r in records}) == list(CLI_DAYS)

    # the offset's changes are between consecutive lab days, flagged where the lab truly moved
    lab = FakeRydbergLab.for_profile(
        read_profile("fresnel-like"), 4, drift=FakeRydbergLab.default_drift(CLI_DRIFT_SEED)
    )
    truth = {}
    for day in CLI_DAYS:
        lab.set_day(day)
        truth[day] = lab.hidden
    field = ["--field", "detuning_offset"]
    assert main(["calibrate", "history", "fresnel-like", *history, *field, "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    device_wide = [c for c in changes if c["site"] is None]
    days = [
        (
            day_of(dt.datetime.fromisoformat(c["from"]), DAY_ZERO),
            day_of(dt.datetime.fromisoformat(c["to"]), DAY_ZERO),
        )
        for c in device_wide
    ]
    assert days == [(0, 1), (1, 2), (2, 5)]
    clear = 0
    for c in changes:
        before = day_of(dt.datetime.fromisoformat(c["from"]), DAY_ZERO)
        after = day_of(dt.datetime.fromisoformat(c["to"]), DAY_ZERO)
        jump = true_value(truth[after], "detuning_offset", c["site"]) - true_value(
            truth[before], "detuning_offset", c["site"]
        )
        if abs(jump) >= CLEARLY_ABOVE * c["sigma"]:
            clear += 1
            assert c["flagged"], (c, jump)
        elif abs(jump) <= CLEARLY_BELOW * c["sigma"]:
            assert not c["flagged"], (c, jump)
        assert abs(c["jump"] - jump) < 4 * c["sigma"]  # the step between the right two days
    assert clear >= 3  # the offset moves by ≈ 5σ a day: some changes are ≥ 6σ on this seed
    # the plot's time axis spans the lab's days 0 … 5, not the wall clock of the runs
    kept = CalibrationHistory(tmp_path / "h", "fresnel-like").read().records
    series = history_series(kept, "detuning_offset")
    figure = history_figure(series, series_changes(series))
    low, high = (num2date(x) for x in figure.axes[0].get_xlim())
    assert DAY_ZERO - dt.timedelta(days=1) < low < DAY_ZERO + dt.timedelta(hours=12)
    assert DAY_ZERO + dt.timedelta(days=5) < high < DAY_ZERO + dt.timedelta(days=6)
    plot = tmp_path / "drift.png"
    assert main(["calibrate", "history", "fresnel-like", *history, *field, "--plot", str(plot)]) == 0
    assert "plot in" in capsys.readouterr().out and plot.stat().st_size > 10_000
