"""The ground state a device's Hamiltonian has at the end of a schedule.

Routines use it for what a profile predicts (the ramp scan's believed plateau); fake labs use it as
the state a perfectly adiabatic device prepares. QuTiP's emulator module (which holds the Pauli-sum
matrix builder) is imported only when a state is computed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla
from numpy.typing import NDArray

from qep_analog.devices.profile import DeviceProfile
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliSum, bitstring_parity, parity_signs
from qep_analog.sequences.schedule import Schedule, hamiltonian_at
from qep_analog.solvers.threads import single_blas_thread

#: above this many qubits the ground state comes from a sparse eigensolver
DENSE_LIMIT = 8
#: bytes per amplitude of ARPACK's Lanczos vectors and work arrays in a sparse ground-state solve
#: (tracemalloc at 10 to 14 qubits: 525 to 1045)
ARPACK_BYTES = 1100
#: complex 2^n x 2^n matrices of a dense ground-state solve (the matrix, eigh's eigenvectors, copy)
DENSE_MATRICES = 3


def final_state_bytes(n_qubits: int, flip_masks: int | None = None) -> int:
    """The bytes of preparing a state at the end of a schedule on ``n_qubits``: the Hamiltonian as a
    sparse matrix, built and converted for ARPACK, and ARPACK's vectors, or a dense eigensolve up to
    :data:`DENSE_LIMIT` qubits. ``flip_masks`` of the Hamiltonian (None: its bound 1 + n + n(n−1)/2,
    every X and XX term: the same bound covers an emulated ramp's row elements)."""
    from qep_analog.emulation.qutip_emulator import pauli_matrix_bytes

    n = n_qubits
    masks = 1 + n + n * (n - 1) // 2 if flip_masks is None else flip_masks
    dim = 1 << n
    solve = 16 * DENSE_MATRICES * dim * dim if n <= DENSE_LIMIT else ARPACK_BYTES * dim
    return 2 * pauli_matrix_bytes(n, masks) + solve


@single_blas_thread  # a small dense eigh: threads only contend (12x slower on a busy machine)
def final_ground_state(schedule: Schedule, profile: DeviceProfile) -> NDArray:
    """The ground state of the Hamiltonian ``profile``'s device has at the end of ``schedule``."""
    from qep_analog.emulation.qutip_emulator import pauli_matrix

    n = schedule.n_qubits
    hamiltonian = hamiltonian_at(schedule, profile, schedule.duration)
    masks = len({string.x_mask(n) for string in hamiltonian} | {0})
    what = f"ground state of schedule {schedule.label!r} on {n} qubits"
    require_memory(what, final_state_bytes(n, masks))
    matrix = pauli_matrix(hamiltonian, n).tocsr()
    keep = _kept_sector(schedule, hamiltonian)
    if keep is not None:
        matrix = matrix[keep][:, keep]
    if matrix.shape[0] <= 1 << DENSE_LIMIT:
        _, vectors = np.linalg.eigh(matrix.toarray())
    else:
        _, vectors = spla.eigsh(matrix.tocsc(), k=1, which="SA", tol=1e-12)
    if keep is None:
        return np.asarray(vectors[:, 0], dtype=complex)
    state = np.zeros(1 << n, dtype=complex)
    state[keep] = vectors[:, 0]
    return state


def _kept_sector(schedule: Schedule, hamiltonian: PauliSum) -> NDArray | None:
    """The basis states of the parity sector (Π_q Z_q) of the schedule's start state when every term
    of ``hamiltonian`` keeps that parity (an ion chain's XX couplings and Z fields): a device that
    keeps it prepares the lowest state of that sector, not the lowest overall. None otherwise."""
    n = schedule.n_qubits
    start = schedule.initial_state
    if len(start) != n or any(string.flips_parity for string in hamiltonian):
        return None
    return np.flatnonzero(parity_signs(n) == bitstring_parity(start))
