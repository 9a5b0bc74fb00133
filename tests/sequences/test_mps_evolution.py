"""MPS time evolution (TDVP) of schedules against our exact emulator: Rydberg chains and arrays, ion
chains, the van der Waals cut, truncation, sampling in rotated bases, the backend and CLI routes."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli

from qep_analog.backends.configure import backend_for_run
from qep_analog.backends.emulated import QutipBackend
from qep_analog.backends.jobs import PhaseJob
from qep_analog.backends.registry import backend_class
from qep_analog.cli import EXIT_BAD_INPUT
from qep_analog.devices.ions import IonControls
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.emulation import mps_evolution
from qep_analog.emulation.mps_evolution import (
    MPSEmulator,
    MPSEvolutionOptions,
    MPSEvolutionResult,
    StringTable,
    snake_order,
    tail_cut,
)
from qep_analog.emulation.qutip_emulator import QutipEmulator, rotate_to_basis
from qep_analog.errors import ConfigError
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms, save_schedules

#: issue 19: ⟨n_i⟩ of the MPS-evolved state within this of the exact emulator's
N_TOL = 1e-3
#: CF4 steps of 0.1 µs (Ω/2·dt ≤ 0.5 holds too): 1e-4 on these 1 µs ramps, a fast default suite
FAST = MPSEvolutionOptions(min_steps=10)


def rydberg_schedule(positions: np.ndarray, duration: float = 1.0) -> tuple[Schedule, DeviceProfile]:
    profile = read_profile("fresnel-like", relaxed=True)
    recipe = dataclasses.replace(load_recipe("rydberg-quintic"), duration=duration, segments=40)
    target = RydbergControls(positions, rabi=2 * np.pi, detuning=np.pi)
    return build_schedule(recipe, profile, target), profile


def chain(n: int, spacing: float = 6.0) -> np.ndarray:
    return np.array([[spacing * i, 0.0] for i in range(n)])


def numbers(n: int) -> dict[str, PauliSum]:
    return {f"n{q}": pauli_sum([(0.5, "I"), (-0.5, f"Z{q}")]) for q in range(n)}


def compared(
    schedule: Schedule, profile: DeviceProfile, options: MPSEvolutionOptions
) -> tuple[float, MPSEvolutionResult]:
    """max_i |Δ⟨n_i⟩| between the MPS and the exact emulator, and the MPS result."""
    observables = numbers(schedule.n_qubits)
    exact = QutipEmulator(profile).run(schedule, observables).expectations
    mps = MPSEmulator(profile, options).run(schedule, observables)
    return max(abs(exact[k] - mps.expectations[k]) for k in observables), mps


def max_difference(schedule: Schedule, profile: DeviceProfile, options: MPSEvolutionOptions) -> float:
    return compared(schedule, profile, options)[0]


def test_rydberg_chain_matches_the_exact_emulator() -> None:
    schedule, profile = rydberg_schedule(chain(5))
    difference, result = compared(schedule, profile, FAST)
    assert difference < N_TOL
    assert result.chi > 2 and result.truncation_error < 1e-8 and result.steps == 10


def test_rydberg_array_in_snake_order_matches_the_exact_emulator() -> None:
    grid = np.array([[6.0 * (k % 2), 6.0 * (k // 2)] for k in range(4)])
    schedule, profile = rydberg_schedule(grid)
    emulator = MPSEmulator(profile, FAST)
    assert emulator.order_of(schedule) == (0, 1, 3, 2)
    assert max_difference(schedule, profile, FAST) < N_TOL


@pytest.mark.slow  # about a minute on a loaded machine
def test_twelve_atom_chain_matches_the_exact_emulator() -> None:
    schedule, profile = rydberg_schedule(chain(12), duration=4.0)
    assert max_difference(schedule, profile, MPSEvolutionOptions()) < N_TOL


def test_snake_order_of_a_square_array() -> None:
    grid = np.array([[x, y] for y in (0.0, 5.0, 10.0) for x in (0.0, 5.0, 10.0)])
    assert snake_order(grid) == (0, 1, 2, 5, 4, 3, 6, 7, 8)
    assert snake_order(np.array([[3.0], [0.0], [1.5]])) == (1, 2, 0)


def test_ion_chain_with_all_couplings_matches_the_exact_emulator() -> None:
    profile = read_profile("yb171-chain", relaxed=True)
    recipe = dataclasses.replace(
        load_recipe("ion-exponential-smooth"), duration=100.0, time_constant=20.0, segments=50
    )
    n = 4
    schedule = build_schedule(recipe, profile, IonControls(np.full(n, 1.5), 30.0, 0.002, np.zeros(n)))
    observables = {f"Z{q}": pauli_sum([(1.0, f"Z{q}")]) for q in range(n)}
    observables["X0 X3"] = pauli_sum([(1.0, "X0 X3")])
    exact = QutipEmulator(profile).run(schedule, observables).expectations
    result = MPSEmulator(profile, FAST).run(schedule, observables)
    assert result.cutoff is None and result.dropped_total == 0.0  # no coupling is cut
    assert abs(exact["X0 X3"]) > 1e-3  # the long-range coupling acts
    for name in observables:
        assert result.expectations[name] == pytest.approx(exact[name], abs=N_TOL)


def test_tail_cut_is_stated_and_bounded() -> None:
    schedule, profile = rydberg_schedule(chain(8))
    static, _ = hamiltonian_terms(schedule, profile)
    scale = profile.calibration.interaction_scale * profile.rydberg.c6
    distance = 6.0 * np.abs(np.subtract.outer(np.arange(8), np.arange(8)))
    u = np.where(distance > 0, scale / np.where(distance > 0, distance, 1.0) ** 6, 0.0)
    for options in (FAST, dataclasses.replace(FAST, cutoff=12.5), dataclasses.replace(FAST, cutoff=6.5)):
        cut = tail_cut(schedule, static, options)
        assert cut.cutoff is not None
        dropped = np.where(distance > cut.cutoff, u, 0.0)
        assert cut.total == pytest.approx(dropped.sum() / 2, rel=1e-9)
        assert cut.per_atom == pytest.approx(dropped.sum(axis=1).max(), rel=1e-9)
        # the operator dropped is U_ij n_i n_j of those pairs, its ZZ part and its fields alike
        expected = pauli_sum(
            (float(u[i, j]), f"N{i} N{j}") for i in range(8) for j in range(i + 1, 8) if dropped[i, j]
        )
        assert set(cut.dropped) == set(expected)
        assert [cut.dropped[s] for s in expected] == pytest.approx(list(expected.values()))
    default = tail_cut(schedule, static, FAST)
    assert default.per_atom <= FAST.tail_tolerance
    shorter = np.where(distance > default.cutoff - 6.0, u, 0.0).sum(axis=1).max()
    assert shorter > FAST.tail_tolerance  # the shortest cut within the tolerance
    assert tail_cut(schedule, static, dataclasses.replace(FAST, cutoff=6.5)).per_atom > 0.5


def test_small_bond_dimension_reports_its_truncation() -> None:
    schedule, profile = rydberg_schedule(chain(5, spacing=5.0))
    difference, small = compared(schedule, profile, dataclasses.replace(FAST, chi_max=1))
    assert small.chi == 1 and small.truncation_error > 1e-6
    assert difference > N_TOL  # the truncation shows in the observables


def test_counts_in_rotated_bases_follow_the_exact_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule, profile = rydberg_schedule(chain(4))
    schedule = dataclasses.replace(schedule, readout="XZYZ")
    shots = 20_000
    monkeypatch.setattr(mps_evolution, "SAMPLE_CHUNK", 7_000)  # three chunks, counts summed
    result = MPSEmulator(profile, FAST).run(schedule, shots=shots, seed=3)
    assert result.counts is not None and sum(result.counts.values()) == shots
    state = QutipEmulator(profile).run(schedule).state
    p = np.abs(rotate_to_basis(state, "XZYZ")) ** 2
    bits = np.array([[int(b) for b in format(k, "04b")] for k in range(16)])
    sampled = np.zeros(4)
    for key, count in result.counts.items():
        sampled += count * np.array([int(b) for b in key])
    expected = p @ bits
    sigma = np.sqrt(expected * (1 - expected) / shots)
    assert np.all(np.abs(sampled / shots - expected) < 5 * sigma + 1e-9)
    assert 0.05 < expected[0] < 0.95  # the X read is not trivially fixed


def test_bad_options_are_one_line_errors() -> None:
    schedule, profile = rydberg_schedule(chain(3))
    bad = [
        (lambda: MPSEvolutionOptions(chi_max=0), "chi_max"),
        (lambda: MPSEvolutionOptions(step_phase=-1.0), "step_phase"),
        (lambda: MPSEvolutionOptions.from_mapping({"chi": 3}), "chi"),
        (lambda: MPSEmulator(profile, MPSEvolutionOptions(order=(0, 0, 1))).run(schedule), "permutation"),
        (lambda: MPSEmulator(profile).run(schedule, noise=True), "closed systems"),
        (lambda: MPSEmulator(profile).run(schedule, shots=-1), "shots"),
    ]
    for make, word in bad:
        with pytest.raises(ConfigError, match=word) as info:
            make()
        assert "\n" not in str(info.value)


def three_atom_model() -> QEPModel:
    n = 3
    return QEPModel(
        n,
        {
            "h": pauli_sum((1.0, f"X{i}") for i in range(n)),
            "d": pauli_sum((1.0, f"Z{i}") for i in range(n)),
        },
        {"m": pauli_sum([(0.5, "Z0"), (0.5, "Z1")])},
        pauli_sum((1.5, f"Z{i} Z{i + 1}") for i in range(n - 1)),
    )


def test_qutip_backend_method_mps_matches_magnus() -> None:
    profile = read_profile("fresnel-like", relaxed=True)
    recipe = dataclasses.replace(load_recipe("rydberg-quintic"), duration=1.0, segments=40)
    model = three_atom_model()
    job = PhaseJob(0, "free", (), (3.0, 2.0), (0.0,), ("ZZZ",), None)
    counted = dataclasses.replace(job, shots=200)
    mps = QutipBackend(model, profile, recipe, method="mps", chi_max=16).run([job, counted])
    exact = QutipBackend(model, profile, recipe).run([job])
    assert mps.metadata["chi_max"] == 16
    np.testing.assert_allclose(mps.results[0].generators, exact.results[0].generators, atol=4 * N_TOL)
    assert mps.results[1].counts["ZZZ"].shots == 200
    configured = backend_for_run(
        "qutip", model, profile, run_dir=".", seed=0, recipe="rydberg-quintic",
        options={"method": "mps", "chi_max": 8},
    )  # fmt: skip
    assert configured.emulator.options.chi_max == 8
    with pytest.raises(ConfigError, match="backend exact: takes no option 'chi_max'"):
        backend_for_run("exact", model, profile, run_dir=".", seed=0, options={"chi_max": 8})
    with pytest.raises(ConfigError, match="chi_max = 8 applies to method mps only"):
        QutipBackend(model, profile, recipe, chi_max=8)
    with pytest.raises(ConfigError, match="method mps evolves closed systems"):
        QutipBackend(model, profile, recipe, method="mps", noise=True)


def test_emulate_command_with_method_mps(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    schedule, _ = rydberg_schedule(chain(3), duration=0.5)
    path = tmp_path / "chain.json"
    save_schedules(path, [dataclasses.replace(schedule, metadata={"profile": "fresnel-like"})])
    argv = ["emulate", str(path), "--nominal", "--method", "mps"]
    status, stdout, _ = run_cli(capsys, [*argv, "--chi-max", "2", "--json"])
    assert status == 0, stdout
    row = json.loads(stdout)["schedules"][0]
    assert row["diagnostics"]["chi"] == 2 and row["diagnostics"]["truncation_error"] > 0
    assert row["diagnostics"]["cutoff_um"] is not None
    for extra, word in (
        (["--chi-max", "0"], "--chi-max: 0 is not in"),
        (["--noise"], "closed systems"),
        (["--backend", "pulser"], "a method of the qutip backend"),
    ):
        status, _, err = run_cli(capsys, [*argv, *extra])
        assert status == EXIT_BAD_INPUT and err.count("\n") == 1 and word in err


def test_emu_mps_backend_without_its_package_is_one_line() -> None:
    if importlib.util.find_spec("emu_mps") is not None:
        assert backend_class("emu-mps").name == "emu-mps"
        return
    with pytest.raises(ConfigError, match=r"needs the package 'emu_mps'.*pip install 'qep-analog\[emu\]'"):
        backend_class("emu-mps")


@pytest.mark.slow  # needs the extra 'emu' (torch); about 20 s
def test_emu_mps_agrees_with_ours_on_the_same_schedule() -> None:
    pytest.importorskip("emu_mps")
    from qep_analog.emulation.emu_mps_runner import run_emu_mps

    schedule, profile = rydberg_schedule(chain(4))
    observables = {f"Z{q}": pauli_sum([(1.0, f"Z{q}")]) for q in range(4)}
    observables["Z1 Z2"] = pauli_sum([(1.0, "Z1 Z2")])
    ours = MPSEmulator(profile, FAST).run(schedule, observables)
    theirs = run_emu_mps(schedule, profile, observables, chi_max=16, shots=100)
    for name in observables:  # Pulser samples the waveforms per ns: 1e-3 as against pulser-simulation
        assert theirs.expectations[name] == pytest.approx(ours.expectations[name], abs=2e-3)
    assert theirs.counts is not None and sum(theirs.counts.values()) == 100
    with pytest.raises(ConfigError, match="only Z strings"):
        run_emu_mps(schedule, profile, {"x": pauli_sum([(1.0, "X0")])})


@pytest.mark.slow
def test_memory_estimate_bounds_the_evolution() -> None:
    """The TDVP estimate is at least what one evolution allocates (tracemalloc, after a warm-up run
    has imported and cached everything) and within 4× of it, every bond at chi_max."""
    schedule, profile = rydberg_schedule(chain(12, spacing=5.0), duration=1.0)
    emulator = MPSEmulator(profile, dataclasses.replace(FAST, chi_max=32, svd_min=1e-12))
    emulator.run(schedule)
    tracemalloc.start()
    result = emulator.run(schedule)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    position = np.empty(12, dtype=int)
    position[list(result.order)] = np.arange(12)
    table = StringTable(*hamiltonian_terms(schedule, profile), position)
    assert result.chi == 32  # every bond reached chi_max, as the estimate assumes
    assert peak <= table.memory_bytes(12, 32) <= 4 * peak


def test_memory_beyond_the_limit_is_refused_before_any_step() -> None:
    schedule, profile = rydberg_schedule(chain(60, spacing=5.0))
    with pytest.raises(ConfigError, match="MPS emulator: 60 qubits at chi_max 4096 would need") as info:
        MPSEmulator(profile, MPSEvolutionOptions(chi_max=4096)).run(schedule)
    assert "\n" not in str(info.value)
