"""Pull tests of the calibration: reduced runcards run on fake devices drawn around a shipped
profile (:mod:`qep_analog.calibration.fakes.draws`), every recorded value compared with the hidden
truth in units of its stated error."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog.calibration.fakes.draws import draw_ion_hidden, draw_rydberg_hidden
from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
from qep_analog.calibration.runcard import parse_runcard
from qep_analog.calibration.runner import RunOutcome, run_runcard
from qep_analog.devices.profile import read_profile

#: the Rydberg routines whose errors the pull test checks, with the daily runcard's shots (fewer
#: points for the costly pair and local-field fits)
RYDBERG_CARD: dict[str, Any] = {
    "schema": "qep-runcard/1",
    "name": "rydberg-pulls",
    "platform": "rydberg",
    "update": "dry-run",
    "routines": [
        {"routine": "readout", "parameters": {"repeats": 4, "shots": 1000}},
        {
            "routine": "ramsey",
            "parameters": {"detuning_MHz": 1.0, "stop_us": 4.0, "points": 81, "shots": 400},
        },
        {"routine": "rabi", "parameters": {"rabi_MHz": 1.0, "stop_us": 2.5, "points": 51, "shots": 400}},
        {"routine": "pair_spectroscopy", "parameters": {"points": 31, "shots": 400}},
        {"routine": "local_field_map", "parameters": {"points": 61, "shots": 400}},
    ],
}
#: the ion chain's qubit offset is drawn within ±2π·10 kHz: a coarse resonance scan first, then
#: Ramsey fringes at 2π·30 kHz (unambiguous for offsets below 2π·15 kHz); the sideband window is the
#: rule's (the trap drawn within ±2.5 % of the profile)
ION_CARD: dict[str, Any] = {
    "schema": "qep-runcard/1",
    "name": "ion-pulls",
    "platform": "ion",
    "update": "dry-run",
    "routines": [
        {"routine": "readout", "parameters": {"repeats": 4, "shots": 1000}},
        {
            "routine": "detuning_spectroscopy",
            "parameters": {
                "rabi_kHz": 10.0,
                "duration_us": 50.0,
                "start_kHz": -40.0,
                "stop_kHz": 40.0,
                "points": 41,
                "shots": 400,
            },
        },
        {
            "routine": "ramsey",
            "parameters": {"spread_kHz": 10.0, "points": 151, "shots": 400},  # the rule's window
        },
        {"routine": "rabi", "parameters": {"rabi_kHz": 200.0, "stop_us": 15.0, "points": 61, "shots": 400}},
        {
            "routine": "sideband_spectroscopy",
            "parameters": {"rabi_MHz": 0.1, "duration_us": 150.0, "shots": 200},
        },
        {"routine": "two_ion_oscillation", "parameters": {"points": 41, "shots": 400}},
        {
            "routine": "local_field_map",
            "parameters": {"detuning_kHz": 50.0, "fringes": 6, "points": 81, "shots": 400},
        },
    ],
}


def rydberg_truth(lab: FakeRydbergLab) -> dict[tuple[str, int | None], float]:
    h, n = lab.hidden, lab.n_sites
    truth: dict[tuple[str, int | None], float] = {
        ("rabi_scale", None): h.rabi_scale,
        ("interaction_scale", None): h.interaction_scale,
        ("dephasing_time", None): h.dephasing_time,
        ("readout_false_positive", None): float(np.mean(h.false_positive)),
        ("readout_false_negative", None): float(np.mean(h.false_negative)),
    }
    for site in range(n):
        truth[("rabi_scale", site)] = h.rabi_scale
        truth[("dephasing_time", site)] = h.dephasing_time
        truth[("detuning_offset", site)] = float(h.detuning_offsets[site])
        truth[("readout_false_positive", site)] = h.false_positive[site]
        truth[("readout_false_negative", site)] = h.false_negative[site]
        truth[("local_gains", site)] = float(h.gains[site])
    return truth


def ion_truth(lab: FakeIonLab) -> dict[tuple[str, int | None], float]:
    h, n = lab.hidden, lab.n_sites
    truth: dict[tuple[str, int | None], float] = {
        ("rabi_scale", None): h.rabi_scale,
        ("interaction_scale", None): h.interaction_scale,
        ("dephasing_time", None): h.dephasing_time,
        ("detuning_offset", None): h.detuning_offset,
        ("axial_frequency", None): h.axial_frequency,
        ("radial_frequency", None): h.radial_frequency,
        ("readout_false_positive", None): float(np.mean(h.false_positive)),
        ("readout_false_negative", None): float(np.mean(h.false_negative)),
        ("stark_crosstalk", None): h.stark_crosstalk,
    }
    for site in range(n):
        truth[("local_gains", site)] = h.stark_gains[site]
        for field in ("rabi_scale", "dephasing_time", "detuning_offset"):
            truth[(field, site)] = truth[(field, None)]
        truth[("readout_false_positive", site)] = h.false_positive[site]
        truth[("readout_false_negative", site)] = h.false_negative[site]
    return truth


#: the fast variants (the default suite): the routines the propagated errors come from, on fewer
#: sites and points
FAST_RYDBERG_CARD: dict[str, Any] = {
    **RYDBERG_CARD,
    "routines": [
        {"routine": "readout", "parameters": {"repeats": 2, "shots": 1000}},
        {
            "routine": "ramsey",
            "parameters": {"detuning_MHz": 1.0, "stop_us": 4.0, "points": 61, "shots": 400},
        },
        {"routine": "rabi", "parameters": {"rabi_MHz": 1.0, "stop_us": 2.5, "points": 41, "shots": 400}},
        {"routine": "pair_spectroscopy", "parameters": {"points": 21, "shots": 400}},
    ],
}
FAST_ION_CARD: dict[str, Any] = {
    **ION_CARD,
    "routines": [
        {"routine": "readout", "parameters": {"repeats": 2, "shots": 1000}},
        ION_CARD["routines"][1],
        ION_CARD["routines"][2],
        {"routine": "rabi", "parameters": {"rabi_kHz": 200.0, "stop_us": 15.0, "points": 41, "shots": 400}},
        {
            "routine": "sideband_spectroscopy",
            "parameters": {"rabi_MHz": 0.1, "duration_us": 150.0, "samples": 2.0, "shots": 200},
        },
        {"routine": "two_ion_oscillation", "parameters": {"max_distance": 1, "points": 31, "shots": 400}},
        ION_CARD["routines"][6],
    ],
}


def run_seed(
    platform: str, seed: int, folder: Path, fast: bool = False
) -> tuple[RunOutcome, dict[tuple[str, int | None], float]]:
    """A device drawn with ``seed`` around the shipped profile, through the reduced runcard (4 sites;
    ``fast``: the fast card on 2 atoms or 3 ions, neighbours only)."""
    base = 1000 if platform == "rydberg" else 2000  # the platforms' draws independent
    rng = np.random.default_rng(base + seed)
    if platform == "rydberg":
        profile = read_profile("fresnel-like")
        hidden = draw_rydberg_hidden(profile, 2 if fast else 4, rng)
        lab: Any = FakeRydbergLab(hidden, seed, profile=profile)
        card, truth = parse_runcard(FAST_RYDBERG_CARD if fast else RYDBERG_CARD), rydberg_truth(lab)
    else:
        profile = read_profile("yb171-chain")
        lab = FakeIonLab(draw_ion_hidden(profile, 3 if fast else 4, rng), profile, base + seed)
        card, truth = parse_runcard(FAST_ION_CARD if fast else ION_CARD), ion_truth(lab)
    return run_runcard(card, profile, lab, folder), truth


def collect(
    platform: str, seeds: range, folder: Path, fast: bool = False
) -> tuple[dict[str, list[float]], list[tuple[int, str, tuple[str, ...]]]]:
    """Pulls (value − truth)/error by quantity ("field" device-wide, "field@site" pooled over sites)
    and the steps judged bad (seed, routine, reasons)."""
    pulls: dict[str, list[float]] = defaultdict(list)
    bad = []
    for seed in seeds:
        outcome, truth = run_seed(platform, seed, folder / f"{platform}-{seed}", fast)
        for step in outcome.steps:
            if step.result.quality != "good":
                bad.append((seed, step.routine, step.result.reasons))
            for e in step.result.estimates:
                if (e.field, e.site) in truth and e.uncertainty > 0:
                    key = e.field if e.site is None else f"{e.field}@site"
                    pulls[key].append((e.value - truth[(e.field, e.site)]) / e.uncertainty)
    return dict(pulls), bad


def rms(values: list[float]) -> float:
    return math.sqrt(float(np.mean(np.square(values))))
