"""Our emulator: a schedule's spin Hamiltonian evolved exactly, closed or open.

H(t) = static + Σ_k w_k(t)·operator_k (from :func:`hamiltonian_terms`), the waveforms linear between
breakpoints. By default (``method="magnus"``, :mod:`qep_analog.emulation.magnus`) a commutator-free
Magnus integrator of order 4 steps on the breakpoints, its exponentials acting through Chebyshev
series in compiled kernels; ``method="qutip"`` evolves the same H with QuTiP (``sesolve``/``mesolve``,
the reference): each operator one sparse matrix, each waveform one linearly interpolated QuTiP
coefficient on its own breakpoints.

Noise: the profile's sources (:mod:`qep_analog.devices.noise_sources`, each one channel of Pulser's
``NoiseModel``), all or those named — quasi-static detuning offsets δ_i ~ N(0, (√2/T2*)²) per qubit
and shot, acting as (δ_i/2)·Z_i (``detuning``: the mean free coherence decays as exp(−(t/T2*)²));
Markovian dephasing with Lindblad operators √(γ/2)·Z_i, γ = 1/``markovian_dephasing_time``
(``dephasing``: coherences decay as e^(−γt)); relaxation √(1/T1)·|0⟩⟨1| (``relaxation``);
depolarizing √(r/4)·{X, Y, Z}_i (``depolarizing``); the shot-to-shot amplitude jitter
(``amplitude_jitter``: Ω scaled by a = max(0, 1 + σ·ξ), the ion couplings by a²); the beam's profile
(``laser_waist``); a detuning offset shared by all sites per shot (``detuning_jitter``); the detuning
map's shot-to-shot scale (``detuning_map_jitter``); atoms missing from a shot (``state_prep``);
readout errors ε, ε′ that flip sampled bits independently, per site when the profile holds them per
site (``readout``).

The default method averages |ψ⟩⟨ψ| over ``realisations`` trajectories, each with its own draws and
Z (X, Y) kicks at Poisson times (an exact unravelling of dephasing and depolarizing noise, whose
L†L are multiples of 1); trajectories that change the operators (missing atoms, the map's scale)
evolve in groups that share them. Relaxation's no-jump evolution is not unitary (L†L = n_i/T1), so
a run with ``relaxation`` on is solved by QuTiP's ``mesolve`` with every Lindblad operator, averaged
over the draws, whichever the method. QuTiP's method averages the Lindblad solution over
``realisations`` draws. States are in our basis (qubit 0 the most significant bit, |0⟩ = ground /
dark).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import qutip
import scipy.sparse as sp
from numpy.typing import NDArray

from qep_analog.devices.noise_sources import NoiseRates, noise_sources, platform_sources
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation import magnus, subspace_evolution
from qep_analog.emulation.blockade import (
    DEFAULT_TOLERANCE,
    BlockadeSubspace,
    check_order,
    check_radius,
    cutoff_interaction,
    schedule_blockade_radius,
)
from qep_analog.emulation.noisy_terms import drive_scales, noisy_terms
from qep_analog.emulation.subspace_evolution import SubspaceHamiltonian, embed
from qep_analog.errors import ConfigError, SolverError
from qep_analog.measurement.estimators import MAX_SHOTS
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliString, PauliSum, pauli_sum
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms, initial_state_index

MAX_EMULATED_QUBITS = 16
#: the most trajectories (QuTiP method: draws) a noisy run averages
MAX_TRAJECTORIES = 100_000
#: the noise sources the blockade subspace emulates (diagonal, or scaling the drive: they keep a
#: state in the subspace and its operators as they are); the others are refused where the profile
#: gives them a value
SUBSPACE_SOURCES = frozenset({"detuning", "dephasing", "amplitude_jitter", "detuning_jitter", "readout"})
#: readout flips (ε, ε′): one pair for every qubit, or a value per qubit for each
Flips = tuple[float, float] | tuple[NDArray, NDArray]
#: the ways :class:`QutipEmulator` evolves a schedule
METHODS = ("magnus", "qutip")
#: the subspaces :class:`QutipEmulator` can evolve in (None: the full space)
SUBSPACES = ("blockade",)


@dataclass
class EmulationResult:
    """The final state (ket, or density matrix for open evolution), expectation values, counts.

    In a blockade subspace (``QutipEmulator(..., subspace="blockade")``, ``subspace`` set) the
    state's entries are those of the subspace's configurations (ascending basis indices, qubit 0 the
    most significant bit); :meth:`full_state` embeds it in the 2^n space."""

    label: str
    state: NDArray
    expectations: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] | None = None
    subspace: BlockadeSubspace | None = None

    @property
    def is_pure(self) -> bool:
        return self.state.ndim == 1

    @property
    def configurations(self) -> NDArray | None:
        """The basis indices of the state's entries (None: all 2^n)."""
        return None if self.subspace is None else self.subspace.configurations

    @property
    def blockade_radius(self) -> float | None:
        """The blockade subspace's cutoff radius (µm; None: the full space)."""
        return None if self.subspace is None else self.subspace.radius

    def full_state(self) -> NDArray:
        """The state in the full 2^n space: itself, or a subspace state embedded (its size checked
        against the memory limit)."""
        return self.state if self.subspace is None else embed(self.state, self.subspace)


#: bytes per stored element (basis state x flip mask) while :func:`pauli_matrix` builds it: the
#: row elements, the column indices and the CSR arrays (tracemalloc at 10 to 14 qubits: 58 to 80)
SPARSE_ENTRY_BYTES = 80


def pauli_matrix_bytes(n: int, flip_masks: int) -> int:
    """The bytes :func:`pauli_matrix` allocates for a Pauli sum on ``n`` qubits with ``flip_masks``
    distinct flip masks (the diagonal counted)."""
    return SPARSE_ENTRY_BYTES * (1 << n) * flip_masks


def pauli_matrix(operator: PauliSum, n: int) -> sp.csr_matrix:
    """A Pauli sum as a sparse matrix in our basis (from its strings' bit masks, one cached vector
    per string); its size is checked against the memory limit first."""
    dim = 1 << n
    if not operator:
        return sp.csr_matrix((dim, dim))
    flips = len(magnus.flip_masks([operator], n))
    require_memory(
        f"sparse matrix of a Pauli sum on {n} qubits with {flips} flip masks", pauli_matrix_bytes(n, flips)
    )
    masks, elements = magnus.row_elements(operator, n)
    if not np.any(elements.imag):
        elements = elements.real
    basis = np.arange(dim)
    indices = (basis[:, None] ^ masks[None, :]).ravel()
    indptr = np.arange(0, dim * len(masks) + 1, len(masks))
    matrix = sp.csr_matrix((elements.T.ravel(), indices, indptr), shape=(dim, dim))
    matrix.sort_indices()
    return matrix


def _qobj(matrix: sp.csr_matrix, n: int) -> qutip.Qobj:
    return qutip.Qobj(sp.csr_matrix(matrix, dtype=complex), dims=[[2] * n, [2] * n])


def expectation(state: NDArray, operator: PauliSum, n: int) -> float:
    """⟨O⟩ in a ket or a density matrix."""
    matrix = pauli_matrix(operator, n)
    if state.ndim == 1:
        return float(np.real(np.vdot(state, matrix @ state)))
    return float(np.real((matrix @ state).trace()))


_GATES = {
    "X": np.array([[1, 1], [1, -1]]) / np.sqrt(2),
    "Y": np.array([[1, 1], [1, -1]]) / np.sqrt(2) @ np.diag([1, -1j]),
}


def _apply_gate(state: NDArray, gate: NDArray, axis: int) -> NDArray:
    """``gate`` on tensor axis ``axis`` of ``state`` (shape (2,) * k)."""
    return np.moveaxis(np.tensordot(gate, state, axes=([1], [axis])), 0, axis)


def rotate_to_basis(state: NDArray, basis: str) -> NDArray:
    """Apply the ideal single-qubit rotation that maps the X (H) or Y (H·S†) eigenbasis onto Z, qubit
    by qubit (no 2^n x 2^n unitary is built: a ket stays a vector, a density matrix one matrix)."""
    if set(basis) <= {"Z"}:
        return state
    n = len(basis)
    tensor = np.asarray(state, dtype=complex).reshape((2,) * (n * state.ndim))
    for q, letter in enumerate(basis):
        if letter in _GATES:
            tensor = _apply_gate(tensor, _GATES[letter], q)
            if state.ndim == 2:  # ρ → U ρ U†: the column index takes the conjugate gate
                tensor = _apply_gate(tensor, _GATES[letter].conj(), n + q)
    return np.ascontiguousarray(tensor).reshape(state.shape)


def read_distribution(probabilities: NDArray, n: int, flips: Flips) -> NDArray:
    """The distribution of read bitstrings when each bit of an outcome drawn from ``probabilities``
    flips independently (ε = P(1|0), ε′ = P(0|1), one pair for every qubit or one value per qubit
    each): the channel [[1 − ε_q, ε′_q], [ε_q, 1 − ε′_q]] on qubit q's axis."""
    false_positive = np.broadcast_to(np.asarray(flips[0], dtype=float), (n,))
    false_negative = np.broadcast_to(np.asarray(flips[1], dtype=float), (n,))
    if not (false_positive.any() or false_negative.any()):
        return probabilities
    tensor = probabilities.reshape((2,) * n)
    for q in range(n):
        e, f = false_positive[q], false_negative[q]
        tensor = _apply_gate(tensor, np.array([[1 - e, f], [e, 1 - f]]), q)
    return np.asarray(tensor).reshape(-1)


def site_flips(profile: DeviceProfile, n: int) -> tuple[NDArray, NDArray]:
    """(ε_q, ε′_q) of qubits 0 … n−1 as the lab-loop backends and readout mitigation take them
    (:meth:`~qep_analog.measurement.readout.ReadoutErrors.from_profile`): the profile's per-site
    readout errors when it holds one per qubit, else its device-wide ones on every qubit."""
    errors = ReadoutErrors.from_profile(profile, n)
    return errors.false_positive, errors.false_negative


def sample_counts(
    probabilities: NDArray,
    n: int,
    shots: int,
    rng: np.random.Generator,
    flips: Flips = (0.0, 0.0),
) -> dict[str, int]:
    """Bitstring counts (qubit 0 leftmost) of ``shots`` draws, with independent readout flips
    (ε = P(1|0), ε′ = P(0|1); for every qubit, or per qubit).

    Each shot's read bitstring is an independent draw from the flipped distribution
    (:func:`read_distribution`), so the counts are one multinomial draw: the same distribution of
    counts as drawing and flipping shot by shot, in memory of the number of outcomes (2^n), not of
    shots (at most :data:`MAX_SHOTS`)."""
    if not 0 <= shots <= MAX_SHOTS:
        raise ConfigError(f"emulator: shots = {shots} is not in [0, {MAX_SHOTS}]")
    p = np.clip(np.real(probabilities), 0.0, None)
    p = np.clip(read_distribution(p / p.sum(), n, flips), 0.0, None)
    counts = rng.multinomial(shots, p / p.sum())
    return {format(int(k), f"0{n}b"): int(counts[k]) for k in np.flatnonzero(counts)}


#: complex 2^n x 2^n matrices alive at once when the state is a density matrix: the mean over
#: trajectories and an observable times it (its expectation value); an X or Y readout's rotation
#: adds its copies (tracemalloc at 10 qubits: 2 with a Z readout, 4 with an X readout)
DENSITY_MATRICES = 2
ROTATION_MATRICES = 3
#: complex 2^n x 2^n matrices of QuTiP's open evolution: the summed and the final density matrix and
#: the integrator's (peak RSS at 10 qubits: about 4)
QUTIP_DENSITY_MATRICES = 6
#: complex vectors per part of the Hamiltonian and flip mask: its row elements as built, stacked
#: and split into real and imaginary parts (tracemalloc at 10 and 14 qubits: about 3)
OPERATOR_VECTORS = 4
#: complex state vectors per trajectory (its split real and imaginary parts, its row of the states,
#: the normalised copy)
TRAJECTORY_VECTORS = 4


def collapse_count(rates: NoiseRates, n: int) -> int:
    """How many Lindblad operators :func:`lindblad_operators` builds on ``n`` qubits."""
    per_qubit = (rates.dephasing_rate > 0) + 3 * (rates.depolarizing_rate > 0) + (rates.relaxation_rate > 0)
    return int(per_qubit) * n


def liouvillian_bytes(n: int, flip_masks: int, collapse: int) -> int:
    """The bytes of QuTiP's sparse Liouvillian (complex value and column index per entry) of a
    Hamiltonian with ``flip_masks`` distinct flip masks (its diagonal counted) and ``collapse``
    Lindblad operators on ``n`` qubits: per column of the 4^n superoperator about two entries per flip
    mask (H acting left and right) and one per collapse operator, plus the merged diagonal (within
    2.5x the entries of the evaluated Liouvillian at 6 and 8 qubits, which QuTiP holds per part)."""
    return 24 * (1 << (2 * n)) * (2 * flip_masks + collapse + 2)


def emulation_bytes(
    schedule: Schedule,
    profile: DeviceProfile,
    *,
    density: bool,
    trajectories: int = 1,
    method: str = "magnus",
    collapse: int = 0,
) -> int:
    """The bytes :meth:`QutipEmulator.run` allocates at its peak for ``schedule``: the row elements
    of the Hamiltonian's parts (:data:`OPERATOR_VECTORS` per part and flip mask), the trajectories'
    state vectors, and with ``density`` the 2^n x 2^n complex density matrices
    (:data:`DENSITY_MATRICES`, or QuTiP's :data:`QUTIP_DENSITY_MATRICES`, and
    :data:`ROTATION_MATRICES` for an X or Y readout); with ``collapse`` Lindblad operators (QuTiP's
    ``mesolve``) its Liouvillian (:func:`liouvillian_bytes`)."""
    n = schedule.n_qubits
    dim = 1 << n
    static, terms = hamiltonian_terms(schedule, profile)
    operators = [static, *(op for _, op in terms)]
    masks = len(magnus.flip_masks(operators, n))
    vectors = OPERATOR_VECTORS * len(operators) * masks + TRAJECTORY_VECTORS * max(1, trajectories)
    matrices = 0
    if density:
        matrices = QUTIP_DENSITY_MATRICES if method == "qutip" else DENSITY_MATRICES
        matrices += 0 if set(schedule.readout) <= {"Z"} else ROTATION_MATRICES
    superoperator = liouvillian_bytes(n, masks, collapse) if collapse else 0
    return 16 * dim * (vectors + matrices * dim) + superoperator


class QutipEmulator:
    """Emulates schedules on a profile's device (see the module doc for the methods)."""

    def __init__(
        self,
        profile: DeviceProfile,
        atol: float = 1e-8,
        rtol: float = 1e-6,
        method: str = "magnus",
        *,
        integrator: str = "vern7",
        tol: float | None = None,
        subspace: str | None = None,
        blockade_tolerance: float = DEFAULT_TOLERANCE,
        blockade_radius: float | None = None,
        blockade_order: int = 0,
    ) -> None:
        """``method="magnus"``: the default steps of :func:`~qep_analog.emulation.magnus.step_grid`,
        or with ``tol`` step doubling that keeps the summed local errors below it (a state-vector
        norm). ``method="qutip"``: QuTiP's ``integrator`` (Verner 7(6) by default) at ``atol`` and
        ``rtol`` (QuTiP's defaults, those pulser-simulation runs at: on a 12-atom chain the final state
        is within 1e-10 in infidelity of a reference solved at atol 1e-12).

        ``subspace="blockade"`` (Rydberg schedules, ``magnus`` steps): evolve only the configurations
        with no two excited atoms closer than ``blockade_radius`` (µm), by default the radius at which
        a pair's doubly excited population is at most ``blockade_tolerance``
        (:mod:`qep_analog.emulation.blockade`); the qubit limit is then the memory limit on the
        subspace's dimension. Results are those of the subspace (:class:`EmulationResult`); an X or Y
        readout embeds the state in the full space (refused when that exceeds the memory limit)."""
        if method not in METHODS:
            raise ConfigError(f"emulator: method {method!r} is not one of {', '.join(METHODS)}")
        if subspace is not None:
            if subspace not in SUBSPACES:
                raise ConfigError(f"emulator: subspace {subspace!r} is not one of {', '.join(SUBSPACES)}")
            if method != "magnus" or tol is not None:
                raise ConfigError(
                    f"emulator: the {subspace} subspace evolves on the default magnus steps (method "
                    f"{method!r}, tol {tol!r} given)"
                )
            cutoff_interaction(1.0, 0.0, blockade_tolerance)  # checks the tolerance
            if blockade_radius is not None:
                check_radius(blockade_radius)
            check_order(blockade_order)
        self.profile = profile
        self.method = method
        self.tol = tol
        self.subspace = subspace
        self.blockade_tolerance = blockade_tolerance
        self.blockade_radius = blockade_radius
        self.blockade_order = blockade_order
        self.options = {
            "method": integrator,
            "atol": atol,
            "rtol": rtol,
            "nsteps": 1_000_000,
            "store_final_state": True,
        }

    def _hamiltonian(
        self, schedule: Schedule, draw: magnus.Trajectory | None = None, waist: float = math.inf
    ) -> qutip.QobjEvo:
        """H(t) of one shot: the drive scaled by the draw's amplitude and, atom by atom, by the beam's
        profile (``waist``, µm) and the missing atoms, the detuning map by its scale, and
        Σ_q (offsets_q/2)·Z_q added."""
        n = schedule.n_qubits
        draw = draw or magnus.Trajectory()
        static, terms = noisy_terms(
            schedule, self.profile, drive_scales(schedule, waist, draw.absent), draw.map_scale
        )
        if draw.offsets:
            static = static + PauliSum(
                {PauliString(((q, "Z"),)): 0.5 * float(d) for q, d in enumerate(draw.offsets)}
            )
        jittered = schedule.platform_spec.drive_control
        parts: list[object] = [_qobj(pauli_matrix(static, n), n)]
        for name, operator in terms:
            waveform = schedule.controls.get(name)
            if waveform is None or not operator:
                continue
            power = schedule.platform_spec.drive_power
            values = waveform.values * (draw.amplitude**power if name == jittered else 1.0)
            coefficient = qutip.coefficient(values.astype(complex), tlist=waveform.times, order=1)
            parts.append([_qobj(pauli_matrix(operator, n), n), coefficient])
        return qutip.QobjEvo(parts)

    def run(
        self,
        schedule: Schedule,
        observables: Mapping[str, PauliSum] | None = None,
        *,
        noise: bool | str | Collection[str] = False,
        shots: int | None = None,
        seed: int | None = None,
        realisations: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> EmulationResult:
        """Evolve from the schedule's initial basis state; ``noise`` (``True``: every source, or the
        names of some, :func:`~qep_analog.devices.noise_sources.noise_sources`) adds the profile's
        quasi-static detuning offsets, Markovian dephasing, amplitude jitter (``realisations``
        trajectories, or QuTiP's Lindblad solutions for as many draws) and readout errors; the
        state is then a density matrix. ``progress(done, total)``: trajectories (or draws) done, after
        each block of them."""
        n = schedule.n_qubits
        sources = noise_sources(noise, "emulator")
        rates = NoiseRates.of(self.profile.noise, platform_sources(sources, schedule.platform_spec))
        if shots is not None and not 0 <= shots <= MAX_SHOTS:
            raise ConfigError(f"emulator: shots = {shots} is not in [0, {MAX_SHOTS}]")
        if isinstance(realisations, bool) or not 1 <= realisations <= MAX_TRAJECTORIES:
            raise ConfigError(
                f"emulator: realisations = {realisations!r} is not in [1, {MAX_TRAJECTORIES}]"
            )
        if rates.state_prep > 0 and schedule.initial_state.strip("0"):
            raise ConfigError(
                f"emulator: schedule {schedule.label!r} starts from {schedule.initial_state}; missing "
                "atoms (state_prep) are modelled from all atoms in |0⟩ only"
            )
        if self.subspace is not None:
            outside = sorted(rates.active - SUBSPACE_SOURCES)
            if outside and schedule.platform_spec.blockade:
                raise ConfigError(
                    "emulator: the blockade subspace cannot emulate the noise sources "
                    f"{', '.join(outside)} (they leave the subspace or change its operators); it takes "
                    + ", ".join(sorted(SUBSPACE_SOURCES))
                )
            noisy = rates if sources else None
            flips = site_flips(self.profile, n) if "readout" in sources else (0.0, 0.0)
            return self._run_subspace(
                schedule, observables, noisy, shots, seed, realisations, progress, flips
            )
        if n > MAX_EMULATED_QUBITS:
            raise ConfigError(f"emulator: {n} qubits exceed the limit of {MAX_EMULATED_QUBITS}")
        trajectories = realisations if sources and rates.stochastic else 1
        lindblad = bool(sources) and (self.method == "qutip" or rates.relaxation_rate > 0)  # mesolve
        require_memory(
            f"emulator: schedule {schedule.label!r} of {n} qubits"
            + (f" with noise ({trajectories} trajectories, a density matrix)" if sources else ""),
            emulation_bytes(
                schedule, self.profile, density=bool(sources), trajectories=trajectories,
                method="qutip" if sources and rates.relaxation_rate > 0 else self.method,
                collapse=collapse_count(rates, n) if lindblad else 0,
            ),
        )  # fmt: skip
        rng = np.random.default_rng(seed)
        if self.method == "magnus":
            state = self._magnus(schedule, rates if sources else None, realisations, rng, progress)
        else:
            state = self._qutip(schedule, rates if sources else None, realisations, rng, progress)
        if not np.all(np.isfinite(state)):
            raise SolverError(f"emulator: the evolution of schedule {schedule.label!r} did not stay finite")
        expectations = {name: expectation(state, op, n) for name, op in (observables or {}).items()}
        counts = None
        if shots:
            rotated = rotate_to_basis(state, schedule.readout)
            probabilities = np.abs(rotated) ** 2 if rotated.ndim == 1 else np.real(np.diag(rotated))
            flips = site_flips(self.profile, n) if "readout" in sources else rates.flips
            counts = sample_counts(probabilities, n, shots, rng, flips)
        return EmulationResult(schedule.label, state, expectations, counts)

    def blockade_radius_of(self, schedule: Schedule) -> float:
        """The cutoff radius (µm) the blockade subspace of ``schedule`` uses: the one given, else the
        one of ``blockade_tolerance`` (:func:`~qep_analog.emulation.blockade.schedule_blockade_radius`)."""
        if self.blockade_radius is not None:
            return self.blockade_radius
        return schedule_blockade_radius(schedule, self.profile, self.blockade_tolerance)

    def _run_subspace(
        self,
        schedule: Schedule,
        observables: Mapping[str, PauliSum] | None,
        rates: NoiseRates | None,
        shots: int | None,
        seed: int | None,
        realisations: int,
        progress: Callable[[int, int], None] | None,
        flips: Flips = (0.0, 0.0),
    ) -> EmulationResult:
        """:meth:`run` in the blockade subspace (see :mod:`~qep_analog.emulation.subspace_evolution`)."""
        if not schedule.platform_spec.blockade:  # the radius of a given one is not checked otherwise
            schedule_blockade_radius(schedule, self.profile, self.blockade_tolerance)
        hamiltonian = SubspaceHamiltonian.of(
            schedule, self.profile, self.blockade_radius_of(schedule), self.blockade_order
        )
        subspace = hamiltonian.subspace
        psi0 = subspace_evolution.initial_state(schedule, subspace)
        rng = np.random.default_rng(seed)  # the full space's draws: the same trajectories for a seed
        if rates is None or not rates.stochastic:  # readout errors alone act on the counts only
            state = subspace_evolution.evolve(hamiltonian, psi0)[0]
        else:
            count, dim = realisations, subspace.dimension
            require_memory(
                f"emulator: schedule {schedule.label!r} with noise ({count} trajectories, a density "
                f"matrix of the {dim} configurations of the blockade subspace)",
                16 * (DENSITY_MATRICES * dim * dim + TRAJECTORY_VECTORS * count * dim),
            )
            draws = magnus.draw_trajectories(
                count, schedule.n_qubits, schedule.duration, rates.dephasing_rate,
                rates.amplitude_jitter, rng, rates.detuning_rms,
                detuning_jitter=rates.detuning_jitter,
            )  # fmt: skip
            states = subspace_evolution.run_trajectories(
                hamiltonian, psi0, draws, schedule.platform_spec.drive_control,
                magnus.step_grid(hamiltonian, magnus.TRAJECTORY_STRENGTH),
                magnus.TRAJECTORY_TOLERANCE, progress,
            )  # fmt: skip
            state = np.asarray(states.T @ states.conj() / count)
        if not np.all(np.isfinite(state)):
            raise SolverError(f"emulator: the evolution of schedule {schedule.label!r} did not stay finite")
        expectations = {
            name: subspace_evolution.expectation(state, op, subspace)
            for name, op in (observables or {}).items()
        }
        result = EmulationResult(schedule.label, state, expectations, None, subspace)
        if shots:
            result.counts = self._subspace_counts(result, schedule, shots, rng, flips)
        return result

    @staticmethod
    def _subspace_counts(
        result: EmulationResult,
        schedule: Schedule,
        shots: int,
        rng: np.random.Generator,
        flips: Flips,
    ) -> dict[str, int]:
        """Counts of a subspace state: Z readout from its configurations' probabilities (with readout
        errors, whose flips leave the subspace, from those probabilities over all 2^n outcomes); X or
        Y readout from the state embedded in the full space."""
        n = schedule.n_qubits
        assert result.subspace is not None
        configurations = result.subspace.configurations
        if set(schedule.readout) <= {"Z"}:
            p = np.clip(subspace_evolution.probabilities(result.state), 0.0, None)
            flipped = np.any(np.asarray(flips[0]) > 0) or np.any(np.asarray(flips[1]) > 0)
            if flipped:  # the flipped bits leave the subspace: the distribution over all 2^n
                require_memory(
                    f"emulator: readout errors on the 2^{n} outcomes of schedule {schedule.label!r}",
                    3 * 8 * (1 << n),
                )
                full = np.zeros(1 << n)
                full[configurations] = p
                return sample_counts(full, n, shots, rng, flips)
            counts = rng.multinomial(shots, p / p.sum())
            drawn = np.flatnonzero(counts)
            return {format(int(configurations[k]), f"0{n}b"): int(counts[k]) for k in drawn}
        rotated = rotate_to_basis(result.full_state(), schedule.readout)
        probabilities = np.abs(rotated) ** 2 if rotated.ndim == 1 else np.real(np.diag(rotated))
        return sample_counts(probabilities, n, shots, rng, flips)

    def _magnus(
        self,
        schedule: Schedule,
        rates: NoiseRates | None,
        realisations: int,
        rng: np.random.Generator,
        progress: Callable[[int, int], None] | None = None,
    ) -> NDArray:
        """The final ket, or with noise (``rates``) the mean of |ψ⟩⟨ψ| over the trajectories."""
        psi0 = magnus.basis_state(schedule)
        if rates is None:
            return magnus.evolve(magnus.SplitHamiltonian.of(schedule, self.profile), psi0, self.tol).state
        if rates.relaxation_rate > 0:  # no unitary no-jump evolution: the Lindblad solution
            return self._open(schedule, rates, realisations, rng, progress)
        if not rates.stochastic:  # the beam's profile, readout errors: one evolution, a density matrix
            hamiltonian = self._split(schedule, rates.laser_waist, magnus.Trajectory())
            psi = magnus.evolve(hamiltonian, psi0, self.tol).state
            return np.outer(psi, psi.conj())
        count = realisations
        draws = magnus.draw_trajectories(
            count, schedule.n_qubits, schedule.duration, rates.dephasing_rate, rates.amplitude_jitter,
            rng, rates.detuning_rms, depolarizing=rates.depolarizing_rate,
            detuning_jitter=rates.detuning_jitter, map_jitter=rates.map_jitter, state_prep=rates.state_prep,
        )  # fmt: skip
        groups: dict[tuple[tuple[int, ...], float], list[magnus.Trajectory]] = {}
        for draw in draws:
            groups.setdefault(draw.operators, []).append(draw)
        jittered = schedule.platform_spec.drive_control
        rho = np.zeros((1 << schedule.n_qubits,) * 2, dtype=complex)
        done = 0
        for members in groups.values():
            hamiltonian = self._split(schedule, rates.laser_waist, members[0])
            if self.tol is None:
                steps = magnus.step_grid(hamiltonian, magnus.TRAJECTORY_STRENGTH)
                tolerance = magnus.TRAJECTORY_TOLERANCE
            else:
                steps = magnus.evolve(hamiltonian, psi0, self.tol).step_ends
                tolerance = magnus.SERIES_TOLERANCE
            report = None
            if progress is not None:
                report = lambda finished, _, before=done: progress(before + finished, count)  # noqa: E731
            states = magnus.run_trajectories(
                hamiltonian, psi0, members, jittered, steps, tolerance, report,
                schedule.platform_spec.drive_power,
            ).state  # fmt: skip
            states /= np.linalg.norm(states, axis=1, keepdims=True)  # unitary: only the cut series' drift
            rho += states.T @ states.conj()
            done += len(members)
        return rho / count

    def _split(self, schedule: Schedule, waist: float, draw: magnus.Trajectory) -> magnus.SplitHamiltonian:
        """The Hamiltonian's parts with the operators of ``draw`` (missing atoms, the map's scale) and
        the beam's profile (``waist``, µm)."""
        scales = drive_scales(schedule, waist, draw.absent)
        if scales is None and draw.map_scale == 1.0:
            return magnus.SplitHamiltonian.of(schedule, self.profile)
        terms = noisy_terms(schedule, self.profile, scales, draw.map_scale)
        return magnus.SplitHamiltonian.of_terms(schedule, terms)

    def _qutip(
        self,
        schedule: Schedule,
        rates: NoiseRates | None,
        realisations: int,
        rng: np.random.Generator,
        progress: Callable[[int, int], None] | None = None,
    ) -> NDArray:
        if rates is not None:
            return self._open(schedule, rates, realisations, rng, progress)
        result = qutip.sesolve(
            self._hamiltonian(schedule), _initial(schedule), [0.0, schedule.duration], options=self.options
        )
        return _vector(result.final_state)

    def _open(
        self,
        schedule: Schedule,
        rates: NoiseRates,
        realisations: int,
        rng: np.random.Generator,
        progress: Callable[[int, int], None] | None = None,
    ) -> NDArray:
        """The density matrix under the Lindblad operators of dephasing, depolarizing and relaxation,
        averaged over the draws of the other sources (QuTiP)."""
        n = schedule.n_qubits
        psi0 = _initial(schedule)
        times = [0.0, schedule.duration]
        collapse = lindblad_operators(rates, n)
        draws = magnus.draw_trajectories(
            realisations if rates.drawn else 1, n, schedule.duration, 0.0, rates.amplitude_jitter, rng,
            rates.detuning_rms, detuning_jitter=rates.detuning_jitter, map_jitter=rates.map_jitter,
            state_prep=rates.state_prep,
        )  # fmt: skip
        state = np.zeros((1 << n, 1 << n), dtype=complex)
        solved: dict[magnus.Trajectory, NDArray] = {}  # equal draws (missing atoms alone) solve once
        for done, draw in enumerate(draws, start=1):
            if draw not in solved:
                h = self._hamiltonian(schedule, draw, rates.laser_waist)
                if collapse:
                    rho0 = qutip.ket2dm(psi0)
                    solution = qutip.mesolve(h, rho0, times, c_ops=collapse, options=self.options)
                    solved[draw] = solution.final_state.full()
                else:
                    ket = _vector(qutip.sesolve(h, psi0, times, options=self.options).final_state)
                    solved[draw] = np.outer(ket, ket.conj())
            state += solved[draw]
            if progress is not None:
                progress(done, len(draws))
        return state / len(draws)


def lindblad_operators(rates: NoiseRates, n: int) -> list[qutip.Qobj]:
    """The Lindblad operators of the Markovian sources on ``n`` qubits (our basis): √(γ/2)·Z_i
    (dephasing), √(r/4)·X_i, Y_i, Z_i (depolarizing), √(1/T1)·|0⟩⟨1|_i (relaxation)."""
    out = []
    for q in range(n):
        if rates.dephasing_rate > 0:
            out.append(np.sqrt(rates.dephasing_rate / 2) * _pauli_qobj(f"Z{q}", n))
        if rates.depolarizing_rate > 0:
            out += [np.sqrt(rates.depolarizing_rate / 4) * _pauli_qobj(f"{p}{q}", n) for p in "XYZ"]
        if rates.relaxation_rate > 0:  # |0⟩⟨1| = (X + iY)/2
            lowering = 0.5 * (_pauli_qobj(f"X{q}", n) + 1j * _pauli_qobj(f"Y{q}", n))
            out.append(np.sqrt(rates.relaxation_rate) * lowering)
    return out


def _pauli_qobj(label: str, n: int) -> qutip.Qobj:
    return _qobj(pauli_matrix(pauli_sum([(1.0, label)]), n), n)


def _initial(schedule: Schedule) -> qutip.Qobj:
    n = schedule.n_qubits
    return qutip.basis([2] * n, [int(b) for b in format(initial_state_index(schedule), f"0{n}b")])


def _vector(state: qutip.Qobj) -> NDArray:
    return np.asarray(state.full()).ravel()
