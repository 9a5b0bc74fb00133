"""MPS time evolution (two-site TDVP, :mod:`qep_analog.emulation.mps_evolution`) against our exact
emulator at N = 12, and a QEP gradient through MPS-prepared states of a long Rydberg chain against
the DMRG QEP gradient of the model the device realises; Pasqal's emu-mps on the same Pulser
sequences where the extra ``emu`` is installed.

    PYTHONPATH=. python benchmarks/bench_mps_evolution.py --skip-exact --sizes 25   # gradient, ~12 min
    PYTHONPATH=. /work/venv-emu/bin/python benchmarks/bench_mps_evolution.py --sizes --emu-mps

Sections:
- ``exact``: a 12-atom chain's quintic ramp (4 µs) by our exact emulator and by TDVP: wall times and
  max_i |Δ⟨n_i⟩|.
- ``gradient``: the chain model (global drive h, global and staggered detuning δ, s, nearest-neighbour
  coupling J; output m = (Z_c + Z_{c+1})/2 at the centre c) at N sites, in the disordered phase;
  free, +βε and −βε phases (quintic ramps, :func:`~qep_analog.sequences.phases.qep_phase_schedules`)
  evolved by TDVP, the symmetric quotient (⟨A⟩₊ − ⟨A⟩₋)/2β, against the DMRG QEP gradient of the
  realised model (van der Waals tails included): cosine, relative error, bond dimension, truncation
  error, van der Waals cutoff, times.
- ``--emu-mps``: the free phase's Pulser sequence through emu-mps and through ours at N = 12 and 25:
  times and max_i |Δ⟨n_i⟩|.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from typing import Any

import numpy as np

from qep_analog.backends.emulated_gradient import phase_values
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.emulation.mps_evolution import MPSEmulator, MPSEvolutionOptions
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.gradients import qep_gradient
from qep_analog.qep.scheme import quotient_of_phases
from qep_analog.sequences.phases import qep_phase_schedules, realised_model
from qep_analog.sequences.recipes import Recipe, load_recipe
from qep_analog.sequences.schedule import Schedule
from qep_analog.solvers.mps import MPSEquilibrium, MPSOptions

#: h, δ, s, J (rad/µs): a gapped, disordered chain (the 6-site example's point)
THETA = np.array([4.0, 3.0, 0.5, 1.5])
BETA = 0.1


def chain_model(n: int) -> QEPModel:
    """The 6-site example chain (examples/models/rydberg_chain.yaml) at ``n`` sites, the output at
    the centre."""
    c = n // 2 - 1
    return QEPModel(
        n,
        {
            "h": pauli_sum((1.0, f"X{i}") for i in range(n)),
            "delta": pauli_sum((1.0, f"Z{i}") for i in range(n)),
            "s": pauli_sum(((-1.0) ** i, f"Z{i}") for i in range(n)),
            "J": pauli_sum((1.0, f"Z{i} Z{i + 1}") for i in range(n - 1)),
        },
        {"m": pauli_sum([(0.5, f"Z{c}"), (0.5, f"Z{c + 1}")])},
    )


def numbers(n: int) -> dict[str, PauliSum]:
    return {f"n{q}": pauli_sum([(0.5, "I"), (-0.5, f"Z{q}")]) for q in range(n)}


def recipe(duration: float) -> Recipe:
    return dataclasses.replace(load_recipe("rydberg-quintic"), duration=duration)


def free_schedule(n: int, duration: float, profile: DeviceProfile) -> Schedule:
    model = chain_model(n)
    return qep_phase_schedules(model, profile, recipe(duration), [], THETA, [1.0], BETA, "Z" * n)[0]


def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = call()
    return out, time.perf_counter() - started


def exact_section(n: int, duration: float, profile: DeviceProfile, options: MPSEvolutionOptions) -> dict:
    schedule = free_schedule(n, duration, profile)
    observables = numbers(n)
    exact, exact_s = timed(lambda: QutipEmulator(profile).run(schedule, observables))
    mps, mps_s = timed(lambda: MPSEmulator(profile, options).run(schedule, observables))
    diff = max(abs(exact.expectations[k] - mps.expectations[k]) for k in observables)
    return {
        "n": n, "duration_us": duration, "exact_s": exact_s, "mps_s": mps_s, "max_dn": diff,
        "chi": mps.chi, "truncation": mps.truncation_error, "steps": mps.steps, "cutoff_um": mps.cutoff,
        "dropped_per_atom": mps.dropped_per_atom,
    }  # fmt: skip


def gradient_section(
    n: int, duration: float, profile: DeviceProfile, options: MPSEvolutionOptions, dmrg_chi: int
) -> dict:
    model = chain_model(n)
    realised = realised_model(model, profile)
    schedules = qep_phase_schedules(model, profile, recipe(duration), [], THETA, [1.0], BETA, "Z" * n)
    emulator = MPSEmulator(profile, options)
    (values, results), mps_s = timed(lambda: phase_values(schedules, emulator, realised))
    emulated = quotient_of_phases(values, BETA, "symmetric")
    equilibrium: Any = MPSEquilibrium(realised, MPSOptions(chi_max=dmrg_chi))
    dmrg, dmrg_s = timed(
        lambda: qep_gradient(
            equilibrium, np.zeros((1, 0)), THETA[None, :], np.ones((1, 1)), BETA, "symmetric"
        )[0]
    )
    cosine = float(emulated @ dmrg / (np.linalg.norm(emulated) * np.linalg.norm(dmrg)))
    first = next(iter(results.values()))
    return {
        "n": n, "duration_us": duration, "parameters": list(realised.trainable),
        "mps_gradient": emulated.tolist(), "dmrg_gradient": np.asarray(dmrg).tolist(),
        "cosine": cosine,
        "relative_error": float(np.linalg.norm(emulated - dmrg) / np.linalg.norm(dmrg)),
        "chi": max(r.chi for r in results.values()),
        "truncation": max(r.truncation_error for r in results.values()),
        "steps": first.steps, "cutoff_um": first.cutoff, "dropped_per_atom": first.dropped_per_atom,
        "dropped_total": first.dropped_total, "mps_s": mps_s, "dmrg_s": dmrg_s,
    }  # fmt: skip


def emu_section(n: int, duration: float, profile: DeviceProfile, options: MPSEvolutionOptions) -> dict:
    from qep_analog.emulation.emu_mps_runner import run_emu_mps

    schedule = free_schedule(n, duration, profile)
    observables = {f"Z{q}": pauli_sum([(1.0, f"Z{q}")]) for q in range(n)}
    ours, ours_s = timed(lambda: MPSEmulator(profile, options).run(schedule, observables))
    theirs, theirs_s = timed(lambda: run_emu_mps(schedule, profile, observables, chi_max=options.chi_max))
    diff = max(abs(ours.expectations[k] - theirs.expectations[k]) / 2 for k in observables)
    return {"n": n, "ours_s": ours_s, "emu_mps_s": theirs_s, "max_dn": diff, "chi": ours.chi}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[25], help="gradient chain lengths")
    parser.add_argument("--duration", type=float, default=16.0, help="gradient ramp duration (µs)")
    parser.add_argument("--exact-duration", type=float, default=4.0, help="N = 12 ramp duration (µs)")
    parser.add_argument("--chi-max", type=int, default=64)
    parser.add_argument("--svd-min", type=float, default=1e-6, help="singular values kept above this")
    parser.add_argument("--skip-exact", action="store_true")
    parser.add_argument("--emu-mps", action="store_true", help="also run emu-mps (extra 'emu')")
    parser.add_argument("--emu-sizes", type=int, nargs="*", default=[12, 25])
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    profile = read_profile("fresnel-like", relaxed=True)
    options = MPSEvolutionOptions(chi_max=args.chi_max, svd_min=args.svd_min)
    report: dict[str, Any] = {"load_average": os.getloadavg()}
    if not args.skip_exact:
        row = exact_section(12, args.exact_duration, profile, options)
        report["exact"] = row
        print(json.dumps(row))
    report["gradient"] = []
    for n in args.sizes:
        row = gradient_section(n, args.duration, profile, options, args.chi_max)
        report["gradient"].append(row)
        print(json.dumps(row))
    if args.emu_mps:
        report["emu_mps"] = []
        for n in args.emu_sizes:
            row = emu_section(n, args.exact_duration, profile, options)
            report["emu_mps"].append(row)
            print(json.dumps(row))
    report["load_average_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
