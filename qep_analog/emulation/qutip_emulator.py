"""Our emulator: a schedule's spin Hamiltonian evolved exactly, closed or open.

H(t) = static + Σ_k w_k(t)·operator_k (from :func:`hamiltonian_terms`), the waveforms linear between
breakpoints. By default (``method="magnus"``, :mod:`qep_analog.emulation.magnus`) a commutator-free
Magnus integrator of order 4 steps on the breakpoints, its exponentials acting through Chebyshev
series in compiled kernels; ``method="qutip"`` evolves the same H with QuTiP (``sesolve``/``mesolve``,
the reference): each operator one sparse matrix, each waveform one linearly interpolated QuTiP
coefficient on its own breakpoints.

Noise: the profile's sources (:mod:`qep_analog.devices.noise_sources`), all or those named —
quasi-static detuning offsets δ_i ~ N(0, (√2/T2*)²) per qubit and shot, acting as (δ_i/2)·Z_i
(``detuning``: the mean free coherence decays as exp(−(t/T2*)²)); Markovian dephasing with Lindblad
operators √(γ/2)·Z_i, γ = 1/``markovian_dephasing_time`` (``dephasing``: coherences decay as
e^(−γt)); the shot-to-shot amplitude jitter (``amplitude_jitter``: Ω or the couplings scaled by
1 + σ·ξ); readout errors ε, ε′ that flip sampled bits independently (``readout``). The default method
averages |ψ⟩⟨ψ| over ``realisations`` trajectories, each with its own jitter and offset draws and Z_i
kicks at Poisson times of rate γ/2 per qubit (an exact unravelling of that dephasing); QuTiP's
averages the Lindblad solution over ``realisations`` draws of jitter and offsets. States are in our
basis (qubit 0 the most significant bit, |0⟩ = ground / dark).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import qutip
import scipy.sparse as sp
from numpy.typing import NDArray

from qep_analog.devices.noise_sources import NoiseRates, noise_sources
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation import magnus
from qep_analog.errors import ConfigError, SolverError
from qep_analog.model.pauli import PauliString, PauliSum
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms, initial_state_index

MAX_EMULATED_QUBITS = 16
#: the ways :class:`QutipEmulator` evolves a schedule
METHODS = ("magnus", "qutip")


@dataclass
class EmulationResult:
    """The final state (ket, or density matrix for open evolution), expectation values, counts."""

    label: str
    state: NDArray
    expectations: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] | None = None

    @property
    def is_pure(self) -> bool:
        return self.state.ndim == 1


def pauli_matrix(operator: PauliSum, n: int) -> sp.csr_matrix:
    """A Pauli sum as a sparse matrix in our basis (from its strings' bit masks, one cached vector
    per string)."""
    dim = 1 << n
    if not operator:
        return sp.csr_matrix((dim, dim))
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


def rotate_to_basis(state: NDArray, basis: str) -> NDArray:
    """Apply the ideal single-qubit rotation that maps the X (H) or Y (H·S†) eigenbasis onto Z."""
    hadamard = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
    gates = {"Z": np.eye(2), "X": hadamard, "Y": hadamard @ np.diag([1, -1j])}
    if set(basis) <= {"Z"}:
        return state
    unitary = np.array([[1.0]])
    for letter in basis:
        unitary = np.kron(unitary, gates[letter])
    if state.ndim == 1:
        return unitary @ state
    return unitary @ state @ unitary.conj().T


def sample_counts(
    probabilities: NDArray,
    n: int,
    shots: int,
    rng: np.random.Generator,
    flips: tuple[float, float] = (0.0, 0.0),
) -> dict[str, int]:
    """Bitstring counts (qubit 0 leftmost) of ``shots`` draws, with independent readout flips
    (ε = P(1|0), ε′ = P(0|1))."""
    p = np.clip(np.real(probabilities), 0.0, None)
    outcomes = rng.choice(len(p), size=shots, p=p / p.sum())
    bits = ((outcomes[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1).astype(bool)
    false_positive, false_negative = flips
    if false_positive or false_negative:
        draw = rng.random(bits.shape)
        bits = np.where(bits, draw >= false_negative, draw < false_positive)
    keys, numbers = np.unique(bits.astype(np.uint8), axis=0, return_counts=True)
    return {"".join(map(str, key)): int(c) for key, c in zip(keys, numbers, strict=True)}


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
    ) -> None:
        """``method="magnus"``: the default steps of :func:`~qep_analog.emulation.magnus.step_grid`,
        or with ``tol`` step doubling that keeps the summed local errors below it (a state-vector
        norm). ``method="qutip"``: QuTiP's ``integrator`` (Verner 7(6) by default) at ``atol`` and
        ``rtol`` (QuTiP's defaults, those pulser-simulation runs at: on a 12-atom chain the final state
        is within 1e-10 in infidelity of a reference solved at atol 1e-12)."""
        if method not in METHODS:
            raise ConfigError(f"emulator: method {method!r} is not one of {', '.join(METHODS)}")
        self.profile = profile
        self.method = method
        self.tol = tol
        self.options = {
            "method": integrator,
            "atol": atol,
            "rtol": rtol,
            "nsteps": 1_000_000,
            "store_final_state": True,
        }

    def _hamiltonian(
        self, schedule: Schedule, jitter: float = 0.0, offsets: NDArray | None = None
    ) -> qutip.QobjEvo:
        """H(t) with the drive scaled by 1 + ``jitter`` and Σ_q (offsets_q/2)·Z_q added."""
        n = schedule.n_qubits
        static, terms = hamiltonian_terms(schedule, self.profile)
        if offsets is not None:
            static = static + PauliSum(
                {PauliString(((q, "Z"),)): 0.5 * float(d) for q, d in enumerate(offsets)}
            )
        jittered = schedule.platform_spec.drive_control
        parts: list[object] = [_qobj(pauli_matrix(static, n), n)]
        for name, operator in terms:
            waveform = schedule.controls.get(name)
            if waveform is None or not operator:
                continue
            values = waveform.values * (1 + jitter if name == jittered else 1.0)
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
        if n > MAX_EMULATED_QUBITS:
            raise ConfigError(f"emulator: {n} qubits exceed the limit of {MAX_EMULATED_QUBITS}")
        sources = noise_sources(noise, "emulator")
        rates = NoiseRates.of(self.profile.noise, sources)
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
            counts = sample_counts(probabilities, n, shots, rng, rates.flips)
        return EmulationResult(schedule.label, state, expectations, counts)

    def _magnus(
        self,
        schedule: Schedule,
        rates: NoiseRates | None,
        realisations: int,
        rng: np.random.Generator,
        progress: Callable[[int, int], None] | None = None,
    ) -> NDArray:
        """The final ket, or with noise (``rates``) the mean of |ψ⟩⟨ψ| over the trajectories."""
        hamiltonian = magnus.SplitHamiltonian.of(schedule, self.profile)
        psi0 = magnus.basis_state(schedule)
        if rates is None:
            return magnus.evolve(hamiltonian, psi0, self.tol).state
        if not rates.stochastic:  # readout errors alone: the closed evolution, as a density matrix
            psi = magnus.evolve(hamiltonian, psi0, self.tol).state
            return np.outer(psi, psi.conj())
        if self.tol is None:
            steps = magnus.step_grid(hamiltonian, magnus.TRAJECTORY_STRENGTH)
            tolerance = magnus.TRAJECTORY_TOLERANCE
        else:
            steps = magnus.evolve(hamiltonian, psi0, self.tol).step_ends
            tolerance = magnus.SERIES_TOLERANCE
        count = realisations
        draws = magnus.draw_trajectories(
            count, schedule.n_qubits, schedule.duration, rates.dephasing_rate, rates.amplitude_jitter,
            rng, rates.detuning_rms,
        )  # fmt: skip
        jittered = schedule.platform_spec.drive_control
        evolution = magnus.run_trajectories(hamiltonian, psi0, draws, jittered, steps, tolerance, progress)
        states = evolution.state
        states /= np.linalg.norm(states, axis=1, keepdims=True)  # unitary: only the cut series' drift
        return np.asarray(states.T @ states.conj() / count)

    def _qutip(
        self,
        schedule: Schedule,
        rates: NoiseRates | None,
        realisations: int,
        rng: np.random.Generator,
        progress: Callable[[int, int], None] | None = None,
    ) -> NDArray:
        n = schedule.n_qubits
        psi0 = qutip.basis([2] * n, [int(b) for b in format(initial_state_index(schedule), f"0{n}b")])
        times = [0.0, schedule.duration]
        if rates is not None:
            return self._open(schedule, psi0, times, rates, realisations, rng, progress)
        result = qutip.sesolve(self._hamiltonian(schedule), psi0, times, options=self.options)
        return _vector(result.final_state)

    def _open(
        self,
        schedule: Schedule,
        psi0: qutip.Qobj,
        times: list[float],
        rates: NoiseRates,
        realisations: int,
        rng: np.random.Generator,
        progress: Callable[[int, int], None] | None = None,
    ) -> NDArray:
        """The density matrix under Markovian dephasing, averaged over draws of the amplitude jitter
        and the quasi-static offsets (QuTiP)."""
        n = schedule.n_qubits
        gamma, jitter_rms, detuning_rms = rates.dephasing_rate, rates.amplitude_jitter, rates.detuning_rms
        z = [_qobj(pauli_matrix(PauliSum({PauliString(((q, "Z"),)): 1.0}), n), n) for q in range(n)]
        collapse = [np.sqrt(gamma / 2) * op for op in z]
        draws = realisations if jitter_rms > 0 or detuning_rms > 0 else 1
        state = np.zeros((1 << n, 1 << n), dtype=complex)
        for done in range(1, draws + 1):
            jitter = jitter_rms * rng.standard_normal() if jitter_rms > 0 else 0.0
            offsets = detuning_rms * rng.standard_normal(n) if detuning_rms > 0 else None
            h = self._hamiltonian(schedule, jitter, offsets)
            if gamma > 0:
                rho0 = qutip.ket2dm(psi0)
                state += qutip.mesolve(
                    h, rho0, times, c_ops=collapse, options=self.options
                ).final_state.full()
            else:
                ket = _vector(qutip.sesolve(h, psi0, times, options=self.options).final_state)
                state += np.outer(ket, ket.conj())
            if progress is not None:
                progress(done, draws)
        return state / draws


def _vector(state: qutip.Qobj) -> NDArray:
    return np.asarray(state.full()).ravel()
