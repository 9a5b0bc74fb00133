"""A step through the emulated backend carries the bias estimate of its ramps next to its error bars,
and the estimate bounds the difference to the exact QEP gradient of the realised model."""

from __future__ import annotations

import dataclasses

import numpy as np

import qep_analog as qa
from qep_analog.backends.configure import backend_for_run
from qep_analog.backends.jobs import phase_jobs
from qep_analog.backends.registry import make_backend
from qep_analog.backends.schedules import BUDGET_POINTS
from qep_analog.backends.step import measured_step
from qep_analog.emulation.diagnostics import path_spectrum
from qep_analog.emulation.preparation_bias import gradient_bias, nudge_operator
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.losses import SquaredError

BETA = 0.1


def _pair() -> tuple[QEPModel, qa.DeviceProfile, np.ndarray]:
    model = QEPModel(
        2,
        {"h": pauli_sum([(1.0, "X0"), (1.0, "X1")]), "delta": pauli_sum([(1.0, "Z0"), (1.0, "Z1")])},
        {"m": pauli_sum([(1.0, "Z0")])},
        pauli_sum([(1.0, "Z0 Z1")]),
    )
    return model, qa.read_profile("fresnel-like", relaxed=True), np.array([2.0, 1.0])


def test_an_exact_step_carries_a_bias_that_bounds_its_error() -> None:
    model, profile, theta = _pair()
    recipe = dataclasses.replace(qa.load_recipe("rydberg-quintic"), duration=3.0)
    backend = make_backend("qutip", model, profile, recipe)
    inputs, targets = np.zeros((2, 0)), np.array([[0.5], [-0.5]])
    step = measured_step(
        backend, model, inputs, theta, targets, SquaredError(), beta=BETA, scheme="symmetric",
        bases=["ZZ", "XX"], shots=None,
    )  # fmt: skip
    assert step.bias is not None and step.bias.shape == (2, 2) and np.all(step.bias > 0)
    assert step.mean_gradient_bias is not None
    np.testing.assert_allclose(step.mean_gradient_bias, step.bias.mean(axis=0))
    realised = backend.model
    equilibrium = qa.Equilibrium(realised, tol=1e-10)
    eps = SquaredError().error_signal(step.outputs, targets)
    exact = qa.qep_gradient(equilibrium, inputs, theta, eps, BETA, "symmetric")
    assert np.all(np.abs(step.gradients - exact) <= step.bias)
    # switched off: no estimate
    quiet = make_backend("qutip", model, profile, recipe, bias_budget=False)
    off = measured_step(
        quiet, model, inputs, theta, targets, SquaredError(), beta=BETA, scheme="symmetric",
        bases=["ZZ", "XX"], shots=None,
    )  # fmt: skip
    assert off.bias is None and off.mean_gradient_bias is None


def test_the_fake_lab_and_the_cloud_carry_the_bias_of_the_schedules_they_play() -> None:
    """fake-lab and pasqal-cloud run schedules the recipe builds, so their steps carry the same bias
    estimate as the qutip backend: that of the free phase's path (:func:`gradient_bias` on the
    schedule :func:`qep_phase_schedules` builds, the spectrum at 17 points); off with
    ``bias_budget: false``."""
    model, _, theta = _pair()
    profile = qa.read_profile("fresnel-like")  # the cloud takes the strict profile only
    recipe = qa.load_recipe(qa.default_recipe("rydberg"))
    inputs, targets = np.zeros((1, 0)), np.array([[0.5]])
    lab = backend_for_run("fake-lab", model, profile, run_dir=".", seed=3, options={"bias_budget": True})
    cloud = make_backend("pasqal-cloud", model, profile, recipe, connection=object())
    step = measured_step(
        lab, model, inputs, theta, targets, SquaredError(), beta=BETA, scheme="symmetric",
        bases=["ZZ", "XX"], shots=200,
    )  # fmt: skip
    assert step.bias is not None and step.bias.shape == (1, 2)
    realised = lab.model
    eps = SquaredError().error_signal(step.outputs, targets)
    free = qa.qep_phase_schedules(realised, profile, recipe, inputs[0], theta, eps[0], BETA, "ZZ")[0]
    nudge = nudge_operator(list(realised.outputs.values()), eps[0])
    spectrum = path_spectrum(free, profile, BUDGET_POINTS, nudge)
    expected = gradient_bias(free, profile, realised, eps[0], BETA, spectrum).bias
    np.testing.assert_allclose(step.bias[0], expected, rtol=1e-9)
    jobs = [
        job for job in phase_jobs(inputs, theta, eps, BETA, "symmetric", ["ZZ"], 10) if job.phase == "free"
    ]
    np.testing.assert_allclose(cloud.preparation_bias(jobs, BETA, eps)[0], expected, rtol=1e-9)
    quiet = make_backend("pasqal-cloud", model, profile, recipe, connection=object(), bias_budget=False)
    assert quiet.preparation_bias(jobs, BETA, eps) is None
    silent = backend_for_run(
        "fake-lab", model, profile, run_dir=".", seed=3, options={"bias_budget": False}
    )
    assert silent.preparation_bias(jobs, BETA, eps) is None
