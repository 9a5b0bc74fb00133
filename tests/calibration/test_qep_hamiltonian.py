"""QEP Hamiltonian calibration: per-site offsets recovered with gradients measured on the device."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from good_records import good_record

from qep_analog.calibration.data import read_data, write_data
from qep_analog.calibration.fakes.schedule_lab import FakeScheduleLab
from qep_analog.calibration.known import Known
from qep_analog.calibration.resolve import resolve
from qep_analog.calibration.routines.qep_hamiltonian import (
    QEPHamiltonianCalibration,
    input_fields,
    probe_model,
)
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.errors import CalibrationError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import realised_model
from qep_analog.solvers.equilibrium import Equilibrium

PROFILE = read_profile("fresnel-like")
OFFSETS = (0.3, -0.2, 0.1, -0.25)  # rad/µs, hidden per-site detuning offsets
ROUTINE = QEPHamiltonianCalibration()


def device(**calibration: object) -> DeviceProfile:
    return dataclasses.replace(PROFILE, calibration=dataclasses.replace(PROFILE.calibration, **calibration))


def lab(true: DeviceProfile, seed: int) -> FakeScheduleLab:
    noise = PROFILE.noise
    readout = ReadoutErrors.uniform(4, noise.readout_false_positive, noise.readout_false_negative)
    return FakeScheduleLab(true, readout, seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_hidden_site_offsets(seed: int) -> None:
    result = ROUTINE.fit(
        ROUTINE.acquire(ROUTINE.parameters(), lab(device(site_detuning_offsets=OFFSETS), seed), PROFILE)
    )
    assert result.quality == "good", result.reasons
    for site, truth in enumerate(OFFSETS):
        estimate = result.estimate("site_detuning_offsets", site)
        assert abs(estimate.value - truth) <= 3 * estimate.uncertainty, (estimate, truth)
        assert abs(estimate.value - truth) <= 0.2  # rad/µs (errors ≈ 0.065)


def test_offsets_are_relative_to_what_the_profile_already_knows(tmp_path: object) -> None:
    known = device(site_detuning_offsets=(0.2, -0.2, 0.0, 0.0), detuning_offset=0.5)
    true = device(site_detuning_offsets=OFFSETS, detuning_offset=0.5)
    data = ROUTINE.acquire(ROUTINE.parameters({"shots": 8000}), lab(true, 5), known)
    result = ROUTINE.fit(data)
    values = [result.estimate("site_detuning_offsets", i).value for i in range(4)]
    np.testing.assert_allclose(values, OFFSETS, atol=0.15)
    path = tmp_path / "data.json"  # type: ignore[operator]
    write_data(path, data)
    assert ROUTINE.fit(read_data(path)).to_document() == result.to_document()  # offline re-fit


def test_the_gradient_measured_on_the_device_is_the_exact_gradient() -> None:
    """The QEP gradient of the first step equals ∂L/∂c of the true device (central differences of
    its exact ground states), to the O(ν²) bias of the nudge and the shot noise."""
    parameters = ROUTINE.parameters({"shots": 10**9, "iterations": 1, "nudge_rad_per_us": 0.05})
    data = ROUTINE.acquire(parameters, lab(device(site_detuning_offsets=OFFSETS), 0), PROFILE)
    probe = realised_model(probe_model(PROFILE, 4, parameters), PROFILE)
    x = input_fields(parameters)
    targets = _outputs(probe, x, np.zeros(4))
    # the true device: the profile's model plus the hidden offsets (a detuning b moves h by b/2)
    offsets = pauli_sum((b / 2, f"Z{i}") for i, b in enumerate(OFFSETS))
    true = dataclasses.replace(probe, fixed=PauliSum.from_terms([(1.0, probe.fixed), (1.0, offsets)]))

    def loss(c: np.ndarray) -> float:
        return float(np.sum((_outputs(true, x, c) - targets) ** 2) / len(x))

    h = 1e-4
    exact = np.array([(loss(h * e) - loss(-h * e)) / (2 * h) for e in np.eye(4)])
    step = ROUTINE._step(probe, x, targets, np.zeros(4), data.counts, data.context, 0, data.shots)
    np.testing.assert_allclose(step.gradient, exact, rtol=0.02, atol=1e-3 * np.abs(exact).max())


def _outputs(model: QEPModel, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    equilibrium = Equilibrium(model)
    prepared = equilibrium.prepare(x[:, None], np.tile(theta, (len(x), 1)))
    return np.asarray(equilibrium.compiled.output_values(prepared.strings))


@pytest.mark.parametrize("rabi_scale", [0.7, 1.3])
def test_a_device_that_per_site_offsets_cannot_explain_is_bad(rabi_scale: float) -> None:
    result = ROUTINE.fit(
        ROUTINE.acquire(ROUTINE.parameters(), lab(device(rabi_scale=rabi_scale), 0), PROFILE)
    )
    assert result.quality == "bad" and any("reduced chi2" in r for r in result.reasons)


def test_parameters_and_platform_are_checked() -> None:
    with pytest.raises(CalibrationError, match="patterns = 1"):
        ROUTINE.parameters({"patterns": 1})
    with pytest.raises(CalibrationError, match="runs on Rydberg arrays"):
        probe_model(read_profile("yb171-chain"), 4, ROUTINE.parameters())


def test_a_zero_step_is_kept_and_a_long_one_shortened_to_the_trust_limit() -> None:
    from qep_analog.calibration.routines.qep_hamiltonian import _trust_scale

    assert _trust_scale(np.zeros(3), 0.5) == 1.0  # a converged iteration: no division by zero
    assert _trust_scale(np.array([0.1, -0.2]), 0.5) == 1.0
    change = np.array([0.3, -2.0])
    assert np.max(np.abs(change * _trust_scale(change, 0.5))) == pytest.approx(0.5, rel=1e-15)


def calibrated(field: str, sigma: float) -> tuple[DeviceProfile, Known]:
    """The profile with a record of ``field`` at its own value and error ``sigma``."""
    record = good_record(field, float(getattr(PROFILE.calibration, field)), sigma, PROFILE.name)
    return resolve(PROFILE, [record]), Known.from_records(PROFILE.name, [record])


@pytest.mark.parametrize(("field", "sigma"), [("interaction_scale", 0.02), ("rabi_scale", 0.02)])
def test_an_upstream_error_in_the_budget_matches_a_device_off_by_it(field: str, sigma: float) -> None:
    """The C6 (Rabi) scale known to σ: the budget's entry of each site's offset equals how far the
    offsets move, independently, when the routine runs on a device whose scale is σ off (nearly
    noiseless shots, 10⁷ per setting; per-site offsets cannot explain that device exactly, so its χ²
    is far above 1 there), within 10 % of the entry plus 0.005 rad/µs (a tenth of the
    offsets' statistical error at the routine's default shots; C6: entries 0.05–0.1 rad/µs)."""
    profile, known = calibrated(field, sigma)
    parameters = ROUTINE.parameters({"shots": 10**7})
    runs, uses = [], []
    for delta, what in ((0.0, known), (sigma, Known())):  # the moved run needs no budget
        value = float(getattr(PROFILE.calibration, field)) + delta
        truth = device(site_detuning_offsets=OFFSETS, **{field: value})
        data = ROUTINE.acquire_known(parameters, lab(truth, 0), profile, what)
        runs.append(ROUTINE.fit(data))
        uses.append(data.uses)
    assert runs[0].quality == "good", runs[0].reasons  # (the moved device is bad by χ² at 10⁷ shots)
    for site in range(4):
        estimate = runs[0].estimate("site_detuning_offsets", site)
        budget = dict(estimate.budget)
        assert set(budget) == {"statistical", field}
        assert math.sqrt(sum(v**2 for v in budget.values())) == pytest.approx(estimate.uncertainty)
        moved = abs(runs[1].estimate("site_detuning_offsets", site).value - estimate.value)
        assert abs(budget[field] - moved) <= 0.1 * budget[field] + 0.005, (site, budget, moved)
    assert "r1:" + field in uses[0]


def test_a_readout_error_in_the_budget_matches_a_device_that_reads_off_by_it() -> None:
    """Site 1's ε′ known to σ = 0.01 (every site's ε, ε′ calibrated per site, the others exactly):
    the budget's ``readout`` entry of each site's offset equals how far the offsets move when the
    device's own ε′ of site 1 is σ higher than the correction assumes (10⁷ shots per setting), within
    10 % of the entry plus 0.005 rad/µs; without readout records the entry is absent."""
    noise = PROFILE.noise
    sigma = 0.01
    records = []
    for field, value in (("readout_false_positive", noise.readout_false_positive),
                         ("readout_false_negative", noise.readout_false_negative)):  # fmt: skip
        for site in range(4):
            error = sigma if (field, site) == ("readout_false_negative", 1) else 1e-12
            records.append(good_record(field, value, error, PROFILE.name, site=site))
    profile, known = resolve(PROFILE, records), Known.from_records(PROFILE.name, records)
    parameters = ROUTINE.parameters({"shots": 10**7})
    truth = device(site_detuning_offsets=OFFSETS)
    fn = np.full(4, noise.readout_false_negative)
    fp = np.full(4, noise.readout_false_positive)
    runs = []
    for moved in (0.0, sigma):
        reads = ReadoutErrors(fp, fn + np.array([0.0, moved, 0.0, 0.0]))
        data = ROUTINE.acquire_known(parameters, FakeScheduleLab(truth, reads, seed=0), profile, known)
        runs.append(ROUTINE.fit(data))
    assert runs[0].quality == "good", runs[0].reasons
    for site in range(4):
        estimate = runs[0].estimate("site_detuning_offsets", site)
        budget = dict(estimate.budget)
        assert set(budget) == {"statistical", "readout"}
        moved = abs(runs[1].estimate("site_detuning_offsets", site).value - estimate.value)
        assert abs(budget["readout"] - moved) <= 0.1 * budget["readout"] + 0.005, (site, budget, moved)
    assert dict(runs[0].estimate("site_detuning_offsets", 1).budget)["readout"] > 0.01
    plain = ROUTINE.fit(ROUTINE.acquire_known(parameters, lab(truth, 0), PROFILE, Known()))
    assert "readout" not in dict(plain.estimate("site_detuning_offsets", 0).budget)
