"""The qep-counts run format (/2, /1 read and written where it suffices): round trip, one-line
refusals of corrupt or inconsistent files, and Pulser's bitstrings converted at the edge."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qep_analog.errors import MeasurementError
from qep_analog.measurement.counts_file import counts_from_pulser, read_counts_run, write_counts_run
from qep_analog.measurement.estimators import SettingCounts, estimate
from qep_analog.measurement.gradient import gradient_from_counts
from qep_analog.measurement.settings import measurement_plan
from qep_analog.model.pauli import PauliString
from qep_analog.qep.gradients import qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium

MakeRun = Callable[..., tuple[Path, Any]]


@pytest.mark.parametrize("embed", [True, False])
def test_round_trip(tmp_path: Path, embed: bool, make_run: MakeRun) -> None:
    run_dir, run = make_run(tmp_path, embed=embed)
    loaded = read_counts_run(run_dir)
    assert loaded.beta == 0.1 and loaded.scheme == "symmetric" and loaded.mitigate
    assert loaded.theta == run.theta and loaded.x == run.x and loaded.error_signal == run.error_signal
    assert loaded.readout is not None and loaded.readout.describe() == run.readout.describe()  # type: ignore[union-attr]
    for name in run.phases:
        assert [c.to_bitstrings() for c in loaded.phases[name]] == [
            c.to_bitstrings() for c in run.phases[name]
        ]
    plan = measurement_plan(run.model)
    direct = gradient_from_counts(run.model, plan, run.phases, 0.1, mitigation=run.readout)
    from_file = loaded.gradient()
    assert from_file.values == pytest.approx(direct.values, abs=1e-12)
    eq = Equilibrium(run.model)
    reference = qep_gradient(eq, [0.5], [0.3, -0.2], [1.0], 0.1)[0]
    assert np.all(np.abs(from_file.values - reference) < 4 * from_file.standard_errors)
    # a second write gives the same bytes (stable, sorted output)
    text = (run_dir / "run.json").read_text(encoding="utf-8")
    write_counts_run(run_dir, loaded)
    assert (run_dir / "run.json").read_text(encoding="utf-8") == text


PREPARATION = {
    "bias": {"a": 0.01, "b": 0.02},
    "measured_bias": {"a": -0.004, "b": 0.001},
    "shape": "gap_aware",
    "boundary_order": 2,
    "duration": 4.0,
    "min_gap": 3.1,
}


def test_versions(tmp_path: Path, make_run: MakeRun) -> None:
    """A run without a ``preparation`` section is written as qep-counts/1 (what every reader of either
    version reads); with one, as qep-counts/2, read back the same; a /1 file that carries the
    section (written before /2 existed) is read with it; a /1 reader's refusal of the section is why
    the version moved (an unknown key is refused)."""
    run_dir, run = make_run(tmp_path, embed=True)
    document = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert document["schema"] == "qep-counts/1" and "preparation" not in document
    write_counts_run(run_dir, dataclasses.replace(run, preparation=PREPARATION))
    document = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert document["schema"] == "qep-counts/2"
    assert document["preparation"]["duration_us"] == 4.0
    assert document["preparation"]["min_gap_rad_per_us"] == 3.1
    loaded = read_counts_run(run_dir)
    assert loaded.preparation == PREPARATION
    assert loaded.gradient().values == pytest.approx(run.gradient().values, abs=1e-12)
    document["schema"] = "qep-counts/1"
    (run_dir / "run.json").write_text(json.dumps(document), encoding="utf-8")
    assert read_counts_run(run_dir).preparation == PREPARATION
    document["unknown_section"] = {}
    (run_dir / "run.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(MeasurementError, match="unknown key 'unknown_section'"):
        read_counts_run(run_dir)


def corrupt(document: dict[str, Any], case: str) -> dict[str, Any] | str:
    phases = document["phases"]
    if case == "schema":
        document["schema"] = "qep-counts/9"
    elif case == "unknown_key":
        document["extra"] = 1
    elif case == "missing_phase":
        del phases["minus"]
    elif case == "bitstring_length":
        phases["plus"][0]["counts"]["0101"] = 3
    elif case == "bad_character":
        phases["plus"][0]["counts"]["0a1"] = 3
    elif case == "negative_count":
        key = next(iter(phases["plus"][0]["counts"]))
        phases["plus"][0]["counts"][key] = -4
    elif case == "settings_differ":
        phases["minus"] = phases["minus"][::-1]
    elif case == "missing_setting":
        for name in phases:
            phases[name] = phases[name][:1]
    elif case == "bases_length":
        phases["plus"][0]["bases"] = "ZZ"
    elif case == "duplicate_setting":
        for name in phases:
            phases[name] = phases[name] + phases[name][:1]
    elif case == "beta":
        document["beta"] = 0
    elif case == "scheme":
        document["scheme"] = "three-sided"
    elif case == "readout":
        document["readout"]["false_positive"] = 0.7
    elif case == "readout_per_qubit":
        document["readout"]["false_negative"] = [0.1, 0.1]
    elif case == "theta_name":
        document["theta"] = {"zz": 1.0}
    elif case == "model":
        document["model"] = "missing.yaml"
    elif case == "one_shot":
        phases["plus"][0]["counts"] = {"000": 1}
    elif case == "not_json":
        return '{"schema": "qep-counts/1", '
    elif case in ("huge_count", "huge_total"):
        counts = phases["plus"][0]["counts"]
        for key in list(counts)[: 1 if case == "huge_count" else 2]:
            counts[key] = 2**64 if case == "huge_count" else 5 * 10**15
    elif case == "huge_bitstring":
        phases["plus"][0]["counts"]["01" * 500_000] = 3
    elif case == "huge_bases":
        phases["plus"][0]["bases"] = "Z" * 10**6
    return document


CASES = [
    ("schema", "qep-counts/9"), ("unknown_key", "unknown key 'extra'"), ("missing_phase", "'minus' phase"),
    ("bitstring_length", "'0101' is not 3 characters"), ("bad_character", "'0a1'"),
    ("negative_count", "not a non-negative integer"), ("settings_differ", "differ from the first phase"),
    ("missing_setting", "none measures"), ("bases_length", "'ZZ' is not 3 letters"),
    ("duplicate_setting", "listed twice"), ("beta", "beta = 0 breaks the rule beta > 0"),
    ("scheme", "three-sided"), ("readout", "not in [0, 0.5)"),
    ("readout_per_qubit", "2 values for 3 qubits"),
    ("theta_name", "unknown name 'zz'"), ("model", "missing.yaml"), ("one_shot", "at least 2"),
    ("not_json", "not valid JSON"), ("huge_count", "count 18446744073709551616 of "),
    ("huge_total", "shots, more than the limit of 9007199254740992 (2^53)"),
    ("huge_bitstring", "bitstring '010101"), ("huge_bases", "'ZZZZZZ"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "word"), CASES, ids=[c for c, _ in CASES])
def test_corrupt_or_inconsistent_files_are_refused_in_one_line(
    tmp_path: Path, case: str, word: str, make_run: MakeRun
) -> None:
    run_dir, _ = make_run(tmp_path, shots=50)
    path = run_dir / "run.json"
    document = corrupt(json.loads(path.read_text(encoding="utf-8")), case)
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    with pytest.raises(MeasurementError) as caught:
        read_counts_run(run_dir)
    message = str(caught.value)
    assert word in message and "\n" not in message and str(path) in message
    assert len(message) < len(str(path)) + 400  # values are shown cut (a bitstring of a million)


def test_per_qubit_readout_errors_round_trip(tmp_path: Path, make_run: MakeRun) -> None:
    run_dir, _ = make_run(tmp_path, shots=50)
    path = run_dir / "run.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["readout"] = {"false_positive": [0.01, 0.02, 0.03], "false_negative": 0.1, "mitigate": False}
    path.write_text(json.dumps(document), encoding="utf-8")
    run = read_counts_run(path)
    assert run.readout is not None and run.readout.false_positive.tolist() == [0.01, 0.02, 0.03]
    assert run.readout.describe()["false_negative"] == [0.1, 0.1, 0.1] and run.mitigate is False
    write_counts_run(tmp_path / "again", run)
    again = read_counts_run(tmp_path / "again")
    assert again.readout is not None and again.readout.false_positive.tolist() == [0.01, 0.02, 0.03]


def test_missing_run_file(tmp_path: Path) -> None:
    with pytest.raises(MeasurementError, match="no such file"):
        read_counts_run(tmp_path)


def test_pulser_order_is_converted() -> None:
    counts = {"100": 7, "011": 3}
    assert counts_from_pulser(counts, ["c", "a", "b"]) == counts
    assert counts_from_pulser(counts, ["c", "a", "b"], qubits=["a", "b", "c"]) == {"001": 7, "110": 3}
    with pytest.raises(MeasurementError, match="permutation"):
        counts_from_pulser(counts, ["c", "a", "b"], qubits=["a", "b", "d"])
    with pytest.raises(MeasurementError, match="basis 'XY'"):
        counts_from_pulser(counts, ["c", "a", "b"], basis="XY")
    with pytest.raises(MeasurementError, match="'10'"):
        counts_from_pulser({"10": 1}, ["c", "a", "b"])


def test_pulser_emulator_bitstrings_follow_our_convention() -> None:
    """Pulser puts |r> first in its state vectors; its sampled bitstrings have '1' = |r> with the
    register's order. Atom "c" (first in the register) prepared in |r> reads '100'; as our qubit 2
    (qubits = a, b, c) it is '001', and <Z2> = -1, <Z0> = +1 in our convention."""
    qutip = pytest.importorskip("qutip")
    from pulser import Pulse, Register, Sequence
    from pulser.devices import MockDevice
    from pulser_simulation import QutipEmulator

    register = Register({"c": (0.0, 0.0), "a": (40.0, 0.0), "b": (80.0, 0.0)})
    sequence = Sequence(register, MockDevice)
    sequence.declare_channel("ryd", "rydberg_global")
    sequence.add(Pulse.ConstantPulse(100, 0.0, 0.0, 0.0), "ryd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        emulator = QutipEmulator.from_sequence(sequence)
        rydberg, ground = qutip.basis(2, 0), qutip.basis(2, 1)
        emulator.set_initial_state(qutip.tensor(rydberg, ground, ground))
        results = emulator.run()
        sampled = results.sample_final_state(20)
    assert dict(sampled) == {"100": 20}
    ours = counts_from_pulser(sampled, list(register.qubit_ids), qubits=["a", "b", "c"])
    assert ours == {"001": 20}
    data = SettingCounts.from_bitstrings("ZZZ", ours)
    z = estimate(data, [PauliString(((0, "Z"),)), PauliString(((2, "Z"),))]).means
    assert z.tolist() == [1.0, -1.0]


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_a_model_file_outside_the_run_folder_is_refused(
    tmp_path: Path, where: str, make_run: MakeRun
) -> None:
    run_dir, _ = make_run(tmp_path / "run", embed=False)
    document = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    outside = tmp_path / "outside.yaml"
    shutil.copy(run_dir / document["model"], outside)
    document["model"] = "../outside.yaml" if where == "parent" else str(outside)
    (run_dir / "run.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(MeasurementError, match=r"run.json: model .* (leaves its folder|is absolute)"):
        read_counts_run(run_dir)
