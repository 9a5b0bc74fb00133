"""The paper's phase sensor carried onto a Rydberg array: two sensor atoms beside a chain learn the
chain's phase — disordered, Z2 or Z3 (Bernien et al. 2017; Keesling et al. 2019) — from what the
device can set.

The chain: ``n_chain`` atoms at spacing ``a`` along x, centred at the origin; two sensor atoms A and B
anywhere in the plane. With n_i = (1 − Z_i)/2 the device Hamiltonian is

    H = Ω/2 Σ_i X_i − δ Σ_i n_i − Σ_i δ_i^loc n_i + Σ_{i<j} C6/r_ij⁶ n_i n_j

over all atoms. The input is the chain's point of the phase diagram (δ/Ω, R_b/a), R_b = (C6/Ω)^{1/6}
the blockade radius: at the fixed spacing a it is set by the drive Ω = C6/(a·R_b/a)⁶ and the
detuning δ = (δ/Ω)·Ω, so the model's inputs are (Ω, δ) and H is linear in them. The couplings of the
chain are fixed (the chain's register); the couplings of the sensors to every atom, C6/r⁶, and the
local detunings δ_i^loc of all atoms (a detuning map) are the model's trainable coefficients. The
outputs are ⟨n_A⟩ and ⟨n_B⟩, nudged through the sensors' local detunings.

What a lab sets are the sensor positions and the local detunings: :class:`SensorGeometry` maps those
parameters φ to the model's coefficients θ(φ), gives dθ/dφ (so dL/dr = Σ dL/dV · dV/dr, with
⟨n_i n_j⟩ read from the same Z bitstrings) and keeps φ inside the device's limits.

Each phase has a codeword of the two sensors' excitations: disordered (0, 0), Z2 (1, 1), Z3 (0, 1)
(the P00, P11 and P01 of the paper's sensor). The loss is the squared distance of (⟨n_A⟩, ⟨n_B⟩) to
the codeword; the max-choice prediction is the nearest codeword.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from qep_analog.devices.platform import RYDBERG
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.model.qep_model import MAX_MAGNITUDE, QEPModel
from qep_analog.qep.losses import Loss, SquaredError
from qep_analog.qep.trainer import parameters_from_result
from qep_analog.schema import Field, check_attributes, seed_field
from qep_analog.tasks.codewords import CodewordSensor, SensorAxes
from qep_analog.units import MAX_LENGTH

#: bytes per Pauli string of the model (tracemalloc: 575); the van der Waals couplings make one per
#: pair of atoms, the fields about two per atom
MODEL_STRING_BYTES = 640
#: bytes per test point (its inputs, phase point and label; tracemalloc: 300)
TEST_POINT_BYTES = 384

SENSORS = ("A", "B")
#: the sensors' excitations (n_A, n_B) that name each phase
CODEWORDS: dict[str, tuple[float, float]] = {"disordered": (0.0, 0.0), "Z2": (1.0, 1.0), "Z3": (0.0, 1.0)}
#: sensors keep this much more than the minimum spacing (the calibrated C6 rescales the register)
SPACING_MARGIN = 1.02
#: sensors stay within this fraction of the field's radius (the register is re-centred on its atoms)
RADIUS_FRACTION = 0.8
#: the local detunings use this fraction of the map's range and of the room |δ| leaves: the rest is
#: for the nudges and for calibrated map gains below 1
LOCAL_FRACTION = 0.8


def number(i: int) -> PauliSum:
    """n_i = (1 − Z_i)/2."""
    return pauli_sum([(0.5, "I"), (-0.5, f"Z{i}")])


def pair(i: int, j: int) -> PauliSum:
    """n_i n_j = (1 − Z_i − Z_j + Z_i Z_j)/4."""
    return pauli_sum([(0.25, "I"), (-0.25, f"Z{i}"), (-0.25, f"Z{j}"), (0.25, f"Z{i} Z{j}")])


def chain_positions(n_chain: int, spacing: float) -> NDArray:
    """The chain's atoms along x, centred at the origin (µm)."""
    x = (np.arange(n_chain) - (n_chain - 1) / 2.0) * spacing
    return np.column_stack([x, np.zeros(n_chain)])


@dataclass(frozen=True)
class SensorGeometry:
    """φ = (local detunings of every atom in rad/µs, then x_A, y_A, x_B, y_B in µm) → the model's
    coefficients θ = (C6/r⁶ of each sensor pair, local detunings), dθ/dφ, and the device's limits."""

    chain: NDArray
    c6: float
    min_spacing: float
    max_radius: float
    max_local_spread: float
    max_local: float
    #: pairs coupled more strongly than this (rad/µs) enter no position gradient; None: every pair
    blockade_cutoff: float | None = None

    @property
    def n_chain(self) -> int:
        return len(self.chain)

    @property
    def n_atoms(self) -> int:
        return self.n_chain + len(SENSORS)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """The sensor pairs (sensor, other atom) whose couplings are trainable, in model order."""
        n = self.n_chain
        out = [(n + s, j) for s in range(len(SENSORS)) for j in range(n)]
        return [*out, (n, n + 1)]

    @property
    def names(self) -> tuple[str, ...]:
        labels = [str(j) for j in range(self.n_chain)] + list(SENSORS)
        local = [f"delta_{label}" for label in labels]
        return (*local, *(f"{axis}_{s}" for s in SENSORS for axis in ("x", "y")))

    def positions(self, phi: NDArray) -> NDArray:
        """Every atom's position (chain, then A, B) for parameters ``phi``."""
        sensors = np.asarray(phi[self.n_atoms :], dtype=float).reshape(len(SENSORS), 2)
        return np.vstack([self.chain, sensors])

    def coefficients(self, phi: NDArray) -> NDArray:
        positions = self.positions(phi)
        couplings = [self.c6 / np.sum((positions[i] - positions[j]) ** 2) ** 3 for i, j in self.pairs]
        return np.concatenate([couplings, np.asarray(phi[: self.n_atoms], dtype=float)])

    def jacobian(self, phi: NDArray) -> NDArray:
        """dθ/dφ, (coefficients, parameters): dV/dr_s = −6 C6 (r_s − r_j) / |r_s − r_j|⁸; with
        ``blockade_cutoff``, zero for the pairs coupled more strongly than it. Such a pair is almost
        never doubly excited, so its ∂L/∂V is small, but its weight ∂V/∂r = 6V/r is large: with the
        readout's false positives (a single excitation and a false one read as a pair) it carries
        most of a measured position gradient's shot noise and little of the gradient
        (BENCHMARKS.md, "Device runs for a 10 % gradient error")."""
        positions = self.positions(phi)
        n_pairs, n_atoms = len(self.pairs), self.n_atoms
        out = np.zeros((n_pairs + n_atoms, len(phi)))
        for k, (i, j) in enumerate(self.pairs):
            d = positions[i] - positions[j]
            if self.blockade_cutoff is not None and self.c6 / np.sum(d**2) ** 3 > self.blockade_cutoff:
                continue
            grad = -6.0 * self.c6 * d / np.sum(d**2) ** 4
            for atom, sign in ((i, 1.0), (j, -1.0)):
                if atom >= self.n_chain:
                    column = n_atoms + 2 * (atom - self.n_chain)
                    out[k, column : column + 2] += sign * grad
        out[n_pairs:, :n_atoms] = np.eye(n_atoms)
        return out

    def project(self, phi: NDArray) -> tuple[NDArray, list[str]]:
        """``phi`` moved inside the device's limits, and the names of the parameters moved: local
        detunings within a window of ``max_local_spread`` and ``±max_local``; sensors inside the
        field and at least the minimum spacing (with a margin) from every atom."""
        out = np.asarray(phi, dtype=float).copy()
        local = out[: self.n_atoms]
        high, low = local.max(), local.min()
        if high - low > self.max_local_spread:
            middle = (high + low) / 2.0
            local[:] = np.clip(
                local, middle - self.max_local_spread / 2, middle + self.max_local_spread / 2
            )
        local[:] = np.clip(local, -self.max_local, self.max_local)
        sensors = out[self.n_atoms :].reshape(len(SENSORS), 2)
        limit = RADIUS_FRACTION * self.max_radius
        for s in range(len(SENSORS)):
            radius = float(np.hypot(*sensors[s]))
            if radius > limit:
                sensors[s] *= limit / radius
        closest = SPACING_MARGIN * self.min_spacing
        for _ in range(50):
            moved = False
            for s in range(len(SENSORS)):
                others = np.vstack([self.chain, np.delete(sensors, s, axis=0)])
                d = sensors[s] - others
                r = np.hypot(d[:, 0], d[:, 1])
                k = int(np.argmin(r))
                if r[k] < closest * (1 - 1e-12):
                    direction = d[k] / r[k] if r[k] > 0 else np.array([0.0, 1.0])
                    sensors[s] = others[k] + direction * closest
                    moved = True
            if not moved:
                break
        changed = ~np.isclose(out, phi, rtol=0.0, atol=1e-12)
        return out, [name for name, c in zip(self.names, changed, strict=True) if c]


@dataclass(kw_only=True)
class RydbergSensorTask(CodewordSensor):
    """Two sensor atoms learn the phase of a Rydberg chain on ``profile``'s device (see the module
    doc). ``phases``: the classes (``disordered``, ``Z2`` and, where the device reaches it, ``Z3``);
    ``delta_over_omega`` and ``rb_over_a``: the input window; ``sensor_start``: the initial sensor
    positions (µm); ``test_size`` points fixed by ``seed``."""

    profile: DeviceProfile
    n_chain: int = 7
    spacing_um: float = 5.0
    phases: tuple[str, ...] = ("disordered", "Z2", "Z3")
    delta_over_omega: tuple[float, float] = (-1.0, 4.0)
    rb_over_a: tuple[float, float] = (1.7, 2.8)
    sensor_start: tuple[tuple[float, float], tuple[float, float]] = ((20.0, 0.0), (0.0, 20.0))
    init_spread: float = 0.5
    init: str | None = None
    test_size: int = 200
    seed: int = 0
    blockade_cutoff_rad_per_us: float | None = None
    loss: Loss = field(default_factory=SquaredError)
    model: QEPModel = field(init=False)
    parameterisation: SensorGeometry = field(init=False)
    #: the test set's points (δ/Ω, R_b/a) drawn with R_b/a across
    plot_axes: ClassVar[SensorAxes] = SensorAxes((1, 0), ("R_b / a", "δ / Ω"))

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("n_chain", "integer", low=3),
        Field("spacing_um", low=0.0, open_low=True, high=MAX_LENGTH),
        Field("phases", "texts", choices=tuple(CODEWORDS), min_length=2, distinct=True),
        Field("delta_over_omega", "range", low=-MAX_MAGNITUDE, high=MAX_MAGNITUDE),
        # (Ω = C6 / (a R_b/a)⁶: within these bounds the sixth power neither overflows nor vanishes)
        Field("rb_over_a", "range", low=1e-3, high=1e3),
        Field("sensor_start", "rows", length=2, min_length=2),
        Field("init_spread", low=0.0),
        Field("init", "text", nullable=True),
        Field("test_size", "integer", low=1),
        seed_field(),
        Field("blockade_cutoff_rad_per_us", low=0.0, open_low=True, high=MAX_MAGNITUDE, nullable=True),
    )

    def __post_init__(self) -> None:
        check_attributes(self, self.FIELDS, "rydberg sensor", ConfigError)
        atoms = self.n_chain + len(SENSORS)
        require_memory(
            f"rydberg sensor: a chain of {self.n_chain} and a test set of {self.test_size} points",
            MODEL_STRING_BYTES * (atoms * (atoms - 1) // 2 + 2 * atoms) + TEST_POINT_BYTES * self.test_size,
        )
        self.phases = tuple(self.phases)
        self.sensor_start = tuple(tuple(float(v) for v in row) for row in self.sensor_start)  # type: ignore[assignment]
        if len(self.sensor_start) != len(SENSORS):
            raise ConfigError(
                f"rydberg sensor: sensor_start has {len(self.sensor_start)} rows, one per sensor (2)"
            )
        if self.profile.platform_spec is not RYDBERG:
            raise ConfigError(f"rydberg sensor: device {self.profile.label!r} is not a Rydberg array")
        caps = self.profile.rydberg
        if caps.local_detuning is None:
            raise ConfigError(
                f"rydberg sensor: device {self.profile.label!r} has no detuning map (local detunings "
                "are trainable)"
            )
        if self.spacing_um < SPACING_MARGIN * caps.min_spacing:
            raise ConfigError(
                f"rydberg sensor: spacing {self.spacing_um:g} µm is below {SPACING_MARGIN:g} × the "
                f"minimum spacing {caps.min_spacing:g} µm of device {self.profile.label!r} (the margin: "
                "a calibrated C6 moves the sensor atoms)"
            )
        self.codewords = np.array([CODEWORDS[p] for p in self.phases])
        chain = chain_positions(self.n_chain, self.spacing_um)
        omega_max, delta_max = self.input_extremes()
        if omega_max > caps.max_rabi:
            raise ConfigError(
                f"rydberg sensor: R_b/a = {self.rb_over_a[0]:g} at {self.spacing_um:g} µm needs "
                f"Ω = {omega_max:.4g} rad/µs, above device {self.profile.label!r}'s "
                f"{caps.max_rabi:.4g} rad/µs (raise rb_over_a or the spacing)"
            )
        headroom = caps.max_abs_detuning - delta_max
        if headroom <= 0:
            raise ConfigError(
                f"rydberg sensor: |δ| up to {delta_max:.4g} rad/µs leaves no room for local detunings "
                f"within device {self.profile.label!r}'s |δ| <= {caps.max_abs_detuning:.4g} rad/µs"
            )
        self.parameterisation = SensorGeometry(
            chain,
            caps.c6,
            caps.min_spacing,
            caps.max_radius,
            LOCAL_FRACTION * caps.local_detuning.max_per_site,
            LOCAL_FRACTION * headroom,
            self.blockade_cutoff_rad_per_us,
        )
        self.model = self._build_model(chain)
        self._test_points = self._sample_points(np.random.default_rng([self.seed, 1]), self.test_size)

    # -- the model ---------------------------------------------------------------------------

    def _build_model(self, chain: NDArray) -> QEPModel:
        n, c6 = self.n_chain, self.parameterisation.c6
        atoms = range(n + len(SENSORS))
        fixed = PauliSum.from_terms(
            (c6 / np.sum((chain[i] - chain[j]) ** 2) ** 3, pair(i, j))
            for i in range(n)
            for j in range(i + 1, n)
        )
        drive = pauli_sum((0.5, f"X{i}") for i in atoms)
        detuning = PauliSum.from_terms((-1.0, number(i)) for i in atoms)
        labels = [*map(str, range(n)), *SENSORS]
        trainable = {f"V_{labels[i]}_{labels[j]}": pair(i, j) for i, j in self.parameterisation.pairs}
        trainable |= {f"delta_{labels[i]}": -1.0 * number(i) for i in atoms}
        outputs = {f"n_{s}": number(n + k) for k, s in enumerate(SENSORS)}
        return QEPModel(n + len(SENSORS), trainable, outputs, fixed, {"omega": drive, "delta": detuning})

    # -- data --------------------------------------------------------------------------------

    def omega(self, rb_over_a: NDArray) -> NDArray:
        """The drive Ω (rad/µs) whose blockade radius is ``rb_over_a`` spacings."""
        return np.asarray(self.profile.rydberg.c6 / (self.spacing_um * np.asarray(rb_over_a)) ** 6)

    def input_extremes(self) -> tuple[float, float]:
        """The largest Ω and |δ| of the input window."""
        omega = float(self.omega(np.array(self.rb_over_a[0])))
        return omega, omega * max(abs(v) for v in self.delta_over_omega)

    def model_inputs(self, points: NDArray) -> NDArray:
        """(Ω, δ) of phase-diagram points (δ/Ω, R_b/a)."""
        points = np.atleast_2d(points)
        omega = self.omega(points[:, 1])
        return np.column_stack([omega, points[:, 0] * omega])

    def phase_points(self, inputs: NDArray) -> NDArray:
        """(δ/Ω, R_b/a) of model inputs (Ω, δ)."""
        inputs = np.atleast_2d(inputs)
        rb = (self.profile.rydberg.c6 / inputs[:, 0]) ** (1 / 6) / self.spacing_um
        return np.column_stack([inputs[:, 1] / inputs[:, 0], rb])

    def label(self, points: NDArray) -> list[str | None]:
        """The phase of each point (None where the task defines none: between the orders, or a phase
        the task does not classify)."""
        from qep_analog.tasks.rydberg_phases import rydberg_chain_phase

        labels = [rydberg_chain_phase(float(d), float(r)) for d, r in np.atleast_2d(points)]
        return [label if label in self.phases else None for label in labels]

    def _sample_points(self, rng: np.random.Generator, size: int) -> NDArray:
        """Points uniform in the input window, those without a class redrawn."""

        def draw(n: int) -> NDArray:
            return np.column_stack(
                [rng.uniform(*self.delta_over_omega, n), rng.uniform(*self.rb_over_a, n)]
            )

        window = (
            f"rydberg sensor: delta_over_omega {list(self.delta_over_omega)}, "
            f"rb_over_a {list(self.rb_over_a)}"
        )
        return self.labelled_points(rng, size, draw, window)

    def initial_parameters(self, rng: np.random.Generator) -> NDArray:
        """Local detunings N(0, ``init_spread``) rad/µs; sensors at ``sensor_start`` ± ``init_spread``
        µm; moved inside the device's limits. With ``init`` (a finished run's ``result.json``): its
        parameters, to fine-tune them (e.g. on a device after training on exact states)."""
        geometry = self.parameterisation
        if self.init is not None:
            start = parameters_from_result(self.init, geometry.names, "rydberg sensor: init")
            return geometry.project(start)[0]
        local = rng.normal(0.0, self.init_spread, geometry.n_atoms)
        sensors = np.asarray(self.sensor_start, dtype=float).ravel()
        sensors = sensors + rng.uniform(-self.init_spread, self.init_spread, sensors.size)
        return geometry.project(np.concatenate([local, sensors]))[0]

    def describe(self) -> dict[str, Any]:
        return {
            "task": "rydberg_sensor",
            "device": self.profile.name,
            "n_chain": self.n_chain,
            "spacing_um": self.spacing_um,
            "phases": list(self.phases),
            "delta_over_omega": list(self.delta_over_omega),
            "rb_over_a": list(self.rb_over_a),
            "sensor_start": [list(s) for s in self.sensor_start],
            "init_spread": self.init_spread,
            "init": self.init,
            "test_size": self.test_size,
            "blockade_cutoff_rad_per_us": self.blockade_cutoff_rad_per_us,
            "loss": self.loss.name,
        }
