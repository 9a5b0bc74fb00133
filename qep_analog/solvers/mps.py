"""Ground states of long chains as matrix product states (TeNPy DMRG).

:class:`MPSEquilibrium` has the contract of :class:`~qep_analog.solvers.equilibrium.Equilibrium`
(``prepare`` returns a :class:`~qep_analog.solvers.equilibrium.Prepared` with the expectation value
of every Pauli string of the model), so the QEP estimators and the trainer run on it unchanged; no
state vector is ever built. Why TeNPy and not quimb: ``docs/tensor-networks.md``.

The Hamiltonian of each preparation is an MPO built by TeNPy's MPO graph from the model's Pauli
strings: one- and two-site terms, the three-site cluster terms and any longer or long-range string
(a periodic wrap, Rydberg or ion couplings) as multi-site couplings, exactly (no truncation of the
couplings; the MPO bond dimension grows with the number of strings crossing a bond). Qubits are
placed on the MPS in a bandwidth-minimising order (reverse Cuthill-McKee over the interaction graph:
for a periodic chain the folded order 0, N-1, 1, N-2, ...), so that every string is as short as
possible. Nudged states are warm-started from copies of the free states (``start``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.csgraph import reverse_cuthill_mckee

from qep_analog.errors import ConfigError, PreconditionError, SolverError
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliString
from qep_analog.model.qep_model import ModelStrings, QEPModel
from qep_analog.schema import Field, check_attributes, optional, parse_section
from qep_analog.solvers.equilibrium import Prepared
from qep_analog.solvers.exact import DEGENERACY_TOL
from qep_analog.solvers.threads import single_blas_thread

_OPERATORS = {"X": "Sigmax", "Y": "Sigmay", "Z": "Sigmaz"}
#: two-site tensors (chi² d² amplitudes) a DMRG update holds besides the effective Hamiltonian:
#: TeNPy's Lanczos vectors (at most 20) and the SVD's factors
DMRG_VECTORS = 24


class MPSSettings:
    """What the DMRG options (:class:`MPSOptions`) and the TDVP options
    (:class:`~qep_analog.emulation.mps_evolution.MPSEvolutionOptions`) share: their ``FIELDS`` checked
    on construction (the rules, and the one-line messages naming ``WHERE``, of a file's section), the
    MPS ``order`` kept as a tuple, and :meth:`from_mapping`."""

    FIELDS: ClassVar[tuple[Field, ...]]
    #: the name the messages give the options
    WHERE: ClassVar[str]

    def __post_init__(self) -> None:
        check_attributes(self, self.FIELDS, self.WHERE, ConfigError)
        order = getattr(self, "order", None)
        if order is not None:
            object.__setattr__(self, "order", tuple(order))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str | None = None) -> Self:
        """Options from a mapping; unknown keys raise, listing the valid ones (``where``: the name of
        the mapping in messages, default ``WHERE``)."""
        where = cls.WHERE if where is None else where
        return cls(**parse_section(values, optional(cls.FIELDS), where, ConfigError))


@dataclass(frozen=True, kw_only=True)
class MPSOptions(MPSSettings):
    """DMRG settings (keyword-only, closed).

    ``chi_max``: largest bond dimension; ``svd_min``: discarded singular values below this;
    ``energy_tol``: stop when a sweep changes the energy by less (rad/us); ``max_sweeps`` /
    ``min_sweeps``: sweep limits (cold starts use TeNPy's subspace-expansion mixer, warm starts
    not); ``order``: MPS position -> qubit (default: reverse Cuthill-McKee).
    """

    chi_max: int = 64
    svd_min: float = 1e-10
    energy_tol: float = 1e-10
    max_sweeps: int = 40
    min_sweeps: int = 2
    warm_max_sweeps: int | None = None
    order: tuple[int, ...] | None = None

    #: the rule of each option (the same rules read an experiment file's ``execution.mps``)
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("chi_max", "integer", low=1),
        Field("svd_min", low=0.0, high=1.0, open_low=True, open_high=True),
        Field("energy_tol", low=0.0, high=1.0, open_low=True, open_high=True),
        Field("max_sweeps", "integer", low=1),
        Field("min_sweeps", "integer", low=1),
        Field("warm_max_sweeps", "integer", low=1, nullable=True),
        Field("order", "integers", low=0, nullable=True),
    )
    WHERE: ClassVar[str] = "MPS options"


class MPSStrings(ModelStrings):
    """The model's strings and coefficient matrices; ``table`` is itself, so ``table.strings`` reads
    as on a :class:`~qep_analog.model.qep_model.CompiledModel` (no state vectors, any size)."""

    @property
    def table(self) -> MPSStrings:
        return self


def bond_weight(n: int, chi_max: int) -> int:
    """Σ_i chi_i² over the n + 1 bonds of an n-site MPS whose bonds are as large as ``chi_max``
    allows, chi_i = min(2^i, 2^(n−i), chi_max): the entries per physical index its tensors (or their
    environments, per MPO index) hold."""
    return sum(min(2 ** min(i, n - i, 62), chi_max) ** 2 for i in range(n + 1))


def bandwidth_order(n_qubits: int, strings: Sequence[PauliString]) -> tuple[int, ...]:
    """MPS position -> qubit: reverse Cuthill-McKee over the graph joining qubits of a string."""
    rows: list[int] = []
    cols: list[int] = []
    for string in strings:
        qubits = [q for q, _ in string.factors]
        for a in qubits:
            for b in qubits:
                if a != b:
                    rows.append(a)
                    cols.append(b)
    graph = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_qubits, n_qubits))
    return tuple(int(q) for q in reverse_cuthill_mckee(graph, symmetric_mode=True))


@dataclass
class MPSState:
    """A prepared MPS with its diagnostics: energy (rad/us, the identity term included), largest
    bond dimension, largest truncation error of the last sweep, number of sweeps."""

    psi: Any
    energy: float
    chi: int
    truncation: float
    sweeps: int
    extra: dict[str, float] = field(default_factory=dict)


class MPSEquilibrium:
    """Ground states of H(x, theta, nu) by DMRG, as :class:`Prepared` batches (no state vectors)."""

    temperature = None
    thermal = False

    def __init__(
        self,
        model: QEPModel,
        options: MPSOptions | None = None,
        *,
        degeneracy_tol: float = DEGENERACY_TOL,
    ) -> None:
        from tenpy.networks.site import SpinHalfSite

        self.model = model
        self.options = options or MPSOptions()
        self.compiled = MPSStrings(model)
        self.degeneracy_tol = degeneracy_tol
        n = model.n_qubits
        if n < 3:
            raise ConfigError(f"MPS equilibrium: {n} qubits; two-site DMRG needs at least 3")
        order = self.options.order or bandwidth_order(n, self.compiled.strings)
        if sorted(order) != list(range(n)):
            raise ConfigError(f"MPS options: order {list(order)} is not a permutation of 0..{n - 1}")
        self.order = tuple(order)
        self.position = np.empty(n, dtype=int)
        self.position[list(self.order)] = np.arange(n)
        # a model with a parity sector keeps it through TeNPy's parity charge (Π_q Z_q)
        self._site = SpinHalfSite(conserve=None if model.parity is None else "parity")
        self._identity = [k for k, s in enumerate(self.compiled.strings) if not s.factors]
        # (MPS positions, operator names) of every string, positions ascending
        self._terms: list[tuple[list[int], list[str]]] = []
        for string in self.compiled.strings:
            factors = sorted((int(self.position[q]), _OPERATORS[letter]) for q, letter in string.factors)
            self._terms.append(([p for p, _ in factors], [o for _, o in factors]))
        self.range = max((t[0][-1] - t[0][0] for t in self._terms if t[0]), default=0)
        self.check_memory(1)

    @cached_property
    def mpo_bond(self) -> int:
        """The largest bond dimension of the Hamiltonian's MPO (built once with every string on)."""
        return int(max(self.hamiltonian(np.ones(len(self._terms))).H_MPO.chi))

    def memory_bytes(self, batch: int) -> int:
        """The bytes a batch of ``batch`` DMRG solves allocates at its peak, every bond as large as
        ``chi_max`` allows (chi_i = min(2^i, 2^(n-i), chi_max)): the MPS (d chi_i² per site), the
        environments of every bond (D chi_i², D the MPO's bond), the two-site update's Lanczos
        vectors, SVD factors and effective Hamiltonian ((DMRG_VECTORS + 2 D) d² chi_max²), twice
        over for the gap's second DMRG, plus the kept MPS of every member of the batch."""
        n, chi, d = self.model.n_qubits, self.options.chi_max, 2
        bond = self.mpo_bond
        bonds = bond_weight(n, chi)
        itemsize = 16 if any("Sigmay" in names for _, names in self._terms) else 8
        solve = (d + bond) * bonds + (DMRG_VECTORS + 2 * bond) * d * d * chi * chi
        return itemsize * (2 * solve + batch * d * bonds)

    def check_memory(self, batch: int, what: str = "MPS ground states") -> None:
        """Refuse (one-line :class:`ConfigError`) a batch whose DMRG would exceed the memory limit."""
        require_memory(
            f"{what}: a batch of {batch} MPS of {self.model.n_qubits} qubits at chi_max "
            f"{self.options.chi_max}",
            self.memory_bytes(batch),
        )

    @property
    def solver(self) -> MPSEquilibrium:
        """Itself (``solver.degeneracy_tol`` as on the exact equilibrium)."""
        return self

    def coefficients(self, x: ArrayLike, theta: ArrayLike, nu: ArrayLike | None) -> NDArray:
        """String coefficients with a batch axis, broadcasting x, theta and nu."""
        return np.atleast_2d(self.compiled.coefficients(x, theta, nu))

    # -- one Hamiltonian ---------------------------------------------------------------------

    def hamiltonian(self, coefficients: NDArray) -> Any:
        """The TeNPy model (MPO) of sum_s c_s P_s, identity terms left out (added to energies)."""
        from tenpy.models.lattice import Chain
        from tenpy.models.model import CouplingModel, MPOModel

        lattice = Chain(self.model.n_qubits, self._site, bc="open", bc_MPS="finite")
        built = CouplingModel(lattice)
        for (positions, names), c in zip(self._terms, coefficients, strict=True):
            if c == 0.0 or not positions:
                continue
            if len(positions) == 1:
                built.add_onsite_term(float(c), positions[0], names[0])
            else:
                built.add_multi_coupling_term(float(c), positions, names, ["Id"] * (len(positions) - 1))
        mpo = built.calc_H_MPO()
        return MPOModel(lattice, mpo)

    def _product_state(self, lattice_model: Any, complex_: bool, seed: int) -> Any:
        """A fixed generic product state (seeded angles): it overlaps every symmetry sector. With a
        parity sector, a basis state in it (site ``seed`` flipped, and the last one when the sector
        asks for it): DMRG's charges then keep the sector."""
        from tenpy.networks.mps import MPS

        n = self.model.n_qubits
        if self.model.parity is not None:
            flipped = np.zeros(n, dtype=bool)
            flipped[seed % n] = seed > 0
            if (-1) ** int(flipped.sum()) != self.model.parity:
                flipped[-1] = not flipped[-1]
            return MPS.from_product_state(
                lattice_model.lat.mps_sites(), ["down" if f else "up" for f in flipped], bc="finite",
                unit_cell_width=n, dtype=np.complex128 if complex_ else np.float64,
            )  # fmt: skip
        rng = np.random.default_rng([20_240_601, seed])
        polar = rng.uniform(0.25 * np.pi, 0.75 * np.pi, n)
        azimuth = rng.uniform(0.0, 2.0 * np.pi, n) if complex_ else np.zeros(n)
        local = [
            np.array([np.cos(t / 2), np.exp(1j * p) * np.sin(t / 2)])
            for t, p in zip(polar, azimuth, strict=True)
        ]
        if not complex_:
            local = [v.real for v in local]
        return MPS.from_product_state(
            lattice_model.lat.mps_sites(), local, bc="finite", unit_cell_width=n,
            dtype=np.complex128 if complex_ else np.float64,
        )  # fmt: skip

    def _dmrg(
        self, lattice_model: Any, psi: Any, warm: bool, orthogonal_to: list[Any] | None = None
    ) -> Any:
        from tenpy.algorithms import dmrg

        opt = self.options
        max_sweeps = opt.warm_max_sweeps if warm and opt.warm_max_sweeps else opt.max_sweeps
        settings = {
            "mixer": not warm,
            "diag_method": "lanczos",
            "max_E_err": opt.energy_tol,
            "max_S_err": 1.0,
            "min_sweeps": min(opt.min_sweeps, max_sweeps),
            "max_sweeps": max_sweeps,
            "max_trunc_err": None,
            "combine": True,
            "trunc_params": {"chi_max": opt.chi_max, "svd_min": opt.svd_min},
        }
        engine = dmrg.TwoSiteDMRGEngine(psi, lattice_model, settings, orthogonal_to=orthogonal_to)
        energy, psi = engine.run()
        engine.options.warn_unused(True)  # inside the caller's warning filter, not at deletion
        stats = engine.sweep_stats
        return energy, psi, len(stats["sweep"]), float(stats["max_trunc_err"][-1])

    @single_blas_thread
    def solve(
        self,
        coefficients: NDArray,
        start: MPSState | None = None,
        *,
        with_gap: bool = False,
    ) -> MPSState:
        """The ground state of one Hamiltonian; ``start`` warm-starts DMRG from a copy of it."""
        offset = float(sum(coefficients[k] for k in self._identity))
        complex_ = any("Sigmay" in names for _, names in self._terms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("tenpy").setLevel(logging.ERROR)
            lattice_model = self.hamiltonian(coefficients)
            warm = start is not None
            psi = start.psi.copy() if start is not None else self._product_state(lattice_model, complex_, 0)
            energy, psi, sweeps, truncation = self._dmrg(lattice_model, psi, warm)
            if not np.isfinite(energy):
                raise SolverError(f"MPS ground state: DMRG energy {energy} after {sweeps} sweeps")
            state = MPSState(psi, float(energy) + offset, int(max(psi.chi)), truncation, sweeps)
            if with_gap:
                excited = self._product_state(lattice_model, complex_, 1)
                e1, _, sweeps1, _ = self._dmrg(lattice_model, excited, False, orthogonal_to=[psi])
                state.extra["gap"] = float(e1) + offset - state.energy
                state.extra["gap_sweeps"] = sweeps1
        return state

    def expectations(self, state: MPSState) -> NDArray:
        """<P_s> of every string of the model in one MPS."""
        psi = state.psi
        out = np.empty(len(self._terms))
        single: dict[str, list[tuple[int, int]]] = {}
        for k, (positions, names) in enumerate(self._terms):
            if not positions:
                out[k] = 1.0
            elif len(positions) == 1:
                single.setdefault(names[0], []).append((k, positions[0]))
            else:
                term = list(zip(names, positions, strict=True))
                out[k] = float(np.real(psi.expectation_value_term(term)))
        for name, items in single.items():
            values = np.real(psi.expectation_value(name, sites=[p for _, p in items]))
            out[[k for k, _ in items]] = values
        return out

    # -- the Equilibrium contract ------------------------------------------------------------

    def prepare(
        self,
        x: ArrayLike,
        theta: ArrayLike,
        nu: ArrayLike | None = None,
        *,
        start: Sequence[MPSState] | None = None,
        with_gap: bool = False,
        check_degeneracy: bool = True,
        keep_states: bool = True,
    ) -> Prepared:
        """Prepare the batch of ground states; ``start`` (one :class:`MPSState` per member) warm-starts
        DMRG. With ``with_gap``, gaps by a second DMRG orthogonal to the ground state; a gap below
        ``degeneracy_tol`` raises :class:`PreconditionError` unless ``check_degeneracy`` is False;
        without ``keep_states`` the result's ``states`` is empty."""
        coeffs = self.coefficients(x, theta, nu)
        self.check_memory(len(coeffs))
        if start is not None and len(start) != len(coeffs):
            raise ConfigError(f"MPS equilibrium: {len(start)} warm starts for a batch of {len(coeffs)}")
        states = [
            self.solve(c, None if start is None else start[b], with_gap=with_gap)
            for b, c in enumerate(coeffs)
        ]
        gaps = np.array([s.extra["gap"] for s in states]) if with_gap else None
        if gaps is not None and check_degeneracy:
            bad = np.flatnonzero(gaps < self.degeneracy_tol)
            if len(bad):
                k = int(bad[0])
                raise PreconditionError(
                    f"ground state of sample {k} (E0 = {states[k].energy:.10g}) is degenerate: gap "
                    f"{max(gaps[k], 0.0):.3g} below the tolerance {self.degeneracy_tol:.3g}; QEP is "
                    "undefined there"
                )
        strings = np.array([self.expectations(s) for s in states])
        energies = np.array([s.energy for s in states])
        return Prepared(strings, energies, gaps, states if keep_states else [])  # type: ignore[arg-type]
