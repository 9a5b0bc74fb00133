"""Ramp shapes and their boundary orders; the nudge follows the same ramp as every other term."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import THETA

from qep_analog.devices.ions import IonControls, realize
from qep_analog.devices.profile import read_profile
from qep_analog.errors import ConfigError
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import qep_phase_schedules
from qep_analog.sequences.recipes import (
    BEYOND_GAP_RECIPES,
    DEFAULT_RECIPES,
    build_schedule,
    default_recipe,
    load_recipe,
    parse_recipe,
    progress,
)
from qep_analog.sequences.schedule import hamiltonian_at
from qep_analog.sequences.shapes import (
    PROFILES,
    boundary_derivatives,
    boundary_order,
    exponential,
    exponential_speeds,
    quintic,
)

#: finite-difference step and tolerance of the boundary derivatives (relative to D)
STEP, DERIVATIVE_TOLERANCE = 1e-3, 1e-2


def _derivatives(shape: object, at: float, orders: int) -> list[float]:
    """d^m s/dτ^m at ``at`` (0 or 1) for m = 1..orders, by one-sided finite differences of
    the shape's polynomial fit on [at, at ± 8h] (degree 6: exact for the quintic)."""
    h = STEP if at == 0 else -STEP
    tau = at + h * np.arange(0, 9)
    s = shape(tau)  # type: ignore[operator]
    fit = np.polynomial.Polynomial.fit(tau - at, s, 6)
    return [float(fit.deriv(m)(0.0)) for m in range(1, orders + 1)]


@pytest.mark.parametrize("shape", ["linear", "cosine", "quintic"])
def test_each_shape_has_its_boundary_order_and_end_derivative(shape: str) -> None:
    """s', …, s^(k) vanish at both ends and |s^(k+1)| is the stated D (analytic: 1, π²/2, 60)."""
    k = boundary_order(shape)
    edges = boundary_derivatives(shape)
    assert k == {"linear": 0, "cosine": 1, "quintic": 2}[shape]
    assert edges == pytest.approx(
        {"linear": (1, 1), "cosine": (math.pi**2 / 2,) * 2, "quintic": (60, 60)}[shape]
    )
    for end, edge in zip((0.0, 1.0), edges, strict=True):
        derivatives = _derivatives(PROFILES[shape], end, k + 1)
        assert np.allclose(derivatives[:k], 0.0, atol=DERIVATIVE_TOLERANCE * edge)
        assert abs(derivatives[k]) == pytest.approx(edge, rel=DERIVATIVE_TOLERANCE)
    tau = np.linspace(0, 1, 101)
    s = PROFILES[shape](tau)
    assert s[0] == 0 and s[-1] == pytest.approx(1.0) and np.all(np.diff(s) > 0)
    assert PROFILES[shape](0.5) == pytest.approx(0.5)  # every one is symmetric about the middle


def test_quintic_ends_make_the_exponential_ramp_order_two() -> None:
    """s = E(q(τ)): s' = s'' = 0 at the ends, s''' = E'·60 there (E'(0), E'(1) analytic)."""
    rate = 4.8
    warped = lambda tau: exponential(quintic(tau), rate)  # noqa: E731
    speeds = exponential_speeds(rate)
    assert speeds == pytest.approx(
        (rate / (1 - math.exp(-rate)), rate * math.exp(-rate) / (1 - math.exp(-rate)))
    )
    edges = boundary_derivatives("exponential", "quintic", speeds)
    assert boundary_order("exponential", "quintic") == 2 and boundary_order("exponential") == 0
    for end, edge in zip((0.0, 1.0), edges, strict=True):
        derivatives = _derivatives(warped, end, 3)
        assert np.allclose(derivatives[:2], 0.0, atol=DERIVATIVE_TOLERANCE * edge)
        assert abs(derivatives[2]) == pytest.approx(edge, rel=DERIVATIVE_TOLERANCE)


def test_recipes_name_their_shape_and_order() -> None:
    document = {"schema": "qep-recipe/1", "name": "x", "platform": "rydberg", "shape": "smooth",
                "duration_us": 2, "initial_detuning_MHz": -5}  # fmt: skip
    assert parse_recipe(document).shape == "cosine"  # the old name reads as cosine
    assert parse_recipe({**document, "shape": "quintic"}).boundary_order == 2
    with pytest.raises(
        ConfigError, match=r"ends = 'quintic': only exponential and gap_aware ramps take ends"
    ):
        parse_recipe({**document, "shape": "quintic", "ends": "quintic"})
    with pytest.raises(ConfigError, match="ends"):
        parse_recipe({**document, "shape": "exponential", "ends": "smooth"})
    assert load_recipe("rydberg-smooth").shape == "cosine"  # the shipped file migrated
    assert (load_recipe("rydberg-quintic").shape, load_recipe("rydberg-quintic").boundary_order) == (
        "quintic",
        2,
    )
    smooth_ions = load_recipe("ion-exponential-smooth")
    assert (smooth_ions.shape, smooth_ions.ends, smooth_ions.boundary_order) == (
        "exponential",
        "quintic",
        2,
    )
    assert default_recipe("rydberg") == "rydberg-gap-quintic" == default_recipe("rydberg", 14)
    assert default_recipe("rydberg", 15) == "rydberg-quintic"  # beyond the exact gap's reach
    assert default_recipe("ion") == default_recipe("ion", 30) == "ion-exponential-smooth"
    names = [*DEFAULT_RECIPES.values(), *BEYOND_GAP_RECIPES.values()]
    assert all(load_recipe(name).boundary_order == 2 for name in names)
    gap_quintic = load_recipe("rydberg-gap-quintic")
    assert (gap_quintic.shape, gap_quintic.ends, gap_quintic.duration) == ("gap_aware", "quintic", 3.8)


def test_sampled_profile_follows_the_shape_and_records_it(chain_model: QEPModel) -> None:
    recipe = dataclasses.replace(load_recipe("rydberg-quintic"), duration=4.0, segments=100)
    times, s = progress(recipe, 4.0, 0.004, None)
    assert np.max(np.abs(s - quintic(times / 4.0))) < 1e-12  # breakpoints on the clock, s exact there
    profile = read_profile("fresnel-like")
    free = qep_phase_schedules(chain_model, profile, recipe, [], THETA, [1.0], 0.1, "Z" * 6)[0]
    meta = free.metadata
    assert (meta["shape"], meta["boundary_order"], meta["boundary_derivatives"]) == (
        "quintic",
        2,
        [60.0, 60.0],
    )


def _ion_model(n: int = 3) -> tuple[QEPModel, object]:
    profile = read_profile("yb171-chain")
    couplings = realize(IonControls(np.full(n, 1.5), 30.0), profile).couplings
    fixed = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    trainable = {f"b{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    return QEPModel(n, trainable, {"m": pauli_sum([(1.0, "Z0")])}, fixed), profile


def _difference(a: object, b: object) -> dict[str, float]:
    keys = set(a) | set(b)  # type: ignore[call-overload]
    return {k.label: a.get(k, 0.0) - b.get(k, 0.0) for k in keys if k.factors}  # type: ignore[attr-defined]


FIXED_SHAPES = ("linear", "cosine", "quintic", "exponential+quintic")


@pytest.mark.parametrize(
    ("platform", "shape"),
    [
        *((p, s) for p in ("rydberg", "ion") for s in FIXED_SHAPES),
        ("rydberg", "gap_aware+quintic"),
    ],
)
def test_every_term_and_the_nudge_follow_one_ramp(chain_model: QEPModel, platform: str, shape: str) -> None:
    """Each control of each phase is start + s(t)·(stop − start) with the same s(t) (the recipe's;
    a gap-aware ramp's from the free phase's path, for every phase); and the nudge —
    H_nudged(t) − H_free(t), static settings such as detuning-map weights included — is s(t) times
    its final value at every breakpoint."""
    if platform == "rydberg":
        model, profile, theta, beta = chain_model, read_profile("fresnel-like"), THETA, 0.1
        recipe = load_recipe("rydberg-quintic")
    else:
        model, profile = _ion_model()
        theta, beta, recipe = np.array([0.004, 0.002, 0.003]), 0.0005, load_recipe("ion-exponential-smooth")
    name, _, ends = shape.partition("+")
    recipe = dataclasses.replace(recipe, shape=name, ends=ends or "sharp", segments=50)
    schedules = qep_phase_schedules(model, profile, recipe, [], theta, [1.0], beta, "Z" * model.n_qubits)
    if name == "gap_aware":  # the free phase's drive gives s(t)
        times = schedules[0].controls["rabi"].times
        s = schedules[0].controls["rabi"].values / schedules[0].controls["rabi"].values[-1]
        assert np.all(np.diff(s) >= 0) and s[0] == 0 and s[-1] == 1
    else:
        times, s = progress(recipe, schedules[0].duration, profile.capabilities.clock, None)
    for schedule in schedules:
        for waveform in schedule.controls.values():
            np.testing.assert_array_equal(waveform.times, times)
            start, stop = waveform.values[0], waveform.values[-1]
            assert np.max(np.abs(waveform.values - (start + s * (stop - start)))) <= 1e-12 * max(
                1, abs(stop)
            )
    free = schedules[0]
    for nudged in schedules[1:]:
        final = _difference(
            hamiltonian_at(nudged, profile, times[-1]), hamiltonian_at(free, profile, times[-1])
        )
        size = max(abs(v) for v in final.values())
        assert size > 0.1 * beta  # the nudge is there at the end
        for t, progress_t in zip(times, s, strict=True):
            now = _difference(hamiltonian_at(nudged, profile, t), hamiltonian_at(free, profile, t))
            assert max(abs(now.get(k, 0.0) - progress_t * v) for k, v in final.items()) <= 1e-9 * size


def test_a_ramp_without_a_profile_is_refused() -> None:
    recipe = dataclasses.replace(load_recipe("rydberg-quintic"), shape="spline")
    with pytest.raises(ConfigError, match="shape 'spline' is unknown"):
        build_schedule(recipe, read_profile("fresnel-like"), None)  # type: ignore[arg-type]
