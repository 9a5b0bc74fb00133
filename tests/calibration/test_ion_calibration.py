"""The fake ion chain and the ion routines: each routine recovers its hidden parameter, bad data are bad.

Recovered on seeds 0–2 (default mis-calibration of yb171-chain, 4 ions): ω_x within 5·10⁻⁴ rad/µs
(errors ≈ 8·10⁻⁵), ω_z within 3·10⁻³ rad/µs (errors ≈ 6.5·10⁻⁴), s_J within 3·10⁻³ (errors ≈ 5·10⁻⁴);
on the carrier: B_0 by Ramsey within 2·10⁻⁵ rad/µs (errors ≈ 3·10⁻⁶), by spectroscopy within
6·10⁻⁴ rad/µs (errors ≈ 10⁻⁴), T2* within 50 µs (errors ≈ 10 µs), rabi_scale within 2·10⁻³
(errors ≈ 3·10⁻⁴), ε and ε′ within 2.5·10⁻³ (errors ≈ 7·10⁻⁴).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from recovery import check
from recovery import run_routine as run

from qep_analog.calibration.data import CalibrationData, read_data, write_data
from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.registry import all_routines, routine_named
from qep_analog.devices import ion_chain
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.errors import CalibrationError, ConfigError, ProfileError

PROFILE = read_profile("yb171-chain")
ROUTINES = {name: routine_named(name) for name in ("detuning_spectroscopy", "rabi", "ramsey", "readout")}
ION_ROUTINES = {name: r for name, r in all_routines().items() if r.platforms == ("ion",)}
SEEDS = (0, 1, 2)
KHZ = 2 * math.pi * 1e-3  # rad/µs

#: realistic carrier scans for a 171Yb+ chain (kHz-scale offsets, T2* of ms)
CARRIER = {
    "readout": {},
    "ramsey": {"detuning_kHz": 15.0, "stop_us": 3000.0, "points": 151, "shots": 400},
    "detuning_spectroscopy": {
        "rabi_kHz": 10.0,
        "duration_us": 50.0,
        "start_kHz": -40.0,
        "stop_kHz": 40.0,
        "points": 41,
        "shots": 400,
    },
    "rabi": {"rabi_kHz": 200.0, "stop_us": 15.0, "points": 61, "shots": 400},
}


def lab(seed: int) -> FakeIonLab:
    return FakeIonLab.for_profile(PROFILE, n_sites=4, seed=seed)


def carrier_calibrated(backend: FakeIonLab) -> DeviceProfile:
    """The nominal profile after the carrier routines: B_0, T2* and the Rabi scale known."""
    h = backend.hidden
    return dataclasses.replace(
        PROFILE,
        calibration=dataclasses.replace(
            PROFILE.calibration, detuning_offset=h.detuning_offset, rabi_scale=h.rabi_scale
        ),
        noise=dataclasses.replace(PROFILE.noise, dephasing_time=h.dephasing_time),
    )


def trap_calibrated(backend: FakeIonLab) -> DeviceProfile:
    """Everything known but the interaction scale (left at 1)."""
    true = backend.true_profile()
    return dataclasses.replace(
        true, calibration=dataclasses.replace(true.calibration, interaction_scale=1.0)
    )


# -------------------------------------------------------------------------------- the fake chain


def test_the_fake_chain_is_miscalibrated_by_known_amounts() -> None:
    backend = lab(0)
    h, caps = backend.hidden, PROFILE.ions
    assert backend.name == "fake-lab" and backend.n_sites == 4 and backend.profile is PROFILE
    assert h.rabi_scale == pytest.approx(1.05)
    assert h.detuning_offset == pytest.approx(2 * KHZ)
    assert h.dephasing_time == pytest.approx(0.7 * 2500.0)
    assert h.interaction_scale == pytest.approx(0.95)
    assert h.axial_frequency == pytest.approx(1.03 * caps.axial_frequency)
    assert h.radial_frequency == pytest.approx(0.995 * caps.radial_frequencies[0])
    assert h.stark_gains == pytest.approx((1.05, 0.93, 1.1, 0.97))
    assert h.stark_crosstalk == pytest.approx(0.03)
    true = backend.true_profile()
    assert true.calibration.local_gains == h.stark_gains
    assert true.calibration.detuning_offset == h.detuning_offset
    assert true.ions.radial_frequencies == (h.radial_frequency, caps.radial_frequencies[1])
    assert true.ions.stark_crosstalk == h.stark_crosstalk
    assert true.noise.readout_false_positive == pytest.approx(np.mean(h.false_positive))
    assert true.noise.dephasing_time == h.dephasing_time


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"false_negative": (0.01,) * 3}, "one value per ion"),
        ({"false_positive": (0.5, 1.2, 0.0, 0.0)}, r"readout errors .* \[0, 1\)"),
        ({"rabi_scale": 0.0}, "rabi_scale = 0.0 must be positive"),
        ({"stark_gains": (1.0, -1.0, 1.0, 1.0)}, "stark_gains"),
        ({"stark_crosstalk": 1.0}, "stark_crosstalk = 1.0 not in"),
        ({"radial_frequency": 1.0}, "not above the axial frequency"),
    ],
)
def test_hidden_parameters_are_validated(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        dataclasses.replace(lab(0).hidden, **change)
    assert "\n" not in str(info.value)


def test_the_lab_refuses_bad_controls() -> None:
    backend = lab(0)
    with pytest.raises(ConfigError, match=r"site 4 not in \[-1, 3\]"):
        backend.local_ramsey(np.linspace(0, 10, 5), 0.1, 4, 0.1, 10)
    with pytest.raises(ConfigError, match="pair"):
        backend.ms_pair((1, 1), np.linspace(0, 10, 5), 1.0, 30.0, 10)
    with pytest.raises(ConfigError, match="must be 0 or 1"):
        backend.readout(np.array([0.0, 0.5]), 10)
    with pytest.raises(ProfileError, match="Rydberg array"):
        FakeIonLab.for_profile(read_profile("fresnel-like"))


def test_ms_pair_follows_the_coupling_of_the_true_trap() -> None:
    """P(both read 1) = b + a sin²(J t) with J = s_J (rΩ)² ω_R Σ_m b_im b_jm/(μ² − ω_m²) of the true
    trap, computed here from ion_chain alone."""
    backend = lab(3)
    h, caps = backend.hidden, PROFILE.ions
    u = ion_chain.dimensionless_positions(4)
    frequencies, vectors = ion_chain.transverse_modes(u, h.axial_frequency, h.radial_frequency)
    recoil = ion_chain.recoil_frequency(caps.mass, caps.raman_wavelength, caps.raman_angle)
    rabi, mu = 2 * math.pi * 0.7, h.radial_frequency + 2 * math.pi * 0.1
    couplings = ion_chain.ising_couplings(h.rabi_scale * rabi, recoil, mu, frequencies, vectors)
    coupling = h.interaction_scale * couplings[1, 2]
    t = np.linspace(0, 2 * math.pi / coupling, 9)
    shots = 200_000
    p = backend.ms_pair((1, 2), t, rabi, mu, shots)[:, 0] / shots
    e, e_prime = h.false_positive, h.false_negative
    floor, top = e[1] * e[2], (1 - e_prime[1]) * (1 - e_prime[2])
    expected = floor + (top - floor) * np.sin(coupling * t) ** 2
    assert np.allclose(p, expected, atol=5 * math.sqrt(0.25 / shots))


def test_local_ramsey_moves_each_qubit_by_the_crosstalk_and_gain() -> None:
    """The fringe frequency of ion i moves by C_i,site·g_site·amplitude (Ramsey fits, per ion)."""
    backend = lab(4)
    h = backend.hidden
    delays, detuning, site, amplitude = np.linspace(0, 1000.0, 201), 50 * KHZ, 1, 10 * KHZ
    ramsey = ROUTINES["ramsey"]

    def offsets(addressed: int) -> tuple[NDArray, NDArray]:
        counts = backend.local_ramsey(delays, detuning, addressed, amplitude, 400)
        data = CalibrationData(
            routine="ramsey",
            parameters={},
            sweep_name="delay",
            sweep_unit="µs",
            sweep=delays,
            shots=400,
            counts=counts,
            context={"detuning": detuning, "detuning_per_offset": 1.0},  # the qubit detuning itself
        )
        result = ramsey.fit(data)
        assert result.quality == "good", result.reasons
        estimates = [result.estimate("detuning_offset", i) for i in range(4)]
        return np.array([e.value for e in estimates]), np.array([e.uncertainty for e in estimates])

    (on, on_error), (off, off_error) = offsets(site), offsets(-1)
    assert off == pytest.approx(backend.qubit_offset, abs=2e-5)
    crosstalk = np.array([h.stark_crosstalk, 1.0, h.stark_crosstalk, 0.0])
    expected = crosstalk * h.stark_gains[site] * amplitude
    shift, error = on - off, np.hypot(on_error, off_error)
    assert np.all(np.abs(shift - expected) <= 3 * error), (shift, expected, error)
    assert np.all(np.abs(shift - expected) <= 2e-4)


# -------------------------------------------------------------------------------- carrier routines


@pytest.mark.parametrize("seed", SEEDS)
def test_single_qubit_routines_run_on_the_chain(seed: int) -> None:
    """readout, Ramsey, spectroscopy and Rabi recover ε, ε′, T2*, B_0 (a field: the fitted qubit
    offset is 2·B_0) and the Rabi scale on the ion chain."""
    backend = lab(seed)
    h = backend.hidden
    readout = run(ROUTINES["readout"], backend, PROFILE, **CARRIER["readout"])
    check(readout, "readout_false_positive", float(np.mean(h.false_positive)), 2.5e-3)
    check(readout, "readout_false_negative", float(np.mean(h.false_negative)), 2.5e-3)
    ramsey = run(ROUTINES["ramsey"], backend, PROFILE, **CARRIER["ramsey"])
    check(ramsey, "detuning_offset", h.detuning_offset, 2e-5)  # rad/µs
    check(ramsey, "dephasing_time", h.dephasing_time, 50.0)  # µs
    spectroscopy = run(
        ROUTINES["detuning_spectroscopy"], backend, PROFILE, **CARRIER["detuning_spectroscopy"]
    )
    check(spectroscopy, "detuning_offset", h.detuning_offset, 6e-4)
    rabi = run(ROUTINES["rabi"], backend, carrier_calibrated(backend), **CARRIER["rabi"])
    check(rabi, "rabi_scale", h.rabi_scale, 2e-3)


# -------------------------------------------------------------------------------- ion routines


def test_ion_routines_are_registered_for_ions_only() -> None:
    assert sorted(ION_ROUTINES) == ["sideband_spectroscopy", "two_ion_oscillation"]
    assert all(r.platforms == ("ion",) and r.name == name for name, r in ION_ROUTINES.items())


@pytest.mark.parametrize("seed", SEEDS)
def test_sideband_spectroscopy_recovers_the_trap(seed: int) -> None:
    backend = lab(seed)
    result = run(ION_ROUTINES["sideband_spectroscopy"], backend, carrier_calibrated(backend))
    check(result, "radial_frequency", backend.hidden.radial_frequency, 5e-4)  # rad/µs
    check(result, "axial_frequency", backend.hidden.axial_frequency, 3e-3)
    assert 0.5 < result.reduced_chi2 < 2.0
    records = result.records(
        device="yb171-chain",
        profile_version=1,
        runcard="t",
        run_id="r",
        timestamp="2026-01-01T00:00:00+00:00",
    )
    assert {(r.field, r.unit, r.site) for r in records} == {
        ("radial_frequency", "rad/µs", None),
        ("axial_frequency", "rad/µs", None),
    }


def test_sideband_spectroscopy_without_the_carrier_offset_is_shifted_by_two_b0() -> None:
    """The probe is set from the profile's B_0: uncalibrated, every mode (and ω_x) moves by −2·B_0."""
    backend = lab(0)
    profile = dataclasses.replace(
        PROFILE,
        calibration=dataclasses.replace(PROFILE.calibration, rabi_scale=backend.hidden.rabi_scale),
    )
    estimate = run(ION_ROUTINES["sideband_spectroscopy"], backend, profile).estimate("radial_frequency")
    shifted = backend.hidden.radial_frequency - backend.qubit_offset
    assert abs(estimate.value - shifted) < 5e-4


@pytest.mark.parametrize("seed", SEEDS)
def test_two_ion_oscillations_recover_the_interaction_scale(seed: int) -> None:
    backend = lab(seed)
    profile = trap_calibrated(backend)
    result = run(ION_ROUTINES["two_ion_oscillation"], backend, profile)
    check(result, "interaction_scale", backend.hidden.interaction_scale, 3e-3)
    pairs = list(zip(result.curves["pair_i"], result.curves["pair_j"], strict=True))
    assert pairs == [(0, 1), (1, 2), (2, 3), (0, 2), (1, 3)]
    truth = backend.true_profile()
    for (i, j), coupling, error, predicted in zip(
        pairs,
        result.curves["coupling"],
        result.curves["coupling_error"],
        result.curves["predicted"],
        strict=True,
    ):
        # the profile's prediction at s_J = 1 times the true s_J is the true coupling
        assert predicted * backend.hidden.interaction_scale == pytest.approx(
            (2 * math.pi * 0.7) ** 2 * _kernel(truth)[int(i), int(j)]
        )
        assert abs(coupling - predicted * backend.hidden.interaction_scale) <= 3.5 * error


def _kernel(profile: DeviceProfile) -> NDArray:
    from qep_analog.devices import ions

    return ions.coupling_kernel(profile, 4, profile.ions.radial_frequencies[0] + 2 * math.pi * 0.1)


def test_the_recorded_scale_is_absolute_whatever_scale_the_profile_holds() -> None:
    """The profile's s_J only sets the scan lengths; the record is J / J⁰ with J⁰ at s_J = 1."""
    backend = lab(0)
    profile = trap_calibrated(backend)
    profile = dataclasses.replace(
        profile, calibration=dataclasses.replace(profile.calibration, interaction_scale=1.1)
    )
    result = run(ION_ROUTINES["two_ion_oscillation"], backend, profile)
    check(result, "interaction_scale", backend.hidden.interaction_scale, 3e-3)


class NoiseOnly:
    """A broken chain: every readout is a coin flip."""

    name = "noise-only"
    n_sites = 4

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        self.p, self.rng = p, np.random.default_rng(seed)

    def sideband_scan(self, detunings: NDArray, rabi: float, duration: float, shots: int) -> NDArray:
        return self.rng.binomial(shots, self.p, size=(len(detunings), self.n_sites))

    def ms_pair(
        self, pair: tuple[int, int], durations: NDArray, rabi: float, beat_note: float, shots: int
    ) -> NDArray:
        return self.rng.binomial(shots, self.p, size=(len(durations), 1))


@pytest.mark.parametrize("name", sorted(ION_ROUTINES))
@pytest.mark.parametrize("p", [0.5, 0.02], ids=["noise", "dark"])
def test_noise_only_data_are_bad(name: str, p: float) -> None:
    routine = ION_ROUTINES[name]
    data = routine.acquire(routine.parameters(), NoiseOnly(p), trap_calibrated(lab(0)))
    result = routine.fit(data)
    assert result.quality == "bad" and result.reasons
    model = routine.curve(data, result.curves, data.sweep)  # a report can still draw the data
    assert model is None or model.shape == data.counts.shape


@pytest.mark.parametrize(
    ("name", "parameters", "reason"),
    [
        # a written window without its re-scan (the re-scan would find the modes)
        ("sideband_spectroscopy", {"start_kHz": 40.0, "stop_kHz": 140.0, "rescan": False}, ""),  # above
        ("sideband_spectroscopy", {"start_kHz": -80.0, "stop_kHz": -30.0, "rescan": False}, "outside"),
        ("sideband_spectroscopy", {"rabi_MHz": 0.4, "duration_us": 40.0}, "not resolved"),  # too strong
        ("two_ion_oscillation", {"periods": 0.4}, "less than one period"),
        ("two_ion_oscillation", {"periods": 6.0, "points": 11, "max_distance": 1}, "undersampled"),
    ],
)
def test_scans_that_miss_the_physics_are_bad(name: str, parameters: dict[str, Any], reason: str) -> None:
    backend = lab(0)
    result = run(ION_ROUTINES[name], backend, trap_calibrated(backend), **parameters)
    assert result.quality == "bad", result
    assert any(reason in r for r in result.reasons), result.reasons


def test_two_ion_oscillations_with_the_nominal_trap_are_bad() -> None:
    """A 0.5 % error of ω_x biases every J by ≈ 25 %; the pairs then disagree (next-nearest ones most)."""
    backend = lab(0)
    profile = carrier_calibrated(backend)  # the trap still nominal
    result = run(ION_ROUTINES["two_ion_oscillation"], backend, profile)
    assert result.quality == "bad"
    assert any("disagree" in r for r in result.reasons), result.reasons


def test_two_ion_parameters_are_checked_against_the_device() -> None:
    routine = ION_ROUTINES["two_ion_oscillation"]
    profile = trap_calibrated(lab(0))
    with pytest.raises(CalibrationError, match="spin-only"):
        run(routine, lab(0), profile, rabi_MHz=1.0, mode_detuning_kHz=30.0)
    with pytest.raises(CalibrationError, match="max_distance 4"):
        run(routine, lab(0), profile, max_distance=4)
    with pytest.raises(CalibrationError, match="exceeds the limit"):
        run(routine, lab(0), profile, rabi_MHz=0.2)  # J too weak: scans longer than 10 ms


@pytest.mark.parametrize("name", sorted(ION_ROUTINES))
def test_data_round_trip_and_offline_refit(name: str, tmp_path: Path) -> None:
    backend = lab(5)
    routine = ION_ROUTINES[name]
    data = routine.acquire(routine.parameters(), backend, trap_calibrated(backend))
    path = tmp_path / "data.json"
    write_data(path, data)
    again = read_data(path)
    result = routine.fit(again)
    assert result == routine.fit(data)
    model = routine.curve(again, result.curves, again.sweep)
    if name == "sideband_spectroscopy":
        assert model is not None and model.shape == again.counts.shape
        assert np.allclose(model, routine.curve(data, result.curves, data.sweep))
    else:
        assert model is None  # concatenated pair scans: no single curve over the sweep
