"""``qep-analog sequence build|plot`` and ``qep-analog emulate``; Pasqal-cloud submission path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_run import run_cli
from conftest import ROOT, THETA, smooth
from pulser import Sequence

from qep_analog.cli import EXIT_BAD_INPUT
from qep_analog.devices.profile import read_profile
from qep_analog.errors import ConfigError
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.cloud import pasqal_connection, submit_schedules
from qep_analog.sequences.phases import qep_phase_schedules

MODEL = str(ROOT / "examples" / "models" / "rydberg_chain.yaml")
POINT = ["--theta", "h=4", "delta=3", "s=0.5", "J=1.5", "--beta", "0.1"]


def test_build_plot_emulate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "chain.json"
    argv = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--model", MODEL, *POINT]
    status, stdout, stderr = run_cli(capsys, [*argv, "--out", str(out), "--export", "pulser"])
    assert status == 0 and "6 schedules" in stdout and "warning" in stderr  # the X generator's readout
    exported = sorted(tmp_path.glob("chain.*.pulser.json"))
    assert len(exported) == 6
    Sequence.from_abstract_repr(exported[0].read_text(encoding="utf-8"))
    # the X files carry their rotation (not copies of the Z files); its bias is printed and stored
    x_file, z_file = tmp_path / "chain.free.X.pulser.json", tmp_path / "chain.free.Z.pulser.json"
    assert x_file.read_bytes() != z_file.read_bytes()
    assert stdout.count("readout rotation 128 ns") == 3 and "bias under interactions max |Δ<X_i>|" in stdout
    stored = [s["metadata"].get("readout_rotation") for s in json.loads(out.read_text())["schedules"]]
    assert [r is not None for r in stored] == [False, True] * 3
    assert all(0 < r["max_abs_bias"] == max(map(abs, r["bias_per_atom"])) for r in stored if r)
    status, stdout, _ = run_cli(capsys, ["sequence", "plot", str(out)])
    assert status == 0 and (tmp_path / "chain.png").stat().st_size > 1000
    status, stdout, _ = run_cli(capsys, ["emulate", str(out), "--shots", "50", "--json"])
    report = json.loads(stdout)
    assert status == 0 and len(report["schedules"]) == 6
    first = report["schedules"][0]
    assert sum(first["counts"].values()) == 50 and 0 < first["diagnostics"]["fidelity"] <= 1
    status, stdout, _ = run_cli(capsys, ["emulate", str(out), "--backend", "pulser"])
    assert status == 0 and stdout.count("fidelity") == 6


def test_a_refused_export_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Braket AHS switches the drive off after the ramp: a 4 µs ramp on the 4 µs Aquila-like device
    cannot be exported, and the refusal comes before the schedule file is written."""
    out = tmp_path / "built" / "chain.json"
    out.parent.mkdir()
    argv = ["sequence", "build", "rydberg-aquila", "--device", "aquila-like", "--model", MODEL, *POINT]
    status, _, err = run_cli(capsys, [*argv, "--duration", "4.0", "--out", str(out), "--export"])
    assert status == EXIT_BAD_INPUT and "Traceback" not in err
    assert err.splitlines()[-1].startswith("qep-analog: error: schedule 'free' on 'aquila-like'")
    assert "build it at most 3.9 µs long" in err
    assert list(out.parent.iterdir()) == []
    status, _, _ = run_cli(capsys, [*argv, "--duration", "3.9", "--out", str(out), "--export"])
    assert status == 0 and out.is_file() and len(list(out.parent.glob("chain.*.ahs.json"))) == 3


def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["sequence", "build", "no-such-recipe", "--device", "fresnel-like", "--model", MODEL]
    status, _, err = run_cli(capsys, [*argv, "--out", str(tmp_path / "x.json")])
    assert status == EXIT_BAD_INPUT and err.count("\n") == 1 and "not a known name" in err
    long = tmp_path / "long.yaml"
    text = (ROOT / "sequences" / "rydberg-smooth.yaml").read_text(encoding="utf-8")
    long.write_text(text.replace("duration_us: 4.0", "duration_us: 8.0"), encoding="utf-8")
    argv = ["sequence", "build", str(long), "--device", "fresnel-like", "--model", MODEL, *POINT]
    status, _, err = run_cli(capsys, [*argv, "--out", str(tmp_path / "y.json")])
    assert status == EXIT_BAD_INPUT and "duration 8 µs exceeds the limit 6 µs" in err
    assert not (tmp_path / "y.json").exists()  # refused before anything is written
    status, _, err = run_cli(capsys, ["emulate", str(tmp_path / "missing.json")])
    assert status == EXIT_BAD_INPUT and "no such file" in err


def test_aquila_in_pulser_is_one_line_or_works(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """aquila-like exports as Braket AHS: --export pulser is refused before anything is written; its
    schedules emulate in pulser-simulation where Pulser can play them (no positive map played)."""
    out = tmp_path / "aquila.json"
    argv = ["sequence", "build", "rydberg-smooth", "--device", "aquila-like", "--model", MODEL, *POINT]
    status, _, err = run_cli(capsys, [*argv, "--out", str(out), "--export", "pulser"])
    assert status == EXIT_BAD_INPUT and err.count("\n") == 1
    assert "device 'aquila-like' has a positive detuning map" in err
    assert err.endswith("export it as Braket AHS (braket-ahs)\n")
    assert not out.exists()
    status, _, _ = run_cli(capsys, [*argv, "--out", str(out)])
    assert status == 0
    status, _, err = run_cli(capsys, ["emulate", str(out), "--backend", "pulser"])
    assert status == EXIT_BAD_INPUT and err.count("\n") == 1 and "a positive detuning map" in err
    document = json.loads(out.read_text(encoding="utf-8"))
    for schedule in document["schedules"][:1]:  # the detuning map's waveform zero throughout
        local = schedule["controls"]["local_amplitude"]
        local["values_rad_per_us"] = [0.0] * len(local["values_rad_per_us"])
    document["schedules"] = document["schedules"][:1]
    unmapped = tmp_path / "unmapped.json"
    unmapped.write_text(json.dumps(document), encoding="utf-8")
    reports = {}
    for backend in ("pulser", "qutip"):
        status, stdout, _ = run_cli(capsys, ["emulate", str(unmapped), "--backend", backend, "--json"])
        assert status == 0
        reports[backend] = json.loads(stdout)["schedules"][0]["expectations"]
    # the same schedule in pulser-simulation and our emulator: <Z_i> within 2e-3
    assert reports["pulser"] == pytest.approx(reports["qutip"], abs=2e-3)


class RecordingConnection:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def create_batch(self, serialized_sequence: str, jobs: list[dict[str, Any]], **kwargs: Any) -> str:
        self.calls.append({"serialized_sequence": serialized_sequence, "jobs": jobs, **kwargs})
        return f"batch-{len(self.calls)}"

    def get_batch(self, id: str) -> Any:
        raise AssertionError("submission does not wait")


def test_cloud_submission_up_to_the_network(chain_model: QEPModel, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = read_profile("fresnel-like")
    schedules = qep_phase_schedules(chain_model, profile, smooth(4.0), [], THETA, [1.0], 0.1, "Z" * 6)
    connection = RecordingConnection()
    handles = submit_schedules(schedules, profile, connection, shots=200)
    assert handles == ["batch-1", "batch-2", "batch-3"]
    call = connection.calls[0]
    assert call["jobs"] == [{"runs": 200}] and call["device_type"] is None and call["wait"] is False
    sequence = Sequence.from_abstract_repr(call["serialized_sequence"])
    assert (
        np.isclose(sequence.get_duration(), 4000) and sequence.get_measurement_basis() == "ground-rydberg"
    )
    submit_schedules(schedules[:1], profile, connection, shots=10, emulator="EMU_FREE", wait=True)
    assert connection.calls[-1]["device_type"] == "EMU_FREE" and connection.calls[-1]["wait"] is True
    with pytest.raises(ConfigError, match="emulation variant"):
        submit_schedules(schedules, profile.relaxed(), connection, shots=200)
    with pytest.raises(ConfigError, match="shots = 0"):
        submit_schedules(schedules, profile, connection, shots=0)
    x_read = [dataclasses.replace(schedules[0], readout="X" * 6)]
    with pytest.raises(ConfigError, match="reads in XXXXXX; the cloud reads Z only"):
        submit_schedules(x_read, profile, connection, shots=200)
    assert len(connection.calls) == 4
    for variable in ("PASQAL_PROJECT_ID", "PASQAL_USERNAME", "PASQAL_PASSWORD"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConfigError, match=r"no password: pass password=\.\.\. or set PASQAL_PASSWORD"):
        pasqal_connection("project", "user")


ION_MODEL = """schema: qep-model/1
n_qubits: 3
fixed: [[0.00126, "X0 X1"], [0.00126, "X1 X2"], [0.00126, "X0 X2"]]
trainable:
  b: [[1.0, "Z0"], [1.0, "Z1"]]
outputs:
  m: [[1.0, "Z2"]]
"""


@pytest.mark.parametrize("relaxed", [False, True])
def test_ion_build_at_lab_strength_reports_the_chain(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, relaxed: bool
) -> None:
    """Couplings of 2π·0.2 kHz (0.00126 rad/µs) on yb171-chain, strict and relaxed: built, with the beat
    note, J0 and α printed, and the ramp longer than T2* said so."""
    model = tmp_path / "ions.yaml"
    model.write_text(ION_MODEL, encoding="utf-8")
    argv = ["sequence", "build", "ion-exponential", "--device", "yb171-chain", "--model", str(model),
            "--theta", "b=0.002", "--out", str(tmp_path / "ions.json")]  # fmt: skip
    argv += ["--relaxed"] if relaxed else []
    status, stdout, stderr = run_cli(capsys, argv)
    assert status == 0, stderr
    assert "J0 = 2π·0.2005 kHz, α = 0" in stdout and "spin-only parameter" in stdout
    assert "T2*" not in stderr  # the shipped ion ramp fits within the profile's coherence


def test_an_ion_ramp_longer_than_t2_is_said_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = tmp_path / "ions.yaml"
    model.write_text(ION_MODEL, encoding="utf-8")
    shipped = (ROOT / "sequences" / "ion-exponential.yaml").read_text(encoding="utf-8")
    recipe = tmp_path / "ion-long.yaml"
    recipe.write_text(shipped.replace("duration_ms: 2.4", "duration_ms: 5.0"), encoding="utf-8")
    argv = ["sequence", "build", str(recipe), "--device", "yb171-chain", "--model", str(model),
            "--theta", "b=0.002", "--out", str(tmp_path / "ions.json")]  # fmt: skip
    status, _, stderr = run_cli(capsys, argv)
    assert status == 0
    assert "the ramp (5000 µs) is longer than the T2* of device 'yb171-chain' (2500 µs)" in stderr


def test_emulate_noise_sources(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--noise SOURCES`` names the sources (readout alone: pure states, flipped bits); an unknown
    name is one line listing the known ones."""
    out = tmp_path / "chain.json"
    argv = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--model", MODEL, *POINT]
    assert run_cli(capsys, [*argv, "--out", str(out)])[0] == 0
    status, stdout, _ = run_cli(
        capsys, ["emulate", str(out), "--noise", "readout", "--shots", "400", "--json"]
    )
    assert status == 0
    clean = json.loads(run_cli(capsys, ["emulate", str(out), "--shots", "400", "--json"])[1])
    noisy = json.loads(stdout)
    first, reference = noisy["schedules"][0], clean["schedules"][0]
    assert first["expectations"] == pytest.approx(
        reference["expectations"], abs=1e-9
    )  # evolution untouched
    assert first["counts"] != reference["counts"]
    status, _, err = run_cli(capsys, ["emulate", str(out), "--noise", "doppler"])
    assert status == EXIT_BAD_INPUT and err.count("\n") == 1
    assert "--noise: noise = 'doppler' names an unknown source 'doppler' (known: detuning, dephasing" in err


def test_emulate_trajectories(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--trajectories N`` sets how many noise trajectories are averaged (one and four give other
    states); outside [1, 100000] it is one line."""
    out = tmp_path / "chain.json"
    argv = ["sequence", "build", "rydberg-smooth", "--device", "fresnel-like", "--model", MODEL, *POINT]
    assert run_cli(capsys, [*argv, "--out", str(out)])[0] == 0
    runs = []
    for count in ("1", "4"):
        status, stdout, _ = run_cli(
            capsys, ["emulate", str(out), "--noise", "detuning", "--trajectories", count, "--json"]
        )
        assert status == 0
        runs.append(json.loads(stdout)["schedules"][0]["expectations"])
    assert runs[0] != pytest.approx(runs[1], abs=1e-6)
    status, _, err = run_cli(capsys, ["emulate", str(out), "--noise", "--trajectories", "0"])
    assert status == EXIT_BAD_INPUT and err.count("\n") == 1
    assert "--trajectories: 0 is not in [1, 100000]" in err


TWO_ATOMS = """schema: qep-model/1
n_qubits: 2
trainable:
  h: [[1.0, "X0"], [1.0, "X1"]]
  delta: [[1.0, "Z0"], [1.0, "Z1"]]
  J: [[1.0, "Z0 Z1"]]
outputs:
  m: [[0.5, "Z0"], [0.5, "Z1"]]
"""
TWO_IONS = """schema: qep-model/1
n_qubits: 2
trainable:
  b: [[1.0, "Z0"], [1.0, "Z1"]]
  c: [[1.0, "X0 X1"]]
outputs:
  m: [[0.5, "Z0"], [0.5, "Z1"]]
"""


@pytest.fixture(scope="module")
def small_schedules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Schedule files of a two-atom and a two-ion model, as ``sequence build`` writes them."""
    from qep_analog.cli import main

    folder = tmp_path_factory.mktemp("schedules")
    builds = {
        "rydberg": ("rydberg-smooth", "fresnel-like", TWO_ATOMS, ["h=4", "delta=3", "J=1.5"], "0.1"),
        "ion": ("ion-exponential", "yb171-chain", TWO_IONS, ["b=0.0015", "c=0.0005"], "0.0002"),
    }
    files = {}
    for platform, (recipe, device, model, theta, beta) in builds.items():
        (folder / f"{platform}.yaml").write_text(model, encoding="utf-8")
        argv = [
            "sequence",
            "build",
            recipe,
            "--device",
            device,
            "--model",
            str(folder / f"{platform}.yaml"),
        ]
        out = folder / f"{platform}.json"
        assert main([*argv, "--theta", *theta, "--beta", beta, "--out", str(out)]) == 0
        files[platform] = out
    return files


_GONE = object()


@pytest.mark.parametrize(
    ("platform", "path", "value", "words"),
    [
        ("rydberg", "label", [], ["schedules[0]: label = []"]),
        ("rydberg", "readout", "", ["readout = ''"]),
        ("rydberg", "readout", "ZQ", ["readout = 'ZQ' is not a string of X, Y, Z"]),
        ("rydberg", "readout", "ZZZ", ["initial_state = '00' is not 3 bits"]),
        ("rydberg", "initial_state", "x", ["initial_state = 'x' is not 2 bits"]),
        ("rydberg", "controls", "x", ["controls = 'x' is not a mapping"]),
        ("rydberg", "controls", {}, ["controls = {} is empty"]),
        ("rydberg", "controls/rabi", _GONE, ["missing ['rabi']"]),
        ("rydberg", "controls/rabi/times_us/1", -1.0, ["times must start at 0 and increase"]),
        ("rydberg", "controls/rabi/times_us/-1", 1e308, ["breaks the rule"]),
        ("rydberg", "controls/rabi/values_rad_per_us/-1", 1e120, ["Rabi frequency 1e+120 rad/µs"]),
        ("rydberg", "static/positions", [[0.0, 0.0]], ["static.positions holds 1 entries for 2 qubits"]),
        ("rydberg", "static/positions/0/0", 1e300, ["breaks the rule"]),
        ("rydberg", "metadata", [], ["metadata = [] is not a mapping"]),
        ("rydberg", "metadata/device", "x", ["metadata.device = 'x' is not a mapping"]),
        ("rydberg", "platform", "ion", ["controls"]),
        ("ion", "static/rabi", {}, ["static.rabi = {} is not a list of numbers"]),
        ("ion", "static/rabi", None, ["static.rabi = None"]),
        ("ion", "static/rabi", [[1.0], [1.0]], ["static.rabi"]),
        ("ion", "static/beat_note", _GONE, ["missing key static.beat_note"]),
        ("ion", "controls/stark_scale", _GONE, ["missing ['stark_scale']"]),
    ],
)
def test_a_damaged_schedule_file_is_one_line(
    small_schedules: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: str,
    path: str, value: Any, words: list[str],
) -> None:  # fmt: skip
    document = json.loads(small_schedules[platform].read_text(encoding="utf-8"))
    *parents, last = [int(k) if k.lstrip("-").isdigit() else k for k in path.split("/")]
    inner: Any = document["schedules"][0]
    for key in parents:
        inner = inner[key]
    if value is _GONE:
        del inner[last]
    else:
        inner[last] = value
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(document), encoding="utf-8")
    for argv in (["emulate", str(damaged), "--quiet"], ["sequence", "plot", str(damaged)]):
        status, out, err = run_cli(capsys, argv)
        if argv[0] == "sequence" and "Rabi frequency" in words[0]:
            continue  # a plot draws what the file holds; only emulate checks the device's limits
        assert status == EXIT_BAD_INPUT and out == "" and err.count("\n") == 1, (argv, err)
        assert err.startswith(f"qep-analog: error: {damaged}: ")
        for word in words:
            assert word in err, err
