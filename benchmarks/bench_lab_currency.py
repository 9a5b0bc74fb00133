"""Device runs for a 10 % gradient error: QEP against central finite differences on the Rydberg sensor.

The sensor of ``examples/rydberg_sensor.yaml`` on aquila-like (nominal profile), at its initial
parameters φ (seed 0; ``--parameters``: a run's ``result.json``), one batch of 10 inputs, squared-error
loss. The gradient is the one a lab trains with: dL/dφ of the batch-mean loss in the 13 device
parameters (9 local detunings in rad/µs, 4 sensor coordinates in µm), g = (dθ/dφ)ᵀ dL/dθ. Both methods
read bitstrings in the Z basis from the same exact backend (ground states of the realised model,
the profile's readout errors, mitigated estimates):

- QEP: the measured step (the free phase's counts give ε, then ±βε), B × 3 preparations of M shots;
- central finite differences: the outputs at φ ± h e_j for every parameter j and input b, L_b from
  them, g_j = mean_b (L_b(+) − L_b(−)) / 2h; B × 2 × 13 preparations of M shots. The step has one
  value per kind of parameter (h_δ for the detunings in rad/µs, h_r for the coordinates in µm), each
  the best of its grid (the error splits into the two kinds' parts, each depending on its own step).

Relative error = sqrt(mean over repeats of ‖g − g*‖²) / ‖g*‖, g* the exact linear-response gradient.
A device run is one sequence and one shot: runs = preparations × M; device time = runs × (the
aquila recipe's duration + the profile's per-shot overhead). For each method the cheapest grid
setting whose error is ≤ 10 %, and where the error crosses 10 % on the model MSE = bias² + c/M (the
bias exact, from noise-free estimates; c fitted to the repeats), which does not round M to the grid.

    python benchmarks/bench_lab_currency.py [--repeats 20] [--parameters RESULT.json] [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import qep_analog as qa
from qep_analog.backends.exact import ExactBackend
from qep_analog.backends.step import measured_step
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import SmallGapWarning
from qep_analog.measurement.estimators import SettingCounts, estimate_plan
from qep_analog.measurement.gradient import generator_estimates
from qep_analog.measurement.sampling import sample_counts
from qep_analog.measurement.settings import MeasurementPlan, MeasurementSetting, model_strings
from qep_analog.qep.gradients import exact_gradient, qep_gradient
from qep_analog.solvers.equilibrium import Prepared
from qep_analog.storage import write_json
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask

ROOT = Path(__file__).resolve().parents[1]
BATCH = 10
TARGET = 0.1
SHOTS = (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000)
BETAS = (0.5, 0.75, 1.0, 1.25)
#: central-difference steps: h_δ (rad/µs) and h_r (µm) prepared together, chosen per kind afterwards
STEPS_DETUNING = (0.1, 0.2, 0.4, 0.8)
STEPS_POSITION = (0.08, 0.16, 0.32, 0.64)
RECIPE = "rydberg-aquila"  # its duration is the sequence's in the device time


def sensor_backend(task: RydbergSensorTask, profile: DeviceProfile, seed: int) -> ExactBackend:
    """The exact backend of the sensor on ``profile``: the realised model (van der Waals couplings)
    read with the profile's readout errors, mitigated."""
    return ExactBackend(task.model, profile, seed=seed)


@dataclass
class Setup:
    """The point of the comparison: parameters, batch, backend, the free states and the truth."""

    task: RydbergSensorTask
    profile: DeviceProfile
    phi: NDArray
    x: NDArray
    y: NDArray
    backend: ExactBackend
    free: Prepared
    error_signal: NDArray
    truth: NDArray

    @property
    def theta(self) -> NDArray:
        return np.asarray(self.task.parameterisation.coefficients(self.phi))

    @property
    def jacobian(self) -> NDArray:
        return np.asarray(self.task.parameterisation.jacobian(self.phi))

    @property
    def detunings(self) -> NDArray:
        """Which device parameters are local detunings (the others: sensor coordinates)."""
        return np.array([name.startswith("delta_") for name in self.task.parameterisation.names])

    @property
    def basis(self) -> str:
        return "Z" * self.backend.model.n_qubits


def setup(seed: int, parameters: str | None) -> Setup:
    experiment = qa.load_experiment(
        ROOT / "examples" / "rydberg_sensor.yaml", nominal=True, init=parameters
    )
    task, profile = experiment.task, experiment.profile
    assert isinstance(task, RydbergSensorTask) and profile is not None
    phi = task.initial_parameters(np.random.default_rng(seed))
    x, y = task.sample_batch(np.random.default_rng([seed, 1]), BATCH)
    backend = sensor_backend(task, profile, seed)
    eq = backend.equilibrium
    theta = task.parameterisation.coefficients(phi)
    free = eq.prepare(x, theta, with_gap=True)
    eps = task.loss.error_signal(eq.compiled.output_values(free.strings), y)
    dl_dtheta = exact_gradient(eq, x, theta, eps, free=free).mean(axis=0)
    truth = task.parameterisation.jacobian(phi).T @ dl_dtheta
    return Setup(task, profile, phi, x, y, backend, free, eps, truth)


@dataclass
class Scan:
    """Squared errors (settings, shots, repeats, parameters) of a method's gradients and the squared
    bias per setting and parameter (noise-free estimates)."""

    settings: list[str]
    errors2: NDArray
    bias2: NDArray


def qep_scan(s: Setup, repeats: int, seed: int) -> Scan:
    """The measured QEP step, ``repeats`` times per (β, M): free round, ε from its counts, nudged
    round, gradient from the counts."""
    eq, model, loss = s.backend.equilibrium, s.backend.model, s.task.loss
    errors2 = np.zeros((len(BETAS), len(SHOTS), repeats, len(s.phi)))
    bias2 = np.zeros((len(BETAS), len(s.phi)))
    for i, beta in enumerate(BETAS):
        noise_free = qep_gradient(eq, s.x, s.theta, s.error_signal, beta, free=s.free)
        bias2[i] = (s.jacobian.T @ noise_free.mean(axis=0) - s.truth) ** 2
        for m, shots in enumerate(SHOTS):
            for r in range(repeats):
                step = measured_step(
                    s.backend, model, s.x, s.theta, s.y, loss, beta=beta, scheme="symmetric",
                    bases=[s.basis], shots=shots, entropy=(seed, i, m, r),
                )  # fmt: skip
                errors2[i, m, r] = (s.jacobian.T @ step.mean_gradient - s.truth) ** 2
                assert step.shots == BATCH * 3 * shots  # the device runs counted below
    return Scan([f"beta {b:g}" for b in BETAS], errors2, bias2)


def fd_scan(s: Setup, repeats: int, seed: int) -> Scan:
    """Central finite differences of the batch-mean loss in φ, ``repeats`` times per (h, M). The
    2 × 13 × B preparations of a step are solved once (warm-started from the free states) and read
    anew for every M and repeat, their outputs estimated from the counts as the backend's are."""
    eq, model, loss, geometry = s.backend.equilibrium, s.backend.model, s.task.loss, s.task.parameterisation
    n = len(s.phi)
    plan = MeasurementPlan(
        model.n_qubits,
        (MeasurementSetting(s.basis, tuple(model_strings(model, generators=False))),),
        lower_bound=1,
    )
    errors2 = np.zeros((len(STEPS_DETUNING), len(SHOTS), repeats, n))
    bias2 = np.zeros((len(STEPS_DETUNING), n))
    for k, (h_detuning, h_position) in enumerate(zip(STEPS_DETUNING, STEPS_POSITION, strict=True)):
        steps = np.where(s.detunings, h_detuning, h_position)
        moved = s.phi + np.concatenate([np.diag(steps), -np.diag(steps)])  # φ + h e_j, then φ − h e_j
        thetas = np.tile([geometry.coefficients(p) for p in moved], (BATCH, 1))
        start = np.repeat(np.asarray(s.free.states), 2 * n, axis=0)
        prepared = eq.prepare(np.repeat(s.x, 2 * n, axis=0), thetas, start=start)

        def gradient(outputs: NDArray, steps: NDArray = steps) -> NDArray:
            losses = loss.value(outputs.reshape(BATCH, 2 * n, -1), s.y[:, None, :])
            return np.asarray(((losses[:, :n] - losses[:, n:]) / (2 * steps)).mean(axis=0))

        bias2[k] = (gradient(eq.compiled.output_values(prepared.strings)) - s.truth) ** 2
        rng = np.random.default_rng([seed, 2, k])
        for m, shots in enumerate(SHOTS):
            for r in range(repeats):
                counts = sample_counts(prepared.states, s.basis, shots, rng, s.backend.readout)
                outputs = [
                    generator_estimates(
                        model,
                        plan,
                        estimate_plan(plan, [SettingCounts.from_dense(s.basis, row)], s.backend.mitigation),
                        "outputs",
                    ).means
                    for row in counts
                ]
                errors2[k, m, r] = (gradient(np.array(outputs)) - s.truth) ** 2
    settings = [f"h {a:g} rad/us, {b:g} um" for a, b in zip(STEPS_DETUNING, STEPS_POSITION, strict=True)]
    return Scan(settings, errors2, bias2)


def variance_coefficient(mse: NDArray, bias2: float) -> float:
    """c of MSE(M) = bias² + c/M from the measured MSE at every M of the grid: each M gives
    M (MSE − bias²), weighted by the square of its variance share (near the bias floor the difference
    is noise)."""
    shots = np.array(SHOTS, dtype=float)
    share = np.clip(1.0 - bias2 / mse, 0.0, None)
    return float(np.sum(share**2 * shots * (mse - bias2)) / np.sum(share**2))


@dataclass
class Choice:
    """The cheapest setting of a method: by the grid (its measured error) and by the fitted model."""

    label: str
    shots: int | None
    error: float
    detail: str
    fitted_label: str
    fitted_shots: float


def choose_qep(s: Setup, scan: Scan, norm: float) -> Choice:
    mse = scan.errors2.mean(axis=2).sum(axis=-1)  # (β, M)
    error = np.sqrt(mse) / norm
    best: tuple[int, int] | None = None
    for m in range(len(SHOTS)):
        ok = np.flatnonzero(error[:, m] <= TARGET)
        if len(ok):
            best = (int(ok[np.argmin(error[ok, m])]), m)
            break
    fitted = [fitted_shots(mse[i], scan.bias2[i].sum(), norm) for i in range(len(BETAS))]
    i_fit = int(np.argmin(fitted))
    if best is None:
        return Choice("none in the grid", None, float(error.min()), "", scan.settings[i_fit], fitted[i_fit])
    i, m = best
    return Choice(
        scan.settings[i], SHOTS[m], float(error[i, m]), split(s, scan.errors2[i, m], norm),
        scan.settings[i_fit], fitted[i_fit],
    )  # fmt: skip


def fitted_shots(mse: NDArray, bias2: float, norm: float) -> float:
    """M where bias² + c/M reaches the target (inf where the bias alone exceeds it)."""
    room = (TARGET * norm) ** 2 - bias2
    return variance_coefficient(mse, bias2) / room if room > 0 else float("inf")


def per_kind(s: Setup, scan: Scan) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """MSE (steps, M) and squared bias (steps,) of the detuning part and of the position part."""
    mse = scan.errors2.mean(axis=2)
    return (
        mse[..., s.detunings].sum(axis=-1),
        mse[..., ~s.detunings].sum(axis=-1),
        scan.bias2[:, s.detunings].sum(axis=-1),
        scan.bias2[:, ~s.detunings].sum(axis=-1),
    )


def best_steps(s: Setup, scan: Scan, norm: float) -> tuple[NDArray, NDArray, NDArray]:
    """Per M: the best h_δ index, the best h_r index and the error of that pair."""
    detuning, position, _, _ = per_kind(s, scan)
    k_d, k_r = detuning.argmin(axis=0), position.argmin(axis=0)
    columns = np.arange(len(SHOTS))
    error = np.sqrt(detuning[k_d, columns] + position[k_r, columns]) / norm
    return k_d, k_r, error


def choose_fd(s: Setup, scan: Scan, norm: float) -> Choice:
    k_d, k_r, error = best_steps(s, scan, norm)
    detuning, position, bias_d, bias_r = per_kind(s, scan)
    fits = {
        (a, b): variance_fit(detuning[a], bias_d[a], position[b], bias_r[b], norm)
        for a, b in itertools.product(range(len(STEPS_DETUNING)), range(len(STEPS_POSITION)))
    }
    a_fit, b_fit = min(fits, key=fits.__getitem__)
    fitted_label = f"h {STEPS_DETUNING[a_fit]:g} rad/us, {STEPS_POSITION[b_fit]:g} um"
    ok = np.flatnonzero(error <= TARGET)
    if not len(ok):
        return Choice("none in the grid", None, float(error.min()), "", fitted_label, fits[a_fit, b_fit])
    m = int(ok[0])
    errors2 = np.where(s.detunings, scan.errors2[k_d[m], m], scan.errors2[k_r[m], m])
    label = f"h {STEPS_DETUNING[k_d[m]]:g} rad/us, {STEPS_POSITION[k_r[m]]:g} um"
    return Choice(
        label, SHOTS[m], float(error[m]), split(s, errors2, norm), fitted_label, fits[a_fit, b_fit]
    )


def variance_fit(mse_d: NDArray, bias_d: float, mse_r: NDArray, bias_r: float, norm: float) -> float:
    """M where the two kinds' bias² + c/M together reach the target."""
    room = (TARGET * norm) ** 2 - bias_d - bias_r
    c = variance_coefficient(mse_d, bias_d) + variance_coefficient(mse_r, bias_r)
    return c / room if room > 0 else float("inf")


def split(s: Setup, errors2: NDArray, norm: float) -> str:
    """The relative error's detuning and position parts of squared errors (repeats, parameters)."""
    mse = errors2.mean(axis=0)
    parts = np.sqrt([mse[s.detunings].sum(), mse[~s.detunings].sum()]) / norm
    return f"{parts[0]:.3f} / {parts[1]:.3f}"


def finite(value: float) -> float | None:
    """``value``, or None where it is not finite (JSON has no infinity)."""
    return float(value) if np.isfinite(value) else None


def print_grid(title: str, settings: list[str], error: NDArray, floor: NDArray) -> None:
    print(f"\n{title}")
    print(f"{'M':>9} " + " ".join(f"{name:>22}" for name in settings))
    print(f"{'(bias)':>9} " + " ".join(f"{b:>22.4f}" for b in floor))
    for m, shots in enumerate(SHOTS):
        print(f"{shots:>9} " + " ".join(f"{e:>22.4f}" for e in error[:, m]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="initial parameters, batch and shots")
    parser.add_argument("--parameters", help="a run's result.json: its parameters by name")
    parser.add_argument("--json", help="also write the grids and the results to this file")
    args = parser.parse_args()
    started = time.perf_counter()
    warnings.simplefilter("ignore", SmallGapWarning)  # the bias of large β is measured, not warned
    s = setup(args.seed, args.parameters)
    norm = float(np.linalg.norm(s.truth))
    readout, gaps = s.backend.readout, s.free.gaps
    assert readout is not None and gaps is not None
    shot_us = qa.load_recipe(RECIPE).duration + s.profile.capabilities.shot_overhead
    print(
        f"Rydberg sensor on {s.profile.label} (nominal): {len(s.phi)} device parameters "
        f"({int(s.detunings.sum())} detunings, {int((~s.detunings).sum())} coordinates), "
        f"{len(s.theta)} coefficients; batch {BATCH}; {args.repeats} repeats; readout "
        f"eps = {readout.false_positive[0]:g}, eps' = {readout.false_negative[0]:g}, mitigated"
    )
    print(
        f"|g*| = {norm:.4g} (detunings {np.linalg.norm(s.truth[s.detunings]):.4g}, coordinates "
        f"{np.linalg.norm(s.truth[~s.detunings]):.4g}); smallest gap {gaps.min():.3g} rad/us; "
        f"one shot {shot_us / 1e6:.4g} s of device time"
    )
    qep = qep_scan(s, args.repeats, args.seed)
    qep_seconds = time.perf_counter() - started
    fd = fd_scan(s, args.repeats, args.seed)
    fd_seconds = time.perf_counter() - started - qep_seconds

    qep_error = np.sqrt(qep.errors2.mean(axis=2).sum(axis=-1)) / norm
    print_grid(
        "QEP, symmetric: relative error vs shots per phase M (device runs 30 M)",
        qep.settings, qep_error, np.sqrt(qep.bias2.sum(axis=-1)) / norm,
    )  # fmt: skip
    detuning, position, bias_d, bias_r = per_kind(s, fd)
    fd_error = np.sqrt(detuning + position) / norm
    print_grid(
        "central finite differences: relative error vs shots per preparation M (device runs 260 M)",
        fd.settings, fd_error, np.sqrt(bias_d + bias_r) / norm,
    )  # fmt: skip
    k_d, k_r, best = best_steps(s, fd, norm)
    print(f"{'':>9} best h per kind (rad/us, um) and its error:")
    for m, shots in enumerate(SHOTS):
        print(f"{shots:>9} {STEPS_DETUNING[k_d[m]]:>6g} {STEPS_POSITION[k_r[m]]:>6g} {best[m]:>10.4f}")

    print("\nwhere the error lies: bias and shot noise at M = 1e6 (fit), detunings / coordinates")
    for name, scan in (("QEP", qep), ("finite differences", fd)):
        for k, (d, r, b_d, b_r) in enumerate(zip(*per_kind(s, scan), strict=True)):
            noise = [np.sqrt(variance_coefficient(mse, b) / 1e6) / norm for mse, b in ((d, b_d), (r, b_r))]
            bias = np.sqrt([b_d, b_r]) / norm
            print(
                f"{name:<19} {scan.settings[k]:<26} bias {bias[0]:.4f} / {bias[1]:.4f}   "
                f"noise {noise[0]:.4f} / {noise[1]:.4f}"
            )

    choices = {"QEP": choose_qep(s, qep, norm), "finite differences": choose_fd(s, fd, norm)}
    prepared = {"QEP": BATCH * 3, "finite differences": BATCH * 2 * len(s.phi)}
    print(f"\ncheapest setting with a relative error <= {TARGET:g} (error split: detunings / coordinates)")
    print(
        f"{'method':<19} {'setting':<26} {'M':>9} {'error':>7} {'split':>15} {'device runs':>12} "
        f"{'device time':>12}"
    )
    rows: dict[str, dict[str, Any]] = {}
    for name, c in choices.items():
        runs = None if c.shots is None else prepared[name] * c.shots
        fitted_runs = prepared[name] * c.fitted_shots
        rows[name] = {
            "setting": c.label,
            "shots_per_preparation": c.shots,
            "relative_error": c.error,
            "error_detunings_coordinates": c.detail,
            "device_runs": runs,
            "device_time_h": None if runs is None else runs * shot_us / 3.6e9,
            "fitted_setting": c.fitted_label,
            "fitted_shots_per_preparation": finite(c.fitted_shots),
            "fitted_device_runs": finite(fitted_runs),
            "fitted_device_time_h": finite(fitted_runs * shot_us / 3.6e9),
        }
        time_h = "-" if runs is None else f"{runs * shot_us / 3.6e9:.1f} h"
        shots_text = "-" if c.shots is None else f"{c.shots}"
        runs_text = "-" if runs is None else f"{runs:.3g}"
        print(
            f"{name:<19} {c.label:<26} {shots_text:>9} {c.error:>7.4f} {c.detail:>15} {runs_text:>12} "
            f"{time_h:>12}"
        )
    for name, c in choices.items():
        fitted = prepared[name] * c.fitted_shots
        print(
            f"{name:<19} {c.fitted_label:<26} {c.fitted_shots:>9.3g} {'(fit)':>7} {'':>15} "
            f"{fitted:>12.3g} {fitted * shot_us / 3.6e9:>10.1f} h"
        )
    grid_ratio = None
    if all(r["device_runs"] for r in rows.values()):
        grid_ratio = rows["finite differences"]["device_runs"] / rows["QEP"]["device_runs"]
    fit_ratio = (prepared["finite differences"] * choices["finite differences"].fitted_shots) / (
        prepared["QEP"] * choices["QEP"].fitted_shots
    )
    grid_text = "-" if grid_ratio is None else f"{grid_ratio:.2f}"
    print(f"device runs, finite differences / QEP: {grid_text} (grid), {fit_ratio:.2f} (fitted M)")
    print(f"{qep_seconds:.0f} s QEP, {fd_seconds:.0f} s finite differences")

    if args.json:
        write_json(
            args.json,
            {
                "phi": dict(zip(s.task.parameterisation.names, s.phi.tolist(), strict=True)),
                "truth": s.truth.tolist(),
                "repeats": args.repeats,
                "seed": args.seed,
                "shots": list(SHOTS),
                "shot_time_us": shot_us,
                "qep": {"betas": list(BETAS), "relative_error": qep_error.tolist()},
                "finite_differences": {
                    "steps_detuning": list(STEPS_DETUNING),
                    "steps_position": list(STEPS_POSITION),
                    "relative_error_detunings": (np.sqrt(detuning) / norm).tolist(),
                    "relative_error_coordinates": (np.sqrt(position) / norm).tolist(),
                },
                "cheapest": rows,
                "ratio_grid": grid_ratio,
                "ratio_fitted": finite(fit_ratio),
            },
            "qep-bench-lab-currency/1",
        )


if __name__ == "__main__":
    main()
