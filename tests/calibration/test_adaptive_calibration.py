"""Calibration that adapts and uses what is known: scan windows that follow the earlier steps, models
with each site's calibrated values (named in the records' ``uses``), and error bars that carry the
upstream errors (the records' ``budget``), checked by pulls over devices drawn around the profiles."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from good_records import good_record
from pulls import collect, rms
from scipy import stats

from qep_analog.calibration.data import read_data
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab, default_hidden
from qep_analog.calibration.fitting import combine
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.known import Known, KnownValue
from qep_analog.calibration.records import CalibrationRecord
from qep_analog.calibration.resolve import resolve
from qep_analog.calibration.routine import FitResult, fit_sites
from qep_analog.calibration.routines.pair_spectroscopy import ROUTINE as PAIR
from qep_analog.calibration.routines.parallel_pairs import combine as pair_combine
from qep_analog.calibration.runcard import Runcard, load_runcard
from qep_analog.calibration.runner import RunOutcome, run_runcard
from qep_analog.devices.profile import read_profile

TWO_PI = 2 * math.pi
PROFILE = read_profile("fresnel-like")
#: the device of the issue: the offset negative (the fake lab's default is positive), C6 7 % strong
ISSUE_DEVICE = dataclasses.replace(
    default_hidden(PROFILE, 4), detuning_offset=-TWO_PI * 0.08, interaction_scale=1.07
)
SINGLE_AND_PAIR = ("readout", "detuning_spectroscopy", "ramsey", "rabi", "pair_spectroscopy")


def daily(routines: tuple[str, ...] | None = None) -> Runcard:
    """The shipped ``rydberg-daily`` runcard, or its steps of ``routines`` (their shipped parameters)."""
    card = load_runcard("rydberg-daily")
    if routines is None:
        return card
    return dataclasses.replace(card, steps=tuple(s for s in card.steps if s.routine in routines))


def within(result: FitResult, field: str, truth: float, site: int | None = None) -> None:
    estimate = result.estimate(field, site)
    assert abs(estimate.value - truth) <= 3 * estimate.uncertainty, (field, site, estimate, truth)


def run(card: Runcard, lab: FakeRydbergLab, folder: Path) -> RunOutcome:
    return run_runcard(
        card, PROFILE, lab, folder / "run", CalibrationHistory(folder / "history", PROFILE.name)
    )


# ------------------------------------------------------------------------------ windows that adapt


def test_the_issue_device_is_calibrated_by_the_daily_steps(tmp_path: Path) -> None:
    """Offset −2π·80 kHz, C6 ×1.07: with the scan windows fixed in the runcard, pair spectroscopy
    (line at 2π·1.66 MHz, window to 1.8 MHz) and the local-field map (an addressed fringe of
    < 2 periods in 4 µs) were judged bad on every seed; their windows now follow the offset that
    Ramsey measured."""
    lab = FakeRydbergLab(ISSUE_DEVICE, 0, profile=PROFILE)
    outcome = run(daily((*SINGLE_AND_PAIR, "local_field_map")), lab, tmp_path)
    assert [s.result.quality for s in outcome.steps] == ["good"] * 6, [
        (s.routine, s.result.reasons) for s in outcome.steps
    ]
    pair, local = outcome.steps[4].result, outcome.steps[5].result
    within(pair, "interaction_scale", 1.07)
    assert pair.estimate("interaction_scale").uncertainty < 0.003
    for site, gain in enumerate(lab.hidden.gains):
        within(local, "local_gains", float(gain), site)
    # the records went into the profile in force
    assert outcome.profile.calibration.interaction_scale == pair.estimate("interaction_scale").value
    np.testing.assert_allclose(outcome.profile.local_gains(4), lab.hidden.gains, atol=0.015)


@pytest.mark.slow  # the whole daily runcard (two QEP gradient checks, the QEP Hamiltonian): ~40 s
def test_the_issue_device_through_the_whole_daily_runcard(tmp_path: Path) -> None:
    lab = FakeRydbergLab(ISSUE_DEVICE, 1, profile=PROFILE)
    outcome = run(daily(), lab, tmp_path)
    steps = outcome.steps
    assert [s.result.quality for s in steps[1:]] == ["good"] * (len(steps) - 1), [
        (s.routine, s.result.reasons) for s in steps
    ]
    after = steps[-1].result
    assert after.curves["cosine"][0] >= 0.98 and after.curves["relative_error"][0] <= 0.25
    pair = next(s.result for s in steps if s.routine == "pair_spectroscopy")
    local = next(s.result for s in steps if s.routine == "local_field_map")
    within(pair, "interaction_scale", 1.07)
    for site, gain in enumerate(lab.hidden.gains):
        within(local, "local_gains", float(gain), site)


# ------------------------------------------------------------------ models that use what is known


def test_pair_spectroscopy_uses_each_atoms_own_offset(tmp_path: Path) -> None:
    """Per-site offsets +0.3, +0.3, −0.3, −0.3 rad/µs: the pair (atoms 0, 1) sits 0.3 rad/µs above the
    device-wide offset. The model takes each atom's offset from Ramsey's per-site records and finds
    the C6 scale 0.96 within 3σ; the same data fitted with the device-wide offset for both atoms (the
    model's old assumption) are far off. The record names the records it used, its error budget adds
    up to its uncertainty, and the step's records file states the criteria it was judged by."""
    hidden = dataclasses.replace(default_hidden(PROFILE, 4), site_detuning_offsets=(0.3, 0.3, -0.3, -0.3))
    lab = FakeRydbergLab(hidden, 0, profile=PROFILE)
    outcome = run(daily(("readout", "ramsey", "rabi", "pair_spectroscopy")), lab, tmp_path)
    step = outcome.steps[-1]
    assert step.result.quality == "good", step.result.reasons
    within(step.result, "interaction_scale", 0.96)
    data = read_data(step.folder / "data.json")
    np.testing.assert_allclose(
        [data.context["offset_0"], data.context["offset_1"]], hidden.detuning_offsets[:2], atol=0.03
    )
    mean = outcome.profile.calibration.detuning_offset
    naive = dataclasses.replace(data, context={**data.context, "offset_0": mean, "offset_1": mean})
    biased = PAIR.fit(naive).estimate("interaction_scale")
    assert abs(biased.value - 0.96) > 10 * biased.uncertainty, biased

    record, run_id = step.records[0], outcome.run_id
    # ids RUN#STEP:FIELD[@SITE]: Ramsey is step 2, Rabi step 3
    assert {
        f"{run_id}#2:detuning_offset@0",
        f"{run_id}#2:detuning_offset@1",
        f"{run_id}#3:rabi_scale",
    } <= set(record.uses)
    budget = dict(record.budget)
    assert set(budget) == {
        "statistical",
        "detuning_offset.0",
        "detuning_offset.1",
        "rabi_scale",
        "dephasing_time",
        "readout",
    }
    assert math.sqrt(sum(v**2 for v in budget.values())) == pytest.approx(record.uncertainty, rel=1e-12)
    stored = json.loads((step.folder / "records.json").read_text())
    assert stored["criteria"] == list(step.result.criteria) and stored["quality"] == "good"
    assert record in CalibrationHistory(tmp_path / "history", PROFILE.name).read().records
    assert fit_sites(PAIR, data).to_document() == step.result.to_document()  # the offline refit
    assert FitResult.from_document(step.result.to_document()) == step.result
    # a version-1 record (no schema key, no step) written before uses and budget existed
    old = {k: v for k, v in record.to_document().items() if k not in ("uses", "budget", "schema", "step")}
    assert CalibrationRecord.from_document(old) == dataclasses.replace(
        record, uses=(), budget=(), step=None
    )


def test_the_propagated_offset_error_matches_a_refit(tmp_path: Path) -> None:
    """The linearised propagation against an independent refit: atom 0's offset moved by 0.05
    rad/µs moves the fitted scale by what the budget says per 0.05 rad/µs of error (2 %)."""
    lab = FakeRydbergLab(ISSUE_DEVICE, 3, profile=PROFILE)
    data = PAIR.acquire(PAIR.parameters({"points": 25}), lab, lab.true_profile())
    sigma = 0.05
    stated = PAIR.fit(dataclasses.replace(data, context={**data.context, "offset_0_error": sigma}))
    contribution = dict(stated.estimates[0].budget)["detuning_offset.0"]
    moved = dataclasses.replace(
        data, context={**data.context, "offset_0": data.context["offset_0"] + sigma}
    )
    shift = abs(
        PAIR.fit(moved).estimate("interaction_scale").value - stated.estimate("interaction_scale").value
    )
    assert contribution == pytest.approx(shift, rel=0.02)


def test_a_shared_device_wide_offset_moves_both_atoms_together(tmp_path: Path) -> None:
    """Both atoms' offsets from the one device-wide record (no per-site records): its error is one
    input that moves both. The budget's ``detuning_offset`` equals an independent refit with both
    offsets moved by σ (2 %), and the sum of the two atoms' separate contributions — √2 more than
    their quadrature sum, what treating them as independent stated."""
    lab = FakeRydbergLab(ISSUE_DEVICE, 3, profile=PROFILE)
    sigma = 0.05
    device = record("detuning_offset", lab.hidden.detuning_offset, sigma, "r0")
    profile = resolve(PROFILE, [device])
    known = Known.from_records(PROFILE.name, [device])
    data = PAIR.acquire_known(PAIR.parameters({"points": 25}), lab, profile, known)
    ctx = data.context
    assert ctx["offset_0_shared"] == ctx["offset_1_shared"] == 1.0
    assert ctx["offset_shared_error"] == sigma and ctx["offset_0_error"] == ctx["offset_1_error"] == 0.0
    assert "r0:detuning_offset" in data.uses
    result = PAIR.fit(data)
    scale = result.estimate("interaction_scale")
    joint = dict(scale.budget)["detuning_offset"]
    refits = [
        PAIR.fit(dataclasses.replace(data, context={**ctx, **moved})).estimate("interaction_scale").value
        for moved in (
            {"offset_0": ctx["offset_0"] + d, "offset_1": ctx["offset_1"] + d} for d in (sigma, -sigma)
        )
    ]
    assert joint == pytest.approx(abs(refits[0] - refits[1]) / 2, rel=0.02)  # central difference
    apart = {
        **ctx,
        "offset_shared_error": 0.0,
        "offset_0_error": sigma,
        "offset_1_error": sigma,
    }
    separate = dict(PAIR.fit(dataclasses.replace(data, context=apart)).estimates[0].budget)
    single = (separate["detuning_offset.0"], separate["detuning_offset.1"])
    assert joint == pytest.approx(sum(single), rel=0.01)
    assert joint / math.hypot(*single) == pytest.approx(math.sqrt(2), rel=0.02)


def test_parallel_pairs_combine_by_the_one_rule() -> None:
    """The pairs' mean and error are :func:`fitting.combine`'s over each pair's independent error
    (statistical and own inputs in quadrature), inflated when the pairs disagree; a common input
    adds linearly (weighted mean), each pair's own in quadrature; the entries add up to the
    combined error and the common one."""
    budgets = [
        {"statistical": 0.004, "rabi_scale": 0.003, "detuning_offset": 0.002, "detuning_offset.0": 0.003},
        {"statistical": 0.006, "rabi_scale": 0.005, "detuning_offset": 0.004, "detuning_offset.0": 0.001},
        {"statistical": 0.005, "rabi_scale": 0.004, "detuning_offset": 0.003, "detuning_offset.0": 0.002},
    ]
    independent = np.array([math.hypot(b["statistical"], b["detuning_offset.0"]) for b in budgets])
    w = 1 / independent**2
    for scales in ([1.0, 1.004, 0.997], [1.0, 1.05, 0.95]):  # agreeing; far apart (inflated)
        mean, budget, scatter = pair_combine(scales, budgets, 0.0)
        expected_mean, expected_error = combine(np.array(scales), independent)
        assert mean == pytest.approx(expected_mean) and mean == pytest.approx(
            np.sum(w * scales) / np.sum(w)
        )
        common = {k: float(np.sum(w * [b[k] for b in budgets]) / np.sum(w)) for k in ("rabi_scale",)}
        assert budget["rabi_scale"] == pytest.approx(common["rabi_scale"])
        shared = float(np.sum(w * [b["detuning_offset"] for b in budgets]) / np.sum(w))
        own = math.sqrt(budget["detuning_offset"] ** 2 - shared**2)
        assert math.hypot(budget["statistical"], own) == pytest.approx(expected_error)
        assert scatter == pytest.approx(np.sum(w * (np.array(scales) - mean) ** 2) / 2)
    assert expected_error > 1 / math.sqrt(np.sum(w)) * 3  # the far-apart pairs inflate


# -------------------------------------------------------------------------------- pulls

#: every recorded quantity's rms pull over the slow test's seeds must lie here
PULL_RANGE = (0.8, 1.25)
#: the slow pull test's drawn devices per platform
SLOW_SEEDS = 60


def pull_bounds(n: int) -> tuple[float, float]:
    """The 0.1 % and 99.9 % quantiles of the rms of ``n`` standard normal pulls."""
    return math.sqrt(stats.chi2.ppf(0.001, n) / n), math.sqrt(stats.chi2.ppf(0.999, n) / n)


def check_ion_budget(folder: Path) -> None:
    """On the ion runs: J ∝ (Ω scale)², so the Rabi scale's error σ_r contributes 2·s·σ_r/r to the
    coupling scale s; the trap's errors are in the budget too."""
    for run_folder in sorted(folder.glob("ion-*")):
        records = {}
        for step in sorted(run_folder.glob("*/records.json")):
            for document in json.loads(step.read_text())["records"]:
                records[(document["field"], document["site"])] = CalibrationRecord.from_document(document)
        rabi, coupling = records[("rabi_scale", None)], records[("interaction_scale", None)]
        budget = dict(coupling.budget)
        assert set(budget) == {"statistical", "rabi_scale", "trap"}
        assert budget["rabi_scale"] == pytest.approx(
            2 * coupling.value * rabi.uncertainty / rabi.value, rel=1e-3
        )
        assert rabi.record_id in coupling.uses


@pytest.mark.parametrize("platform", ["rydberg", "ion"])
def test_pulls_over_five_drawn_devices(platform: str, tmp_path: Path) -> None:
    """Five devices drawn around the shipped profile through the routines the propagated errors
    come from (fewer sites and points): every step good; the pulls of all quantities together have
    an rms in [0.8, 1.25], and each quantity's rms lies within the 0.1–99.9 % range of its number of
    pulls (five device-wide values alone cannot pin an rms to [0.8, 1.25]: the 20-seed variant does)."""
    pulls, bad = collect(platform, range(5), tmp_path, fast=True)
    assert not bad, bad
    pooled = [p for values in pulls.values() for p in values]
    assert PULL_RANGE[0] <= rms(pooled) <= PULL_RANGE[1], rms(pooled)
    for name, values in pulls.items():
        low, high = pull_bounds(len(values))
        assert low <= rms(values) <= high, (name, rms(values), len(values))
    if platform == "ion":
        check_ion_budget(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("platform", ["rydberg", "ion"])
def test_pulls_over_sixty_drawn_devices(platform: str, tmp_path: Path) -> None:
    """Sixty devices through the reduced runcards (four sites, the daily runcards' shots): every
    step good and the rms pull of every recorded quantity in [0.8, 1.25]. Sixty, not twenty: the rms
    of twenty standard normal pulls falls outside [0.8, 1.25] with probability 0.16 (χ² of 20 dof
    below 12.8 or above 31.3), so one of a dozen device-wide quantities would fail by chance in most
    runs; with sixty that probability is 0.017 per quantity."""
    pulls, bad = collect(platform, range(SLOW_SEEDS), tmp_path)
    assert not bad, bad
    values = {name: round(rms(v), 3) for name, v in pulls.items()}
    print(platform, values)
    outside = {name: v for name, v in values.items() if not PULL_RANGE[0] <= v <= PULL_RANGE[1]}
    assert not outside, outside


# ------------------------------------------------------------------------------------- known values


def record(field: str, value: float, error: float, run: str, site: int | None = None) -> CalibrationRecord:
    return good_record(field, value, error, PROFILE.name, site=site, run=run)


def test_a_sites_known_offset_is_its_newest_measurement() -> None:
    """Ramsey's per-site offset (with the device-wide mean of the same run) is the site's offset until
    a later per-site offset record (QEP Hamiltonian) moves it: then device-wide plus per-site, their
    errors in quadrature."""
    ramsey = [
        record("detuning_offset", 1.1, 0.004, "r1", 0),
        record("detuning_offset", 0.9, 0.004, "r1", 1),
    ]
    ramsey.append(record("detuning_offset", 1.0, 0.1, "r1"))
    profile = resolve(PROFILE, ramsey)
    known = Known.from_records(PROFILE.name, ramsey)
    assert known.site_offset(profile, 0) == KnownValue(1.1, 0.004, ("r1:detuning_offset@0",))
    later = [*ramsey, *(record("site_detuning_offsets", 0.05 * k, 0.02, "r2", k) for k in range(4))]
    profile, known = resolve(PROFILE, later), Known.from_records(PROFILE.name, later)
    value = known.site_offset(profile, 1)
    assert value.value == pytest.approx(1.05) and value.uncertainty == pytest.approx(math.hypot(0.1, 0.02))
    assert value.record_ids == ("r1:detuning_offset", "r2:site_detuning_offsets@1")
    assert Known().site_offset(profile, 1) == KnownValue(pytest.approx(1.05))  # the profile's, error 0


def test_device_wide_means_inflate_their_error_only_when_the_sites_disagree() -> None:
    errors = np.full(4, 0.01)
    agree = np.array([1.0, 1.012, 0.99, 1.005])  # χ² = 2.6 over 3 dof: below its 95 % quantile 7.8
    mean, error = combine(agree, errors)
    assert mean == pytest.approx(agree.mean()) and error == pytest.approx(0.005)
    disagree = np.array([1.0, 1.05, 0.95, 1.02])  # χ² = 53 over 3 dof
    chi2 = float(np.sum(((disagree - disagree.mean()) / 0.01) ** 2))
    assert combine(disagree, errors)[1] == pytest.approx(0.005 * math.sqrt(chi2 / 3))
