"""Each channel of Pulser's NoiseModel alone: our emulator against pulser-simulation, time and agreement.

A chain of N atoms 7 µm apart on the relaxed Fresnel-like profile (the detuning map on every other
atom, weight 1 and 0.5), a 1 µs sin² ramp to Ω = 6, δ = 3 rad/µs and map waveform −4 rad/µs. For
each source of :data:`~qep_analog.devices.noise_sources.NOISE_SOURCES` but ``readout`` (it acts on
sampled bits only), the profile with only that channel is run by our emulator (its default method;
``--trajectories`` trajectories in 4 seeded batches, whose spread gives the standard error) and by
pulser-simulation's QutipBackendV2 with the same channel (``noise_model_to_pulser``; as many runs;
for ``detuning_map_jitter`` one emulation per run, since pulser-simulation 1.9.1 gives all
trajectories of one emulation the same DMM draw). Prints the wall times, their ratio and
max_i |Δ⟨n_i⟩| against 4 combined standard errors (0 for the deterministic channels, whose
tolerance is 1e-3). Pulser's Doppler, detuning and amplitude noise act once more through a DMM
channel (README, "Noise channels"): those channels run without the map.

    python benchmarks/bench_noise_channels.py [--atoms 4] [--trajectories 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from typing import Any

import numpy as np

from qep_analog.devices.noise_sources import NOISE_SOURCES
from qep_analog.devices.profile import DeviceProfile, NoiseModel, read_profile
from qep_analog.devices.pulser_noise import noise_model_to_pulser
from qep_analog.devices.rydberg import RydbergControls
from qep_analog.emulation.pulser_backend import run_pulser
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.sequences.recipes import build_schedule, load_recipe
from qep_analog.sequences.schedule import Schedule

#: each source's profile field and value in the benchmark
CHANNELS: dict[str, tuple[str, float]] = {
    "dephasing": ("markovian_dephasing_time", 2.0),
    "relaxation": ("relaxation_time", 2.0),
    "depolarizing": ("depolarizing_time", 2.0),
    "laser_waist": ("laser_waist", 15.0),
    "amplitude_jitter": ("amplitude_jitter", 0.1),
    "detuning_jitter": ("detuning_jitter", 2.0),
    "detuning_map_jitter": ("detuning_map_jitter", 0.3),
    "detuning": ("dephasing_time", 1.0),
    "state_prep": ("state_prep_error", 0.1),
}
#: the channels whose Pulser result does not depend on its draws (Lindblad, the beam's profile)
DETERMINISTIC = {"dephasing", "relaxation", "depolarizing", "laser_waist"}
#: the channels pulser-simulation 1.9.1 applies once more through a DMM channel: run without the map
NO_MAP = {"amplitude_jitter", "laser_waist", "detuning_jitter", "detuning"}
#: the channels our default method unravels into trajectories and our QuTiP method solves exactly
UNRAVELLED = {"dephasing", "depolarizing"}


def schedule_for(profile: DeviceProfile, n: int, with_map: bool) -> Schedule:
    positions = np.column_stack([7.0 * np.arange(n), np.zeros(n)])
    weights = np.array([1.0 if q % 2 == 0 else 0.5 for q in range(n)]) if with_map else np.zeros(0)
    target = RydbergControls(
        positions, rabi=6.0, detuning=3.0, local_weights=weights, local_amplitude=-4.0 if with_map else 0.0
    )
    recipe = dataclasses.replace(load_recipe("rydberg-smooth"), duration=1.0, segments=20)
    return build_schedule(recipe, profile, target)


def occupations(rho: np.ndarray, n: int) -> np.ndarray:
    probabilities = np.real(np.diag(rho)) if rho.ndim == 2 else np.abs(rho) ** 2
    bits = (np.arange(1 << n)[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1
    return np.asarray(probabilities @ bits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--atoms", type=int, default=4)
    parser.add_argument("--trajectories", type=int, default=200)
    args = parser.parse_args()
    n, count = args.atoms, args.trajectories
    base = read_profile("fresnel-like", relaxed=True)
    print(f"N = {n}, {count} trajectories; load average {os.getloadavg()[0]:.1f}")
    print(f"{'source':30s} {'ours (s)':>9s} {'pulser (s)':>10s} {'ratio':>7s} {'max|dn|':>9s} {'4 SE':>8s}")
    assert set(CHANNELS) == set(NOISE_SOURCES) - {"readout"}
    warm = dataclasses.replace(base, noise=NoiseModel(0.0, 0.0, markovian_dephasing_time=2.0))
    warm_schedule = schedule_for(warm, 2, True)  # compiles the kernels and loads the solvers first
    QutipEmulator(warm).run(warm_schedule, noise="dephasing", realisations=2)
    run_pulser(warm_schedule, warm, noise_model=noise_model_to_pulser(warm.noise))
    for source, (field, value) in CHANNELS.items():
        changes: dict[str, Any] = {field: value}
        profile = dataclasses.replace(base, noise=dataclasses.replace(NoiseModel(0.0, 0.0), **changes))
        schedule = schedule_for(profile, n, source not in NO_MAP)
        model = noise_model_to_pulser(profile.noise)
        started = time.perf_counter()
        if source == "detuning_map_jitter":
            runs = [
                run_pulser(schedule, profile, noise_model=model, trajectories=1, seed=s).state
                for s in range(count)
            ]
            theirs = np.mean([occupations(r, n) for r in runs], axis=0)
        else:
            theirs = occupations(
                run_pulser(schedule, profile, noise_model=model, trajectories=count, seed=1).state, n
            )
        pulser_time = time.perf_counter() - started
        methods = ["magnus", "qutip"] if source in UNRAVELLED else ["magnus"]
        for method in methods:
            emulator = QutipEmulator(profile, method=method)
            exact = source in DETERMINISTIC and (method == "qutip" or source not in UNRAVELLED)
            batches = 1 if exact else 4
            started = time.perf_counter()
            means = [
                occupations(
                    emulator.run(schedule, noise=source, seed=b, realisations=count // batches).state, n
                )
                for b in range(batches)
            ]
            ours_time = time.perf_counter() - started
            ours = np.mean(means, axis=0)
            tolerance = 1e-3
            if not exact:  # the standard errors of ours (and of Pulser's runs where they are drawn)
                spread = np.std(means, axis=0, ddof=1) * math.sqrt(count / batches)  # one trajectory's
                runs_of_pulser = 0 if source in DETERMINISTIC else 1
                tolerance = float(np.max(4 * spread * math.sqrt((1 + runs_of_pulser) / count)))
            difference = float(np.max(np.abs(ours - theirs)))
            label = source if method == "magnus" else f"{source} (QuTiP method)"
            print(
                f"{label:30s} {ours_time:9.2f} {pulser_time:10.2f} {pulser_time / ours_time:6.1f}x "
                f"{difference:9.4f} {tolerance:8.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
