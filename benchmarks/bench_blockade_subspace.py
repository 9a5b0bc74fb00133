"""Blockade-subspace emulation against our full-space emulator and pulser-simulation.

Chains (1 × N) and square arrays (L × L) of atoms ``--spacing`` µm apart on the Fresnel-like profile,
the Rabi frequency set so that R_b/a = ``--ratio`` (R_b = (C6/Ω)^(1/6)), the `rydberg-smooth` recipe
(a 4 µs sin² ramp from −6 MHz to a detuning of 2Ω, uniform). Per case it prints the subspace's
dimension, the wall time of each engine asked for (``--engines``: ``subspace``, ``full`` — our
default full-space emulator —, ``pulser`` — pulser-simulation's QutipBackendV2), the ratios and
max_i |⟨n_i⟩_subspace − ⟨n_i⟩_other| against each other engine run. The subspace runs at the default
tolerance (:data:`~qep_analog.emulation.blockade.DEFAULT_TOLERANCE`), radius ``auto``.

    python benchmarks/bench_blockade_subspace.py --cases 1x12 3x4 1x16 4x4 5x5 \
        --engines subspace full pulser [--json out.json]

Cases beyond 16 atoms run the subspace alone; ``pulser`` at 16 atoms takes many minutes (run it
alone: ``--cases 1x16 --engines pulser --json pulser16.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

from qep_analog.devices.geometry import zz_couplings
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.devices.rydberg import IsingModel, translate
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule


def schedule_for(
    rows: int, cols: int, spacing: float, ratio: float, detuning_over_rabi: float = 2.0
) -> tuple[Schedule, DeviceProfile]:
    """The sin² ramp of a rows × cols array, ``spacing`` µm apart, R_b/a = ``ratio``."""
    profile = read_profile("fresnel-like")
    grid = np.array([(c, r) for r in range(rows) for c in range(cols)], dtype=float)
    positions = spacing * (grid - grid.mean(axis=0))
    c6 = profile.calibration.interaction_scale * profile.rydberg.c6
    rabi = c6 / (ratio * spacing) ** 6
    n = len(positions)
    couplings = zz_couplings(positions, c6)
    # translate: δ_i = 2 h_i + 2 Σ_j J_ij − offset_i; ask for δ_i = detuning_over_rabi·Ω
    fields = (detuning_over_rabi * rabi + profile.site_offsets(n)) / 2 - couplings.sum(axis=1)
    transverse = rabi / (2 * profile.calibration.rabi_scale)
    controls = translate(IsingModel(fields, transverse, couplings), profile, positions=positions)
    return build_schedule(load_recipe("rydberg-smooth"), profile, controls), profile


def occupations(state: np.ndarray, configurations: np.ndarray | None, n: int) -> np.ndarray:
    """⟨n_i⟩ of a ket over ``configurations`` (None: all 2^n basis states), qubit 0 the MSB."""
    basis = np.arange(len(state)) if configurations is None else configurations
    bits = (basis[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1
    return np.asarray(np.abs(state) ** 2 @ bits)


def run_case(case: str, engines: list[str], spacing: float, ratio: float) -> dict[str, Any]:
    rows, cols = (int(k) for k in case.split("x"))
    schedule, profile = schedule_for(rows, cols, spacing, ratio)
    n = schedule.n_qubits
    out: dict[str, Any] = {"case": case, "n": n}
    values: dict[str, np.ndarray] = {}
    if "subspace" in engines:
        from qep_analog.emulation.qutip_emulator import QutipEmulator

        emulator = QutipEmulator(profile, subspace="blockade")
        small, _ = schedule_for(1, 3, spacing, ratio)
        emulator.run(small)  # compiled kernels
        start = time.perf_counter()
        result = emulator.run(schedule)
        out["subspace_s"] = time.perf_counter() - start
        out["dimension"] = len(result.state)
        out["radius_um"] = result.blockade_radius
        values["subspace"] = occupations(result.state, result.configurations, n)
    if "full" in engines and n <= 16:
        from qep_analog.emulation.qutip_emulator import QutipEmulator

        emulator = QutipEmulator(profile)
        start = time.perf_counter()
        full = emulator.run(schedule)
        out["full_s"] = time.perf_counter() - start
        values["full"] = occupations(full.state, None, n)
    if "pulser" in engines and n <= 16:
        from qep_analog.emulation.pulser_backend import run_pulser

        start = time.perf_counter()
        reference = run_pulser(schedule, profile)
        out["pulser_s"] = time.perf_counter() - start
        values["pulser"] = occupations(reference.state, None, n)
    out["occupations"] = {k: v.tolist() for k, v in values.items()}
    if "subspace" in values:
        for other in ("full", "pulser"):
            if other in values:
                out[f"dn_{other}"] = float(np.abs(values["subspace"] - values[other]).max())
    if "full" in values and "pulser" in values:
        out["dn_full_pulser"] = float(np.abs(values["full"] - values["pulser"]).max())
    return out


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["1x12", "3x4", "1x16", "4x4", "5x5"])
    parser.add_argument("--engines", nargs="+", default=["subspace", "full"])
    parser.add_argument("--spacing", type=float, default=5.0, help="µm")
    parser.add_argument("--ratio", type=float, default=1.5, help="R_b / a")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; spacing {args.spacing} µm, R_b/a = {args.ratio}")
    print(
        f"{'case':>5} {'N':>3} {'dim':>7} {'r_c (µm)':>8} {'subspace (s)':>12} {'full (s)':>9} "
        f"{'pulser (s)':>10} {'full/sub':>8} {'pulser/sub':>10} {'|Δn| full':>10} {'|Δn| pulser':>11} "
        f"{'|Δn| full-pulser':>16}"
    )
    rows = []
    for case in args.cases:
        row = run_case(case, args.engines, args.spacing, args.ratio)
        rows.append(row)
        ratio_full = row["full_s"] / row["subspace_s"] if "full_s" in row and "subspace_s" in row else None
        ratio_pulser = (
            row["pulser_s"] / row["subspace_s"] if "pulser_s" in row and "subspace_s" in row else None
        )
        print(
            f"{case:>5} {row['n']:>3} {_cell(row, 'dimension', 'd'):>7} "
            f"{_cell(row, 'radius_um', '.2f'):>8} "
            f"{_cell(row, 'subspace_s', '.3f'):>12} {_cell(row, 'full_s', '.2f'):>9} "
            f"{_cell(row, 'pulser_s', '.1f'):>10} "
            f"{'-' if ratio_full is None else f'{ratio_full:.1f}x':>8} "
            f"{'-' if ratio_pulser is None else f'{ratio_pulser:.0f}x':>10} "
            f"{_cell(row, 'dn_full', '.1e'):>10} {_cell(row, 'dn_pulser', '.1e'):>11} "
            f"{_cell(row, 'dn_full_pulser', '.1e'):>16}",
            flush=True,
        )
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
