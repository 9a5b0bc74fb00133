"""A term on at full strength at t = 0 that does not commute with the initial Hamiltonian is refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli
from conftest import ROOT, THETA

from qep_analog.cli import EXIT_BAD_INPUT
from qep_analog.devices.ions import IonControls, realize
from qep_analog.devices.profile import read_profile
from qep_analog.errors import ConfigError
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import qep_phase_schedules
from qep_analog.sequences.recipes import load_recipe
from qep_analog.sequences.schedule import Schedule
from qep_analog.sequences.switch_on import check_switch_on, moved_amplitudes
from qep_analog.sequences.waveforms import Waveform

MODEL = str(ROOT / "examples" / "models" / "rydberg_chain.yaml")


def _held(schedule: Schedule, control: str) -> Schedule:
    """``schedule`` with ``control`` at its final value from t = 0 (switched on at full strength)."""
    waveform = schedule.controls[control]
    held = Waveform(waveform.times, np.full(len(waveform.times), waveform.values[-1]))
    return dataclasses.replace(schedule, controls={**schedule.controls, control: held})


def test_moved_amplitudes_are_those_of_the_pauli_algebra() -> None:
    # X0|00⟩ = |10⟩; Y0|00⟩ = i|10⟩; Z0 Y1 |01⟩ = −i|00⟩ (Y|1⟩ = −i|0⟩)
    assert moved_amplitudes(pauli_sum([(2.0, "X0")]), 0b00, 2) == {0b10: 2.0}
    assert moved_amplitudes(pauli_sum([(1.0, "Y0")]), 0b00, 2) == {0b10: 1j}
    assert moved_amplitudes(pauli_sum([(1.0, "Z0 Y1")]), 0b01, 2) == {0b00: -1j}
    # X0 X1 + Y0 Y1 conserves the excitation number: |00⟩ is its eigenstate (the amplitudes cancel)
    assert moved_amplitudes(pauli_sum([(1.0, "X0 X1"), (1.0, "Y0 Y1")]), 0b00, 2) == {}
    assert moved_amplitudes(pauli_sum([(1.0, "Z0"), (3.0, "Z0 Z1")]), 0b11, 2) == {}


def test_a_drive_on_at_t0_is_refused_by_name(chain_model: QEPModel) -> None:
    profile = read_profile("fresnel-like")
    schedules = qep_phase_schedules(
        chain_model, profile, load_recipe("rydberg-quintic"), [], THETA, [1.0], 0.1, "Z" * 6
    )
    for schedule in schedules:  # built from a recipe: every term starts from the initial state's
        check_switch_on(schedule, profile)
    plus = schedules[1]
    expected = (
        r"schedule 'plus' on 'fresnel-like': control 'rabi' = 8 rad/µs is on at t = 0 and does not "
        r"commute with the initial Hamiltonian \(X0 moves \|000000⟩\)"
    )
    with pytest.raises(ConfigError, match=expected) as caught:
        check_switch_on(_held(plus, "rabi"), profile)
    assert "\n" not in str(caught.value)
    # the nudge on the detuning map is diagonal: held at full strength it still commutes (allowed)
    check_switch_on(_held(plus, "local_amplitude"), profile)
    check_switch_on(_held(plus, "detuning"), profile)


ION_THETA = np.array([0.004, 0.002, 0.003])


def _ion_model(output: str = "Z0") -> tuple[QEPModel, object]:
    profile = read_profile("yb171-chain")
    n = 3
    couplings = realize(IonControls(np.full(n, 1.5), 30.0), profile).couplings
    fixed = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    trainable = {f"b{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    return QEPModel(n, trainable, {"m": pauli_sum([(1.0, output)])}, fixed), profile


def _ion_schedules() -> tuple[list[Schedule], object]:
    model, profile = _ion_model()
    recipe = load_recipe("ion-exponential-smooth")
    schedules = qep_phase_schedules(model, profile, recipe, [], ION_THETA, [1.0], 0.0005)  # type: ignore[arg-type]
    return schedules, profile


def test_ion_couplings_on_at_t0_are_refused_and_stark_shifts_are_not() -> None:
    schedules, profile = _ion_schedules()
    plus = schedules[1]
    with pytest.raises(
        ConfigError, match=r"control 'coupling_scale' = 1 rad/µs is on at t = 0 .*X0 X1 moves \|111⟩"
    ):
        check_switch_on(_held(plus, "coupling_scale"), profile)  # type: ignore[arg-type]
    check_switch_on(_held(plus, "stark_scale"), profile)  # type: ignore[arg-type]  # Z: commutes


def test_an_ion_nudge_on_the_couplings_is_refused_before_any_schedule() -> None:
    """σx-type outputs of an ion chain would be nudged through the couplings, i.e. the Rabi
    frequencies of the register: refused by the translation, so no schedule can hold them."""
    model, profile = _ion_model("X0 X1")
    recipe = load_recipe("ion-exponential-smooth")
    with pytest.raises(ConfigError, match="nudge changes the couplings"):
        qep_phase_schedules(model, profile, recipe, [], ION_THETA, [1.0], 0.0005)  # type: ignore[arg-type]


def test_emulate_refuses_an_edited_schedule_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "chain.json"
    argv = ["sequence", "build", "--device", "fresnel-like", "--model", MODEL,
            "--theta", "h=4", "delta=3", "s=0.5", "J=1.5", "--beta", "0.1", "--out", str(out)]  # fmt: skip
    status, stdout, _ = run_cli(capsys, argv)
    assert status == 0 and "recipe 'rydberg-gap-quintic'" in stdout  # the default recipe
    document = json.loads(out.read_text(encoding="utf-8"))
    rabi = document["schedules"][2]["controls"]["rabi"]
    rabi["values_rad_per_us"] = [rabi["values_rad_per_us"][-1]] * len(rabi["values_rad_per_us"])
    out.write_text(json.dumps(document), encoding="utf-8")
    status, _, err = run_cli(capsys, ["emulate", str(out), "--quiet"])
    assert status == EXIT_BAD_INPUT and err.count("\n") == 1
    assert "control 'rabi' = 8 rad/µs is on at t = 0 and does not commute" in err
