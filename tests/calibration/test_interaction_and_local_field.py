"""The fake lab's pair and local-field experiments, pair spectroscopy (→ interaction_scale) and the
local-field map (→ local_gains); bad data are judged bad."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.linalg
from numpy.typing import NDArray
from recovery import check
from recovery import run_routine as run

from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab, HiddenRydbergParameters
from qep_analog.calibration.lineshapes import pair_populations, pair_read_both
from qep_analog.calibration.registry import routine_named
from qep_analog.calibration.resolve import resolve
from qep_analog.calibration.routine import Routine, fit_sites
from qep_analog.calibration.routines.local_field_map import LocalFieldMap
from qep_analog.calibration.routines.pair_spectroscopy import PairSpectroscopy
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.errors import CalibrationError, ConfigError

PROFILE = read_profile("fresnel-like")
SEEDS = (0, 1, 2)
TWO_PI = 2 * math.pi


def lab(seed: int, n_sites: int = 4) -> FakeRydbergLab:
    return FakeRydbergLab.for_profile(PROFILE, n_sites=n_sites, seed=seed)


def noiseless(hidden: HiddenRydbergParameters) -> HiddenRydbergParameters:
    """``hidden`` without detuning noise (T2* of 10⁹ µs)."""
    return dataclasses.replace(hidden, dephasing_time=1e9)


def expm_populations(
    rabis: tuple[float, float], detunings: tuple[float, float], v: float, t: float
) -> NDArray:
    """Populations gg, gr, rg, rr from scipy's matrix exponential of the 4×4 Hamiltonian."""
    x, n, one = np.array([[0, 1], [1, 0]]), np.diag([0.0, 1.0]), np.eye(2)
    h = (
        rabis[0] / 2 * np.kron(x, one)
        + rabis[1] / 2 * np.kron(one, x)
        - detunings[0] * np.kron(n, one)
        - detunings[1] * np.kron(one, n)
        + v * np.kron(n, n)
    )
    return np.abs(scipy.linalg.expm(-1j * h * t)[:, 0]) ** 2


# -------------------------------------------------------------------------------- fake lab


def test_pair_populations_match_the_matrix_exponential() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        rabis = tuple(rng.uniform(1, 8, 2))
        detunings = tuple(rng.uniform(-6, 6, 2))
        v, t = float(rng.uniform(0, 30)), float(rng.uniform(0.1, 3))
        ours = pair_populations(np.array([t]), np.array([rabis]), np.array([detunings]), v)[0]
        np.testing.assert_allclose(ours, expm_populations(rabis, detunings, v, t), atol=1e-10)


def test_blockade_limit_collective_rabi_frequency() -> None:
    """At V ≫ Ω on resonance, |rr⟩ stays empty and one excitation oscillates at √2 Ω."""
    rabi, v = 2.0, 2000.0
    t = np.linspace(0.05, 3.0, 30)
    populations = pair_populations(t, np.full((30, 2), rabi), np.zeros((30, 2)), v)
    assert populations[:, 3].max() < 1e-5
    single = populations[:, 1] + populations[:, 2]
    np.testing.assert_allclose(single, np.sin(math.sqrt(2) * rabi * t / 2) ** 2, atol=2e-3)


def test_pair_pulse_counts_follow_the_exact_evolution() -> None:
    base = lab(0)
    backend = FakeRydbergLab(noiseless(base.hidden), seed=4, profile=PROFILE)
    h = backend.hidden
    distance, duration, rabi = 7.0, 1.3, TWO_PI * 0.8
    detunings = np.array([-2.0, 0.0, 3.0, 5.0])
    shots = 1_000_000
    counts = backend.pair_pulse(distance, np.full(4, duration), np.full(4, rabi), detunings, shots)
    assert counts.shape == (4, 1)
    v = h.interaction_scale * PROFILE.rydberg.c6 / distance**6
    for k, delta in enumerate(detunings):
        true = (h.rabi_scale * rabi,) * 2
        shifted = (delta + h.detuning_offset,) * 2
        p = float(
            pair_read_both(
                expm_populations(true, shifted, v, duration), h.false_positive[:2], h.false_negative[:2]
            )
        )
        assert abs(counts[k, 0] / shots - p) < 5 * math.sqrt(p * (1 - p) / shots), (k, p)


def test_local_ramsey_follows_its_formula() -> None:
    backend = FakeRydbergLab(lab(0).hidden, seed=5)
    h = backend.hidden
    delays = np.linspace(0.0, 3.0, 13)
    detuning, amplitude, shots = TWO_PI * 1.0, -TWO_PI * 0.5, 1_000_000
    for site in (-1, 0, 2):
        counts = backend.local_ramsey(delays, detuning, site, amplitude, shots)
        for i in range(4):
            shift = 0.0
            if site >= 0:
                coupling = 1.0 if i == site else (h.local_crosstalk if abs(i - site) == 1 else 0.0)
                shift = coupling * h.site_gains[site] * amplitude
            frequency = detuning + h.detuning_offset + shift
            fringe = 0.5 * (1 + np.exp(-((delays / h.dephasing_time) ** 2)) * np.cos(frequency * delays))
            eps, eps_prime = h.false_positive[i], h.false_negative[i]
            p = eps + (1 - eps - eps_prime) * fringe
            sigma = np.sqrt(p * (1 - p) / shots)
            assert np.all(np.abs(counts[:, i] / shots - p) < 5 * sigma), (site, i)
    with pytest.raises(ConfigError, match="addressed site 4"):
        backend.local_ramsey(delays, detuning, 4, amplitude, 100)


def test_true_profile_applies_the_hidden_calibration() -> None:
    backend = lab(1)
    h = backend.hidden
    true: DeviceProfile = backend.true_profile()
    assert true.calibration.rabi_scale == h.rabi_scale
    assert true.calibration.detuning_offset == h.detuning_offset
    assert true.calibration.interaction_scale == pytest.approx(0.96)
    assert true.calibration.local_gains == (1.08, 0.95, 1.03, 0.9)
    assert true.noise.dephasing_time == h.dephasing_time
    assert true.noise.readout_false_positive == pytest.approx(np.mean(h.false_positive))
    assert true.noise.readout_false_negative == pytest.approx(np.mean(h.false_negative))
    assert true.rydberg == PROFILE.rydberg
    bare = FakeRydbergLab(h)
    with pytest.raises(ConfigError, match="nominal profile"):
        bare.true_profile()
    with pytest.raises(ConfigError, match="nominal profile"):
        bare.pair_pulse(6.0, np.ones(2), np.ones(2), np.zeros(2), 10)
    with pytest.raises(ConfigError, match="local_crosstalk"):
        dataclasses.replace(h, local_crosstalk=1.5)
    with pytest.raises(ConfigError, match="site_gains has 2 values"):
        dataclasses.replace(h, site_gains=(1.0, 1.0))


# -------------------------------------------------------------------------------- routines


def informed(backend: FakeRydbergLab) -> DeviceProfile:
    """The profile as the runcard leaves it before these routines: offset, Ω scale, T2* and readout
    calibrated, interaction scale and local gains still nominal."""
    true = backend.true_profile()
    calibration = dataclasses.replace(true.calibration, interaction_scale=1.0, local_gains=())
    return dataclasses.replace(true, calibration=calibration)


PAIR = routine_named("pair_spectroscopy")
LOCAL = routine_named("local_field_map")


def test_routine_tables_and_platforms() -> None:
    assert isinstance(PAIR, PairSpectroscopy) and PAIR.platforms == ("rydberg",)
    assert isinstance(LOCAL, LocalFieldMap) and LOCAL.platforms == ("rydberg", "ion")


@pytest.mark.parametrize("seed", SEEDS)
def test_pair_spectroscopy_recovers_the_interaction_scale(seed: int) -> None:
    backend = lab(seed)
    result = run(PAIR, backend, informed(backend))
    check(result, "interaction_scale", backend.hidden.interaction_scale, tolerance=0.005)
    assert result.estimate("interaction_scale").uncertainty < 0.002
    assert 0.4 < result.reduced_chi2 < 2.0


@pytest.mark.parametrize("seed", SEEDS)
def test_local_field_map_recovers_the_gains(seed: int) -> None:
    backend = lab(seed)
    result = run(LOCAL, backend, informed(backend))
    gains = backend.hidden.gains
    for site in range(4):
        check(result, "local_gains", float(gains[site]), tolerance=0.012, site=site)
    assert [e.site for e in result.estimates] == [0, 1, 2, 3]  # per site only; no stark_crosstalk
    leakage, error = result.curves["neighbour_leakage"][0], result.curves["neighbour_leakage_error"][0]
    assert abs(leakage - backend.hidden.local_crosstalk) < 3 * error  # reported, 2 % < 5 %: still good
    assert error < 0.003


@pytest.mark.parametrize("seed", SEEDS)
def test_local_field_map_on_an_ion_chain_measures_gains_and_stark_crosstalk(seed: int) -> None:
    """On the fake 40Ca+ chain: Stark shifts ≤ 2π·20 kHz, a 2π·50 kHz Ramsey detuning, 200 µs delays."""
    ions = read_profile("ca40-chain")
    backend = FakeIonLab.for_profile(ions, n_sites=4, seed=seed)
    data = LOCAL.acquire(LOCAL.parameters({"detuning_kHz": 50.0, "stop_us": 200.0}), backend, ions)
    assert data.context["amplitude"] == pytest.approx(-ions.ions.max_stark_shift)
    result = LOCAL.fit(data)
    for site in range(4):
        check(result, "local_gains", backend.hidden.stark_gains[site], tolerance=0.003, site=site)
    check(result, "stark_crosstalk", backend.hidden.stark_crosstalk, tolerance=0.001)


def test_the_ion_local_field_map_sizes_its_delays_from_the_offsets_and_gains_in_force() -> None:
    """yb171-chain with its qubit 2π·8 kHz off (B_0 = 2π·4 kHz, known from the profile) and Stark
    gains 15 % high (the profile's gains 1): the rule's delays span ``fringes`` periods of the slowest
    fringe predicted from the offset, the gains ±``prior`` and the amplitude (computed here), and the
    map finds the gains, each with its statistical error as its whole budget (the model takes no
    offset or readout error as known)."""
    ions = read_profile("yb171-chain")
    b0 = TWO_PI * 0.004
    hidden = dataclasses.replace(
        FakeIonLab.for_profile(ions, n_sites=4, seed=0).hidden,
        detuning_offset=b0,
        stark_gains=(1.15, 1.12, 1.14, 1.15),
    )
    backend = FakeIonLab(hidden, ions, 0)
    profile = dataclasses.replace(
        ions, calibration=dataclasses.replace(ions.calibration, detuning_offset=b0)
    )
    parameters = LOCAL.parameters({"detuning_kHz": 50.0, "fringes": 6, "points": 81, "shots": 400})
    data = LOCAL.acquire(parameters, backend, profile)
    amplitude = data.context["amplitude"]
    reference = TWO_PI * 0.05 + 2 * b0
    slowest = min(abs(reference + f * amplitude) for f in (0.85, 1.15, 0.0))
    assert data.sweep[:81].max() == pytest.approx(6 * TWO_PI / slowest)
    result = LOCAL.fit(data)
    assert result.quality == "good", result.reasons
    for site in range(4):
        check(result, "local_gains", hidden.stark_gains[site], tolerance=0.01, site=site)
        assert dict(result.estimate("local_gains", site).budget) == {
            "statistical": result.estimate("local_gains", site).uncertainty
        }


def test_records_resolve_into_the_profile() -> None:
    backend = lab(0)
    profile = informed(backend)
    records = []
    for routine in (PAIR, LOCAL):
        result = fit_sites(routine, routine.acquire(routine.parameters(), backend, profile))
        records += result.records(
            device=PROFILE.name,
            profile_version=1,
            runcard="test",
            run_id="r1",
            timestamp="2026-01-01T00:00:00+00:00",
        )
    resolved = resolve(profile, records)
    assert resolved.calibration.interaction_scale == pytest.approx(0.96, abs=0.005)
    np.testing.assert_allclose(resolved.local_gains(4), backend.hidden.gains, atol=0.012)


def test_local_field_map_on_target_sites_labels_them() -> None:
    backend = lab(0)
    data = LOCAL.acquire(LOCAL.parameters(), backend, informed(backend))
    result = fit_sites(LOCAL, data.select((1, 2)))
    assert result.quality == "good", result.reasons
    for site in (1, 2):
        check(result, "local_gains", float(backend.hidden.gains[site]), tolerance=0.012, site=site)


@pytest.mark.slow  # a long check; the default suite keeps a faster one of the same path
def test_local_field_gains_are_honest_over_seeds() -> None:
    pulls = []
    for seed in range(100, 110):
        backend = lab(seed)
        result = run(LOCAL, backend, informed(backend))
        assert result.quality == "good", (seed, result.reasons)
        pulls += [(e.value - backend.hidden.gains[e.site]) / e.uncertainty for e in result.estimates]
    assert abs(np.mean(pulls)) < 0.5 and 0.6 < np.std(pulls) < 1.5


@pytest.mark.slow
def test_pair_spectroscopy_errors_are_honest_over_seeds() -> None:
    pulls = []
    for seed in range(100, 120):
        backend = lab(seed)
        result = run(PAIR, backend, informed(backend))
        assert result.quality == "good", (seed, result.reasons)
        estimate = result.estimate("interaction_scale")
        pulls.append((estimate.value - backend.hidden.interaction_scale) / estimate.uncertainty)
    assert abs(np.mean(pulls)) < 0.75 and 0.6 < np.std(pulls) < 1.5


# -------------------------------------------------------------------------------- bad data


class NoiseOnly:
    """A broken lab: every readout is a coin flip with probability ``p``."""

    name = "noise-only"
    n_sites = 4

    def __init__(self, p: float) -> None:
        self.p, self.rng = p, np.random.default_rng(0)

    def pair_pulse(
        self, distance: float, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray:
        return self.rng.binomial(shots, self.p, size=(len(detunings), 1))

    def local_ramsey(
        self, delays: NDArray, detuning: float, site: int, amplitude: float, shots: int
    ) -> NDArray:
        return self.rng.binomial(shots, self.p, size=(len(delays), self.n_sites))


@pytest.mark.parametrize("routine", [PAIR, LOCAL], ids=["pair", "local"])
@pytest.mark.parametrize("p", [0.5, 1.0, 0.0], ids=["noise", "saturated", "dark"])
def test_noise_and_saturated_data_are_bad(routine: Routine, p: float) -> None:
    result = run(routine, NoiseOnly(p), informed(lab(0)))
    assert result.quality == "bad" and result.reasons


@pytest.mark.parametrize(
    "parameters",
    [
        {"start_MHz": 2.0, "stop_MHz": 3.0},  # the |rr⟩ line is at 2π·1.27 MHz
        {"start_MHz": 1.0, "stop_MHz": 1.3},  # on one flank only
        {"distance_um": 10.0},  # V = 2π·0.13 MHz < Ω: no narrow two-photon line to be seen
    ],
)
def test_pair_scan_that_misses_the_resonance_is_bad(parameters: dict[str, float]) -> None:
    """Without the re-scan, a fixed window that misses the line (or a pair without a line) is bad."""
    backend = lab(0)
    result = run(PAIR, backend, informed(backend), rescan=False, **parameters)
    assert result.quality == "bad", result


@pytest.mark.parametrize(
    "window", [(2.0, 3.0), (1.0, 1.3), (0.2, 1.1)], ids=["above", "flank", "below-edge"]
)
def test_a_line_at_the_edge_of_a_given_window_is_scanned_again_around_its_fit(
    window: tuple[float, float],
) -> None:
    """The runcard's window is scanned first; a line at its edge is followed by one re-scan centred on
    the fit (same width, at least three line widths each side), a window without a line by one at
    the predicted line, twice as wide; the step is judged on both scans."""
    backend = lab(0)
    data = PAIR.acquire(
        PAIR.parameters({"start_MHz": window[0], "stop_MHz": window[1]}), backend, informed(backend)
    )
    first = data.sweep[:41]
    assert first[0] == pytest.approx(TWO_PI * window[0]) and first[-1] == pytest.approx(TWO_PI * window[1])
    assert data.sweep.size == 82  # the re-scan
    second = data.sweep[41:]
    width = (TWO_PI * 0.6 * 1.06) ** 2 / (0.96 * PROFILE.rydberg.c6 / 6.0**6) + math.sqrt(2) / 3.15
    expected = 2 * (first[-1] - first[0]) if window == (2.0, 3.0) else max(first[-1] - first[0], 6 * width)
    assert second[-1] - second[0] == pytest.approx(expected, rel=0.01)
    resonance = (0.96 * PROFILE.rydberg.c6 / 6.0**6 - 2 * data.context["offset_0"]) / 2  # both atoms alike
    assert second[0] < resonance < second[-1]
    result = PAIR.fit(data)
    check(result, "interaction_scale", backend.hidden.interaction_scale, tolerance=0.005)


def test_the_adaptive_window_is_centred_on_the_predicted_line() -> None:
    """Start and stop left out: (V₀ − o₀ − o₁)/2 ± (prior·V₀/2 + 2 line widths), no re-scan needed."""
    backend = lab(0)
    profile = informed(backend)
    data = PAIR.acquire(PAIR.parameters(), backend, profile)
    v0 = PROFILE.rydberg.c6 / 6.0**6
    offset = profile.calibration.detuning_offset
    rabi = TWO_PI * 0.6 * profile.calibration.rabi_scale
    half = 0.15 * v0 / 2 + 2 * (rabi**2 / v0 + math.sqrt(2) / profile.noise.dephasing_time)
    assert data.sweep.size == 41 and data.context["adaptive_window"] == 1.0
    assert data.sweep[0] == pytest.approx((v0 - 2 * offset) / 2 - half)
    assert data.sweep[-1] == pytest.approx((v0 - 2 * offset) / 2 + half)


def test_strong_leakage_is_bad_on_a_rydberg_profile() -> None:
    hidden = dataclasses.replace(lab(0).hidden, local_crosstalk=0.1)
    backend = FakeRydbergLab(hidden, seed=3, profile=PROFILE)
    result = run(LOCAL, backend, informed(backend))
    assert result.quality == "bad"
    assert any("leakage" in reason for reason in result.reasons), result.reasons
    assert result.curves["neighbour_leakage"][0] == pytest.approx(0.1, abs=0.01)


def test_local_amplitude_through_zero_is_bad() -> None:
    """Reference fringes at 2π·1.15 MHz: A = −2π·2 MHz takes every addressed fringe through zero; the
    frequencies alone then also fit gains near 0.1, so the result must say it is ambiguous."""
    backend = lab(0)
    result = run(LOCAL, backend, informed(backend), amplitude_MHz=-2.0)
    assert result.quality == "bad"
    assert sum("passed through zero" in reason for reason in result.reasons) == 4, result.reasons


@pytest.mark.parametrize(
    ("routine", "parameters", "message"),
    [
        (PAIR, {"distance_um": 4.0}, "minimum spacing"),
        (PAIR, {"rabi_MHz": 3.0}, "Rabi frequency"),
        (PAIR, {"start_MHz": 1.0, "stop_MHz": 12.0}, "detuning"),
        (PAIR, {"stop_MHz": 2.0}, "give both"),
        (PAIR, {"duration_us": 7.0}, "duration"),
        (LOCAL, {"amplitude_MHz": 0.5}, "wrong sign"),
        (LOCAL, {"amplitude_MHz": -12.0}, "exceeds the limit"),
    ],
)
def test_controls_outside_the_device_limits_are_refused(
    routine: Routine, parameters: dict[str, float], message: str
) -> None:
    backend = lab(0)
    with pytest.raises(CalibrationError, match=message):
        routine.acquire(routine.parameters(parameters), backend, informed(backend))
