"""Reciprocity on measured data: equilibrium states pass, a preparation that does not follow the
nudge is reported."""

from __future__ import annotations

import numpy as np
import pytest

from qep_analog.backends.sampled import measure_reciprocity
from qep_analog.errors import MeasurementError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.reciprocity import NOT_EQUILIBRIUM, reciprocity_from_counts
from qep_analog.measurement.settings import measurement_plan
from qep_analog.model.standard import phase_sensor
from qep_analog.qep.gradients import reciprocity_check
from qep_analog.solvers.equilibrium import Equilibrium

PAIRS = [("s_ZA", "P00"), ("c_X0_ZA", "P01"), ("s_XA_XB", "P11")]
READOUT = ReadoutErrors.uniform(10, 0.025, 0.10)
DELTA = 0.1
SHOTS = 200_000


@pytest.fixture(scope="module")
def setup() -> tuple:
    model = phase_sensor()
    eq = Equilibrium(model)
    x = np.array([1.0, 1.5, 1.5])
    theta = np.random.default_rng(0).uniform(-0.1, 0.1, 51)
    theta[36:] = np.random.default_rng(1).normal(size=15)
    return model, eq, x, theta, measurement_plan(model)


def test_equilibrium_states_pass_and_agree_with_the_exact_response(setup: tuple) -> None:
    model, eq, x, theta, plan = setup
    exact = reciprocity_check(eq, x, theta, PAIRS).d_output_d_theta
    for k, pair in enumerate(PAIRS):
        data = measure_reciprocity(
            eq, x, theta, pair, plan, SHOTS, np.random.default_rng(k), delta_theta=DELTA, delta_nu=DELTA,
            readout=READOUT,
        )  # fmt: skip
        result = reciprocity_from_counts(model, plan, pair, data, DELTA, DELTA, mitigation=READOUT)
        assert result.consistent, result.describe()
        # both sides within 4 standard errors (plus 0.01 of finite-difference bias) of the exact value
        assert abs(result.d_output_d_theta - exact[k]) < 4 * result.d_output_d_theta_error + 0.01
        assert abs(result.d_generator_d_nu - exact[k]) < 4 * result.d_generator_d_nu_error + 0.01


def test_a_preparation_that_half_follows_the_nudge_is_reported(setup: tuple) -> None:
    """The device prepares the ground state of H(theta, nu/2): d<A>/dnu is halved, d<O>/dtheta is not."""
    model, eq, x, theta, plan = setup

    def lagging(xs: np.ndarray, thetas: np.ndarray, nus: np.ndarray) -> np.ndarray:
        return np.asarray(eq.prepare(xs, thetas, 0.5 * nus).states)

    pair = PAIRS[0]
    data = measure_reciprocity(
        eq, x, theta, pair, plan, SHOTS, np.random.default_rng(5), delta_theta=DELTA, delta_nu=DELTA,
        readout=READOUT, preparation=lagging,
    )  # fmt: skip
    result = reciprocity_from_counts(model, plan, pair, data, DELTA, DELTA, mitigation=READOUT)
    assert not result.consistent and abs(result.z) > 4
    assert result.verdict.startswith(NOT_EQUILIBRIUM)
    assert result.d_generator_d_nu == pytest.approx(0.5 * result.d_output_d_theta, abs=0.05)


def test_reciprocity_refuses_bad_input(setup: tuple) -> None:
    model, eq, x, theta, plan = setup
    with pytest.raises(MeasurementError, match="unknown pair"):
        measure_reciprocity(eq, x, theta, ("nope", "P00"), plan, 10, np.random.default_rng(0))
    data = measure_reciprocity(eq, x, theta, PAIRS[0], plan, 10, np.random.default_rng(0))
    del data["nu_minus"]
    with pytest.raises(MeasurementError, match="'nu_minus'"):
        reciprocity_from_counts(model, plan, PAIRS[0], data, DELTA, DELTA)
