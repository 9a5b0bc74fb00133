"""The fake lab's pair and local-field experiments, pair spectroscopy (→ interaction_scale) and the
local-field map (→ local_gains); bad data are judged bad."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.linalg
from numpy.typing import NDArray

from qep_analog.calibration.fake_lab import (
    FakeRydbergLab,
    HiddenRydbergParameters,
    pair_populations,
    pair_read_both,
)
from qep_analog.devices.profile import DeviceProfile, load_profile
from qep_analog.errors import ConfigError

PROFILE = load_profile("fresnel-like")
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
