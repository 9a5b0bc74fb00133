"""Mapping QEP models onto devices: levels, dropped terms, realised models with their tails."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qep_analog.devices.geometry import chain_positions, zz_couplings
from qep_analog.devices.mapping import hadamard_rotated, map_model, mapping_table
from qep_analog.devices.profile import read_profile
from qep_analog.model.pauli import PauliString, pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.tasks.exploration import open_cluster_ising


def _rydberg_chain(n: int = 5, local: bool = True) -> QEPModel:
    trainable = {
        "h": pauli_sum((1.0, f"X{i}") for i in range(n)),
        "delta": pauli_sum((1.0, f"Z{i}") for i in range(n)),
        "J": pauli_sum((1.0, f"Z{i} Z{i + 1}") for i in range(n - 1)),
    }
    if local:
        trainable["s"] = pauli_sum(((-1.0) ** i, f"Z{i}") for i in range(n))
    return QEPModel(n, trainable, {"m": pauli_sum([(1.0, "Z0")])})


def _levels(model: QEPModel, device: str, rotate: bool | None = None) -> dict[str, str]:
    report = map_model(model, read_profile(device), rotate)
    return {f"{t.section}.{t.name}": t.level for t in report.terms}


def test_rydberg_chain_levels() -> None:
    levels = _levels(_rydberg_chain(), "fresnel-like")
    assert levels["trainable.h"] == "shot"  # Rabi frequency
    assert levels["trainable.delta"] == "shot"  # global detuning
    assert levels["trainable.J"] == "register"  # positions
    # s, the output's Z0 nudge and J's field shift are three local patterns: one map cannot hold them
    assert levels["trainable.s"] == levels["outputs.m"] == "sequence"


def test_one_local_pattern_fits_one_detuning_map() -> None:
    n = 4
    model = QEPModel(
        n,
        {
            "s": pauli_sum(((-1.0) ** i, f"Z{i}") for i in range(n)),
            "h": pauli_sum((1.0, f"X{i}") for i in range(n)),
        },
        {"m": pauli_sum(((-1.0) ** i * 0.5, f"Z{i}") for i in range(n))},  # parallel to s
    )
    levels = _levels(model, "fresnel-like")
    assert levels["trainable.s"] == levels["outputs.m"] == "shot"


def test_chain_couplings_get_their_van_der_waals_tails() -> None:
    profile = read_profile("fresnel-like")
    report = map_model(_rydberg_chain(local=False), profile)
    assert report.fully_realisable and report.realised is not None
    realised = report.realised.trainable["J"]
    expected = zz_couplings(chain_positions(np.ones(4), profile.rydberg.c6), profile.rydberg.c6)
    for i in range(5):
        for j in range(i + 1, 5):
            assert realised[PauliString(((i, "Z"), (j, "Z")))] == pytest.approx(expected[i, j], rel=1e-12)
    assert realised[PauliString(((0, "Z"), (2, "Z")))] == pytest.approx(1 / 64, rel=1e-12)


def test_cluster_ising_on_devices_reports_what_cannot_be_done() -> None:
    model = open_cluster_ising()
    rydberg = map_model(model, read_profile("fresnel-like"))
    assert not rydberg.fully_realisable and rydberg.realised is None  # the nudge X0 X4 is impossible
    assert {d.split(": ")[1] for d in rydberg.dropped} >= {"Z1 X2 Z3", "X0 X4"}
    assert {r.name: r.basis for r in rydberg.readout} == {"m": "rotation"}
    ions = map_model(model, read_profile("yb171-chain"))
    assert ions.basis.startswith("Hadamard")  # X <-> Z: the field becomes the ions' global Z field
    levels = {t.name: t.level for t in ions.terms}
    assert levels["theta_x"] == "shot" and levels["theta_zz"] == "shot"
    assert {r.name: r.basis for r in ions.readout} == {"m": "Z"}  # Z0 Z4 after the rotation
    table = mapping_table(ions)
    assert "not fully realisable" in table and "Z1 X2 Z3" not in table  # shown rotated: X1 Z2 X3


def test_hadamard_rotation_is_an_involution_with_y_sign() -> None:
    model = QEPModel(2, {"a": pauli_sum([(0.5, "X0 Y1"), (0.25, "Z0")])}, {"m": pauli_sum([(1.0, "Y0")])})
    rotated = hadamard_rotated(model)
    assert rotated.trainable["a"] == pauli_sum([(-0.5, "Z0 Y1"), (0.25, "X0")])
    assert rotated.outputs["m"] == pauli_sum([(-1.0, "Y0")])
    twice = hadamard_rotated(rotated)
    assert twice.trainable["a"] == model.trainable["a"]


def test_exact_ion_coupling_patterns_are_shot_level() -> None:
    from qep_analog.devices.ions import IonControls, realize

    profile = read_profile("yb171-chain")
    n = 5
    couplings = realize(IonControls(np.full(n, 2.0), 30.5), profile).couplings
    pattern = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    model = QEPModel(n, {"J": pattern}, {"m": pauli_sum([(1.0, "Z0")])})
    report = map_model(model, profile, rotate=False)
    assert report.fully_realisable
    assert report.terms[0].level == "shot" and "μ = 2π·4.85" in report.terms[0].controls


def test_too_many_qubits_is_a_problem() -> None:
    base = read_profile("yb171-chain")
    small = dataclasses.replace(base, capabilities=dataclasses.replace(base.ions, max_ions=4))
    report = map_model(_rydberg_chain(n=5, local=False), small)
    assert report.problems == ["5 qubits exceed the device's 4 ions"] and report.realised is None
    assert not report.fully_realisable


def test_a_zero_operator_keeps_its_name_in_the_realised_model() -> None:
    """A parameter or input written with coefficient 0 needs no control, but the realised model keeps
    its name, so that x and θ vectors of the model line up with it (they were one name short)."""
    model = QEPModel(
        3,
        {"b": pauli_sum((1.0, f"Z{i}") for i in range(3)), "c": pauli_sum([(0.0, "Z0")])},
        {"m": pauli_sum([(1.0, "Z2")])},
        pauli_sum((0.00126, f"X{i} X{j}") for i, j in ((0, 1), (1, 2), (0, 2))),
        {"g": pauli_sum([(0.0, "Z1")])},
    )
    realised = map_model(model, read_profile("yb171-chain"), rotate=False).realised
    assert realised is not None
    assert realised.parameter_names == ["b", "c"] and realised.input_names == ["g"]
    assert not realised.trainable["c"] and not realised.inputs["g"]
