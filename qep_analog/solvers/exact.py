"""Exact ground states of a compiled model: batched Lanczos, gaps, degeneracy checks, responses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numba
import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ConfigError, PreconditionError, SolverError
from qep_analog.memory import require_memory
from qep_analog.model.operators import PARALLEL_DIM
from qep_analog.model.pauli import parity_signs
from qep_analog.model.qep_model import CompiledModel
from qep_analog.solvers.conjugate_gradient import batched_response
from qep_analog.solvers.lanczos import MAX_GROWTH, batched_lanczos
from qep_analog.solvers.threads import single_blas_thread

#: Large systems: the Krylov basis of one cycle may take this many bytes ...
LARGE_KRYLOV_MEMORY = 128 * 2**20
#: ... and at most this many vectors.
LARGE_KRYLOV_MAX = 80
#: Gaps below this (rad/us) count as a degenerate ground state.
DEGENERACY_TOL = 1e-6
#: Gaps below this multiple of the degeneracy tolerance are re-solved to the full tolerance.
REFINE_BELOW = 1e3
#: Weight of the fixed random vector mixed into warm starts.
WARM_START_MIXING = 1e-3
#: Largest number of qubits for exact state vectors (2^24 amplitudes, a few GB with the solver).
MAX_EXACT_QUBITS = 24
#: State vectors per batch member besides its operator's row elements: the start, the state, the gap
#: solve's start, deflation vector and excited state, and the expectation values' copy (peak RSS
#: measured at 10 and 12 qubits: 2.4 and 6 vectors)
BATCH_VECTORS = 6
#: Lanczos work vectors beside the Krylov basis (the product, the iterate, the Ritz vector)
WORK_VECTORS = 3


@dataclass(frozen=True)
class GroundStates:
    """Ground states of a batch of Hamiltonians.

    ``energies`` (B,), ``states`` (B, dim) normalised, ``residuals`` (B,) = ||H psi - E psi||,
    ``gaps`` (B,) = E1 - E0 (degenerate partners included) or None when not computed,
    ``strings`` (B, n_strings): expectation values of every Pauli string of the model.
    """

    energies: NDArray
    states: NDArray
    residuals: NDArray
    gaps: NDArray | None
    strings: NDArray


class ExactSolver:
    """Ground states of H(x, theta, nu) for a compiled model.

    ``tol`` bounds the residual norm ||H psi - E psi|| (rad/us); ``krylov`` is the Krylov space
    size per restart cycle. From ``PARALLEL_DIM`` on (no reorthogonalisation, no growth of the space)
    the cycle is as long as ``LARGE_KRYLOV_MEMORY`` of basis allows, between ``krylov`` and
    ``LARGE_KRYLOV_MAX``: restarting from one Ritz vector throws away what a short cycle learnt, and
    near a level crossing 20-vector cycles need 3.5× the products of 80-vector ones
    (benchmarks/bench_sample_costs.py: the executor batch's free solves, 10.3 s → 2.9 s).
    """

    def __init__(
        self,
        compiled: CompiledModel,
        *,
        tol: float = 1e-10,
        krylov: int = 20,
        max_cycles: int = 500,
        degeneracy_tol: float = DEGENERACY_TOL,
    ) -> None:
        if not tol > 0:
            raise ConfigError(f"ExactSolver: tol = {tol} must be positive")
        if krylov < 2 or max_cycles < 1 or not degeneracy_tol >= 0:
            raise ConfigError(
                f"ExactSolver: krylov = {krylov} (>= 2), max_cycles = {max_cycles} (>= 1), "
                f"degeneracy_tol = {degeneracy_tol} (>= 0) out of range"
            )
        n_qubits = compiled.model.n_qubits
        if n_qubits > MAX_EXACT_QUBITS:
            raise ConfigError(
                f"ExactSolver: {n_qubits} qubits exceed the exact limit of {MAX_EXACT_QUBITS} "
                f"(a state vector of 2^{n_qubits} amplitudes)"
            )
        self.compiled = compiled
        self.tol = tol
        self.krylov = krylov
        itemsize = 8 if compiled.table.real else 16
        affordable = LARGE_KRYLOV_MEMORY // (compiled.dim * itemsize) - 1
        self.large_krylov = max(krylov, min(LARGE_KRYLOV_MAX, affordable))
        self.max_cycles = max_cycles
        self.degeneracy_tol = degeneracy_tol
        require_memory(f"exact solver: states of {n_qubits} qubits", self.memory_bytes(1))
        rng = np.random.default_rng(20_240_601)
        start = rng.normal(size=compiled.dim)
        if not compiled.table.real:
            start = start + 1j * rng.normal(size=compiled.dim)
        self._start = start / np.linalg.norm(start)
        # The gap solve needs its own start: the ground state found from ``_start`` is the
        # projection of ``_start`` on the ground space, so ``_start`` minus that projection has no
        # component along a degenerate partner.
        other = rng.normal(size=compiled.dim)
        if not compiled.table.real:
            other = other + 1j * rng.normal(size=compiled.dim)
        self._gap_start = other / np.linalg.norm(other)
        #: the sector of Π_q Z_q the states are prepared in (the model's ``parity``), kept by
        #: starting in it and by lifting the other sector above the spectrum
        self.parity = compiled.model.parity
        if self.parity is not None:
            # the penalty is diagonal: it goes into group 0, the table's diagonal (mask 0, always there)
            self._parity_signs = parity_signs(n_qubits)
            self._start = self._in_sector(self._start)
            self._gap_start = self._in_sector(self._gap_start)

    def _in_sector(self, vector: NDArray) -> NDArray:
        """``vector`` projected onto the parity sector, normalised."""
        projected = vector * (self._parity_signs == self.parity)
        return projected / np.linalg.norm(projected)

    def sector_penalty(self, coefficients: NDArray) -> NDArray | None:
        """κ (B,) of the term −parity·κ·Π_q Z_q added to each Hamiltonian: κ = 2 Σ_s |c_s| + 1 puts
        the other sector's lowest level at least 2 Σ_s |c_s| above the ground state, above every
        level of the prepared sector (whose width is at most 2 Σ_s |c_s|); None without a parity."""
        if self.parity is None:
            return None
        return 2.0 * np.abs(np.atleast_2d(coefficients)).sum(axis=1) + 1.0

    def row_elements(self, coefficients: NDArray) -> tuple[NDArray, NDArray]:
        """The row elements (B, dim, groups) of each Hamiltonian as the solver diagonalises it (with
        the sector penalty) and the shift (B,) of its energies: E = E_solved + shift."""
        coeffs = np.atleast_2d(coefficients)
        diagonals = self.compiled.table.diagonals(coeffs)
        kappa = self.sector_penalty(coeffs)
        if kappa is None:
            return diagonals, np.zeros(len(coeffs))
        diagonals[:, :, 0] -= self.parity * kappa[:, None] * self._parity_signs
        return diagonals, kappa

    def memory_bytes(self, batch: int, operators: int = 1) -> int:
        """The bytes a solve of ``batch`` Hamiltonians allocates at its peak (``operators`` = 2: a
        linear response, which holds H's and V's row elements): each member's row elements
        (dim x flip masks) and :data:`BATCH_VECTORS` state vectors, and the Krylov bases being built
        (one per thread side by side; one at a time from ``PARALLEL_DIM`` on, when the members are
        solved one after the other)."""
        table = self.compiled.table
        itemsize = 8 if table.real else 16
        dim = table.dim
        if dim >= PARALLEL_DIM:
            active, bases, rows = 1, 1, self.large_krylov + 1 + WORK_VECTORS
        else:
            active, bases = batch, min(batch, numba.get_num_threads())
            rows = min(dim, MAX_GROWTH * self.krylov) + 1 + WORK_VECTORS
        vectors = active * operators * table.n_groups + BATCH_VECTORS * batch + bases * rows
        return itemsize * dim * vectors

    def check_memory(self, batch: int, what: str = "ground states", operators: int = 1) -> None:
        """Refuse (one-line :class:`ConfigError`) a batch whose solve would exceed the memory limit."""
        n = self.compiled.model.n_qubits
        require_memory(
            f"{what}: a batch of {batch} states of {n} qubits", self.memory_bytes(batch, operators)
        )

    @single_blas_thread
    def solve(
        self,
        coefficients: NDArray,
        start: NDArray | None = None,
        *,
        with_gap: bool = False,
        check_degeneracy: bool = True,
    ) -> GroundStates:
        """Ground states for string coefficients (B, n_strings), warm-started from ``start``.

        A warm start gets a small admixture of a fixed random vector, so that a start lying in an
        invariant subspace of the new Hamiltonian (a symmetry sector, a crossed level) cannot
        trap the solver in an excited state. Large systems are solved one member at a time, so
        that only one member's operator is in memory.
        """
        table = self.compiled.table
        coeffs = np.atleast_2d(coefficients)
        batch = coeffs.shape[0]
        self.check_memory(batch)
        if batch > 1 and table.dim >= PARALLEL_DIM:
            parts = [
                _renumbered(
                    b,
                    partial(
                        self.solve,
                        coeffs[b : b + 1],
                        None if start is None else np.asarray(start)[b : b + 1],
                        with_gap=with_gap,
                        check_degeneracy=check_degeneracy,
                    ),
                )
                for b in range(batch)
            ]
            return GroundStates(
                energies=np.concatenate([p.energies for p in parts]),
                states=np.concatenate([p.states for p in parts]),
                residuals=np.concatenate([p.residuals for p in parts]),
                gaps=np.concatenate([p.gaps for p in parts if p.gaps is not None]) if with_gap else None,
                strings=np.concatenate([p.strings for p in parts]),
            )
        diagonals, shift = self.row_elements(coeffs)
        if start is None:
            starts = np.broadcast_to(self._start, (batch, table.dim))
        else:
            starts = np.asarray(start) + WARM_START_MIXING * self._start
        states, info = self._lowest(diagonals, starts, self.tol)
        self._require_converged(info, "ground state", self.tol)
        gaps = None
        energies = info[:, 0] + shift
        if with_gap:
            gaps = self._gaps(diagonals, coeffs, states, info[:, 0])
            if check_degeneracy:
                self.check_degeneracy(energies, gaps)
        return GroundStates(
            energies=energies,
            states=states,
            residuals=info[:, 1].copy(),
            gaps=gaps,
            strings=table.expectations(states),
        )

    def _lowest(
        self,
        diagonals: NDArray,
        starts: NDArray,
        tol: float,
        deflate: NDArray | None = None,
        shifts: NDArray | None = None,
    ) -> tuple[NDArray, NDArray]:
        """Lowest eigenpairs (optionally of H + shift |d><d|). Returns states and info (energy,
        residual, products, converged)."""
        krylov = self.large_krylov if self.compiled.dim >= PARALLEL_DIM else self.krylov
        return batched_lanczos(
            diagonals, self.compiled.table.masks, starts, tol, krylov, self.max_cycles,
            deflate=deflate, shifts=shifts,
        )  # fmt: skip

    @staticmethod
    def _require_converged(info: NDArray, what: str, tol: float) -> None:
        failed = ~(np.isfinite(info[:, 0]) & (info[:, 3] > 0))
        if failed.any():
            k = int(np.flatnonzero(failed)[0])
            raise SolverError(
                f"{what} of sample {k}: residual {info[k, 1]:.3g} above tol {tol:.3g} after "
                f"{int(info[k, 2])} matrix-vector products"
            )

    def _gaps(self, diagonals: NDArray, coeffs: NDArray, states: NDArray, energies: NDArray) -> NDArray:
        """E1 - E0 from the ground state of H + shift |psi0><psi0| (shift above the spectrum).

        The energy error of a Ritz value is of the order residual^2 / (E2 - E1): a first solve to a
        residual of sqrt(tol) gives gaps to about tol / (E2 - E1). Gaps that could be within that
        of the degeneracy tolerance are solved again to the full ``tol`` (from the first result).
        """
        shifts = 2.0 * np.abs(coeffs).sum(axis=1) + 1.0
        overlaps = (states.conj() * self._gap_start).sum(axis=1)
        start = self._gap_start - states * overlaps[:, None]
        loose = max(self.tol, float(np.sqrt(self.tol)))
        excited, info = self._lowest(diagonals, start, loose, deflate=states, shifts=shifts)
        self._require_converged(info, "first excited state", loose)
        gaps = np.asarray(info[:, 0] - energies)
        close = np.flatnonzero(gaps < REFINE_BELOW * max(self.degeneracy_tol, self.tol))
        if len(close) and loose > self.tol:
            _, refined = self._lowest(
                diagonals[close], excited[close], self.tol,
                deflate=states[close], shifts=shifts[close],
            )  # fmt: skip
            self._require_converged(refined, "first excited state", self.tol)
            gaps[close] = refined[:, 0] - energies[close]
        return gaps

    def check_degeneracy(self, energies: NDArray, gaps: NDArray) -> None:
        """Raise :class:`PreconditionError` when a gap is below ``degeneracy_tol``."""
        bad = np.flatnonzero(gaps < self.degeneracy_tol)
        if len(bad):
            k = int(bad[0])
            raise PreconditionError(
                f"ground state of sample {k} (E0 = {energies[k]:.10g}) is degenerate: "
                f"gap {max(gaps[k], 0.0):.3g} below the tolerance {self.degeneracy_tol:.3g}; "
                "QEP is undefined there"
            )

    def response(
        self, coefficients: NDArray, state: NDArray, energy: float, perturbation: NDArray
    ) -> NDArray:
        """First-order change of one ground state: (E0 - H)^-1 Q V |psi0>.

        ``coefficients`` (n_strings,) define H; ``perturbation`` (n_strings,) defines V.
        """
        return self.responses(
            np.atleast_2d(coefficients), state[None, :], np.array([energy]), perturbation[None, :]
        )[0]

    @single_blas_thread
    def responses(
        self, coefficients: NDArray, states: NDArray, energies: NDArray, perturbations: NDArray
    ) -> NDArray:
        """First-order changes (E0 - H)^-1 Q V |psi0> of a batch of ground states: one
        conjugate-gradient solve each, in parallel. Arrays: (B, n_strings), (B, dim), (B,),
        (B, n_strings)."""
        table = self.compiled.table
        self.check_memory(len(states), "linear responses", operators=2)
        if len(states) > 1 and table.dim >= PARALLEL_DIM:
            return np.concatenate(
                [
                    _renumbered(
                        b,
                        partial(
                            self.responses,
                            coefficients[b : b + 1],
                            states[b : b + 1],
                            energies[b : b + 1],
                            perturbations[b : b + 1],
                        ),
                    )
                    for b in range(len(states))
                ]
            )
        # The projector is built from a ground state accurate to the solver's residual; asking CG
        # for much more than that only chases the resulting near-null direction.
        rtol = max(1e-13, 1e-3 * self.tol)
        diagonals, shift = self.row_elements(coefficients)
        deltas, info = batched_response(
            diagonals,
            table.diagonals(perturbations),
            table.masks,
            states,
            np.asarray(energies) - shift,
            rtol,
        )
        failed = np.flatnonzero(info[:, 1] >= rtol)
        if len(failed):
            k = int(failed[0])
            raise SolverError(
                f"linear response of sample {k}: relative residual {info[k, 1]:.3g} above "
                f"{rtol:.3g} after {int(info[k, 0])} conjugate-gradient steps"
            )
        return deltas


T = TypeVar("T")


def _renumbered(index: int, solve: Callable[[], T]) -> T:
    """Run a one-member ``solve`` of batch member ``index``; its errors name that member."""
    try:
        return solve()
    except (PreconditionError, SolverError) as exc:
        raise type(exc)(str(exc).replace("sample 0", f"sample {index}", 1)) from None
