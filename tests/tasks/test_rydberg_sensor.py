"""The Rydberg sensor's parameterisation: dθ/dφ against central differences, and the blockade cutoff
of the position gradient."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qep_analog.backends.exact import ExactBackend
from qep_analog.devices.profile import read_profile
from qep_analog.errors import ConfigError
from qep_analog.qep.gradients import exact_gradient
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask

START = ((0.0, 6.0), (5.0, -6.0))


def sensor(cutoff: float | None = None) -> RydbergSensorTask:
    return RydbergSensorTask(
        profile=read_profile("aquila-like"), sensor_start=START, init_spread=1.0, test_size=10,
        blockade_cutoff_rad_per_us=cutoff,
    )  # fmt: skip


def test_the_jacobian_is_the_coefficients_derivative() -> None:
    geometry = sensor().parameterisation
    phi = sensor().initial_parameters(np.random.default_rng(0))
    h = 1e-5
    numeric = np.column_stack(
        [
            (geometry.coefficients(phi + h * e) - geometry.coefficients(phi - h * e)) / (2 * h)
            for e in np.eye(len(phi))
        ]
    )
    assert np.allclose(geometry.jacobian(phi), numeric, rtol=1e-6, atol=1e-6)


def test_the_cutoff_leaves_out_exactly_the_pairs_above_it() -> None:
    task = sensor(10.0)
    phi = task.initial_parameters(np.random.default_rng(0))
    full = sensor().parameterisation.jacobian(phi)
    cut = task.parameterisation.jacobian(phi)
    couplings = task.parameterisation.coefficients(phi)[: len(task.parameterisation.pairs)]
    above = couplings > 10.0
    assert 0 < above.sum() < len(above)  # the test point has pairs on both sides
    assert np.all(cut[: len(above)][above] == 0.0)
    assert np.array_equal(cut[: len(above)][~above], full[: len(above)][~above])
    assert np.array_equal(cut[len(above) :], full[len(above) :])  # the detunings are untouched


def test_the_cutoffs_bias_on_exact_states_is_small() -> None:
    """At the sensor's initial parameters the pairs above 10 rad/µs carry under 5 % of the whole
    gradient dL/dφ (measured 2.0 %; 10 % of the coordinates' part), though with the readout's false
    positives they make most of its shot noise (BENCHMARKS.md)."""
    full, cut = sensor(), sensor(10.0)
    phi = full.initial_parameters(np.random.default_rng(0))
    x, y = full.sample_batch(np.random.default_rng([0, 1]), 10)
    backend = ExactBackend(full.model, full.profile)
    eq = backend.equilibrium
    theta = np.tile(full.parameterisation.coefficients(phi), (len(x), 1))
    free = eq.prepare(x, theta)
    eps = full.loss.error_signal(eq.compiled.output_values(free.strings), y)
    per_sample = exact_gradient(eq, x, theta, eps, free=free).mean(axis=0)
    g_full = full.parameterisation.jacobian(phi).T @ per_sample
    g_cut = cut.parameterisation.jacobian(phi).T @ per_sample
    assert np.linalg.norm(g_cut - g_full) < 0.05 * np.linalg.norm(g_full)
    assert np.array_equal(g_cut[:9], g_full[:9])
    assert np.linalg.norm(g_cut[9:] - g_full[9:]) > 0.01 * np.linalg.norm(g_full[9:])


def test_a_bad_cutoff_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"blockade_cutoff_rad_per_us = -1\.0 breaks the rule"):
        sensor(-1.0)
    assert dataclasses.replace(sensor(10.0).parameterisation, blockade_cutoff=None).blockade_cutoff is None


def test_a_spacing_below_the_device_is_one_line() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^rydberg sensor: spacing 2 µm is below 1\.02 × the minimum spacing 4 µm of device "
        r"'aquila-like' \(the margin",
    ):
        RydbergSensorTask(profile=read_profile("aquila-like"), sensor_start=START, spacing_um=2.0)
