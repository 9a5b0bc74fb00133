"""Qubit-wise commuting grouping: the paper's sensor needs exactly 9 settings; hand examples."""

from __future__ import annotations

import itertools

import pytest

from qep_analog.errors import MeasurementError
from qep_analog.measurement.settings import (
    MeasurementSetting,
    group_commuting,
    measurement_plan,
    model_strings,
    qubitwise_commute,
)
from qep_analog.model.pauli import PauliString, parse_operator
from qep_analog.model.standard import phase_sensor


def string(text: str) -> PauliString:
    (only,) = parse_operator(text)
    return only


def test_qubitwise_commute_hand_cases() -> None:
    assert qubitwise_commute(string("X0 Z1"), string("X0"))
    assert qubitwise_commute(string("X0"), string("Y1"))
    assert not qubitwise_commute(string("X0 Z1"), string("Z0"))
    # X0 X1 and Z0 Z1 commute as operators but not qubit-wise
    assert not qubitwise_commute(string("X0 X1"), string("Z0 Z1"))


def check_plan_is_valid(plan: object, strings: list[PauliString]) -> None:
    assert sorted(plan.strings) == sorted(strings)  # type: ignore[attr-defined]
    for setting in plan.settings:  # type: ignore[attr-defined]
        assert all(setting.covers(s) for s in setting.strings)
        for a, b in itertools.combinations(setting.strings, 2):
            assert qubitwise_commute(a, b)


def test_phase_sensor_needs_exactly_nine_settings() -> None:
    model = phase_sensor()
    plan = measurement_plan(model)
    strings = model_strings(model)
    assert len(strings) == 51  # the outputs ZA, ZB, ZA ZB are generator strings as well
    assert len(plan.settings) == 9
    # the nine sensor products sigma_A sigma'_B conflict pairwise: no plan has fewer than 9
    assert plan.lower_bound == 9 and plan.optimal
    check_plan_is_valid(plan, strings)
    assert all(len(s.bases) == 10 for s in plan.settings)
    for output in ("Z8", "Z9", "Z8 Z9"):
        assert any(setting.covers(string(output)) for setting in plan.settings)


def test_z_only_sensor_and_xz_sensor() -> None:
    for letters, expected in (("Z", 9), ("XZ", 9)):
        plan = measurement_plan(phase_sensor(system_operators=letters))
        assert len(plan.settings) == expected and plan.optimal


def test_small_hand_example() -> None:
    strings = [string(t) for t in ("X0", "Z0", "X0 X1", "Z1", "Y2")]
    plan = group_commuting(strings, 3)
    # X0 conflicts with Z0; X0 X1 conflicts with Z0 and Z1: two settings suffice
    assert len(plan.settings) == 2 and plan.lower_bound == 2
    check_plan_is_valid(plan, strings)
    assert plan.settings[plan.setting_of(string("X0"))].bases[0] == "X"
    assert {s.bases[2] for s in plan.settings} <= {"Y", "Z"}


def test_settings_refuse_bad_input() -> None:
    with pytest.raises(MeasurementError, match="one of X, Y, Z"):
        MeasurementSetting("ZQ")
    with pytest.raises(MeasurementError, match="cannot measure X0"):
        MeasurementSetting("ZZ", (string("X0"),))
    with pytest.raises(MeasurementError, match="beyond 2 qubits"):
        group_commuting([string("X3")], 2)
    with pytest.raises(MeasurementError, match="no non-identity"):
        group_commuting([], 2)
    plan = group_commuting([string("X0")], 1)
    with pytest.raises(MeasurementError, match="no setting"):
        plan.setting_of(string("Z0"))
