"""The memory budget (issue 16, item 9): the limit, its estimates against what the code allocates, and
every user-given size that drives an allocation refused in one line before it is allocated.

Estimates are checked at small sizes against what the code really allocates: array ``nbytes`` where
the allocation is one array, else the peak that ``tracemalloc`` traces (NumPy reports its buffers to
it). Tolerance: an estimate is never below what is allocated (it is a bound) and at most 2.5 times
it (it does not refuse what fits).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qep_analog.calibration.registry import routine_named
from qep_analog.devices.geometry import zz_couplings
from qep_analog.devices.ions import chain_modes
from qep_analog.devices.mapping import map_model, mapping_bytes
from qep_analog.devices.profile import read_profile
from qep_analog.emulation import magnus
from qep_analog.emulation.qutip_emulator import (
    QutipEmulator,
    emulation_bytes,
    pauli_matrix,
    read_distribution,
    rotate_to_basis,
    sample_counts,
)
from qep_analog.errors import ConfigError, MeasurementError
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.sampling import MAX_SHOTS, sample_bitstrings
from qep_analog.memory import (
    DEFAULT_MEMORY_LIMIT,
    gibibytes,
    memory_limit,
    parse_size,
    require_memory,
)
from qep_analog.model.operators import OperatorTable, table_bytes
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import ModelStrings, QEPModel
from qep_analog.model.standard import phase_sensor
from qep_analog.qep.trainer import Trainer, TrainingConfig
from qep_analog.sequences.pulser_export import to_pulser_sequence
from qep_analog.sequences.schedule import load_schedules, stretch_schedule
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.solvers.mps import MPSEquilibrium, MPSOptions
from qep_analog.solvers.thermal import check_gibbs_memory
from qep_analog.tasks.exploration import correlation_grid
from qep_analog.tasks.explore_config import load_explore_config
from qep_analog.tasks.ion_sensor import IonSensorTask
from qep_analog.tasks.phase_sensor import PhaseSensorTask
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask
from tests.cli_run import run_cli

ROOT = Path(__file__).resolve().parent.parent
#: the tolerance of an estimate against what is allocated: allocated <= estimate <= this x allocated
TOLERANCE = 2.5


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QEP_ANALOG_MEMORY_LIMIT", raising=False)


def traced_peak(action: Callable[[], Any]) -> int:
    """The peak of the bytes traced while ``action`` runs."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_bound(estimate: float, allocated: float) -> None:
    assert allocated <= estimate <= TOLERANCE * allocated, (estimate, allocated)


def refusal(action: Callable[[], Any], *words: str) -> str:
    """The one-line refusal ``action`` raises, checked for ``words`` and the limit."""
    with pytest.raises(ConfigError) as caught:
        action()
    message = str(caught.value)
    assert "\n" not in message
    assert "memory limit of 2 GiB" in message and "QEP_ANALOG_MEMORY_LIMIT" in message, message
    for word in words:
        assert word in message, message
    return message


# -- the limit -------------------------------------------------------------------------------------


def test_the_limit_is_2_gib_unless_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory_limit() == DEFAULT_MEMORY_LIMIT == 2 * 2**30
    for text, size in (("8GiB", 8 * 2**30), ("512MiB", 2**29), ("3G", 3 * 2**30), ("1000", 1000)):
        monkeypatch.setenv("QEP_ANALOG_MEMORY_LIMIT", text)
        assert memory_limit() == size
    assert parse_size("1.5 gb") == 3 * 2**29


@pytest.mark.parametrize("text", ["0", "-1", "lots", "1e9", "GiB", "2 GiB of RAM"])
def test_a_bad_limit_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("QEP_ANALOG_MEMORY_LIMIT", text)
    with pytest.raises(ConfigError, match=r"^QEP_ANALOG_MEMORY_LIMIT = .* is not a positive size"):
        memory_limit()


def test_require_memory_names_what_the_estimate_and_the_limit() -> None:
    require_memory("something small", 2 * 2**30)  # at the limit: allowed
    message = refusal(lambda: require_memory("device map: a model of 10000 qubits", 3.2e9))
    assert message == (
        "device map: a model of 10000 qubits would need about 2.98 GiB, more than the memory limit "
        "of 2 GiB (set QEP_ANALOG_MEMORY_LIMIT=4GiB to allow it)"
    )
    assert "10^3002 GiB" in refusal(lambda: require_memory("2^10000 amplitudes", 16 * 2**10000))
    assert gibibytes(2**40) == "1.02e+03 GiB"


def test_a_raised_limit_allows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QEP_ANALOG_MEMORY_LIMIT", "4GiB")
    require_memory("three gigabytes", 3 * 2**30)
    monkeypatch.setenv("QEP_ANALOG_MEMORY_LIMIT", "1MiB")
    with pytest.raises(ConfigError, match=r"more than the memory limit of 0\.000977 GiB"):
        require_memory("two megabytes", 2 * 2**20)


# -- estimates against what is allocated --------------------------------------------------------------


def test_operator_table_estimate_is_its_arrays() -> None:
    model = phase_sensor(3)  # Y terms: a complex table, so the estimate is exact
    strings = ModelStrings(model).strings
    table = OperatorTable(model.n_qubits, strings)
    assert table._table is not None
    assert table_bytes(model.n_qubits, len(strings)) == table._basis.nbytes + table._table.nbytes


def test_device_map_estimate_bounds_its_peak() -> None:
    n = 200
    chain = pauli_sum((1.0 + 0.01 * (i % 5), f"Z{i} Z{i + 1}") for i in range(n - 1))
    model = QEPModel(
        n, {"a": pauli_sum((1.0, f"X{q}") for q in range(n))}, {"m": pauli_sum([(1.0, "Z0")])}, chain
    )
    profile = read_profile("fresnel-like", relaxed=True)
    assert_bound(mapping_bytes(model, profile), traced_peak(lambda: map_model(model, profile)))


def test_emulator_estimate_bounds_its_peak(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedules = _schedules(capsys, tmp_path, monkeypatch, atoms=8)
    profile = read_profile("fresnel-like", relaxed=True)
    emulator = QutipEmulator(profile)
    for schedule in (schedules[0], schedules[1]):  # read in Z, and in X (rotated density matrix)
        emulator.run(schedule, noise=True, shots=10, realisations=2)  # compiled kernels first
        peak = traced_peak(lambda s=schedule: emulator.run(s, noise=True, shots=1000, seed=1))
        assert_bound(emulation_bytes(schedule, profile, density=True, trajectories=16), peak)


@pytest.mark.slow  # 11 s; the other estimates stay in the default suite
def test_mps_estimate_bounds_its_peak() -> None:
    eq = MPSEquilibrium(phase_sensor(10), MPSOptions(chi_max=16, max_sweeps=4))
    rng = np.random.default_rng(0)
    x = 4 * rng.dirichlet(np.ones(3), size=1)
    theta = rng.uniform(-0.5, 0.5, size=(1, len(eq.model.trainable)))
    peak = traced_peak(lambda: eq.prepare(x, theta, with_gap=True, check_degeneracy=False))
    assert_bound(eq.memory_bytes(1), peak)


def test_calibration_scan_estimate_bounds_its_peak(tmp_path: Path) -> None:
    from qep_analog.calibration.data import write_data
    from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
    from qep_analog.calibration.routine import fit_sites

    profile = read_profile("fresnel-like")
    lab = FakeRydbergLab.for_profile(profile, n_sites=4, seed=0)
    routine = routine_named("detuning_spectroscopy", "rydberg")
    parameters = routine.parameters({"points": 2000, "rescan": False})

    def run() -> None:
        data = routine.acquire(parameters, lab, profile)
        write_data(tmp_path / "data.json", data)
        fit_sites(routine, data)

    assert routine.data_shape(parameters, 4) == (2000, 4)
    assert_bound(routine.memory_bytes(parameters, 4), traced_peak(run))


def test_single_reads_estimate_bounds_their_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    from qep_analog.measurement.readout import ReadoutErrors

    psi = np.ones(64) / 8
    readout = ReadoutErrors.uniform(6, 0.01, 0.02)
    peak = traced_peak(lambda: sample_bitstrings(psi, "Z" * 6, 200_000, np.random.default_rng(0), readout))
    monkeypatch.setenv("QEP_ANALOG_MEMORY_LIMIT", str(peak))  # the estimate is above the peak
    with pytest.raises(ConfigError, match="200000 single reads of 6 qubits"):
        sample_bitstrings(psi, "Z" * 6, 200_000, np.random.default_rng(0), readout)
    monkeypatch.setenv("QEP_ANALOG_MEMORY_LIMIT", str(int(TOLERANCE * peak)))
    sample_bitstrings(psi, "Z" * 6, 200_000, np.random.default_rng(0), readout)


# -- counts drawn at once -------------------------------------------------------------------------


def test_read_distribution_is_flipping_shot_by_shot() -> None:
    n, (eps, eps_prime) = 3, (0.1, 0.2)
    p = np.random.default_rng(2).dirichlet(np.ones(8))
    reference = np.zeros(8)
    for true in range(8):
        for read in range(8):
            chance = 1.0
            for k in range(n):
                t, r = (true >> (n - 1 - k)) & 1, (read >> (n - 1 - k)) & 1
                chance *= (eps if r else 1 - eps) if t == 0 else (1 - eps_prime if r else eps_prime)
            reference[read] += p[true] * chance
    np.testing.assert_allclose(read_distribution(p, n, (eps, eps_prime)), reference, rtol=0, atol=1e-15)


def test_counts_of_1e13_shots_follow_the_read_distribution() -> None:
    p = np.random.default_rng(3).dirichlet(np.ones(8))
    shots = 10**13
    counts = sample_counts(p, 3, shots, np.random.default_rng(4), (0.05, 0.1))
    assert sum(counts.values()) == shots and list(counts) == sorted(counts)
    expected = read_distribution(p, 3, (0.05, 0.1)) * shots
    observed = np.array([counts.get(format(k, "03b"), 0) for k in range(8)])
    assert np.all(np.abs(observed - expected) < 6 * np.sqrt(expected) + 1)
    with pytest.raises(ConfigError, match="shots = 9007199254740993 is not in"):
        sample_counts(p, 3, MAX_SHOTS + 1, np.random.default_rng(4))


def test_rotation_needs_no_dense_unitary() -> None:
    gates = {"Z": np.eye(2), "X": np.array([[1, 1], [1, -1]]) / np.sqrt(2)}
    gates["Y"] = gates["X"] @ np.diag([1, -1j])
    rng = np.random.default_rng(5)
    for basis in ("XZY", "YXZZ"):
        unitary = np.array([[1.0]])
        for letter in basis:
            unitary = np.kron(unitary, gates[letter])
        dim = 1 << len(basis)
        psi = rng.normal(size=dim) + 1j * rng.normal(size=dim)
        a = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
        rho = a @ a.conj().T
        np.testing.assert_allclose(rotate_to_basis(psi, basis), unitary @ psi, atol=1e-14)
        np.testing.assert_allclose(
            rotate_to_basis(rho, basis), unitary @ rho @ unitary.conj().T, atol=1e-12
        )


# -- every size refused before it is allocated --------------------------------------------------------


def test_exploration_file_is_refused_at_load(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "explore_phase.yaml").read_text()
    path = tmp_path / "huge.yaml"
    path.write_text(text.replace("points: [73, 41]", "points: [30000, 30000]"))
    refusal(lambda: load_explore_config(path), "huge.yaml", "30000 x 30000 points")
    path.write_text(text)
    load_explore_config(path)
    refusal(lambda: load_explore_config(path, {"iterations": 10**7}), "10000000 iterations")


def test_correlation_grid_is_refused_before_solving() -> None:
    axis = np.linspace(-1.0, 1.0, 10**5)
    refusal(lambda: correlation_grid(axis, axis), "phase diagram: 100000 x 100000 points")


def test_state_vectors_beyond_the_limit_are_refused() -> None:
    model = QEPModel(29, {"a": pauli_sum([(1.0, "X0")])}, {"m": pauli_sum([(1.0, "Z28")])})
    refusal(lambda: model.compiled, "compiled model: operators of 29 qubits")
    eq = Equilibrium(phase_sensor(8))
    refusal(lambda: eq.solver.check_memory(10**5), "ground states: a batch of 100000 states of 10 qubits")
    big = np.zeros((10**5, len(eq.compiled.strings)))
    refusal(lambda: eq.solver.solve(big), "a batch of 100000")
    refusal(lambda: check_gibbs_memory(eq.compiled, 1000), "a batch of 1000 Gibbs states of 10 qubits")


def test_coefficient_matrices_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    trainable = {
        f"a{k}": pauli_sum([(1.0, f"Z{k % 40}"), (1.0, f"X{k % 40} X{(k + 1) % 40}")]) for k in range(400)
    }
    model = QEPModel(40, trainable, {"m": pauli_sum([(1.0, "Z0")])})
    monkeypatch.setenv("QEP_ANALOG_MEMORY_LIMIT", "100KiB")
    with pytest.raises(
        ConfigError, match="model: coefficient matrices of 402 operators x 80 Pauli strings"
    ):
        ModelStrings(model)


def test_training_refuses_a_test_set_beyond_the_limit(tmp_path: Path) -> None:
    task = PhaseSensorTask(n_chain=8, test_size=200_000)
    run = tmp_path / "run"
    refusal(lambda: Trainer(task, TrainingConfig(steps=1), run), "training: a test set of 200000 points")
    task = PhaseSensorTask(n_chain=8, test_size=10)
    refusal(lambda: Trainer(task, TrainingConfig(steps=1, batch_size=100_000), run), "batch_size 100000")
    steps = TrainingConfig(steps=10**8)
    refusal(lambda: Trainer(task, steps, run), "training: the records of 100000000 steps")
    assert not run.exists()
    with pytest.raises(ConfigError, match="shots = 100000000000000000 breaks the rule"):
        TrainingConfig(shots=10**17)


def test_mps_bond_dimension_beyond_the_limit_is_refused() -> None:
    refusal(
        lambda: MPSEquilibrium(phase_sensor(64), MPSOptions(chi_max=100_000)),
        "a batch of 1 MPS of 66 qubits at chi_max 100000",
    )


def test_tasks_refuse_sizes_beyond_the_limit() -> None:
    refusal(
        lambda: PhaseSensorTask(test_size=10**10),
        "phase sensor: a chain of 8 and a test set of 10000000000",
    )
    fresnel = read_profile("fresnel-like", relaxed=True)
    refusal(lambda: RydbergSensorTask(profile=fresnel, spacing_um=6.0, n_chain=10_000), "a chain of 10000")
    ions = read_profile("yb171-chain", relaxed=True)
    refusal(lambda: IonSensorTask(profile=ions, n_chain=20), "exact diagonalisation of a chain of 20 ions")


def test_registers_and_chains_beyond_the_limit_are_refused() -> None:
    positions = np.zeros((30_000, 2))
    refusal(lambda: zz_couplings(positions, 1.0), "couplings of 30000 atoms")
    ions = read_profile("yb171-chain", relaxed=True)
    refusal(lambda: chain_modes(ions, 30_000), "normal modes of 30000 ions")
    operator = pauli_sum((1.0, f"X{q}") for q in range(30))
    refusal(
        lambda: pauli_matrix(operator, 30), "sparse matrix of a Pauli sum on 30 qubits with 31 flip masks"
    )


def test_runcard_routines_state_their_data(tmp_path: Path) -> None:
    readout = routine_named("readout", "rydberg")
    assert readout.data_shape(readout.parameters({"repeats": 4}), 6) == (8, 6)
    local = routine_named("local_field_map", "rydberg")
    assert local.data_shape(local.parameters({"points": 81}), 4) == (81 * 5, 4)
    check = routine_named("qep_gradient_check", "rydberg")
    assert check.data_shape(check.parameters(), 5) == (6, 32)
    refusal(
        lambda: require_memory("qep_gradient_check", check.memory_bytes(check.parameters(), 24)),
        "qep_gradient_check",
    )


def test_counts_beyond_2_to_the_53_are_refused() -> None:
    with pytest.raises(
        MeasurementError, match=r"9007199254740993 shots, more than the limit of 9007199254740992"
    ):
        SettingCounts.from_bitstrings("ZZ", {"00": MAX_SHOTS, "11": 1})
    with pytest.raises(MeasurementError, match="setting of 70 qubits, more than the limit of 62"):
        SettingCounts.from_bitstrings("Z" * 70, {"0" * 70: 1})


def test_emulation_beyond_the_limit_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedules = _schedules(capsys, tmp_path, monkeypatch, atoms=14)
    profile = read_profile("fresnel-like", relaxed=True)
    refusal(
        lambda: QutipEmulator(profile).run(schedules[1], noise=True),
        "emulator: schedule 'free' of 14 qubits with noise (16 trajectories, a density matrix)",
    )
    long = stretch_schedule(schedules[0], 1e7, profile)  # 10 s: one Pulser sample per ns
    refusal(lambda: to_pulser_sequence(long, profile), "Pulser sequence of 'free': 10000000000 ns")
    hamiltonian = magnus.SplitHamiltonian.of(schedules[0], profile)
    monkeypatch.setenv("QEP_ANALOG_MEMORY_LIMIT", "1KiB")
    with pytest.raises(ConfigError, match=r"emulator: .* time steps would need"):
        magnus.step_grid(hamiltonian)
    with pytest.raises(ConfigError, match=r"emulator: about 1.4e\+08 dephasing kicks"):
        magnus.draw_trajectories(100, 14, 1e4, 20.0, 0.0, np.random.default_rng(0))


def test_calibrate_sites_beyond_the_device_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["calibrate", "rydberg-basic", "--device", "fresnel-like", "--backend", "fake-lab"]
    status, _, err = run_cli(capsys, [*argv, "--out", str(tmp_path / "run"), "--sites", "101"])
    assert (
        status == 2
        and err.strip()
        == "qep-analog: error: calibrate: --sites 101 is more than the 100 atoms of fresnel-like"
    )
    assert not (tmp_path / "run").exists()


# -- helpers ------------------------------------------------------------------------------------------


def _schedules(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, atoms: int
) -> list[Any]:
    """The schedules of a chain of ``atoms`` on the relaxed Fresnel-like array (read in Z, then X)."""

    def terms(pattern: str, count: int) -> str:
        return "[" + ", ".join(f'[1.0, "{pattern.format(q=q, r=q + 1)}"]' for q in range(count)) + "]"

    model = tmp_path / "chain.yaml"
    model.write_text(
        f"schema: qep-model/1\nn_qubits: {atoms}\ntrainable:\n  h: {terms('X{q}', atoms)}\n"
        f"  delta: {terms('Z{q}', atoms)}\n  J: {terms('Z{q} Z{r}', atoms - 1)}\n"
        'outputs:\n  m: [[0.5, "Z0"], [0.5, "Z1"]]\n'
    )
    monkeypatch.chdir(tmp_path)
    argv = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--relaxed"]
    argv += ["--model", str(model), "--theta", "h=4", "delta=3", "J=1.5", "--beta", "0.1"]
    status, _, err = run_cli(capsys, [*argv, "--out", str(tmp_path / "chain.json")])
    assert status == 0, err
    schedules = load_schedules(tmp_path / "chain.json")
    assert set(schedules[0].readout) == {"Z"} and set(schedules[1].readout) == {"X"}
    return schedules
