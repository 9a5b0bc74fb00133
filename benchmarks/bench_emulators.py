"""Our emulator (its default exact propagation and its QuTiP method) against pulser-simulation
(QutipBackendV2) on the same Rydberg schedules.

A chain of N atoms 7 µm apart on the Fresnel-like profile (a staggered local detuning through the
detuning map), a 4 µs sin² ramp; the emulators evolve the same compiled schedule, noiseless. Prints
per N the wall time of each (best of ``--repeats``), pulser's time over ours and the final-state
fidelity of pulser's and ours.

    python benchmarks/bench_emulators.py [--sizes 8 10 12] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qep_analog.devices.geometry import zz_couplings
from qep_analog.devices.profile import read_profile
from qep_analog.devices.rydberg import IsingModel, translate
from qep_analog.emulation.pulser_backend import run_pulser
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.sequences.recipes import build_schedule, load_recipe


def schedule_for(n: int):  # type: ignore[no-untyped-def]
    profile = read_profile("fresnel-like")
    positions = np.column_stack([7.0 * (np.arange(n) - (n - 1) / 2), np.zeros(n)])
    couplings = zz_couplings(positions, profile.rydberg.c6)
    fields = 0.5 * (-1.0) ** np.arange(n) + 1.0
    controls = translate(IsingModel(fields, 2.0, couplings), profile, positions=positions)
    return build_schedule(load_recipe("rydberg-smooth"), profile, controls), profile


def best(function, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 10, 12])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(
        f"{'N':>3} {'ours (s)':>9} {'QuTiP (s)':>10} {'pulser (s)':>11} {'pulser/ours':>12} "
        f"{'QuTiP/ours':>11} {'fidelity':>12}"
    )
    for n in args.sizes:
        schedule, profile = schedule_for(n)
        emulator, reference = QutipEmulator(profile), QutipEmulator(profile, method="qutip")
        emulator.run(schedule)  # compiled kernels
        ours_time, ours = best(lambda: emulator.run(schedule), args.repeats)  # noqa: B023
        qutip_time, _ = best(lambda: reference.run(schedule), args.repeats)  # noqa: B023
        pulser_time, pulser = best(lambda: run_pulser(schedule, profile), args.repeats)  # noqa: B023
        fidelity = abs(np.vdot(pulser.state, ours.state)) ** 2  # type: ignore[attr-defined]
        print(
            f"{n:>3} {ours_time:>9.3f} {qutip_time:>10.3f} {pulser_time:>11.3f} "
            f"{pulser_time / ours_time:>11.1f}x {qutip_time / ours_time:>10.1f}x {fidelity:>12.8f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
