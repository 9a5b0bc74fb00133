"""The many-body digital twin of an ion chain: a fake chain drawn away from the defaults, with a
hidden amplitude jitter and T2* that its adiabatic schedules carry, calibrated by a trimmed daily +
noise runcard; the emulator on the calibration in force (``load_profile``, every noise source)
predicts the chain's counts of many-body sequences not used in calibration (χ² test): QEP phases of
a three-ion transverse-field Ising model prepared by the ``ion-exponential-smooth`` ramp, read in Z
and X, and a quench of the couplings from the polarised state, whose counts show the noise."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.stats import chi2

from qep_analog.calibration.fakes.draws import draw_ion_hidden
from qep_analog.calibration.fakes.ion_lab import FakeIonLab, HiddenIonParameters
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.in_force import load_profile
from qep_analog.calibration.records import CalibrationRecord
from qep_analog.calibration.runcard import parse_runcard
from qep_analog.calibration.runner import run_runcard
from qep_analog.calibration.twin import read_probabilities, twin_parameters
from qep_analog.devices import ions
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule
from qep_analog.sequences.waveforms import Waveform

TWO_PI = 2 * math.pi
IONS = 3
#: the hidden noise the chain's schedules carry (the profile file says 1 % and 2.5 ms)
JITTER, DEPHASING_TIME = 0.03, 1200.0
#: shots of each setting on the lab; trajectories of the twin's prediction
SHOTS, REALISATIONS = 500, 2000
#: the twin must pass the χ² test at this p-value; the nominal profile (and the twin without noise on
#: the quench) must fail it below ``P_FAIL``
P_PASS, P_FAIL = 0.01, 1e-6
#: the trimmed runcard: the Hamiltonian (readout, qubit offset and T2*, Rabi scale, trap, coupling
#: scale, Stark gains and cross-talk) and the noise (jitter) of ``ion-daily`` + ``ion-noise``, the
#: shots of the pull tests' fast ion card
CARD: dict[str, Any] = {
    "schema": "qep-runcard/1",
    "name": "ion-twin",
    "platform": "ion",
    "update": "append",
    "routines": [
        {"routine": "readout", "parameters": {"repeats": 2, "shots": 1000}},
        {
            "routine": "ramsey",
            "parameters": {"spread_kHz": 10.0, "points": 151, "shots": 400},  # as ion-daily
        },
        {"routine": "rabi", "parameters": {"rabi_kHz": 200.0, "stop_us": 15.0, "points": 41, "shots": 400}},
        {
            "routine": "sideband_spectroscopy",
            "parameters": {"rabi_MHz": 0.1, "duration_us": 150.0, "shots": 200},  # the rule's window
        },
        {
            "routine": "two_ion_oscillation",
            "parameters": {"rabi_kHz": 600.0, "max_distance": 1, "points": 31, "shots": 400},
        },
        {
            "routine": "local_field_map",
            "parameters": {"detuning_kHz": 50.0, "stop_us": 200.0, "points": 61, "shots": 400},
        },
        {
            "routine": "amplitude_jitter",
            "parameters": {"rabi_kHz": 200.0, "stop_us": 40.0, "points": 81, "shots": 200},
        },
    ],
}
#: the model: nearest-neighbour coupling J_01 = 2π·0.4 kHz (the trap's kernel pattern at a beat note
#: 2π·0.15 MHz above the highest transverse mode), final fields h·(1, 0.7, 1.2) at two settings h
COUPLING, BEAT = TWO_PI * 0.4e-3, TWO_PI * 0.15
FIELDS = np.array([1.0, 0.7, 1.2])
SETTINGS = (TWO_PI * 0.25e-3, TWO_PI * 0.5e-3)
#: the quench: the final controls of the first setting switched on in 10 µs and held, from |111⟩
QUENCH_DURATIONS = (2000.0, 3000.0)


@dataclasses.dataclass(frozen=True)
class Twin:
    hidden: HiddenIonParameters
    nominal: DeviceProfile
    twin: DeviceProfile  # the profile with the calibration in force
    records: dict[str, CalibrationRecord]
    phases: list[Schedule]  # the adiabatic QEP phases (settings × bases)
    quenches: list[Schedule]
    phase_counts: list[NDArray]
    quench_counts: list[NDArray]
    steps: list[str]  # each step's quality


def lab_hidden(seed: int) -> HiddenIonParameters:
    """A chain drawn around ``yb171-chain`` (``fakes.draws.ION_SPREAD``: a lab's spread of the trap,
    offset, scales, Stark gains and readout errors) with the hidden jitter and T2*."""
    rng = np.random.default_rng(3000 + seed)
    hidden = draw_ion_hidden(read_profile("yb171-chain"), IONS, rng)
    return dataclasses.replace(hidden, amplitude_jitter=JITTER, dephasing_time=DEPHASING_TIME)


def target(profile: DeviceProfile, field: float) -> ions.IonControls:
    """Controls of H = Σ J_ij X_i X_j + Σ field·FIELDS_i Z_i as ``profile`` says the chain realises it."""
    mu = float(ions.chain_modes(profile, IONS).frequencies.max()) + BEAT
    kernel = ions.coupling_kernel(profile, IONS, mu)
    model = ions.IonSpinModel(field * FIELDS, COUPLING * kernel / kernel[0, 1])
    return ions.translate(model, profile, beat_note=mu)


def phase_schedules(profile: DeviceProfile) -> list[Schedule]:
    """The QEP phases at each setting, read in Z and in X: ``ion-exponential-smooth`` (2.4 ms, from
    2π·40 kHz) with 200 segments, programmed with ``profile``'s calibration."""
    recipe = dataclasses.replace(load_recipe("ion-exponential-smooth"), segments=200)
    return [
        build_schedule(recipe, profile, target(profile, field), f"h={field / TWO_PI * 1e3:.1f} kHz", basis)
        for field in SETTINGS
        for basis in ("Z" * IONS, "X" * IONS)
    ]


def quench_schedules(phase: Schedule) -> list[Schedule]:
    """``phase``'s final controls switched on in 10 µs and held to each duration, from |111⟩: the
    couplings flip pairs of ions, their many periods dephase under the jitter and T2*."""
    out = []
    for duration in QUENCH_DURATIONS:
        ends = np.array([0.0, 10.0, duration])
        controls = {
            name: Waveform(ends, np.array([0.0, w.values[-1], w.values[-1]]))
            for name, w in phase.controls.items()
        }
        for basis in ("Z" * IONS, "X" * IONS):
            label = f"quench {duration:g} us"
            out.append(dataclasses.replace(phase, controls=controls, readout=basis, label=label))
    return out


def calibrate(seed: int, folder: Path) -> Twin:
    nominal = read_profile("yb171-chain")
    hidden = lab_hidden(seed)
    lab = FakeIonLab(hidden, nominal, seed, preparation="adiabatic")
    history = CalibrationHistory(folder / "history", nominal.name)
    outcome = run_runcard(parse_runcard(CARD), nominal, lab, folder / "run", history)
    records = {r.record_id.split(":", 1)[1]: r for s in outcome.steps for r in s.records}
    twin = load_profile("yb171-chain", history=folder / "history")  # as emulate and train load it
    phases = phase_schedules(twin)  # programmed with the calibration in force
    quenches = quench_schedules(phases[0])
    return Twin(
        hidden, nominal, twin, records, phases, quenches,
        lab.run_schedules(phases, SHOTS), lab.run_schedules(quenches, SHOTS),
        [s.result.quality for s in outcome.steps],
    )  # fmt: skip


def chi2_test(
    profile: DeviceProfile,
    schedules: Sequence[Schedule],
    counts: Sequence[NDArray],
    noise: bool | str = True,
    realisations: int = REALISATIONS,
) -> tuple[float, int, float]:
    """Pearson χ² of the lab's outcome counts against the emulator's read distribution on
    ``profile`` (with ``noise``), summed over the schedules; degrees of freedom 2^n − 1 each."""
    value, dof = 0.0, 0
    for schedule, k in zip(schedules, counts, strict=True):
        p = read_probabilities(profile, schedule, noise=noise, realisations=realisations, seed=1)
        expected = SHOTS * p
        value += float(np.sum((k - expected) ** 2 / expected))
        dof += p.size - 1
    return value, dof, float(chi2.sf(value, dof))


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Twin:
    return calibrate(0, tmp_path_factory.mktemp("ion-many-body-twin"))


def test_the_runcard_recovers_the_chain(calibrated: Twin) -> None:
    h, records = calibrated.hidden, calibrated.records
    assert calibrated.steps == ["good"] * len(CARD["routines"])
    truth = {
        "rabi_scale": h.rabi_scale,
        "detuning_offset": h.detuning_offset,
        "dephasing_time": h.dephasing_time,
        "interaction_scale": h.interaction_scale,
        "axial_frequency": h.axial_frequency,
        "radial_frequency": h.radial_frequency,
        "amplitude_jitter": JITTER,
        **{f"local_gains@{i}": g for i, g in enumerate(h.stark_gains)},
        **{f"readout_false_negative@{i}": e for i, e in enumerate(h.false_negative)},
    }
    for key, true in truth.items():
        r = records[key]
        assert abs(r.value - true) < 4 * r.uncertainty, (
            f"{key}: {r.value:.6g} ± {r.uncertainty:.2g}, true {true}"
        )
    parameters = {p.name: p for p in twin_parameters(calibrated.twin)}
    for name in ("amplitude_jitter", "dephasing_time", "interaction_scale", "rabi_scale"):
        assert parameters[name].calibrated, name
    assert len(parameters["local_gains"].records) == IONS


def test_the_twin_predicts_the_qep_phases(calibrated: Twin) -> None:
    c = calibrated
    value, dof, p = chi2_test(c.twin, c.phases, c.phase_counts)
    assert dof == 4 * (2**IONS - 1)
    assert p >= P_PASS, f"twin: chi2 {value:.1f} on {dof}, p = {p:.3g}"
    value, dof, p = chi2_test(c.nominal, c.phases, c.phase_counts, realisations=200)
    assert p < P_FAIL, f"nominal: chi2 {value:.1f} on {dof}, p = {p:.3g}"


def test_the_twin_predicts_the_quench_and_needs_its_noise(calibrated: Twin) -> None:
    """The quench's counts show the hidden noise: the twin passes, the same calibration without its
    noise sources (readout errors only) fails, and so does the nominal profile."""
    c = calibrated
    value, dof, p = chi2_test(c.twin, c.quenches, c.quench_counts)
    assert p >= P_PASS, f"twin: chi2 {value:.1f} on {dof}, p = {p:.3g}"
    value, dof, p = chi2_test(c.twin, c.quenches, c.quench_counts, noise="readout")
    assert p < P_FAIL, f"twin without noise: chi2 {value:.1f} on {dof}, p = {p:.3g}"
    value, dof, p = chi2_test(c.nominal, c.quenches, c.quench_counts, realisations=200)
    assert p < P_FAIL, f"nominal: chi2 {value:.1f} on {dof}, p = {p:.3g}"


@pytest.mark.slow
def test_the_many_body_twin_holds_over_lab_seeds(tmp_path: Path) -> None:
    """Chains drawn with seeds 1–8: every step good, the twin passes both χ² tests, the nominal
    profile and the noise-free twin fail them."""
    for seed in range(1, 9):
        c = calibrate(seed, tmp_path / f"seed-{seed}")
        assert c.steps == ["good"] * len(CARD["routines"]), (seed, c.steps)
        phases = chi2_test(c.twin, c.phases, c.phase_counts)
        quench = chi2_test(c.twin, c.quenches, c.quench_counts)
        nominal = chi2_test(c.nominal, c.phases, c.phase_counts, realisations=200)
        clean = chi2_test(c.twin, c.quenches, c.quench_counts, noise="readout")
        print(
            f"seed {seed}: phases {phases}, quench {quench}, nominal {nominal[0]:.0f}, "
            f"no noise {clean[0]:.0f}"
        )
        assert phases[2] >= P_PASS and quench[2] >= P_PASS, (seed, phases, quench)
        assert nominal[2] < P_FAIL and clean[2] < P_FAIL, (seed, nominal, clean)
