"""One training step of the Rydberg sensor through each backend, as `qep-analog train` runs it: the
9-atom sensor (7-atom chain + 2 sensor atoms) on aquila-like, a batch of 10 samples, symmetric QEP
(β = 0.4: free, +βε and −βε phases = 30 jobs on `rydberg-smooth`, 4 µs), read in Z with 1000 shots,
through `measured_step` on the backend `backend_for_run` builds. The emulators are timed without the
ramp's bias estimate (`bias_budget: false`); two more rows time the default (`bias_budget: true`) on
this recipe and on the default recipe of training, `rydberg-gap-quintic` (its gap-aware ramp solves
the free path's gap of every sample first). Backends timed in turn within each
round (so drift of a shared machine cancels in the ratios); medians over rounds; one warm-up step of
one sample each (compiled kernels, imports).

Pulser's detuning map modulator takes negative detunings only, so the `pulser` backend refuses
aquila-like's positive local detunings. "pulser" here is that backend with each schedule compiled
to the same Hamiltonian another way: global detuning δ(t) + Δ(t) and a DMM of weights 1 − w_i
carrying −Δ(t) ≤ 0 (δ + Δ + (1 − w_i)(−Δ) = δ + w_i Δ), on the profile's Pulser device made virtual
with a DMM; pulser-simulation then runs as in the backend (one sample per ns).

    python benchmarks/bench_lab_step.py [--rounds 3] [--old-noise-draws 0] [--rows NAME ...] [--fresh-gaps]

``--rows`` times only the rows named (``exact``, ``qutip``, ``qutip method=qutip``, ``qutip + noise``,
``pulser``, ``qutip + bias budget``, ``on rydberg-gap-quintic``); the ratios to ``pulser`` and to
``qutip method=qutip`` are printed when those rows are timed. The gaps a gap-aware ramp follows are
kept per path (:func:`~qep_analog.sequences.phases.path_gap`), so the rounds after the first reuse
them; ``--fresh-gaps`` drops them before every step, as a training step with new parameters solves
them again.

``--old-noise-draws K`` also times the QuTiP path with noise (``method: qutip``: mesolve on the
512 × 512 density matrix per amplitude-jitter draw) on one job with K draws and prints it scaled to
the step's 30 jobs × 16 draws (an extrapolation, marked as such). Writes JSON to
benchmarks/results/ when that folder exists.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import qep_analog as qa
from qep_analog.backends.configure import backend_for_run
from qep_analog.backends.emulated import PulserBackend
from qep_analog.backends.step import measured_step
from qep_analog.emulation.qutip_emulator import EmulationResult, expectation
from qep_analog.sequences.phases import forget_solved_gaps
from qep_analog.sequences.schedule import Schedule
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask

ROOT = Path(__file__).resolve().parents[1]
BATCH = 10
SHOTS = 1000
BETA = 0.4
RECIPE = "rydberg-smooth"
#: the emulators are compared without the ramp's bias estimate (the same cost on every backend that
#: plays ramps: ~17 diagonalisations per sample); the last two rows time it, on this recipe and on
#: the default one
NO_BIAS = {"bias_budget": False}
#: name, registry backend, options (``recipe``: another recipe than :data:`RECIPE`)
BACKENDS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("exact", "exact", {}),
    ("qutip", "qutip", NO_BIAS),
    ("qutip method=qutip", "qutip", {"method": "qutip", **NO_BIAS}),
    ("qutip + noise", "qutip", {"noise": True, **NO_BIAS}),
    ("pulser", "pulser", NO_BIAS),
    ("qutip + bias budget", "qutip", {}),
    ("  on rydberg-gap-quintic", "qutip", {"recipe": "rydberg-gap-quintic"}),
)


class SameHamiltonianPulser(PulserBackend):
    """The `pulser` backend with a positive detuning map compiled as a global shift and a DMM (see
    the module doc)."""

    def _evolve(self, schedule: Schedule, observables: dict[str, Any] | None, seed: int) -> EmulationResult:
        import dataclasses

        from pulser import Pulse, Sequence
        from pulser.backend import StateResult
        from pulser.channels.dmm import DMM
        from pulser.devices import Device
        from pulser_simulation import QutipBackendV2, QutipConfig

        from qep_analog.devices.pulser_device import DMM_CHANNEL, RYDBERG_CHANNEL, to_pulser_device
        from qep_analog.emulation.pulser_backend import from_pulser_basis
        from qep_analog.sequences.pulser_export import _pulser_waveform
        from qep_analog.sequences.waveforms import Waveform

        dmm = DMM(
            bottom_detuning=None, total_bottom_detuning=None, clock_period=1, min_duration=1,
            mod_bandwidth=None,
        )  # fmt: skip
        device = to_pulser_device(self.profile)
        virtual = device.to_virtual() if isinstance(device, Device) else device
        device = dataclasses.replace(virtual, dmm_objects=(dmm,))
        positions = np.asarray(schedule.static["positions"], dtype=float)
        register = qa_register(positions, device)
        sequence = Sequence(register, device)
        sequence.declare_channel("rydberg", RYDBERG_CHANNEL)
        duration = round(schedule.duration * 1000)
        local, detuning = schedule.controls["local_amplitude"], schedule.controls["detuning"]
        weights = np.asarray(schedule.static["local_weights"], dtype=float)
        assert weights.min() >= 0 and weights.max() <= 1
        grid = np.unique(np.concatenate([local.times, detuning.times]))
        shifted = Waveform(grid, detuning(grid) + local(grid))
        phase = float(schedule.static.get("phase", 0.0))
        amplitude = _pulser_waveform(schedule.controls["rabi"], duration)
        sequence.add(Pulse(amplitude, _pulser_waveform(shifted, duration), phase), "rydberg")
        sequence.config_detuning_map(
            register.define_detuning_map({f"q{i}": float(1 - w) for i, w in enumerate(weights)}),
            DMM_CHANNEL,
        )
        sequence.add_dmm_detuning(
            _pulser_waveform(Waveform(local.times, -local.values), duration), DMM_CHANNEL
        )
        config = QutipConfig(observables=[StateResult(evaluation_times=[1.0])], sampling_rate=1.0)
        final = QutipBackendV2(sequence, config=config).run().final_state
        state = from_pulser_basis(final.to_qobj().full())  # type: ignore[attr-defined]
        n = schedule.n_qubits
        values = {name: expectation(state, op, n) for name, op in (observables or {}).items()}
        return EmulationResult(schedule.label, state, values)


def qa_register(positions: np.ndarray, device: Any) -> Any:
    from qep_analog.devices.pulser_device import device_register

    return device_register(np.asarray(positions, dtype=float), device)


def sensor_task() -> tuple[RydbergSensorTask, bool]:
    """The task, and whether its phase labels are available (else every point is labelled
    disordered: the labels only choose the batch's targets, not what the backends evolve)."""
    profile = qa.read_profile("aquila-like")
    try:
        import qep_analog.tasks.rydberg_phases  # noqa: F401

        return RydbergSensorTask(profile=profile, n_chain=7), True
    except ModuleNotFoundError:

        class Unlabelled(RydbergSensorTask):
            def label(self, points: np.ndarray) -> list[str | None]:
                return ["disordered"] * len(np.atleast_2d(points))

        return Unlabelled(profile=profile, n_chain=7, test_size=1), False


def batch(task: RydbergSensorTask, labelled: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, targets, θ): the batch drawn with seed 0, θ from the task's initial parameters."""
    rng = np.random.default_rng(0)
    theta = task.parameterisation.coefficients(task.initial_parameters(rng))
    if labelled:
        inputs, targets = task.sample_batch(rng, BATCH)
    else:
        points = np.column_stack(
            [rng.uniform(*task.delta_over_omega, BATCH), rng.uniform(*task.rb_over_a, BATCH)]
        )
        inputs, targets = task.model_inputs(points), task.codewords[np.arange(BATCH) % len(task.codewords)]
    return inputs, targets, theta


def make(task: RydbergSensorTask, backend: str, options: dict[str, Any], run_dir: str) -> Any:
    options = dict(options)
    recipe = None if backend == "exact" else options.pop("recipe", RECIPE)
    if backend == "pulser":
        return SameHamiltonianPulser(task.model, task.profile, qa.load_recipe(RECIPE), seed=0, **options)
    return backend_for_run(
        backend, task.model, task.profile, run_dir=run_dir, seed=0, recipe=recipe, options=options
    )


def step(
    backend: Any, task: RydbergSensorTask, inputs: np.ndarray, targets: np.ndarray, theta: np.ndarray
) -> tuple[float, float]:
    """(wall, CPU) seconds of one step (CPU: all the process's threads)."""
    started, cpu = time.perf_counter(), time.process_time()
    measured_step(
        backend, task.model, inputs, theta, targets, task.loss, beta=BETA, scheme="symmetric",
        bases=["Z" * task.model.n_qubits], shots=SHOTS, entropy=(0, 0),
    )  # fmt: skip
    return time.perf_counter() - started, time.process_time() - cpu


def old_noise(task: RydbergSensorTask, inputs: np.ndarray, theta: np.ndarray, draws: int) -> float:
    """Seconds of the QuTiP noisy path for one free-phase job with ``draws`` jitter draws."""
    from qep_analog.backends.jobs import PhaseJob
    from qep_analog.backends.schedules import job_schedules
    from qep_analog.emulation.qutip_emulator import QutipEmulator
    from qep_analog.sequences.phases import realised_model

    model = realised_model(task.model, task.profile)
    zeros = tuple(0.0 for _ in model.outputs)
    job = PhaseJob(
        0, "free", tuple(map(float, inputs[0])), tuple(map(float, theta)), zeros, ("Z" * 9,), SHOTS
    )
    schedule = job_schedules(model, task.profile, qa.load_recipe(RECIPE), [job])[job.key]
    emulator = QutipEmulator(task.profile, method="qutip")
    started = time.perf_counter()
    emulator.run(schedule, noise=True, shots=SHOTS, seed=0, realisations=draws)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old-noise-draws", type=int, default=0)
    names = [name.strip() for name, _, _ in BACKENDS]
    parser.add_argument("--rows", nargs="+", choices=names, default=names, metavar="NAME")
    parser.add_argument("--fresh-gaps", action="store_true")
    args = parser.parse_args()
    rows = [row for row in BACKENDS if row[0].strip() in args.rows]
    task, labelled = sensor_task()
    inputs, targets, theta = batch(task, labelled)
    times: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    cpu_times: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    with tempfile.TemporaryDirectory() as run_dir:
        backends = {name: make(task, backend, options, run_dir) for name, backend, options in rows}
        for backend in backends.values():  # warm up: compiled kernels, imports
            step(backend, task, inputs[:1], targets[:1], theta)
        for _ in range(args.rounds):
            for name, backend in backends.items():
                if args.fresh_gaps:
                    forget_solved_gaps()
                wall, cpu = step(backend, task, inputs, targets, theta)
                times[name].append(wall)
                cpu_times[name].append(cpu)
    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu_times.items()}
    print(
        f"Rydberg sensor, {task.model.n_qubits} qubits on aquila-like: {BATCH} samples x 3 phases = "
        f"{3 * BATCH} jobs, Z x {SHOTS} shots, {RECIPE}; medians of {args.rounds} rounds"
        + ("" if labelled else " (phase labels unavailable: targets cycle the codewords)")
        + ("; gaps solved in every step" if args.fresh_gaps else "")
        + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    pulser, old = medians.get("pulser"), medians.get("qutip method=qutip")
    print(
        f"{'backend':<20} {'wall (s)':>9} {'CPU (s)':>8} {'wall / pulser':>14} "
        f"{'wall / qutip method=qutip':>26}"
    )
    for name, median in medians.items():
        print(
            f"{name:<20} {median:9.2f} {cpu_medians[name]:8.2f} {_ratio(median, pulser):>14} "
            f"{_ratio(median, old):>26}"
        )
    qutip, noisy = medians.get("qutip"), medians.get("qutip + noise")
    if pulser and qutip and noisy and old:
        print(
            f"pulser / qutip = {pulser / qutip:.1f}x; pulser / (qutip + noise) = {pulser / noisy:.1f}x; "
            f"(qutip method=qutip) / qutip = {old / qutip:.1f}x"
        )
    result: dict[str, Any] = {
        "benchmark": "lab_step",
        "batch": BATCH,
        "jobs": 3 * BATCH,
        "shots": SHOTS,
        "rounds": args.rounds,
        "labelled": labelled,
        "fresh_gaps": args.fresh_gaps,
        "times_s": times,
        "medians_s": medians,
        "cpu_s": cpu_times,
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
    }
    if args.old_noise_draws:
        seconds = old_noise(task, inputs, theta, args.old_noise_draws)
        scaled = seconds / args.old_noise_draws * 16 * 3 * BATCH
        versus = f" ({scaled / noisy:.0f}x qutip + noise)" if noisy else ""
        print(
            f"qutip method=qutip + noise: one job, {args.old_noise_draws} draw(s) {seconds:.1f} s -> "
            f"extrapolated step ({3 * BATCH} jobs x 16 draws) {scaled:.0f} s{versus}"
        )
        result["old_noise"] = {
            "draws": args.old_noise_draws,
            "one_job_s": seconds,
            "extrapolated_step_s": scaled,
        }
    results = ROOT / "benchmarks" / "results"
    if results.is_dir():
        path = results / f"lab_step-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


def _ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.3f}" if reference else "-"


if __name__ == "__main__":
    main()
