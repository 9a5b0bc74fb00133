"""Nudges that cross levels (qep_analog.qep.gradients.crossed_levels) are flagged, not trusted.

An output that commutes with H and differs on the two lowest levels has ||(V - <V>) psi0|| = 0, so
the small-gap check sees no nudge at all; yet beta eps V moves the two levels in opposite directions
and swaps them once 2 beta > gap. The flags are compared with a dense reference: the nudged ground
state of H + s beta eps V, diagonalised with numpy, has less than half its weight on the free one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_run import run_cli

from qep_analog.errors import LevelCrossingWarning, QEPWarning, SmallGapWarning
from qep_analog.execution.preparation import EquilibriumSpec, ExecutedEquilibrium
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.gradients import (
    GAP_FRACTION,
    exact_gradient,
    finite_difference_gradient,
    nudge_strength,
    qep_estimate,
    qep_gradient,
    qep_step,
)
from qep_analog.qep.losses import SquaredError
from qep_analog.qep.trainer import Trainer, TrainingConfig
from qep_analog.solvers.equilibrium import Equilibrium

#: QEP against exact linear response where no level crossed (symmetric scheme, beta < gap / 2).
AGREEMENT_TOL = 1e-6
#: A nudged ground state with less weight than this on the free one belongs to another level.
CROSSED_OVERLAP = 0.5

Dense = Callable[..., np.ndarray]


def issue_model() -> QEPModel:
    """-Z0Z1 - Z1Z2 - 0.001 Z0 + a X0, output Z2: at a = 0.2 the gap is 0.00196 between two levels
    with <Z2> = +1 and -1, and Z2 commutes with H (d<Z2>/da = 0)."""
    return QEPModel(
        n_qubits=3,
        fixed=pauli_sum([(-1.0, "Z0 Z1"), (-1.0, "Z1 Z2"), (-0.001, "Z0")]),
        trainable={"a": pauli_sum([(1.0, "X0")])},
        outputs={"m": pauli_sum([(1.0, "Z2")])},
    )


def commuting_model(rng: np.random.Generator, n: int) -> QEPModel:
    """A random ferromagnetic Ising chain with weak random Z fields, X fields on every qubit but
    the last as parameters and Z on the last qubit as the output (it commutes with H)."""
    fixed = [(-float(rng.uniform(0.5, 1.5)), f"Z{q} Z{q + 1}") for q in range(n - 1)]
    fixed += [(float(rng.uniform(-0.01, 0.01)), f"Z{q}") for q in range(n)]
    return QEPModel(
        n_qubits=n,
        fixed=pauli_sum(fixed),
        trainable={f"a{q}": pauli_sum([(1.0, f"X{q}")]) for q in range(n - 1)},
        outputs={"m": pauli_sum([(1.0, f"Z{n - 1}")])},
    )


def overlaps(dense: Dense, model: QEPModel, x: Any, theta: Any, eps: Any, beta: float) -> list[float]:
    """|<psi0|psi_s>|^2 for s = +1, -1 from numpy's dense diagonalisation (the reference)."""
    x, theta, eps = (np.asarray(v, dtype=float) for v in (x, theta, eps))
    free = np.linalg.eigh(dense(model, x, theta))[1][:, 0]
    out = []
    for sign in (1.0, -1.0):
        nudged = np.linalg.eigh(dense(model, x, theta, sign * beta * eps))[1][:, 0]
        out.append(float(abs(np.vdot(free, nudged)) ** 2))
    return out


def test_the_issue_example_warns_and_a_smaller_beta_does_not() -> None:
    eq = Equilibrium(issue_model())
    theta, eps = np.array([0.2]), [[1.0]]
    free = eq.prepare([], theta, with_gap=True)
    assert free.gaps is not None
    assert free.gaps[0] == pytest.approx(0.00196, abs=1e-5)
    assert nudge_strength(eq, free, np.array(eps))[0] == pytest.approx(0.0, abs=1e-9)
    # the reference: exact linear response and central differences both give 0
    assert exact_gradient(eq, [], theta, eps, free=free)[0, 0] == pytest.approx(0.0, abs=AGREEMENT_TOL)
    assert finite_difference_gradient(eq, [], theta, eps)[0, 0] == pytest.approx(0.0, abs=AGREEMENT_TOL)
    for scheme in ("symmetric", "one-sided"):
        with pytest.warns(LevelCrossingWarning, match="moved another level below") as caught:
            wrong = qep_gradient(eq, [], theta, eps, 1e-3, scheme, free=free)
        assert len(caught) == 1
        assert abs(wrong[0, 0]) > 0.1  # the crossed level's generator: -0.1886 (symmetric)
    with warnings.catch_warnings():
        warnings.simplefilter("error", QEPWarning)
        right = qep_gradient(eq, [], theta, eps, 1e-4, free=free)
    assert right[0, 0] == pytest.approx(0.0, abs=AGREEMENT_TOL)


@pytest.mark.parametrize("seed", range(4))
def test_commuting_outputs_flag_exactly_the_crossed_nudges(seed: int, model_dense: Dense) -> None:
    """Random commuting models, beta from 0.12 to 1.92 gaps: flagged iff the reference says the
    nudged ground state is another level; unflagged gradients agree with exact linear response.
    (At 2 beta = gap exactly the two levels are degenerate and the reference's choice arbitrary.)"""
    rng = np.random.default_rng(seed)
    flags, truths = [], []
    for ratio in np.linspace(0.12, 1.92, 10):
        model = commuting_model(rng, int(rng.integers(3, 5)))
        eq = Equilibrium(model)
        theta = rng.uniform(-0.4, 0.4, len(model.trainable))
        eps = [float(rng.choice([-1.0, 1.0]))]
        free = eq.prepare([], theta, with_gap=True)
        assert free.gaps is not None
        beta = float(free.gaps[0] * ratio)
        estimate = qep_estimate(eq, [], theta, [eps], beta, free=free)
        assert estimate.crossed is not None
        crossed = bool(estimate.crossed[0])
        flags.append(crossed)
        truths.append(min(overlaps(model_dense, model, [], theta, eps, beta)) < CROSSED_OVERLAP)
        if not crossed:
            exact = exact_gradient(eq, [], theta, [eps], free=free)
            np.testing.assert_allclose(estimate.gradient, exact, atol=AGREEMENT_TOL)
    assert flags == truths
    assert any(truths) and not all(truths)


@pytest.mark.parametrize("seed", range(6))
def test_generic_models_at_the_small_gap_limit_flag_no_crossing(
    seed: int, random_model: Callable[..., QEPModel], model_dense: Dense
) -> None:
    """At the largest nudge the small-gap check accepts, a generic model crosses no level: nothing
    warns, and the reference keeps the nudged states on the free level."""
    rng = np.random.default_rng(100 + seed)
    model = random_model(4, seed)
    eq = Equilibrium(model)
    x, theta, eps = rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 3), rng.normal(size=2)
    free = eq.prepare([x], theta, with_gap=True)
    assert free.gaps is not None
    beta = 0.99 * GAP_FRACTION * float(free.gaps[0]) / float(nudge_strength(eq, free, np.array([eps]))[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallGapWarning)
        qep_gradient(eq, [x], theta, [eps], beta, free=free)
    assert min(overlaps(model_dense, model, x, theta, eps, beta)) > CROSSED_OVERLAP


def test_no_crossing_check_without_gaps_or_at_temperature() -> None:
    eq = Equilibrium(issue_model())
    free = eq.prepare([], [0.2])
    assert qep_estimate(eq, [], [0.2], [[1.0]], 1e-3, free=free).crossed is None
    thermal = Equilibrium(issue_model(), temperature=0.01)
    assert qep_estimate(thermal, [], [0.2], [[1.0]], 1e-3).crossed is None


@pytest.mark.parametrize("executed", [False, True])
def test_a_qep_step_counts_crossed_nudges_as_small_gap(executed: bool) -> None:
    model = issue_model()
    eq: Any = ExecutedEquilibrium(EquilibriumSpec(model)) if executed else Equilibrium(model)
    x, targets = np.zeros((2, 0)), np.array([[0.0], [-1.0]])  # eps = 2 and 4: both cross at 1e-3
    crossing = qep_step(eq, x, [0.2], targets, SquaredError(), 1e-3, with_gap=True)
    assert crossing.crossed is not None and crossing.crossed.tolist() == [True, True]
    assert crossing.small_gap_count() == 2
    quiet = qep_step(eq, x, [0.2], targets, SquaredError(), 1e-5, with_gap=True)
    assert quiet.small_gap_count() == 0


class CrossingTask:
    """A supervised task on the issue's model: every input the same, target <Z2> = 0."""

    model = issue_model()
    loss = SquaredError()

    def sample_batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((size, 0)), np.zeros((size, 1))

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self.sample_batch(np.random.default_rng(0), 2)

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return {"mse": float(((outputs - targets) ** 2).mean())}

    def initial_parameters(self, rng: np.random.Generator) -> np.ndarray:
        return np.array([0.2])

    def describe(self) -> dict[str, Any]:
        return {"task": "crossing"}


@pytest.mark.parametrize("shots", [None, 1000])
def test_training_records_count_crossed_nudges(shots: int | None, tmp_path: Path) -> None:
    task = CrossingTask()
    inputs, targets = task.sample_batch(np.random.default_rng(0), 3)
    counts = []
    for beta in (1e-3, 1e-5):
        config = TrainingConfig(shots=shots, beta=beta, check_gap=True, solver_tol=1e-10, batch_size=3)
        trainer = Trainer(task, config, tmp_path / str(beta))
        _, record = trainer.gradient(np.array([0.2]), inputs, targets, np.random.default_rng(1))
        counts.append(record["small_gap"])
    assert counts == [3, 0]


def test_the_gradient_command_warns_of_a_crossing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "crossing.yaml"
    path.write_text(
        "schema: qep-model/1\nn_qubits: 3\n"
        'fixed: [[-1.0, "Z0 Z1"], [-1.0, "Z1 Z2"], [-0.001, "Z0"]]\n'
        'trainable: {a: [[1.0, "X0"]]}\noutputs: {m: [[1.0, "Z2"]]}\n',
        encoding="utf-8",
    )
    status, _, err = run_cli(capsys, ["gradient", str(path), "--theta", "a=0.2", "--compare", "exact"])
    assert status == 0
    assert "moved another level below the free ground state" in err
    status, _, err = run_cli(capsys, ["gradient", str(path), "--theta", "a=0.2", "--beta", "1e-4"])
    assert status == 0 and "warning" not in err


def test_the_gradient_command_refuses_a_parameter_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ab.yaml"
    text = (
        'schema: qep-model/1\nn_qubits: 2\nfixed: [[-1.0, "Z0 Z1"]]\n'
        'trainable: {a: [[1.0, "X0"]], b: [[1.0, "Z1"]]}\noutputs: {m: [[1.0, "Z0"]]}\n'
    )
    path.write_text(text, encoding="utf-8")
    status, _, err = run_cli(capsys, ["gradient", str(path), "--theta", "a=0.3"])
    assert status == 2
    assert "--theta: b not given and without a default in the model" in err
    path.write_text(text + "defaults: {b: 0.2}\n", encoding="utf-8")  # (b = 0: degenerate)
    status, _, err = run_cli(capsys, ["gradient", str(path), "--theta", "a=0.3"])
    assert status == 0, err


def saturated_sensor() -> QEPModel:
    """One sensor qubit, n = (1 - Z)/2, with its field theta n and a weak drive 0.01 X: at
    theta = 0.5 it sits in n = 0 (saturated: d<n>/dtheta = 2 g^2 / theta^3 ~ 1.6e-3)."""
    return QEPModel(
        n_qubits=1,
        fixed=pauli_sum([(0.01, "X0")]),
        trainable={"h": pauli_sum([(0.5, "I"), (-0.5, "Z0")])},
        outputs={"n": pauli_sum([(0.5, "I"), (-0.5, "Z0")])},
    )


def test_a_nudge_across_a_saturated_sensor_points_downhill() -> None:
    """The finite nudge a device fine-tuning needs when a hidden offset saturates its sensors
    (examples/results/ion_sensor/README.md): with eps = -1 (the loss falls as <n> rises) a nudge
    beta < theta leaves the state where it is and the estimate is the tiny linear response; beta >
    theta moves the nudged state across the level, and the estimate is the finite difference across
    it, (<n>_+ - <n>_-)/(2 beta) ~ 1/(2 beta) > 0: a step against it lowers the field toward the
    crossing, where <n> reaches its target. Analytic: H = theta n + g X is -(theta/2) Z + g X up to a
    constant, so <n> = (1 - t/sqrt(t^2 + g^2))/2 at t = theta/2."""
    eq = Equilibrium(saturated_sensor())
    theta, eps = np.array([0.5]), [[-1.0]]

    def level(t: float) -> float:
        return 0.5 * (1.0 - (t / 2) / np.hypot(t / 2, 0.01))

    linear = -(level(0.5 + 1e-6) - level(0.5 - 1e-6)) / 2e-6  # eps * d<n>/dtheta
    with warnings.catch_warnings():
        warnings.simplefilter("error", QEPWarning)
        small = qep_gradient(eq, [], theta, eps, 0.1, warn_small_gap=False)[0, 0]
    assert small == pytest.approx((level(0.4) - level(0.6)) / 0.2, rel=1e-6)
    assert small == pytest.approx(linear, rel=0.1)  # the linear response, 1.6e-3
    with pytest.warns(LevelCrossingWarning, match="moved another level below"):
        large = qep_gradient(eq, [], theta, eps, 1.0, free=eq.prepare([], theta, with_gap=True))[0, 0]
    assert large == pytest.approx((level(-0.5) - level(1.5)) / 2.0, rel=1e-6)
    assert large > 200 * small  # 0.5 against 1.7e-3
