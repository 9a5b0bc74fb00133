"""The default emulator (CF4 Magnus with Chebyshev exponentials) against QuTiP at tight tolerances:
Rydberg chains, the 9-atom Rydberg sensor on aquila-like, an ion chain; its pieces (Bessel series,
one exponential, Pauli matrices); trajectories (jitter, Z kicks) against QuTiP's mesolve."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import qutip
import scipy.linalg as sl
import scipy.special as ss
from conftest import THETA, smooth

from qep_analog.backends.jobs import PhaseJob
from qep_analog.backends.schedules import job_schedules
from qep_analog.devices.ions import IonControls, realize
from qep_analog.devices.profile import DeviceProfile, NoiseModel, read_profile
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.emulation import magnus
from qep_analog.emulation.qutip_emulator import QutipEmulator, pauli_matrix
from qep_analog.model.operators import OperatorTable
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import qep_phase_schedules, realised_model
from qep_analog.sequences.recipes import Recipe, build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask

INFIDELITY = 1e-8


def _reference(schedule: Schedule, profile: DeviceProfile) -> np.ndarray:
    return QutipEmulator(profile, atol=1e-12, rtol=1e-10, method="qutip").run(schedule).state


def _infidelity(a: np.ndarray, b: np.ndarray) -> float:
    return float(1 - abs(np.vdot(a, b)) ** 2 / (np.vdot(a, a).real * np.vdot(b, b).real))


def _chain(model: QEPModel, recipe_name: str = "", duration: float = 3.0, relaxed: bool = False):  # type: ignore[no-untyped-def]
    profile = read_profile("fresnel-like", relaxed=relaxed)
    recipe = load_recipe(recipe_name) if recipe_name else smooth(duration, 60)
    return qep_phase_schedules(model, profile, recipe, [], THETA, [1.0], 0.1, "Z" * 6)[0], profile


class _SensorTask(RydbergSensorTask):
    """The sensor with every point labelled disordered: labels only choose training points (and the
    phase boundaries live in a module this test does not need); the schedules do not use them."""

    def label(self, points: np.ndarray) -> list[str | None]:
        return ["disordered"] * len(np.atleast_2d(points))


def _sensor(point: tuple[float, float], phase: str = "free") -> tuple[Schedule, DeviceProfile]:
    """A job of the 9-atom sensor (7-atom chain + 2 sensors) on aquila-like at (δ/Ω, R_b/a)."""
    profile = read_profile("aquila-like")
    task = _SensorTask(profile=profile, n_chain=7, test_size=1)
    x = task.model_inputs(np.array([point]))[0]
    theta = task.parameterisation.coefficients(task.initial_parameters(np.random.default_rng(0)))
    model = realised_model(task.model, profile)
    nu = (0.0, 0.0) if phase == "free" else (0.3, -0.2)
    job = PhaseJob(0, phase, tuple(map(float, x)), tuple(map(float, theta)), nu, ("Z" * 9,), None)
    return job_schedules(model, profile, load_recipe("rydberg-smooth"), [job])[job.key], profile


def _ion(recipe: Recipe | None = None) -> tuple[Schedule, DeviceProfile]:
    """A 4-ion chain through ``recipe`` (default: ion-exponential; another on the relaxed profile)."""
    profile = read_profile("yb171-chain", relaxed=recipe is not None)
    n = 4
    couplings = realize(IonControls(np.full(n, 1.5), 30.0), profile).couplings
    fixed = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    trainable = {f"b{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    model = QEPModel(n, trainable, {"m": pauli_sum([(1.0, "Z0")])}, fixed)
    theta = np.array([0.004, 0.002, 0.003, 0.0025])
    recipe = recipe or load_recipe("ion-exponential")
    return qep_phase_schedules(model, profile, recipe, [], theta, [1.0], 0.005)[0], profile


def test_bessel_series_and_one_exponential() -> None:
    """J_k(z) to 1e-13 (z up to 500); exp(−iτH)ψ to 1e-12 for a complex H with position-dependent
    row elements (Y strings) and uniform ones."""
    for z in (1e-6, 0.3, 7.0, 45.5, 500.0):
        values = magnus._bessel_series(z, 1e-13)
        k = np.arange(len(values))
        np.testing.assert_allclose(values, ss.jv(k, z), atol=1e-13 * max(1.0, z / 50))
        assert 2 * np.abs(ss.jv(np.arange(len(values), len(values) + 400), z)).sum() < 1e-13
    n = 4
    rng = np.random.default_rng(2)
    operator = pauli_sum(
        [(float(rng.normal(0, 20)), f"Z{i} Z{i + 1}") for i in range(n - 1)]
        + [(float(rng.normal()), f"X{i}") for i in range(n)]
        + [(float(rng.normal()), f"Y{i} Z{(i + 1) % n}") for i in range(n)]
        + [(0.7, "X0 Y2"), (0.4, "X1 X3")]
    )
    masks, elements = magnus.row_elements(operator, n)
    diagonals = elements[0].real[None].copy()
    rows = np.stack([elements[1:].real, elements[1:].imag])[None].copy()
    uniform = np.all(rows == rows[..., :1], axis=(0, 1, 3))
    assert uniform.any() and not uniform.all()
    diagonal, combined, work = magnus._scratch(diagonals, rows)
    magnus._combine(diagonals, rows, uniform, np.ones(1), diagonal, combined)
    psi = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    split = magnus._split(psi)
    tau = 0.37
    magnus._expm_action(diagonal, combined, uniform, masks[1:].copy(), tau, split, work)
    expected = sl.expm(-1j * tau * pauli_matrix(operator, n).toarray()) @ psi
    np.testing.assert_allclose(magnus._joined(split), expected, atol=1e-12 * np.linalg.norm(psi))


def test_pauli_matrices_from_bit_masks_match_the_operator_table() -> None:
    operator = pauli_sum([(0.3, "X0 Y2"), (-1.2, "Z1 Z3"), (0.5, "Y1"), (2.0, "I"), (0.25, "X0 Z1 X3")])
    table = OperatorTable(4, list(operator))
    np.testing.assert_allclose(
        pauli_matrix(operator, 4).toarray(), table.dense(np.array(list(operator.values()))), atol=1e-15
    )


@pytest.mark.parametrize(
    ("recipe", "duration", "relaxed"),
    [("", 3.0, False), ("", 30.0, True), ("rydberg-linear", 0.0, False), ("rydberg-gap-aware", 0.0, False)],
)
def test_rydberg_chains_match_qutip(
    chain_model: QEPModel, recipe: str, duration: float, relaxed: bool
) -> None:
    """The 6-atom chain: a fast and a slow sin² ramp, a linear ramp (one long segment, cut by the
    step rule), a gap-aware ramp (uneven breakpoints)."""
    schedule, profile = _chain(chain_model, recipe, duration, relaxed)
    ours = QutipEmulator(profile).run(schedule).state
    assert _infidelity(ours, _reference(schedule, profile)) <= INFIDELITY


def test_a_drive_with_a_phase_matches_qutip(chain_model: QEPModel) -> None:
    """A Rydberg drive with a phase has X and Y terms on each atom: complex row elements."""
    schedule, profile = _chain(chain_model)
    phased = dataclasses.replace(schedule, static={**schedule.static, "phase": 0.7})
    hamiltonian = magnus.SplitHamiltonian.of(phased, profile)
    assert not hamiltonian.uniform.all() and np.any(hamiltonian.rows[:, 1])
    ours = QutipEmulator(profile).run(phased).state
    assert _infidelity(ours, _reference(phased, profile)) <= INFIDELITY


@pytest.mark.parametrize(
    ("point", "phase"), [((2.0, 2.0), "free"), ((-1.0, 1.7), "plus"), ((3.0, 1.9), "free")]
)
def test_the_rydberg_sensor_matches_qutip(point: tuple[float, float], phase: str) -> None:
    """9 atoms on aquila-like (couplings up to ~10³ rad/µs): the default steps and step doubling."""
    schedule, profile = _sensor(point, phase)
    assert schedule.n_qubits == 9
    reference = _reference(schedule, profile)
    assert _infidelity(QutipEmulator(profile).run(schedule).state, reference) <= INFIDELITY
    if point == (2.0, 2.0):
        adaptive = magnus.evolve(
            magnus.SplitHamiltonian.of(schedule, profile), magnus.basis_state(schedule), 1e-4
        )
        assert _infidelity(adaptive.state, reference) <= INFIDELITY


def test_the_ion_chain_matches_qutip() -> None:
    schedule, profile = _ion()
    ours = QutipEmulator(profile).run(schedule).state
    assert _infidelity(ours, _reference(schedule, profile)) <= INFIDELITY


def test_a_kicked_trajectory_is_exact(chain_model: QEPModel) -> None:
    """Trajectories without noise are the closed evolution; Z kicks act at their times and the
    jittered drive is scaled: against QuTiP solved piecewise with Z between the pieces."""
    schedule, profile = _chain(chain_model)
    hamiltonian = magnus.SplitHamiltonian.of(schedule, profile)
    psi0 = magnus.basis_state(schedule)
    closed = magnus.evolve(hamiltonian, psi0).state
    draws = [magnus.Trajectory(), magnus.Trajectory(1.03, ((0.8, 2), (1.7, 0), (1.7, 5), (3.0, 1)))]
    states = magnus.run_trajectories(hamiltonian, psi0, draws, "rabi").state
    assert np.linalg.norm(states[0] - closed) < 1e-9  # the block's series covers both drives
    rabi = schedule.controls["rabi"]
    scaled = dataclasses.replace(
        schedule,
        controls={**schedule.controls, "rabi": dataclasses.replace(rabi, values=1.03 * rabi.values)},
    )
    h = QutipEmulator(profile, method="qutip")._hamiltonian(scaled)
    options = {"atol": 1e-12, "rtol": 1e-10, "method": "vern7", "nsteps": 10**6}

    def z(q: int) -> qutip.Qobj:
        return qutip.Qobj(pauli_matrix(pauli_sum([(1.0, f"Z{q}")]), 6).toarray(), dims=[[2] * 6] * 2)

    state = qutip.basis([2] * 6, [0] * 6)
    for (start, end), qubits in zip(
        itertools.pairwise([0.0, 0.8, 1.7, 3.0]), ([], [2], [0, 5]), strict=True
    ):
        for q in qubits:
            state = z(q) * state
        state = qutip.sesolve(h, state, [start, end], options=options).final_state
    state = z(1) * state
    assert _infidelity(states[1], state.full().ravel()) <= INFIDELITY


def test_trajectories_converge_to_the_lindblad_solution() -> None:
    """Three atoms on aquila-like with Markovian dephasing at γ = 1/µs: the mean of |ψ⟩⟨ψ| over 400
    trajectories (Z kicks at rate γ/2 per qubit) against mesolve with √(γ/2) Z_i, within 4 standard
    errors on every probability and ⟨X_i⟩; the noiseless probabilities are far off."""
    base = read_profile("aquila-like")
    profile = dataclasses.replace(
        base, noise=NoiseModel(0.0, 0.0, markovian_dephasing_time=1.0, amplitude_jitter=0.0)
    )
    positions = np.array([[0.0, 0.0], [6.0, 0.0], [12.0, 0.0]])
    recipe = dataclasses.replace(load_recipe("rydberg-smooth"), duration=2.0, segments=40)
    schedule = build_schedule(recipe, profile, RydbergControls(positions, rabi=8.0, detuning=6.0))
    reference = (
        QutipEmulator(profile, method="qutip", atol=1e-10, rtol=1e-8).run(schedule, noise=True).state
    )
    hamiltonian = magnus.SplitHamiltonian.of(schedule, profile)
    draws = magnus.draw_trajectories(400, 3, schedule.duration, 1.0, 0.0, np.random.default_rng(7))
    assert 400 * 3 * 0.5 * 2.0 * 0.8 < sum(len(d.kicks) for d in draws) < 400 * 3 * 0.5 * 2.0 * 1.2
    steps = magnus.step_grid(hamiltonian, magnus.TRAJECTORY_STRENGTH)
    psi0 = magnus.basis_state(schedule)
    states = magnus.run_trajectories(
        hamiltonian, psi0, draws, "rabi", steps, magnus.TRAJECTORY_TOLERANCE
    ).state
    states /= np.linalg.norm(states, axis=1, keepdims=True)  # as the emulator does
    x = [pauli_matrix(pauli_sum([(1.0, f"X{q}")]), 3) for q in range(3)]
    samples = np.column_stack(
        [np.abs(states) ** 2] + [np.real(np.einsum("rc,rc->r", states.conj(), (m @ states.T).T)) for m in x]
    )
    expected = np.concatenate(
        [np.real(np.diag(reference))] + [np.real((m @ reference).trace()) * np.ones(1) for m in x]
    )
    mean, error = samples.mean(axis=0), samples.std(axis=0) / np.sqrt(len(samples))
    assert np.all(np.abs(mean - expected) <= 4 * error + 1e-9)
    closed = np.abs(magnus.evolve(hamiltonian, magnus.basis_state(schedule)).state) ** 2
    assert np.abs(closed - expected[:8]).max() > 10 * error[:8].max()
    rho = QutipEmulator(profile).run(schedule, noise=True, seed=7, realisations=400).state
    np.testing.assert_allclose(np.real(np.diag(rho)), mean[:8], atol=1e-12)  # the same draws


def test_a_tight_tolerance_ends_and_agrees_with_qutip() -> None:
    """Step doubling at tol = 1e-8 on a one-atom ramp whose error estimates hit the series' cut (it
    used to shrink h without end) finishes and agrees with QuTiP, as on a 53 µs linear ramp of the same
    atom."""
    profile = read_profile("fresnel-like", relaxed=True)
    model = QEPModel(
        1, {"h": pauli_sum([(1.0, "X0")]), "d": pauli_sum([(1.0, "Z0")])}, {"m": pauli_sum([(1.0, "Z0")])}
    )
    base = dataclasses.replace(load_recipe("rydberg-quintic"), initial_detuning=-3.0)
    cosine = dataclasses.replace(base, shape="cosine", duration=13.332, segments=200)
    plus = qep_phase_schedules(model, profile, cosine, [], [1.0, -2.0], [1.0], 0.01, "Z")[1]
    tight = QutipEmulator(profile, tol=1e-8).run(plus).state
    assert _infidelity(tight, _reference(plus, profile)) < 1e-8
    linear = dataclasses.replace(base, shape="linear", duration=53.332)
    free = qep_phase_schedules(model, profile, linear, [], [1.0, -2.0], [1.0], 0.01, "Z")[0]
    reference = _reference(free, profile)
    assert _infidelity(QutipEmulator(profile, tol=1e-8).run(free).state, reference) < 1e-8


#: the default step rule's infidelity on long ramps, against step doubling at tol = 1e-10
LONG_RAMP_INFIDELITY = 1e-6


def _long_linear_ramp(system: str) -> tuple[Schedule, DeviceProfile]:
    """One atom (H = X − 2Z from −3 n) through a 53 µs linear ramp (two breakpoints; T·Δ_min = 160),
    or the 4-ion chain of :func:`_ion` through a linear field ramp of 40 ms in 20 segments of 2 ms."""
    if system == "ions":
        recipe = load_recipe("ion-exponential")
        return _ion(dataclasses.replace(recipe, shape="linear", duration=40_000.0, segments=20))
    profile = read_profile("fresnel-like", relaxed=True)
    model = QEPModel(
        1, {"h": pauli_sum([(1.0, "X0")]), "d": pauli_sum([(1.0, "Z0")])}, {"m": pauli_sum([(1.0, "Z0")])}
    )
    linear = dataclasses.replace(load_recipe("rydberg-linear"), initial_detuning=-3.0, duration=53.332)
    return qep_phase_schedules(model, profile, linear, [], [1.0, -2.0], [1.0], 0.01, "Z")[0], profile


@pytest.mark.parametrize("system", ["atom", "ions"])
def test_the_default_steps_are_accurate_on_long_ramps(system: str) -> None:
    """Long segments whose Hamiltonian changes slowly: h²‖Ḣ‖ ≤ κ alone allowed steps of h·‖H‖ ≈ 5
    rad (infidelity 2.4e-4 on the atom, 8.5e-7 on the ions); with h·max_q ‖H_c‖_q ≤ φ as well the
    default is within 1e-6 of step doubling at tol = 1e-10 (3e-11 and 6e-14 measured), at a third of
    its products or less."""
    schedule, profile = _long_linear_ramp(system)
    hamiltonian = magnus.SplitHamiltonian.of(schedule, profile)
    psi0 = magnus.basis_state(schedule)
    default = magnus.evolve(hamiltonian, psi0)
    reference = magnus.evolve(hamiltonian, psi0, tol=1e-10)
    assert _infidelity(default.state, reference.state) <= LONG_RAMP_INFIDELITY
    assert default.products < reference.products / 3
