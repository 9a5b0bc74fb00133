"""Trapped-ion chain physics for N = 50 Yb171+ ions: equilibrium positions (Newton), transverse modes
and the Ising coupling matrix J, each the best of several repeats, and their sum (goal < 0.1 s).

Trap: ω_z = 2π·0.2 MHz, ω_x = 2π·4.5 MHz (zig-zag threshold for 50 ions: 2π·3.77 MHz); beat note
μ = ω_x + 2π·50 kHz, Ω = 2π·0.5 MHz on every ion, 355 nm Raman beams at 90°.

    python benchmarks/bench_ion_modes.py [--ions 50] [--repeats 20]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

from qep_analog.devices.ion_chain import (
    YB171_MASS_AMU,
    dimensionless_positions,
    equilibrium_positions,
    fit_power_law,
    ising_couplings,
    lamb_dicke,
    recoil_frequency,
    spin_only_parameter,
    transverse_modes,
    zigzag_threshold,
)

TWO_PI = 2 * math.pi
AXIAL = TWO_PI * 0.2  # rad/µs
RADIAL = TWO_PI * 4.5  # rad/µs
DETUNING = TWO_PI * 0.05  # μ − ω_x, rad/µs
RABI = TWO_PI * 0.5  # rad/µs


def best(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls (after one warm-up call) and the last result."""
    result = function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ions", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    n = args.ions
    recoil = recoil_frequency(YB171_MASS_AMU, 355.0, 90.0)
    mu = RADIAL + DETUNING

    t_positions, u = best(lambda: dimensionless_positions(n), args.repeats)
    t_modes, (frequencies, modes) = best(lambda: transverse_modes(u, AXIAL, RADIAL), args.repeats)
    t_couplings, couplings = best(
        lambda: ising_couplings(RABI, recoil, mu, frequencies, modes), args.repeats
    )

    def everything() -> Any:
        omega, b = transverse_modes(dimensionless_positions(n), AXIAL, RADIAL)
        return ising_couplings(RABI, recoil, mu, omega, b)

    t_total, _ = best(everything, args.repeats)

    z = equilibrium_positions(n, YB171_MASS_AMU, AXIAL)
    j0, alpha = fit_power_law(couplings)
    eta = lamb_dicke(YB171_MASS_AMU, 355.0, 90.0, frequencies)
    print(
        f"N = {n} Yb171+, ω_z = 2π·{AXIAL / TWO_PI:.3g} MHz, ω_x = 2π·{RADIAL / TWO_PI:.3g} MHz "
        f"(zig-zag threshold 2π·{zigzag_threshold(n, AXIAL) / TWO_PI:.3f} MHz), best of {args.repeats}"
    )
    print(f"chain length {z[-1] - z[0]:.1f} µm, smallest spacing {min(z[1:] - z[:-1]):.2f} µm")
    print(f"modes 2π·{frequencies[0] / TWO_PI:.4f} … {frequencies[-1] / TWO_PI:.4f} MHz")
    print(
        f"J0 = 2π·{j0 / TWO_PI * 1e3:.3f} kHz, α = {alpha:.3f}, spin-only parameter "
        f"{spin_only_parameter(RABI, eta, mu, frequencies, modes):.3g}"
    )
    print(f"{'positions':<22} {t_positions * 1e3:8.3f} ms")
    print(f"{'transverse modes':<22} {t_modes * 1e3:8.3f} ms")
    print(f"{'J matrix':<22} {t_couplings * 1e3:8.3f} ms")
    print(f"{'total (one call chain)':<22} {t_total * 1e3:8.3f} ms   (goal < 100 ms)")


if __name__ == "__main__":
    main()
