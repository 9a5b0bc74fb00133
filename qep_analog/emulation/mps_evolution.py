"""A schedule's H(t) evolved as a matrix product state (TeNPy's two-site TDVP), for chains and 2D
arrays beyond the state-vector limit.

H(t) = static + Σ_k w_k(t)·operator_k (:func:`~qep_analog.sequences.schedule.hamiltonian_terms`),
the waveforms linear between breakpoints. The duration is cut into equal steps
dt = min(``step_phase`` / h_off, duration / ``min_steps``, ``max_step``): h_off is the largest
per-qubit sum of the |coefficients| of the strings with an X or Y factor over the schedule (the part
that does not commute with the diagonal: Ω/2 on a Rydberg array, Σ_j |J_ij| on an ion chain), and
``min_steps`` lets the steps follow the waveforms. Each step is CF4, the commutator-free Magnus
integrator of order 4 of :mod:`~qep_analog.emulation.magnus` (two exponentials of half the step,
H at combinations of the Gauss nodes), each exponential one symmetric two-site TDVP sweep (left to
right and back, order 2 for a constant H); ``integrator="midpoint"`` takes one sweep under the
step's mean Hamiltonian instead (order 2). Two-site TDVP throughout: it grows the bond dimension
from the initial product state (chi 1) up to ``chi_max`` and truncates each two-site update by
``chi_max`` and ``svd_min``; the summed discarded weight is the reported truncation error.

Van der Waals tails (Rydberg): the pairs farther apart than ``cutoff`` µm are dropped (U_ij n_i n_j
removed exactly, not only its ZZ part). Without a ``cutoff`` it is the shortest pair distance at which
every atom's summed dropped couplings Σ_j |U_ij| stay within ``tail_tolerance`` rad/µs; the result
states the cutoff, that largest per-atom sum and the total Σ|U_ij| of the dropped pairs (a bound on
‖H − H_cut‖, since ‖n_i n_j‖ = 1). Ion chains keep every X_i X_j coupling exactly (the MPO carries
each long-range string; its bond dimension grows with the strings crossing a bond, at most N + 1).

The MPS runs along a snake path through the array (rows by y, left to right then right to left; a
chain by x): the nearest neighbours of a row are next to each other, those of a column at most one
row length apart. Readout: Z counts sampled from the MPS (all shots at once, site by site); X or Y
bases by the ideal single-qubit rotation applied to the MPS first (it keeps the canonical form).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from qep_analog.devices.platform import RYDBERG
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.magnus import _A1 as A1
from qep_analog.emulation.magnus import _A2 as A2
from qep_analog.emulation.magnus import _C1 as C1
from qep_analog.emulation.magnus import _C2 as C2
from qep_analog.emulation.qutip_emulator import _GATES
from qep_analog.errors import ConfigError, SolverError
from qep_analog.measurement.estimators import MAX_SHOTS
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliString, PauliSum, pauli_sum
from qep_analog.schema import Field
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms
from qep_analog.sequences.waveforms import Waveform
from qep_analog.solvers.mps import MPSSettings, bond_weight
from qep_analog.solvers.threads import single_blas_thread

_OPERATORS = {"X": "Sigmax", "Y": "Sigmay", "Z": "Sigmaz"}
#: how a step's time dependence is integrated (see :meth:`StringTable.exponents`)
INTEGRATORS = ("cf4", "midpoint")
#: largest number of qubits an MPS evolution takes
MAX_MPS_QUBITS = 256
#: Krylov vectors of one local exponential counted by the memory estimate (TeNPy's Lanczos default)
KRYLOV_VECTORS = 20
#: bytes an evolution allocates whatever its size (the model's terms, TeNPy's bookkeeping)
FIXED_OVERHEAD = 1 << 20
#: shots drawn at once when sampling an MPS (memory: about 60 bytes times chi per shot)
SAMPLE_CHUNK = 1 << 16


@dataclass(frozen=True, kw_only=True)
class MPSEvolutionOptions(MPSSettings):
    """TDVP settings (keyword-only, closed).

    ``chi_max``: largest bond dimension; ``svd_min``: discarded singular values below this (1e-6:
    at N = 12 the same ⟨n_i⟩ to 1e-6 as 1e-10 at a third of the bond dimension);
    ``step_phase``: the time step times the largest per-qubit off-diagonal coefficient sum
    (:func:`off_diagonal_scale`, rad); ``min_steps``: the fewest steps over the duration (they follow
    the waveforms' own variation); ``max_step``: a cap on the time step (µs); ``integrator``: ``cf4``
    (commutator-free Magnus of order 4, two TDVP sweeps per step) or ``midpoint`` (one sweep under
    the step's mean Hamiltonian, order 2); ``krylov_tol``: TeNPy's Lanczos tolerance (``P_tol``) of
    each local exponential; ``cutoff``: van der Waals pairs farther apart are dropped (µm; default:
    from ``tail_tolerance``, rad/µs, the largest summed dropped coupling per atom); ``order``: MPS
    position -> qubit (default: the snake path).
    """

    chi_max: int = 64
    svd_min: float = 1e-6
    step_phase: float = 0.5
    min_steps: int = 20
    max_step: float | None = None
    integrator: str = "cf4"
    krylov_tol: float = 1e-8
    cutoff: float | None = None
    tail_tolerance: float = 1e-3
    order: tuple[int, ...] | None = None

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("chi_max", "integer", low=1, high=4096),
        Field("svd_min", low=0.0, high=1.0, open_high=True),
        Field("step_phase", low=0.0, high=3.0, open_low=True),
        Field("min_steps", "integer", low=1, high=1_000_000),
        Field("max_step", low=0.0, high=1e6, open_low=True, nullable=True),
        Field("integrator", "text", choices=INTEGRATORS),
        Field("krylov_tol", low=0.0, high=1.0, open_low=True),
        Field("cutoff", low=0.0, open_low=True, high=1e6, nullable=True),
        Field("tail_tolerance", low=0.0, high=1e6, open_low=True),
        Field("order", "integers", low=0, nullable=True),
    )
    WHERE: ClassVar[str] = "MPS evolution options"


@dataclass
class MPSEvolutionResult:
    """The final MPS (``state``, a TeNPy ``MPS`` in MPS order, see ``order``), expectation values,
    counts, and what the evolution cost and left out: the largest bond dimension reached, the summed
    discarded weight of the truncations (``truncation_error``), the number of steps, the van der
    Waals cutoff (µm, None: nothing cut) with the largest summed dropped coupling per atom and the
    total of the dropped couplings (rad/µs), the wall time (s)."""

    label: str
    state: Any
    expectations: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] | None = None
    order: tuple[int, ...] = ()
    chi: int = 1
    truncation_error: float = 0.0
    steps: int = 0
    cutoff: float | None = None
    dropped_per_atom: float = 0.0
    dropped_total: float = 0.0
    seconds: float = 0.0

    is_pure = True

    def diagnostics(self) -> dict[str, Any]:
        """The evolution's figures as a JSON-ready mapping."""
        return {
            "chi": self.chi,
            "truncation_error": self.truncation_error,
            "steps": self.steps,
            "cutoff_um": self.cutoff,
            "dropped_coupling_per_atom": self.dropped_per_atom,
            "dropped_coupling_total": self.dropped_total,
            "order": list(self.order),
            "wall_time_s": self.seconds,
        }


def snake_order(positions: NDArray) -> tuple[int, ...]:
    """MPS position -> qubit along a snake through the array: rows of equal y (to 1e-6 of the
    extent) by increasing y, the first left to right, the next right to left; a chain by x."""
    points = np.atleast_2d(np.asarray(positions, dtype=float))
    x = points[:, 0]
    if points.shape[1] == 1:
        return tuple(int(q) for q in np.argsort(x, kind="stable"))
    y = points[:, 1]
    scale = max(float(np.ptp(points)), 1.0) * 1e-6
    rows = np.round(y / scale).astype(np.int64)
    order: list[int] = []
    for k, row in enumerate(np.unique(rows)):
        members = np.flatnonzero(rows == row)
        members = members[np.argsort(x[members], kind="stable")]
        order.extend(int(q) for q in (members[::-1] if k % 2 else members))
    return tuple(order)


@dataclass(frozen=True)
class TailCut:
    """The van der Waals pairs dropped beyond ``cutoff`` µm (None: none) as an operator, with the
    largest summed dropped coupling per atom and their total (rad/µs)."""

    cutoff: float | None
    dropped: PauliSum
    per_atom: float
    total: float


def tail_cut(schedule: Schedule, static: PauliSum, options: MPSEvolutionOptions) -> TailCut:
    """The pairs of a Rydberg schedule's static part to drop (U_ij from its Z_i Z_j coefficients,
    U_ij/4), by ``options.cutoff`` or the shortest one within ``options.tail_tolerance``."""
    if schedule.platform_spec != RYDBERG:
        return TailCut(None, PauliSum({}), 0.0, 0.0)
    n = schedule.n_qubits
    positions = np.asarray(schedule.static["positions"], dtype=float)
    couplings = np.zeros((n, n))
    for string, c in static.items():
        if len(string.factors) == 2:
            (i, _), (j, _) = string.factors
            couplings[i, j] = couplings[j, i] = 4.0 * c
    distance = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    cutoff = options.cutoff
    if cutoff is None:
        candidates = np.unique(np.round(distance[np.triu_indices(n, 1)], 9))
        cutoff = float(candidates[-1]) if len(candidates) else None
        for r in candidates:
            if (
                np.abs(np.where(distance > r + 1e-9, couplings, 0.0)).sum(axis=1).max()
                <= options.tail_tolerance
            ):
                cutoff = float(r)
                break
    if cutoff is None:
        return TailCut(None, PauliSum({}), 0.0, 0.0)
    far = (distance > cutoff + 1e-9) & (couplings != 0.0)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if far[i, j]]
    dropped = pauli_sum((float(couplings[i, j]), f"N{i} N{j}") for i, j in pairs)
    per_atom = float(np.abs(np.where(far, couplings, 0.0)).sum(axis=1).max()) if n else 0.0
    total = float(sum(abs(couplings[i, j]) for i, j in pairs))
    return TailCut(cutoff, dropped, per_atom, total)


def off_diagonal_scale(static: PauliSum, terms: list[tuple[str, PauliSum]], schedule: Schedule) -> float:
    """A bound (rad/µs) on the largest per-qubit sum of |coefficients| of the strings with an X or Y
    factor over the schedule (waveforms at their extreme breakpoint values): the part of H(t) that
    does not commute with the diagonal, which sets the error of a step."""
    n = schedule.n_qubits
    scale = np.zeros(n)
    parts = [(1.0, static)] + [
        (float(np.abs(schedule.controls[name].values).max()), op)
        for name, op in terms
        if name in schedule.controls
    ]
    for weight, operator in parts:
        for string, c in operator.items():
            if any(letter in "XY" for _, letter in string.factors):
                for q, _ in string.factors:
                    scale[q] += weight * abs(c)
    return float(scale.max()) if n else 0.0


def time_steps(schedule: Schedule, step: float) -> NDArray:
    """Step ends from 0 to the duration: equal steps of at most ``step`` µs."""
    count = max(1, math.ceil(schedule.duration / step - 1e-9))
    return np.linspace(0.0, schedule.duration, count + 1)


def mean_value(waveform: Waveform, start: float, stop: float) -> float:
    """The mean of a piecewise-linear waveform over [start, stop] (exact: the trapezoid rule on its
    breakpoints inside and the interval's ends)."""
    inside = waveform.times[(waveform.times > start) & (waveform.times < stop)]
    times = np.concatenate([[start], inside, [stop]])
    values = waveform(times)
    return float(np.sum(0.5 * (values[1:] + values[:-1]) * np.diff(times)) / (stop - start))


class StringTable:
    """The Pauli strings of H(t) as TeNPy terms on MPS positions, with the coefficient vectors of
    the static part and of each control's operator (H(t) = c_static + Σ_k w_k(t) c_k)."""

    def __init__(self, static: PauliSum, terms: list[tuple[str, PauliSum]], position: NDArray) -> None:
        strings = sorted({s for op in [static, *(op for _, op in terms)] for s in op})
        index = {s: k for k, s in enumerate(strings)}
        self.strings = strings
        self.static = self._vector(static, index)
        self.controls = [(name, self._vector(op, index)) for name, op in terms]
        self.terms: list[tuple[list[int], list[str]]] = []
        for string in strings:
            factors = sorted((int(position[q]), _OPERATORS[letter]) for q, letter in string.factors)
            self.terms.append(([p for p, _ in factors], [o for _, o in factors]))

    def mpo_bond(self, n: int) -> int:
        """A bound on the MPO's bond dimension on ``n`` positions: 2 plus the most multi-qubit
        strings spanning one cut between neighbouring positions."""
        spans = [(min(p), max(p)) for p, _ in self.terms if len(p) > 1]
        return 2 + max((sum(1 for a, b in spans if a <= cut < b) for cut in range(n)), default=0)

    def memory_bytes(self, n: int, chi_max: int) -> int:
        """The bytes a TDVP evolution of ``n`` qubits allocates at its peak, every bond as large as
        ``chi_max`` allows (chi_i = min(2^i, 2^(n−i), chi_max)): the MPS (d chi_i² per site), the
        environments of every bond (D chi_i², D :meth:`mpo_bond`), the MPO (n D² d²) and the
        two-site update's Krylov vectors and effective Hamiltonian ((KRYLOV_VECTORS + 2 D) d²
        chi_max²), complex, plus :data:`FIXED_OVERHEAD`."""
        d, bond = 2, self.mpo_bond(n)
        bonds = bond_weight(n, chi_max)
        update = (KRYLOV_VECTORS + 2 * bond) * d * d * chi_max * chi_max
        return FIXED_OVERHEAD + 16 * ((d + bond) * bonds + n * bond * bond * d * d + update)

    def _vector(self, operator: PauliSum, index: dict[PauliString, int]) -> NDArray:
        out = np.zeros(len(index))
        for string, c in operator.items():
            out[index[string]] = c
        return out

    def at(self, schedule: Schedule, t: float) -> NDArray:
        """The coefficients of H(t)."""
        out = self.static.copy()
        for name, vector in self.controls:
            out += float(schedule.controls[name](t)) * vector
        return out

    def exponents(
        self, schedule: Schedule, start: float, stop: float, integrator: str
    ) -> list[tuple[NDArray, float]]:
        """The (coefficients, duration) of the exponentials of one step, applied in order: the mean
        Hamiltonian over the step (``midpoint``), or CF4's two exponentials of half the step at
        combinations of H at the Gauss nodes (``cf4``, :mod:`~qep_analog.emulation.magnus`)."""
        h = stop - start
        if integrator == "midpoint":
            return [(self.coefficients(schedule, start, stop), h)]
        first, second = self.at(schedule, start + C1 * h), self.at(schedule, start + C2 * h)
        return [
            (2.0 * (A2 * first + A1 * second), 0.5 * h),
            (2.0 * (A1 * first + A2 * second), 0.5 * h),
        ]

    def coefficients(self, schedule: Schedule, start: float, stop: float) -> NDArray:
        """The coefficients of the mean Hamiltonian over [start, stop] (µs)."""
        out = self.static.copy()
        for name, vector in self.controls:
            out += mean_value(schedule.controls[name], start, stop) * vector
        return out

    def model(self, lattice: Any, coefficients: NDArray) -> Any:
        """The TeNPy MPO model of Σ_s c_s P_s (identity terms left out: a global phase)."""
        from tenpy.models.model import CouplingModel, MPOModel

        built = CouplingModel(lattice)
        for (positions, names), c in zip(self.terms, coefficients, strict=True):
            if c == 0.0 or not positions:
                continue
            if len(positions) == 1:
                built.add_onsite_term(float(c), positions[0], names[0])
            else:
                built.add_multi_coupling_term(float(c), positions, names, ["Id"] * (len(positions) - 1))
        return MPOModel(lattice, built.calc_H_MPO())


class MPSEmulator:
    """Evolves schedules on a profile's device as an MPS (see the module doc); ``run`` has the
    signature of :meth:`~qep_analog.emulation.qutip_emulator.QutipEmulator.run` (noiseless)."""

    def __init__(self, profile: DeviceProfile, options: MPSEvolutionOptions | None = None) -> None:
        self.profile = profile
        self.options = options or MPSEvolutionOptions()

    def order_of(self, schedule: Schedule) -> tuple[int, ...]:
        """MPS position -> qubit for ``schedule`` (the options' order, else the snake path)."""
        n = schedule.n_qubits
        if self.options.order is not None:
            order = self.options.order
            if sorted(order) != list(range(n)):
                raise ConfigError(
                    f"MPS evolution options: order {list(order)} is not a permutation of 0..{n - 1}"
                )
            return order
        if schedule.platform_spec == RYDBERG:
            return snake_order(np.asarray(schedule.static["positions"], dtype=float))
        return tuple(range(n))

    def run(
        self,
        schedule: Schedule,
        observables: Mapping[str, PauliSum] | None = None,
        *,
        noise: bool | str | Collection[str] = False,
        shots: int | None = None,
        seed: int | None = None,
        realisations: int | None = None,
    ) -> MPSEvolutionResult:
        """Evolve from the schedule's initial basis state; expectation values of ``observables`` and
        ``shots`` bitstrings read in the schedule's readout bases. Noise is not emulated (one-line
        error), so ``realisations`` (noise trajectories, taken for the signature of
        :meth:`~qep_analog.emulation.qutip_emulator.QutipEmulator.run`) has nothing to draw."""
        n = schedule.n_qubits
        if noise:
            raise ConfigError(f"MPS emulator: noise = {noise!r}; it evolves closed systems only")
        if not 2 <= n <= MAX_MPS_QUBITS:
            raise ConfigError(f"MPS emulator: {n} qubits is not in [2, {MAX_MPS_QUBITS}]")
        if shots is not None and not 0 <= shots <= MAX_SHOTS:
            raise ConfigError(f"MPS emulator: shots = {shots} is not in [0, {MAX_SHOTS}]")
        started = time.perf_counter()
        order = self.order_of(schedule)
        position = np.empty(n, dtype=int)
        position[list(order)] = np.arange(n)
        static, terms = hamiltonian_terms(schedule, self.profile)
        cut = tail_cut(schedule, static, self.options)
        table = StringTable(static + cut.dropped * -1.0, terms, position)
        chi_max = self.options.chi_max
        require_memory(f"MPS emulator: {n} qubits at chi_max {chi_max}", table.memory_bytes(n, chi_max))
        psi, chi, truncation, steps = self._evolve(schedule, table, order, self.step(schedule))
        expectations = {
            name: mps_expectation(psi, op, position) for name, op in (observables or {}).items()
        }
        counts = None
        if shots:
            rng = np.random.default_rng(seed)
            counts = sample_mps(psi, order, schedule.readout, shots, rng)
        return MPSEvolutionResult(
            schedule.label, psi, expectations, counts, order, chi, truncation, steps, cut.cutoff,
            cut.per_atom, cut.total, time.perf_counter() - started,
        )  # fmt: skip

    def step(self, schedule: Schedule) -> float:
        """The time step (µs): ``step_phase`` over the off-diagonal scale, capped by ``max_step``."""
        static, terms = hamiltonian_terms(schedule, self.profile)
        scale = off_diagonal_scale(static, terms, schedule)
        step = self.options.step_phase / scale if scale > 0 else schedule.duration
        cap = schedule.duration / self.options.min_steps
        return min(step, cap, self.options.max_step or math.inf)

    @single_blas_thread
    def _evolve(
        self, schedule: Schedule, table: StringTable, order: tuple[int, ...], step: float
    ) -> tuple[Any, int, float, int]:
        """(final MPS, largest bond dimension, summed discarded weight, steps)."""
        import tenpy.tools.optimization as optimization
        from tenpy.algorithms.tdvp import TwoSiteTDVPEngine
        from tenpy.models.lattice import Chain
        from tenpy.networks.mps import MPS
        from tenpy.networks.site import SpinHalfSite

        n = schedule.n_qubits
        bits = schedule.initial_state or "0" * n
        lattice = Chain(n, SpinHalfSite(conserve=None), bc="open", bc_MPS="finite")
        psi = MPS.from_product_state(
            lattice.mps_sites(), [int(bits[q]) for q in order], bc="finite", unit_cell_width=n,
            dtype=np.complex128,
        )  # fmt: skip
        ends = time_steps(schedule, step)
        settings = {
            "trunc_params": {"chi_max": self.options.chi_max, "svd_min": self.options.svd_min},
            "max_dt": None,
            "lanczos_params": {"P_tol": self.options.krylov_tol},
        }
        truncation, chi = 0.0, 1
        engine = None
        previous: NDArray | None = None
        with warnings.catch_warnings(), optimization.temporary_level("skip_arg_checks"):
            warnings.simplefilter("ignore")
            logging.getLogger("tenpy").setLevel(logging.ERROR)
            for a, b in itertools.pairwise(ends):
                for coefficients, dt in table.exponents(
                    schedule, float(a), float(b), self.options.integrator
                ):
                    if previous is None or not np.array_equal(coefficients, previous):
                        model = table.model(lattice, coefficients)
                        if engine is None:
                            engine = TwoSiteTDVPEngine(psi, model, settings)
                        else:
                            engine.model = model
                            engine.init_env(model)
                        previous = coefficients
                    assert engine is not None
                    error = engine.evolve(1, dt)
                    truncation += float(error.eps)
                    chi = max(chi, int(max(psi.chi)))
            if engine is not None:
                engine.options.warn_unused(False)
        if not np.all(np.isfinite(psi.entanglement_entropy())):
            raise SolverError(
                f"MPS emulator: the evolution of schedule {schedule.label!r} did not stay finite"
            )
        return psi, chi, truncation, len(ends) - 1


def mps_expectation(psi: Any, operator: PauliSum, position: NDArray) -> float:
    """⟨O⟩ of a Pauli sum in an MPS (qubit q at MPS site ``position[q]``)."""
    total = 0.0
    single: dict[str, tuple[list[int], list[float]]] = {}
    for string, c in operator.items():
        if not string.factors:
            total += c
        elif len(string.factors) == 1:
            ((q, letter),) = string.factors
            sites, weights = single.setdefault(_OPERATORS[letter], ([], []))
            sites.append(int(position[q]))
            weights.append(c)
        else:
            term = sorted(
                ((_OPERATORS[letter], int(position[q])) for q, letter in string.factors),
                key=lambda item: item[1],
            )
            total += c * float(np.real(psi.expectation_value_term(term)))
    for name, (sites, weights) in single.items():
        values = np.real(psi.expectation_value(name, sites=sites))
        total += float(np.dot(weights, values))
    return total


def sample_bits(
    psi: Any, order: tuple[int, ...], readout: str, shots: int, rng: np.random.Generator
) -> NDArray:
    """``shots`` reads (shots, n) of the MPS, qubit 0 first, each qubit read in its ``readout``
    basis (X, Y: the ideal rotation on its site first). All shots go site by site at once: the
    right-canonical tensors make the conditional probability of each outcome the squared norm of
    the shot's left vector times the site's tensor."""
    n = len(order)
    bits = np.zeros((shots, n), dtype=np.int8)
    left = np.ones((shots, 1), dtype=complex)
    for site in range(n):
        qubit = order[site]
        tensor = psi.get_B(site, "B").to_ndarray()  # (vL, p, vR)
        gate = _GATES.get(readout[qubit])
        if gate is not None:
            tensor = np.einsum("st,atb->asb", gate, tensor)
        branches = np.einsum("ka,asb->ksb", left, tensor)
        weights = np.sum(np.abs(branches) ** 2, axis=2)
        p_one = weights[:, 1] / np.maximum(weights.sum(axis=1), 1e-300)
        draw = (rng.random(shots) < p_one).astype(np.int8)
        bits[:, qubit] = draw
        left = branches[np.arange(shots), draw]
        left /= np.maximum(np.linalg.norm(left, axis=1, keepdims=True), 1e-300)
    return bits


def sample_mps(
    psi: Any, order: tuple[int, ...], readout: str, shots: int, rng: np.random.Generator
) -> dict[str, int]:
    """Bitstring counts (qubit 0 leftmost) of ``shots`` reads (:func:`sample_bits`), drawn
    :data:`SAMPLE_CHUNK` at a time so that memory does not grow with the shots."""
    counts: dict[str, int] = {}
    for start in range(0, shots, SAMPLE_CHUNK):
        bits = sample_bits(psi, order, readout, min(SAMPLE_CHUNK, shots - start), rng)
        keys, found = np.unique(bits, axis=0, return_counts=True)
        for row, c in zip(keys, found, strict=True):
            key = "".join(str(b) for b in row)
            counts[key] = counts.get(key, 0) + int(c)
    return counts
