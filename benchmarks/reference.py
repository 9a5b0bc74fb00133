"""A plain SciPy implementation of the phase-sensor physics, as the method's reference code does it:
Pauli matrices assembled from Kronecker products once, H summed per sample, ``eigsh`` per solve.
Used by the benchmarks as the baseline measured in the same run."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from numpy.typing import NDArray

from qep_analog.model.qep_model import QEPModel

_PAULI = {
    "X": sp.csr_matrix(np.array([[0, 1], [1, 0]], dtype=complex)),
    "Y": sp.csr_matrix(np.array([[0, -1j], [1j, 0]])),
    "Z": sp.csr_matrix(np.array([[1, 0], [0, -1]], dtype=complex)),
}


class ScipyReference:
    """Sparse matrices of every term of a model, built with Kronecker products."""

    def __init__(self, model: QEPModel) -> None:
        n = model.n_qubits
        self.n = n

        def matrix(operator) -> sp.csr_matrix:  # type: ignore[no-untyped-def]
            total = sp.csr_matrix((2**n, 2**n), dtype=complex)
            for string, coefficient in operator.items():
                factors = dict(string.factors)
                term = sp.identity(1, format="csr", dtype=complex)
                for q in range(n):
                    op = _PAULI[factors[q]] if q in factors else sp.identity(2, format="csr")
                    term = sp.kron(term, op, format="csr")
                total = total + coefficient * term
            return total.tocsr()

        self.fixed = matrix(model.fixed)
        self.inputs = [matrix(o) for o in model.inputs.values()]
        self.trainable = [matrix(o) for o in model.trainable.values()]
        self.outputs = [matrix(o) for o in model.outputs.values()]

    def hamiltonian(self, x: NDArray, theta: NDArray, nu: NDArray) -> sp.csr_matrix:
        h = self.fixed.copy()
        for c, m in zip(x, self.inputs, strict=True):
            h = h + c * m
        for c, m in zip(theta, self.trainable, strict=True):
            h = h + c * m
        for c, m in zip(nu, self.outputs, strict=True):
            h = h + c * m
        return h

    def ground_state(self, h: sp.csr_matrix, v0: NDArray | None = None) -> NDArray:
        return np.asarray(sla.eigsh(h, k=1, which="SA", v0=v0, tol=1e-8)[1][:, 0])

    def expectations(self, psi: NDArray, matrices: list[sp.csr_matrix]) -> NDArray:
        return np.array([np.vdot(psi, m @ psi).real for m in matrices])
