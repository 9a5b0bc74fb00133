"""Optimizers: Adam's bias-corrected first step, convergence, SGD, checkpointable state, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qep_analog.errors import ConfigError
from qep_analog.qep.optimizers import SGD, Adam, make_optimizer


def test_adam_first_step_is_lr_times_sign() -> None:
    """With zero moments, bias correction makes m_hat = g and v_hat = g^2 after one step, so with
    epsilon = 0 the first step is exactly lr * sign(g), whatever the size of g."""
    lr = 0.01
    theta = np.array([0.5, -1.0, 2.0, 0.3, 3.0])
    gradient = np.array([3.0, -0.2, 1e-3, -40.0, 0.7])
    new = Adam(lr, epsilon=0.0).step(theta, gradient)
    np.testing.assert_allclose(theta - new, lr * np.sign(gradient), rtol=0, atol=1e-12)


def test_adam_first_step_with_default_epsilon() -> None:
    """The default epsilon = 1e-8 sits outside the square root: step lr * g / (|g| + 1e-8)."""
    lr = 0.01
    theta = np.zeros(4)
    gradient = np.array([3.0, -0.2, 1e-3, -40.0])
    new = Adam(lr).step(theta, gradient)
    np.testing.assert_allclose(-new, lr * gradient / (np.abs(gradient) + 1e-8), rtol=0, atol=1e-12)
    # ... which is lr * sign(g) up to lr * 1e-8 / |g|
    np.testing.assert_allclose(-new, lr * np.sign(gradient), rtol=0, atol=lr * 1e-8 / 1e-3 * 1.01)


def test_adam_zero_gradient_component_does_not_move() -> None:
    theta = np.array([1.0, 2.0])
    new = Adam(0.1).step(theta, np.array([0.0, 1.0]))
    assert new[0] == theta[0]
    assert new[1] == pytest.approx(1.9, abs=1e-8)


def test_adam_does_not_modify_its_input() -> None:
    theta = np.array([1.0, 2.0])
    Adam(0.1).step(theta, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(theta, [1.0, 2.0])


def test_adam_converges_on_quadratic() -> None:
    """Minimise 0.5 (theta - c)^T D (theta - c) with an ill-conditioned diagonal D."""
    centre = np.array([1.0, -2.0, 0.5])
    curvature = np.array([1.0, 10.0, 0.1])
    theta = np.zeros(3)
    optimizer = Adam(0.05)
    for _ in range(3000):
        theta = optimizer.step(theta, curvature * (theta - centre))
    np.testing.assert_allclose(theta, centre, atol=1e-3)
    assert optimizer.t == 3000


def test_sgd_step() -> None:
    theta = np.array([1.0, -1.0])
    new = SGD(0.1).step(theta, np.array([2.0, -3.0]))
    np.testing.assert_allclose(new, [0.8, -0.7], rtol=0, atol=1e-15)
    assert SGD(0.1).state() == {}


def test_sgd_converges_on_quadratic() -> None:
    theta = np.array([3.0, -4.0])
    optimizer = make_optimizer("sgd", 0.2)
    for _ in range(200):
        theta = optimizer.step(theta, 2.0 * theta)
    assert np.abs(theta).max() < 1e-10


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_state_round_trip_continues_identically(name: str) -> None:
    rng = np.random.default_rng(7)
    gradients = rng.normal(size=(10, 4))
    reference = make_optimizer(name, 0.03)
    theta_ref = np.ones(4)
    resumed_first = make_optimizer(name, 0.03)
    theta = np.ones(4)
    for k in range(10):
        theta_ref = reference.step(theta_ref, gradients[k])
    for k in range(4):
        theta = resumed_first.step(theta, gradients[k])
    # the state goes through JSON as in a checkpoint
    state = json.loads(json.dumps(resumed_first.state()))
    resumed = make_optimizer(name, 0.03)
    resumed.load_state(state)
    for k in range(4, 10):
        theta = resumed.step(theta, gradients[k])
    np.testing.assert_array_equal(theta, theta_ref)


def test_adam_state_of_a_fresh_optimizer() -> None:
    state = Adam(0.1).state()
    assert state == {"t": 0, "m": None, "v": None}
    adam = Adam(0.1)
    adam.load_state(state)
    np.testing.assert_allclose(adam.step(np.zeros(2), np.array([1.0, -1.0])), [-0.1, 0.1], atol=1e-12)


def test_loaded_adam_state_differs_from_fresh() -> None:
    """Loading a state matters: a resumed Adam takes a different step from a fresh one."""
    adam = Adam(0.1)
    theta = adam.step(np.zeros(2), np.array([1.0, 1.0]))
    resumed = Adam(0.1)
    resumed.load_state(adam.state())
    fresh = Adam(0.1)
    g = np.array([-1.0, 0.5])
    assert not np.allclose(resumed.step(theta, g), fresh.step(theta, g))


@pytest.mark.parametrize("lr", [0.0, -0.01, float("nan")])
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_bad_learning_rate(name: str, lr: float) -> None:
    with pytest.raises(ConfigError, match="learning_rate") as info:
        make_optimizer(name, lr)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs", [{"beta1": 1.0}, {"beta2": -0.1}, {"beta1": 1.5}])
def test_adam_bad_betas(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="beta"):
        Adam(0.01, **kwargs)


def test_unknown_optimizer_name() -> None:
    with pytest.raises(ConfigError, match="'rmsprop'") as info:
        make_optimizer("rmsprop", 0.01)
    message = str(info.value)
    assert "adam" in message and "sgd" in message
    assert "\n" not in message
