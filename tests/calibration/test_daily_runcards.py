"""The daily runcards bring a mis-calibrated fake device back: the QEP gradient measured on it
disagrees with the exact gradient before and agrees after (both platforms)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from qep_analog.calibration.data import read_data
from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab, default_hidden
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.registry import all_routines
from qep_analog.calibration.resolve import resolve
from qep_analog.calibration.routine import FitResult, fit_sites
from qep_analog.calibration.routines.qep_gradient_check import QEPGradientCheck
from qep_analog.calibration.routines.scans import MAX_REDUCED_CHI2
from qep_analog.calibration.runcard import load_runcard
from qep_analog.calibration.runner import run_runcard
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.errors import CalibrationError

CHECK = QEPGradientCheck()
SITE_OFFSETS = (0.3, -0.2, 0.15, -0.25)  # rad/µs: a light-shift pattern no single-atom routine fixes


def rydberg_lab(seed: int) -> tuple[DeviceProfile, FakeRydbergLab]:
    profile = read_profile("fresnel-like")
    hidden = dataclasses.replace(default_hidden(profile, 4), site_detuning_offsets=SITE_OFFSETS)
    return profile, FakeRydbergLab(hidden, seed, profile=profile)


def ion_lab(seed: int) -> tuple[DeviceProfile, FakeIonLab]:
    profile = read_profile("yb171-chain")
    return profile, FakeIonLab.for_profile(profile, 4, seed=seed)


@pytest.mark.parametrize(
    ("make_lab", "seed"),
    [
        (rydberg_lab, 0),
        (ion_lab, 0),
        pytest.param(rydberg_lab, 1, marks=pytest.mark.slow),
    ],
    ids=["0-rydberg", "0-ion", "1-rydberg"],
)
def test_daily_runcard_brings_the_device_back(make_lab: object, seed: int, tmp_path: Path) -> None:
    profile, lab = make_lab(seed)  # type: ignore[operator]
    card = load_runcard(f"{profile.platform}-daily")
    first, last = card.steps[0], card.steps[-1]
    assert first.routine == last.routine == "qep_gradient_check" and first.parameters == last.parameters
    history = CalibrationHistory(tmp_path / "history", profile.name)
    outcome = run_runcard(card, profile, lab, tmp_path / "run", history)
    before, after = outcome.steps[0].result, outcome.steps[-1].result
    assert before.quality == "bad"
    # visibly off: the direction (Rydberg: the offset moves the chain across its ordering) or the
    # size (ions: the field offset polarises the chain and the gradient almost vanishes)
    assert before.curves["cosine"][0] < 0.7 or before.curves["relative_error"][0] > 0.9
    calibrations = outcome.steps[1:-1]
    assert [s.result.quality for s in calibrations] == ["good"] * len(calibrations), [
        (s.routine, s.result.reasons) for s in calibrations
    ]
    assert after.curves["cosine"][0] >= 0.98 and after.curves["relative_error"][0] <= 0.25
    # the verdict applies the chi2 criterion too. The check resolves field errors of ≈ 0.01 rad/µs:
    # with the Rydberg site offsets from a 4000-shot QEP Hamiltonian step (±0.065 rad/µs) the seed-0
    # lab ended 16 % off with chi2/dof 6.5; from the runcard's 64000 shots (±0.016) it agrees
    assert after.reduced_chi2 < MAX_REDUCED_CHI2, after.reasons
    assert after.quality == "good", after.reasons
    assert resolve(profile, history.read().records) == outcome.profile
    true = lab.true_profile()
    assert outcome.profile.calibration.rabi_scale == pytest.approx(true.calibration.rabi_scale, abs=0.005)
    assert outcome.profile.calibration.interaction_scale == pytest.approx(
        true.calibration.interaction_scale, abs=0.01
    )
    for got, want in zip(outcome.profile.local_gains(4), true.local_gains(4), strict=True):
        assert got == pytest.approx(want, abs=0.015)
    if profile.platform == "rydberg":  # the QEP Hamiltonian step found the per-site offsets
        for got, want in zip(outcome.profile.site_offsets(4), true.site_offsets(4), strict=True):
            assert got == pytest.approx(want, abs=0.15)
    # the check re-fits offline from its stored data (as the runner fits: with the records it used)
    folder = outcome.steps[-1].folder
    assert fit_sites(CHECK, read_data(folder / "data.json")).to_document() == after.to_document()


def test_check_parameters_follow_the_platform() -> None:
    profile, lab = ion_lab(0)
    with pytest.raises(CalibrationError, match="transverse = 1 rad/µs on ions"):
        CHECK.acquire(CHECK.parameters({"transverse_rad_per_us": 1.0}), lab, profile)
    profile, rlab = rydberg_lab(0)
    with pytest.raises(CalibrationError, match="needs transverse > 0"):
        CHECK.acquire(CHECK.parameters({"transverse_rad_per_us": 0.0}), rlab, profile)
    with pytest.raises(CalibrationError, match="min_cosine"):
        CHECK.parameters({"min_cosine": 1.5})


def test_the_check_grades_a_gradient_its_errors_do_not_cover_bad() -> None:
    """The same measured probabilities with 100 times the shots: the gradient, its cosine and its
    relative error are unchanged, chi2/dof grows 100-fold past the limit, so the verdict turns bad
    (it was graded on cosine and relative error alone)."""
    _, lab = ion_lab(1)
    true = lab.true_profile()
    parameters = load_runcard("ion-daily").steps[-1].parameters
    data = CHECK.acquire(parameters, lab, true)
    good = CHECK.fit(data)
    assert good.quality == "good", good.reasons
    assert good.reduced_chi2 < MAX_REDUCED_CHI2
    factor = int(np.ceil(2 * MAX_REDUCED_CHI2 / good.reduced_chi2))
    louder = dataclasses.replace(data, counts=data.counts * factor, shots=data.shots * factor)
    bad = CHECK.fit(louder)
    np.testing.assert_allclose(bad.curves["measured"], good.curves["measured"], rtol=1e-12)
    assert bad.curves["cosine"] == pytest.approx(good.curves["cosine"], rel=1e-12)
    # (the standard errors regularise p to (k + 1/2)/(n + 1): equal to 1e-5, not exactly)
    assert bad.reduced_chi2 == pytest.approx(factor * good.reduced_chi2, rel=1e-4)
    assert bad.quality == "bad"
    assert bad.reasons == (f"reduced chi2 {bad.reduced_chi2:.3g} not < {MAX_REDUCED_CHI2}",)


def test_a_verdict_must_follow_its_failed_criteria() -> None:
    with pytest.raises(CalibrationError, match="quality 'good' with 1 failed criteria"):
        FitResult("r", (), 5.8, "good", ("reduced chi2 5.8 not < 3.0",), ("reduced chi2 < 3.0",))
    with pytest.raises(CalibrationError, match="quality 'bad' with 0 failed criteria"):
        FitResult("r", (), 1.0, "bad", (), ("reduced chi2 < 3.0",))


def test_every_routine_states_a_chi2_criterion() -> None:
    for name, routine in all_routines().items():
        assert any("chi2" in criterion for criterion in routine.criteria), name


@pytest.mark.slow
def test_the_ion_daily_runcard_over_24_labs(tmp_path: Path) -> None:
    """``ion-daily`` on the fake chains of seeds 0–23: the closing check's direction and size agree
    on every lab (cosine ≥ 0.98, relative error ≤ 0.25); its χ² criterion, which compares against
    an exact reference without the calibration's own uncertainty, and the local-field map's
    frequency model (χ²/dof < 3 each) are marginal: at most 2 labs of 24 end bad (seed 1: the map
    at 3.11, the check at 3.34; seed 2: the check at 3.37) and the check's mean χ²/dof stays below
    1.5."""
    checks, bad_steps = [], 0
    for seed in range(24):
        profile, lab = ion_lab(seed)
        history = CalibrationHistory(tmp_path / f"h{seed}", profile.name)
        outcome = run_runcard(load_runcard("ion-daily"), profile, lab, tmp_path / f"run{seed}", history)
        after = outcome.steps[-1].result
        assert after.curves["cosine"][0] >= 0.98 and after.curves["relative_error"][0] <= 0.25, seed
        bad_steps += any(s.result.quality != "good" for s in outcome.steps[1:])
        checks.append(after.reduced_chi2)
    assert bad_steps <= 2, (bad_steps, checks)
    assert float(np.mean(checks)) < 1.5, checks
