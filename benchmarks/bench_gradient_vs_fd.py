"""One gradient of the phase sensor (N = 10 qubits, 51 parameters) three ways, on the same solver:
symmetric QEP (free + 2 nudged ground states, warm-started), central finite differences (free +
102 warm-started solves), and the exact linear-response (adjoint) gradient (free + one linear
solve). Also central finite differences with plain SciPy ``eigsh`` for reference.

    python benchmarks/bench_gradient_vs_fd.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from reference import ScipyReference

from qep_analog.errors import SmallGapWarning
from qep_analog.model.standard import phase_sensor
from qep_analog.qep.gradients import exact_gradient, finite_difference_gradient, qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium

R = TypeVar("R")


def timed(function: Callable[[], R], repeats: int) -> tuple[float, R]:
    result = function()  # warm-up (compilation)
    start = time.perf_counter()
    for _ in range(repeats):
        result = function()
    return (time.perf_counter() - start) / repeats, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    model = phase_sensor()
    eq = Equilibrium(model, tol=1e-8)
    rng = np.random.default_rng(3)
    x = np.array([[1.2, 1.0, 1.8]])
    theta = np.concatenate([rng.uniform(-0.1, 0.1, 36), rng.standard_normal(15)])
    eps = np.array([[0.6, -0.4, 0.3]])
    warnings.simplefilter("ignore", SmallGapWarning)

    # Each gradient starts from nothing: the free ground state (for the error signal) is part of
    # its cost; the gap check is not (it is the same for all and reported separately).
    def prepared():  # type: ignore[no-untyped-def]
        return eq.prepare(x, theta)

    t_free, _ = timed(prepared, args.repeats)
    t_gap, _ = timed(lambda: eq.prepare(x, theta, with_gap=True), args.repeats)
    t_qep, g_qep = timed(lambda: qep_gradient(eq, x, theta, eps, 1e-3, free=prepared()), args.repeats)
    t_fd, g_fd = timed(lambda: finite_difference_gradient(eq, x, theta, eps, free=prepared()), args.repeats)
    t_fd_cold, g_fd_cold = timed(
        lambda: finite_difference_gradient(eq, x, theta, eps, free=prepared(), warm_start=False),
        max(args.repeats // 3, 1),
    )
    t_exact, g_exact = timed(lambda: exact_gradient(eq, x, theta, eps, free=prepared()), args.repeats)

    reference = ScipyReference(model)

    def scipy_fd() -> np.ndarray:
        h = 1e-4
        out = np.empty(len(theta))
        free = reference.ground_state(reference.hamiltonian(x[0], theta, np.zeros(3)))
        for j in range(len(theta)):
            values = []
            for sign in (1.0, -1.0):
                moved = theta.copy()
                moved[j] += sign * h
                psi = reference.ground_state(reference.hamiltonian(x[0], moved, np.zeros(3)), free)
                values.append(reference.expectations(psi, reference.outputs) @ eps[0])
            out[j] = (values[0] - values[1]) / (2 * h)
        return out

    t_scipy, g_scipy = timed(scipy_fd, max(args.repeats // 5, 1))
    print(f"{'method':<40} {'time ms':>9} {'max |g - exact|':>16}")
    rows = [
        ("QEP symmetric, beta 1e-3 (3 solves)", t_qep, g_qep),
        ("finite differences, warm (103 solves)", t_fd, g_fd),
        ("finite differences, cold (103 solves)", t_fd_cold, g_fd_cold),
        ("exact linear response (1 solve + CG)", t_exact, g_exact),
        ("finite differences, plain SciPy eigsh", t_scipy, g_scipy),
    ]
    print(f"one free ground state: {t_free * 1000:.2f} ms; with the gap check: {t_gap * 1000:.2f} ms")
    for name, t, g in rows:
        print(f"{name:<40} {t * 1000:>9.2f} {np.abs(g - g_exact).max():>16.2e}")
    print(f"finite differences (warm) / QEP:          {t_fd / t_qep:.1f} x")
    print(f"finite differences (cold) / QEP:          {t_fd_cold / t_qep:.1f} x")
    print(f"plain SciPy finite differences / QEP:     {t_scipy / t_qep:.1f} x")
    print(f"exact linear response in free solves:    {t_exact / t_free:.2f}")


if __name__ == "__main__":
    main()
