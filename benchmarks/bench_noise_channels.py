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
CHANNELS = {
    "dephasing": {"markovian_dephasing_time": 2.0},
    "relaxation": {"relaxation_time": 2.0},
    "depolarizing": {"depolarizing_time": 2.0},
    "laser_waist": {"laser_waist": 15.0},
    "amplitude_jitter": {"amplitude_jitter": 0.1},
    "detuning_jitter": {"detuning_jitter": 2.0},
    "detuning_map_jitter": {"detuning_map_jitter": 0.3},
    "detuning": {"dephasing_time": 1.0},
    "state_prep": {"state_prep_error": 0.1},
}
#: the channels whose Pulser result does not depend on its draws
DETERMINISTIC = {"dephasing", "relaxation", "depolarizing", "laser_waist"}


def schedule_for(profile: DeviceProfile, n: int, with_map: bool) -> Schedule:
    positions = np.column_stack([7.0 * np.arange(n), np.zeros(n)])
    extra = {}
    if with_map:
        extra = {
            "local_weights": np.array([1.0 if q % 2 == 0 else 0.5 for q in range(n)]),
            "local_amplitude": -4.0,
        }
    recipe = dataclasses.replace(load_recipe("rydberg-smooth"), duration=1.0, segments=20)
    return build_schedule(recipe, profile, RydbergControls(positions, rabi=6.0, detuning=3.0, **extra))


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
    print(f"{'source':20s} {'ours (s)':>9s} {'pulser (s)':>10s} {'ratio':>7s} {'max|dn|':>9s} {'4 SE':>8s}")
    assert set(CHANNELS) == set(NOISE_SOURCES) - {"readout"}
    for source, fields in CHANNELS.items():
        profile = dataclasses.replace(base, noise=NoiseModel(0.0, 0.0, **fields))
        with_map = source == "detuning_map_jitter" or source in DETERMINISTIC or source == "state_prep"
        schedule = schedule_for(profile, n, with_map)
        emulator = QutipEmulator(profile)
        batches = 1 if source in DETERMINISTIC else 4
        started = time.perf_counter()
        means = [
            occupations(
                emulator.run(schedule, noise=source, seed=b, realisations=count // batches).state, n
            )
            for b in range(batches)
        ]
        ours_time = time.perf_counter() - started
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
        ours = np.mean(means, axis=0)
        tolerance = 1e-3
        if batches > 1:
            spread = np.std(means, axis=0, ddof=1) * math.sqrt(count / batches)  # one trajectory's
            tolerance = float(np.max(4 * spread * math.sqrt(2 / count)))
        difference = float(np.max(np.abs(ours - theirs)))
        print(
            f"{source:20s} {ours_time:9.2f} {pulser_time:10.2f} {pulser_time / ours_time:6.1f}x "
            f"{difference:9.4f} {tolerance:8.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
