"""The amplitude-jitter routine: its scan rule, its budget against explicit refits, its per-site
residual detuning, and (slow) its pulls through ``ion-noise`` and ``rydberg-noise`` over many labs."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.fakes.ion_lab import default_hidden as ion_hidden
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
from qep_analog.calibration.fakes.rydberg_lab import default_hidden as rydberg_hidden
from qep_analog.calibration.fitting import fit_probabilities
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.routines.amplitude_jitter import (
    ROUTINE,
    jitter_model,
    jitter_of_variance,
    scan_window,
)
from qep_analog.calibration.runcard import load_runcard
from qep_analog.calibration.runner import run_runcard
from qep_analog.devices.noise_sources import quasi_static_rms
from qep_analog.devices.profile import read_profile
from qep_analog.errors import CalibrationError

TWO_PI = 2 * math.pi
JITTER = 0.03


def _jitter(data: CalibrationData, site: int | None = 0) -> tuple[float, float, dict[str, float]]:
    estimate = next(e for e in ROUTINE.fit(data).estimates if e.site == site)
    return estimate.value, estimate.uncertainty, dict(estimate.budget)


def test_the_scan_rule_follows_the_rabi_scale_and_t2() -> None:
    """Left out, the window reaches σΩt = 1.5 at σ = 3 % of the Ω in force with 10 points per period;
    a short T2* caps it at Ω·T2*²; a window in the runcard is scanned as written."""
    nominal = read_profile("yb171-chain")
    true = FakeIonLab(ion_hidden(nominal, 2), nominal, 0).true_profile()  # Ω scale 1.05
    omega = TWO_PI * 0.2 * 1.05
    start, stop, points = scan_window(ROUTINE.parameters({"rabi_kHz": 200.0}), true)
    assert start == 0.0 and stop == pytest.approx(1.5 / (0.03 * omega))
    assert points == math.ceil(10 * omega * stop / TWO_PI) + 1 == 81  # 8 periods
    short = dataclasses.replace(true, noise=dataclasses.replace(true.noise, dephasing_time=4.0))
    assert scan_window(ROUTINE.parameters({"rabi_kHz": 200.0}), short)[1] == pytest.approx(omega * 16.0)
    fresnel = read_profile("fresnel-like")  # the rule's 1.5 / (0.03 · 2π · 1 MHz) = 7.96 µs: cut at 6
    assert scan_window(ROUTINE.parameters({"rabi_MHz": 1.0}), fresnel)[1] == fresnel.rydberg.max_duration
    written = ROUTINE.parameters({"rabi_kHz": 200.0, "stop_us": 40.0, "points": 81})
    assert scan_window(written, true) == (0.0, 40.0, 81)
    with pytest.raises(CalibrationError, match="scan start 5 µs is not below stop 2 µs"):
        ROUTINE.parameters({"start_us": 5.0, "stop_us": 2.0})


def test_the_rule_window_measures_the_jitter() -> None:
    """On the fake chain (σ = 3 %) with the true profile, the rule's window: good, within 4σ."""
    nominal = read_profile("yb171-chain")
    lab = FakeIonLab(dataclasses.replace(ion_hidden(nominal, 2), amplitude_jitter=JITTER), nominal, 3)
    data = ROUTINE.acquire(ROUTINE.parameters({"rabi_kHz": 200.0}), lab, lab.true_profile())
    assert data.sweep.size == 81 and data.context["adaptive_window"] == 1.0
    result = ROUTINE.fit(data)
    assert result.quality == "good", result.reasons
    value, error, _ = _jitter(data, None)
    assert abs(value - JITTER) < 4 * error


def _rydberg_data(
    site_offsets: tuple[float, ...] = (), shots: int = 200
) -> tuple[FakeRydbergLab, CalibrationData]:
    nominal = read_profile("fresnel-like")
    hidden = dataclasses.replace(
        rydberg_hidden(nominal, 2), amplitude_jitter=JITTER, site_detuning_offsets=site_offsets
    )
    lab = FakeRydbergLab(hidden, 5, profile=nominal)
    p = ROUTINE.parameters({"rabi_MHz": 1.0, "stop_us": 8.0, "points": 81, "shots": shots})
    return lab, ROUTINE.acquire(p, lab, lab.true_profile())


def test_the_t2_budget_is_the_refit_with_t2_moved() -> None:
    """The ``dephasing_time`` part of the budget against explicit refits with T2* moved by ± its
    error (10 % here, to be well above the fit's numerical noise; half their difference): within
    20 %."""
    lab, data = _rydberg_data()
    t2 = lab.hidden.dephasing_time
    error = 0.1 * t2
    stated = dict(data.context, dephasing_time_error=error)
    value, _, budget = _jitter(dataclasses.replace(data, context=stated))
    refits = [
        _jitter(dataclasses.replace(data, context=dict(data.context, detuning_rms=quasi_static_rms(t))))[0]
        for t in (t2 + error, t2 - error)
    ]
    assert min(refits) < value < max(refits)
    assert budget["dephasing_time"] == pytest.approx(abs(refits[1] - refits[0]) / 2, rel=0.2)
    assert 0 < budget["dephasing_time"] < 0.1 * budget["statistical"]  # small even at 10 %


def test_a_site_off_resonance_is_modelled_and_its_offset_error_propagated() -> None:
    """Atom 0 is 1.5 rad/µs (2π·0.24 MHz) off the device-wide offset, 10⁵ shots a point (errors of
    σ ≈ 10⁻⁴): without its residual in the model the detuning noise's first-order dephasing reads as
    jitter (more than 5 errors high); with it, σ within 3 errors. The offset's part of the budget
    against explicit refits with the residual moved by ± its error."""
    _, data = _rydberg_data((1.5, -1.5), 100_000)
    ignored = {k: v for k, v in data.context.items() if not k.startswith("residual_")}
    blind, blind_error, _ = _jitter(dataclasses.replace(data, context=ignored))
    value, error, _ = _jitter(data)
    assert abs(value - JITTER) < 3 * error
    assert blind - JITTER > 5 * blind_error  # the old model reads the dephasing as jitter
    offset_error = 0.05
    stated = dict(data.context, offset_error_0=offset_error)
    _, _, budget = _jitter(dataclasses.replace(data, context=stated))
    shifts = []
    for sign in (1, -1):
        moved = dict(data.context, residual_0=data.context["residual_0"] + sign * offset_error)
        shifts.append(_jitter(dataclasses.replace(data, context=moved))[0] - value)
    assert budget["detuning_offset"] == pytest.approx(max(abs(s) for s in shifts), rel=0.3)


def _pulls(runcard: str, seeds: range, tmp_path: Path) -> list[float]:
    pulls = []
    for seed in seeds:
        if runcard == "ion-noise":
            nominal = read_profile("yb171-chain")
            hidden = dataclasses.replace(ion_hidden(nominal, 4), amplitude_jitter=JITTER)
            lab: FakeIonLab | FakeRydbergLab = FakeIonLab(hidden, nominal, 500 + seed)
        else:
            nominal = read_profile("fresnel-like")
            hidden = dataclasses.replace(rydberg_hidden(nominal, 4), amplitude_jitter=JITTER)
            lab = FakeRydbergLab(hidden, 500 + seed, profile=nominal)
        folder = tmp_path / f"{runcard}-{seed}"
        history = CalibrationHistory(folder / "history", nominal.name)
        outcome = run_runcard(load_runcard(runcard), nominal, lab, folder / "run", history)
        # the jitter step must be good; another step judged bad (the readout's block χ² now and
        # then) leaves its field as the profile had it and is printed
        assert outcome.steps[-1].result.quality == "good", (runcard, seed)
        bad = [s.routine for s in outcome.steps if s.result.quality != "good"]
        if bad:
            print(f"{runcard} lab {seed}: bad steps {bad}")
        record = next(
            r for s in outcome.steps for r in s.records if r.record_id.endswith(":amplitude_jitter")
        )
        pulls.append((record.value - JITTER) / record.uncertainty)
    return pulls


@pytest.mark.slow
@pytest.mark.parametrize("runcard", ["ion-noise", "rydberg-noise"])
def test_the_jitter_pulls_are_honest(runcard: str, tmp_path: Path) -> None:
    """Through the whole runcard (the calibrated T2*, offset and Ω scale in force), 72 labs (an rms
    pull over n labs scatters by ≈ 1/√(2n): 0.14 at 24, 0.08 at 72): the device-wide jitter's mean
    pull within ±0.3 and its rms in [0.8, 1.25]."""
    pulls = np.array(_pulls(runcard, range(72), tmp_path))
    mean, rms = float(pulls.mean()), float(np.sqrt(np.mean(pulls**2)))
    first = pulls[:24]
    print(
        f"{runcard}: mean pull {mean:.3f}, rms {rms:.3f} over {pulls.size} labs (first 24: mean "
        f"{first.mean():.3f}, rms {np.sqrt(np.mean(first**2)):.3f})"
    )
    assert -0.3 <= mean <= 0.3 and 0.8 <= rms <= 1.25, (mean, rms)


@pytest.mark.slow
def test_the_model_error_refit_removes_the_low_reading() -> None:
    """Fake chain, σ = 3 %, the ``ion-noise`` window, the true profile, 60 labs (240 ions): the fit
    with binomial errors of the counts alone (Neyman's χ², the former fit) reads σ low, the refit
    with errors of its model does not."""
    nominal = read_profile("yb171-chain")
    hidden = dataclasses.replace(ion_hidden(nominal, 4), amplitude_jitter=JITTER)
    p = ROUTINE.parameters({"rabi_kHz": 200.0, "stop_us": 40.0, "points": 81, "shots": 200})
    neyman, refit = [], []
    for seed in range(60):
        lab = FakeIonLab(hidden, nominal, 500 + seed)
        data = ROUTINE.acquire(p, lab, lab.true_profile())
        for site in range(4):
            k = data.counts[:, site]
            model = jitter_model(data.context["detuning_rms"], data.context[f"residual_{site}"])
            guess = [data.context["rabi"] * 1.05, 0.02**2, 0.9, 0.01]
            bounds = ([0.0, 0.0, 0.0, 0.0], [10 * data.context["rabi"], 0.09, 1.0, 1.0])
            first = fit_probabilities(model, data.sweep, k, data.shots, guess, bounds)
            value, error = jitter_of_variance(float(first.values[1]), float(first.errors[1]))
            neyman.append((value - JITTER) / error)
        refit += [
            (e.value - JITTER) / e.uncertainty for e in ROUTINE.fit(data).estimates if e.site is not None
        ]
    print(
        f"per-ion pulls: counts' errors mean {np.mean(neyman):.3f}, "
        f"model's errors mean {np.mean(refit):.3f} rms {np.sqrt(np.mean(np.square(refit))):.3f}"
    )
    assert np.mean(neyman) < -0.15 and abs(np.mean(refit)) < 0.15
    assert 0.85 < np.sqrt(np.mean(np.square(refit))) < 1.15
