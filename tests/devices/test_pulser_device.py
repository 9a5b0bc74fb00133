"""Our limits and Pulser's own Register/Sequence validation accept and reject the same controls."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pulser.devices import Device, VirtualDevice

from qep_analog.devices.geometry import lattice_positions
from qep_analog.devices.profile import read_profile, realised_duration
from qep_analog.devices.pulser_device import constant_sequence, to_pulser_device
from qep_analog.devices.rydberg import RydbergControls, check_controls
from qep_analog.errors import ConstraintError

PAIR = np.array([[-3.0, 0.0], [3.0, 0.0]])
OK = RydbergControls(PAIR, rabi=1.0, detuning=0.0)
TWO_PI = 2 * np.pi

EDGE_CASES = {
    "nominal": OK,
    "spacing at the limit": dataclasses.replace(OK, positions=PAIR * 5 / 6),
    "spacing below the limit": dataclasses.replace(OK, positions=PAIR * 4.9 / 6),
    "radius at the limit": dataclasses.replace(OK, positions=np.array([[-46.0, 0.0], [0.0, 0.0]])),
    "radius beyond the limit": dataclasses.replace(OK, positions=np.array([[-46.5, 0.0], [0.0, 0.0]])),
    "100 atoms": dataclasses.replace(OK, positions=lattice_positions(10, 10, 5.0)),
    "101 atoms": dataclasses.replace(OK, positions=lattice_positions(11, 10, 5.0)[:101]),
    "3D register on a 2D device": dataclasses.replace(OK, positions=np.array([[0, 0, 0], [0, 0, 6.0]])),
    "Rabi at the limit": dataclasses.replace(OK, rabi=TWO_PI * 2),
    "Rabi above the limit": dataclasses.replace(OK, rabi=TWO_PI * 2.02),
    "detuning at the limit": dataclasses.replace(OK, detuning=-TWO_PI * 10),
    "detuning above the limit": dataclasses.replace(OK, detuning=TWO_PI * 10.1),
    "local detuning at the limit": dataclasses.replace(
        OK, local_weights=np.array([1.0, 0.3]), local_amplitude=-TWO_PI * 10
    ),
    "local detuning below the bottom": dataclasses.replace(
        OK, local_weights=np.array([1.0, 0.3]), local_amplitude=-TWO_PI * 10.1
    ),
    "local detuning below the bottom, small weights": dataclasses.replace(
        OK, local_weights=np.array([0.5, 0.3]), local_amplitude=-TWO_PI * 19
    ),
    "local detuning positive": dataclasses.replace(
        OK, local_weights=np.array([1.0, 0.0]), local_amplitude=1.0
    ),
    "weight above one": dataclasses.replace(OK, local_weights=np.array([1.5, 0.0]), local_amplitude=-1.0),
}


def _pulser_accepts(controls: RydbergControls, duration: float = 1.0) -> bool:
    try:
        constant_sequence(controls, read_profile("fresnel-like"), duration_us=duration)
    except (ValueError, TypeError, RuntimeError):
        return False
    return True


def _we_accept(controls: RydbergControls) -> bool:
    try:
        check_controls(controls, read_profile("fresnel-like"))
    except ConstraintError:
        return False
    return True


@pytest.mark.parametrize("case", EDGE_CASES)
def test_pulser_and_we_agree(case: str) -> None:
    controls = EDGE_CASES[case]
    assert _we_accept(controls) == _pulser_accepts(controls)


def test_the_table_has_both_verdicts() -> None:
    verdicts = [_we_accept(c) for c in EDGE_CASES.values()]
    assert sum(verdicts) >= 5 and len(verdicts) - sum(verdicts) >= 8


def test_profiles_convert_to_pulser_devices() -> None:
    fresnel = to_pulser_device(read_profile("fresnel-like"))
    assert isinstance(fresnel, Device)
    assert fresnel.interaction_coeff == pytest.approx(read_profile("fresnel-like").rydberg.c6, rel=1e-12)
    channel = fresnel.channels["rydberg_global"]
    assert channel.max_amp == pytest.approx(TWO_PI * 2) and channel.clock_period == 4
    assert fresnel.dmm_objects[0].bottom_detuning == pytest.approx(-TWO_PI * 10)
    aquila = to_pulser_device(read_profile("aquila-like"))
    assert aquila.dmm_objects == ()  # Pulser's detuning map takes negative values only
    assert isinstance(to_pulser_device(read_profile("fresnel-like", relaxed=True)), VirtualDevice)


@pytest.mark.parametrize("duration", [0.012, 0.016, 1.0, 5.996, 6.0, 6.004, 6.1])
def test_durations_agree(duration: float) -> None:
    profile = read_profile("fresnel-like")
    try:
        realised = realised_duration(profile, duration)
    except ConstraintError:
        ours = False
    else:
        ours = True
        assert realised == pytest.approx(duration)  # these are clock multiples
    assert ours == _pulser_accepts(OK, duration)


def test_durations_round_up_to_the_clock() -> None:
    profile = read_profile("fresnel-like")
    assert realised_duration(profile, 1.002) == pytest.approx(1.004, abs=1e-12)
    with pytest.raises(ConstraintError, match=r"duration 6\.004 µs exceeds the limit 6 µs"):
        realised_duration(profile, 6.001)
    assert realised_duration(read_profile("yb171-chain"), 2500.005) == pytest.approx(2500.01, abs=1e-9)
