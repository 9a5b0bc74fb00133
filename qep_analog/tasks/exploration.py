"""The method paper's unsupervised tasks on the 10-spin open cluster-Ising chain (TASKS.md §2-3).

H = -[theta_x sum X_j + theta_zz sum Z_j Z_{j+1} + 0.5 sum_{j=1}^{7} Z_j X_{j+1} Z_{j+2} + nu X_0 X_4]

In the model the output is ``m = -X_0 X_4``, so its nudge term nu * m is the paper's -nu X_0 X_4 and
the trainable terms carry the same overall minus sign.

- Phase exploration: maximise |<X_0 X_4>| over (theta_x, theta_zz) with one-sided QEP gradients
  (nudge 0.1 along sign<X_0 X_4>) and normalised steps of 0.1.
- Sensitivity optimisation: maximise the slope S = |<O>_{g1} - <O>_{g2}| / |g1 - g2| of O = X_0 X_4
  between two field values, every derivative of <O> by one-sided QEP (nudge +0.1 at both points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.gradients import qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium

CHAIN_LENGTH = 10
CLUSTER_STRENGTH = 0.5


def open_cluster_ising(n: int = CHAIN_LENGTH) -> QEPModel:
    """The open chain with trainable field ``theta_x`` and coupling ``theta_zz``; output -X_0 X_4."""
    return QEPModel(
        n_qubits=n,
        fixed=pauli_sum((-CLUSTER_STRENGTH, f"Z{j} X{j + 1} Z{j + 2}") for j in range(1, n - 2)),
        trainable={
            "theta_x": pauli_sum((-1.0, f"X{j}") for j in range(n)),
            "theta_zz": pauli_sum((-1.0, f"Z{j} Z{j + 1}") for j in range(n - 1)),
        },
        outputs={"m": pauli_sum([(-1.0, "X0 X4")])},
    )


@dataclass(frozen=True)
class Step:
    """One iteration: the parameters before the update and the objective there."""

    iteration: int
    parameters: tuple[float, ...]
    objective: float


def _unit(vector: NDArray) -> NDArray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def explore_phase(
    start: tuple[float, float],
    iterations: int = 100,
    nudge: float = 0.1,
    step_size: float = 0.1,
    equilibrium: Equilibrium | None = None,
) -> list[Step]:
    """Phase exploration from ``start`` = (theta_x, theta_zz); objective: the cost C = -|<X0 X4>|.

    Returns ``iterations + 1`` steps (the last one is the final point, not updated).
    """
    eq = equilibrium or Equilibrium(open_cluster_ising())
    no_inputs = np.zeros((1, 0))
    theta = np.array(start, dtype=float)
    steps = []
    for iteration in range(iterations + 1):
        free = eq.prepare(no_inputs, theta)
        correlation = -float(eq.compiled.output_values(free.strings)[0, 0])
        steps.append(Step(iteration, (float(theta[0]), float(theta[1])), -abs(correlation)))
        if iteration == iterations:
            break
        # L = -|<X0 X4>| = -|<m>|, so eps = dL/d<m> = sign <X0 X4>; the nudge is nudge * eps.
        error_signal = np.array([[np.sign(correlation)]])
        gradient = qep_gradient(eq, no_inputs, theta, error_signal, nudge, "one-sided", free=free)[0]
        theta = theta - step_size * _unit(gradient)
    return steps


def optimise_sensitivity(
    start: tuple[float, float, float],
    iterations: int = 100,
    nudge: float = 0.1,
    step_size: float = 0.1,
    equilibrium: Equilibrium | None = None,
) -> list[Step]:
    """Sensitivity optimisation from ``start`` = (theta_zz, g1, g2); objective: the slope S."""
    eq = equilibrium or Equilibrium(open_cluster_ising())
    no_inputs = np.zeros((2, 0))
    point = np.array(start, dtype=float)
    steps = []
    for iteration in range(iterations + 1):
        theta_zz, g1, g2 = point
        thetas = np.array([[g1, theta_zz], [g2, theta_zz]])
        free = eq.prepare(no_inputs, thetas)
        values = -eq.compiled.output_values(free.strings)[:, 0]  # <X0 X4> at g1 and g2
        distance = g1 - g2
        slope = abs(values[0] - values[1]) / abs(distance)
        steps.append(Step(iteration, (float(theta_zz), float(g1), float(g2)), float(slope)))
        if iteration == iterations:
            break
        # d<m>/d(g, theta_zz) at each point (eps = 1, nudge +nudge); <X0 X4> = -<m>.
        derivatives = -qep_gradient(eq, no_inputs, thetas, np.ones((2, 1)), nudge, "one-sided", free=free)
        sign = np.sign(values[0] - values[1])
        direction = np.sign(distance)
        gradient = np.array(
            [
                sign * (derivatives[0, 1] - derivatives[1, 1]) / abs(distance),
                sign * derivatives[0, 0] / abs(distance) - direction * slope / abs(distance),
                -sign * derivatives[1, 0] / abs(distance) + direction * slope / abs(distance),
            ]
        )
        point = point + step_size * _unit(gradient)
    return steps
