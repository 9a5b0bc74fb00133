"""Waveforms, recipes and schedule limits: out-of-range schedules are refused before anything runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import THETA, smooth

from qep_analog.devices.profile import read_profile
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.errors import ConfigError, ConstraintError
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import model_hamiltonian, qep_phase_schedules, realised_model
from qep_analog.sequences.recipes import build_schedule, load_recipe, parse_recipe, progress
from qep_analog.sequences.schedule import check_schedule, hamiltonian_at, load_schedules, save_schedules
from qep_analog.sequences.waveforms import Waveform, gap_aware_clock, on_clock

PAIR = np.array([[-3.5, 0.0], [3.5, 0.0]])


def test_ramp_shapes_reach_their_end_points() -> None:
    for shape in ("linear", "smooth", "exponential"):
        recipe = dataclasses.replace(load_recipe("rydberg-smooth"), shape=shape, segments=100)
        times, s = progress(recipe, 2.0, 0.004, None)
        assert times[0] == 0 and times[-1] == pytest.approx(2.0)
        assert s[0] == 0 and s[-1] == pytest.approx(1.0) and np.all(np.diff(s) >= 0)  # monotone
        if shape == "smooth":
            assert np.interp(1.0, times, s) == pytest.approx(0.5, abs=1e-3)  # sin²(π/4)
    assert on_clock([0.0, 0.0051, 0.0079, 1.0], 0.004) == pytest.approx([0.0, 0.004, 0.008, 1.0])


def test_gap_aware_clock_slows_down_where_the_gap_closes_without_kinks() -> None:
    """τ(s) ∝ ∫Δ⁻²: against the closed form for Δ(s) = e^(a + bs) (log Δ linear, so the spline is
    exact): τ(s) = (1 − e^(−2bs)) / (1 − e^(−2b)); the speed ds/dτ = Δ² ∫Δ⁻² is smooth (its
    differences between neighbouring fine-grid points change by far less than at the nodes of a
    piecewise-linear clock)."""
    a, b = 0.3, -1.2
    nodes = np.linspace(0.0, 1.0, 9)
    s, tau, mean = gap_aware_clock(np.exp(a + b * nodes))
    exact = np.expm1(-2 * b * s) / np.expm1(-2 * b)
    assert tau == pytest.approx(exact, abs=1e-7)
    assert mean == pytest.approx(np.exp(-2 * a) * np.expm1(-2 * b) / (-2 * b), rel=1e-7)
    gaps = np.array([2.0, 1.0, 0.5, 1.0, 2.0])  # a closing gap: the middle takes longest
    s, tau, _ = gap_aware_clock(gaps)
    speed = np.diff(s) / np.diff(tau)
    assert speed[len(speed) // 2] < speed[0] / 10
    jumps = np.abs(np.diff(speed)) / speed[1:]
    assert jumps.max() < 0.02  # no kink (a piecewise-linear clock jumps by ~x4 at s = 0.25)


def _schedule(**changes: float) -> object:
    profile = read_profile("fresnel-like")
    target = RydbergControls(PAIR, rabi=6.0, detuning=5.0)
    recipe = dataclasses.replace(load_recipe("rydberg-linear"), **changes)
    return build_schedule(recipe, profile, target)


def test_schedules_out_of_range_are_refused_with_the_limit_named() -> None:
    with pytest.raises(ConstraintError, match=r"duration 6\.5 µs exceeds the limit 6 µs"):
        _schedule(duration=6.5)
    profile = read_profile("fresnel-like")
    with pytest.raises(ConstraintError, match=r"Rabi frequency 13 rad/µs .* exceeds the limit 12\.5664"):
        build_schedule(
            load_recipe("rydberg-linear"), profile, RydbergControls(PAIR, rabi=13.0, detuning=5.0)
        )
    wrong_sign = RydbergControls(PAIR, 6.0, 5.0, np.array([1.0, 0.0]), 2.0)
    with pytest.raises(ConstraintError, match="wrong sign"):
        build_schedule(load_recipe("rydberg-linear"), profile, wrong_sign)
    aquila = read_profile("aquila-like")
    fast = dataclasses.replace(load_recipe("rydberg-linear"), duration=0.05, initial_detuning=-100.0)
    with pytest.raises(ConstraintError, match="faster than the slew limit 2500"):
        build_schedule(fast, aquila, RydbergControls(PAIR * 1.2, rabi=10.0, detuning=100.0))


def test_check_refuses_hand_made_schedules_off_the_clock() -> None:
    schedule = _schedule()
    bad = dataclasses.replace(
        schedule,
        controls={**schedule.controls, "rabi": Waveform(np.array([0, 1.0021, 4.0]), np.array([0, 1, 6.0]))},
    )
    with pytest.raises(ConstraintError, match="off the 4 ns clock"):
        check_schedule(bad, read_profile("fresnel-like"))


def test_recipes_load_and_bad_ones_are_one_line_errors() -> None:
    for name in ("rydberg-linear", "rydberg-smooth", "rydberg-gap-aware", "ion-exponential"):
        assert load_recipe(name).name == name
    assert load_recipe("ion-exponential").duration == pytest.approx(2400.0)  # 2.4 ms in µs
    document = {
        "schema": "qep-recipe/1",
        "name": "x",
        "platform": "rydberg",
        "shape": "linear",
        "duration_us": 2,
    }
    with pytest.raises(ConfigError, match="needs initial_detuning"):
        parse_recipe(document)
    with pytest.raises(ConfigError, match="unknown key 'speed'"):
        parse_recipe({**document, "speed": 3})
    with pytest.raises(ConfigError, match="initial_detuning_MHz = 1"):
        parse_recipe({**document, "initial_detuning_MHz": 1})
    for key, value, limit in (
        ("duration_us", 1.7976931348623157e308, "1e\\+06"),
        ("time_constant_ms", 1e9, "1000"),
    ):
        with pytest.raises(ConfigError, match=f"{key} = .* breaks the rule {key} > 0 and <= {limit}$"):
            parse_recipe({**document, key: value})
    with pytest.raises(ConfigError, match="initial_detuning_MHz = -1e\\+300 breaks the rule"):
        parse_recipe({**document, "initial_detuning_MHz": -1e300})


@pytest.mark.parametrize("calibrated", [False, True])
def test_phases_differ_only_in_the_nudge_and_end_at_the_target(
    chain_model: QEPModel, calibrated: bool
) -> None:
    profile = read_profile("fresnel-like")
    if calibrated:  # every calibration field that enters the Hamiltonian
        calibration = dataclasses.replace(
            profile.calibration,
            rabi_scale=1.05,
            detuning_offset=0.9,
            interaction_scale=0.97,
            local_gains=(1.1, 0.9, 1.0, 0.95, 1.05, 1.0),
            site_detuning_offsets=(0.2, -0.1, 0.0, 0.3, -0.2, 0.1),
        )
        profile = dataclasses.replace(profile, calibration=calibration)
    beta, eps = 0.1, np.array([1.0])
    schedules = qep_phase_schedules(
        chain_model, profile, smooth(4.0), [], THETA, eps, beta, readout="ZZZZZZ"
    )
    free, plus, minus = schedules
    assert [s.label for s in schedules] == ["free", "plus", "minus"]
    for other in (plus, minus):
        np.testing.assert_array_equal(other.static["positions"], free.static["positions"])
        np.testing.assert_array_equal(other.controls["rabi"].values, free.controls["rabi"].values)
    realised = realised_model(chain_model, profile)
    for schedule, nu in ((free, 0.0), (plus, beta), (minus, -beta)):
        end = hamiltonian_at(schedule, profile, schedule.duration)
        target = model_hamiltonian(realised, [], THETA, [nu])
        difference = {s: end.get(s, 0.0) - target.get(s, 0.0) for s in set(end) | set(target) if s.factors}
        # weights rounded to 6 decimals (Pulser) move the fields by at most 1e-6 × |Δ|
        assert (
            max(abs(v) for v in difference.values())
            < 1e-6 * abs(free.controls["local_amplitude"].values[-1]) + 1e-9
        )


def test_schedule_files_round_trip(tmp_path: object, chain_model: QEPModel) -> None:
    profile = read_profile("fresnel-like")
    schedules = qep_phase_schedules(
        chain_model, profile, smooth(4.0), [], THETA, [1.0], 0.1, readout="ZZZZZZ"
    )
    path = tmp_path / "s.json"  # type: ignore[operator]
    save_schedules(path, schedules)
    back = load_schedules(path)
    assert [s.label for s in back] == ["free", "plus", "minus"]
    for a, b in zip(schedules, back, strict=True):
        for name in a.controls:
            np.testing.assert_array_equal(a.controls[name].values, b.controls[name].values)
        np.testing.assert_array_equal(a.static["local_weights"], b.static["local_weights"])
