"""Runcard values outside their physical range are refused when the runcard is read: every duration,
time, length and frequency parameter of every routine has a rule, and a breach is one line naming the
runcard, the step, the key, the value and the rule (exit 2 through ``qep-analog calibrate``). Values
within the rules but beyond the device's limits are refused by the rehearsal, before anything runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
from qep_analog.calibration.registry import all_routines
from qep_analog.calibration.rehearsal import rehearse
from qep_analog.calibration.routine import parameter_fields
from qep_analog.calibration.routines.rabi import RabiParameters
from qep_analog.calibration.runcard import load_runcard, parse_runcard
from qep_analog.cli import main
from qep_analog.devices.profile import read_profile
from qep_analog.errors import CalibrationError
from qep_analog.library import builtin_directory
from qep_analog.units import keys_for

RUNCARDS = builtin_directory("calibration")


def daily(change: dict[str, object], step: int) -> dict[str, object]:
    """The Rydberg daily runcard with ``change`` merged into the parameters of step ``step`` (step 0 is
    the QEP gradient check before calibrating)."""
    document = yaml.safe_load((RUNCARDS / "rydberg-daily.yaml").read_text())
    document["routines"][step]["parameters"].update(change)
    return document


@pytest.mark.parametrize(
    ("step", "change", "message"),
    [
        (2, {"duration_us": -1.0}, "duration_us = -1.0 breaks the rule duration_us > 0 and <= 1e+06"),
        (2, {"duration_us": 0.0}, "duration_us = 0.0 breaks the rule duration_us > 0"),
        (2, {"duration_us": math.nan}, "duration_us = nan is not finite"),
        (2, {"duration_us": math.inf}, "duration_us = inf is not finite"),
        (2, {"duration_us": 2e6}, "duration_us = 2000000.0 breaks the rule duration_us > 0 and <= 1e+06"),
        (2, {"rabi_MHz": 1e308}, "rabi_MHz = 1e+308 breaks the rule rabi_MHz > 0 and <= 1000"),
        (2, {"start_MHz": -2e4}, r"start_MHz = -20000.0 breaks the rule start_MHz >= -10000 and <= 10000"),
        (3, {"stop_us": -4.0}, "stop_us = -4.0 breaks the rule stop_us >= 0"),
        (3, {"start_us": -1.0}, "start_us = -1.0 breaks the rule start_us >= 0"),
        (3, {"detuning_MHz": -1.0}, "detuning_MHz = -1.0 breaks the rule detuning_MHz > 0"),
        (4, {"start_us": 3.0, "stop_us": 2.5}, "scan start 3 µs is not below stop 2.5 µs"),
        (4, {"points": 2}, "points = 2 breaks the rule points >= 5"),
        (4, {"shots": 0}, "shots = 0 breaks the rule shots >= 1"),
        (5, {"distance_um": -6.0}, "distance_um = -6.0 breaks the rule distance_um > 0"),
        (6, {"stop_us": 0.0}, r"scan start 0 µs is not below stop 0 µs"),
        (7, {"nudge_rad_per_us": 0.0}, "nudge_rad_per_us = 0.0 breaks the rule nudge_rad_per_us > 0"),
        (8, {"beta_rad_per_us": -0.6}, "beta_rad_per_us = -0.6 breaks the rule beta_rad_per_us > 0"),
        (8, {"min_cosine": 1.5}, "min_cosine = 1.5 breaks the rule min_cosine > 0 and <= 1"),
    ],
)
def test_out_of_range_runcard_values_are_one_line_errors(
    step: int, change: dict[str, object], message: str
) -> None:
    document = daily(change, step)
    routine = document["routines"][step]["routine"]  # type: ignore[index]
    with pytest.raises(CalibrationError) as info:
        parse_runcard(document, "card.yaml")
    text = str(info.value)
    assert text.startswith(f"card.yaml: routines[{step}]: routine '{routine}': "), text
    assert message in text or pytest.fail(f"{message!r} not in {text!r}")
    assert "\n" not in text


def test_every_dimensional_parameter_of_every_routine_has_a_physical_range() -> None:
    """Each duration, time, length or frequency parameter has both bounds; values at NaN, ±inf, far
    beyond the ceiling or (for lengths, times and drive amplitudes) below zero are refused."""
    for name, routine in all_routines().items():
        for field in parameter_fields(routine.parameters_type):
            if field.dimension == "dimensionless":
                continue
            assert field.low is not None and field.high is not None, (name, field.name)
            key = next(iter(keys_for(field.name, field.dimension)))
            bad = [math.nan, math.inf, -math.inf, 1e300, -1e300] + ([-1.0] if field.low >= 0 else [])
            for value in bad:
                with pytest.raises(CalibrationError, match=f"routine {name!r}: {key} = "):
                    routine.parameters({key: value})


def test_parameters_made_in_code_obey_the_same_rules() -> None:
    with pytest.raises(
        CalibrationError, match=r"RabiParameters: stop_us = -1\.0 breaks the rule stop_us >= 0"
    ):
        RabiParameters(stop=-1.0)
    assert RabiParameters(stop=1.0).stop == 1.0


def test_a_negative_duration_exits_2_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before its rule, duration_us: -1 gave the spectroscopy a 'good' record (sin² is even in t)."""
    document = yaml.safe_load((RUNCARDS / "rydberg-basic.yaml").read_text())
    document["routines"][1]["parameters"]["duration_us"] = -1.0
    card = tmp_path / "negative.yaml"
    card.write_text(yaml.safe_dump(document))
    history, out = tmp_path / "history", tmp_path / "run"
    argv = ["calibrate", str(card), "--device", "fresnel-like", "--backend", "fake-lab"]
    assert main([*argv, "--out", str(out), "--history", str(history)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        f"{card}: routines[1]: routine 'detuning_spectroscopy': duration_us = -1.0 breaks the rule" in err
    )
    assert not out.exists() and not history.exists()


def _card(name: str, step: int, change: dict[str, object], folder: Path) -> Path:
    """The shipped runcard ``name`` with ``change`` merged into the parameters of step ``step``."""
    document = yaml.safe_load((RUNCARDS / f"{name}.yaml").read_text())
    document["routines"][step]["parameters"].update(change)
    card = folder / f"{name}-changed.yaml"
    card.write_text(yaml.safe_dump(document))
    return card


@pytest.mark.parametrize(
    ("name", "device", "step", "change", "message"),
    [
        (
            "rydberg-basic", "fresnel-like", 1, {"rabi_MHz": 10.0},
            "routines[1]: routine 'detuning_spectroscopy': rabi_MHz = 10 exceeds the limit 2 MHz of "
            "device 'fresnel-like' (max_rabi)",
        ),
        (
            "rydberg-basic", "fresnel-like", 1, {"spread_MHz": 20.0},
            "routines[1]: routine 'detuning_spectroscopy': spread_MHz = 20 exceeds the limit 10 MHz of "
            "device 'fresnel-like' (max_abs_detuning)",
        ),
        (
            "rydberg-basic", "fresnel-like", 3, {"stop_us": 9.0},
            "routines[3]: routine 'rabi': stop_us = 9 exceeds the limit 6 µs of device 'fresnel-like' "
            "(max_duration)",
        ),
        (
            "ion-noise", "yb171-chain", 3, {"rabi_kHz": 2000.0},
            "routines[3]: routine 'rabi': rabi_kHz = 2000 exceeds the limit 1000 kHz of device "
            "'yb171-chain' (max_rabi)",
        ),
        (
            "ion-noise", "yb171-chain", 1, {"spread_kHz": 300.0},
            "routines[1]: routine 'detuning_spectroscopy': spread_kHz = 300 exceeds the limit 100 kHz of "
            "device 'yb171-chain' (2·max_global_field)",
        ),
        (
            "ion-noise", "yb171-chain", 4, {"stop_us": 2e4},
            "routines[4]: routine 'amplitude_jitter': stop_us = 20000 exceeds the limit 10000 µs of "
            "device 'yb171-chain' (max_duration)",
        ),
    ],
)  # fmt: skip
def test_a_value_beyond_the_devices_limit_exits_2_before_anything_runs(
    name: str,
    device: str,
    step: int,
    change: dict[str, object],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Within the runcard's rules (2π·1 GHz for a Rabi frequency) but beyond the device's: refused by
    the rehearsal, one line naming the step, the parameter as written and the profile's limit, no run
    folder, no record. Before, only the rules were checked and the fake lab played it."""
    card = _card(name, step, change, tmp_path)
    history, out = tmp_path / "history", tmp_path / "run"
    argv = ["calibrate", str(card), "--device", device, "--backend", "fake-lab", "--out", str(out)]
    assert main([*argv, "--history", str(history)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"runcard '{name}': {message}" in err, err
    assert not out.exists() and not history.exists()


def test_a_relaxed_profile_refuses_none_of_it(tmp_path: Path) -> None:
    """The same runcard rehearses clean on the relaxed profile, which lifts the control limits."""
    card = load_runcard(_card("rydberg-basic", 1, {"rabi_MHz": 10.0, "duration_us": 9.0}, tmp_path))
    strict = read_profile("fresnel-like")
    lab = FakeRydbergLab.for_profile(strict, seed=1)
    rehearse(card, card.steps, strict.relaxed(), lab)
    with pytest.raises(CalibrationError, match="rabi_MHz = 10 exceeds the limit 2 MHz"):
        rehearse(card, card.steps, strict, lab)


@pytest.mark.parametrize("path", sorted(RUNCARDS.glob("*.yaml")), ids=lambda path: path.stem)
def test_the_shipped_runcards_rehearse_clean_on_their_devices(path: Path) -> None:
    """Every control every step of a shipped runcard would play is within its device's limits
    (``fresnel-like`` and ``yb171-chain``, with as many sites as the runcard's name says)."""
    card = load_runcard(path)
    sites = 20 if card.name.endswith("-20") else 4
    if card.platform == "rydberg":
        profile = read_profile("fresnel-like")
        lab: FakeRydbergLab | FakeIonLab = FakeRydbergLab.for_profile(profile, n_sites=sites, seed=1)
    else:
        profile = read_profile("yb171-chain")
        lab = FakeIonLab.for_profile(profile, n_sites=sites, seed=1)
    rehearse(card, card.steps, profile, lab)
