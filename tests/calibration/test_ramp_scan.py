"""The ramp-duration scan finds the adiabatic plateau of both platforms' probes on a fake lab whose
device is mis-calibrated, and judges too-short scans and noise bad."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from qep_analog.calibration.data import CalibrationData, read_data, write_data
from qep_analog.calibration.fakes.schedule_lab import FakeScheduleLab
from qep_analog.calibration.ground_state import final_ground_state
from qep_analog.calibration.routine import FitResult
from qep_analog.calibration.routines.ramp_duration_scan import (
    RampDurationScan,
    RampScanParameters,
    crystal_set,
    order_parameter,
    probe_schedule,
)
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.errors import CalibrationError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import outcome_probabilities
from qep_analog.sequences.schedule import Schedule

TWO_PI = 2 * math.pi
SEEDS = (0, 1, 2)
SITES = 4
ROUTINE = RampDurationScan()
RYDBERG = read_profile("fresnel-like")
ION = read_profile("yb171-chain")
#: the plateau must match the exact ground-state value within 3 errors and this (absolute)
PLATEAU_TOLERANCE = 0.03
#: the state prepared at the recommended duration: fidelity with the true ground state at least
MIN_FIDELITY = 0.98


def hidden(profile: DeviceProfile, rabi_scale: float, detuning_offset: float) -> DeviceProfile:
    calibration = dataclasses.replace(
        profile.calibration, rabi_scale=rabi_scale, detuning_offset=detuning_offset
    )
    return dataclasses.replace(profile, calibration=calibration)


#: the devices as they are: Ω 6 % strong and +2π·0.15 MHz off (Rydberg), Ω 3 % strong and a
#: field 2π·20 Hz off (ions)
TRUE = {
    "rydberg": hidden(RYDBERG, 1.06, TWO_PI * 0.15),
    "ion": hidden(ION, 1.03, TWO_PI * 20e-6),
}
NOMINAL = {"rydberg": RYDBERG, "ion": ION}
#: the acceptance tolerance (fraction of the swing): the ions' polarised weight is less sensitive to
#: the admixed excited states than the Rydberg Z2 weight, so 2 % leaves F ≈ 0.978-0.99 there
TOLERANCE = {"rydberg": 0.02, "ion": 0.01}


def lab(platform: str, seed: int) -> FakeScheduleLab:
    return FakeScheduleLab(TRUE[platform], ReadoutErrors.none(SITES), seed, "adiabatic")


def fidelity(backend: FakeScheduleLab, schedule: Schedule) -> float:
    ground = final_ground_state(schedule, backend.true_profile)
    return float(abs(np.vdot(ground, backend.state(schedule))) ** 2)


def scan(
    platform: str, seed: int, **parameters: float
) -> tuple[FakeScheduleLab, CalibrationData, FitResult]:
    backend = lab(platform, seed)
    p = ROUTINE.parameters({"tolerance": TOLERANCE[platform], **parameters})
    data = ROUTINE.acquire(p, backend, NOMINAL[platform])
    return backend, data, ROUTINE.fit(data)


@pytest.mark.parametrize("platform", ["rydberg", "ion"])
@pytest.mark.parametrize("seed", SEEDS)
def test_the_scan_finds_the_plateau_and_an_adiabatic_duration(platform: str, seed: int) -> None:
    backend, data, result = scan(platform, seed)
    assert result.quality == "good", result.reasons
    p: RampScanParameters = ROUTINE.parameters({"tolerance": TOLERANCE[platform]})
    nominal, true = NOMINAL[platform], TRUE[platform]
    # the plateau is the order parameter of the ground state of the TRUE final Hamiltonian
    longest = probe_schedule(p, nominal, SITES, float(data.sweep[-1]))
    exact = order_parameter(final_ground_state(longest, true), platform)
    plateau, error = result.curves["plateau"][0], result.curves["plateau_error"][0]
    assert abs(plateau - exact) <= 3 * error, (plateau, error, exact)
    assert abs(plateau - exact) <= PLATEAU_TOLERANCE, (plateau, exact)
    # the recommended ramp prepares the ground state; the shortest scanned one does not
    recommended = result.estimate("ramp_duration")
    assert 0 < recommended.uncertainty < 0.3 * recommended.value
    assert data.sweep[0] < recommended.value <= data.sweep[-1]
    assert fidelity(backend, probe_schedule(p, nominal, SITES, recommended.value)) >= MIN_FIDELITY
    assert fidelity(backend, probe_schedule(p, nominal, SITES, float(data.sweep[0]))) < MIN_FIDELITY
    assert (
        result.records(
            device=nominal.name,
            profile_version=1,
            runcard="test",
            run_id="r",
            timestamp="2026-01-01T00:00:00+00:00",
        )[0].unit
        == "µs"
    )


@pytest.mark.parametrize("platform", ["rydberg", "ion"])
def test_readout_errors_move_the_plateau_not_the_recommended_duration(platform: str) -> None:
    true, nominal = TRUE[platform], NOMINAL[platform]
    readout = ReadoutErrors.from_profile(true, SITES)  # Rydberg: ε = 0.025, ε′ = 0.10
    backend = FakeScheduleLab(true, readout, 0, "adiabatic")
    p = ROUTINE.parameters({"tolerance": TOLERANCE[platform]})
    data = ROUTINE.acquire(p, backend, nominal)
    result = ROUTINE.fit(data)
    assert result.quality == "good", result.reasons
    longest = probe_schedule(p, nominal, SITES, float(data.sweep[-1]))
    ground = final_ground_state(longest, true)
    read = float(outcome_probabilities(ground, "Z" * SITES, readout) @ crystal_set(platform, SITES))
    plateau, error = result.curves["plateau"][0], result.curves["plateau_error"][0]
    assert abs(plateau - read) <= 3 * error, (plateau, error, read)
    recommended = result.estimate("ramp_duration").value
    assert fidelity(backend, probe_schedule(p, nominal, SITES, recommended)) >= MIN_FIDELITY


@pytest.mark.parametrize(
    ("platform", "parameters", "reason"),
    [
        ("rydberg", {"start_us": 0.5, "stop_us": 0.8, "points": 7}, "beyond the longest"),  # too short
        ("ion", {"start_us": 200.0, "stop_us": 600.0, "points": 7}, "beyond the longest"),
        ("rydberg", {"start_us": 1.5, "stop_us": 2.5, "points": 7}, "saturated"),  # on the plateau
    ],
)
def test_scans_that_miss_the_transient_or_the_plateau_are_bad(
    platform: str, parameters: dict[str, float], reason: str
) -> None:
    _, _, result = scan(platform, 0, **parameters)
    assert result.quality == "bad"
    assert any(reason in r for r in result.reasons), result.reasons


class NoiseLab:
    """A broken lab: every shot is a uniformly random configuration."""

    name = "noise-lab"
    n_sites = SITES

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]:
        return [
            self.rng.multinomial(shots, np.full(1 << s.n_qubits, 1 / (1 << s.n_qubits))) for s in schedules
        ]


@pytest.mark.parametrize("platform", ["rydberg", "ion"])
@pytest.mark.parametrize("seed", SEEDS)
def test_noise_is_bad(platform: str, seed: int) -> None:
    p = ROUTINE.parameters()
    result = ROUTINE.fit(ROUTINE.acquire(p, NoiseLab(seed), NOMINAL[platform]))
    assert result.quality == "bad" and result.reasons


def test_the_fit_reruns_from_the_stored_data(tmp_path: object) -> None:
    _, data, result = scan("rydberg", 0)
    path = f"{tmp_path}/data.json"
    write_data(path, data)
    again = ROUTINE.fit(read_data(path))
    assert again.to_document() == result.to_document()
    curve = ROUTINE.curve(data, result.curves, data.sweep)
    assert curve is not None and curve.shape == (data.sweep.size, 1)


def test_the_order_parameter_counts_the_crystal_configurations() -> None:
    assert np.flatnonzero(crystal_set("rydberg", 4)).tolist() == [0b0101, 0b1010]
    assert np.flatnonzero(crystal_set("ion", 3)).tolist() == [0b111]
    state = np.zeros(16, dtype=complex)
    state[[0b0101, 0b0011]] = 1 / math.sqrt(2)
    assert order_parameter(state, "rydberg") == pytest.approx(0.5)


def test_parameters_are_closed_and_carry_units() -> None:
    p = ROUTINE.parameters({"rabi_MHz": 1.5, "stop_ms": 3.0, "spacing_um": 6.0})
    assert p.rabi == pytest.approx(TWO_PI * 1.5) and p.stop == pytest.approx(3000.0)
    with pytest.raises(CalibrationError, match=r"unknown key 'rabi'"):
        ROUTINE.parameters({"rabi": 1.0})
    with pytest.raises(CalibrationError, match="tolerance"):
        ROUTINE.parameters({"tolerance": 0.7})


def test_impossible_scans_are_refused_in_one_line() -> None:
    with pytest.raises(CalibrationError, match="sites requested"):
        ROUTINE.acquire(ROUTINE.parameters({"sites": 9}), lab("rydberg", 0), RYDBERG)
    with pytest.raises(CalibrationError, match="exceeds the limit"):
        ROUTINE.acquire(ROUTINE.parameters({"rabi_MHz": 5.0}), lab("rydberg", 0), RYDBERG)
    with pytest.raises(CalibrationError, match="need stop > start"):
        ROUTINE.acquire(ROUTINE.parameters({"start_us": 2.0, "stop_us": 1.0}), lab("rydberg", 0), RYDBERG)
