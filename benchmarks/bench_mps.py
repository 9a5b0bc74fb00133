"""One QEP gradient on MPS at N = 64: the phase sensor on a 62-site periodic cluster-Ising chain
(+ 2 sensor qubits), TeNPy DMRG (bond dimension <= ``--chi``), a free ground state from a product
state, then the two nudged ones (symmetric, beta 0.4) warm-started from it; every one of the
model's 3 x 62 + 51 + 4 Pauli strings measured in each state.

    python benchmarks/bench_mps.py [--chi 32] [--n-chain 62]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from qep_analog.model.standard import phase_sensor
from qep_analog.solvers.mps import MPSEquilibrium, MPSOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chi", type=int, default=32)
    parser.add_argument("--n-chain", type=int, default=62)
    parser.add_argument("--energy-tol", type=float, default=1e-6)
    args = parser.parse_args()
    model = phase_sensor(args.n_chain)
    rng = np.random.default_rng(0)
    theta = np.where(np.arange(51) < 36, rng.uniform(-0.1, 0.1, 51), rng.standard_normal(51))
    x = np.array([[2.5, 0.5, 1.0]])  # cluster (SPT) phase, inside
    eps = np.array([[1.0, -0.5, 0.2]])
    options = MPSOptions(chi_max=args.chi, energy_tol=args.energy_tol, max_sweeps=20, warm_max_sweeps=6)
    eq = MPSEquilibrium(model, options)
    print(f"N = {model.n_qubits} qubits, {len(eq.compiled.strings)} strings, MPS range {eq.range}, "
          f"chi_max {args.chi}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    start = time.perf_counter()
    free = eq.prepare(x, theta)
    t_free = time.perf_counter() - start
    start = time.perf_counter()
    nudges = np.array([0.4, -0.4])[:, None] * eps
    nudged = eq.prepare(np.repeat(x, 2, 0), theta, nudges, start=list(free.states) * 2)
    t_nudged = time.perf_counter() - start
    gradient = (eq.compiled.generator_values(nudged.strings[0] - nudged.strings[1])) / 0.8
    for name, prepared, seconds in (("free (cold)", free, t_free), ("nudged +/- (warm)", nudged, t_nudged)):
        states = prepared.states
        print(f"{name:18s} {seconds:7.2f} s  sweeps {[s.sweeps for s in states]}  "  # type: ignore[union-attr]
              f"bond dimension {max(s.chi for s in states)}  "  # type: ignore[union-attr]
              f"truncation error {max(s.truncation for s in states):.1e}")  # type: ignore[union-attr]  # fmt: skip
    print(f"one QEP gradient (free + 2 nudged + all strings): {t_free + t_nudged:.2f} s; "
          f"E0 = {free.energies[0]:.10f}; |g|_max = {np.abs(gradient).max():.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
