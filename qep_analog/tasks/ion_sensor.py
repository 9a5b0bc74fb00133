"""The paper's phase sensor carried onto a trapped-ion chain: two sensor ions at the ends of the chain
learn the phase of the long-range transverse-field Ising chain between them — paramagnet,
ferromagnet or antiferromagnet — from what the device sets.

The device (a Mølmer–Sørensen drive at beat note μ on the transverse modes, see
:mod:`qep_analog.devices.ions`) realises

    H = Σ_{i<j} Ω_i Ω_j K_ij(μ) X_i X_j + B Σ_i Z_i + Σ_i h_i Z_i

on ``n_chain + 2`` ions: sensor A (ion 0), the chain (ions 1 … n_chain), sensor B (the last ion).
The input is the chain's point of the phase diagram (B/J0, side). The *side* of the beat note sets
the sign and range of the couplings: above the transverse modes (``above``) they are all positive —
antiferromagnetic, falling off with distance; between the COM mode and the next mode below it
(``below``) the COM mode dominates and they are all negative — ferromagnetic, of long range. The
chain's ions are driven at Ω0 (per side: a fraction of the spin-only limit), J0 is the mean
nearest-neighbour |J| of the chain and B/J0 the global field in units of it.

Trained: per side, the two sensors' Rabi frequencies (in units of that side's Ω0; hence their
couplings Ω_s Ω0 K_sj to every ion and Ω_A Ω_B K_AB to each other) and every ion's field h_i (in
units of that side's J0; the Stark shifts and the global field realise them). A lab programs each
side with its own settings, so the model's coefficients depend on the sample's side
(:class:`IonSensorGeometry` is a per-sample parameterisation). The model's inputs are (B, the
chain's couplings above, below): the chain's coupling operators of both sides, one switched on.

Labels: per side the pseudo-critical field B_c/J0 of the chain alone (sensors undriven, exact
diagonalisation in its own trap), where the order parameter ⟨m²⟩ — uniform for the ferromagnet,
staggered for the antiferromagnet, in X — falls fastest with B; points within ``margin`` of it (in
ln B) have no class. Below B_c the chain is ordered (the side names the order), above it a
paramagnet. Outputs: ⟨n_A⟩, ⟨n_B⟩ with n = (1 − Z)/2, nudged through the sensors' Stark shifts; codewords
paramagnet (1, 1), ferromagnet (0, 0), antiferromagnet (0, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from qep_analog.devices import ion_chain, ions
from qep_analog.devices.platform import ION
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.losses import Loss, SquaredError
from qep_analog.qep.trainer import parameters_from_result
from qep_analog.schema import Field, check_attributes, seed_field
from qep_analog.solvers.threads import single_blas_thread
from qep_analog.tasks.codewords import CodewordSensor, SensorAxes

#: bytes per Pauli string of the model (as the Rydberg sensor's): one per pair of ions (XX), the
#: fields about two per ion
MODEL_STRING_BYTES = 640
#: bytes per test point (its inputs, phase point and label; tracemalloc: 310)
TEST_POINT_BYTES = 384
#: dense 2^m x 2^m float64 matrices of the chain's exact diagonalisation besides X_i and Z_i of each
#: of its m ions (sums, products, eigh's copies; tracemalloc at 6 to 9 ions: 2m + 8 to 2m + 12)
CRITICAL_MATRICES = 14

SENSORS = ("A", "B")
#: the beat-note sides and the order each gives the chain
SIDES = ("above", "below")
ORDER = {"above": "antiferromagnet", "below": "ferromagnet"}
CODEWORDS: dict[str, tuple[float, float]] = {
    "paramagnet": (1.0, 1.0),
    "ferromagnet": (0.0, 0.0),
    "antiferromagnet": (0.0, 1.0),
}
#: the sensors' Rabi frequencies stay below this fraction of the spin-only limit and of the Rabi
#: limit, the fields below this fraction of what the Stark shifts reach: the rest is for the nudges
#: and for calibrated gains
LIMIT_FRACTION = 0.8
#: points of B/J0 on which the chain's order parameter is computed for the labels
LABEL_GRID = 400
TWO_PI_KHZ = 2 * math.pi * 1e-3


def number(i: int) -> PauliSum:
    """n_i = (1 − Z_i)/2."""
    return pauli_sum([(0.5, "I"), (-0.5, f"Z{i}")])


@dataclass(frozen=True)
class Side:
    """One beat note: μ, the kernel K_ij(μ) of all ions, the chain's Rabi frequency Ω0, its J0, the
    sensors' largest Rabi frequency (in units of Ω0), the largest field (in units of J0) and the
    sensors' smallest Rabi frequency (in units of Ω0)."""

    name: str
    beat_note: float
    kernel: NDArray
    rabi: float
    j0: float
    max_sensor_rabi: float
    max_field: float
    min_sensor_rabi: float = 0.0


@dataclass(frozen=True)
class IonSensorGeometry:
    """φ = per side (``above``, ``below``): the sensors' Rabi frequencies r_A, r_B (units of Ω0),
    then every ion's field f_i (units of J0) → the model's coefficients θ_b of each sample:
    couplings r_s Ω0² K_sj of each sensor to each chain ion, r_A r_B Ω0² K_AB, fields f_i J0."""

    sides: tuple[Side, Side]
    n_ions: int

    @property
    def chain(self) -> range:
        return range(1, self.n_ions - 1)

    @property
    def sensor_ions(self) -> tuple[int, int]:
        return 0, self.n_ions - 1

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """The sensor pairs whose couplings are trainable, in model order."""
        a, b = self.sensor_ions
        return [*((a, j) for j in self.chain), *((b, j) for j in self.chain), (a, b)]

    @property
    def labels(self) -> list[str]:
        return [SENSORS[0], *map(str, self.chain), SENSORS[1]]

    @property
    def per_side(self) -> int:
        return len(SENSORS) + self.n_ions

    @property
    def names(self) -> tuple[str, ...]:
        out: list[str] = []
        for side in SIDES:
            out += [f"rabi_{s}_{side}" for s in SENSORS]
            out += [f"field_{label}_{side}" for label in self.labels]
        return tuple(out)

    def side_of(self, inputs: NDArray) -> NDArray:
        """0 (above) or 1 (below) for each row of model inputs (B, above, below)."""
        return np.asarray(np.atleast_2d(inputs)[:, 2] > 0.5, dtype=int)

    def _side_coefficients(self, phi: NDArray, k: int) -> tuple[NDArray, NDArray]:
        side = self.sides[k]
        own = phi[k * self.per_side : (k + 1) * self.per_side]
        rabi = np.ones(self.n_ions)
        rabi[list(self.sensor_ions)] = own[: len(SENSORS)]
        scale = side.rabi**2 * side.kernel
        couplings = [rabi[i] * rabi[j] * scale[i, j] for i, j in self.pairs]
        theta = np.concatenate([couplings, own[len(SENSORS) :] * side.j0])
        jacobian = np.zeros((len(theta), len(phi)))
        offset = k * self.per_side
        for row, (i, j) in enumerate(self.pairs):
            for ion, other in ((i, j), (j, i)):
                if ion in self.sensor_ions:
                    column = offset + self.sensor_ions.index(ion)
                    jacobian[row, column] += rabi[other] * scale[i, j]
        fields = np.arange(len(self.pairs), len(theta))
        jacobian[fields, offset + len(SENSORS) + np.arange(self.n_ions)] = side.j0
        return theta, jacobian

    def sample_coefficients(self, phi: NDArray, inputs: NDArray) -> NDArray:
        rows = [self._side_coefficients(phi, k)[0] for k in range(len(SIDES))]
        return np.array([rows[k] for k in self.side_of(inputs)])

    def sample_jacobians(self, phi: NDArray, inputs: NDArray) -> NDArray:
        per_side = [self._side_coefficients(phi, k)[1] for k in range(len(SIDES))]
        return np.array([per_side[k] for k in self.side_of(inputs)])

    def project(self, phi: NDArray) -> tuple[NDArray, list[str]]:
        """``phi`` moved inside the device's limits: sensor Rabi frequencies in [the side's smallest,
        its largest], fields within ± the side's largest."""
        out = np.asarray(phi, dtype=float).copy()
        for k, side in enumerate(self.sides):
            own = out[k * self.per_side : (k + 1) * self.per_side]
            own[: len(SENSORS)] = np.clip(own[: len(SENSORS)], side.min_sensor_rabi, side.max_sensor_rabi)
            own[len(SENSORS) :] = np.clip(own[len(SENSORS) :], -side.max_field, side.max_field)
        changed = ~np.isclose(out, phi, rtol=0.0, atol=1e-12)
        return out, [name for name, c in zip(self.names, changed, strict=True) if c]


@dataclass(kw_only=True)
class IonSensorTask(CodewordSensor):
    """Two sensor ions learn the phase of an ion chain on ``profile``'s device (see the module doc).
    ``detuning_above_kHz``: μ − ω_COM of the antiferromagnetic side; ``detuning_below_kHz``: ω_COM − μ
    of the ferromagnetic side (inside the gap to the next mode); ``chain_spin_only``: the fraction of
    the spin-only limit the chain's drive uses; ``field_over_j``: the window of B/J0 (sampled
    log-uniformly); ``margin``: the band of ln(B/B_c) without a class; ``min_sensor_rabi``: the
    sensors' smallest Rabi frequency, a fraction of the side's chain Rabi Ω0 (0: a sensor may be
    switched off; above it the sensors stay coupled to the chain and to each other)."""

    profile: DeviceProfile
    n_chain: int = 6
    detuning_above_kHz: float = 20.0
    detuning_below_kHz: float = 2.0
    chain_spin_only: float = 0.5
    phases: tuple[str, ...] = ("paramagnet", "ferromagnet", "antiferromagnet")
    field_over_j: tuple[float, float] = (0.05, 20.0)
    margin: float = 0.15
    min_sensor_rabi: float = 0.0
    init_spread: float = 0.1
    init: str | None = None
    test_size: int = 200
    seed: int = 0
    loss: Loss = field(default_factory=SquaredError)
    model: QEPModel = field(init=False)
    parameterisation: IonSensorGeometry = field(init=False)
    #: the test set's points (B/J0, side) drawn with B/J0 across on a log scale
    plot_axes: ClassVar[SensorAxes] = SensorAxes(
        (0, 1), ("B / J0", "beat note: 0 above the modes, 1 below the COM mode"), "log", 0.15
    )

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("n_chain", "integer", low=2),
        Field("detuning_above_kHz", low=0.0, open_low=True),
        Field("detuning_below_kHz", low=0.0, open_low=True),
        Field("chain_spin_only", low=0.0, high=1.0, open_low=True),
        Field("phases", "texts", choices=tuple(CODEWORDS), min_length=2, distinct=True),
        Field("field_over_j", "range", low=0.0, open_low=True),
        Field("margin", low=0.0),
        Field("min_sensor_rabi", low=0.0),
        Field("init_spread", low=0.0),
        Field("init", "text", nullable=True),
        Field("test_size", "integer", low=1),
        seed_field(),
    )

    def __post_init__(self) -> None:
        check_attributes(self, self.FIELDS, "ion sensor", ConfigError)
        n_ions = self.n_chain + len(SENSORS)
        strings = n_ions * (n_ions - 1) // 2 + 2 * n_ions
        require_memory(
            f"ion sensor: a chain of {self.n_chain} and a test set of {self.test_size} points",
            MODEL_STRING_BYTES * strings + TEST_POINT_BYTES * self.test_size,
        )
        require_memory(
            f"ion sensor: the exact diagonalisation of a chain of {self.n_chain} ions (its phase boundary)",
            8 * 4**self.n_chain * (2 * self.n_chain + CRITICAL_MATRICES),
        )
        self.phases = tuple(self.phases)
        self.field_over_j = (float(self.field_over_j[0]), float(self.field_over_j[1]))
        if self.profile.platform_spec is not ION:
            raise ConfigError(f"ion sensor: device {self.profile.label!r} is not an ion chain")
        self.codewords = np.array([CODEWORDS[p] for p in self.phases])
        n = self.n_chain + len(SENSORS)
        sides = (self._side("above", n), self._side("below", n))
        self.parameterisation = IonSensorGeometry(sides, n)
        self.model = self._build_model()
        self.critical = {side.name: self._critical_field(side) for side in sides}
        self._test_points = self._sample_points(np.random.default_rng([self.seed, 1]), self.test_size)

    # -- the device ---------------------------------------------------------------------------

    def _side(self, name: str, n: int) -> Side:
        """The beat note of a side, checked against the modes and the profile's limits."""
        profile, caps = self.profile, self.profile.ions
        modes = ions.chain_modes(profile, n)
        frequencies = np.sort(modes.frequencies)
        com = float(frequencies[-1])
        if name == "above":
            mu = com + self.detuning_above_kHz * TWO_PI_KHZ
        else:
            mu = com - self.detuning_below_kHz * TWO_PI_KHZ
            gap = (com - float(frequencies[-2])) / TWO_PI_KHZ
            if not mu > frequencies[-2]:
                raise ConfigError(
                    f"ion sensor: detuning_below_kHz = {self.detuning_below_kHz:g} reaches past the "
                    f"next mode, {gap:.4g} kHz below the COM mode of {n} ions on {profile.label!r}"
                )
        low, high = caps.beat_note_detuning
        if not low <= mu <= high:
            raise ConfigError(
                f"ion sensor: beat note 2π·{mu / (2 * math.pi):.6g} MHz ({name}) is outside device "
                f"{profile.label!r}'s range 2π·[{low / (2 * math.pi):g}, {high / (2 * math.pi):g}] MHz"
            )
        kernel = ions.coupling_kernel(profile, n, mu)  # (refuses a beat note on a mode's resonance)
        scale = profile.calibration.rabi_scale
        per_ion = np.abs(modes.lamb_dicke[None, :] * modes.vectors / (mu - modes.frequencies[None, :]))
        # the spin-only parameter of ion i at Rabi frequency Ω is (Ω · scale · max_m per_ion[i, m])²
        reach = per_ion.max(axis=1) * scale
        limit = caps.spin_only_limit
        rabi = min(math.sqrt(self.chain_spin_only * limit) / float(reach.max()), caps.max_rabi)
        sensors = [0, n - 1]
        largest = min(
            math.sqrt(LIMIT_FRACTION * limit) / float(reach[sensors].max()), LIMIT_FRACTION * caps.max_rabi
        )
        chain = range(1, n - 1)
        j0 = float(np.mean([abs(rabi**2 * kernel[i, i + 1]) for i in chain if i + 1 in chain]))
        signs = np.sign(kernel[np.triu_indices(n, 1)])
        if not np.all(signs == (1.0 if name == "above" else -1.0)):
            raise ConfigError(
                f"ion sensor: the couplings {name} the modes at {self._detuning_text(name)} are not all "
                f"of one sign on {profile.label!r}: move the beat note"
            )
        field_high = self.field_over_j[1] * j0
        if field_high > caps.max_global_field:
            raise ConfigError(
                f"ion sensor: B/J0 up to {self.field_over_j[1]:g} needs a global field of "
                f"2π·{field_high / TWO_PI_KHZ:.4g} kHz ({name}), above device {profile.label!r}'s "
                f"2π·{caps.max_global_field / TWO_PI_KHZ:.4g} kHz"
            )
        stark = LIMIT_FRACTION * caps.max_stark_shift / 2 * (1 - 2 * caps.stark_crosstalk)
        if self.min_sensor_rabi > largest / rabi:
            raise ConfigError(
                f"ion sensor: min_sensor_rabi = {self.min_sensor_rabi:g} is above the sensors' largest "
                f"Rabi frequency {largest / rabi:.4g} (units of the chain's, {name}) on {profile.label!r}"
            )
        return Side(name, mu, kernel, rabi, j0, largest / rabi, stark / j0, self.min_sensor_rabi)

    def _chain_couplings(self, side: Side) -> NDArray:
        chain = list(self.parameterisation.chain)
        return np.asarray(side.rabi**2 * side.kernel[np.ix_(chain, chain)])

    def _detuning_text(self, name: str) -> str:
        value = self.detuning_above_kHz if name == "above" else -self.detuning_below_kHz
        return f"μ − ω_COM = 2π·{value:g} kHz"

    # -- the model ----------------------------------------------------------------------------

    def _build_model(self) -> QEPModel:
        geometry = self.parameterisation
        n = geometry.n_ions
        chain = list(geometry.chain)
        inputs = {"B": pauli_sum((1.0, f"Z{i}") for i in range(n))}
        for side in geometry.sides:
            couplings = side.rabi**2 * side.kernel
            inputs[f"chain_{side.name}"] = pauli_sum(
                (float(couplings[i, j]), f"X{i} X{j}") for i in chain for j in chain if i < j
            )
        labels = geometry.labels
        trainable = {
            f"J_{labels[i]}_{labels[j]}": pauli_sum([(1.0, f"X{i} X{j}")]) for i, j in geometry.pairs
        }
        trainable |= {f"h_{labels[i]}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
        a, b = geometry.sensor_ions
        outputs = {f"n_{SENSORS[0]}": number(a), f"n_{SENSORS[1]}": number(b)}
        return QEPModel(n, trainable, outputs, PauliSum(), inputs)

    # -- labels -------------------------------------------------------------------------------

    @single_blas_thread
    def _critical_field(self, side: Side) -> float:
        """B_c/J0 of the chain alone: where ⟨m²⟩ falls fastest with B (exact diagonalisation)."""
        couplings = self._chain_couplings(side)
        m = len(couplings)
        x = [_site(np.array([[0.0, 1.0], [1.0, 0.0]]), i, m) for i in range(m)]
        z = [_site(np.diag([1.0, -1.0]), i, m) for i in range(m)]
        ising = sum(couplings[i, j] * (x[i] @ x[j]) for i in range(m) for j in range(i + 1, m))
        field_sum = reduce(np.add, z)
        signs = np.ones(m) if side.name == "below" else (-1.0) ** np.arange(m)
        order = reduce(np.add, (s * xi for s, xi in zip(signs, x, strict=True))) / m
        order2 = order @ order
        hamiltonian = ising
        polarising = side.j0 * field_sum

        def steepest(grid: NDArray) -> float:
            values = []
            for b in grid:
                _, vectors = np.linalg.eigh(hamiltonian + b * polarising)
                ground = vectors[:, 0]
                values.append(float(ground @ order2 @ ground))
            return float(grid[int(np.argmin(np.gradient(np.array(values), grid)))])

        coarse = np.geomspace(self.field_over_j[0] / 2, 2 * self.field_over_j[1], LABEL_GRID)
        step = float(coarse[1] / coarse[0])
        first = steepest(coarse)
        return steepest(np.geomspace(first / step**2, first * step**2, LABEL_GRID // 4))

    def label(self, points: NDArray) -> list[str | None]:
        """The phase of each point (B/J0, side index); None within the margin of the boundary or for a
        phase the task does not classify."""
        out: list[str | None] = []
        for field_over_j, side_index in np.atleast_2d(points):
            side = SIDES[int(side_index)]
            distance = math.log(field_over_j / self.critical[side])
            if abs(distance) < self.margin:
                out.append(None)
                continue
            phase = "paramagnet" if distance > 0 else ORDER[side]
            out.append(phase if phase in self.phases else None)
        return out

    # -- data ---------------------------------------------------------------------------------

    def phase_points(self, inputs: NDArray) -> NDArray:
        """(B/J0, side index) of model inputs (B, chain above, chain below)."""
        inputs = np.atleast_2d(inputs)
        side = self.parameterisation.side_of(inputs)
        j0 = np.array([self.parameterisation.sides[k].j0 for k in side])
        return np.column_stack([inputs[:, 0] / j0, side])

    def model_inputs(self, points: NDArray) -> NDArray:
        """(B, chain above, chain below) of points (B/J0, side index)."""
        points = np.atleast_2d(points)
        side = points[:, 1].astype(int)
        j0 = np.array([self.parameterisation.sides[k].j0 for k in side])
        return np.column_stack([points[:, 0] * j0, side == 0, side == 1]).astype(float)

    def _sample_points(self, rng: np.random.Generator, size: int) -> NDArray:
        """Points log-uniform in B/J0, either side with probability 1/2, those without a class redrawn."""
        low, high = np.log(self.field_over_j)

        def draw(n: int) -> NDArray:
            return np.column_stack([np.exp(rng.uniform(low, high, n)), rng.integers(0, 2, n)])

        return self.labelled_points(rng, size, draw, f"ion sensor: field_over_j {list(self.field_over_j)}")

    def initial_parameters(self, rng: np.random.Generator) -> NDArray:
        """Sensors driven like the chain (r = 1), fields N(0, ``init_spread``) J0; with ``init`` (a
        finished run's ``result.json``) its parameters."""
        geometry = self.parameterisation
        if self.init is not None:
            start = parameters_from_result(self.init, geometry.names, "ion sensor: init")
            return geometry.project(start)[0]
        parts = []
        for _ in SIDES:
            parts += [np.ones(len(SENSORS)), rng.normal(0.0, self.init_spread, geometry.n_ions)]
        return geometry.project(np.concatenate(parts))[0]

    def describe(self) -> dict[str, Any]:
        # (min_sensor_rabi only when set: checkpoints written without the floor keep resuming)
        floor = {"min_sensor_rabi": self.min_sensor_rabi} if self.min_sensor_rabi > 0 else {}
        sides = self.parameterisation.sides
        return {
            "task": "ion_sensor",
            "device": self.profile.name,
            "n_chain": self.n_chain,
            "detuning_above_kHz": self.detuning_above_kHz,
            "detuning_below_kHz": self.detuning_below_kHz,
            "chain_spin_only": self.chain_spin_only,
            "phases": list(self.phases),
            "field_over_j": list(self.field_over_j),
            "margin": self.margin,
            **floor,
            "init_spread": self.init_spread,
            "init": self.init,
            "test_size": self.test_size,
            "loss": self.loss.name,
            "sides": {
                s.name: {
                    "beat_note_MHz": s.beat_note / (2 * math.pi),
                    "chain_rabi_kHz": s.rabi / TWO_PI_KHZ,
                    "j0_kHz": s.j0 / TWO_PI_KHZ,
                    "alpha": ion_chain.fit_power_law(self._chain_couplings(s))[1],
                    "critical_field_over_j0": self.critical[s.name],
                }
                for s in sides
            },
        }


def _site(single: NDArray, i: int, m: int) -> NDArray:
    """``single`` on site i of m (site 0 the leftmost factor)."""
    return reduce(np.kron, [single if k == i else np.eye(2) for k in range(m)])
