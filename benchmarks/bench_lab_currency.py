"""Device runs for a 10 % gradient error: QEP against central finite differences on a phase sensor.

``--task rydberg`` (default): the sensor of ``examples/rydberg_sensor.yaml`` on aquila-like (nominal
profile), 13 device parameters (9 local detunings in rad/µs, 4 sensor coordinates in µm).
``--task ion``: the sensor of ``examples/ion_sensor.yaml`` on yb171-chain (nominal profile), 20 device
parameters (per beat-note side the two sensors' Rabi frequencies in units of the chain's Rabi
frequency Ω0, and the fields of all eight ions in units of that side's J0).

Each at its initial parameters φ (seed 0; ``--parameters``: a run's ``result.json``), one batch of 10
inputs, squared-error loss. The gradient is the one a lab trains with: dL/dφ of the batch-mean loss,
g = mean_b (dθ_b/dφ)ᵀ dL_b/dθ_b (θ_b the same for every sample on the Rydberg sensor; per beat-note
side on the ion sensor). Both methods read bitstrings from the same exact backend (ground states of
the realised model, the profile's readout errors, mitigated estimates):

- QEP: the measured step (the free phase's counts give ε, then ±βε), B × 3 preparations of M shots
  in each readout basis its generators and outputs need (Rydberg: Z; ions: Z for the fields and
  outputs, X for the couplings: B × 3 × 2 preparations);
- central finite differences: the outputs at φ ± h e_j for every parameter j and input b (Z basis,
  the outputs' only one), L_b from them, g_j = mean_b (L_b(+) − L_b(−)) / 2h; B × 2 × n
  preparations of M shots. The step has one value per kind of parameter (Rydberg: h_δ for the
  detunings in rad/µs, h_r for the coordinates in µm; ions: h_Ω for the Rabi frequencies in units of
  Ω0, h_f for the fields in units of J0), each the best of its grid (the error splits into the two
  kinds' parts, each depending on its own step).

The ion chain's Hamiltonian keeps the parity P = Π_i Z_i (XX couplings and Z fields commute with it),
and in the ordered phases the lowest states of the two parity sectors are degenerate (gaps of 10⁻⁷
rad/µs and below in four of the batch's ten samples). The device prepares each phase by a field ramp
from the chain polarised along a strong global field (``IonPlatform.ramp``: every ion in 1, P = +1
for an even chain), which keeps P: the exact backend's states on an ion profile are the lowest
states within that sector (the realised model's ``parity``), as for training.

Relative error = sqrt(mean over repeats of ‖g − g*‖²) / ‖g*‖, g* the exact linear-response gradient.
A device run is one sequence and one shot: runs = preparations × M; device time = runs × (the
recipe's duration + the profile's per-shot overhead). For each method the cheapest grid setting
whose error is ≤ 10 %, and where the error crosses 10 % on the model MSE = bias² + c/M (the bias
exact, from noise-free estimates; c fitted to the repeats), which does not round M to the grid.
Derived from the same repeats: the runs each method would need if only one kind of parameter were
trained (that kind's part of the error against that kind's part of g*; finite differences then
prepare only that kind's shifts, QEP the same 3 phases read in the bases that kind's generators and
the outputs need).

    python benchmarks/bench_lab_currency.py [--task rydberg|ion] [--repeats 20]
        [--parameters RESULT.json] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time
import warnings
from collections.abc import Callable
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
from qep_analog.sequences.phases import readout_bases
from qep_analog.solvers.equilibrium import Prepared
from qep_analog.storage import write_json
from qep_analog.tasks.ion_sensor import IonSensorTask
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask

ROOT = Path(__file__).resolve().parents[1]
BATCH = 10
TARGET = 0.1
#: the QEP variant whose position gradient leaves out the pairs above the blockade cutoff
QEP_CUTOFF = "QEP, cutoff"


@dataclass(frozen=True)
class Kind:
    """One kind of device parameter: its printed name, the unit of its finite-difference step, the
    steps tried and the keys of the JSON output."""

    name: str
    unit: str
    steps: tuple[float, ...]
    step_key: str
    error_key: str


@dataclass(frozen=True)
class Sensor:
    """What differs between the two benchmarks: the experiment file, the recipe whose duration is a
    shot's sequence, the parameter kinds (the first: names starting with ``prefix``), the grids of β
    (rad/µs) and of shots per preparation, and the backend."""

    title: str
    example: str
    task_type: type
    recipe: str
    prefix: str
    kinds: tuple[Kind, Kind]
    betas: tuple[float, ...]
    shots: tuple[int, ...]
    backend: Callable[[Any, DeviceProfile, int], ExactBackend]


def sensor_backend(task: Any, profile: DeviceProfile, seed: int) -> ExactBackend:
    """The exact backend of the sensor on ``profile``: the realised model (van der Waals couplings,
    or the ion chain's parity sector) read with the profile's readout errors, mitigated."""
    return ExactBackend(task.model, profile, seed=seed)


SENSORS = {
    "rydberg": Sensor(
        "Rydberg sensor", "rydberg_sensor.yaml", RydbergSensorTask,
        "rydberg-aquila",  # its duration is the sequence's in the device time
        "delta_",
        (
            Kind("detunings", "rad/us", (0.1, 0.2, 0.4, 0.8),
                 "steps_detuning", "relative_error_detunings"),
            Kind("coordinates", "um", (0.08, 0.16, 0.32, 0.64),
                 "steps_position", "relative_error_coordinates"),
        ),
        (0.5, 0.75, 1.0, 1.25),
        (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000),
        sensor_backend,
    ),
    # β (rad/µs): the smallest in-sector gap of the batch is 1.7e-3 rad/µs and QEP's bias grows as
    # β², 0.016 of ‖g*‖ at 1e-3; the grid spans 1e-4 (shot noise ≫ bias) to 4e-3 (bias 0.19, above
    # the target). Steps: h_Ω up to 0.25 Ω0, as far as the device's limit of 1.26 Ω0 lets a sensor
    # driven at r = 1 move (the Rabi part's bias is 0.009 of ‖g*‖ there); h_f from 0.025 J0
    # (noise-dominated) to 0.4 J0 (bias 0.11 of ‖g*‖, above the target alone).
    "ion": Sensor(
        "Ion sensor", "ion_sensor.yaml", IonSensorTask,
        "ion-exponential",  # the ramp examples/ion_sensor_device.yaml trains through (2.4 ms)
        "rabi_",
        (
            Kind("Rabi frequencies", "Omega0", (0.015, 0.03, 0.06, 0.12, 0.25),
                 "steps_rabi", "relative_error_rabi"),
            Kind("fields", "J0", (0.025, 0.05, 0.1, 0.2, 0.4), "steps_field", "relative_error_fields"),
        ),
        (1e-4, 3e-4, 1e-3, 1.5e-3, 2e-3, 3e-3, 4e-3),
        (100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000),
        sensor_backend,
    ),
}  # fmt: skip


def sample_coefficients(geometry: Any, phi: NDArray, x: NDArray) -> NDArray:
    """θ_b of every sample (B, coefficients): per sample, or the same for all."""
    if hasattr(geometry, "sample_coefficients"):
        return np.asarray(geometry.sample_coefficients(phi, x))
    return np.tile(geometry.coefficients(phi), (len(x), 1))


def chain_rule(geometry: Any, phi: NDArray, x: NDArray, per_sample: NDArray) -> NDArray:
    """dL/dφ = mean_b (dθ_b/dφ)ᵀ dL_b/dθ_b from the samples' dL_b/dθ_b (B, coefficients), as the
    trainer takes it."""
    if hasattr(geometry, "sample_jacobians"):
        jacobians = np.asarray(geometry.sample_jacobians(phi, x))
        return np.asarray(np.einsum("bp,bpf->f", per_sample, jacobians) / len(per_sample))
    return np.asarray(geometry.jacobian(phi)).T @ per_sample.mean(axis=0)


@dataclass
class Setup:
    """The point of the comparison: parameters, batch, backend, the free states and the truth."""

    sensor: Sensor
    task: Any
    profile: DeviceProfile
    phi: NDArray
    x: NDArray
    y: NDArray
    backend: ExactBackend
    free: Prepared
    error_signal: NDArray
    truth: NDArray
    #: the position gradient's blockade cutoff of the second QEP variant (rad/µs), or None
    cutoff: float | None = None

    @property
    def shots(self) -> tuple[int, ...]:
        return self.sensor.shots

    def coefficients(self, phi: NDArray) -> NDArray:
        """θ_b of every sample (B, coefficients)."""
        return sample_coefficients(self.task.parameterisation, phi, self.x)

    @property
    def theta(self) -> NDArray:
        return self.coefficients(self.phi)

    def chain_rule(self, per_sample: NDArray, cutoff: float | None = None) -> NDArray:
        """dL/dφ of the batch-mean loss from the samples' dL_b/dθ_b (B, coefficients); with
        ``cutoff``, the pairs coupled more strongly than it left out of the position gradient (the
        Rydberg sensor's ``blockade_cutoff_rad_per_us``)."""
        geometry = self.task.parameterisation
        if cutoff is not None:
            geometry = dataclasses.replace(geometry, blockade_cutoff=cutoff)
        return chain_rule(geometry, self.phi, self.x, per_sample)

    def bases_for(self, mask: NDArray) -> list[str]:
        """The readout bases a QEP phase needs if only the parameters in ``mask`` were trained: those
        of the outputs and of the generators of the coefficients they move."""
        geometry, model = self.task.parameterisation, self.backend.model
        if hasattr(geometry, "sample_jacobians"):
            moved = np.any(
                np.asarray(geometry.sample_jacobians(self.phi, self.x))[..., mask] != 0, axis=(0, 2)
            )
        else:
            moved = np.any(np.asarray(geometry.jacobian(self.phi))[:, mask] != 0, axis=1)
        trainable = {name: op for (name, op), m in zip(model.trainable.items(), moved, strict=True) if m}
        return readout_bases(dataclasses.replace(model, trainable=trainable))

    @property
    def first(self) -> NDArray:
        """Which device parameters are of the first kind (detunings, Rabi frequencies)."""
        return np.array([name.startswith(self.sensor.prefix) for name in self.task.parameterisation.names])

    @property
    def bases(self) -> list[str]:
        """The readout bases of a QEP phase: those its generators and outputs need."""
        return readout_bases(self.backend.model)

    @property
    def basis(self) -> str:
        """The finite differences' readout basis: the outputs' (all Z)."""
        return "Z" * self.backend.model.n_qubits


def setup(sensor: Sensor, seed: int, parameters: str | None, cutoff: float | None = None) -> Setup:
    experiment = qa.load_experiment(ROOT / "examples" / sensor.example, nominal=True, init=parameters)
    task, profile = experiment.task, experiment.profile
    assert isinstance(task, (RydbergSensorTask, IonSensorTask)) and isinstance(task, sensor.task_type)
    assert profile is not None
    phi = task.initial_parameters(np.random.default_rng(seed))
    x, y = task.sample_batch(np.random.default_rng([seed, 1]), BATCH)
    backend = sensor.backend(task, profile, seed)
    eq = backend.equilibrium
    outputs = [s for operator in backend.model.outputs.values() for s in operator if s.factors]
    assert all({letter for _, letter in s.factors} == {"Z"} for s in outputs)  # the FD basis is Z
    geometry = task.parameterisation
    theta = sample_coefficients(geometry, phi, x)
    free = eq.prepare(x, theta, with_gap=True)
    eps = task.loss.error_signal(eq.compiled.output_values(free.strings), y)
    truth = chain_rule(geometry, phi, x, exact_gradient(eq, x, theta, eps, free=free))
    return Setup(sensor, task, profile, phi, x, y, backend, free, eps, truth, cutoff)


@dataclass
class Scan:
    """Squared errors (settings, shots, repeats, parameters) of a method's gradients and the squared
    bias per setting and parameter (noise-free estimates)."""

    settings: list[str]
    errors2: NDArray
    bias2: NDArray


def qep_scan(s: Setup, repeats: int, seed: int) -> dict[str, Scan]:
    """The measured QEP step, ``repeats`` times per (β, M): free round, ε from its counts, nudged
    round, gradient from the counts. ``QEP``: every generator in the chain rule; with ``s.cutoff``
    also ``QEP, cutoff``: the same measured steps, the pairs coupled more strongly than the cutoff
    left out of the position gradient."""
    eq, model, loss, betas = s.backend.equilibrium, s.backend.model, s.task.loss, s.sensor.betas
    cutoffs = {"QEP": None} | ({} if s.cutoff is None else {QEP_CUTOFF: s.cutoff})
    errors2 = {name: np.zeros((len(betas), len(s.shots), repeats, len(s.phi))) for name in cutoffs}
    bias2 = {name: np.zeros((len(betas), len(s.phi))) for name in cutoffs}
    for i, beta in enumerate(betas):
        noise_free = qep_gradient(eq, s.x, s.theta, s.error_signal, beta, free=s.free)
        for name, cutoff in cutoffs.items():
            bias2[name][i] = (s.chain_rule(noise_free, cutoff) - s.truth) ** 2
        for m, shots in enumerate(s.shots):
            for r in range(repeats):
                step = measured_step(
                    s.backend, model, s.x, s.theta, s.y, loss, beta=beta, scheme="symmetric",
                    bases=s.bases, shots=shots, entropy=(seed, i, m, r),
                )  # fmt: skip
                for name, cutoff in cutoffs.items():
                    errors2[name][i, m, r] = (s.chain_rule(step.gradients, cutoff) - s.truth) ** 2
                assert step.shots == qep_preparations(s) * shots  # the device runs counted below
    settings = [f"beta {b:g}" for b in betas]
    return {name: Scan(settings, errors2[name], bias2[name]) for name in cutoffs}


def qep_preparations(s: Setup, bases: list[str] | None = None) -> int:
    """Preparations of a QEP step: three phases per input, read in each basis (default: all the
    model needs)."""
    return BATCH * 3 * len(s.bases if bases is None else bases)


def fd_preparations(s: Setup, parameters: int | None = None) -> int:
    """Preparations of a central-difference step in ``parameters`` (default: all) parameters."""
    return BATCH * 2 * (len(s.phi) if parameters is None else parameters)


def fd_scan(s: Setup, repeats: int, seed: int) -> Scan:
    """Central finite differences of the batch-mean loss in φ, ``repeats`` times per (h, M). The
    2 × n × B preparations of a step are solved once (warm-started from the free states) and read
    anew for every M and repeat, their outputs estimated from the counts as the backend's are."""
    eq, model, loss = s.backend.equilibrium, s.backend.model, s.task.loss
    n = len(s.phi)
    first, second = s.sensor.kinds
    plan = MeasurementPlan(
        model.n_qubits,
        (MeasurementSetting(s.basis, tuple(model_strings(model, generators=False))),),
        lower_bound=1,
    )
    errors2 = np.zeros((len(first.steps), len(s.shots), repeats, n))
    bias2 = np.zeros((len(first.steps), n))
    for k, (h_first, h_second) in enumerate(zip(first.steps, second.steps, strict=True)):
        steps = np.where(s.first, h_first, h_second)
        moved = s.phi + np.concatenate([np.diag(steps), -np.diag(steps)])  # φ + h e_j, then φ − h e_j
        # θ_b at every moved φ, sample-major: row b·2n + j
        thetas = np.array([s.coefficients(p) for p in moved]).transpose(1, 0, 2).reshape(BATCH * 2 * n, -1)
        start = np.repeat(np.asarray(s.free.states), 2 * n, axis=0)
        prepared = eq.prepare(np.repeat(s.x, 2 * n, axis=0), thetas, start=start)

        def gradient(outputs: NDArray, steps: NDArray = steps) -> NDArray:
            losses = loss.value(outputs.reshape(BATCH, 2 * n, -1), s.y[:, None, :])
            return np.asarray(((losses[:, :n] - losses[:, n:]) / (2 * steps)).mean(axis=0))

        bias2[k] = (gradient(eq.compiled.output_values(prepared.strings)) - s.truth) ** 2
        rng = np.random.default_rng([seed, 2, k])
        for m, shots in enumerate(s.shots):
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
    return Scan(
        [step_label(s, a, b) for a, b in zip(first.steps, second.steps, strict=True)], errors2, bias2
    )


def step_label(s: Setup, h_first: float, h_second: float) -> str:
    first, second = s.sensor.kinds
    return f"h {h_first:g} {first.unit}, {h_second:g} {second.unit}"


def variance_coefficient(shots: tuple[int, ...], mse: NDArray, bias2: float) -> float:
    """c of MSE(M) = bias² + c/M from the measured MSE at every M of the grid: each M gives
    M (MSE − bias²), weighted by the square of its variance share (near the bias floor the difference
    is noise)."""
    grid = np.array(shots, dtype=float)
    share = np.clip(1.0 - bias2 / mse, 0.0, None)
    return float(np.sum(share**2 * grid * (mse - bias2)) / np.sum(share**2))


@dataclass
class Choice:
    """The cheapest setting of a method: by the grid (its measured error) and by the fitted model."""

    label: str
    shots: int | None
    error: float
    detail: str
    fitted_label: str
    fitted_shots: float


def choose_qep(s: Setup, scan: Scan, norm: float, mask: NDArray | None = None) -> Choice:
    """The cheapest β and M for the error of the parameters in ``mask`` (default: all) against
    ``norm``."""
    mask = np.ones(len(s.phi), dtype=bool) if mask is None else mask
    mse = scan.errors2[..., mask].mean(axis=2).sum(axis=-1)  # (β, M)
    bias2 = scan.bias2[:, mask].sum(axis=-1)
    error = np.sqrt(mse) / norm
    best: tuple[int, int] | None = None
    for m in range(len(s.shots)):
        ok = np.flatnonzero(error[:, m] <= TARGET)
        if len(ok):
            best = (int(ok[np.argmin(error[ok, m])]), m)
            break
    fitted = [fitted_shots(s.shots, mse[i], bias2[i], norm) for i in range(len(scan.settings))]
    i_fit = int(np.argmin(fitted))
    if best is None:
        return Choice("none in the grid", None, float(error.min()), "", scan.settings[i_fit], fitted[i_fit])
    i, m = best
    return Choice(
        scan.settings[i], s.shots[m], float(error[i, m]), split(s, scan.errors2[i, m], norm),
        scan.settings[i_fit], fitted[i_fit],
    )  # fmt: skip


def fitted_shots(shots: tuple[int, ...], mse: NDArray, bias2: float, norm: float) -> float:
    """M where bias² + c/M reaches the target (inf where the bias alone exceeds it)."""
    room = (TARGET * norm) ** 2 - bias2
    return variance_coefficient(shots, mse, bias2) / room if room > 0 else float("inf")


def per_kind(s: Setup, scan: Scan) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """MSE (steps, M) and squared bias (steps,) of the first kind's part and of the second's."""
    mse = scan.errors2.mean(axis=2)
    return (
        mse[..., s.first].sum(axis=-1),
        mse[..., ~s.first].sum(axis=-1),
        scan.bias2[:, s.first].sum(axis=-1),
        scan.bias2[:, ~s.first].sum(axis=-1),
    )


def best_steps(s: Setup, scan: Scan, norm: float) -> tuple[NDArray, NDArray, NDArray]:
    """Per M: the best first-kind step index, the best second-kind step index and the error of that
    pair."""
    first, second, _, _ = per_kind(s, scan)
    k_1, k_2 = first.argmin(axis=0), second.argmin(axis=0)
    columns = np.arange(len(s.shots))
    error = np.sqrt(first[k_1, columns] + second[k_2, columns]) / norm
    return k_1, k_2, error


def choose_fd(s: Setup, scan: Scan, norm: float) -> Choice:
    k_1, k_2, error = best_steps(s, scan, norm)
    first, second, bias_1, bias_2 = per_kind(s, scan)
    steps = [kind.steps for kind in s.sensor.kinds]
    fits = {
        (a, b): variance_fit(s.shots, first[a], bias_1[a], second[b], bias_2[b], norm)
        for a, b in itertools.product(range(len(steps[0])), range(len(steps[1])))
    }
    a_fit, b_fit = min(fits, key=fits.__getitem__)
    fitted_label = step_label(s, steps[0][a_fit], steps[1][b_fit])
    ok = np.flatnonzero(error <= TARGET)
    if not len(ok):
        return Choice("none in the grid", None, float(error.min()), "", fitted_label, fits[a_fit, b_fit])
    m = int(ok[0])
    errors2 = np.where(s.first, scan.errors2[k_1[m], m], scan.errors2[k_2[m], m])
    label = step_label(s, steps[0][k_1[m]], steps[1][k_2[m]])
    return Choice(
        label, s.shots[m], float(error[m]), split(s, errors2, norm), fitted_label, fits[a_fit, b_fit]
    )


def choose_fd_kind(s: Setup, scan: Scan, norm: float, kind: int) -> Choice:
    """The cheapest step and M of finite differences in one kind's parameters alone."""
    parts = per_kind(s, scan)
    mse, bias2 = parts[kind], parts[kind + 2]
    steps = s.sensor.kinds[kind].steps
    unit = s.sensor.kinds[kind].unit
    error = np.sqrt(mse) / norm  # (steps, M)
    fitted = [fitted_shots(s.shots, mse[k], bias2[k], norm) for k in range(len(steps))]
    k_fit = int(np.argmin(fitted))
    fitted_label = f"h {steps[k_fit]:g} {unit}"
    for m in range(len(s.shots)):
        k = int(np.argmin(error[:, m]))
        if error[k, m] <= TARGET:
            return Choice(
                f"h {steps[k]:g} {unit}", s.shots[m], float(error[k, m]), "", fitted_label, fitted[k_fit]
            )
    return Choice("none in the grid", None, float(error.min()), "", fitted_label, fitted[k_fit])


def variance_fit(
    shots: tuple[int, ...], mse_1: NDArray, bias_1: float, mse_2: NDArray, bias_2: float, norm: float
) -> float:
    """M where the two kinds' bias² + c/M together reach the target."""
    room = (TARGET * norm) ** 2 - bias_1 - bias_2
    c = variance_coefficient(shots, mse_1, bias_1) + variance_coefficient(shots, mse_2, bias_2)
    return c / room if room > 0 else float("inf")


def split(s: Setup, errors2: NDArray, norm: float) -> str:
    """The relative error's first-kind and second-kind parts of squared errors (repeats, parameters)."""
    mse = errors2.mean(axis=0)
    parts = np.sqrt([mse[s.first].sum(), mse[~s.first].sum()]) / norm
    return f"{parts[0]:.3f} / {parts[1]:.3f}"


def finite(value: float) -> float | None:
    """``value``, or None where it is not finite (JSON has no infinity)."""
    return float(value) if np.isfinite(value) else None


def print_grid(s: Setup, title: str, settings: list[str], error: NDArray, floor: NDArray) -> None:
    print(f"\n{title}")
    print(f"{'M':>9} " + " ".join(f"{name:>22}" for name in settings))
    print(f"{'(bias)':>9} " + " ".join(f"{b:>22.4f}" for b in floor))
    for m, shots in enumerate(s.shots):
        print(f"{shots:>9} " + " ".join(f"{e:>22.4f}" for e in error[:, m]))


def print_single_kinds(s: Setup, qeps: dict[str, Scan], fd: Scan, shot_us: float) -> dict[str, Any]:
    """Derived from the same repeats: each method's cheapest setting if only one kind were trained
    (that kind's part of the error against that kind's part of g*)."""
    out: dict[str, Any] = {}
    for kind, name in enumerate(k.name for k in s.sensor.kinds):
        mask = s.first if kind == 0 else ~s.first
        norm = float(np.linalg.norm(s.truth[mask]))
        count = int(mask.sum())
        bases = s.bases_for(mask)
        print(
            f"\nderived: only the {count} {name} trained (their part of the errors above, against their "
            f"|g*| = {norm:.4g}; QEP {qep_preparations(s, bases)} preparations "
            f"({', '.join(b[0] for b in bases)}), finite differences {fd_preparations(s, count)})"
        )
        choices = {
            name: (choose_qep(s, scan, norm, mask), qep_preparations(s, bases))
            for name, scan in qeps.items()
        }
        choices["finite differences"] = (choose_fd_kind(s, fd, norm, kind), fd_preparations(s, count))
        rows: dict[str, dict[str, Any]] = {}
        for method, (c, prepared) in choices.items():
            runs = None if c.shots is None else prepared * c.shots
            fitted = prepared * c.fitted_shots
            shots_text = "-" if c.shots is None else f"{c.shots}"
            runs_text = "-" if runs is None else f"{runs:.3g}"
            time_text = "-" if runs is None else f"{runs * shot_us / 3.6e9:.1f} h"
            print(
                f"{method:<19} {c.label:<26} {shots_text:>9} {c.error:>7.4f} {runs_text:>12} "
                f"{time_text:>12}"
                f"   fit: {c.fitted_label} M = {c.fitted_shots:.3g}, {fitted:.3g} runs"
            )
            rows[method] = {
                "setting": c.label, "shots_per_preparation": c.shots, "relative_error": c.error,
                "device_runs": runs, "fitted_setting": c.fitted_label,
                "fitted_device_runs": finite(fitted),
            }  # fmt: skip
        fd_runs = rows["finite differences"]["device_runs"]
        fd_fitted = choices["finite differences"][0].fitted_shots * choices["finite differences"][1]
        ratios = {}
        for method in qeps:
            runs = rows[method]["device_runs"]
            grid = fd_runs / runs if fd_runs and runs else None
            fit = fd_fitted / (choices[method][0].fitted_shots * choices[method][1])
            grid_text = "-" if grid is None else f"{grid:.2f}"
            print(f"device runs, finite differences / {method}: {grid_text} (grid), {fit:.2f} (fitted M)")
            ratios[method] = {"ratio_grid": grid, "ratio_fitted": finite(fit)}
        out[name] = {"methods": rows, **ratios["QEP"]}
        if QEP_CUTOFF in ratios:
            out[name]["qep_cutoff"] = ratios[QEP_CUTOFF]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=tuple(SENSORS), default="rydberg", help="the sensor")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="initial parameters, batch and shots")
    parser.add_argument("--parameters", help="a run's result.json: its parameters by name")
    parser.add_argument("--json", help="also write the grids and the results to this file")
    parser.add_argument(
        "--cutoff",
        type=float,
        default=10.0,
        help="rydberg: also QEP with the pairs coupled above this (rad/us) left out of the position "
        "gradient, from the same measured steps (0: not)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    warnings.simplefilter("ignore", SmallGapWarning)  # the bias of large β is measured, not warned
    sensor = SENSORS[args.task]
    cutoff = args.cutoff if args.task == "rydberg" and args.cutoff > 0 else None
    s = setup(sensor, args.seed, args.parameters, cutoff)
    first, second = sensor.kinds
    norm = float(np.linalg.norm(s.truth))
    readout, gaps = s.backend.readout, s.free.gaps
    assert readout is not None and gaps is not None
    shot_us = qa.load_recipe(sensor.recipe).duration + s.profile.capabilities.shot_overhead
    print(
        f"{sensor.title} on {s.profile.label} (nominal): {len(s.phi)} device parameters "
        f"({int(s.first.sum())} {first.name}, {int((~s.first).sum())} {second.name}), "
        f"{s.theta.shape[1]} coefficients; batch {BATCH}; {args.repeats} repeats; readout "
        f"eps = {readout.false_positive[0]:g}, eps' = {readout.false_negative[0]:g}, mitigated"
    )
    print(
        f"|g*| = {norm:.4g} ({first.name} {np.linalg.norm(s.truth[s.first]):.4g}, {second.name} "
        f"{np.linalg.norm(s.truth[~s.first]):.4g}); smallest gap {gaps.min():.3g} rad/us; "
        f"one shot {shot_us / 1e6:.4g} s of device time"
    )
    if len(s.bases) > 1:
        print(
            f"QEP reads every phase in {len(s.bases)} bases ({', '.join(b[0] for b in s.bases)}); "
            "finite differences in Z"
        )
    if cutoff is not None:
        dropped = [
            name for name, v in zip(s.backend.model.trainable, s.theta[0], strict=True)
            if name.startswith("V_") and v > cutoff
        ]  # fmt: skip
        print(
            f"{QEP_CUTOFF}: the pairs coupled above {cutoff:g} rad/us ({', '.join(dropped) or 'none'}) "
            "left out of the position gradient, from the same measured steps"
        )
    qeps = qep_scan(s, args.repeats, args.seed)
    qep_seconds = time.perf_counter() - started
    fd = fd_scan(s, args.repeats, args.seed)
    fd_seconds = time.perf_counter() - started - qep_seconds

    per_phase = "per phase" if len(s.bases) == 1 else "per phase and basis"
    qep_errors = {}
    for name, scan in qeps.items():
        qep_errors[name] = np.sqrt(scan.errors2.mean(axis=2).sum(axis=-1)) / norm
        print_grid(
            s,
            f"{name}, symmetric: relative error vs shots {per_phase} M (device runs "
            f"{qep_preparations(s)} M)",
            scan.settings, qep_errors[name], np.sqrt(scan.bias2.sum(axis=-1)) / norm,
        )  # fmt: skip
    qep_error = qep_errors["QEP"]
    mse_1, mse_2, bias_1, bias_2 = per_kind(s, fd)
    fd_error = np.sqrt(mse_1 + mse_2) / norm
    print_grid(
        s,
        f"central finite differences: relative error vs shots per preparation M (device runs "
        f"{fd_preparations(s)} M)",
        fd.settings, fd_error, np.sqrt(bias_1 + bias_2) / norm,
    )  # fmt: skip
    k_1, k_2, best = best_steps(s, fd, norm)
    print(f"{'':>9} best h per kind ({first.unit}, {second.unit}) and its error:")
    for m, shots in enumerate(s.shots):
        print(f"{shots:>9} {first.steps[k_1[m]]:>6g} {second.steps[k_2[m]]:>6g} {best[m]:>10.4f}")

    print(f"\nwhere the error lies: bias and shot noise at M = 1e6 (fit), {first.name} / {second.name}")
    for name, scan in (*qeps.items(), ("finite differences", fd)):
        for k, (d, r, b_d, b_r) in enumerate(zip(*per_kind(s, scan), strict=True)):
            noise = [
                np.sqrt(variance_coefficient(s.shots, mse, b) / 1e6) / norm
                for mse, b in ((d, b_d), (r, b_r))
            ]
            bias = np.sqrt([b_d, b_r]) / norm
            print(
                f"{name:<19} {scan.settings[k]:<26} bias {bias[0]:.4f} / {bias[1]:.4f}   "
                f"noise {noise[0]:.4f} / {noise[1]:.4f}"
            )

    choices = {name: choose_qep(s, scan, norm) for name, scan in qeps.items()}
    choices["finite differences"] = choose_fd(s, fd, norm)
    prepared = {name: qep_preparations(s) for name in qeps} | {"finite differences": fd_preparations(s)}
    print(
        f"\ncheapest setting with a relative error <= {TARGET:g} (error split: {first.name} / "
        f"{second.name})"
    )
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
            f"error_{first.error_key.removeprefix('relative_error_')}_"
            f"{second.error_key.removeprefix('relative_error_')}": c.detail,
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
    ratios: dict[str, tuple[float | None, float]] = {}
    for name in qeps:
        grid_ratio = None
        if rows[name]["device_runs"] and rows["finite differences"]["device_runs"]:
            grid_ratio = rows["finite differences"]["device_runs"] / rows[name]["device_runs"]
        fit_ratio = (prepared["finite differences"] * choices["finite differences"].fitted_shots) / (
            prepared[name] * choices[name].fitted_shots
        )
        ratios[name] = (grid_ratio, fit_ratio)
        grid_text = "-" if grid_ratio is None else f"{grid_ratio:.2f}"
        print(f"device runs, finite differences / {name}: {grid_text} (grid), {fit_ratio:.2f} (fitted M)")
    grid_ratio, fit_ratio = ratios["QEP"]
    single = print_single_kinds(s, qeps, fd, shot_us)
    print(f"{qep_seconds:.0f} s QEP, {fd_seconds:.0f} s finite differences")

    if args.json:
        write_json(
            args.json,
            {
                "task": args.task,
                "phi": dict(zip(s.task.parameterisation.names, s.phi.tolist(), strict=True)),
                "truth": s.truth.tolist(),
                "repeats": args.repeats,
                "seed": args.seed,
                "shots": list(s.shots),
                "shot_time_us": shot_us,
                "qep": {
                    "betas": list(sensor.betas),
                    "bases": s.bases,
                    "relative_error": qep_error.tolist(),
                },
                "finite_differences": {
                    first.step_key: list(first.steps),
                    second.step_key: list(second.steps),
                    first.error_key: (np.sqrt(mse_1) / norm).tolist(),
                    second.error_key: (np.sqrt(mse_2) / norm).tolist(),
                },
                "cheapest": rows,
                "ratio_grid": grid_ratio,
                "ratio_fitted": finite(fit_ratio),
                **(
                    {}
                    if cutoff is None
                    else {
                        "qep_cutoff": {
                            "cutoff_rad_per_us": cutoff,
                            "relative_error": qep_errors[QEP_CUTOFF].tolist(),
                            "ratio_grid": ratios[QEP_CUTOFF][0],
                            "ratio_fitted": finite(ratios[QEP_CUTOFF][1]),
                        }
                    }
                ),
                "single_kind": single,
            },
            "qep-bench-lab-currency/1",
        )


if __name__ == "__main__":
    main()
