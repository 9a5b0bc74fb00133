"""The fake labs' schedules carry their hidden noise: an adiabatic preparation draws one emulator
trajectory per shot (T2* offsets, amplitude jitter, Markovian dephasing when hidden), seeded; the
ground-state preparation carries none but the readout errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.stats import chi2

from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab, HiddenRydbergParameters, default_hidden
from qep_analog.calibration.fakes.schedule_lab import LAB_SOURCES, FakeScheduleLab
from qep_analog.devices.profile import read_profile
from qep_analog.emulation.qutip_emulator import QutipEmulator, read_distribution, rotate_to_basis
from qep_analog.errors import ConfigError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.sequences.schedule import Schedule
from qep_analog.sequences.waveforms import Waveform

TWO_PI = 2 * math.pi
NOMINAL = read_profile("fresnel-like")
SHOTS = 4000


def hidden(**changes: float) -> HiddenRydbergParameters:
    """The default mis-calibration on 2 atoms with a 5 % jitter and Markovian dephasing at 2 µs."""
    base = dataclasses.replace(
        default_hidden(NOMINAL, 2), amplitude_jitter=0.05, markovian_dephasing_time=2.0
    )
    return dataclasses.replace(base, **changes)


def pulse(readout: str = "ZZ") -> Schedule:
    """Two atoms 9 µm apart driven at Ω = 2π·1 MHz, δ = 2π·0.2 MHz for 2 µs (a few blockaded periods)."""
    ends = np.array([0.0, 2.0])
    controls = {
        "rabi": Waveform(ends, np.full(2, TWO_PI * 1.0)),
        "detuning": Waveform(ends, np.full(2, TWO_PI * 0.2)),
    }
    static = {"positions": [[0.0, 0.0], [9.0, 0.0]]}
    return Schedule("rydberg", NOMINAL.name, controls, static, readout, label="pulse")


def read(lab: FakeRydbergLab, schedule: Schedule, noise: frozenset[str] | bool) -> NDArray:
    """The emulator's read distribution of ``schedule`` on the lab's true profile with ``noise``
    (20 000 trajectories), read with the lab's per-site readout errors."""
    run = QutipEmulator(lab.true_profile()).run(schedule, noise=noise, realisations=20_000, seed=11)
    rotated = rotate_to_basis(run.state, schedule.readout)
    p = np.abs(rotated) ** 2 if rotated.ndim == 1 else np.real(np.diag(rotated))
    flips = (np.asarray(lab.hidden.false_positive), np.asarray(lab.hidden.false_negative))
    return np.asarray(read_distribution(p / p.sum(), schedule.n_qubits, flips))


def pearson(counts: NDArray, p: NDArray) -> float:
    """The p-value of Pearson's χ² of ``counts`` against the distribution ``p``."""
    expected = counts.sum() * p
    return float(chi2.sf(np.sum((counts - expected) ** 2 / expected), p.size - 1))


@pytest.mark.parametrize("readout", ["ZZ", "XX"])
def test_adiabatic_schedules_carry_the_hidden_noise(readout: str) -> None:
    """The lab's counts (one trajectory per shot) against the emulator's noisy average: p > 0.001;
    against the noiseless evolution and the evolution without the Markovian dephasing: p < 10⁻⁶."""
    lab = FakeRydbergLab(hidden(), 3, profile=NOMINAL, preparation="adiabatic")
    schedule = pulse(readout)
    counts = lab.run_schedules([schedule], SHOTS)[0]
    assert counts.sum() == SHOTS
    assert pearson(counts, read(lab, schedule, LAB_SOURCES)) > 1e-3
    assert pearson(counts, read(lab, schedule, False)) < 1e-6
    assert pearson(counts, read(lab, schedule, frozenset({"detuning", "amplitude_jitter"}))) < 1e-6


def test_the_same_seed_draws_the_same_counts() -> None:
    schedule = pulse()
    runs = [
        FakeRydbergLab(hidden(), seed, profile=NOMINAL, preparation="adiabatic").run_schedules(
            [schedule], 300
        )[0]
        for seed in (4, 4, 5)
    ]
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_the_ground_preparation_carries_only_the_readout_errors() -> None:
    """Ground states: the counts of a lab hiding jitter, T2* and dephasing equal, shot for shot, those
    of the same lab without them (no trajectory is drawn); an adiabatic preparation differs."""
    quiet = hidden(amplitude_jitter=0.0, dephasing_time=math.inf, markovian_dephasing_time=math.inf)
    schedule = pulse()
    ground = [
        FakeRydbergLab(h, 2, profile=NOMINAL).run_schedules([schedule], 500)[0] for h in (hidden(), quiet)
    ]
    assert np.array_equal(ground[0], ground[1])
    adiabatic = [
        FakeRydbergLab(h, 2, profile=NOMINAL, preparation="adiabatic").run_schedules([schedule], 500)[0]
        for h in (hidden(), quiet)
    ]
    assert not np.array_equal(adiabatic[0], adiabatic[1])


def test_a_schedule_lab_given_a_profile_is_noiseless_unless_asked() -> None:
    """``FakeScheduleLab`` on a profile (the file's noise: T2* 4.5 µs, jitter 5 %): noiseless by
    default, the profile's :data:`LAB_SOURCES` with ``noise=True``."""
    schedule = pulse()
    readout = ReadoutErrors.none(2)
    plain = FakeScheduleLab(NOMINAL, readout, 1, "adiabatic").run_schedules([schedule], SHOTS)[0]
    noisy = FakeScheduleLab(NOMINAL, readout, 1, "adiabatic", noise=True).run_schedules([schedule], SHOTS)[
        0
    ]
    run = QutipEmulator(NOMINAL).run(schedule)
    assert pearson(plain, np.abs(run.state) ** 2) > 1e-3
    assert pearson(noisy, np.abs(run.state) ** 2) < 1e-6


def test_a_hidden_markovian_time_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="markovian_dephasing_time"):
        hidden(markovian_dephasing_time=0.0)
