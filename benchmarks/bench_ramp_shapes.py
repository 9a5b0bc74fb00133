"""The bias adiabatic preparation leaves in a QEP gradient, per ramp shape, against T·Δ_min.

For each system the free, +βε and −βε phases are prepared by emulated ramps (our exact propagation,
noiseless, the propagation's error held below 1e-8 by step doubling) of each shape at durations
T = (T·Δ_min)/Δ_min, Δ_min the smallest gap along the path to a level the ramp couples; the
emulated symmetric quotient is compared with the exact symmetric QEP gradient of the realised model
at the same β. Each cell is ‖g_emulated − g_exact‖/‖g_exact‖ and, in
brackets, the bias estimate ‖b‖/‖g_exact‖ (:mod:`qep_analog.emulation.preparation_bias`).

Systems (relaxed profiles, so that long ramps are allowed):
- ``qubit``: one Rydberg atom, H = h X + d Z (h = 1, d = −2 rad/µs), from δ_0 = −3 rad/µs, output Z,
  β = 0.01;
- ``rydberg``: the 6-atom chain of examples/models/rydberg_chain.yaml (θ = 4, 3, 0.5, 1.5), from
  δ_0 = −12.6 rad/µs, β = 0.1 (``--atoms 8``: the same chain, 8 atoms); shapes also the gap-aware
  ramp with quintic ends (the default recipe ``rydberg-gap-quintic``: ds/dτ ∝ Δ(s)², 17 gap points);
- ``ion``: 6 ions of yb171-chain, Ω_i = 1.5 rad/µs at μ = 30 rad/µs (all-to-all XX couplings, J_max
  ≈ 0.0012 rad/µs), H = J·XX + b Σ Z_i + s Σ (−1)^i Z_i with b = J_max, s = 0.3 J_max, output
  (Z_0 + Z_1)/2, β = 0.05 J_max, from the field B_0 = 2π·40 kHz; shapes also the ions' exponential
  ramp (τ = T/4.8) with sharp and with quintic ends.

Waveforms are sampled at ``segments`` = max(200, T·Δ_max) breakpoints (at most one radian of the
largest coupled gap per segment) so that the table measures the shapes, not the sampling.

    python benchmarks/bench_ramp_shapes.py [--systems qubit rydberg ion] [--products 10 20 40 80 160]
        [--atoms 6] [--shapes quintic gap_aware+quintic]
    python benchmarks/bench_ramp_shapes.py --calibrate [--models 200] [--seed 7]

``--calibrate`` draws random small models (1–4 Rydberg atoms, 2–4 ions; random couplings, fields,
shape, duration, β, output), and prints the distribution of max_j |g_emulated − g_exact|_j / b_j
(with the constant C = 1) and the coverage at the shipped constant: the basis of BIAS_CONSTANT.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from qep_analog.backends.emulated_gradient import EmulatedGradient, emulated_qep_gradient
from qep_analog.devices.ions import IonControls, realize
from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.emulation import preparation_bias
from qep_analog.emulation.diagnostics import path_spectrum
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.model.model_file import load_model
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import qep_phase_schedules, realised_model
from qep_analog.sequences.recipes import Recipe, load_recipe
from qep_analog.solvers.threads import single_blas_thread

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ("linear", "cosine", "quintic")
ION_SHAPES = (*SHAPES, "exponential", "exponential+quintic")
RYDBERG_SHAPES = (*SHAPES, "gap_aware+quintic")
#: the emulator's error budget in the final state (its ``tol``)
TOLERANCE = 1e-8


@dataclass(frozen=True)
class System:
    """One benchmark system: the model, its point, the device and the recipe its ramps start from."""

    name: str
    model: QEPModel
    theta: NDArray
    beta: float
    profile: DeviceProfile
    recipe: Recipe
    shapes: tuple[str, ...] = SHAPES


def qubit() -> System:
    model = QEPModel(
        1, {"h": pauli_sum([(1.0, "X0")]), "d": pauli_sum([(1.0, "Z0")])}, {"m": pauli_sum([(1.0, "Z0")])}
    )
    recipe = dataclasses.replace(load_recipe("rydberg-quintic"), initial_detuning=-3.0)
    profile = read_profile("fresnel-like", relaxed=True)
    return System("one qubit (Rydberg atom)", model, np.array([1.0, -2.0]), 0.01, profile, recipe)


def rydberg_chain(atoms: int) -> System:
    model = load_model(ROOT / "examples" / "models" / "rydberg_chain.yaml")
    if atoms != model.n_qubits:
        model = chain_model(atoms)
    recipe = dataclasses.replace(load_recipe("rydberg-gap-quintic"), initial_detuning=-12.6)
    profile = read_profile("fresnel-like", relaxed=True)
    theta = np.array([4.0, 3.0, 0.5, 1.5])
    return System(f"Rydberg chain, {atoms} atoms", model, theta, 0.1, profile, recipe, RYDBERG_SHAPES)


def chain_model(n: int) -> QEPModel:
    """The rydberg_chain.yaml model on ``n`` atoms (h, delta, s, J; output the left pair)."""
    trainable = {
        "h": pauli_sum((1.0, f"X{i}") for i in range(n)),
        "delta": pauli_sum((1.0, f"Z{i}") for i in range(n)),
        "s": pauli_sum(((-1.0) ** i, f"Z{i}") for i in range(n)),
        "J": pauli_sum((1.0, f"Z{i} Z{i + 1}") for i in range(n - 1)),
    }
    return QEPModel(n, trainable, {"m": pauli_sum([(0.5, "Z0"), (0.5, "Z1")])})


def ion_chain(n: int = 6) -> System:
    profile = read_profile("yb171-chain", relaxed=True)
    couplings = realize(IonControls(np.full(n, 1.5), 30.0), profile).couplings
    fixed = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    trainable = {
        "b": pauli_sum((1.0, f"Z{i}") for i in range(n)),
        "s": pauli_sum(((-1.0) ** i, f"Z{i}") for i in range(n)),
    }
    model = QEPModel(n, trainable, {"m": pauli_sum([(0.5, "Z0"), (0.5, "Z1")])}, fixed)
    scale = float(np.abs(couplings).max())
    recipe = load_recipe("ion-exponential-smooth")
    theta = np.array([scale, 0.3 * scale])
    return System(f"ion chain, {n} ions", model, theta, 0.05 * scale, profile, recipe, ION_SHAPES)


def shaped(recipe: Recipe, shape: str, duration: float, segments: int) -> Recipe:
    """``recipe`` with ``shape`` (``exponential+quintic``: exponential with quintic ends; likewise
    ``gap_aware+quintic``)."""
    name, _, ends = shape.partition("+")
    time_constant = duration / 4.8 if name == "exponential" else recipe.time_constant
    return dataclasses.replace(
        recipe, shape=name, ends=ends or "sharp", duration=duration, segments=segments,
        time_constant=time_constant,
    )  # fmt: skip


def path_gaps(system: System) -> tuple[float, float]:
    """(Δ_min, Δ_max) of the coupled gap along the free phase's path (a linear ramp, 81 points)."""
    recipe = shaped(system.recipe, "linear", system.recipe.duration, 200)
    realised = realised_model(system.model, system.profile)
    schedule = qep_phase_schedules(
        realised, system.profile, recipe, [], system.theta, [1.0], system.beta, "Z" * system.model.n_qubits
    )[0]
    spectrum = path_spectrum(schedule, system.profile, points=81)
    return float(spectrum.path_gaps.min()), float(spectrum.path_gaps.max())


def on_clock(duration: float, profile: DeviceProfile) -> float:
    clock = profile.capabilities.clock
    return max(1, round(duration / clock)) * clock


def measure(system: System, shape: str, product: float, gaps: tuple[float, float]) -> EmulatedGradient:
    low, high = gaps
    duration = on_clock(product / low, system.profile)
    ticks = int(duration / system.profile.capabilities.clock)
    segments = min(ticks, max(200, math.ceil(duration * high)))
    recipe = shaped(system.recipe, shape, duration, segments)
    return emulated(system, recipe)


def emulated(system: System, recipe: Recipe) -> EmulatedGradient:
    """The emulated gradient of ``system`` through ``recipe``'s ramps, the propagation's error held
    below :data:`TOLERANCE` in the state (step doubling): the quotient divides by β, so an error ε
    in the state is ~ε/β in the gradient, and the table is to measure the ramps, not the steps."""
    emulator = QutipEmulator(system.profile, tol=TOLERANCE)
    return emulated_qep_gradient(
        system.model, system.profile, recipe, [], system.theta, [1.0], system.beta, emulator
    )


@single_blas_thread
def table(systems: list[System], products: list[float], shapes: list[str] | None = None) -> None:
    header = "| system | shape | " + " | ".join(f"T·Δ_min = {p:g}" for p in products) + " |"
    print(header)
    print("|" + "---|" * (2 + len(products)))
    for system in systems:
        started = time.perf_counter()
        gaps = path_gaps(system)
        for shape in [s for s in system.shapes if shapes is None or s in shapes]:
            cells = []
            for product in products:
                g = measure(system, shape, product, gaps)
                cells.append(f"{g.relative_error:.2g} ({g.relative_bias:.2g})")
            print(f"| {system.name} | {shape} | " + " | ".join(cells) + " |", flush=True)
        print(
            f"<!-- {system.name}: Δ_min = {gaps[0]:.4g} rad/µs, Δ_max = {gaps[1]:.4g} rad/µs, "
            f"{time.perf_counter() - started:.0f} s -->"
        )


# random small models for the calibration (and, smaller, for tests/sequences/test_bias_budget.py)


def random_rydberg(rng: np.random.Generator) -> tuple[System, float]:
    n = int(rng.integers(1, 5))
    trainable = {
        "h": pauli_sum((1.0, f"X{i}") for i in range(n)),
        "delta": pauli_sum((1.0, f"Z{i}") for i in range(n)),
    }
    theta = [rng.uniform(0.5, 3.0), rng.uniform(-3.0, 3.0)]
    if n > 1:
        trainable["s"] = pauli_sum(((-1.0) ** i, f"Z{i}") for i in range(n))
        trainable["J"] = pauli_sum((1.0, f"Z{i} Z{i + 1}") for i in range(n - 1))
        theta += [rng.uniform(-1.0, 1.0), rng.uniform(0.3, 2.0)]
    model = QEPModel(n, trainable, {"m": pauli_sum([(1.0, f"Z{int(rng.integers(0, n))}")])})
    recipe = dataclasses.replace(
        load_recipe("rydberg-quintic"), initial_detuning=-rng.uniform(3.0, 15.0), segments=400
    )
    profile = read_profile("fresnel-like", relaxed=True)
    system = System("random Rydberg", model, np.array(theta), rng.uniform(0.01, 0.2), profile, recipe)
    return system, float(np.exp(rng.uniform(0.0, np.log(30.0))))


def random_ions(rng: np.random.Generator) -> tuple[System, float]:
    n = int(rng.integers(2, 5))
    profile = read_profile("yb171-chain", relaxed=True)
    couplings = realize(IonControls(np.full(n, 1.5), 30.0), profile).couplings
    fixed = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    trainable = {f"b{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    model = QEPModel(n, trainable, {"m": pauli_sum([(1.0, f"Z{int(rng.integers(0, n))}")])}, fixed)
    scale = float(np.abs(couplings).max())
    recipe = dataclasses.replace(load_recipe("ion-exponential-smooth"), segments=400)
    theta = rng.uniform(0.3, 2.0, n) * scale
    system = System("random ions", model, theta, rng.uniform(0.05, 0.3) * scale, profile, recipe)
    return system, float(np.exp(rng.uniform(np.log(0.5 / scale), np.log(100.0 / scale))))


def random_case(rng: np.random.Generator) -> tuple[System, Recipe]:
    """A random model, point, β, shape (linear, cosine or quintic) and duration."""
    draw: Callable[[np.random.Generator], tuple[System, float]] = (
        random_rydberg if rng.random() < 0.6 else random_ions
    )
    system, duration = draw(rng)
    shape = SHAPES[int(rng.integers(0, 3))]
    duration = on_clock(duration, system.profile)
    return system, shaped(system.recipe, shape, duration, system.recipe.segments)


def ratio(g: EmulatedGradient) -> float:
    """max_j |g_emulated − g_exact|_j / b_j: at most 1 where the estimate bounds every component."""
    return float(np.max(np.abs(g.measured_bias) / np.maximum(g.bias, 1e-300)))


@single_blas_thread
def calibrate(models: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shipped = preparation_bias.BIAS_CONSTANT
    ratios = []
    for _ in range(models):
        system, recipe = random_case(rng)
        g = emulated(system, recipe)
        ratios.append(ratio(g) * shipped)  # the ratio at C = 1
    values = np.array(ratios)
    print(f"{models} random models (seed {seed}): max_j |Δg_j| / b_j at C = 1")
    for q in (50, 90, 95, 99, 100):
        print(f"  {q:>3}th percentile: {np.percentile(values, q):.3g}")
    covered = float(np.mean(values <= shipped))
    print(f"  covered at C = {shipped:g} (shipped): {covered:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=["qubit", "rydberg", "ion"])
    parser.add_argument("--products", type=float, nargs="+", default=[10, 20, 40, 80, 160])
    parser.add_argument("--atoms", type=int, default=6)
    parser.add_argument("--shapes", nargs="+", default=None, help="only these shapes (default: all)")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # small gaps against β on some random models: the comparison holds
    if args.calibrate:
        calibrate(args.models, args.seed)
        return
    makers = {"qubit": qubit, "rydberg": lambda: rydberg_chain(args.atoms), "ion": ion_chain}
    table([makers[name]() for name in args.systems], args.products, args.shapes)


if __name__ == "__main__":
    main()
