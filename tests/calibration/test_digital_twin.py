"""The digital twin: a fake lab's hidden noise recovered through the ``rydberg-noise`` runcard, and the
emulator on the calibration in force predicting the lab's counts of a sequence not used in
calibration (χ² test), where the nominal profile's prediction fails."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from calibrated_lab import (
    Calibrated,
    calibrate,
    check_nominal_fails,
    check_recovered,
    check_twin_passes,
    chi2_test,
    with_file_jitter,
)
from good_records import good_record
from numpy.typing import NDArray

from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab, default_hidden
from qep_analog.calibration.resolve import resolve
from qep_analog.calibration.twin import noise_listing, read_one, read_probabilities, twin_parameters
from qep_analog.cli import main
from qep_analog.cli.sequence import _noise_lines
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.emulation.qutip_emulator import QutipEmulator, read_distribution, sample_counts
from qep_analog.sequences.schedule import Schedule
from qep_analog.sequences.waveforms import Waveform

TWO_PI = 2 * math.pi
#: the hidden shot-to-shot amplitude jitter of the test lab (the profile file says 5 %)
JITTER = 0.03
#: the new sequence: off-resonant square pulses (programmed Ω = 2π·1.2 MHz, δ = 2π·0.3 MHz) of 29
#: durations up to 7.2 µs, 300 shots each, read on 4 atoms 40 µm apart (V·t < 0.01 rad: independent).
#: Calibration drove on resonance (Rabi, jitter) or scanned the detuning at 1 µs: none of these.
RABI, DETUNING = TWO_PI * 1.2, TWO_PI * 0.3
DURATIONS = np.linspace(0.2, 7.2, 29)
#: trajectories of the twin's prediction: its statistical error adds a few % to χ² (R = 1000 and 2000
#: give 107 and 100 on 116 degrees of freedom)
REALISATIONS = 2000


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Calibrated:
    """The fake lab (default mis-calibration and 3 % jitter) calibrated by ``rydberg-noise``, the
    profile with the calibration in force, and the lab's counts of the new sequence."""
    nominal = read_profile("fresnel-like")
    hidden = dataclasses.replace(default_hidden(nominal, 4), amplitude_jitter=JITTER)
    lab = FakeRydbergLab(hidden, 7, profile=nominal)
    folder = tmp_path_factory.mktemp("twin")
    return calibrate(lab, hidden, nominal, "rydberg-noise", folder, (DURATIONS, RABI, DETUNING))


def square_pulse(profile: DeviceProfile, duration: float) -> Schedule:
    """The new sequence's pulse of ``duration`` µs as a schedule (constant programmed Ω and δ)."""
    ends = np.array([0.0, duration])
    controls = {"rabi": Waveform(ends, np.full(2, RABI)), "detuning": Waveform(ends, np.full(2, DETUNING))}
    static = {"positions": [[40.0 * i, 0.0] for i in range(4)]}
    return Schedule("rydberg", profile.name, controls, static, "ZZZZ", label=f"{duration:g} us")


def predicted(profile: DeviceProfile, realisations: int = REALISATIONS) -> NDArray:
    """P(read '1') per duration and atom: the emulator with every noise source of ``profile``."""
    rows = []
    for t in DURATIONS:
        distribution = read_probabilities(
            profile, square_pulse(profile, t), realisations=realisations, seed=1
        )
        rows.append(read_one(distribution, 4))
    return np.array(rows)


def test_the_runcard_recovers_the_hidden_noise(calibrated: Calibrated) -> None:
    parameters = check_recovered(calibrated, JITTER, 4)
    records = calibrated.records
    jitter_uses = records["amplitude_jitter"].uses  # the drive point and noise it was fitted with
    assert (
        records["dephasing_time"].record_id in jitter_uses
        and records["rabi_scale"].record_id in jitter_uses
    )
    assert not parameters["markovian_dephasing_time"].calibrated  # no routine measures it
    assert parameters["markovian_dephasing_time"].to_document()["value"] is None  # inf: JSON null


def test_the_twin_predicts_a_new_sequence_within_shot_noise(calibrated: Calibrated) -> None:
    check_twin_passes(calibrated.counts, predicted(calibrated.twin))


def test_the_nominal_profile_fails_the_same_test(calibrated: Calibrated) -> None:
    # offset, Ω scale, T2*, jitter and readout all wrong
    check_nominal_fails(calibrated.counts, predicted(calibrated.nominal, 500))


def test_without_the_jitter_routine_the_twin_fails(calibrated: Calibrated) -> None:
    """The twin with everything calibrated but the jitter (the profile file's 5 %): the new sequence's
    long pulses tell 3 % from 5 %, so the jitter routine is needed."""
    assert chi2_test(calibrated.counts, predicted(with_file_jitter(calibrated), 500))[2] < 1e-12


def test_the_twin_reads_records_written_before_steps() -> None:
    """Records without a step (ids ``RUN:FIELD[@SITE]``) in force beside one with a step
    (``RUN#STEP:FIELD``): each parameter names the records that set it, device-wide or per site."""
    nominal = read_profile("fresnel-like")
    name = nominal.name
    step = dataclasses.replace(good_record("detuning_offset", 0.1, 0.01, name, run="new"), step=2)
    old = [
        good_record("amplitude_jitter", 0.03, 0.002, name, run="old"),
        *(
            good_record("readout_false_positive", 0.01 * (i + 1), 0.001, name, site=i, run="old")
            for i in range(3)
        ),
    ]
    twin = resolve(nominal, [*old, step])
    parameters = {p.name: p for p in twin_parameters(twin)}
    assert parameters["amplitude_jitter"].records == ("old:amplitude_jitter",)
    assert parameters["site_false_positive"].records == tuple(
        f"old:readout_false_positive@{i}" for i in range(3)
    )
    assert not parameters["readout_false_positive"].calibrated  # set per site only
    assert parameters["detuning_offset"].records == ("new#2:detuning_offset",)


def test_the_emulator_reads_with_per_site_errors() -> None:
    """``QutipEmulator.run(noise="readout", shots=…)`` flips each qubit's bit with that site's ε, ε′:
    the read distribution of |01⟩ against the product of the per-site channels, and the sampled
    marginals within 4σ of it."""
    nominal = read_profile("fresnel-like")
    errors = dataclasses.replace(
        nominal.noise, site_false_positive=(0.02, 0.2), site_false_negative=(0.3, 0.05)
    )
    profile = dataclasses.replace(nominal, noise=errors)
    distribution = read_distribution(
        np.array([0.0, 1.0, 0.0, 0.0]), 2, (np.array([0.02, 0.2]), np.array([0.3, 0.05]))
    )
    # qubit 0 in |0⟩ (read 1 with 0.02), qubit 1 in |1⟩ (read 0 with 0.05): outcomes 00, 01, 10, 11
    expected = np.array([0.98 * 0.05, 0.98 * 0.95, 0.02 * 0.05, 0.02 * 0.95])
    assert distribution == pytest.approx(expected, abs=1e-15)
    ends = np.array([0.0, 0.1])
    controls = {"rabi": Waveform(ends, np.zeros(2)), "detuning": Waveform(ends, np.zeros(2))}
    static = {"positions": [[0.0, 0.0], [40.0, 0.0]]}
    schedule = Schedule("rydberg", profile.name, controls, static, "ZZ", label="idle", initial_state="01")
    shots = 200_000
    counts = QutipEmulator(profile).run(schedule, noise="readout", shots=shots, seed=3).counts
    assert counts is not None
    ones = np.array([sum(v for k, v in counts.items() if k[q] == "1") for q in range(2)]) / shots
    p = np.array([0.02, 0.95])
    assert np.all(np.abs(ones - p) < 4 * np.sqrt(p * (1 - p) / shots))
    assert read_one(expected, 2) == pytest.approx(p)
    rng = np.random.default_rng(0)
    uniform = sample_counts(np.array([1.0, 0, 0, 0]), 2, 1000, rng, (0.0, 0.0))
    assert uniform == {"00": 1000}


def test_emulate_noise_names_the_twin_it_runs(
    calibrated: Calibrated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``emulate --noise`` runs the calibrated profile and lists the parameters of the noise sources
    that act, with their records, and names the sources that are off."""
    history = ["--history", str(calibrated.history)]
    model = str(Path(__file__).parents[2] / "examples" / "models" / "rydberg_chain.yaml")
    point = ["--theta", "h=4", "delta=3", "s=0.5", "J=1.5", "--beta", "0.1"]
    build = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--model", model, *point]
    assert main([*build, "--out", str(tmp_path / "s.json"), *history]) == 0
    capsys.readouterr()
    argv = ["emulate", str(tmp_path / "s.json"), "--noise", "readout", "--quiet", *history]
    assert main([*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    model_rows = {row["parameter"]: row for row in document["noise_model"]}
    assert set(model_rows) == {
        "noise.site_false_positive", "noise.site_false_negative",
        "noise.readout_false_positive", "noise.readout_false_negative",
    }  # fmt: skip
    assert len(model_rows["noise.site_false_positive"]["records"]) == 4
    assert document["noise_off"][:3] == ["detuning", "dephasing", "amplitude_jitter"]
    assert "readout" not in document["noise_off"]
    # every source: those with a value are listed, the others (no value) named on the last line
    lines = _noise_lines(calibrated.twin, True)  # what the text output prints
    listed = "; ".join(lines[:-1])
    jitter = re.search(r"amplitude_jitter = ([0-9.]+) \(1 record", listed)
    assert jitter is not None and abs(float(jitter.group(1)) - 0.03) < 0.002  # the lab's hidden 3 %
    assert "dephasing_time = 3.1" in listed
    assert "state_prep_error = 0.005 (profile file)" in listed  # fresnel-like's missing atoms
    assert "markovian_dephasing_time" not in listed
    assert lines[-1] == (
        "off (not switched on, or no value): dephasing, relaxation, depolarizing, laser_waist, "
        "detuning_jitter, detuning_map_jitter"
    )
    # the text output's header names only the sources that act: none of them is also "off"
    assert main(["emulate", str(tmp_path / "s.json"), "--noise", "--quiet", *history]) == 0
    printed = capsys.readouterr().out
    header = re.search(r"noise model \(([^)]*) on\)", printed)
    assert header is not None
    on = set(header.group(1).split(", "))
    assert "readout" in on and "amplitude_jitter" in on
    assert not on & {"dephasing", "relaxation", "depolarizing", "laser_waist", "detuning_jitter"}
    jitter = next(p for p in noise_listing(calibrated.twin, "amplitude_jitter").active)
    assert jitter.value == calibrated.records["amplitude_jitter"].value
    assert jitter.records == (calibrated.records["amplitude_jitter"].record_id,)


def test_the_noise_listing_follows_the_platform_and_the_values() -> None:
    """On an ion chain the tweezer sources (missing atoms, beam waist, map jitter) do nothing, so a
    state_prep_error is not listed; a Markovian dephasing time given in the profile is."""
    ions = read_profile("yb171-chain")  # state_prep_error 0.003
    listing = noise_listing(ions, True)
    names = [p.name for p in listing.active]
    assert "state_prep_error" not in names and "state_prep" in listing.off
    assert names == [
        "dephasing_time", "amplitude_jitter", "readout_false_positive", "readout_false_negative"
    ]  # fmt: skip
    markovian = dataclasses.replace(
        ions, noise=dataclasses.replace(ions.noise, markovian_dephasing_time=50.0)
    )
    line = noise_listing(markovian, "dephasing,relaxation").lines()
    assert line == [
        "markovian_dephasing_time = 50 µs (profile file)",
        "off (not switched on, or no value): detuning, amplitude_jitter, readout, relaxation, "
        "depolarizing, laser_waist, detuning_jitter, detuning_map_jitter, state_prep",
    ]
