"""Sideband spectroscopy whose window follows the trap in force: the transverse band of the chain
at a lab's trap spread, points per Fourier width, one re-scan around the fit at an edge, and the
carrier's and readout's errors in the trap frequencies' budgets."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from good_records import good_record

from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fakes.ion_lab import FakeIonLab, default_hidden
from qep_analog.calibration.known import Known
from qep_analog.calibration.records import CalibrationRecord
from qep_analog.calibration.resolve import resolve
from qep_analog.calibration.routines.sideband_spectroscopy import ROUTINE as SIDEBAND
from qep_analog.calibration.routines.sideband_spectroscopy import (
    SidebandParameters,
    fourier_width,
    sideband_window,
)
from qep_analog.calibration.runcard import load_runcard
from qep_analog.devices import ion_chain
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.errors import CalibrationError

PROFILE = read_profile("yb171-chain")
KHZ = 2 * math.pi * 1e-3  # rad/µs


def lab_with_trap(radial: float, axial: float, n: int = 4, seed: int = 0) -> FakeIonLab:
    """A fake chain whose trap is (``radial``, ``axial``) × the profile's."""
    hidden = dataclasses.replace(
        default_hidden(PROFILE, n),
        radial_frequency=PROFILE.ions.radial_frequencies[0] * radial,
        axial_frequency=PROFILE.ions.axial_frequency * axial,
    )
    return FakeIonLab(hidden, PROFILE, seed)


def carrier_calibrated(lab: FakeIonLab, profile: DeviceProfile = PROFILE) -> DeviceProfile:
    """``profile`` with the lab's true offset and Rabi scale (the carrier routines' job)."""
    h = lab.hidden
    calibration = dataclasses.replace(
        profile.calibration, detuning_offset=h.detuning_offset, rabi_scale=h.rabi_scale
    )
    return dataclasses.replace(profile, calibration=calibration)


def shipped_sideband_step(card: str) -> SidebandParameters:
    """The parameters of the sideband step of a shipped runcard."""
    step = next(s for s in load_runcard(card).steps if s.routine == "sideband_spectroscopy")
    assert isinstance(step.parameters, SidebandParameters)
    return step.parameters


def within(data: CalibrationData, lab: FakeIonLab) -> None:
    """A good fit with both trap frequencies within 3 of their stated errors."""
    result = SIDEBAND.fit(data)
    assert result.quality == "good", result.reasons
    for field, truth in (
        ("radial_frequency", lab.hidden.radial_frequency),
        ("axial_frequency", lab.hidden.axial_frequency),
    ):
        estimate = result.estimate(field)
        assert abs(estimate.value - truth) <= 3 * estimate.uncertainty, (field, estimate, truth)


@pytest.mark.parametrize("card", ["ion-daily-200", "ion-daily"])
def test_the_shipped_sideband_step_finds_a_trap_off_by_a_labs_spread(card: str) -> None:
    """ω_x 2.5 % below the profile (−2π·118 kHz) and ω_z 4 % high: the window the runcards wrote
    before (−80 … +25 kHz around the profile's ω_x) held none of the four modes; the shipped step's
    rule covers them."""
    lab = lab_with_trap(0.975, 1.04)
    data = SIDEBAND.acquire(shipped_sideband_step(card), lab, carrier_calibrated(lab))
    assert "rescan_start" not in data.context  # the first window held the band
    within(data, lab)


@pytest.mark.parametrize(("radial", "axial"), [(0.97, 1.05), (1.03, 0.95), (0.97, 0.95), (1.03, 1.05)])
@pytest.mark.parametrize("n", [4, 20])
def test_the_rule_covers_every_mode_of_the_traps_within_the_prior(
    radial: float, axial: float, n: int
) -> None:
    """The window from the profile's trap (no records: the priors ±3 %, ±5 %) holds every transverse
    mode of the traps at the corners of the prior (``ion_chain.transverse_modes``, computed here
    independently) with a margin of ``linewidths`` Fourier widths, at ``samples`` points per width."""
    p = SIDEBAND.parameters()
    window = sideband_window(p, PROFILE, Known(), n)
    detunings = window.detunings
    width = fourier_width(p.duration)
    positions = ion_chain.dimensionless_positions(n)
    modes, _ = ion_chain.transverse_modes(
        positions, PROFILE.ions.axial_frequency * axial, PROFILE.ions.radial_frequencies[0] * radial
    )
    margin = p.linewidths * width
    assert detunings[0] <= modes.min() - margin * 0.999 and modes.max() + margin * 0.999 <= detunings[-1]
    assert np.diff(detunings).max() <= width / p.samples * (1 + 1e-9)
    assert window.adaptive and window.radial_margin == 0.03 and window.axial_margin == 0.05


def record(field: str, value: float, error: float) -> CalibrationRecord:
    return good_record(field, value, error, PROFILE.name)


def test_a_trap_known_from_its_records_is_scanned_narrower_and_again_at_the_edge() -> None:
    """Records of yesterday's trap (errors 2π·0.2 kHz, 2π·0.1 kHz) give a window of 5 σ and three
    Fourier widths beyond the band; a trap that moved up by 2π·16 kHz since puts the centre-of-mass
    line inside a Fourier width of the top edge: one re-scan around the fit follows, and the fit of
    both scans finds the trap."""
    lab = lab_with_trap(1.0, 1.0)
    moved = lab.hidden.radial_frequency - 16 * KHZ
    records = [
        record("radial_frequency", moved, 0.2 * KHZ),
        record("axial_frequency", lab.hidden.axial_frequency, 0.1 * KHZ),
    ]
    profile = carrier_calibrated(lab, resolve(PROFILE, records))
    known = Known.from_records(PROFILE.name, records)
    p = SIDEBAND.parameters()
    window = sideband_window(p, profile, known, lab.n_sites)
    assert window.radial_margin == pytest.approx(5 * 0.2 * KHZ / moved)
    assert window.uses == ("r1:radial_frequency", "r1:axial_frequency")
    top = moved * (1 + window.radial_margin) + p.linewidths * fourier_width(p.duration)
    assert window.detunings[-1] == pytest.approx(top)
    data = SIDEBAND.acquire_known(p, lab, profile, known)
    assert "rescan_start" in data.context and data.context["rescan_stop"] > top
    within(data, lab)
    assert {"r1:radial_frequency", "r1:axial_frequency"} <= set(data.uses)
    # the re-scan was due: the centre-of-mass line lies within a Fourier width of the first top
    assert top - fourier_width(p.duration) < lab.hidden.radial_frequency < top


def test_a_window_beyond_the_points_limit_is_refused() -> None:
    with pytest.raises(CalibrationError, match="max_points 100"):
        sideband_window(SIDEBAND.parameters({"max_points": 100}), PROFILE, Known(), 20)


def test_the_carriers_error_in_the_budget_matches_a_refit() -> None:
    """The offset in force known to σ = 2π·0.5 kHz: the budget's ``detuning_offset`` entry of ω_x
    equals the move of an independent refit of the data with the carrier moved by 2σ (the qubit
    moves by twice the offset), within 2 %; the readout errors' entry is there and every entry adds
    up to the stated error."""
    lab = lab_with_trap(1.01, 0.98)
    data = SIDEBAND.acquire(SIDEBAND.parameters(), lab, carrier_calibrated(lab))
    sigma = 0.5 * KHZ
    errors = {f"false_positive_{s}_error": 0.002 for s in range(lab.n_sites)}
    stated = SIDEBAND.fit(
        dataclasses.replace(data, context={**data.context, "carrier_shift_error": 2 * sigma, **errors})
    )
    radial = stated.estimate("radial_frequency")
    budget = dict(radial.budget)
    assert set(budget) == {"statistical", "detuning_offset", "readout"}
    assert math.sqrt(sum(v**2 for v in budget.values())) == pytest.approx(radial.uncertainty, rel=1e-12)
    moved = SIDEBAND.fit(dataclasses.replace(data, sweep=data.sweep + 2 * sigma))
    shift = abs(moved.estimate("radial_frequency").value - radial.value)
    assert budget["detuning_offset"] == pytest.approx(shift, rel=0.02)
