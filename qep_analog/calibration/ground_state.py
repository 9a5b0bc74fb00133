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
from qep_analog.sequences.schedule import Schedule, hamiltonian_at
from qep_analog.solvers.threads import single_blas_thread

#: above this many qubits the ground state comes from a sparse eigensolver
DENSE_LIMIT = 8


@single_blas_thread  # a small dense eigh: threads only contend (12x slower on a busy machine)
def final_ground_state(schedule: Schedule, profile: DeviceProfile) -> NDArray:
    """The ground state of the Hamiltonian ``profile``'s device has at the end of ``schedule``."""
    from qep_analog.emulation.qutip_emulator import pauli_matrix

    n = schedule.n_qubits
    matrix = pauli_matrix(hamiltonian_at(schedule, profile, schedule.duration), n)
    if n <= DENSE_LIMIT:
        _, vectors = np.linalg.eigh(matrix.toarray())
        return np.asarray(vectors[:, 0], dtype=complex)
    _, vectors = spla.eigsh(matrix.tocsc(), k=1, which="SA", tol=1e-12)
    return np.asarray(vectors[:, 0], dtype=complex)
