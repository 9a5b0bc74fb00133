"""Rydberg schedules as Braket AHS programs: the IR validates with Braket's own schema, carries the
schedule's register and waveforms, and describes our Hamiltonian (checked against a matrix built from
the IR alone with Braket's documented convention); the Aquila-like profile exports AHS from the bundle
backend and from ``sequence build``."""

from __future__ import annotations

import json
from functools import reduce
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from braket.ir.ahs import Program
from cli_run import run_cli
from conftest import ROOT, THETA, smooth

from qep_analog.backends.bundle import BundlePending
from qep_analog.backends.jobs import phase_jobs
from qep_analog.backends.registry import make_backend
from qep_analog.cli import EXIT_BAD_INPUT
from qep_analog.devices.profile import DeviceProfile, list_profiles, read_profile
from qep_analog.devices.rydberg import RydbergControls, realize
from qep_analog.errors import ConfigError
from qep_analog.model.pauli import PauliSum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.braket_export import export_ahs_json, read_ahs_json, to_ahs_program
from qep_analog.sequences.export import export_schedule, exporter_of
from qep_analog.sequences.phases import qep_phase_schedules
from qep_analog.sequences.pulser_export import to_pulser_sequence
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule

#: Aquila's C6 for Rb 70S (Braket's device properties): 2π·862690 MHz·µm⁶ = 5.42e-24 rad·m⁶/s
C6_SI = 5.42e-24
POSITIONS = np.array([[0.0, 0.0], [6.5, 0.0], [2.0, 5.7]])  # µm, a scalene triangle
WEIGHTS = np.array([0.2, 1.0, 0.55])  # a non-uniform positive map


@pytest.fixture
def aquila() -> DeviceProfile:
    profile = read_profile("aquila-like")
    cal = profile.calibration
    assert (cal.rabi_scale, cal.interaction_scale, cal.detuning_offset) == (1.0, 1.0, 0.0)
    return profile


def _three_atoms(
    profile: DeviceProfile, phase: float = 0.0, readout: str = "ZZZ", local: float = 20.0
) -> tuple[Schedule, RydbergControls]:
    target = RydbergControls(POSITIONS, 6.0, 4.0, WEIGHTS, local, phase)
    schedule = build_schedule(
        smooth(3.0, segments=75, initial_detuning=-30.0), profile, target, readout=readout
    )
    return schedule, target


# ------------------------------------------------------------------ the Hamiltonian the IR describes


def _interpolate(series: dict, t: float, constant: bool = False) -> float:
    times = np.array(series["times"], dtype=float)
    values = np.array(series["values"], dtype=float)
    if constant:  # Braket plays the phase piecewise constant
        return float(values[np.searchsorted(times, t, side="right") - 1])
    return float(np.interp(t, times, values))


def _kron(factors: list[np.ndarray]) -> np.ndarray:
    return reduce(np.kron, factors)


def _on_site(op: np.ndarray, k: int, n: int) -> np.ndarray:
    return _kron([op if q == k else np.eye(2) for q in range(n)])


def braket_hamiltonian(program: dict, t: float) -> np.ndarray:
    """H(t) in rad/s from the IR alone, in Braket's documented convention (|g⟩ = index 0):
    Σ_k Ω/2 (e^{iφ} |g⟩⟨r| + e^{−iφ} |r⟩⟨g|) − Δ_g Σ n_k − Δ_l Σ h_k n_k + Σ_{k<l} C6/d⁶ n_k n_l."""
    sites = np.array(program["setup"]["ahs_register"]["sites"], dtype=float)
    n = len(sites)
    lower = np.array([[0, 1], [0, 0]], dtype=complex)  # S− = |g⟩⟨r|
    rydberg = np.diag([0.0, 1.0]).astype(complex)  # n = |r⟩⟨r|
    drive = program["hamiltonian"]["drivingFields"][0]
    omega = _interpolate(drive["amplitude"]["time_series"], t)
    phi = _interpolate(drive["phase"]["time_series"], t, constant=True)
    delta = _interpolate(drive["detuning"]["time_series"], t)
    h = np.zeros((2**n, 2**n), dtype=complex)
    for k in range(n):
        s_minus = _on_site(lower, k, n)
        h += omega / 2 * (np.exp(1j * phi) * s_minus + np.exp(-1j * phi) * s_minus.conj().T)
        h -= delta * _on_site(rydberg, k, n)
    for field in program["hamiltonian"]["localDetuning"]:
        magnitude = _interpolate(field["magnitude"]["time_series"], t)
        for k, h_k in enumerate(field["magnitude"]["pattern"]):
            h -= magnitude * float(h_k) * _on_site(rydberg, k, n)
    for k in range(n):
        for m in range(k + 1, n):
            d = np.linalg.norm(sites[k] - sites[m])
            h += C6_SI / d**6 * _on_site(rydberg, k, n) @ _on_site(rydberg, m, n)
    return h


def pauli_matrix(operator: PauliSum, n: int) -> np.ndarray:
    """Our Pauli sum as a matrix, qubit 0 the leftmost factor (independent of the package's kernels)."""
    paulis = {
        "X": np.array([[0, 1], [1, 0]], dtype=complex),
        "Y": np.array([[0, -1j], [1j, 0]]),
        "Z": np.diag([1.0, -1.0]).astype(complex),
    }
    out = np.zeros((2**n, 2**n), dtype=complex)
    for string, c in operator.items():
        letters = dict(string.factors)
        out += c * _kron([paulis[letters[q]] if q in letters else np.eye(2) for q in range(n)])
    return out


def _traceless(h: np.ndarray) -> np.ndarray:
    return h - np.trace(h) / len(h) * np.eye(len(h))


# ----------------------------------------------------------------------------------------- tests


def test_program_validates_and_carries_the_schedule(aquila: DeviceProfile, tmp_path: Path) -> None:
    schedule, _ = _three_atoms(aquila)
    document = export_ahs_json(schedule, aquila, tmp_path / "free.ahs.json")
    text = (tmp_path / "free.ahs.json").read_text(encoding="utf-8")
    parse = getattr(Program, "model_validate", None) or Program.parse_obj
    program = parse(json.loads(text))
    assert program.braketSchemaHeader.name == "braket.ir.ahs.program"
    assert program.braketSchemaHeader.version == "1"
    assert read_ahs_json(tmp_path / "free.ahs.json") == document == json.loads(text)
    assert set(document["hamiltonian"]) == {"drivingFields", "localDetuning"}

    register = document["setup"]["ahs_register"]
    np.testing.assert_allclose(register["sites"], POSITIONS * 1e-6, rtol=1e-15, atol=0)
    assert register["filling"] == [1, 1, 1]

    drive = document["hamiltonian"]["drivingFields"][0]
    (local,) = document["hamiltonian"]["localDetuning"]
    assert drive["amplitude"]["pattern"] == drive["detuning"]["pattern"] == "uniform"
    np.testing.assert_allclose(local["magnitude"]["pattern"], WEIGHTS)
    times = np.array(drive["amplitude"]["time_series"]["times"])
    assert times[0] == 0 and np.all(np.diff(times) >= 50e-9 * (1 - 1e-12))  # Aquila's minimum step
    np.testing.assert_allclose(times * 1e9, np.round(times * 1e9), atol=1e-6)  # on the 1 ns clock
    assert times[-1] <= aquila.rydberg.max_duration * 1e-6
    assert local["magnitude"]["time_series"]["times"] == list(times)
    assert drive["detuning"]["time_series"]["times"] == list(times)
    # up to the end of the schedule: its waveforms at the sample times, in rad/s
    during = times <= schedule.duration * 1e-6 * (1 + 1e-12)
    t_us = times[during] * 1e6
    for series, name in (
        (drive["amplitude"], "rabi"),
        (drive["detuning"], "detuning"),
        (local["magnitude"], "local_amplitude"),
    ):
        values = np.array(series["time_series"]["values"])
        np.testing.assert_allclose(
            values[during], schedule.controls[name](t_us) * 1e6, rtol=1e-12, atol=1e-6
        )
    # then the drive is switched off: amplitude and local detuning start and end at 0
    amplitude = np.array(drive["amplitude"]["time_series"]["values"])
    magnitude = np.array(local["magnitude"]["time_series"]["values"])
    assert amplitude[0] == amplitude[-1] == magnitude[0] == magnitude[-1] == 0.0
    slopes = np.abs(np.diff(amplitude) / np.diff(times))
    assert slopes.max() <= aquila.rydberg.max_rabi_slew * 1e12 * (1 + 1e-9)
    assert drive["phase"]["time_series"]["values"] == [0.0, 0.0]


def test_the_program_describes_our_hamiltonian(aquila: DeviceProfile) -> None:
    schedule, target = _three_atoms(aquila)
    program = to_ahs_program(schedule, aquila)
    ours = pauli_matrix(realize(target, aquila).to_pauli_sum(), 3)  # rad/µs
    theirs = braket_hamiltonian(program, schedule.duration * 1e-6) / 1e6  # rad/s → rad/µs
    scale = np.abs(ours).max()
    # C6: 5.42e-24 rad·m⁶/s against the profile's 5420159 rad/µs·µm⁶, 3e-5 apart
    np.testing.assert_allclose(_traceless(theirs), _traceless(ours), atol=1e-4 * scale, rtol=0)
    # the local map matters (a uniform map or a swapped site order would differ by far more)
    swapped = program | {"setup": {"ahs_register": {"sites": POSITIONS[::-1].tolist(), "filling": [1] * 3}}}
    assert (
        np.abs(
            _traceless(braket_hamiltonian(swapped, schedule.duration * 1e-6) / 1e6) - _traceless(ours)
        ).max()
        > 1.0
    )


def test_a_constant_phase_is_a_gauge_of_the_z_readout(aquila: DeviceProfile) -> None:
    """φ = π (a negative transverse field) exports as φ = 0: H_IR = U H_ours U† with U = Π Z_k, which
    leaves |000⟩ and every Z outcome alone."""
    schedule, target = _three_atoms(aquila, phase=np.pi)
    program = to_ahs_program(schedule, aquila)
    assert program["hamiltonian"]["drivingFields"][0]["phase"]["time_series"]["values"] == [0.0, 0.0]
    ours = pauli_matrix(realize(target, aquila).to_pauli_sum(), 3)
    theirs = braket_hamiltonian(program, schedule.duration * 1e-6) / 1e6
    flip = np.diag([(-1.0) ** bin(i).count("1") for i in range(8)])
    np.testing.assert_allclose(
        _traceless(theirs), _traceless(flip @ ours @ flip), atol=1e-4 * np.abs(ours).max(), rtol=0
    )
    start = np.zeros(8)
    start[0] = 1.0
    p_theirs = np.abs(scipy.linalg.expm(-1j * 0.3 * theirs) @ start) ** 2
    p_ours = np.abs(scipy.linalg.expm(-1j * 0.3 * ours) @ start) ** 2
    np.testing.assert_allclose(p_theirs, p_ours, atol=1e-3)


def test_refusals_are_one_line(aquila: DeviceProfile, chain_model: QEPModel) -> None:
    schedule, _ = _three_atoms(aquila, readout="XXX")
    with pytest.raises(ConfigError, match=r"readout basis XXX cannot be expressed in Braket AHS") as caught:
        to_ahs_program(schedule, aquila)
    assert "\n" not in str(caught.value)
    too_long = qep_phase_schedules(chain_model, aquila, smooth(4.0), [], THETA, [1.0], 0.1, "Z" * 6)[0]
    with pytest.raises(
        ConfigError, match=r"takes 100 ns more, beyond the device's 4 µs: build it at most 3\.9 µs"
    ):
        to_ahs_program(too_long, aquila)
    fresnel = read_profile("fresnel-like")  # a negative map: Pulser's, not Braket's
    negative = qep_phase_schedules(chain_model, fresnel, smooth(4.0), [], THETA, [1.0], 0.1, "Z" * 6)[0]
    with pytest.raises(ConfigError, match=r"local detuning -[\d.]+ rad/µs is negative"):
        to_ahs_program(negative, fresnel)
    # the Pulser exporter names the way out instead of Pulser's "No DMM called dmm_0"
    fits = qep_phase_schedules(chain_model, aquila, smooth(3.8, 76), [], THETA, [1.0], 0.1, "Z" * 6)[0]
    with pytest.raises(ConfigError, match=r"export it as Braket AHS"):
        to_pulser_sequence(fits, aquila)


def test_the_profile_picks_the_format(tmp_path: Path) -> None:
    formats = {name: exporter_of(read_profile(name)) for name in list_profiles()}
    assert formats["aquila-like"] == "braket-ahs" and formats["fresnel-like"] == "pulser"
    assert {formats[name] for name in list_profiles() if read_profile(name).platform == "ion"} == {"ion"}
    with pytest.raises(ConfigError, match=r"export 'ion': rydberg schedules export as pulser, braket-ahs"):
        exporter_of(read_profile("aquila-like"), "ion")
    fresnel = read_profile("fresnel-like")
    global_only = _three_atoms(fresnel, local=0.0)[0]
    assert "local_amplitude" not in global_only.controls
    path = export_schedule(global_only, fresnel, tmp_path / "x", "braket-ahs")  # asked for: allowed
    assert path.name == "x.ahs.json" and read_ahs_json(path)["hamiltonian"]["localDetuning"] == []


def _bundle_setup(aquila: DeviceProfile, chain_model: QEPModel, folder: Path, bases: list[str]):  # type: ignore[no-untyped-def]
    recipe = smooth(3.8, segments=76)
    backend = make_backend("bundle", chain_model, aquila, recipe, directory=folder)
    jobs = phase_jobs(np.zeros((1, 0)), THETA, [[1.0]], 0.1, "symmetric", bases, 200)
    return backend, jobs


def test_the_aquila_bundle_writes_ahs_programs(
    aquila: DeviceProfile, chain_model: QEPModel, tmp_path: Path
) -> None:
    folder = tmp_path / "bundle"
    backend, jobs = _bundle_setup(aquila, chain_model, folder, ["Z" * 6])
    with pytest.raises(BundlePending, match=r"3 sequences written"):
        backend.run(jobs)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "braket-ahs"
    files = [manifest["files"][job.key]["Z" * 6] for job in jobs]
    assert files == [f"sequences/0-{phase}-ZZZZZZ.ahs.json" for phase in ("plus", "minus", "free")]
    for name in files:
        program = read_ahs_json(folder / name)
        assert len(program["setup"]["ahs_register"]["sites"]) == 6
        assert program["hamiltonian"]["localDetuning"][0]["magnitude"]["pattern"]
    # an X readout cannot be played: refused before anything is written
    other = tmp_path / "x-bundle"
    backend, jobs = _bundle_setup(aquila, chain_model, other, ["Z" * 6, "X" * 6])
    with pytest.raises(ConfigError, match=r"reads in basis XXXXXX, which braket-ahs files cannot express"):
        backend.run(jobs)
    assert not other.exists()


def test_sequence_build_exports_ahs_for_aquila(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    recipe = tmp_path / "aquila-smooth.yaml"
    text = (ROOT / "sequences" / "rydberg-smooth.yaml").read_text(encoding="utf-8")
    recipe.write_text(
        text.replace("duration_us: 4.0", "duration_us: 3.8").replace("segments: 100", "segments: 76")
    )
    model = str(ROOT / "examples" / "models" / "rydberg_chain.yaml")
    out = tmp_path / "chain.json"
    argv = ["sequence", "build", str(recipe), "--device", "aquila-like", "--model", model,
            "--theta", "h=4", "delta=3", "s=0.5", "J=1.5", "--beta", "0.1", "--out", str(out)]  # fmt: skip
    status, stdout, stderr = run_cli(capsys, [*argv, "--export"])
    assert status == 0 and "chain.free.Z.ahs.json" in stdout, stderr
    exported = sorted(p.name for p in tmp_path.glob("chain.*.ahs.json"))
    assert exported == ["chain.free.Z.ahs.json", "chain.minus.Z.ahs.json", "chain.plus.Z.ahs.json"]
    assert "free/X, plus/X, minus/X not exported: braket-ahs files read in Z only" in stderr
    for name in exported:
        read_ahs_json(tmp_path / name)
    status, _, stderr = run_cli(capsys, [*argv, "--export", "braket-ahs"])
    assert status == 0 and len(list(tmp_path.glob("chain.*.ahs.json"))) == 3
    status, _, stderr = run_cli(capsys, [*argv, "--export", "pulser"])
    error = stderr.splitlines()[-1]  # after the warning about the X readout's rotation
    assert status == EXIT_BAD_INPUT and error.endswith("export it as Braket AHS (braket-ahs)")


@pytest.mark.parametrize("name", ["rydberg-gap-quintic", "rydberg-quintic", "rydberg-aquila"])
def test_the_default_rydberg_recipes_export_to_aquila(aquila: DeviceProfile, name: str) -> None:
    """The recipes QEP phases use unless one is named (and aquila-like's own): their breakpoints are
    at least the device's minimum time step apart and the switch-off fits within its longest program,
    so `step` on aquila-like needs no --recipe."""
    from qep_analog.sequences.phases import ramp_gap

    target = RydbergControls(POSITIONS, 6.0, 4.0, WEIGHTS, 20.0, 0.0)
    recipe = load_recipe(name)
    assert recipe.duration / recipe.segments >= aquila.capabilities.min_pulse - 1e-12
    schedule = build_schedule(recipe, aquila, target, gap=ramp_gap(recipe, aquila, target))
    program = to_ahs_program(schedule, aquila)
    times = program["hamiltonian"]["drivingFields"][0]["amplitude"]["time_series"]["times"]
    assert float(times[-1]) * 1e6 <= aquila.capabilities.max_duration + 1e-9
