"""Ion-chain translation: spin model ↔ Rabi frequencies, beat note, global and Stark-shift fields."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qep_analog.devices import ion_chain
from qep_analog.devices.ions import (
    IonControls,
    IonSpinModel,
    chain_modes,
    check_controls,
    choose_beat_note,
    coupling_kernel,
    coupling_summary,
    realize,
    translate,
)
from qep_analog.devices.profile import Calibration, read_profile
from qep_analog.errors import ConstraintError

TWO_PI = 2 * np.pi
ROUND_TRIP_RTOL = 1e-9


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _random_controls(name: str, seed: int) -> IonControls:
    profile = read_profile(name)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 12))
    com = chain_modes(profile, n).frequencies.max()
    beat_note = com + TWO_PI * rng.uniform(0.03, 0.3)
    caps = profile.ions
    rabi = rng.uniform(0.2, 0.5, n) * caps.max_rabi
    shifts = rng.uniform(-0.5, 0.5, n) * caps.max_stark_shift
    return IonControls(
        rabi, float(beat_note), float(rng.uniform(-0.3, 0.3)) * caps.max_global_field, shifts
    )


@pytest.mark.parametrize("name", ["yb171-chain", "ca40-chain"])
@pytest.mark.parametrize("seed", range(4))
def test_round_trip_with_the_beat_note_given(name: str, seed: int) -> None:
    profile = read_profile(name)
    controls = _random_controls(name, seed)
    check_controls(controls, profile)
    model = realize(controls, profile)
    back = translate(model, profile, beat_note=controls.beat_note)
    again = realize(back, profile)
    assert _relative(again.couplings, model.couplings) <= ROUND_TRIP_RTOL
    assert _relative(again.fields, model.fields) <= ROUND_TRIP_RTOL
    np.testing.assert_allclose(back.rabi, controls.rabi, rtol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_beat_note_is_recovered_from_the_couplings(seed: int) -> None:
    profile = read_profile("yb171-chain")
    controls = _random_controls("yb171-chain", seed)
    model = realize(controls, profile)
    assert choose_beat_note(model.couplings, profile) == pytest.approx(controls.beat_note, rel=1e-8)
    again = realize(translate(model, profile), profile)
    assert _relative(again.couplings, model.couplings) <= ROUND_TRIP_RTOL


def test_calibration_is_applied_and_inverted() -> None:
    base = read_profile("yb171-chain")
    controls = _random_controls("yb171-chain", 11)
    n = controls.n_ions
    calibration = Calibration(rabi_scale=1.04, detuning_offset=0.01, interaction_scale=0.97,
                              local_gains=tuple(np.linspace(0.9, 1.1, n)),
                              site_detuning_offsets=tuple(np.linspace(-0.002, 0.003, n)))  # fmt: skip
    profile = dataclasses.replace(base, calibration=calibration)
    model = realize(controls, profile)
    nominal = realize(controls, base)
    np.testing.assert_allclose(model.couplings, nominal.couplings * 1.04**2 * 0.97, rtol=1e-12, atol=1e-15)
    uniform = realize(controls, dataclasses.replace(profile, calibration=dataclasses.replace(
        calibration, site_detuning_offsets=())))  # fmt: skip
    np.testing.assert_allclose(model.fields - uniform.fields, np.linspace(-0.002, 0.003, n), atol=1e-15)
    again = realize(translate(model, profile, beat_note=controls.beat_note), profile)
    assert _relative(again.fields, model.fields) <= ROUND_TRIP_RTOL
    assert _relative(again.couplings, model.couplings) <= ROUND_TRIP_RTOL


def test_couplings_follow_the_molmer_sorensen_formula() -> None:
    profile = read_profile("yb171-chain")
    caps = profile.ions
    n = 6
    u = ion_chain.dimensionless_positions(n)
    frequencies, modes = ion_chain.transverse_modes(u, caps.axial_frequency, caps.radial_frequencies[0])
    recoil = ion_chain.recoil_frequency(caps.mass, caps.raman_wavelength, caps.raman_angle)
    rabi = np.linspace(1.0, 2.0, n)
    beat_note = frequencies.max() + 0.3
    expected = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                expected[i, j] = (
                    rabi[i]
                    * rabi[j]
                    * recoil
                    * sum(
                        modes[i, m] * modes[j, m] / (beat_note**2 - frequencies[m] ** 2) for m in range(n)
                    )
                )
    got = realize(IonControls(rabi, float(beat_note)), profile).couplings
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14 * np.abs(expected).max())


def test_stark_shift_cross_talk_reaches_the_neighbours() -> None:
    profile = read_profile("yb171-chain")
    c = profile.ions.stark_crosstalk
    shifts = np.zeros(5)
    shifts[2] = 0.2
    fields = realize(IonControls(np.zeros(5), 30.0, 0.01, shifts), profile).fields
    np.testing.assert_allclose(fields, 0.01 + np.array([0, c, 1, c, 0]) * 0.1, rtol=1e-14)
    # translate undoes it: a field on ion 2 alone needs compensating shifts on its neighbours
    wanted = IonSpinModel(np.array([0.0, 0.0, 0.1, 0.0, 0.0]), np.zeros((5, 5)))
    controls = translate(wanted, profile)
    assert controls.stark_shifts[1] < 0 and controls.stark_shifts[3] < 0
    np.testing.assert_allclose(realize(controls, profile).fields, wanted.fields, atol=1e-15)


def test_unrealisable_coupling_patterns_are_refused() -> None:
    profile = read_profile("yb171-chain")
    rng = np.random.default_rng(5)
    random = rng.uniform(0.001, 0.01, (6, 6))
    random = (random + random.T) / 2
    np.fill_diagonal(random, 0.0)
    com = chain_modes(profile, 6).frequencies.max()
    with pytest.raises(ConstraintError, match="no choice of Rabi frequencies realises"):
        translate(IonSpinModel(np.zeros(6), random), profile, beat_note=float(com + 0.5))
    with pytest.raises(ConstraintError, match="wrong sign"):
        translate(IonSpinModel(np.zeros(6), -np.abs(random)), profile, beat_note=float(com + 0.5))


def _message(controls: IonControls, profile_name: str = "yb171-chain") -> str:
    profile = read_profile(profile_name)
    with pytest.raises(ConstraintError) as info:
        check_controls(controls, profile)
    message = str(info.value)
    assert "\n" not in message and profile_name in message
    return message


def test_every_limit_names_quantity_value_limit_and_unit() -> None:
    ok = _random_controls("yb171-chain", 0)
    check_controls(ok, read_profile("yb171-chain"))
    n = ok.n_ions
    assert "Rabi frequency" in _message(dataclasses.replace(ok, rabi=np.full(n, TWO_PI * 1.2)))
    assert "beat note" in _message(dataclasses.replace(ok, beat_note=TWO_PI * 7.0))
    assert "|Stark shift|" in _message(dataclasses.replace(ok, stark_shifts=np.full(n, TWO_PI * 0.05)))
    assert "|global field|" in _message(dataclasses.replace(ok, global_field=TWO_PI * 0.06))
    assert "number of ions 31 exceeds the limit 30" in _message(IonControls(np.zeros(31), 30.0))
    com = chain_modes(read_profile("yb171-chain"), n).frequencies.max()
    near = dataclasses.replace(ok, beat_note=float(com + TWO_PI * 0.002), rabi=np.full(n, TWO_PI * 0.9))
    assert "spin-only parameter" in _message(near)


def test_zigzag_chain_is_refused() -> None:
    relaxed = read_profile("yb171-chain", relaxed=True)
    n = 80  # beyond the linear-chain threshold of this trap
    assert ion_chain.zigzag_threshold(n, relaxed.ions.axial_frequency) > relaxed.ions.radial_frequencies[0]
    with pytest.raises(ConstraintError, match="zig-zag"):
        chain_modes(relaxed, n)


def test_a_pattern_made_at_the_end_of_the_beat_note_range_is_found_there() -> None:
    profile = read_profile("yb171-chain")
    high = profile.ions.beat_note_detuning[1]
    pattern = coupling_kernel(profile, 5, high) * 0.3
    assert choose_beat_note(pattern, profile) == pytest.approx(high, rel=1e-12)
    controls = translate(IonSpinModel(np.zeros(5), pattern), profile)  # realised within 1e-9
    assert controls.beat_note == pytest.approx(high, rel=1e-12)


# -- the beat note for the strength as well as the pattern ---------------------------------------


def _uniform(n: int, j_kHz: float) -> np.ndarray:
    couplings = np.full((n, n), TWO_PI * j_kHz * 1e-3)
    np.fill_diagonal(couplings, 0.0)
    return couplings


def _within_limits_somewhere(profile, couplings: np.ndarray, points: int = 4000) -> bool:
    """Brute force, independent of choose_beat_note: does any μ on a fine grid above the modes realise
    the couplings of three ions (Ω_i in closed form) within the Rabi and spin-only limits?"""
    n = len(couplings)
    assert n == 3
    modes = chain_modes(profile, n)
    com = modes.frequencies.max()
    low, high = profile.ions.beat_note_detuning
    for mu in com + np.geomspace(max(low - com, com * 1e-4), high - com, points):
        k = coupling_kernel(profile, n, mu)
        ratio = couplings / np.where(k == 0, 1.0, k)
        rabi = np.sqrt([ratio[0, 1] * ratio[0, 2] / ratio[1, 2], ratio[0, 1] * ratio[1, 2] / ratio[0, 2],
                        ratio[0, 2] * ratio[1, 2] / ratio[0, 1]])  # fmt: skip
        spin = ion_chain.spin_only_parameter(rabi, modes.lamb_dicke, mu, modes.frequencies, modes.vectors)
        if rabi.max() <= profile.ions.max_rabi and spin <= profile.ions.spin_only_limit:
            return True
    return False


LAB_STRENGTH = [
    ("yb171-chain", 2, 0.3),
    ("yb171-chain", 3, 0.2),
    ("yb171-chain", 3, 0.05),
    ("ca40-chain", 3, 0.1),
]
REACH = [
    ("yb171-chain", 0.2, True),
    ("yb171-chain", 0.3, False),
    ("ca40-chain", 0.1, True),
    ("ca40-chain", 0.2, False),
]


@pytest.mark.parametrize(("name", "n", "j_kHz"), LAB_STRENGTH)
def test_lab_strength_couplings_are_realised_within_the_limits(name: str, n: int, j_kHz: float) -> None:
    """Couplings of 2π·0.05–0.3 kHz, as ion labs run: a μ close enough to the modes for the strength
    (the pattern alone fits any μ for two or three ions) and far enough for the spin-only limit."""
    profile = read_profile(name)
    couplings = _uniform(n, j_kHz)
    controls = translate(IonSpinModel(np.zeros(n), couplings), profile)
    check_controls(controls, profile)
    assert _relative(realize(controls, profile).couplings, couplings) <= 1e-9
    modes = chain_modes(profile, n)
    spin = ion_chain.spin_only_parameter(
        controls.rabi, modes.lamb_dicke, controls.beat_note, modes.frequencies, modes.vectors
    )
    assert spin <= profile.ions.spin_only_limit and controls.rabi.max() <= profile.ions.max_rabi


@pytest.mark.parametrize(("name", "j_kHz", "possible"), REACH)
def test_only_what_no_beat_note_can_do_is_refused(name: str, j_kHz: float, possible: bool) -> None:
    profile = read_profile(name)
    couplings = _uniform(3, j_kHz)
    assert _within_limits_somewhere(profile, couplings) is possible
    if possible:
        translate(IonSpinModel(np.zeros(3), couplings), profile)
    else:
        with pytest.raises(ConstraintError, match="no beat note in range realises couplings up to"):
            translate(IonSpinModel(np.zeros(3), couplings), profile)


def test_a_relaxed_profile_translates_with_its_unbounded_beat_note_range() -> None:
    relaxed = read_profile("yb171-chain", relaxed=True)
    couplings = _uniform(3, 0.2)
    controls = translate(IonSpinModel(np.zeros(3), couplings), relaxed)
    assert _relative(realize(controls, relaxed).couplings, couplings) <= 1e-9
    assert np.isfinite(controls.beat_note)


def test_the_coupling_summary_reports_j0_and_alpha() -> None:
    profile = read_profile("yb171-chain")
    controls = _random_controls("yb171-chain", 1)
    couplings = realize(controls, profile).couplings
    j0, alpha = ion_chain.fit_power_law(couplings)
    text = coupling_summary(controls, profile)
    assert f"J0 = 2π·{j0 / TWO_PI * 1e3:.4g} kHz" in text
    assert f"α = {round(alpha, 3) + 0.0:g}" in text


@pytest.mark.parametrize("below", [False, True])
def test_an_undriven_ion_is_translated_with_no_rabi_frequency(below: bool) -> None:
    """A sensor ion switched off (Ω = 0: no coupling to any ion) is not a pattern the fit must match:
    the others' Rabi frequencies and the beat note come back, the undriven ion's Ω is 0."""
    profile = read_profile("yb171-chain")
    n = 6
    com = chain_modes(profile, n).frequencies.max()
    mu = com + TWO_PI * (-0.002 if below else 0.02)
    rabi = np.full(n, TWO_PI * (0.015 if below else 0.15))
    rabi[0] = 0.0
    model = realize(IonControls(rabi, float(mu)), profile)
    assert not np.any(model.couplings[0])
    controls = translate(model, profile)
    assert controls.beat_note == pytest.approx(mu, rel=1e-10)
    np.testing.assert_allclose(controls.rabi, rabi, rtol=1e-7, atol=0.0)
