"""Rydberg translation: spin model ↔ controls, geometry from couplings, and the hardware limits."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import reduce

import numpy as np
import pytest

from qep_analog.devices.geometry import (
    chain_positions,
    lattice_positions,
    positions_for_couplings,
    zz_couplings,
)
from qep_analog.devices.profile import Calibration, DeviceProfile, LocalDetuning, read_profile
from qep_analog.devices.rydberg import IsingModel, RydbergControls, check_controls, realize, translate
from qep_analog.errors import ConstraintError
from qep_analog.model.pauli import PauliSum

ROUND_TRIP_RTOL = 1e-9


def _random_register(rng: np.random.Generator, n: int, spacing: float = 7.0) -> np.ndarray:
    """A jittered square patch: neighbours 6-8 µm apart, never closer than the 5 µm limit."""
    side = math.ceil(math.sqrt(n))
    grid = lattice_positions(side, side, spacing)[:n]
    return grid + rng.uniform(-0.5, 0.5, grid.shape)


def _random_model(rng: np.random.Generator, n: int, c6: float) -> IsingModel:
    couplings = zz_couplings(_random_register(rng, n), c6)
    return IsingModel(rng.uniform(-3, 3, n), float(rng.uniform(0.2, 5.0)), couplings)


def _relative(a: np.ndarray | float, b: np.ndarray | float) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("name", ["fresnel-like", "aquila-like"])
@pytest.mark.parametrize("seed", range(5))
def test_round_trip_on_random_models(name: str, seed: int) -> None:
    profile = read_profile(name)
    rng = np.random.default_rng(seed)
    model = _random_model(rng, int(rng.integers(2, 10)), profile.rydberg.c6)
    controls = translate(model, profile)  # positions found from the couplings
    back = realize(controls, profile)
    assert _relative(back.fields, model.fields) <= ROUND_TRIP_RTOL
    assert _relative(back.transverse, model.transverse) <= ROUND_TRIP_RTOL
    assert _relative(back.couplings, model.couplings) <= ROUND_TRIP_RTOL
    weights = controls.local_weights
    assert np.all((weights >= 0) & (weights <= 1))
    sign = profile.rydberg.local_detuning.sign  # type: ignore[union-attr]
    assert controls.local_amplitude <= 0 if sign == "negative" else controls.local_amplitude >= 0


def test_round_trip_with_calibration_applied() -> None:
    base = read_profile("fresnel-like")
    rng = np.random.default_rng(7)
    n = 6
    calibration = Calibration(
        rabi_scale=0.93,
        detuning_offset=0.4,
        interaction_scale=1.05,
        local_gains=tuple(rng.uniform(0.8, 1.0, n)),
        site_detuning_offsets=tuple(rng.uniform(-0.3, 0.3, n)),
    )
    profile = dataclasses.replace(base, calibration=calibration)
    model = _random_model(rng, n, base.rydberg.c6)
    controls = translate(model, profile)
    back = realize(controls, profile)
    for got, want in ((back.fields, model.fields), (back.couplings, model.couplings)):
        assert _relative(got, want) <= ROUND_TRIP_RTOL
    assert controls.rabi == pytest.approx(2 * model.transverse / 0.93, rel=1e-14)
    # The same controls on the uncalibrated device do something else.
    assert _relative(realize(controls, base).fields, model.fields) > 1e-3


def _kron(*factors: np.ndarray) -> np.ndarray:
    return reduce(np.kron, factors)


def test_realize_matches_the_device_hamiltonian(
    dense_reference: Callable[[PauliSum, int], np.ndarray],
) -> None:
    """Σ Ω/2 X − Σ δ_i n_i + Σ C6/r⁶ n_i n_j, built independently, equals the realised spin model."""
    profile = read_profile("fresnel-like")
    rng = np.random.default_rng(3)
    n = 4
    positions = _random_register(rng, n)
    controls = RydbergControls(positions, rabi=5.0, detuning=3.0, local_weights=rng.uniform(0, 1, n),
                               local_amplitude=-4.0)  # fmt: skip
    x = np.array([[0, 1], [1, 0]], dtype=float)
    number = np.diag([0.0, 1.0])
    eye = np.eye(2)

    def site(op: np.ndarray, i: int) -> np.ndarray:
        return _kron(*[op if k == i else eye for k in range(n)])

    c6 = profile.rydberg.c6
    device = sum(controls.rabi / 2 * site(x, i) for i in range(n))
    for i in range(n):
        device = device - (controls.detuning + controls.local_weights[i] * controls.local_amplitude) * site(
            number, i
        )
        for j in range(i + 1, n):
            r = np.linalg.norm(positions[i] - positions[j])
            device = device + c6 / r**6 * site(number, i) @ site(number, j)
    spin = dense_reference(realize(controls, profile).to_pauli_sum(), n)
    assert np.abs(spin - device).max() < 1e-12 * np.abs(device).max()


def test_interactions_shift_the_fields_and_translation_compensates() -> None:
    """Two atoms: h_i = δ_i / 2 − J with J = C6 / (4 r⁶)."""
    profile = read_profile("fresnel-like")
    r = 8.0
    j = profile.rydberg.c6 / (4 * r**6)
    controls = RydbergControls(np.array([[-r / 2, 0.0], [r / 2, 0.0]]), rabi=0.0, detuning=2.0)
    model = realize(controls, profile)
    assert model.couplings[0, 1] == pytest.approx(j, rel=1e-14)
    np.testing.assert_allclose(model.fields, [1.0 - j, 1.0 - j], rtol=1e-14)
    wanted = IsingModel(np.array([0.0, 0.0]), 1.0, model.couplings)
    assert translate(wanted, profile).detuning == pytest.approx(2 * j, rel=1e-14)


def test_chain_with_van_der_waals_tails() -> None:
    profile = read_profile("fresnel-like")
    nearest = np.array([2.0, 1.5, 2.5, 1.0])
    positions = chain_positions(nearest, profile.rydberg.c6)
    couplings = zz_couplings(positions, profile.rydberg.c6)
    np.testing.assert_allclose(np.diag(couplings, 1), nearest, rtol=1e-13)
    wanted = IsingModel(np.full(5, 0.5), 1.0, np.diag(nearest, 1) + np.diag(nearest, -1))
    with pytest.raises(ConstraintError, match="positions give couplings that differ"):
        translate(wanted, profile, positions=positions)
    controls = translate(wanted, profile, positions=positions, exact_couplings=False)
    back = realize(controls, profile)
    assert _relative(back.fields, wanted.fields) <= ROUND_TRIP_RTOL  # tails compensated in the fields
    # next-nearest tails J/64 for equal spacings; here the exact geometric value
    r02 = np.linalg.norm(positions[0] - positions[2])
    assert back.couplings[0, 2] == pytest.approx(profile.rydberg.c6 / (4 * r02**6), rel=1e-13)


def test_geometry_refuses_patterns_no_register_realises() -> None:
    c6 = 865723.02
    equal = np.full((4, 4), 1.0) - np.eye(4)  # a regular tetrahedron: 3D only
    with pytest.raises(ConstraintError, match="no 2D geometry realises"):
        positions_for_couplings(equal, c6, dimensions=2)
    positions = positions_for_couplings(equal, c6, dimensions=3)
    assert _relative(zz_couplings(positions, c6) + np.eye(4), equal + np.eye(4)) < 1e-9
    negative = np.array([[0.0, -1.0], [-1.0, 0.0]])
    with pytest.raises(ConstraintError, match="van der Waals couplings are positive"):
        positions_for_couplings(negative, c6)


def _message(controls: RydbergControls, profile: DeviceProfile) -> str:
    with pytest.raises(ConstraintError) as info:
        check_controls(controls, profile)
    message = str(info.value)
    assert "\n" not in message and profile.name in message
    return message


def test_every_limit_names_quantity_value_limit_and_unit() -> None:
    profile = read_profile("fresnel-like")
    pair = np.array([[-3.0, 0.0], [3.0, 0.0]])
    ok = RydbergControls(pair, rabi=1.0, detuning=0.0)
    check_controls(ok, profile)
    cases = {
        "Rabi frequency 13 rad/µs": dataclasses.replace(ok, rabi=13.0),
        "|detuning| 70 rad/µs": dataclasses.replace(ok, detuning=-70.0),
        "closer than the minimum spacing 5 µm": dataclasses.replace(ok, positions=pair / 2),
        "beyond the maximum radial distance 46 µm": dataclasses.replace(ok, positions=pair * 16),
        "wrong sign": dataclasses.replace(ok, local_weights=np.array([1.0, 0.0]), local_amplitude=1.0),
        "local detuning on a site 70 rad/µs": dataclasses.replace(
            ok, local_weights=np.array([1.0, 0.5]), local_amplitude=-70.0
        ),
        "outside [0, 1]": dataclasses.replace(ok, local_weights=np.array([1.2, 0.0]), local_amplitude=-1.0),
        "number of atoms 101": dataclasses.replace(ok, positions=lattice_positions(11, 10, 5.0)[:101]),
    }
    for expected, controls in cases.items():
        assert expected in _message(controls, profile)
    assert "limit 12.5664 rad/µs (2π·2 MHz)" in _message(cases["Rabi frequency 13 rad/µs"], profile)


def test_total_local_detuning_and_missing_map() -> None:
    base = read_profile("fresnel-like")
    caps = dataclasses.replace(base.rydberg, local_detuning=LocalDetuning("negative", 10.0, 15.0))
    profile = dataclasses.replace(base, capabilities=caps)
    controls = RydbergControls(np.array([[-3.0, 0.0], [3.0, 0.0]]), 1.0, 0.0, np.array([1.0, 1.0]), -8.0)
    message = _message(controls, profile)
    assert "total local detuning 16 rad/µs" in message and "exceeds the limit 15 rad/µs" in message
    no_map = dataclasses.replace(base, capabilities=dataclasses.replace(base.rydberg, local_detuning=None))
    model = IsingModel(np.array([0.0, 1.0]), 1.0, zz_couplings(controls.positions, base.rydberg.c6))
    with pytest.raises(ConstraintError, match="no local detuning"):
        translate(model, no_map)


def test_relaxed_profile_accepts_what_the_hardware_refuses() -> None:
    profile = read_profile("fresnel-like")
    controls = RydbergControls(np.array([[-3.0, 0.0], [3.0, 0.0]]), rabi=40.0, detuning=200.0)
    with pytest.raises(ConstraintError):
        check_controls(controls, profile)
    check_controls(controls, profile.relaxed())
