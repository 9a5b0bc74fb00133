"""The blockade subspace (``QutipEmulator(..., subspace="blockade")``): its dimension against brute
force, Fibonacci and hard-square counts; its evolution against our full-space emulator (exact with
a zero radius, noiseless and noisy; within the stated error at R_b/a = 1.5 on a chain and a 2D
array); the pair-population bound behind the radius; counts; bad inputs."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli

from qep_analog.cli import EXIT_BAD_INPUT
from qep_analog.devices.geometry import zz_couplings
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.devices.rydberg import IsingModel, translate
from qep_analog.emulation.blockade import (
    DEFAULT_TOLERANCE,
    BlockadeSubspace,
    blockade_neighbours,
    blockade_radius,
    count_configurations,
    independent_sets,
    schedule_blockade_radius,
)
from qep_analog.emulation.qutip_emulator import SUBSPACE_SOURCES, QutipEmulator, rotate_to_basis
from qep_analog.errors import ConfigError
from qep_analog.memory import MEMORY_LIMIT_VARIABLE
from qep_analog.model.pauli import pauli_sum
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule, save_schedules

#: R_b/a of the comparisons: nearest neighbours blockaded (V/Ω = 11.4), next ones not (V/Ω ≤ 1.4)
RATIO = 1.5
#: the stated error of ⟨n_i⟩ at order 0 per blockaded neighbour (the dropped second-order shift
#: relative to Ω, see the blockade module) and at order 3 (ε/100)
ORDER0_ERROR = math.sqrt(2 * DEFAULT_TOLERANCE) / 4
ORDER3_ERROR = DEFAULT_TOLERANCE / 100
#: a zero radius keeps every configuration: the subspace evolution is the full space's
EXACT = 1e-10


def array_schedule(
    rows: int, cols: int, ratio: float = RATIO, spacing: float = 5.0, initial: str | None = None
) -> tuple[Schedule, DeviceProfile]:
    """The 4 µs sin² ramp (rydberg-smooth) of a rows × cols array on fresnel-like, R_b/a = ``ratio``,
    to a uniform detuning of 2Ω."""
    profile = read_profile("fresnel-like")
    grid = np.array([(c, r) for r in range(rows) for c in range(cols)], dtype=float)
    positions = spacing * (grid - grid.mean(axis=0))
    c6 = profile.calibration.interaction_scale * profile.rydberg.c6
    rabi = c6 / (ratio * spacing) ** 6
    n = len(positions)
    couplings = zz_couplings(positions, c6)
    fields = (2.0 * rabi + profile.site_offsets(n)) / 2 - couplings.sum(axis=1)
    model = IsingModel(fields, rabi / (2 * profile.calibration.rabi_scale), couplings)
    controls = translate(model, profile, positions=positions)
    schedule = build_schedule(load_recipe("rydberg-smooth"), profile, controls)
    if initial is not None:
        schedule = dataclasses.replace(schedule, initial_state=initial)
    return schedule, profile


def c6_of(profile: DeviceProfile) -> float:
    return profile.rydberg.c6 * profile.calibration.interaction_scale


def occupations(n: int) -> dict[str, object]:
    return {f"n{q}": pauli_sum([(1.0, f"N{q}")]) for q in range(n)}


def _values(result: object, n: int) -> np.ndarray:
    return np.array([result.expectations[f"n{q}"] for q in range(n)])  # type: ignore[attr-defined]


# -- the configurations ----------------------------------------------------------------------------


def test_dimension_against_brute_force() -> None:
    """Random 2D registers of 10 atoms, random radii, orders 0–2: the enumerated configurations are
    exactly those of the 2^10 basis states with at most K excited pairs closer than the radius."""
    rng = np.random.default_rng(7)
    n = 10
    bits = (np.arange(1 << n)[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1
    for _ in range(4):
        positions = rng.uniform(0, 20, (n, 2))
        radius = rng.uniform(4, 12)
        distances = np.linalg.norm(positions[:, None] - positions[None, :], axis=-1)
        close = (distances < radius) & ~np.eye(n, dtype=bool)
        excited_pairs = np.einsum("ci,ij,cj->c", bits, close.astype(int), bits) // 2
        for order in range(3):
            expected = np.flatnonzero(excited_pairs <= order)
            found = independent_sets(blockade_neighbours(positions, radius), order)
            np.testing.assert_array_equal(found, expected)


def test_dimension_against_fibonacci_and_hard_squares() -> None:
    """A nearest-neighbour-blockaded chain of n atoms has F(n + 2) configurations; L × L squares have
    the hard-square numbers 2, 7, 63, 1234, 55447 (OEIS A006506)."""
    fibonacci = [0, 1]
    while len(fibonacci) < 26:
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    for n in range(1, 24):
        chain = np.column_stack([5.0 * np.arange(n), np.zeros(n)])
        assert count_configurations(blockade_neighbours(chain, 6.0), 10**9) == fibonacci[n + 2]
    for side, expected in zip(range(1, 6), (2, 7, 63, 1234, 55447), strict=True):
        square = 5.0 * np.array([(c, r) for r in range(side) for c in range(side)], dtype=float)
        assert count_configurations(blockade_neighbours(square, 6.0), 10**9) == expected


def test_radius_from_the_tolerance() -> None:
    """V(r_c) = max(δ_max, 0) + Ω_max/√(2ε); a schedule's r_c from its largest Ω and δ."""
    c6, rabi, detuning, tolerance = 865723.02, 4.0, 9.0, 1e-2
    radius = blockade_radius(c6, rabi, detuning, tolerance)
    assert c6 / radius**6 == pytest.approx(detuning + rabi / math.sqrt(2 * tolerance), rel=1e-12)
    assert blockade_radius(c6, rabi, -30.0, tolerance) == blockade_radius(c6, rabi, 0.0, tolerance)
    schedule, profile = array_schedule(1, 3)
    rabi_max = float(schedule.controls["rabi"].values.max()) * profile.calibration.rabi_scale
    detuning_max = float(schedule.controls["detuning"].values.max())
    assert schedule_blockade_radius(schedule, profile, tolerance) == pytest.approx(
        blockade_radius(c6_of(profile), rabi_max, detuning_max, tolerance)
    )


@pytest.mark.parametrize("ratio", [1.5, 1.8, 2.2])
def test_pair_population_within_its_bound(ratio: float) -> None:
    """Two atoms: the full-space final population of |11⟩ is within Ω²/(2(V − δ)²), the bound the
    radius is set from."""
    schedule, profile = array_schedule(1, 2, ratio=ratio)
    full = QutipEmulator(profile).run(schedule)
    rabi = float(schedule.controls["rabi"].values[-1]) * profile.calibration.rabi_scale
    detuning = float(schedule.controls["detuning"].values[-1])
    interaction = c6_of(profile) / 5.0**6
    bound = rabi**2 / (2 * (interaction - detuning) ** 2)
    assert 0 < abs(full.state[3]) ** 2 <= bound


# -- the evolution ---------------------------------------------------------------------------------


def test_zero_radius_is_the_full_space() -> None:
    """With nothing blockaded the subspace is the 2^n basis and its evolution, expectation values
    (diagonal and flipping) and embedded state are the full space's."""
    schedule, profile = array_schedule(2, 3)
    observables = {"X0 X1": pauli_sum([(1.0, "X0 X1")]), "Y2": pauli_sum([(1.0, "Y2")]), **occupations(6)}
    full = QutipEmulator(profile).run(schedule, observables)
    sub = QutipEmulator(profile, subspace="blockade", blockade_radius=0.0).run(schedule, observables)
    assert sub.subspace is not None and sub.subspace.dimension == 64
    assert np.abs(sub.full_state() - full.state).max() < EXACT
    for name, value in full.expectations.items():
        assert sub.expectations[name] == pytest.approx(value, abs=EXACT)


def test_noisy_zero_radius_is_the_full_space() -> None:
    """Trajectories (static offsets, amplitude jitter, dephasing kicks) stay in the subspace: at a
    zero radius the same seed gives the full space's density matrix (both at the trajectories'
    looser series tolerance)."""
    schedule, profile = array_schedule(1, 5)
    noise = dataclasses.replace(profile.noise, markovian_dephasing_time=3.0)
    profile = dataclasses.replace(profile, noise=noise)
    full = QutipEmulator(profile).run(schedule, noise=SUBSPACE_SOURCES, seed=3, realisations=6)
    sub = QutipEmulator(profile, subspace="blockade", blockade_radius=0.0).run(
        schedule, noise=SUBSPACE_SOURCES, seed=3, realisations=6
    )
    assert sub.state.shape == (32, 32)
    assert np.abs(sub.full_state() - full.state).max() < 1e-5


@pytest.mark.parametrize(("shape", "neighbours"), [((1, 8), 2), ((3, 3), 4)])
def test_subspace_against_the_full_space(shape: tuple[int, int], neighbours: int) -> None:
    """A chain of 8 and a 3 × 3 array at R_b/a = 1.5 (nearest neighbours blockaded): max |Δ⟨n_i⟩|
    against the full space within the stated error at order 0 (z·√(2ε)/4, z the most blockaded
    neighbours of an atom) and at order 3."""
    schedule, profile = array_schedule(*shape)
    n = schedule.n_qubits
    full = _values(QutipEmulator(profile).run(schedule, occupations(n)), n)
    errors = []
    for order in (0, 3):
        emulator = QutipEmulator(profile, subspace="blockade", blockade_order=order)
        errors.append(float(np.abs(_values(emulator.run(schedule, occupations(n)), n) - full).max()))
    assert 1e-3 < errors[0] <= neighbours * ORDER0_ERROR and errors[1] <= ORDER3_ERROR


def test_noisy_subspace_against_the_full_space() -> None:
    """With the profile's noise (offsets, jitter) and the same seed, the subspace's ⟨n_i⟩ are the
    full space's within the order-3 error."""
    schedule, profile = array_schedule(1, 6)
    noise = SUBSPACE_SOURCES
    full = QutipEmulator(profile).run(schedule, occupations(6), noise=noise, seed=5, realisations=4)
    sub = QutipEmulator(profile, subspace="blockade", blockade_order=3).run(
        schedule, occupations(6), noise=noise, seed=5, realisations=4
    )
    assert np.abs(_values(sub, 6) - _values(full, 6)).max() <= ORDER3_ERROR


def _hard_rectangles(rows: int, cols: int) -> int:
    """Configurations of a rows × cols grid with no two excited nearest neighbours, by a transfer
    matrix over rows (an independent count)."""
    allowed = [m for m in range(1 << cols) if m & (m >> 1) == 0]
    ways = dict.fromkeys(allowed, 1)
    for _ in range(rows - 1):
        ways = {m: sum(w for k, w in ways.items() if k & m == 0) for m in allowed}
    return sum(ways.values())


def test_beyond_the_full_space_limit() -> None:
    """A 4 × 5 array: refused by the full space, emulated in its blockade subspace (dimension from a
    transfer matrix), counts sampled."""
    schedule, profile = array_schedule(4, 5)
    with pytest.raises(ConfigError, match="20 qubits exceed the limit of 16"):
        QutipEmulator(profile).run(schedule)
    result = QutipEmulator(profile, subspace="blockade").run(schedule, occupations(20), shots=100, seed=1)
    assert result.state.shape == (_hard_rectangles(4, 5),) and result.counts is not None
    assert np.linalg.norm(result.state) == pytest.approx(1.0, abs=1e-8)  # the series cuts
    values = _values(result, 20).reshape(4, 5)
    assert np.allclose(values, values[::-1], atol=1e-9) and np.allclose(values, values[:, ::-1], atol=1e-9)


@pytest.mark.slow
def test_five_by_five_within_a_minute() -> None:
    """The 5 × 5 array (N = 25) in its 55447 configurations in ≤ 60 s, mirror-symmetric ⟨n_i⟩."""
    schedule, profile = array_schedule(5, 5)
    emulator = QutipEmulator(profile, subspace="blockade")
    emulator.run(array_schedule(1, 3)[0])  # compiled kernels
    start = time.perf_counter()
    result = emulator.run(schedule, occupations(25))
    assert time.perf_counter() - start <= 60.0
    values = _values(result, 25).reshape(5, 5)
    assert result.state.shape == (55447,)
    assert np.allclose(values, values.T, atol=1e-9) and np.allclose(values, values[::-1], atol=1e-9)


# -- readout ----------------------------------------------------------------------------------------


def test_counts_in_z_and_x() -> None:
    """Z counts come from the subspace's configurations at their probabilities; an X readout is read
    from the state embedded in the full space, at the full space's probabilities."""
    schedule, profile = array_schedule(1, 7)
    emulator = QutipEmulator(profile, subspace="blockade", blockade_order=3)
    shots = 20000
    result = emulator.run(schedule, shots=shots, seed=2)
    assert result.counts is not None and sum(result.counts.values()) == shots
    assert result.subspace is not None
    allowed = {format(int(c), "07b"): k for k, c in enumerate(result.subspace.configurations)}
    p = np.abs(result.state) ** 2
    for bits, count in result.counts.items():
        sigma = math.sqrt(p[allowed[bits]] * (1 - p[allowed[bits]]) / shots)
        assert abs(count / shots - p[allowed[bits]]) <= 5 * sigma + 1e-4
    x_schedule = dataclasses.replace(schedule, readout="X" * 7)
    x_result = emulator.run(x_schedule, shots=shots, seed=2)
    assert x_result.counts is not None and sum(x_result.counts.values()) == shots
    full = QutipEmulator(profile).run(schedule)
    p_full = np.abs(rotate_to_basis(full.state, "X" * 7)) ** 2
    p_sub = np.abs(rotate_to_basis(x_result.full_state(), "X" * 7)) ** 2
    assert np.abs(p_sub - p_full).max() <= ORDER3_ERROR
    # X readout of a state too large to embed: one line
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MEMORY_LIMIT_VARIABLE, "4096")
        with pytest.raises(ConfigError, match="embedded in the 2\\^7 space"):
            x_result.full_state()


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"blockade_radius": -1.0}, "blockade radius -1.0 µm is not a finite number ≥ 0"),
        ({"blockade_radius": math.nan}, "blockade radius nan µm"),
        ({"blockade_tolerance": 0.0}, "blockade tolerance 0.0 is not in \\(0, 1\\)"),
        ({"blockade_tolerance": 2.0}, "blockade tolerance 2.0 is not in \\(0, 1\\)"),
        ({"blockade_order": -1}, "blockade order -1 is not an integer in \\[0, 3\\]"),
        ({"blockade_order": 1.5}, "blockade order 1.5"),
        ({"method": "qutip"}, "evolves on the default magnus steps"),
        ({"tol": 1e-4}, "evolves on the default magnus steps"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    profile = read_profile("fresnel-like")
    with pytest.raises(ConfigError, match=message):
        QutipEmulator(profile, subspace="blockade", **options)  # type: ignore[arg-type]


def test_bad_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = read_profile("fresnel-like")
    with pytest.raises(ConfigError, match="subspace 'pxp' is not one of blockade"):
        QutipEmulator(profile, subspace="pxp")
    schedule, profile = array_schedule(1, 4, initial="1100")
    with pytest.raises(ConfigError, match=r"initial state '1100' .* closer than the blockade radius"):
        QutipEmulator(profile, subspace="blockade").run(schedule)
    schedule, profile = array_schedule(4, 4)
    monkeypatch.setenv(MEMORY_LIMIT_VARIABLE, "1MiB")
    with pytest.raises(ConfigError, match=r"blockade subspace of more than .* configurations of 16 atoms"):
        QutipEmulator(profile, subspace="blockade", blockade_order=3).run(schedule)
    with pytest.raises(ConfigError, match="63 atoms exceed the blockade subspace's limit of 62"):
        BlockadeSubspace.of(np.column_stack([5.0 * np.arange(63), np.zeros(63)]), 6.0, 100.0)


def test_ion_schedules_have_no_blockade() -> None:
    from qep_analog.devices.ions import IonControls

    profile = read_profile("yb171-chain")
    n = 3
    controls = IonControls(np.full(n, 1.0), 30.0, 0.0, np.zeros(n))
    schedule = build_schedule(load_recipe("ion-exponential-smooth"), profile, controls)
    with pytest.raises(ConfigError, match="is ion; only Rydberg arrays have a blockade"):
        QutipEmulator(profile, subspace="blockade").run(schedule)


# -- the command line ---------------------------------------------------------------------------------


def _schedule_file(tmp_path: Path, rows: int, cols: int) -> Path:
    schedule, _ = array_schedule(rows, cols)
    schedule = dataclasses.replace(schedule, metadata={**schedule.metadata, "profile": "fresnel-like"})
    path = tmp_path / f"array{rows}x{cols}.json"
    save_schedules(path, [schedule])
    return path


def test_emulate_in_the_blockade_subspace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``emulate --blockade-radius auto`` agrees with the full space within the order-3 error (with
    its diagnostics); a 4 × 5 array, beyond the full space, runs without them."""
    small = _schedule_file(tmp_path, 2, 3)
    status, stdout, _ = run_cli(capsys, ["emulate", str(small), "--json"])
    full = json.loads(stdout)["schedules"][0]
    argv = ["emulate", str(small), "--blockade-radius", "auto", "--blockade-order", "3", "--json"]
    status, stdout, _ = run_cli(capsys, argv)
    sub = json.loads(stdout)["schedules"][0]
    assert status == 0 and sub["blockade"]["order"] == 3 and sub["blockade"]["dimension"] < 64
    z_full, z_sub = (np.array(list(row["expectations"].values())) for row in (full, sub))
    assert np.abs(z_full - z_sub).max() <= 2 * ORDER3_ERROR  # Z = 1 − 2n
    assert sub["diagnostics"]["fidelity"] == pytest.approx(full["diagnostics"]["fidelity"], abs=1e-3)
    large = _schedule_file(tmp_path, 4, 5)
    status, stdout, stderr = run_cli(capsys, ["emulate", str(large), "--blockade-radius", "6", "--quiet"])
    dimension = _hard_rectangles(4, 5)
    assert status == 0 and f"{dimension} configurations" in stdout
    assert "no adiabaticity diagnostics" in stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--blockade-radius", "-1"], "is not a finite radius"),
        (["--blockade-radius", "near"], "neither 'auto' nor a radius"),
        (["--blockade-order", "1"], "give --blockade-radius"),
        (["--blockade-radius", "6", "--blockade-tolerance", "0.1"], "not of a given one"),
        (["--blockade-radius", "auto", "--blockade-tolerance", "3"], "blockade tolerance 3.0"),
        (["--blockade-radius", "auto", "--backend", "pulser"], "evolves the full space"),
    ],
)
def test_emulate_bad_blockade_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str
) -> None:
    path = _schedule_file(tmp_path, 1, 3)
    status, _, err = run_cli(capsys, ["emulate", str(path), *extra])
    assert status == EXIT_BAD_INPUT and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# -- the qutip backend ---------------------------------------------------------------------------------


def test_qutip_backend_in_the_blockade_subspace() -> None:
    """The qutip backend with ``blockade_radius_um: 6`` runs its jobs in the blockade subspace (the
    chain's atoms are 7.2 µm apart: nothing is removed, so its exact values are the full space's
    to round-off), counts in Z and X (X read from the embedded state); bad options in one line."""
    from qep_analog.backends.configure import backend_for_run
    from qep_analog.backends.jobs import phase_jobs
    from qep_analog.model.model_file import load_model

    model = load_model(Path(__file__).resolve().parents[2] / "examples" / "models" / "rydberg_chain.yaml")
    profile = read_profile("fresnel-like", relaxed=True)
    theta = model.vector("trainable", {"h": 4, "delta": 3, "s": 0.5, "J": 1.5}, 0.0)
    options = {"blockade_radius_um": 6.0, "blockade_order": 1}
    backends = [
        backend_for_run("qutip", model, profile, run_dir=".", seed=0, recipe="rydberg-smooth", options=o)
        for o in ({}, options)
    ]
    exact = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], 0.1, "one-sided", ["Z" * 6], None)[:1]
    assert backends[1].emulator.subspace == "blockade" and backends[1].emulator.blockade_order == 1
    full, sub = (b.run(exact).results[0] for b in backends)
    assert np.abs(sub.generators - full.generators).max() <= EXACT
    assert np.abs(sub.outputs - full.outputs).max() <= EXACT
    sampled = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], 0.1, "one-sided", ["Z" * 6, "X" * 6], 50)[:1]
    counts = backends[1].run(sampled).results[0].counts
    assert counts is not None and set(counts) == {"Z" * 6, "X" * 6}
    for value, fragment in ((-1.0, "blockade radius -1.0 µm"), ("near", "is not 'auto' or a radius")):
        with pytest.raises(ConfigError, match=fragment):
            backend_for_run(
                "qutip", model, profile, run_dir=".", seed=0, recipe="rydberg-smooth",
                options={"blockade_radius_um": value},
            )  # fmt: skip


def test_noisy_counts_with_readout_errors() -> None:
    """Readout errors flip bits out of the subspace: the counts of a noisy 4 × 4 subspace run (whose
    2^16 x 2^16 density matrix would not fit) are drawn over all 2^16 outcomes; their mean occupation
    is the flipped one, ε + (1 − ε − ε′)⟨n_i⟩, within 5σ."""
    schedule, profile = array_schedule(4, 4)
    emulator = QutipEmulator(profile, subspace="blockade")
    shots = 4000
    result = emulator.run(
        schedule, occupations(16), noise=["readout", "detuning"], shots=shots, seed=4, realisations=2
    )
    assert result.counts is not None and sum(result.counts.values()) == shots
    assert result.subspace is not None
    allowed = {format(int(c), "016b") for c in result.subspace.configurations}
    assert set(result.counts) - allowed  # flipped outside the subspace
    bits = np.array([[int(b) for b in k] for k in result.counts], dtype=float)
    weights = np.array(list(result.counts.values()), dtype=float)
    measured = weights @ bits / shots
    fp, fn = profile.noise.readout_false_positive, profile.noise.readout_false_negative
    expected = fp + (1 - fp - fn) * _values(result, 16)
    sigma = np.sqrt(expected * (1 - expected) / shots)
    assert np.all(np.abs(measured - expected) <= 5 * sigma)


@pytest.mark.parametrize("source", ["state_prep", "depolarizing", "relaxation", "laser_waist"])
def test_noise_that_leaves_the_subspace_is_refused(source: str) -> None:
    """Missing atoms, X/Y kicks, relaxation's non-unitary evolution and the beam's profile leave the
    subspace or change its operators: one line naming the source and what the subspace takes."""
    schedule, profile = array_schedule(1, 4)
    values = {"relaxation_time": 50.0, "depolarizing_time": 50.0, "laser_waist": 100.0}
    noise = dataclasses.replace(profile.noise, **values)
    emulator = QutipEmulator(dataclasses.replace(profile, noise=noise), subspace="blockade")
    with pytest.raises(ConfigError, match=rf"cannot emulate the noise sources {source} .* it takes"):
        emulator.run(schedule, noise=[source, "detuning"], seed=1, realisations=2)


def test_a_radius_of_true_is_refused() -> None:
    """A YAML ``blockade_radius_um: true`` is not a 1 µm cutoff."""
    from qep_analog.emulation.blockade import check_radius

    with pytest.raises(ConfigError, match="blockade radius True µm is not a finite number"):
        check_radius(True)


def test_the_backend_reads_z_from_the_subspace_without_embedding() -> None:
    """A noisy 13-atom subspace state (a density matrix of its configurations) is read in Z from its
    configurations' probabilities: no 2^13 x 2^13 embedding (4 GiB, over the 2 GiB limit), and the
    same probabilities as the embedded state's diagonal on a case where that fits."""
    from qep_analog.backends.emulated import _read_probabilities

    schedule, profile = array_schedule(1, 13)
    emulator = QutipEmulator(profile, subspace="blockade")
    result = emulator.run(schedule, noise=["detuning", "readout"], seed=2, realisations=2)
    assert result.state.ndim == 2 and result.subspace is not None
    p = _read_probabilities(result, "Z" * 13)
    assert p.shape == (1 << 13,) and p.sum() == pytest.approx(1.0, abs=1e-9)
    small, small_profile = array_schedule(1, 6)
    small_result = QutipEmulator(small_profile, subspace="blockade").run(
        small, noise=["detuning"], seed=2, realisations=2
    )
    embedded = np.real(np.diag(small_result.full_state()))
    assert np.abs(_read_probabilities(small_result, "Z" * 6) - embedded).max() < 1e-12


def test_readout_errors_alone_keep_the_state_pure() -> None:
    """Readout errors act on the counts only: a subspace run with them alone keeps the evolved ket
    (no density matrix of the configurations) and gives the noiseless run's values."""
    schedule, profile = array_schedule(3, 3)
    emulator = QutipEmulator(profile, subspace="blockade")
    noisy = emulator.run(schedule, occupations(9), noise=["readout"], shots=500, seed=1)
    clean = emulator.run(schedule, occupations(9))
    assert noisy.state.ndim == 1
    assert np.max(np.abs(noisy.state - clean.state)) < 1e-12
    assert noisy.counts is not None and sum(noisy.counts.values()) == 500
