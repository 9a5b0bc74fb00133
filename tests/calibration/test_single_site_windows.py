"""The single-site routines (readout, detuning spectroscopy, Ramsey, Rabi) with windows from the
calibration in force: devices whose values lie outside the old fixed windows are recovered, devices
drawn far from the defaults on both platforms are calibrated by the shipped steps with their windows
left out, the propagated error contributions match explicit refits, and the readout's error holds at
a few flips."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pulls import ion_truth, rydberg_truth
from recovery import check, run_routine

from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fakes.draws import draw_ion_hidden, draw_rydberg_hidden
from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab, default_hidden
from qep_analog.calibration.known import Known
from qep_analog.calibration.registry import routine_named
from qep_analog.calibration.routine import FitResult
from qep_analog.calibration.runcard import load_runcard
from qep_analog.calibration.runner import run_runcard
from qep_analog.devices.profile import DeviceProfile, read_profile

TWO_PI = 2 * math.pi
FRESNEL = read_profile("fresnel-like")
SINGLE_SITE = ("readout", "detuning_spectroscopy", "ramsey", "rabi")


def with_calibration(profile: DeviceProfile, **values: Any) -> DeviceProfile:
    """``profile`` with calibrated values in force (``dephasing_time`` goes to the noise model)."""
    noise = profile.noise
    if "dephasing_time" in values:
        noise = dataclasses.replace(noise, dephasing_time=values.pop("dephasing_time"))
    return dataclasses.replace(
        profile, calibration=dataclasses.replace(profile.calibration, **values), noise=noise
    )


def run(name: str, backend: Any, profile: DeviceProfile, **parameters: Any) -> FitResult:
    return run_routine(routine_named(name, profile.platform), backend, profile, **parameters)


# ------------------------------------------------------------- values outside the old fixed windows


def test_ramsey_follows_an_offset_beyond_half_the_old_detuning() -> None:
    """An offset of −2π·0.6 MHz, known from spectroscopy to 2π·20 kHz: at the old fixed detuning of
    2π·1 MHz the fringe sits at 0.4 MHz, less than two fringes in the old 4 µs (and, without the
    offset in force, an offset not small against the detuning): bad. The rule programs the detuning
    from the offset in force and recovers the offset within 3σ."""
    hidden = dataclasses.replace(default_hidden(FRESNEL, 4), detuning_offset=-TWO_PI * 0.6)
    backend = FakeRydbergLab(hidden, seed=3)
    profile = with_calibration(FRESNEL, detuning_offset=hidden.detuning_offset + TWO_PI * 0.02)
    fixed = run("ramsey", backend, profile, detuning_MHz=1.0, stop_us=4.0, points=81)
    assert fixed.quality == "bad", fixed.reasons
    ruled = run("ramsey", backend, profile, points=81)
    check(ruled, "detuning_offset", hidden.detuning_offset, tolerance=0.03)
    check(ruled, "dephasing_time", hidden.dephasing_time, tolerance=0.15)


def test_rabi_follows_a_weak_drive() -> None:
    """A Rabi scale of 0.38 (0.4 in force): the old fixed 2.5 µs window holds less than one period
    and is bad; the rule's window holds 2.5 periods (within the device's 6 µs) and recovers it."""
    hidden = dataclasses.replace(default_hidden(FRESNEL, 4), rabi_scale=0.38)
    backend = FakeRydbergLab(hidden, seed=4)
    profile = with_calibration(
        FRESNEL, rabi_scale=0.4, detuning_offset=hidden.detuning_offset, dephasing_time=3.15
    )
    fixed = run("rabi", backend, profile, stop_us=2.5, points=51, rescan=False)
    assert fixed.quality == "bad" and any("less than one period" in r for r in fixed.reasons)
    ruled = run("rabi", backend, profile, points=51)
    check(ruled, "rabi_scale", 0.38, tolerance=0.005)


def test_rabi_scans_again_when_the_scale_in_force_is_far_off() -> None:
    """A Rabi scale of 0.6 with 1.0 in force: the first scan (2.5 periods at 1.0) holds 1.5 periods,
    so one more follows over 2.5 periods at the fitted Ω; the scale's error shrinks against the first
    scan alone and the value is within 3σ."""
    hidden = dataclasses.replace(default_hidden(FRESNEL, 4), rabi_scale=0.6)
    backend = FakeRydbergLab(hidden, seed=5)
    profile = with_calibration(FRESNEL, detuning_offset=hidden.detuning_offset, dephasing_time=3.15)
    routine = routine_named("rabi")
    data = routine.acquire(routine.parameters({"points": 41}), backend, profile)
    assert data.sweep.size == 82 and data.context["rescan_stop"] == pytest.approx(2.5 / 0.6, rel=0.02)
    result = routine.fit(data)
    check(result, "rabi_scale", 0.6, tolerance=0.005)
    first = dataclasses.replace(data, sweep=data.sweep[:41], counts=data.counts[:41])
    assert (
        result.estimate("rabi_scale").uncertainty
        < 0.7 * routine.fit(first).estimate("rabi_scale").uncertainty
    )


def test_spectroscopy_holds_every_sites_line_in_one_scan() -> None:
    """Light shifts of ±2π·1.2 MHz across the array (in force from earlier records): in the old
    fixed ±2π·1.5 MHz window the outer lines lie at its edge, and the re-scan around their median
    is the same window: bad. The rule's window holds every site's line and recovers each offset."""
    shifts = tuple(TWO_PI * x for x in (-1.2, -0.4, 0.4, 1.2))
    hidden = dataclasses.replace(default_hidden(FRESNEL, 4), site_detuning_offsets=shifts)
    backend = FakeRydbergLab(hidden, seed=6)
    profile = with_calibration(FRESNEL, site_detuning_offsets=shifts)
    fixed = run("detuning_spectroscopy", backend, profile, start_MHz=-1.5, stop_MHz=1.5, points=41)
    assert fixed.quality == "bad", fixed.reasons
    ruled = run("detuning_spectroscopy", backend, profile, points=41)
    assert ruled.quality == "good", ruled.reasons
    for site in range(4):
        check(ruled, "detuning_offset", float(backend.hidden.detuning_offsets[site]), 0.15, site)


# ------------------------------------------------------- devices drawn far from the defaults


def single_site_card(platform: str) -> Any:
    """The shipped daily runcard's single-site steps (their windows left out)."""
    card = load_runcard(f"{platform}-daily")
    return dataclasses.replace(
        card, update="dry-run", steps=tuple(s for s in card.steps if s.routine in SINGLE_SITE)
    )


def drawn_lab(profile_name: str, seed: int) -> tuple[DeviceProfile, Any, dict[Any, float]]:
    profile = read_profile(profile_name)
    rng = np.random.default_rng(seed)
    if profile.platform == "rydberg":
        lab: Any = FakeRydbergLab(draw_rydberg_hidden(profile, 4, rng), seed, profile=profile)
        return profile, lab, rydberg_truth(lab)
    lab = FakeIonLab(draw_ion_hidden(profile, 4, rng), profile, seed)
    return profile, lab, ion_truth(lab)


@pytest.mark.parametrize(("profile_name", "seed"), [("aquila-like", 11), ("yb171-chain", 12)])
def test_drawn_devices_are_calibrated_with_the_rules(profile_name: str, seed: int, tmp_path: Path) -> None:
    """A device drawn with a lab's spread (fakes/draws.py) on each platform: every step good, every
    recorded value of these routines within 4 of its stated errors of the hidden truth."""
    profile, lab, truth = drawn_lab(profile_name, seed)
    outcome = run_runcard(single_site_card(profile.platform), profile, lab, tmp_path / "run")
    for step in outcome.steps:
        assert step.result.quality == "good", (step.routine, step.result.reasons)
        for e in step.result.estimates:
            if (e.field, e.site) in truth:
                pull = (e.value - truth[(e.field, e.site)]) / e.uncertainty
                assert abs(pull) < 4, (step.routine, e, truth[(e.field, e.site)])


@pytest.mark.slow  # 3 × 20 drawn devices, about a minute
@pytest.mark.parametrize("profile_name", ["fresnel-like", "aquila-like", "yb171-chain"])
def test_drawn_devices_pull_with_the_rules(profile_name: str, tmp_path: Path) -> None:
    """Twenty devices drawn with a lab's spread: every step good, the rms pull of every recorded
    quantity of these routines (sites pooled) in [0.75, 1.25] (80 pulls: ±0.25 is 3 standard errors
    of the rms)."""
    pulls: dict[str, list[float]] = {}
    for seed in range(20, 40):
        profile, lab, truth = drawn_lab(profile_name, seed)
        outcome = run_runcard(single_site_card(profile.platform), profile, lab, tmp_path / f"{seed}")
        for step in outcome.steps:
            assert step.result.quality == "good", (seed, step.routine, step.result.reasons)
            for e in step.result.estimates:
                if (e.field, e.site) in truth and e.site is not None:
                    key = f"{step.routine}:{e.field}"
                    pulls.setdefault(key, []).append((e.value - truth[(e.field, e.site)]) / e.uncertainty)
    rms = {key: float(np.sqrt(np.mean(np.square(v)))) for key, v in pulls.items()}
    print(profile_name, {key: round(value, 2) for key, value in rms.items()})
    for key, value in rms.items():
        assert 0.75 <= value <= 1.25, (key, value)


# ------------------------------------------------------------------ propagated contributions


def test_rabis_propagated_contributions_match_refits(tmp_path: Path) -> None:
    """Rabi's budget: the shift of the scale when a site's known offset, or T2* in force, moves by
    its error, against refits of the same data with that input moved (within 10 %)."""
    hidden = dataclasses.replace(
        default_hidden(FRESNEL, 2), site_detuning_offsets=(0.4, -0.3), dephasing_time=2.0
    )
    backend = FakeRydbergLab(hidden, seed=7)
    card = dataclasses.replace(
        single_site_card("rydberg"),
        steps=tuple(s for s in single_site_card("rydberg").steps if s.routine in ("ramsey", "rabi")),
    )
    outcome = run_runcard(card, FRESNEL, backend, tmp_path / "run")
    rabi = routine_named("rabi")
    from qep_analog.calibration.data import read_data

    data = read_data(outcome.steps[-1].folder / "data.json")
    result = rabi.fit(data)
    assert result.quality == "good", result.reasons
    for site in range(2):
        estimate = result.estimate("rabi_scale", site)
        budget = dict(estimate.budget)
        offset_error = data.context[f"residual_{site}_error"]
        rms_error = data.context["detuning_rms_error"]
        assert offset_error > 0 and rms_error > 0
        for key, moved in (
            (f"residual_{site}", offset_error),
            ("detuning_rms", rms_error),
        ):
            context = dict(data.context)
            context[key] += moved
            refit = rabi.fit(dataclasses.replace(data, context=context)).estimate("rabi_scale", site)
            shift = abs(refit.value - estimate.value)
            name = f"detuning_offset.{site}" if key.startswith("residual") else "dephasing_time"
            assert budget[name] == pytest.approx(shift, rel=0.1), (name, budget, shift)
        total = math.sqrt(sum(v**2 for v in budget.values()))
        assert estimate.uncertainty == pytest.approx(total)
    mean = result.estimate("rabi_scale")
    assert {"statistical", "detuning_offset", "dephasing_time"} <= set(dict(mean.budget))


def test_the_records_name_what_the_rules_used(tmp_path: Path) -> None:
    """Rabi after Ramsey: its data name Ramsey's per-site offset records in ``uses``; Ramsey after
    spectroscopy names the spectroscopy's; every routine says its window came from the rule."""
    backend = FakeRydbergLab(default_hidden(FRESNEL, 2), seed=8)
    card = single_site_card("rydberg")
    outcome = run_runcard(card, FRESNEL, backend, tmp_path / "run")
    from qep_analog.calibration.data import read_data

    steps = {s.routine: s for s in outcome.steps}
    for name, earlier in (("ramsey", "detuning_spectroscopy"), ("rabi", "ramsey")):
        data = read_data(steps[name].folder / "data.json")
        assert data.context["adaptive_window"] == 1.0
        made = steps[earlier].records
        ids = {r.record_id for r in made if r.field == "detuning_offset" and r.site is not None}
        assert len(ids) == 2 and ids <= set(steps[name].result.uses), (name, steps[name].result.uses)
        assert steps[earlier].result.quality == "good"


# --------------------------------------------------------------------------- readout at few flips


@pytest.mark.parametrize("expected_flips", [1.0, 2.0, 3.0, 5.0])
def test_readout_errors_hold_at_a_few_flips(expected_flips: float) -> None:
    """Binomial draws of 2000 sites with ε = expected flips / 4000 shots: the pulls (estimate −
    ε)/error have rms in [0.75, 1.1] and at most 1 % beyond 3 (a normal pull: 0.3 %). The pooled
    fraction with the binomial error at the estimate gave rms 1.21–1.26 at 2–5 flips and 4–5 % beyond
    3 at 3 and 5 flips (k = 0 at 3: a pull of −4.2)."""
    sites, repeats, shots = 2000, 4, 1000
    eps = expected_flips / (repeats * shots)
    rng = np.random.default_rng(int(expected_flips * 10))
    states = np.tile([0.0, 1.0], repeats)
    counts = np.where(
        states[:, None] == 0,
        rng.binomial(shots, eps, size=(states.size, sites)),
        shots - rng.binomial(shots, eps, size=(states.size, sites)),
    )
    data = CalibrationData(
        routine="readout",
        parameters={"repeats": repeats, "shots": shots},
        sweep_name="prepared",
        sweep_unit="",
        sweep=states,
        shots=shots,
        counts=counts,
    )
    result = routine_named("readout").fit(data)
    pulls = np.array([(e.value - eps) / e.uncertainty for e in result.estimates if e.site is not None])
    assert pulls.size == 2 * sites
    rms = float(np.sqrt(np.mean(pulls**2)))
    assert 0.75 <= rms <= 1.1, rms
    assert np.mean(np.abs(pulls) > 3) <= 0.01, np.sort(np.abs(pulls))[-10:]


def test_known_offsets_without_records_take_the_plausible_spread() -> None:
    """Ramsey's rule on a profile whose offset has no record: the fringe is placed 2.5 plausible
    spreads (±2π·0.2 MHz) above the offset in force, or three periods per T2*, whichever is faster."""
    backend = FakeRydbergLab(default_hidden(FRESNEL, 2), seed=9)
    routine = routine_named("ramsey")
    data = routine.acquire_known(routine.parameters(), backend, FRESNEL, Known())
    t2 = FRESNEL.noise.dephasing_time
    frequency = max(2.5 * TWO_PI * 0.2, 3 * TWO_PI / t2)
    assert data.context["detuning"] == pytest.approx(frequency - FRESNEL.calibration.detuning_offset)
    assert data.sweep[-1] == pytest.approx(min(1.2 * t2, FRESNEL.rydberg.max_duration))
