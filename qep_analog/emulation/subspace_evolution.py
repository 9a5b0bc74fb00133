"""A Rydberg schedule evolved in its blockade subspace (:mod:`qep_analog.emulation.blockade`).

The Hamiltonian's parts (:class:`~qep_analog.emulation.magnus.ScheduleParts`: the static part and
one per control) are restricted to the subspace's configurations: the diagonal ones (interactions,
detunings, offsets) as one real vector each, the flipping ones (the drive's X_i, Y_i) as one sparse
pattern — an element ⟨c|P|c XOR m⟩ for each configuration c whose flip c XOR m is in the subspace,
found by binary search in the ascending configurations — with one row of values per part.

The evolution is :mod:`~qep_analog.emulation.magnus`'s, on the same step grid (the same ‖O_k‖₁ of
the full-space operators, :func:`~qep_analog.emulation.magnus.step_grid`): one CF4 step per interval,
each exponential a Chebyshev series (Gershgorin bounds of the subspace's H, cut where the neglected
|coefficients| sum below :data:`~qep_analog.emulation.magnus.SERIES_TOLERANCE`) of products by the
sparse H in a compiled kernel. The bounds are those of the subspace: without the blockaded pairs'
C6/r⁶ the spectrum is narrow, so the series is short. Noise trajectories (amplitude jitter, static
detuning offsets, dephasing kicks) are diagonal or scale the drive, so they stay in the subspace;
each trajectory evolves on the step grid refined by its kick times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.blockade import BlockadeSubspace
from qep_analog.emulation.magnus import (
    _A1,
    _A2,
    _C1,
    _C2,
    SERIES_TOLERANCE,
    ScheduleParts,
    Trajectory,
    _bessel_series,
    sampled_weights,
    step_grid,
)
from qep_analog.errors import ConfigError
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliSum
from qep_analog.sequences.schedule import Schedule, initial_state_index

#: bytes per configuration besides the parts: the configuration, the state and the series' three
#: work vectors (complex), the binary search's targets and positions
CONFIGURATION_BYTES = 8 + 4 * 16 + 3 * 8
#: bytes per stored flip (a configuration x a flip mask that stays in the subspace) besides the
#: parts' values: its column index, the combined value (complex), its row and sort keys while built
FLIP_BYTES = 4 + 16 + 3 * 8


def configuration_bytes(parts: int, flipping_parts: int, masks: int) -> int:
    """Bytes per configuration of a subspace Hamiltonian with ``parts`` parts, ``flipping_parts`` of
    them with flip elements on ``masks`` flip masks (every flip counted as stored: an upper bound)."""
    return CONFIGURATION_BYTES + 8 * parts + masks * (FLIP_BYTES + 16 * flipping_parts)


def _sign(configurations: NDArray, z_mask: int) -> NDArray:
    """(−1)^parity(c AND z_mask) per configuration."""
    return 1.0 - 2.0 * (np.bitwise_count(configurations & np.int64(z_mask)) & 1).astype(np.float64)


def restricted_parts(
    operators: Sequence[PauliSum], configurations: NDArray, n: int
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """(diagonals (P, D), indptr, indices, values (F, nnz), flipping) of Pauli sums restricted to
    ``configurations`` (ascending): ``diagonals[k]`` the diagonal of operator k, the CSR pattern of
    their flip elements ⟨c|P|c XOR m⟩ (rows and columns: positions in ``configurations``) with
    ``values[j]`` those of operator ``flipping[j]``."""
    dim = len(configurations)
    diagonals = np.zeros((len(operators), dim))
    by_mask: dict[int, list[tuple[int, int, complex, int]]] = {}
    flipping: list[int] = []
    for k, operator in enumerate(operators):
        for string, coefficient in operator.items():
            mask = string.x_mask(n)
            if mask == 0:
                diagonals[k] += coefficient * _sign(configurations, string.z_mask(n))
                continue
            if k not in flipping:
                flipping.append(k)
            phase = coefficient * (1j) ** (string.n_y % 4)
            by_mask.setdefault(mask, []).append((k, string.z_mask(n), phase, 0))
    rows, columns, values = [], [], []
    slot = {k: j for j, k in enumerate(flipping)}
    for mask, strings in sorted(by_mask.items()):
        targets = configurations ^ np.int64(mask)
        found = np.minimum(np.searchsorted(configurations, targets), dim - 1)
        kept = np.flatnonzero(configurations[found] == targets)
        block = np.zeros((len(flipping), len(kept)), dtype=np.complex128)
        for k, z_mask, phase, _ in strings:  # ⟨c|P|c XOR m⟩ = i^#Y (−1)^parity((c XOR m) AND z)
            block[slot[k]] += phase * _sign(targets[kept], z_mask)
        rows.append(kept)
        columns.append(found[kept])
        values.append(block)
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    column = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
    value = np.concatenate(values, axis=1) if values else np.zeros((0, 0), dtype=np.complex128)
    order = np.lexsort((column, row))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=dim))]).astype(np.int64)
    return (
        diagonals, indptr, np.ascontiguousarray(column[order], dtype=np.int32),
        np.ascontiguousarray(value[:, order]), np.array(flipping, dtype=np.int64),
    )  # fmt: skip


@dataclass(frozen=True)
class SubspaceHamiltonian:
    """H(t) = Σ_k w_k(t) part_k (w_0 = 1) restricted to ``subspace``: ``diagonals[k]`` the diagonal
    of part k; the flip elements on one CSR pattern (``indptr``, ``indices``) with ``values[j]`` those
    of part ``flipping[j]``; the waveforms as in :class:`~qep_analog.emulation.magnus.ScheduleParts`
    (``names``, ``grid``, ``values``: w_k at the breakpoints, ``norms``: the full-space ‖O_k‖₁,
    ``site_norms``: its parts per qubit)."""

    subspace: BlockadeSubspace
    diagonals: NDArray
    indptr: NDArray
    indices: NDArray
    elements: NDArray
    flipping: NDArray
    uniform: bool
    names: tuple[str, ...]
    grid: NDArray
    values: NDArray
    norms: NDArray
    site_norms: NDArray

    @classmethod
    def of(
        cls, schedule: Schedule, profile: DeviceProfile, radius: float, order: int = 0
    ) -> SubspaceHamiltonian:
        """The schedule's Hamiltonian on the blockade subspace of cutoff ``radius`` (µm) and
        ``order``; its size is checked against the memory limit before the configurations are
        enumerated."""
        n = schedule.n_qubits
        parts = ScheduleParts.of(schedule, profile)
        masks = {s.x_mask(n) for op in parts.operators for s in op} - {0}
        flipping = sum(1 for op in parts.operators if any(s.x_mask(n) for s in op))
        per = configuration_bytes(len(parts.operators), flipping, len(masks))
        what = f"emulator: schedule {schedule.label!r} of {n} atoms"
        subspace = BlockadeSubspace.of(schedule.static["positions"], radius, per, what, order)
        diagonals, indptr, indices, elements, flips = restricted_parts(
            parts.operators, subspace.configurations, n
        )
        uniform = bool(np.all(elements == elements[:, :1])) if elements.size else True
        return cls(
            subspace, diagonals, indptr, indices, elements, flips, uniform, parts.names, parts.grid,
            parts.values, parts.norms, parts.site_norms,
        )  # fmt: skip

    @property
    def kernel_parts(self) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray, bool]:
        return self.diagonals, self.indptr, self.indices, self.elements, self.flipping, self.uniform


def initial_state(schedule: Schedule, subspace: BlockadeSubspace) -> NDArray:
    """The schedule's initial basis state as a vector of the subspace (a one-line error when it has
    two excited atoms closer than the cutoff)."""
    index = initial_state_index(schedule)
    position = int(np.searchsorted(subspace.configurations, index))
    if position == subspace.dimension or subspace.configurations[position] != index:
        raise ConfigError(
            f"emulator: the initial state {schedule.initial_state!r} of schedule {schedule.label!r} has "
            f"two excited atoms closer than the blockade radius {subspace.radius:.3g} µm"
        )
    psi = np.zeros(subspace.dimension, dtype=np.complex128)
    psi[position] = 1.0
    return psi


# -- kernels -----------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _combine(
    diagonals: NDArray, elements: NDArray, flipping: NDArray, uniform: bool, weights: NDArray,
    diagonal: NDArray, combined: NDArray,
) -> None:  # fmt: skip
    """The diagonal and flip elements of Σ_k weights[k] part_k (``uniform``: the flip elements are
    the same everywhere; only the first is formed)."""
    diagonal[:] = 0.0
    for k in range(diagonals.shape[0]):
        w = weights[k]
        if w != 0.0:
            for c in range(diagonal.shape[0]):
                diagonal[c] += w * diagonals[k, c]
    combined[:] = 0.0
    length = min(1, combined.shape[0]) if uniform else combined.shape[0]
    for j in range(flipping.shape[0]):
        w = weights[flipping[j]]
        if w != 0.0:
            for p in range(length):
                combined[p] += w * elements[j, p]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _product(
    diagonal: NDArray, indptr: NDArray, indices: NDArray, combined: NDArray, uniform: bool,
    middle: float, factor: float, v: NDArray, out: NDArray,
) -> None:  # fmt: skip
    """out ← factor·(H − middle)·v − out (``uniform``: every flip element is ``combined[0]``)."""
    if uniform:
        a = combined[0] if combined.shape[0] else 0.0
        for c in range(diagonal.shape[0]):
            gathered = 0.0j
            for p in range(indptr[c], indptr[c + 1]):
                gathered += v[indices[p]]
            out[c] = factor * ((diagonal[c] - middle) * v[c] + a * gathered) - out[c]
        return
    for c in range(diagonal.shape[0]):
        total = (diagonal[c] - middle) * v[c]
        for p in range(indptr[c], indptr[c + 1]):
            total += combined[p] * v[indices[p]]
        out[c] = factor * total - out[c]


@numba.njit(cache=True, nogil=True)
def _expm_action(
    diagonal: NDArray, indptr: NDArray, indices: NDArray, combined: NDArray, uniform: bool,
    tau: float, psi: NDArray, work: NDArray, tolerance: float,
) -> int:  # fmt: skip
    """ψ ← exp(−iτH)ψ in place by the Chebyshev series on Gershgorin's bounds of H; ``work`` is
    (3, dim) complex scratch. Returns the number of H·ψ products."""
    dim = diagonal.shape[0]
    low, high = np.inf, -np.inf
    size = abs(combined[0]) if uniform and combined.shape[0] else 0.0
    for c in range(dim):
        radius = size * (indptr[c + 1] - indptr[c])
        if not uniform:
            for p in range(indptr[c], indptr[c + 1]):
                radius += abs(combined[p])
        low = min(low, diagonal[c] - radius)
        high = max(high, diagonal[c] + radius)
    middle = 0.5 * (high + low)
    half = 0.5 * (high - low)
    rotation = complex(math.cos(tau * middle), -math.sin(tau * middle))  # e^(−iτa)
    if half * tau < 1e-15:
        for c in range(dim):
            psi[c] *= rotation
        return 0
    bessel = _bessel_series(tau * half, tolerance)
    phases = np.array([1.0 + 0.0j, -1.0j, -1.0 + 0.0j, 1.0j])  # (−i)^k
    previous, current, result = work[0], work[1], work[2]
    previous[:] = psi
    current[:] = 0.0
    _product(diagonal, indptr, indices, combined, uniform, middle, 1.0 / half, psi, current)
    first = 2.0 * bessel[1] * phases[1]
    for c in range(dim):
        result[c] = bessel[0] * psi[c] + first * current[c]
    for k in range(2, bessel.shape[0]):
        # T_k = 2(H − a)/r T_{k−1} − T_{k−2}, written over T_{k−2}
        _product(diagonal, indptr, indices, combined, uniform, middle, 2.0 / half, current, previous)
        coefficient = 2.0 * bessel[k] * phases[k % 4]
        for c in range(dim):
            result[c] += coefficient * previous[c]
        previous, current = current, previous
    for c in range(dim):
        psi[c] = rotation * result[c]
    return bessel.shape[0] - 1


@numba.njit(cache=True, nogil=True)
def _evolve(
    diagonals: NDArray, indptr: NDArray, indices: NDArray, elements: NDArray, flipping: NDArray,
    uniform: bool, grid: NDArray, weights: NDArray, psi: NDArray, configurations: NDArray,
    kick_index: NDArray, kick_bits: NDArray, tolerance: float,
) -> int:  # fmt: skip
    """ψ evolved in place by one CF4 step per interval of ``grid`` (``weights[i]``: the parts'
    weights at grid[i]); before the step from grid[kick_index[j]] (after the last step for the last
    index) Z on the qubit of bit kick_bits[j] (ascending index). Returns the number of products."""
    dim = diagonals.shape[1]
    diagonal = np.empty(dim)
    combined = np.empty(elements.shape[1], dtype=np.complex128)
    work = np.empty((3, dim), dtype=np.complex128)
    products = 0
    j = 0
    for i in range(grid.shape[0]):
        while j < kick_index.shape[0] and kick_index[j] == i:
            for c in range(dim):
                if configurations[c] & kick_bits[j]:
                    psi[c] = -psi[c]
            j += 1
        if i == grid.shape[0] - 1:
            break
        h = grid[i + 1] - grid[i]
        w1 = (1.0 - _C1) * weights[i] + _C1 * weights[i + 1]
        w2 = (1.0 - _C2) * weights[i] + _C2 * weights[i + 1]
        # CF4: exp(−ih(a₁H₁ + a₂H₂)) exp(−ih(a₂H₁ + a₁H₂)), each (h/2)·H at combined weights
        for combination in (2.0 * (_A2 * w1 + _A1 * w2), 2.0 * (_A1 * w1 + _A2 * w2)):
            _combine(diagonals, elements, flipping, uniform, combination, diagonal, combined)
            products += _expm_action(
                diagonal, indptr, indices, combined, uniform, 0.5 * h, psi, work, tolerance
            )
    return products


# -- entry points ------------------------------------------------------------------------------

_NO_KICKS = np.zeros(0, dtype=np.int64)


def evolve(
    hamiltonian: SubspaceHamiltonian, psi0: NDArray, steps: NDArray | None = None
) -> tuple[NDArray, int]:
    """(ψ(T), number of H·ψ products) of the closed evolution on ``steps`` (default
    :func:`~qep_analog.emulation.magnus.step_grid`, the full space's)."""
    steps = step_grid(hamiltonian) if steps is None else steps
    psi = np.array(psi0, dtype=np.complex128)
    products = _evolve(
        *hamiltonian.kernel_parts, steps, sampled_weights(hamiltonian, steps), psi,
        hamiltonian.subspace.configurations, _NO_KICKS, _NO_KICKS, SERIES_TOLERANCE,
    )  # fmt: skip
    return psi, int(products)


def offset_diagonal(offsets: Sequence[float], configurations: NDArray, n: int) -> NDArray:
    """Σ_q (δ_q/2)·⟨c|Z_q|c⟩ per configuration (qubit 0 the most significant bit)."""
    bits = (configurations[:, None] >> np.arange(n - 1, -1, -1, dtype=np.int64)[None, :]) & 1
    return np.asarray((1.0 - 2.0 * bits) @ (0.5 * np.asarray(offsets, dtype=float)))


def run_trajectories(
    hamiltonian: SubspaceHamiltonian,
    psi0: NDArray,
    draws: Sequence[Trajectory],
    jittered: str | None,
    steps: NDArray,
    tolerance: float,
    progress: Callable[[int, int], None] | None = None,
) -> NDArray:
    """The final states (one row per draw): ``jittered``'s waveform scaled by the draw's amplitude,
    its static offsets added to the diagonal, Z kicks at their times, one CF4 step per interval of
    ``steps`` refined by the kick times; ``progress(done, len(draws))`` after each."""
    subspace = hamiltonian.subspace
    n = subspace.n_qubits
    column = 1 + hamiltonian.names.index(jittered) if jittered in hamiltonian.names else -1
    states = np.empty((len(draws), subspace.dimension), dtype=np.complex128)
    for r, draw in enumerate(draws):
        times = np.array([t for t, _ in draw.kicks], dtype=float)
        grid = np.unique(np.concatenate([steps, times]))
        weights = sampled_weights(hamiltonian, grid)
        if column > 0:
            weights[:, column] *= draw.amplitude
        diagonals = hamiltonian.diagonals
        if draw.offsets:
            diagonals = diagonals.copy()
            diagonals[0] += offset_diagonal(draw.offsets, subspace.configurations, n)
        psi = np.array(psi0, dtype=np.complex128)
        _evolve(
            diagonals, hamiltonian.indptr, hamiltonian.indices, hamiltonian.elements, hamiltonian.flipping,
            hamiltonian.uniform, grid, weights, psi, subspace.configurations,
            np.searchsorted(grid, times).astype(np.int64),
            np.array([1 << (n - 1 - q) for _, q in draw.kicks], dtype=np.int64), tolerance,
        )  # fmt: skip
        states[r] = psi / np.linalg.norm(psi)
        if progress is not None:
            progress(r + 1, len(draws))
    return states


# -- reading the state ------------------------------------------------------------------------


def operator_matrix(operator: PauliSum, subspace: BlockadeSubspace) -> sp.csr_matrix:
    """P O P on the subspace (P its projector) as a sparse matrix."""
    configurations, n = subspace.configurations, subspace.n_qubits
    diagonals, indptr, indices, elements, _ = restricted_parts([operator], configurations, n)
    dim = subspace.dimension
    flips = elements[0] if len(elements) else np.zeros(len(indices), dtype=np.complex128)
    matrix = sp.csr_matrix((flips, indices, indptr), shape=(dim, dim)) + sp.diags(diagonals[0])
    return sp.csr_matrix(matrix)


def expectation(state: NDArray, operator: PauliSum, subspace: BlockadeSubspace) -> float:
    """⟨O⟩ in a ket or a density matrix of the subspace (exact: the state has no amplitude outside,
    so ⟨ψ|O|ψ⟩ = ⟨ψ|P O P|ψ⟩)."""
    matrix = operator_matrix(operator, subspace)
    if state.ndim == 1:
        return float(np.real(np.vdot(state, matrix @ state)))
    return float(np.real((matrix @ state).trace()))


#: complex full-space vectors an X or Y readout of an embedded ket needs (the ket and the rotation's
#: copies); a density matrix needs as many full-space matrices
EMBEDDED_COPIES = 4


def embed(state: NDArray, subspace: BlockadeSubspace, what: str = "emulator") -> NDArray:
    """The state in the full 2^n space (zero outside the subspace), its size checked against the
    memory limit (with the copies an X or Y readout's rotation makes)."""
    n, configurations = subspace.n_qubits, subspace.configurations
    dim = 1 << n
    if state.ndim == 1:
        require_memory(
            f"{what}: the subspace state embedded in the 2^{n} space", 16 * EMBEDDED_COPIES * dim
        )
        out = np.zeros(dim, dtype=np.complex128)
        out[configurations] = state
        return out
    require_memory(
        f"{what}: the subspace density matrix embedded in the 2^{n} space", 16 * EMBEDDED_COPIES * dim**2
    )
    full = np.zeros((dim, dim), dtype=np.complex128)
    full[np.ix_(configurations, configurations)] = state
    return full


def probabilities(state: NDArray) -> NDArray:
    """The Z-basis probabilities of the subspace's configurations."""
    return np.abs(state) ** 2 if state.ndim == 1 else np.real(np.diag(state))
