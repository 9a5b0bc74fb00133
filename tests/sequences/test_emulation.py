"""Emulators: ours against an independent integrator and against pulser-simulation; noise; QEP
through emulated preparation; diagnostics; Pulser and ion exports."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sl
from conftest import THETA, smooth
from pulser import Sequence

from qep_analog.backends.emulated_gradient import emulated_qep_gradient
from qep_analog.devices.ions import IonControls, realize
from qep_analog.devices.profile import DeviceProfile, NoiseModel, read_profile
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.emulation.diagnostics import adiabaticity
from qep_analog.emulation.pulser_backend import run_pulser
from qep_analog.emulation.qutip_emulator import QutipEmulator, pauli_matrix, sample_counts
from qep_analog.errors import StorageError
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.ion_export import export_ion_json, ion_document, read_ion_json
from qep_analog.sequences.phases import model_hamiltonian, qep_phase_schedules, realised_model
from qep_analog.sequences.pulser_export import export_abstract_json
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule, hamiltonian_at, hamiltonian_terms

N_OPS = {f"n{q}": pauli_sum([(0.5, "I"), (-0.5, f"Z{q}")]) for q in range(6)}


def _chain_schedule(model: QEPModel, duration: float = 3.0) -> tuple[Schedule, DeviceProfile]:
    profile = read_profile("fresnel-like")
    free = qep_phase_schedules(model, profile, smooth(duration, 60), [], THETA, [1.0], 0.1, "Z" * 6)[0]
    return free, profile


def _independent(schedule: Schedule, profile: DeviceProfile, steps: int = 3000) -> np.ndarray:
    """Midpoint piecewise-constant propagation with dense exponentials (no QuTiP)."""
    n, dt = schedule.n_qubits, schedule.duration / steps
    static, terms = hamiltonian_terms(schedule, profile)
    base = pauli_matrix(static, n).toarray()
    parts = [(schedule.controls[name], pauli_matrix(op, n).toarray()) for name, op in terms]
    psi = np.zeros(1 << n, dtype=complex)
    psi[0] = 1.0
    for k in range(steps):
        t = (k + 0.5) * dt
        h = base + sum(float(w(t)) * m for w, m in parts)
        psi = sl.expm(-1j * h * dt) @ psi
    return psi


def test_our_emulator_matches_an_independent_integrator(chain_model: QEPModel) -> None:
    schedule, profile = _chain_schedule(chain_model)
    ours = QutipEmulator(profile).run(schedule).state
    reference = _independent(schedule, profile)
    assert abs(np.vdot(reference, ours)) ** 2 > 1 - 1e-6


def test_our_emulator_and_pulsers_agree(chain_model: QEPModel) -> None:
    schedule, profile = _chain_schedule(chain_model)
    ours = QutipEmulator(profile).run(schedule, N_OPS)
    pulser = run_pulser(schedule, profile, N_OPS)
    assert abs(np.vdot(pulser.state, ours.state)) ** 2 >= 0.999
    for name in N_OPS:
        assert pulser.expectations[name] == pytest.approx(ours.expectations[name], abs=1e-3)


def test_pulser_basis_is_converted() -> None:
    """A π pulse on one atom ends in |1⟩ = |r⟩ for both emulators."""
    profile = read_profile("fresnel-like")
    rabi = 2 * np.pi  # rad/µs: a π pulse takes 0.5 µs
    recipe = dataclasses.replace(load_recipe("rydberg-linear"), duration=0.5, initial_detuning=-1e-9)
    target = RydbergControls(np.zeros((1, 2)), rabi=rabi, detuning=0.0)
    schedule = build_schedule(recipe, profile, target)
    flat = dataclasses.replace(schedule, controls={
        "rabi": dataclasses.replace(schedule.controls["rabi"], values=np.full(2, rabi)),
        "detuning": dataclasses.replace(schedule.controls["detuning"], values=np.zeros(2)),
    })  # fmt: skip
    number = {"n0": pauli_sum([(0.5, "I"), (-0.5, "Z0")])}
    assert QutipEmulator(profile).run(flat, number).expectations["n0"] == pytest.approx(1.0, abs=1e-6)
    assert run_pulser(flat, profile, number).expectations["n0"] == pytest.approx(1.0, abs=1e-3)


def test_dephasing_matches_the_lindblad_solution() -> None:
    """One atom driven at Ω with Markovian dephasing √(γ/2) Z, γ = 1/T (the profile's
    ``markovian_dephasing_time``, source ``dephasing``): compare with exp(L t) of the Liouvillian
    — QuTiP's mesolve to 1e-6, the mean over 4000 trajectories within its statistical error."""
    base = read_profile("fresnel-like")
    noise = NoiseModel(0.0, 0.0, markovian_dephasing_time=2.0, amplitude_jitter=0.0)
    profile = dataclasses.replace(base, noise=noise)
    rabi = 3.0
    recipe = dataclasses.replace(load_recipe("rydberg-linear"), duration=2.0, initial_detuning=-1e-9)
    schedule = build_schedule(recipe, profile, RydbergControls(np.zeros((1, 2)), rabi=rabi, detuning=0.0))
    flat = dataclasses.replace(schedule, controls={
        "rabi": dataclasses.replace(schedule.controls["rabi"], values=np.full(2, rabi)),
        "detuning": dataclasses.replace(schedule.controls["detuning"], values=np.zeros(2)),
    })  # fmt: skip
    x, z, eye = np.array([[0, 1], [1, 0.0]]), np.diag([1.0, -1.0]), np.eye(2)
    h, lind = rabi / 2 * x, np.sqrt(0.5 / 2.0) * z
    liouvillian = (
        -1j * (np.kron(h, eye) - np.kron(eye, h.T))
        + np.kron(lind, lind.conj()) - 0.5 * np.kron(lind.conj().T @ lind, eye)
        - 0.5 * np.kron(eye, (lind.conj().T @ lind).T)
    )  # fmt: skip
    rho0 = np.diag([1.0, 0.0]).astype(complex)
    expected = (sl.expm(liouvillian * 2.0) @ rho0.reshape(-1)).reshape(2, 2)
    rho = QutipEmulator(profile, method="qutip").run(flat, noise=True).state
    np.testing.assert_allclose(rho, expected, atol=1e-6)
    count = 4000
    rho = QutipEmulator(profile).run(flat, noise=True, seed=3, realisations=count).state
    # each trajectory's |ψ⟩⟨ψ| has entries within [−1, 1]: standard errors below 1/√count
    np.testing.assert_allclose(rho, expected, atol=4 / np.sqrt(count))
    assert np.trace(rho).real == pytest.approx(1.0, abs=1e-10)


def test_readout_errors_flip_bits_at_their_rates() -> None:
    rng = np.random.default_rng(4)
    probabilities = np.zeros(8)
    probabilities[0b011] = 1.0  # qubit 0 in |0⟩, qubits 1 and 2 in |1⟩
    counts = sample_counts(probabilities, 3, 20_000, rng, flips=(0.1, 0.2))
    ones = np.zeros(3)
    for bits, c in counts.items():
        ones += c * np.array([int(b) for b in bits])
    rates = ones / 20_000
    sigma = np.sqrt(0.1 * 0.9 / 20_000)
    assert abs(rates[0] - 0.1) < 5 * sigma  # false positives on the |0⟩ qubit
    assert abs(rates[1] - 0.8) < 5 * np.sqrt(0.16 / 20_000)  # false negatives on the |1⟩ qubits


def test_amplitude_jitter_mixes_the_state(chain_model: QEPModel) -> None:
    schedule, base = _chain_schedule(chain_model, 1.0)
    noise = NoiseModel(0.0, 0.0, dephasing_time=np.inf, amplitude_jitter=0.05)
    profile = dataclasses.replace(base, noise=noise)
    rho = QutipEmulator(profile).run(schedule, noise=True, seed=1, realisations=6).state
    purity = np.real(np.trace(rho @ rho))
    assert 0.9 < purity < 1 - 1e-6 and np.trace(rho).real == pytest.approx(1.0, abs=1e-8)


def test_exported_pulser_json_round_trips(tmp_path: Path, chain_model: QEPModel) -> None:
    schedule, profile = _chain_schedule(chain_model)
    path = tmp_path / "free.json"
    export_abstract_json(schedule, profile, path)
    sequence = Sequence.from_abstract_repr(path.read_text(encoding="utf-8"))
    sequence.device.validate_register(sequence.register)
    assert len(sequence.register.qubits) == 6
    assert sequence.get_duration() == round(schedule.duration * 1000)


def _ion_model() -> tuple[QEPModel, DeviceProfile]:
    profile = read_profile("yb171-chain")
    n = 4
    couplings = realize(IonControls(np.full(n, 1.5), 30.0), profile).couplings
    fixed = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    trainable = {f"b{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    return QEPModel(n, trainable, {"m": pauli_sum([(1.0, "Z0")])}, fixed), profile


def test_ion_schedules_export_and_validate(tmp_path: Path) -> None:
    model, profile = _ion_model()
    theta = np.array([0.004, 0.002, 0.003, 0.0025])  # fields along B_0: the ground sector of |1111⟩
    schedules = qep_phase_schedules(model, profile, load_recipe("ion-exponential"), [], theta, [1.0], 0.005)
    assert {s.readout for s in schedules} == {"ZZZZ"}
    path = tmp_path / "ion.json"
    document = export_ion_json(schedules[0], profile.capabilities.clock, path)
    assert read_ion_json(path)["n_ions"] == 4 and document["initial_state"] == "1111"
    broken = {**document, "rabi_rad_per_us": document["rabi_rad_per_us"][:-1]}
    for bad, message in (
        ({k: v for k, v in document.items() if k != "beat_note_rad_per_us"}, "beat_note_rad_per_us"),
        ({**document, "readout_basis": "ZZW"}, "readout_basis"),
        (broken, "breakpoints"),
        ({**document, "times_us": [0.0, 0.0015, *document["times_us"][2:]]}, "clock"),
    ):
        path.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(StorageError, match=message):
            read_ion_json(path)
    # the emulated ion preparation reaches the target state
    result = QutipEmulator(profile).run(schedules[0])
    diagnostics = adiabaticity(schedules[0], profile, result)
    assert diagnostics.fidelity > 0.99
    assert ion_document(schedules[0], profile.capabilities.clock)["label"] == "free"
    # with per-site offsets and Stark gains calibrated, the schedules still end at the target
    calibration = dataclasses.replace(
        profile.calibration,
        detuning_offset=0.001,
        local_gains=(1.1, 0.9, 1.0, 1.05),
        site_detuning_offsets=(0.0005, -0.0003, 0.0, 0.0002),
    )
    calibrated = dataclasses.replace(profile, calibration=calibration)
    free = qep_phase_schedules(model, calibrated, load_recipe("ion-exponential"), [], theta, [1.0], 0.005)[
        0
    ]
    end = hamiltonian_at(free, calibrated, free.duration)
    target = model_hamiltonian(realised_model(model, calibrated), [], theta, [0.0])
    keys = {k for k in set(end) | set(target) if k.factors}
    assert max(abs(end.get(k, 0.0) - target.get(k, 0.0)) for k in keys) < 1e-12


def test_diagnostics_flag_a_fast_ramp(chain_model: QEPModel) -> None:
    profile = read_profile("fresnel-like", relaxed=True)
    for duration, slow in ((3.0, False), (30.0, True)):
        schedule = qep_phase_schedules(
            chain_model, profile, smooth(duration), [], THETA, [1.0], 0.1, "Z" * 6
        )[0]
        result = QutipEmulator(profile).run(schedule)
        diagnostics = adiabaticity(schedule, profile, result)
        assert diagnostics.slow_enough is slow
        if not slow:
            assert diagnostics.required_duration > duration and diagnostics.fidelity < 0.999
        else:
            assert diagnostics.fidelity > 1 - 1e-6


def test_qep_through_emulated_preparation(chain_model: QEPModel) -> None:
    """Slow ramp: the emulated gradient agrees with the exact QEP gradient of the realised model."""
    profile = read_profile("fresnel-like", relaxed=True)
    slow = emulated_qep_gradient(chain_model, profile, smooth(30.0), [], THETA, [1.0], 0.1)
    assert slow.cosine >= 0.99 and slow.relative_error <= 0.05 and slow.slow_enough
    fast = emulated_qep_gradient(chain_model, profile, smooth(8.0), [], THETA, [1.0], 0.1)
    assert not fast.slow_enough and fast.relative_error > slow.relative_error
