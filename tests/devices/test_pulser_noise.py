"""A profile's noise section as Pulser's NoiseModel and back, the new noise keys of the profile schema,
runs with a channel our emulator lacks going to pulser-simulation, and the new source names on the
command line."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pulser
import pytest
from cli_run import run_cli

from qep_analog.devices.profile import NoiseModel, list_profiles, parse_profile, read_profile
from qep_analog.devices.pulser_noise import (
    PerSiteReadoutWarning,
    doppler_dephasing_time,
    doppler_temperature,
    noise_model_from_pulser,
    noise_model_to_pulser,
    pulser_only_channels,
    sources_of,
)
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.emulation.noise_routing import RoutedToPulserWarning, emulate_noise_model
from qep_analog.emulation.pulser_backend import run_pulser
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.errors import ConfigError, ProfileError
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule
from qep_analog.storage import read_yaml

TWO_ATOMS = """schema: qep-model/1
n_qubits: 2
trainable:
  h: [[1.0, "X0"], [1.0, "X1"]]
  delta: [[1.0, "Z0"], [1.0, "Z1"]]
  J: [[1.0, "Z0 Z1"]]
outputs:
  m: [[0.5, "Z0"], [0.5, "Z1"]]
"""
#: every field of the noise section set (no per-site readout: Pulser has one rate)
EVERY = NoiseModel(
    readout_false_positive=0.02,
    readout_false_negative=0.07,
    state_prep_error=0.004,
    dephasing_time=3.0,
    amplitude_jitter=0.03,
    markovian_dephasing_time=20.0,
    relaxation_time=80.0,
    depolarizing_time=500.0,
    laser_waist=150.0,
    detuning_jitter=0.4,
    detuning_map_jitter=0.02,
)


def _assert_same_noise(a: NoiseModel, b: NoiseModel) -> None:
    for field in dataclasses.fields(NoiseModel):
        x, y = getattr(a, field.name), getattr(b, field.name)
        assert x == pytest.approx(y, rel=1e-12), field.name


def test_our_noise_through_pulser_and_back() -> None:
    model = noise_model_to_pulser(EVERY)
    assert set(model.noise_types) == {
        "SPAM", "doppler", "dephasing", "relaxation", "depolarizing", "amplitude", "detuning", "dmm_sigma",
    }  # fmt: skip
    assert model.relaxation_rate == pytest.approx(1 / 80.0)
    assert model.dephasing_rate == pytest.approx(1 / 20.0)
    assert model.laser_waist == 150.0 and model.detuning_sigma == 0.4 and model.dmm_sigma == 0.02
    sigma = pulser.noise_model._doppler_sigma(model.temperature * 1e-6)
    assert sigma == pytest.approx(math.sqrt(2) / 3.0, rel=1e-12)  # Pulser's Doppler σ is √2/T2*
    _assert_same_noise(noise_model_from_pulser(model), EVERY)
    # Pulser's abstract JSON keeps it
    back = pulser.NoiseModel.from_abstract_repr(model.to_abstract_repr())
    _assert_same_noise(noise_model_from_pulser(back), EVERY)


def test_pulsers_noise_through_ours_and_back() -> None:
    model = pulser.NoiseModel(
        p_false_pos=0.01, p_false_neg=0.05, state_prep_error=0.005, temperature=50.0, dephasing_rate=0.05,
        relaxation_rate=0.01, depolarizing_rate=0.02, amp_sigma=0.05, laser_waist=175.0, detuning_sigma=0.3,
        dmm_sigma=0.1,
    )  # fmt: skip
    again = noise_model_to_pulser(noise_model_from_pulser(model))
    assert again.noise_types == model.noise_types
    for name in ("p_false_pos", "p_false_neg", "state_prep_error", "temperature", "dephasing_rate",
                 "relaxation_rate", "depolarizing_rate", "amp_sigma", "laser_waist", "detuning_sigma",
                 "dmm_sigma"):  # fmt: skip
        assert getattr(again, name) == pytest.approx(getattr(model, name), rel=1e-12), name
    assert sources_of(model) == {
        "readout", "state_prep", "detuning", "dephasing", "relaxation", "depolarizing", "amplitude_jitter",
        "laser_waist", "detuning_jitter", "detuning_map_jitter",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(list_profiles()))
def test_every_shipped_profile_converts(name: str) -> None:
    noise = read_profile(name).noise
    _assert_same_noise(noise_model_from_pulser(noise_model_to_pulser(noise)), noise)
    assert doppler_dephasing_time(doppler_temperature(noise.dephasing_time)) == pytest.approx(
        noise.dephasing_time, rel=1e-12
    )


def test_per_site_readout_is_left_out_with_a_warning() -> None:
    noise = dataclasses.replace(EVERY, site_false_positive=(0.01, 0.03))
    with pytest.warns(PerSiteReadoutWarning, match="per-site readout errors"):
        model = noise_model_to_pulser(noise)
    assert model.p_false_pos == 0.02


REGISTER = {"temperature": 20.0, "trap_waist": 1.0, "trap_depth": 150.0}


@pytest.mark.parametrize(
    ("parameters", "lacking"),
    [
        (REGISTER, "register"),
        ({"detuning_hf_psd": (1.0, 2.0), "detuning_hf_omegas": (1.0, 3.0)}, "detuning_hf"),
        ({"eff_noise_rates": (0.1,), "eff_noise_opers": (np.eye(2),)}, "eff_noise"),
        ({"hyperfine_dephasing_rate": 0.1}, "hyperfine_dephasing"),
    ],
)
def test_channels_we_lack_are_one_line_errors(parameters: dict[str, object], lacking: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pulser warns of unused parameters
        model = pulser.NoiseModel(**parameters)
    assert pulser_only_channels(model) == [lacking]
    with pytest.raises(ConfigError) as caught:
        noise_model_from_pulser(model)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"Pulser noise model: {lacking} have no place")


def _schedule() -> tuple[Schedule, object]:
    profile = read_profile("fresnel-like", relaxed=True)
    recipe = dataclasses.replace(load_recipe("rydberg-smooth"), duration=0.6, segments=6)
    target = RydbergControls(np.array([[0.0, 0.0], [7.0, 0.0]]), rabi=6.0, detuning=3.0)
    return build_schedule(recipe, profile, target), profile


def test_a_run_with_a_channel_we_lack_goes_to_pulser_simulation() -> None:
    """Register noise (thermal motion of the atoms): a one-line warning, and the state is
    pulser-simulation's from the same seed; a model we emulate stays with us, without a warning."""
    schedule, profile = _schedule()
    model = pulser.NoiseModel(**REGISTER, disable_doppler=True)
    with pytest.warns(RoutedToPulserWarning) as caught:
        routed = emulate_noise_model(schedule, profile, model, realisations=3, seed=4)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert str(caught[0].message).startswith("noise register: not in our emulator; schedule")
    direct = run_pulser(schedule, profile, noise_model=model, trajectories=3, seed=4)
    np.testing.assert_allclose(routed.state, direct.state, atol=1e-12)
    ours_model = pulser.NoiseModel(relaxation_rate=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RoutedToPulserWarning)
        ours = emulate_noise_model(schedule, profile, ours_model, seed=4)
    noisy = dataclasses.replace(profile, noise=noise_model_from_pulser(ours_model))
    expected = QutipEmulator(noisy).run(schedule, noise="relaxation").state
    np.testing.assert_allclose(ours.state, expected, atol=1e-12)


def test_routing_that_pulser_cannot_run_is_a_one_line_error() -> None:
    schedule, profile = _schedule()
    excited = dataclasses.replace(schedule, initial_state="10")
    with pytest.raises(ConfigError) as caught, warnings.catch_warnings():
        warnings.simplefilter("ignore", RoutedToPulserWarning)
        emulate_noise_model(excited, profile, pulser.NoiseModel(**REGISTER, disable_doppler=True))
    assert "\n" not in str(caught.value) and "Pulser's emulator starts from all atoms in |g⟩" in str(
        caught.value
    )


NEW_KEYS = {
    "relaxation_time_us": 50.0,
    "depolarizing_time_ms": 2.0,
    "laser_waist_um": 120.0,
    "detuning_jitter_MHz": 0.1,
    "detuning_map_jitter": 0.03,
}


def test_the_new_noise_keys_read_in_their_units_and_change_the_hash() -> None:
    nominal = read_profile("fresnel-like")
    document = read_yaml(nominal.source, ProfileError)
    document["noise"].update(NEW_KEYS)
    profile = parse_profile(document, nominal.source)
    noise = profile.noise
    assert (noise.relaxation_time, noise.depolarizing_time, noise.laser_waist) == (50.0, 2000.0, 120.0)
    assert noise.detuning_jitter == pytest.approx(2 * math.pi * 0.1) and noise.detuning_map_jitter == 0.03
    assert profile.snapshot_hash != nominal.snapshot_hash
    document["noise"] = {k: v for k, v in document["noise"].items() if k not in NEW_KEYS}
    assert parse_profile(document, nominal.source).snapshot_hash == nominal.snapshot_hash


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("detuning_map_jitter", 1.5, "1.5 breaks the rule noise.detuning_map_jitter >= 0 and <= 1"),
        ("laser_waist_um", -3, "-3 breaks the rule noise.laser_waist_um > 0 and <= 1e+06"),
    ],
)
def test_bad_new_noise_values_are_one_line_profile_errors(key: str, value: object, rule: str) -> None:
    document = read_yaml(read_profile("fresnel-like").source, ProfileError)
    document["noise"][key] = value
    with pytest.raises(ProfileError) as caught:
        parse_profile(document, "p.yaml")
    assert str(caught.value) == f"p.yaml: noise.{key} = {rule}"


def test_emulate_takes_the_new_source_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``emulate --noise relaxation,state_prep,laser_waist`` on a profile with a T1 of 0.5 µs raises
    every ⟨Z_q⟩ = 1 − 2⟨n_q⟩ against the noiseless run (decay to |0⟩)."""
    document = read_yaml(read_profile("fresnel-like").source, ProfileError)
    document["noise"]["relaxation_time_us"] = 0.5
    (tmp_path / "t1.yaml").write_text(json.dumps(document))
    (tmp_path / "pair.yaml").write_text(TWO_ATOMS, encoding="utf-8")
    out = tmp_path / "pair.json"
    argv = ["sequence", "build", "rydberg-smooth", "--device", str(tmp_path / "t1.yaml")]
    point = ["--model", str(tmp_path / "pair.yaml"), "--theta", "h=4", "delta=3", "J=1.5"]
    assert run_cli(capsys, [*argv, *point, "--out", str(out)])[0] == 0
    sources = "relaxation,state_prep,laser_waist"
    status, stdout, _ = run_cli(capsys, ["emulate", str(out), "--noise", sources, "--json", "--quiet"])
    assert status == 0
    clean = json.loads(run_cli(capsys, ["emulate", str(out), "--json", "--quiet"])[1])
    for noisy, reference in zip(json.loads(stdout)["schedules"], clean["schedules"], strict=True):
        expectations = reference["expectations"]
        assert all(noisy["expectations"][k] > expectations[k] + 0.05 for k in expectations)


def test_missing_atoms_need_the_ground_state_start() -> None:
    schedule, profile = _schedule()
    lossy = dataclasses.replace(profile, noise=NoiseModel(0.0, 0.0, state_prep_error=0.1))
    with pytest.raises(ConfigError) as caught:
        QutipEmulator(lossy).run(dataclasses.replace(schedule, initial_state="10"), noise="state_prep")
    assert str(caught.value) == (
        "emulator: schedule 'free' starts from 10; missing atoms (state_prep) are modelled from all "
        "atoms in |0⟩ only"
    )
