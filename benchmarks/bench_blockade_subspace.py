"""Blockade-subspace emulation against our full-space emulator and pulser-simulation.

Chains (1 × N) and square arrays (L × L) of atoms ``--spacing`` µm apart on the Fresnel-like profile,
the Rabi frequency set so that R_b/a = ``--ratio`` (R_b = (C6/Ω)^(1/6)), the `rydberg-smooth` recipe
(a 4 µs sin² ramp from −6 MHz to a detuning of 2Ω, uniform). Per case it prints the subspace's
dimension, the wall time of each engine asked for (``--engines``: ``subspace``, ``full`` — our
default full-space emulator —, ``pulser`` — pulser-simulation's QutipBackendV2), the ratios and
max_i |⟨n_i⟩_subspace − ⟨n_i⟩_other| against each other engine run, one row per blockade order K
(``--orders``: configurations with up to K excited blockaded pairs). The subspace runs at the
default tolerance (:data:`~qep_analog.emulation.blockade.DEFAULT_TOLERANCE`), radius ``auto``.

    python benchmarks/bench_blockade_subspace.py --cases 1x12 3x4 1x16 4x4 \
        --engines subspace full pulser --orders 0 2 3 [--json out.json]
    python benchmarks/bench_blockade_subspace.py --cases 5x5 --engines subspace --orders 0 1

Cases beyond 16 atoms run the subspace alone.
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


def run_case(
    case: str, engines: list[str], orders: list[int], spacing: float, ratio: float
) -> list[dict[str, Any]]:
    """One row per blockade order (the full space and pulser run once, beside every order's row)."""
    rows, cols = (int(k) for k in case.split("x"))
    schedule, profile = schedule_for(rows, cols, spacing, ratio)
    n = schedule.n_qubits
    common: dict[str, Any] = {"case": case, "n": n}
    reference: dict[str, np.ndarray] = {}
    if "full" in engines and n <= 16:
        from qep_analog.emulation.qutip_emulator import QutipEmulator

        start = time.perf_counter()
        full = QutipEmulator(profile).run(schedule)
        common["full_s"] = time.perf_counter() - start
        reference["full"] = occupations(full.state, None, n)
    if "pulser" in engines and n <= 16:
        from qep_analog.emulation.pulser_backend import run_pulser

        start = time.perf_counter()
        pulsed = run_pulser(schedule, profile)
        common["pulser_s"] = time.perf_counter() - start
        reference["pulser"] = occupations(pulsed.state, None, n)
    if "full" in reference and "pulser" in reference:
        common["dn_full_pulser"] = float(np.abs(reference["full"] - reference["pulser"]).max())
    common["occupations"] = {k: v.tolist() for k, v in reference.items()}
    if "subspace" not in engines:
        return [common]
    from qep_analog.emulation.qutip_emulator import QutipEmulator

    out = []
    for order in orders:
        emulator = QutipEmulator(profile, subspace="blockade", blockade_order=order)
        emulator.run(schedule_for(1, 3, spacing, ratio)[0])  # compiled kernels
        start = time.perf_counter()
        result = emulator.run(schedule)
        row = {**common, "order": order, "subspace_s": time.perf_counter() - start}
        assert result.subspace is not None
        row["dimension"] = result.subspace.dimension
        row["radius_um"] = result.subspace.radius
        values = occupations(result.state, result.subspace.configurations, n)
        row["occupations"] = {**common["occupations"], "subspace": values.tolist()}
        for other, value in reference.items():
            row[f"dn_{other}"] = float(np.abs(values - value).max())
        out.append(row)
    return out


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "-"


def _ratio(row: dict[str, Any], key: str) -> str:
    return f"{row[key] / row['subspace_s']:.1f}x" if key in row and "subspace_s" in row else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["1x12", "3x4", "1x16", "4x4", "5x5"])
    parser.add_argument("--engines", nargs="+", default=["subspace", "full"])
    parser.add_argument("--orders", type=int, nargs="+", default=[0, 2, 3], help="blockade orders")
    parser.add_argument("--spacing", type=float, default=5.0, help="µm")
    parser.add_argument("--ratio", type=float, default=1.5, help="R_b / a")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; spacing {args.spacing} µm, R_b/a = {args.ratio}")
    print(
        f"{'case':>5} {'N':>3} {'K':>2} {'dim':>7} {'r_c (µm)':>8} {'subspace (s)':>12} {'full (s)':>9} "
        f"{'pulser (s)':>10} {'full/sub':>8} {'pulser/sub':>10} {'|Δn| full':>10} {'|Δn| pulser':>11} "
        f"{'|Δn| full-pulser':>16}"
    )
    rows = []
    for case in args.cases:
        for row in run_case(case, args.engines, args.orders, args.spacing, args.ratio):
            rows.append(row)
            print(
                f"{case:>5} {row['n']:>3} {_cell(row, 'order', 'd'):>2} {_cell(row, 'dimension', 'd'):>7} "
                f"{_cell(row, 'radius_um', '.2f'):>8} {_cell(row, 'subspace_s', '.3f'):>12} "
                f"{_cell(row, 'full_s', '.2f'):>9} {_cell(row, 'pulser_s', '.1f'):>10} "
                f"{_ratio(row, 'full_s'):>8} {_ratio(row, 'pulser_s'):>10} "
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
