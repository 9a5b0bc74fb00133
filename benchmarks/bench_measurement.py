"""Gradient error of the measured QEP gradient of the phase sensor, against shots and beta.

For three inputs (one per phase) at the task's initial parameters (seed 0) and the squared-error
signal of their labels, the gradient is measured from bitstrings in the 9 settings (readout errors of
the fresnel-like profile, mitigated), and compared with the exact linear-response gradient:

- relative error ||g - g_exact|| / ||g_exact|| against shots per setting and phase (beta fixed);
- the same at a fixed total budget against beta, with the model MSE = c1 beta^4 + c2 / (M beta^2)
  (c1 from the exact QEP bias at two betas, c2 from the exact per-shot variances) and its beta*.

    python benchmarks/bench_measurement.py [--repeats 40]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qep_analog.backends.sampled import prepare_phases
from qep_analog.devices.profile import read_profile
from qep_analog.measurement.gradient import (
    bias_coefficients,
    choose_beta,
    gradient_from_counts,
    sample_phases,
    setting_variances,
)
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.settings import measurement_plan
from qep_analog.qep.gradients import exact_gradient, qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.tasks.phase_sensor import PhaseSensorTask, phase_labels

INPUTS = np.array([[2.5, 0.5, 1.0], [0.5, 3.0, 0.5], [0.5, 0.5, 3.0]])  # cluster, ZZ, paramagnet
SHOTS = (10, 100, 1000, 10000)
BETAS_FOR_SHOTS = (0.4, 0.1)  # the paper's beta, and a smaller one
BETAS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5)
BUDGET_PER_CELL = 1000  # shots per setting and phase in the beta scan: 18 000 per input


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    started = time.perf_counter()
    task = PhaseSensorTask()
    model = task.model
    eq = Equilibrium(model)
    plan = measurement_plan(model)
    theta = task.initial_parameters(np.random.default_rng(0))
    profile = read_profile("fresnel-like")
    readout = ReadoutErrors.from_profile(profile, model.n_qubits)
    rng = np.random.default_rng(1)
    free = eq.prepare(INPUTS, theta)
    outputs = eq.compiled.output_values(free.strings)
    eps = task.loss.error_signal(outputs, phase_labels(INPUTS))
    exact = exact_gradient(eq, INPUTS, theta, eps)
    print(
        f"phase sensor: {len(model.parameter_names)} parameters, {len(plan.settings)} settings "
        f"(lower bound {plan.lower_bound}); readout eps = {readout.false_positive[0]:g}, "
        f"eps' = {readout.false_negative[0]:g}; {args.repeats} repetitions per input, 3 inputs"
    )

    norm2 = float(sum(np.linalg.norm(exact[b]) ** 2 for b in range(3)))

    def qep(x: np.ndarray, error_signal: np.ndarray, beta: float) -> np.ndarray:
        """Noise-free QEP gradient (its bias is reported, so the small-gap warning is not needed)."""
        return qep_gradient(eq, x, theta, error_signal, beta, warn_small_gap=False)

    def relative_error(beta: float, shots: int, mitigate: bool = True) -> float:
        """sqrt(mean over repetitions of sum_b ||g_b - exact_b||^2 / sum_b ||exact_b||^2)."""
        total = 0.0
        for b in range(3):
            states = prepare_phases(eq, INPUTS[b], theta, eps[b], beta, free_phase=False)
            for _ in range(args.repeats):
                phases = sample_phases(states, plan, shots, rng, readout)
                g = gradient_from_counts(
                    model, plan, phases, beta, mitigation=readout if mitigate else None
                )
                total += float(np.linalg.norm(g.values - exact[b]) ** 2)
        return float(np.sqrt(total / args.repeats / norm2))

    def bias_error(beta: float) -> float:
        return float(np.sqrt(((qep(INPUTS, eps, beta) - exact) ** 2).sum() / norm2))

    print("\nrelative error vs shots per setting and phase (symmetric; raw: readout errors not mitigated)")
    print(
        "bias floor (no shot noise): "
        + ", ".join(f"beta {b}: {bias_error(b):.4f}" for b in BETAS_FOR_SHOTS)
    )
    print(f"{'shots':>7} {'total/input':>12} {'b=0.4 mitig.':>13} {'b=0.4 raw':>10} {'b=0.1 mitig.':>13}")
    for shots in SHOTS:
        row = [relative_error(0.4, shots), relative_error(0.4, shots, False), relative_error(0.1, shots)]
        print(f"{shots:>7} {shots * 18:>12} {row[0]:>13.4f} {row[1]:>10.4f} {row[2]:>13.4f}")

    print(f"\nrelative error vs beta at a fixed budget ({BUDGET_PER_CELL} shots per setting and phase)")
    fit_betas = np.array([0.05, 0.1])
    kappa = np.concatenate(
        [bias_coefficients(fit_betas, [qep(INPUTS[b], eps[b], f)[0] for f in fit_betas]) for b in range(3)]
    )
    c2 = 0.0
    for b in range(3):
        states = prepare_phases(eq, INPUTS[b], theta, eps[b], 0.05, free_phase=False)
        c2 += float(setting_variances(model, plan, states, 1.0, readout=readout).sum())
    choice = choose_beta(kappa, c2, BUDGET_PER_CELL)
    print(
        f"model: c1 = {choice.c1:.4g}, c2 = {choice.c2:.4g} (sums over 3 inputs); "
        f"beta* = {choice.beta:.3f}, bias^2 {choice.bias_term:.3g} + variance {choice.variance_term:.3g}"
    )
    print("relative errors are sqrt(sum over inputs of squared error / sum of ||g_exact||^2)")
    print(f"{'beta':>6} {'measured':>9} {'model':>7} {'bias^2':>9} {'variance':>9} {'true bias':>9}")
    for beta in BETAS:
        measured = relative_error(beta, BUDGET_PER_CELL)
        bias2, variance = choice.terms(beta)
        true_bias = bias_error(beta)
        model_error = np.sqrt((bias2 + variance) / norm2)
        columns = f"{measured:>9.4f} {model_error:>7.4f} {bias2:>9.3g} {variance:>9.3g}"
        print(f"{beta:>6.2f} {columns} {true_bias:>9.4f}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
