"""The profile's noise sources one by one: T2* as quasi-static detuning noise (against the Gaussian
Ramsey decay, a Gauss–Hermite average of the Rabi formula and Pulser's Doppler noise), Markovian
dephasing as its own source, each source alone, and the one-line errors of bad names and values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pulser
import pytest
from pulser.backend import StateResult
from pulser.constants import KB, KEFF, MASS
from pulser_simulation import QutipBackendV2, QutipConfig

from qep_analog.devices.noise_sources import (
    ALL_SOURCES,
    NOISE_SOURCES,
    SOURCE_FIELDS,
    TWEEZER_SOURCES,
    NoiseRates,
    noise_sources,
    platform_sources,
    quasi_static_rms,
)
from qep_analog.devices.profile import DeviceProfile, NoiseModel, parse_profile, read_profile
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.emulation import magnus
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.errors import ConfigError, ProfileError
from qep_analog.model.pauli import pauli_sum
from qep_analog.sequences.pulser_export import to_pulser_sequence
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule
from qep_analog.storage import read_yaml

#: statistical tolerance: a mean within this many standard errors of its reference
STANDARD_ERRORS = 4.0


def _profile(**noise: float) -> DeviceProfile:
    base = read_profile("fresnel-like", relaxed=True)
    return dataclasses.replace(base, noise=NoiseModel(0.0, 0.0, **noise))


def _flat(profile: DeviceProfile, duration: float, rabi: float, n_atoms: int = 1) -> Schedule:
    """Atoms 30 µm apart driven at a constant Ω (rad/µs) and zero detuning for ``duration`` µs."""
    recipe = dataclasses.replace(load_recipe("rydberg-linear"), duration=duration, initial_detuning=-1e-9)
    positions = np.column_stack([30.0 * np.arange(n_atoms), np.zeros(n_atoms)])
    schedule = build_schedule(recipe, profile, RydbergControls(positions, rabi=rabi, detuning=0.0))
    controls = {
        name: dataclasses.replace(w, values=np.full(len(w.values), rabi if name == "rabi" else 0.0))
        for name, w in schedule.controls.items()
    }
    return dataclasses.replace(schedule, controls=controls)


def _occupations(states: np.ndarray, n: int) -> np.ndarray:
    """⟨n_q⟩ of each row of ``states`` (kets), qubit 0 the most significant bit."""
    bits = (np.arange(1 << n)[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1
    return np.asarray(np.abs(states) ** 2 @ bits)


@pytest.mark.parametrize("t_over_t2", [0.5, 1.5, 2.0])
def test_quasi_static_offsets_give_the_gaussian_ramsey_decay(t_over_t2: float) -> None:
    """One atom in |+⟩, no drive, a static offset δ ~ N(0, 2/T2*²) per trajectory: the mean ⟨X⟩ after
    t is exp(−(t/T2*)²) (the fake labs' Ramsey contrast) within 4 standard errors of 3000
    trajectories; Markovian dephasing at the same time would give exp(−t/T2*), far from it."""
    t2 = 2.0
    profile = _profile(dephasing_time=t2)
    schedule = _flat(profile, t_over_t2 * t2, rabi=0.0)
    hamiltonian = magnus.SplitHamiltonian.of(schedule, profile)
    rng = np.random.default_rng(11)
    draws = magnus.draw_trajectories(3000, 1, schedule.duration, 0.0, 0.0, rng, quasi_static_rms(t2))
    plus = np.array([1.0, 1.0]) / math.sqrt(2)
    states = magnus.run_trajectories(hamiltonian, plus, draws, None).state
    x = 2 * np.real(states[:, 0].conj() * states[:, 1])
    error = x.std() / math.sqrt(len(x))
    assert abs(x.mean() - math.exp(-(t_over_t2**2))) <= STANDARD_ERRORS * error
    assert abs(math.exp(-t_over_t2) - math.exp(-(t_over_t2**2))) > 2 * STANDARD_ERRORS * error


@pytest.mark.parametrize("method", ["magnus", "qutip"])
def test_rabi_under_detuning_noise_matches_its_noise_average(method: str) -> None:
    """One atom driven resonantly at Ω through the emulator with ``noise="detuning"``: P(1) against
    the Gauss–Hermite average of Ω²/Ω′² sin²(Ω′t/2), Ω′² = Ω² + δ², δ ~ N(0, 2/T2*²) (the model the
    calibration's Rabi fit uses), within 4 standard errors (the spread of P(1) over the draws from
    the same quadrature); the noiseless P(1) is more than 8 standard errors away."""
    t2, rabi, duration = 1.0, 6.0, 0.5
    profile = _profile(dephasing_time=t2)
    schedule = _flat(profile, duration, rabi)
    number = {"n0": pauli_sum([(0.5, "I"), (-0.5, "Z0")])}
    count = 2000 if method == "magnus" else 200
    emulator = QutipEmulator(profile, method=method)
    p1 = emulator.run(schedule, number, noise="detuning", seed=5, realisations=count).expectations["n0"]
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    delta = quasi_static_rms(t2) * nodes
    general = np.hypot(rabi, delta)
    weights = weights / weights.sum()
    values = rabi**2 / general**2 * np.sin(general * duration / 2) ** 2
    expected = float(weights @ values)
    error = math.sqrt((weights @ values**2 - expected**2) / count)
    assert abs(p1 - expected) <= STANDARD_ERRORS * error
    assert abs(math.sin(rabi * duration / 2) ** 2 - expected) > 2 * STANDARD_ERRORS * error


def _ramp(profile: DeviceProfile) -> Schedule:
    """Two atoms 7 µm apart, a 1.5 µs sin² ramp to Ω = 4, δ = 8 rad/µs."""
    recipe = dataclasses.replace(load_recipe("rydberg-smooth"), duration=1.5, segments=30)
    target = RydbergControls(np.array([[0.0, 0.0], [7.0, 0.0]]), rabi=4.0, detuning=8.0)
    return build_schedule(recipe, profile, target)


def _pulser_doppler_occupations(schedule: Schedule, profile: DeviceProfile, runs: int) -> np.ndarray:
    """⟨n_q⟩ from pulser-simulation with its Doppler noise at the temperature whose σ = k_eff·√(k_B T/m)
    is √2/T2*, the mean over ``runs`` runs (Pulser draws from NumPy's global generator: seeded here,
    restored after)."""
    sigma = quasi_static_rms(profile.noise.dephasing_time)
    temperature = 1e6 * MASS * (sigma / KEFF) ** 2 / KB  # µK
    noise_model = pulser.NoiseModel(temperature=temperature)
    assert noise_model.noise_types == ("doppler",)
    assert pulser.noise_model._doppler_sigma(temperature * 1e-6) == pytest.approx(sigma, rel=1e-12)
    config = QutipConfig(
        observables=[StateResult(evaluation_times=[1.0])],
        sampling_rate=1.0,
        noise_model=noise_model,
        n_trajectories=runs,
    )
    saved = np.random.get_state()  # noqa: NPY002 - Pulser draws from the global generator
    np.random.seed(5)  # noqa: NPY002
    try:
        final = QutipBackendV2(to_pulser_sequence(schedule, profile), config=config).run().final_state
    finally:
        np.random.set_state(saved)  # noqa: NPY002
    rho = final.to_qobj().full()[::-1, ::-1]  # Pulser orders |r⟩ first: every bit flipped
    n = schedule.n_qubits
    bits = (np.arange(1 << n)[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1
    return np.asarray(np.real(np.diag(rho)) @ bits)


def test_detuning_noise_agrees_with_pulsers_doppler_noise() -> None:
    """Two atoms on a 1.5 µs ramp with T2* = 0.4 µs: our ⟨n_q⟩ (1000 trajectories) and Pulser's with
    its Doppler noise at the same σ (80 runs) agree within 4 standard errors of the difference (the
    spread of one run estimated from ours); the noiseless ⟨n_q⟩ is more than 5 of them from Pulser's,
    Markovian dephasing at the rate 1/T2* (the old model of T2*) more than 5 of our own standard
    errors from ours."""
    t2, runs = 0.4, 80
    profile = _profile(dephasing_time=t2, markovian_dephasing_time=t2)
    schedule = _ramp(profile)
    hamiltonian = magnus.SplitHamiltonian.of(schedule, profile)
    psi0 = magnus.basis_state(schedule)
    rng = np.random.default_rng(3)
    draws = magnus.draw_trajectories(1000, 2, schedule.duration, 0.0, 0.0, rng, quasi_static_rms(t2))
    ours = _occupations(magnus.run_trajectories(hamiltonian, psi0, draws, None).state, 2)
    theirs = _pulser_doppler_occupations(schedule, profile, runs)
    error = ours.std(axis=0) * math.sqrt(1 / len(ours) + 1 / runs)
    assert np.all(np.abs(ours.mean(axis=0) - theirs) <= STANDARD_ERRORS * error)
    noiseless = _occupations(magnus.evolve(hamiltonian, psi0).state[None, :], 2)[0]
    assert np.all(np.abs(noiseless - theirs) > 5 * error)
    rho = QutipEmulator(profile, method="qutip").run(schedule, noise="dephasing").state
    markovian = np.real(np.diag(rho)) @ ((np.arange(4)[:, None] >> np.array([1, 0])) & 1)
    assert np.all(np.abs(markovian - ours.mean(axis=0)) > 5 * ours.std(axis=0) / math.sqrt(len(ours)))


def test_markovian_dephasing_is_its_own_source() -> None:
    """T2* and a Markovian time of the same value T on one resonantly driven atom: ``dephasing``
    alone gives QuTiP's Lindblad solution with rate 1/T and no draws, ``detuning`` alone the
    quasi-static average — two states far apart; a profile without a Markovian time has none."""
    t = 1.0
    profile = _profile(dephasing_time=t, markovian_dephasing_time=t)
    schedule = _flat(profile, 1.2, rabi=6.0)
    rates = NoiseRates.of(profile.noise, {"dephasing"})
    assert rates == NoiseRates(dephasing_rate=1 / t)
    markovian = QutipEmulator(profile, method="qutip").run(schedule, noise="dephasing").state
    trajectories = QutipEmulator(profile).run(schedule, noise="dephasing", seed=1, realisations=2000).state
    np.testing.assert_allclose(trajectories, markovian, atol=4 / math.sqrt(2000))
    quasi_static = (
        QutipEmulator(profile, method="qutip")
        .run(schedule, noise="detuning", seed=1, realisations=200)
        .state
    )
    closed = QutipEmulator(profile).run(schedule).state
    pure = np.outer(closed, closed.conj())
    assert np.max(np.abs(markovian - pure)) > 0.1
    assert np.max(np.abs(markovian - quasi_static)) > 0.1
    without = dataclasses.replace(profile, noise=NoiseModel(0.0, 0.0, dephasing_time=t))
    assert NoiseRates.of(without.noise, ALL_SOURCES).dephasing_rate == 0.0
    rho = QutipEmulator(without, method="qutip").run(schedule, noise="dephasing").state
    np.testing.assert_allclose(rho, pure, atol=1e-6)


FULL = {
    "dephasing_time": 0.8,
    "markovian_dephasing_time": 1.0,
    "amplitude_jitter": 0.1,
    "relaxation_time": 2.0,
    "depolarizing_time": 2.0,
    "laser_waist": 40.0,
    "detuning_jitter": 2.0,
    "detuning_map_jitter": 0.2,
    "state_prep_error": 0.3,
}
#: the profile field of each source
FIELD = {
    "detuning": "dephasing_time",
    "dephasing": "markovian_dephasing_time",
    "relaxation": "relaxation_time",
    "depolarizing": "depolarizing_time",
    "state_prep": "state_prep_error",
}


@pytest.mark.parametrize("source", sorted(NOISE_SOURCES))
def test_each_source_alone(source: str) -> None:
    """A source named alone on a profile with every source is the profile with only that source
    switched on by ``noise=True``: the same state and counts from the same seed; the rates of the
    other sources are zero. The beam's profile alone keeps the state pure (and changes it); the
    detuning map's jitter does nothing to a schedule without a map."""
    field = FIELD.get(source, source)
    full = dataclasses.replace(_profile(**FULL), noise=NoiseModel(0.02, 0.05, **FULL))
    only = dataclasses.replace(
        full,
        noise=NoiseModel(
            *((0.02, 0.05) if source == "readout" else (0.0, 0.0)),
            **({field: FULL[field]} if field in FULL else {}),
        ),
    )
    rates = NoiseRates.of(full.noise, {source})
    assert rates == NoiseRates.of(only.noise, ALL_SOURCES)
    schedule = _flat(full, 1.0, rabi=math.pi / 2, n_atoms=2)  # a π/2 pulse: superpositions
    a = QutipEmulator(full).run(schedule, noise=source, seed=2, shots=400, realisations=16)
    b = QutipEmulator(only).run(schedule, noise=True, seed=2, shots=400, realisations=16)
    np.testing.assert_allclose(a.state, b.state, atol=1e-12)
    assert a.counts == b.counts
    clean = QutipEmulator(full).run(schedule, seed=2, shots=400)
    pure = np.outer(clean.state, clean.state.conj())
    if source == "readout":
        assert np.real(np.trace(a.state @ a.state)) == pytest.approx(1.0, abs=1e-9)
        assert a.counts != clean.counts
    elif source == "laser_waist":
        assert np.real(np.trace(a.state @ a.state)) == pytest.approx(1.0, abs=1e-9)
        assert np.max(np.abs(a.state - pure)) > 0.1
    elif source == "detuning_map_jitter":
        np.testing.assert_allclose(a.state, pure, atol=1e-5)  # trajectory settings: looser steps
    else:
        assert np.real(np.trace(a.state @ a.state)) < 1 - 1e-3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, ALL_SOURCES),
        (False, frozenset()),
        ("all", ALL_SOURCES),
        ("detuning,readout", {"detuning", "readout"}),
        (["amplitude_jitter"], {"amplitude_jitter"}),
    ],
)
def test_noise_values_name_their_sources(value: object, expected: set[str]) -> None:
    assert noise_sources(value) == expected


@pytest.mark.parametrize("source", sorted(NOISE_SOURCES))
def test_each_source_reads_the_fields_it_names(source: str) -> None:
    """Each number field of ``SOURCE_FIELDS[source]`` given alone a value switches that source on
    and no other; the tweezer sources act on Rydberg arrays only."""
    assert set(SOURCE_FIELDS) == set(NOISE_SOURCES) and TWEEZER_SOURCES < ALL_SOURCES
    numbers = [name for name, _ in SOURCE_FIELDS[source] if not name.startswith("site_")]
    assert numbers
    for name in numbers:
        noise = dataclasses.replace(NoiseModel(0.0, 0.0), **{name: FULL.get(name, 0.05)})
        assert NoiseRates.of(noise, ALL_SOURCES).active == {source}, name
    rydberg, ions = (read_profile(name).platform_spec for name in ("fresnel-like", "yb171-chain"))
    assert platform_sources({source}, rydberg) == {source}
    assert platform_sources({source}, ions) == ({source} - TWEEZER_SOURCES)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (
            "doppler",
            "unknown source 'doppler' (known: detuning, dephasing, amplitude_jitter, readout, relaxation, "
            "depolarizing, laser_waist, detuning_jitter, detuning_map_jitter, state_prep, or all)",
        ),
        ("detuning,,readout", "unknown source ''"),
        (3, "noise = 3 is not true, false or source names"),
        (["readout", 2], "is not true, false or source names"),
    ],
)
def test_bad_noise_values_are_one_line_errors(value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        noise_sources(value, "backend qutip")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("backend qutip: noise = ") and fragment in message


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (-1.0, "-1.0 breaks the rule noise.markovian_dephasing_time_us > 0 and <= 8.64e+10"),
        ("long", "'long' is not a number"),
    ],
)
def test_bad_markovian_times_are_one_line_profile_errors(value: object, rule: str) -> None:
    document = read_yaml(read_profile("fresnel-like").source, ProfileError)
    document["noise"]["markovian_dephasing_time_us"] = value
    with pytest.raises(ProfileError) as caught:
        parse_profile(document, "p.yaml")
    assert str(caught.value) == f"p.yaml: noise.markovian_dephasing_time_us = {rule}"


def test_markovian_time_reads_in_any_time_unit_and_keeps_old_hashes() -> None:
    """``markovian_dephasing_time_ms`` in ms; a profile without it keeps the snapshot hash it had
    before the field existed (schedules built then do not warn of a changed profile)."""
    nominal = read_profile("yb171-chain")
    assert nominal.noise.markovian_dephasing_time == math.inf
    assert nominal.snapshot_hash == "f2c28c33f627c0fd"  # computed before the field was added
    document = read_yaml(nominal.source, ProfileError)
    document["noise"]["markovian_dephasing_time_ms"] = 20
    profile = parse_profile(document, nominal.source)
    assert profile.noise.markovian_dephasing_time == pytest.approx(20_000.0)
    assert profile.snapshot_hash != nominal.snapshot_hash


@pytest.mark.parametrize("method", ["magnus", "qutip"])
def test_amplitude_jitter_moves_the_ion_couplings_by_its_square(method: str) -> None:
    """The jitter σ is the carrier's: a shot with Ω scaled by a = 1 + σξ has couplings J ∝ Ω_i Ω_j
    scaled by a². One trajectory (seeded, its ξ the first normal draw of the seed) against the
    noiseless evolution with the couplings' waveform scaled by a² (and, so that the test can fail,
    not against a)."""
    from qep_analog.devices.ions import IonControls

    nominal = read_profile("yb171-chain")
    sigma, seed = 0.2, 4  # ξ = −0.65: a = 0.87
    profile = dataclasses.replace(nominal, noise=dataclasses.replace(nominal.noise, amplitude_jitter=sigma))
    controls = IonControls(np.full(3, 1.5), 30.0, 0.0, np.array([0.2, -0.15, 0.1]))
    schedule = build_schedule(load_recipe("ion-exponential-smooth"), nominal, controls)
    a = 1.0 + sigma * np.random.default_rng(seed).standard_normal()
    emulator = QutipEmulator(profile, method=method)
    rho = emulator.run(schedule, noise="amplitude_jitter", seed=seed, realisations=1).state

    def scaled(factor: float) -> np.ndarray:
        drive = schedule.platform_spec.drive_control
        wave = schedule.controls[drive]
        waves = {**schedule.controls, drive: dataclasses.replace(wave, values=wave.values * factor)}
        psi = QutipEmulator(nominal, method=method).run(dataclasses.replace(schedule, controls=waves)).state
        return np.outer(psi, psi.conj())

    assert abs(a - 1.0) > 0.05
    assert np.abs(rho - scaled(a**2)).max() < 1e-4  # the trajectories step at a looser tolerance
    assert np.abs(rho - scaled(a)).max() > 3e-3


@pytest.mark.parametrize("realisations", [0, -1, True])
def test_realisations_outside_their_range_are_one_line(realisations: object) -> None:
    """0 or −1 trajectories gave a zero state (or a misleading solver failure): now one line."""
    profile = read_profile("fresnel-like")
    schedule = _flat(profile, 0.2, 3.0)
    with pytest.raises(ConfigError, match=r"realisations = .* is not in \[1, 100000\]"):
        QutipEmulator(profile).run(schedule, noise="detuning", realisations=realisations)  # type: ignore[arg-type]


def test_a_lindblad_run_beyond_memory_is_refused_before_it_starts() -> None:
    """Relaxation goes to QuTiP's mesolve, whose 4^n Liouvillian the memory check counts: 12 atoms
    with relaxation and depolarizing noise are refused in one line (tens of GiB), 3 atoms run."""
    nominal = read_profile("fresnel-like", relaxed=True)
    noise = dataclasses.replace(nominal.noise, relaxation_time=50.0, depolarizing_time=50.0)
    profile = dataclasses.replace(nominal, noise=noise)
    big = _flat(profile, 0.2, 3.0, n_atoms=12)
    with pytest.raises(ConfigError, match=r"emulator: schedule .* of 12 qubits with noise .* GiB"):
        QutipEmulator(profile).run(big, noise=["relaxation", "depolarizing"], realisations=1)
    small = _flat(profile, 0.2, 3.0, n_atoms=3)
    result = QutipEmulator(profile).run(small, noise=["relaxation", "depolarizing"], realisations=1)
    assert result.state.shape == (8, 8)
