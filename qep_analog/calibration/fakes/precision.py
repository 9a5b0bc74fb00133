"""How precisely a runcard calibrated a fake device: each calibrated quantity against the fake lab's
hidden truth, with its stated error, and the shots and device time the run took.

The quantities and their goals (issue "Calibration at lab precision", item 4) are in
:data:`RYDBERG_GOALS` and :data:`ION_GOALS`. Per-site quantities take the last estimate of each site
in runcard order (the value in force after the run); errors are relative for scales and gains,
absolute for readout errors, in kHz (÷ 2π) for detuning offsets. The ion couplings J_ij are compared
as predicted by the calibrated and by the true profile for the Mølmer–Sørensen drive of
:mod:`~qep_analog.calibration.routines.two_ion_oscillation` (beat note 2π·0.1 MHz above the calibrated
first radial frequency): J_ij ∝ s_J·r²·K_ij(μ; trap), every pair i < j of the chain.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from qep_analog.calibration.data import read_data
from qep_analog.calibration.fakes.ion_lab import FakeIonLab
from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
from qep_analog.calibration.runner import RunOutcome
from qep_analog.devices import ions

TWO_PI = 2 * math.pi


@dataclass(frozen=True)
class Goal:
    """A quantity's goal: the largest error allowed, in ``unit`` (``relative`` errors as fractions)."""

    limit: float
    unit: str
    label: str


#: the Rydberg goals: Ω scale 1 %, detuning offsets 2π·50 kHz, C6 scale 3 %, ε and ε′ 0.5 % absolute,
#: local gains 1 %
RYDBERG_GOALS = {
    "rabi_scale": Goal(0.01, "relative", "Ω scale"),
    "detuning_offset": Goal(50.0, "kHz", "detuning offset (per site)"),
    "interaction_scale": Goal(0.03, "relative", "C6 scale"),
    "readout_false_positive": Goal(0.005, "absolute", "ε (per site)"),
    "readout_false_negative": Goal(0.005, "absolute", "ε′ (per site)"),
    "local_gains": Goal(0.01, "relative", "local gain (per site)"),
}
#: the ion goals: trap frequencies 0.1 %, J_ij 2 %; the single-ion quantities as for atoms
ION_GOALS = {
    "rabi_scale": Goal(0.01, "relative", "Ω scale"),
    "axial_frequency": Goal(0.001, "relative", "axial trap frequency"),
    "radial_frequency": Goal(0.001, "relative", "radial trap frequency"),
    "coupling": Goal(0.02, "relative", "J_ij (every pair)"),
    "readout_false_positive": Goal(0.005, "absolute", "ε (per ion)"),
    "readout_false_negative": Goal(0.005, "absolute", "ε′ (per ion)"),
    "local_gains": Goal(0.01, "relative", "Stark gain (per ion)"),
}
#: the Mølmer–Sørensen beat note above the centre-of-mass mode J_ij is compared at (rad/µs)
MODE_DETUNING = TWO_PI * 0.1


@dataclass(frozen=True)
class Budget:
    """What a run cost: the most shots at one point, all shots, and the device time (µs) at the
    profile's overhead per shot (the pulses themselves, ≤ a few ms each, are left out)."""

    shots_per_point: int
    total_shots: int
    device_time: float


def _error(value: float, truth: float, unit: str) -> float:
    if unit == "relative":
        return value / truth - 1
    if unit == "kHz":
        return (value - truth) / TWO_PI * 1e3
    return value - truth


def _in_force(outcome: RunOutcome) -> dict[tuple[str, int | None], tuple[float, float]]:
    """The last (value, error) of each (field, site) in runcard order."""
    out: dict[tuple[str, int | None], tuple[float, float]] = {}
    for step in outcome.steps:
        for e in step.result.estimates:
            out[(e.field, e.site)] = (e.value, e.uncertainty)
    return out


def _collect(
    outcome: RunOutcome, truth: dict[tuple[str, int | None], float], goals: dict[str, Goal]
) -> dict[str, list[tuple[float, float]]]:
    found = _in_force(outcome)
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (name, site), true in truth.items():
        if (name, site) not in found:
            continue
        value, error = found[(name, site)]
        unit = goals[name].unit
        stated = abs(_error(value + error, true, unit) - _error(value, true, unit))
        out[name].append((_error(value, true, unit), stated))
    return dict(out)


def rydberg_errors(outcome: RunOutcome, lab: FakeRydbergLab) -> dict[str, list[tuple[float, float]]]:
    """(error, stated error) of each quantity of :data:`RYDBERG_GOALS`, one pair per site or device."""
    h = lab.hidden
    truth: dict[tuple[str, int | None], float] = {
        ("rabi_scale", None): h.rabi_scale,
        ("interaction_scale", None): h.interaction_scale,
    }
    for site in range(lab.n_sites):
        truth[("detuning_offset", site)] = float(h.detuning_offsets[site])
        truth[("readout_false_positive", site)] = h.false_positive[site]
        truth[("readout_false_negative", site)] = h.false_negative[site]
        truth[("local_gains", site)] = float(h.gains[site])
    return _collect(outcome, truth, RYDBERG_GOALS)


def ion_errors(outcome: RunOutcome, lab: FakeIonLab) -> dict[str, list[tuple[float, float]]]:
    """(error, stated error) of each quantity of :data:`ION_GOALS`; J_ij: one pair per coupling, the
    stated error that of the coupling scale s_J (its budget holds the Rabi and trap errors)."""
    h = lab.hidden
    truth: dict[tuple[str, int | None], float] = {
        ("rabi_scale", None): h.rabi_scale,
        ("axial_frequency", None): h.axial_frequency,
        ("radial_frequency", None): h.radial_frequency,
    }
    for site in range(lab.n_sites):
        truth[("readout_false_positive", site)] = h.false_positive[site]
        truth[("readout_false_negative", site)] = h.false_negative[site]
        truth[("local_gains", site)] = h.stark_gains[site]
    out = _collect(outcome, truth, ION_GOALS)
    found = _in_force(outcome)
    if ("interaction_scale", None) in found:
        calibrated, n = outcome.profile, lab.n_sites
        mu = calibrated.ions.radial_frequencies[0] + MODE_DETUNING
        believed = ions.coupling_kernel(calibrated, n, mu)
        true = ions.coupling_kernel(lab.true_profile(), n, mu)
        value, error = found[("interaction_scale", None)]
        upper = np.triu_indices(n, k=1)
        out["coupling"] = [(float(r) - 1, error / value) for r in believed[upper] / true[upper]]
    return out


def run_budget(outcome: RunOutcome, shot_overhead: float) -> Budget:
    """The shots of every step's data (rows × shots: one sequence per row, all sites at once) and the
    device time at ``shot_overhead`` µs per shot."""
    per_point, total = 0, 0
    for step in outcome.steps:
        data = read_data(step.folder / "data.json")
        per_point = max(per_point, data.shots)
        total += data.sweep.size * data.shots
    return Budget(per_point, total, total * shot_overhead)
