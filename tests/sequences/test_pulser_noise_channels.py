"""Each channel of Pulser's NoiseModel, alone, in our emulator and in pulser-simulation.

Small cases (1–3 atoms, under 1.6 µs). Lindblad channels: pulser-simulation is deterministic, our
QuTiP method within 1e-3 of it on every population, our trajectories (the default method) within
4 standard errors. Shot-to-shot channels: the mean ⟨n_q⟩ over our trajectories (in batches, whose
spread gives the error of one run) and over Pulser's runs within 4 combined standard errors. Each
test also checks that the noiseless result is outside the tolerance, so that a missing channel fails.
The ``slow`` variants run ten times as many of Pulser's runs, which separates a wrong scale (σ vs 2σ)
as well.

Our basis: qubit 0 the most significant bit, |1⟩ = Rydberg; Pulser's states come back through
:func:`~qep_analog.emulation.pulser_backend.run_pulser` (every bit flipped).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pulser
import pytest
import scipy.linalg
from pulser.backend import BitStrings
from pulser_simulation import QutipBackendV2, QutipConfig

from qep_analog.devices.noise_sources import NOISE_SOURCES
from qep_analog.devices.profile import DeviceProfile, NoiseModel, read_profile
from qep_analog.devices.pulser_noise import noise_model_to_pulser, sources_of
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.emulation import magnus
from qep_analog.emulation.pulser_backend import run_pulser
from qep_analog.emulation.qutip_emulator import QutipEmulator, pauli_matrix
from qep_analog.sequences.pulser_export import to_pulser_sequence
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule, hamiltonian_at

#: a mean within this many combined standard errors of the other
STANDARD_ERRORS = 4.0
#: our QuTiP method against pulser-simulation on a Lindblad channel (populations)
LINDBLAD_TOLERANCE = 1e-3


def _profile(**noise: float) -> DeviceProfile:
    base = read_profile("fresnel-like", relaxed=True)
    return dataclasses.replace(base, noise=NoiseModel(0.0, 0.0, **noise))


def _flat(
    profile: DeviceProfile,
    positions: list[list[float]],
    rabi: float,
    detuning: float,
    duration: float,
    weights: list[float] | None = None,
    local: float = 0.0,
) -> Schedule:
    """Constant Ω, δ (and detuning map waveform ``local`` on ``weights``) for ``duration`` µs."""
    recipe = dataclasses.replace(load_recipe("rydberg-linear"), duration=duration, initial_detuning=-1e-9)
    extra = {} if weights is None else {"local_weights": np.array(weights), "local_amplitude": local}
    target = RydbergControls(np.array(positions, dtype=float), rabi=rabi, detuning=detuning, **extra)
    schedule = build_schedule(recipe, profile, target)
    values = {"rabi": rabi, "detuning": detuning, "local_amplitude": local}
    controls = {
        name: dataclasses.replace(w, values=np.full(len(w.values), values[name]))
        for name, w in schedule.controls.items()
    }
    return dataclasses.replace(schedule, controls=controls)


def _occupations(rho: np.ndarray, n: int) -> np.ndarray:
    """⟨n_q⟩ of a density matrix or ket in our basis."""
    bits = (np.arange(1 << n)[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1
    return np.asarray(_populations(rho) @ bits)


def _populations(rho: np.ndarray) -> np.ndarray:
    """The populations of the basis states (qubit 0 the most significant bit)."""
    return np.real(np.diag(rho)) if rho.ndim == 2 else np.abs(rho) ** 2


def _pulser_model(profile: DeviceProfile, source: str) -> pulser.NoiseModel:
    """The profile's noise as Pulser's model, with only the channel of ``source`` on."""
    model = noise_model_to_pulser(profile.noise)
    assert sources_of(model) == {source}
    return model


def _ours_in_batches(
    profile: DeviceProfile, schedule: Schedule, source: str, batches: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(mean populations, standard deviation of one trajectory's) from ``batches`` runs of ``size``
    trajectories of the default method (the spread of the batch means times √size)."""
    emulator = QutipEmulator(profile)
    means = np.array(
        [
            _populations(emulator.run(schedule, noise=source, seed=100 + b, realisations=size).state)
            for b in range(batches)
        ]
    )
    return means.mean(axis=0), means.std(axis=0, ddof=1) * math.sqrt(size)


def _pulser_occupations(
    profile: DeviceProfile, schedule: Schedule, source: str, runs: int, one_by_one: bool = False
) -> np.ndarray:
    """Pulser's mean populations over ``runs`` runs: one emulation of ``runs`` trajectories, or with
    ``one_by_one`` as many emulations of one trajectory (seeds 7, 8, …)."""
    model = _pulser_model(profile, source)
    if not one_by_one:
        state = run_pulser(schedule, profile, noise_model=model, trajectories=runs, seed=7).state
        return _populations(state)
    states = [
        run_pulser(schedule, profile, noise_model=model, trajectories=1, seed=7 + k).state
        for k in range(runs)
    ]
    return np.mean([_populations(state) for state in states], axis=0)


def _compare_stochastic(
    profile: DeviceProfile,
    schedule: Schedule,
    source: str,
    runs: int,
    batches: int = 10,
    size: int = 200,
    one_by_one: bool = False,
) -> None:
    """Ours (``batches`` × ``size`` trajectories) and Pulser's ``runs`` runs agree within 4 combined
    standard errors on every population (so on the correlations of the atoms too); some noiseless
    population is outside that tolerance."""
    ours, spread = _ours_in_batches(profile, schedule, source, batches, size)
    theirs = _pulser_occupations(profile, schedule, source, runs, one_by_one)
    error = spread * math.sqrt(1 / (batches * size) + 1 / runs)
    assert np.all(np.abs(ours - theirs) <= STANDARD_ERRORS * error + 1e-9), (ours, theirs, error)
    noiseless = _populations(QutipEmulator(profile).run(schedule).state)
    assert np.max(np.abs(noiseless - theirs) - STANDARD_ERRORS * error) > 0, (noiseless, theirs, error)


def _compare_lindblad(profile: DeviceProfile, schedule: Schedule, source: str, trajectories: int) -> None:
    """pulser-simulation (deterministic) against our QuTiP method within 1e-3 on every population and
    against our trajectories within 4 standard errors; the noiseless populations are far off."""
    theirs = run_pulser(schedule, profile, noise_model=_pulser_model(profile, source)).state
    reference = np.real(np.diag(theirs))
    exact = QutipEmulator(profile, method="qutip").run(schedule, noise=source).state
    np.testing.assert_allclose(np.real(np.diag(exact)), reference, atol=LINDBLAD_TOLERANCE)
    closed = QutipEmulator(profile).run(schedule).state
    assert np.max(np.abs(np.abs(closed) ** 2 - reference)) > 20 * LINDBLAD_TOLERANCE
    if trajectories:
        ours, spread = _ours_in_batches(profile, schedule, source, 8, trajectories // 8)
        error = spread / math.sqrt(trajectories)
        assert np.all(np.abs(ours - reference) <= STANDARD_ERRORS * error + 1e-9)


#: two interacting atoms (7 µm: U ≈ 7.4 rad/µs), Ω = 2π·1 MHz, δ = 1 rad/µs, 1 µs
PAIR = {"positions": [[0.0, 0.0], [7.0, 0.0]], "rabi": 2 * math.pi, "detuning": 1.0, "duration": 1.0}


def test_dephasing_agrees_with_pulser() -> None:
    """Pulser's dephasing_rate γ (√(2γ)|r⟩⟨r|) is our Markovian dephasing at 1/γ (√(γ/2) Z)."""
    profile = _profile(markovian_dephasing_time=2.0)
    _compare_lindblad(profile, _flat(profile, **PAIR), "dephasing", trajectories=0)


def test_relaxation_agrees_with_pulser() -> None:
    """Pulser's relaxation_rate (|g⟩⟨r|) is our decay |1⟩ → |0⟩ at 1/T1; the default method solves
    it with mesolve too (the same state as the QuTiP method)."""
    profile = _profile(relaxation_time=1.0)
    schedule = _flat(profile, **PAIR)
    _compare_lindblad(profile, schedule, "relaxation", trajectories=0)
    default = QutipEmulator(profile).run(schedule, noise="relaxation").state
    exact = QutipEmulator(profile, method="qutip").run(schedule, noise="relaxation").state
    np.testing.assert_allclose(default, exact, atol=1e-12)


def test_depolarizing_agrees_with_pulser() -> None:
    """Pulser's depolarizing_rate r (√(r/4) X, Y, Z) against our mesolve and our X/Y/Z kicks."""
    profile = _profile(depolarizing_time=1.0)
    _compare_lindblad(profile, _flat(profile, **PAIR), "depolarizing", trajectories=1600)


def test_laser_waist_agrees_with_pulser() -> None:
    """Pulser's finite waist (no amp_sigma: deterministic): Ω of the atom at x = 20 µm scaled by
    exp(−(20/30)²) ≈ 0.64 (the beam along y); two atoms far apart, area π on the axis."""
    profile = _profile(laser_waist=30.0)
    schedule = _flat(profile, [[0.0, 0.0], [20.0, 5.0]], math.pi, 0.0, 1.0)
    theirs = _occupations(
        run_pulser(schedule, profile, noise_model=_pulser_model(profile, "laser_waist")).state, 2
    )
    ours = _occupations(QutipEmulator(profile).run(schedule, noise="laser_waist").state, 2)
    np.testing.assert_allclose(ours, theirs, atol=LINDBLAD_TOLERANCE)
    assert theirs[1] == pytest.approx(math.sin(math.pi / 2 * math.exp(-((20 / 30) ** 2))) ** 2, abs=1e-3)
    noiseless = _occupations(QutipEmulator(profile).run(schedule).state, 2)
    assert np.max(np.abs(noiseless - theirs)) > 0.2


#: one atom, resonant, area 2π (noiseless: back in |0⟩), where random areas or detunings show
RESONANT = {"positions": [[0.0, 0.0]], "rabi": 4.0, "detuning": 0.0, "duration": 2 * math.pi / 4.0}
#: two atoms far apart, resonant, area π (noiseless: both in |1⟩): a random detuning δ lowers P(1)
#: to Ω²/(Ω² + δ²)·sin²(√(Ω² + δ²)t/2), on average further as σ grows (σ = 3 rad/µs: 0.67; 2σ: 0.41)
PI_PAIR = {"positions": [[0.0, 0.0], [30.0, 0.0]], "rabi": 4.0, "detuning": 0.0, "duration": math.pi / 4.0}


@pytest.mark.parametrize("runs", [40, pytest.param(400, marks=pytest.mark.slow)])
def test_amplitude_jitter_agrees_with_pulser(runs: int) -> None:
    """Pulser's amp_sigma: Ω scaled by max(0, N(1, σ)) per run."""
    profile = _profile(amplitude_jitter=0.25)
    _compare_stochastic(profile, _flat(profile, **RESONANT), "amplitude_jitter", runs)


@pytest.mark.parametrize("runs", [40, pytest.param(400, marks=pytest.mark.slow)])
def test_detuning_jitter_agrees_with_pulser(runs: int) -> None:
    """Pulser's detuning_sigma: one offset N(0, σ²) of the global channel per run, on every atom
    alike (two atoms far apart see the same offset: P(11) tells it from an offset per atom)."""
    profile = _profile(detuning_jitter=3.0)
    schedule = _flat(profile, **PI_PAIR)
    _compare_stochastic(profile, schedule, "detuning_jitter", runs)


@pytest.mark.parametrize("runs", [20, pytest.param(200, marks=pytest.mark.slow)])
def test_detuning_map_jitter_agrees_with_pulser(runs: int) -> None:
    """Pulser's dmm_sigma: the detuning map's waveform scaled by max(0, N(1, σ)) per run; the global
    detuning cancels the map's on the atom of weight 1, so the noiseless atom is resonant.
    pulser-simulation 1.9.1 gives every trajectory of one emulation the map scale drawn last (its
    trajectories share one dict of DMM draws), so Pulser's runs here are separate emulations."""
    profile = _profile(detuning_map_jitter=0.5)
    schedule = _flat(profile, [[0.0, 0.0]], 4.0, 8.0, 2 * math.pi / 4.0, weights=[1.0], local=-8.0)
    _compare_stochastic(profile, schedule, "detuning_map_jitter", runs, one_by_one=True)


@pytest.mark.parametrize("runs", [30, pytest.param(300, marks=pytest.mark.slow)])
def test_doppler_agrees_with_pulser(runs: int) -> None:
    """Pulser's Doppler noise at the temperature whose σ is √2/T2*: our ``detuning`` source (an
    offset per atom and run); two atoms far apart."""
    profile = _profile(dephasing_time=0.5)
    schedule = _flat(profile, **PI_PAIR)
    _compare_stochastic(profile, schedule, "detuning", runs)


def test_state_preparation_agrees_with_pulser() -> None:
    """Pulser's state_prep_error: an atom missing from a run is neither driven nor interacting; two
    blockaded atoms (a missing partner lifts the blockade), p = 0.3."""
    profile = _profile(state_prep_error=0.3)
    schedule = _flat(profile, [[0.0, 0.0], [6.0, 0.0]], 2 * math.pi, 0.0, 0.25)
    _compare_stochastic(profile, schedule, "state_prep", runs=300, batches=8, size=100)


def test_readout_errors_agree_with_pulser() -> None:
    """Pulser's p_false_pos, p_false_neg on sampled bitstrings ('1' = Rydberg, qubit 0 first) against
    our counts: the frequency of 1 on each atom within 4 combined binomial standard errors; without
    the flips it is far off."""
    profile = _profile()
    profile = dataclasses.replace(profile, noise=NoiseModel(0.15, 0.3))
    schedule = _flat(profile, [[0.0, 0.0], [30.0, 0.0]], math.pi * 0.3, 0.0, 1.0)
    shots = 20_000
    model = _pulser_model(profile, "readout")
    config = QutipConfig(
        observables=[BitStrings(evaluation_times=[1.0], num_shots=shots)],
        sampling_rate=1.0,
        noise_model=model,
    )
    saved = np.random.get_state()  # noqa: NPY002 - Pulser draws from the global generator
    np.random.seed(3)  # noqa: NPY002
    try:
        results = QutipBackendV2(to_pulser_sequence(schedule, profile), config=config).run()
    finally:
        np.random.set_state(saved)  # noqa: NPY002
    counts = results.get_result(BitStrings(evaluation_times=[1.0]).tag, 1.0)
    theirs = sum(c * np.array([int(b) for b in bits]) for bits, c in counts.items()) / shots
    ours_counts = QutipEmulator(profile).run(schedule, noise="readout", shots=shots, seed=3).counts
    assert ours_counts is not None
    ours = sum(c * np.array([int(b) for b in bits]) for bits, c in ours_counts.items()) / shots
    error = np.sqrt(2 * ours * (1 - ours) / shots)
    assert np.all(np.abs(ours - theirs) <= STANDARD_ERRORS * error)
    clean = QutipEmulator(profile).run(schedule).state
    assert np.all(np.abs(_occupations(clean, 2) - theirs) > 2 * STANDARD_ERRORS * error)


def test_every_source_has_a_test_here() -> None:
    """Every source of ours is one of Pulser's channels and is compared above."""
    assert set(NOISE_SOURCES) == {
        "dephasing", "relaxation", "depolarizing", "laser_waist", "amplitude_jitter", "detuning_jitter",
        "detuning_map_jitter", "detuning", "state_prep", "readout",
    }  # fmt: skip


def test_pauli_kicks_act_as_their_matrices() -> None:
    """A trajectory's X, Y and Z kicks (depolarizing, dephasing) between closed evolutions: the same
    state as exp(−iH(T − t3)) Z₀ exp(−iH(t3 − t2)) Y₁ exp(−iH(t2 − t1)) X₀ exp(−iH t1)|00⟩ with dense
    matrices (our basis: Y|0⟩ = i|1⟩), within 1e-7."""
    profile = _profile()
    schedule = _flat(profile, [[0.0, 0.0], [7.0, 0.0]], 5.0, 1.5, 1.0)
    hamiltonian = magnus.SplitHamiltonian.of(schedule, profile)
    draw = magnus.Trajectory(kicks=((0.7, 0),), flips=((0.2, 0, "X"), (0.45, 1, "Y")))
    psi0 = magnus.basis_state(schedule)
    ours = magnus.run_trajectories(hamiltonian, psi0, [draw], None).state[0]
    h = pauli_matrix(hamiltonian_at(schedule, profile, 0.5), 2).toarray()
    x, y, z, one = np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1, -1]), np.eye(2)
    psi = psi0.astype(complex)
    for start, end, kick in (
        (0.0, 0.2, np.kron(x, one)),
        (0.2, 0.45, np.kron(one, y)),
        (0.45, 0.7, np.kron(z, one)),
    ):
        psi = kick @ scipy.linalg.expm(-1j * h * (end - start)) @ psi
    psi = scipy.linalg.expm(-1j * h * 0.3) @ psi
    np.testing.assert_allclose(ours, psi, atol=1e-7)
    assert np.max(np.abs(ours - scipy.linalg.expm(-1j * h) @ psi0)) > 0.1
