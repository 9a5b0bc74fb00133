# ruff: noqa: E402  (BLAS threads are limited before numpy is imported)
"""Ground-state phase boundaries of the 1D Rydberg chain by finite DMRG (MPSEquilibrium).

H = Ω/2 Σ_i X_i − δ Σ_i n_i + Σ_{i<j, |i−j| <= cutoff} Ω (R_b/a)^6 / |i−j|^6 n_i n_j, Ω = 1,
open chains of L ≡ 1 (mod 12) atoms. The open edges pin the density wave: an edge atom has fewer
neighbours, so both edges are excited and, for L odd and L − 1 divisible by 3, the Z2 pattern
(0, 2, 4, ...) and the Z3 pattern (0, 3, 6, ...) both fit without a domain wall.

Order parameters: the density-wave amplitude over the central (L + 1)/2 sites,
O_p = (p / L_c) |Σ_j e^{2πij/p} (⟨n_j⟩ − n̄)|, p = 2 (Z2) and p = 3 (Z3); 1 for a perfect pattern.
At a continuous transition the edge-induced amplitude in the middle of the chain decays as
L^(−β/ν), so O_p L^(β/ν) of two lengths cross at the critical point (β/ν = 1/8 for the Ising Z2
transition, 2/15 for the three-state Potts value of the Z3 transition). The critical δ for each
R_b/a is that crossing for the pairs (L1, L2) and (L2, L3), found by bisection on
ln(O_p L^(β/ν)) differences; the drift between the pairs measures the finite-size error. Where
the onset is sharp (a jump of the order parameter, as where Z3 sets in from incommensurate
modulations at large R_b/a), the crossing lies at or just above the jump of the largest chain; the
δ where the largest chain's O_p L^(β/ν) rises through half the onset threshold is recorded too,
and the labels leave out the interval between it and the crossing.

Stages per R_b/a: (A) a coarse δ scan at the smallest length (steps of ``--coarse-step``) that finds
the first δ where O_p L^(β/ν) exceeds ``--onset-threshold`` (the order that sets in) and records
the dominant wavevector q* of the Friedel oscillations ⟨n_j⟩; (B) the crossing search with all
lengths, every DMRG warm-started from the nearest δ already solved at that length (bisection of
each pair, then of the rise of the largest length). The
incommensurate window of an R_b/a is the run of coarse points just below the onset whose q* lies
strictly between the Z3 (2π/3) and Z2 (π) wavevectors.

    python benchmarks/rydberg_phase_boundaries.py [--lengths 25 37 49] [--chi 32] [--workers 2]
        [--out qep_analog/tasks/data/rydberg_chain_phases.json]
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from itertools import pairwise
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.solvers.mps import MPSEquilibrium, MPSOptions, MPSState
from qep_analog.storage import write_json

SCHEMA = "qep-phase-boundaries/1"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "qep_analog" / "tasks" / "data" / "rydberg_chain_phases.json"
#: β/ν of the order parameter at each transition (Ising; three-state Potts)
EXPONENTS = {"Z2": 1 / 8, "Z3": 2 / 15}
PERIOD = {"Z2": 2, "Z3": 3}
#: q* within this many π of a commensurate wavevector counts as commensurate
Q_TOLERANCE = 0.03
#: a pair is on the ordered side only where the larger length has O_p L^(β/ν) >= this fraction of
#: the onset threshold
SIGNAL_FLOOR = 0.5
#: below the onset, O_p L^(β/ν) above this fraction of the onset threshold counts as critical region
CRITICAL_FRACTION = 0.25


def rydberg_chain(n_atoms: int, cutoff: int) -> QEPModel:
    """The chain as a QEP model: inputs ``delta`` (−Σ n_j) and ``blockade`` (Σ n_i n_j / |i−j|^6 up to
    ``cutoff``, multiplied by (R_b/a)^6); the drive Ω/2 Σ X_j (Ω = 1) is fixed. The trainable field
    and the output are placeholders that a QEP model requires (θ = 0)."""
    blockade = pauli_sum(
        (1.0 / r**6, f"N{i} N{i + r}") for r in range(1, cutoff + 1) for i in range(n_atoms - r)
    )
    return QEPModel(
        n_qubits=n_atoms,
        fixed=pauli_sum((0.5, f"X{j}") for j in range(n_atoms)),
        inputs={"delta": pauli_sum((-1.0, f"N{j}") for j in range(n_atoms)), "blockade": blockade},
        trainable={"field": pauli_sum((1.0, f"Z{j}") for j in range(n_atoms))},
        outputs={"density": pauli_sum((1.0 / n_atoms, f"N{j}") for j in range(n_atoms))},
    )


def model_inputs(delta: float, rb_over_a: float) -> list[float]:
    """The input vector x = (δ/Ω, (R_b/a)^6) of :func:`rydberg_chain`."""
    return [float(delta), float(rb_over_a) ** 6]


def density_wave(density: NDArray, period: int) -> float:
    """O_p over the central (L + 1)/2 sites: (p / L_c) |Σ_j e^{2πij/p} (n_j − n̄)|."""
    n_atoms = len(density)
    width = (n_atoms + 1) // 2
    start = (n_atoms - width) // 2
    window = density[start : start + width]
    phases = np.exp(2j * np.pi * np.arange(start, start + width) / period)
    return float(period / width * abs(np.sum(phases * (window - window.mean()))))


def dominant_wavevector(density: NDArray) -> float:
    """q*/π in [1/2, 1]: the peak of |Σ_j e^{iqj} (n_j − n̄)| over the chain without its edge atoms."""
    inner = density[1:-1] - density[1:-1].mean()
    q = np.linspace(0.5 * np.pi, np.pi, 501)
    spectrum = np.abs(np.exp(1j * np.outer(q, np.arange(1, len(density) - 1))) @ inner)
    return float(q[np.argmax(spectrum)] / np.pi)


@dataclass
class ChainSolver:
    """DMRG on one length, caching the states by δ (warm starts from the nearest one)."""

    n_atoms: int
    rb_over_a: float
    options: MPSOptions
    cutoff: int
    states: dict[float, MPSState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.solver = MPSEquilibrium(rydberg_chain(self.n_atoms, self.cutoff), self.options)

    def solve(self, delta: float) -> dict[str, Any]:
        start = None
        if self.states:
            start = self.states[min(self.states, key=lambda d: abs(d - delta))]
        began = time.perf_counter()
        coefficients = self.solver.coefficients(model_inputs(delta, self.rb_over_a), [0.0], None)[0]
        state = self.solver.solve(coefficients, start)
        seconds = time.perf_counter() - began
        self.states[delta] = state
        z = np.real(state.psi.expectation_value("Sigmaz"))[self.solver.position]
        density = (1.0 - z) / 2.0
        return {
            "L": self.n_atoms,
            "delta": delta,
            "O_Z2": density_wave(density, 2),
            "O_Z3": density_wave(density, 3),
            "q_over_pi": dominant_wavevector(density),
            "energy": state.energy,
            "sweeps": state.sweeps,
            "chi": state.chi,
            "truncation": state.truncation,
            "seconds": round(seconds, 3),
        }


def scaled(point: dict[str, Any], order: str, exponent: float) -> float:
    return float(point[f"O_{order}"] * point["L"] ** exponent)


def pair_difference(
    points: dict[int, dict[str, Any]], small: int, large: int, order: str, exponent: float
) -> float:
    """ln(O L^(β/ν)) of the larger length minus that of the smaller (> 0 on the ordered side)."""
    return math.log(scaled(points[large], order, exponent)) - math.log(
        scaled(points[small], order, exponent)
    )


def ordered_side(
    points: dict[int, dict[str, Any]], small: int, large: int, order: str, exponent: float, floor: float
) -> bool:
    """Whether δ lies above the crossing of the pair: the larger length has the larger scaled order
    parameter and it is at least ``floor`` (deep in the disordered phase both amplitudes are tiny
    and their ratio is noise from the incommensurate Friedel oscillations, not a crossing)."""
    return (
        pair_difference(points, small, large, order, exponent) >= 0.0
        and scaled(points[large], order, exponent) >= floor
    )


def crossing(
    table: dict[float, dict[int, dict[str, Any]]],
    small: int,
    large: int,
    order: str,
    exponent: float,
    floor: float,
) -> float | None:
    """The δ where the scaled order parameters of two lengths cross on the way into the order: the
    last change from the disordered to the ordered side (:func:`ordered_side`) among the solved δ,
    by linear interpolation of the log-difference when it changes sign there (else the middle of
    the interval); None without such a change."""
    deltas = sorted(d for d, row in table.items() if small in row and large in row)
    sides = [ordered_side(table[d], small, large, order, exponent, floor) for d in deltas]
    for k in range(len(deltas) - 2, -1, -1):
        if not sides[k] and sides[k + 1]:
            a, b = deltas[k], deltas[k + 1]
            fa = pair_difference(table[a], small, large, order, exponent)
            fb = pair_difference(table[b], small, large, order, exponent)
            if fa < 0.0 <= fb:
                return float(a + (b - a) * (-fa) / (fb - fa))
            return float(0.5 * (a + b))
    return None


def locate(
    chains: dict[int, ChainSolver],
    table: dict[float, dict[int, dict[str, Any]]],
    order: str,
    start: float,
    pair: tuple[int, int],
    settings: argparse.Namespace,
    log: list[str],
) -> None:
    """Solve the two lengths of ``pair`` at enough δ for their crossing of ``order``: from ``start``
    (the coarse onset) up in coarse steps until on the ordered side, down until on the disordered
    side, then bisection down to ``resolution`` (the log-difference is far from linear across a
    sharp onset, so no secant steps). Points go into ``table``."""
    exponent = EXPONENTS[order]
    floor = SIGNAL_FLOOR * settings.onset_threshold

    def side(delta: float) -> bool:
        delta = round(delta, 4)
        row = table.setdefault(delta, {})
        for n in pair:
            if n not in row:
                row[n] = chains[n].solve(delta)
        return ordered_side(row, *pair, order, exponent, floor)

    high = start
    while not side(high):
        if high + settings.coarse_step > settings.delta_max + 1e-9:
            log.append(f"{order} {pair}: not on the ordered side up to δ = {high:.3f}")
            return
        high += settings.coarse_step
    low = high - settings.coarse_step
    while side(low):
        high = low
        if low - settings.coarse_step < settings.delta_min - 1e-9:
            log.append(f"{order} {pair}: on the ordered side down to δ = {low:.3f}")
            return
        low -= settings.coarse_step
    while high - low > settings.resolution:
        middle = 0.5 * (low + high)
        if side(middle):
            high = middle
        else:
            low = middle


def rise(
    chain: ChainSolver,
    table: dict[float, dict[int, dict[str, Any]]],
    order: str,
    settings: argparse.Namespace,
) -> list[float] | None:
    """Where O_p L^(β/ν) of one length first reaches the signal floor as δ grows: [highest δ below,
    lowest δ at or above], bisected twice from a coarse step. Below the crossing a sharp onset of
    the largest chain lies here; None if no solved δ reaches the floor."""
    n, exponent = chain.n_atoms, EXPONENTS[order]
    floor = SIGNAL_FLOOR * settings.onset_threshold

    def signal(delta: float) -> bool:
        delta = round(delta, 4)
        row = table.setdefault(delta, {})
        if n not in row:
            row[n] = chain.solve(delta)
        return scaled(row[n], order, exponent) >= floor

    solved = sorted(d for d, row in table.items() if n in row)
    above = [d for d in solved if signal(d)]
    if not above:
        return None
    high = min(above)
    below = [d for d in solved if d < high]
    low = max(below) if below else high - settings.coarse_step
    while signal(low):
        high = low
        if low - settings.coarse_step < settings.delta_min - 1e-9:
            return [settings.delta_min, high]
        low -= settings.coarse_step
    for _ in range(2):
        if high - low <= settings.resolution:
            break
        middle = 0.5 * (low + high)
        if signal(middle):
            high = middle
        else:
            low = middle
    return [round(low, 4), round(high, 4)]


def chain_options(settings: argparse.Namespace, n_atoms: int) -> MPSOptions:
    """DMRG options of the scan; the MPS follows the chain (site j at position j)."""
    return MPSOptions(
        chi_max=settings.chi, energy_tol=settings.energy_tol, max_sweeps=20, warm_max_sweeps=12,
        order=tuple(range(n_atoms)),
    )  # fmt: skip


def scan_rb(job: tuple[float, argparse.Namespace]) -> dict[str, Any]:
    """Stages A and B at one R_b/a; returns its record (crossings, window, points)."""
    rb, settings = job
    began = time.perf_counter()
    chains = {n: ChainSolver(n, rb, chain_options(settings, n), settings.cutoff) for n in settings.lengths}
    smallest = min(settings.lengths)
    log: list[str] = []
    # stage A: coarse scan at the smallest length
    coarse: list[dict[str, Any]] = []
    grid = np.round(np.arange(settings.delta_min, settings.delta_max + 1e-9, settings.coarse_step), 4)
    onset: dict[str, int] = {}
    for k, delta in enumerate(grid):
        point = chains[smallest].solve(float(delta))
        coarse.append(point)
        for order, exponent in EXPONENTS.items():
            if order not in onset and scaled(point, order, exponent) >= settings.onset_threshold:
                onset[order] = k
        settled = [o for o, i in onset.items() if i < k and all(
            scaled(p, o, EXPONENTS[o]) >= settings.onset_threshold for p in coarse[i:]
        )]  # fmt: skip
        if settled and delta < grid[-1]:
            coarse.append(chains[smallest].solve(float(grid[-1])))  # the order persists up to δ_max?
            break
    table: dict[float, dict[int, dict[str, Any]]] = {}
    for point in coarse:
        table.setdefault(point["delta"], {})[smallest] = point
    # stage B: crossings with all lengths
    lengths = sorted(settings.lengths)
    pairs = list(pairwise(lengths))
    floor = SIGNAL_FLOOR * settings.onset_threshold
    for order, k in sorted(onset.items(), key=lambda item: item[1]):
        for pair in reversed(pairs):
            locate(chains, table, order, float(grid[k]), pair, settings, log)
    rises = {order: rise(chains[lengths[-1]], table, order, settings) for order in onset}
    result: dict[str, Any] = {"rb_over_a": rb, "searched": sorted(onset)}
    for order, exponent in EXPONENTS.items():
        if order not in onset:
            continue
        found = {f"{a}-{b}": crossing(table, a, b, order, exponent, floor) for a, b in pairs}
        sensitivity = [
            crossing(table, *pairs[-1], order, exponent + shift, floor)
            for shift in (-settings.exponent_shift, settings.exponent_shift)
        ]
        result[order] = {"crossings": found, "exponent_shifted": sensitivity, "rise": rises[order]}
    result["coarse"] = [{k: p[k] for k in ("delta", "O_Z2", "O_Z3", "q_over_pi", "sweeps")} for p in coarse]
    result["points"] = [
        {k: (round(v, 10) if isinstance(v, float) else v) for k, v in p.items()}
        for d in sorted(table) for p in (table[d][n] for n in sorted(table[d]))
    ]  # fmt: skip
    result["log"] = log
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result


def summarise(record: dict[str, Any], settings: argparse.Namespace) -> dict[str, Any]:
    """The boundary entry of one R_b/a: δ_c of each order (largest-pair crossing), the other pair's
    crossing, the extrapolation, the uncertainty, the order that sets in first, the incommensurate
    window and the δ interval left without a label."""
    lengths = sorted(settings.lengths)
    largest = f"{lengths[-2]}-{lengths[-1]}"
    smaller = f"{lengths[0]}-{lengths[1]}"
    mean = {smaller: 0.5 * (lengths[0] + lengths[1]), largest: 0.5 * (lengths[-2] + lengths[-1])}
    entry: dict[str, Any] = {"rb_over_a": record["rb_over_a"]}
    for order in EXPONENTS:
        entry[f"delta_c_{order}"] = None
        if order not in record["searched"]:
            continue
        crossings = record[order]["crossings"]
        best = crossings.get(largest)
        detail: dict[str, Any] = {
            "crossings": {k: (None if v is None else round(v, 4)) for k, v in crossings.items()}
        }
        if best is not None:
            entry[f"delta_c_{order}"] = round(best, 4)
            shifted = [v for v in record[order]["exponent_shifted"] if v is not None]
            spreads = [abs(v - best) for v in shifted]
            if crossings.get(smaller) is not None:
                # crossing drift ∝ L^-2 (Ising: 1/ν + ω = 2 with the boundary correction ω = 1; a
                # commensurate-incommensurate onset: first soliton at δ_c − δ ∝ L^-2)
                a, b = mean[smaller] ** -2, mean[largest] ** -2
                extrapolated = best - b * (crossings[smaller] - best) / (a - b)
                detail["extrapolated_L_inf"] = round(extrapolated, 4)
                spreads += [abs(crossings[smaller] - best), abs(extrapolated - best)]
            detail["uncertainty"] = round(max(spreads), 4) if spreads else None
            detail[f"rise_L{lengths[-1]}"] = record[order]["rise"]
        entry[order] = detail
    onsets = {o: entry[f"delta_c_{o}"] for o in EXPONENTS if entry[f"delta_c_{o}"] is not None}
    entry["order"] = min(onsets, key=lambda o: onsets[o]) if onsets else None
    # incommensurate window: going down from the onset, past the points where the order parameter
    # is already sizeable (the critical region), the run of coarse points with 2/3 < q*/π < 1
    window = None
    unlabelled = None
    if entry["order"] is not None:
        order = entry["order"]
        delta_c = onsets[order]
        smallest = lengths[0]
        run: list[float] = []
        for point in sorted(record["coarse"], key=lambda p: -p["delta"]):
            if point["delta"] >= delta_c:
                continue
            q = point["q_over_pi"]
            sizeable = (
                point[f"O_{order}"] * smallest ** EXPONENTS[order]
                >= CRITICAL_FRACTION * settings.onset_threshold
            )
            if not run and sizeable:
                continue
            if not 2 / 3 + Q_TOLERANCE < q < 1 - Q_TOLERANCE:
                break
            run.append(point["delta"])
        if run:
            window = [round(max(min(run) - settings.coarse_step / 2, settings.delta_min), 4), delta_c]
        spread = entry[order].get("uncertainty") or 0.0
        rising = entry[order].get(f"rise_L{lengths[-1]}")
        low = min(delta_c - spread, window[0] if window else delta_c, rising[0] if rising else delta_c)
        unlabelled = [round(low, 4), round(delta_c + spread, 4)]
    entry["incommensurate_delta"] = window
    entry["unlabelled_delta"] = unlabelled
    return entry


def ed_check(settings: argparse.Namespace) -> dict[str, Any]:
    """MPS (the DMRG options of the scan, cold starts, L = ``--ed-length``) against exact
    diagonalisation of the same model: ground energies and the densities ⟨n_j⟩ at a few points."""
    from qep_analog.solvers.equilibrium import Equilibrium

    n_atoms = settings.ed_length
    model = rydberg_chain(n_atoms, settings.cutoff)
    exact = Equilibrium(model)
    mps = MPSEquilibrium(model, chain_options(settings, n_atoms))
    singles = [
        k for k, s in enumerate(exact.compiled.strings) if len(s.factors) == 1 and s.factors[0][1] == "Z"
    ]
    qubits = [exact.compiled.strings[k].factors[0][0] for k in singles]
    rows = []
    for rb, delta in ((1.7, 1.0), (1.7, 1.6), (2.1, 2.5), (2.5, 1.8), (2.5, 2.5)):
        x = model_inputs(delta, rb)
        ground = exact.prepare(x, [0.0], with_gap=True, check_degeneracy=False)
        coefficients = mps.coefficients(x, [0.0], None)[0]
        state = mps.solve(coefficients)
        z_mps = np.real(state.psi.expectation_value("Sigmaz"))[mps.position]
        z_ed = np.empty(n_atoms)
        z_ed[qubits] = ground.strings[0][singles]
        rows.append({
            "rb_over_a": rb, "delta": delta, "energy_ed": float(ground.energies[0]),
            "energy_mps": state.energy, "energy_error": abs(state.energy - float(ground.energies[0])),
            "density_error": float(np.max(np.abs(z_mps - z_ed)) / 2), "gap_ed": float(ground.gaps[0]),  # type: ignore[index]
        })  # fmt: skip
    return {
        "L": n_atoms,
        "points": rows,
        "max_energy_error": max(r["energy_error"] for r in rows),
        "max_density_error": max(r["density_error"] for r in rows),
        "tolerance": {"energy": settings.ed_energy_tol, "density": settings.ed_density_tol},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[25, 37, 49])
    parser.add_argument("--chi", type=int, default=32, help="DMRG bond dimension chi_max")
    parser.add_argument("--energy-tol", type=float, default=1e-7, help="DMRG energy change per sweep")
    parser.add_argument("--cutoff", type=int, default=4, help="couplings kept up to |i-j| <= cutoff")
    parser.add_argument("--rb-min", type=float, default=1.6)
    parser.add_argument("--rb-max", type=float, default=2.8)
    parser.add_argument("--rb-step", type=float, default=0.1)
    parser.add_argument("--delta-min", type=float, default=0.75)
    parser.add_argument("--delta-max", type=float, default=4.0)
    parser.add_argument("--coarse-step", type=float, default=0.25)
    parser.add_argument(
        "--onset-threshold", type=float, default=1.0, help="O_p L^(β/ν) that marks an onset"
    )
    parser.add_argument("--resolution", type=float, default=0.035, help="final bracket width in δ")
    parser.add_argument("--exponent-shift", type=float, default=0.02, help="β/ν shift for the error bar")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ed-length", type=int, default=12, help="0 skips the exact check")
    parser.add_argument("--ed-energy-tol", type=float, default=1e-8)
    parser.add_argument("--ed-density-tol", type=float, default=1e-6)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--raw", type=Path, default=None, help="also write every solved point here")
    settings = parser.parse_args()
    if any(n % 12 != 1 for n in settings.lengths) or len(settings.lengths) < 3:
        parser.error("--lengths: give at least three lengths with L ≡ 1 (mod 12) (both patterns fit)")
    settings.lengths = sorted(settings.lengths)
    began = time.perf_counter()
    check = None
    if settings.ed_length:
        print(f"exact check on L = {settings.ed_length} ...", flush=True)
        check = ed_check(settings)
        for row in check["points"]:
            print(f"  R_b/a {row['rb_over_a']:.2f} δ {row['delta']:.2f}: E_ED {row['energy_ed']:.10f} "
                  f"|ΔE| {row['energy_error']:.1e}  max|Δn| {row['density_error']:.1e}  "
                  f"gap {row['gap_ed']:.3f}", flush=True)  # fmt: skip
        if (
            check["max_energy_error"] > settings.ed_energy_tol
            or check["max_density_error"] > settings.ed_density_tol
        ):
            sys.exit("MPS and exact diagonalisation disagree beyond the tolerance; stopping")
    rbs = [round(float(r), 4) for r in np.arange(settings.rb_min, settings.rb_max + 1e-9, settings.rb_step)]
    print(f"{len(rbs)} values of R_b/a, lengths {settings.lengths}, chi {settings.chi}, cutoff "
          f"{settings.cutoff}, {settings.workers} workers", flush=True)  # fmt: skip
    records = []
    with Pool(settings.workers) as pool:
        # the large blockade radii are slower: start them first
        for record in pool.imap_unordered(scan_rb, [(rb, settings) for rb in reversed(rbs)]):
            records.append(record)
            found = {o: record[o]["crossings"] for o in record["searched"]}
            print(f"  R_b/a {record['rb_over_a']:.2f} done in {record['seconds']:.0f} s "
                  f"({len(record['points'])} points; {time.perf_counter() - began:.0f} s elapsed): "
                  f"{found} {'; '.join(record['log'])}", flush=True)  # fmt: skip
    records.sort(key=lambda r: r["rb_over_a"])
    boundaries = [summarise(r, settings) for r in records]
    z2 = [b["rb_over_a"] for b in boundaries if b["order"] == "Z2"]
    z3 = [b["rb_over_a"] for b in boundaries if b["order"] == "Z3"]
    between = [max(z2), min(z3)] if z2 and z3 and max(z2) < min(z3) else None
    runtime = time.perf_counter() - began
    command = "python " + " ".join(
        shlex.quote(a) for a in [f"benchmarks/{Path(__file__).name}", *sys.argv[1:]]
    )
    document = {
        "system": "1D Rydberg chain, open boundaries, Ω = 1",
        "hamiltonian": (
            "H = Ω/2 Σ_i X_i − δ Σ_i n_i + Σ_{i<j, |i−j| <= cutoff} Ω (R_b/a)^6 / |i−j|^6 n_i n_j, "
            "n = (1 − Z)/2"
        ),
        "coordinates": ["delta_over_omega", "rb_over_a"],
        "phases": ["disordered", "Z2", "Z3"],
        "method": (
            "Finite two-site DMRG (qep_analog.solvers.mps.MPSEquilibrium) on open chains with L ≡ 1 "
            "(mod 12), whose excited edge atoms pin both the Z2 and the Z3 density wave. Order parameter "
            "O_p = (p/L_c)|Σ_j e^{2πij/p}(⟨n_j⟩ − n̄)| over the central L_c = (L+1)/2 sites; at a "
            "continuous transition O_p L^{β/ν} is size independent (β/ν = 1/8 Ising for Z2, 2/15 Potts "
            "for Z3), so delta_c is where O_p L^{β/ν} of the two largest lengths cross on the way into "
            "the order (bisection in δ to 'resolution', then linear interpolation of the "
            "log-difference; a pair counts as crossed only where the larger length has O_p L^{β/ν} >= "
            "signal_floor·onset_threshold). 'crossings' gives both pairs; 'extrapolated_L_inf' assumes "
            "a crossing drift ∝ L^-2 in the mean length of the pair; 'uncertainty' is the largest of "
            "the pair drift, the extrapolation shift and the shift under β/ν ± exponent_shift. 'order' "
            "is the order that sets in first as δ grows (searched where O_p L^{β/ν} of the smallest "
            "length exceeds onset_threshold on a coarse δ grid from delta_range[0]; the order was "
            "checked to hold at delta_range[1]). 'incommensurate_delta' is the δ interval below the "
            "onset in which the dominant wavevector q* of the Friedel oscillations of ⟨n_j⟩ (smallest "
            "length, coarse grid) lies strictly between the Z3 and Z2 values, 2π/3 < q* < π (tolerance "
            "q_tolerance·π): neither Z2- nor Z3-like (incommensurate; floating-phase candidate). "
            "'rise_L<largest>' brackets the δ where O_p L^{β/ν} of the largest length first reaches "
            "signal_floor·onset_threshold (below the crossing: the finite-size rounding of the onset; "
            "at a sharp onset the jump of the largest chain lies there). 'unlabelled_delta' is the δ "
            "interval given no label: from the lowest of the incommensurate window, the rise bracket "
            "and delta_c − uncertainty up to delta_c + uncertainty. 'incommensurate_rb' is the R_b/a "
            "interval between the last grid point where Z2 sets in first and the first where Z3 does: "
            "the lobes do not touch there; "
            "qep_analog.tasks.rydberg_phases labels a point in it only when it lies below the "
            "unlabelled intervals of both neighbours (disordered)."
        ),
        "lengths": settings.lengths,
        "chi_max": settings.chi,
        "dmrg_energy_tol": settings.energy_tol,
        "coupling_cutoff": settings.cutoff,
        "exponents": {k: round(v, 6) for k, v in EXPONENTS.items()},
        "exponent_shift": settings.exponent_shift,
        "onset_threshold": settings.onset_threshold,
        "q_tolerance": Q_TOLERANCE,
        "signal_floor": SIGNAL_FLOOR,
        "resolution": settings.resolution,
        "delta_range": [settings.delta_min, settings.delta_max],
        "coarse_step": settings.coarse_step,
        "rb_grid": rbs,
        "boundaries": boundaries,
        "incommensurate_rb": between,
        "points_columns": ["delta_over_omega", "L", "O_Z2", "O_Z3", "q_over_pi"],
        "points": {
            f"{r['rb_over_a']:.2f}": [
                [p["delta"], p["L"], round(p["O_Z2"], 6), round(p["O_Z3"], 6), round(p["q_over_pi"], 4)]
                for p in r["points"]
            ]
            for r in records
        },
        "exact_check": check,
        "runtime_seconds": round(runtime, 1),
        "workers": settings.workers,
        "command": command,
    }
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(settings.out, document, SCHEMA)
    if settings.raw is not None:
        write_json(settings.raw, {"records": records}, "qep-phase-boundaries-raw/1")
    print(
        f"\n{'R_b/a':>6} {'order':>6} {'δc Z2':>8} {'δc Z3':>8} {'±':>6}  incommensurate δ / unlabelled δ"
    )
    nan = float("nan")
    for b in boundaries:
        order = b["order"]
        spread = b[order].get("uncertainty") if order else None
        print(f"{b['rb_over_a']:6.2f} {order or '-':>6} {b['delta_c_Z2'] or nan:8.3f} "
              f"{b['delta_c_Z3'] or nan:8.3f} {spread or nan:6.3f}  "
              f"{b['incommensurate_delta']} / {b['unlabelled_delta']}")  # fmt: skip
    print(f"incommensurate R_b/a window: {between}")
    print(f"runtime {runtime:.0f} s; wrote {settings.out}")


if __name__ == "__main__":
    main()
