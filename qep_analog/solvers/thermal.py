"""Gibbs states exp(-H/T)/Z by dense diagonalisation, and their exact linear response."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ConfigError
from qep_analog.memory import require_memory
from qep_analog.model.qep_model import CompiledModel

#: Largest number of qubits for dense thermal states.
MAX_THERMAL_QUBITS = 12
#: dense 2^n x 2^n matrices of one Gibbs state's computation beside the kept eigenvectors: the
#: Hamiltonian, eigh's workspace, the density matrix and its trace's elements, the exact response's
#: kernels and products (float64 for a real model, else complex128; tracemalloc at 10 qubits: 4,
#: and 10.6 with the exact response)
THERMAL_MATRICES = 11


def gibbs_bytes(compiled: CompiledModel, batch: int) -> int:
    """The bytes of preparing ``batch`` Gibbs states: each keeps its eigenvectors (one matrix), and
    one state at a time needs :data:`THERMAL_MATRICES` more."""
    dim = compiled.dim
    itemsize = 8 if compiled.table.real else 16
    return itemsize * dim * dim * (batch + THERMAL_MATRICES)


def check_gibbs_memory(compiled: CompiledModel, batch: int, what: str = "Gibbs states") -> None:
    """Refuse (one-line :class:`ConfigError`) a batch of Gibbs states beyond the memory limit."""
    n = compiled.model.n_qubits
    require_memory(f"{what}: a batch of {batch} Gibbs states of {n} qubits", gibbs_bytes(compiled, batch))


@dataclass(frozen=True)
class GibbsState:
    """Eigen-decomposition of H with Boltzmann weights at ``temperature`` (rad/us, k_B = hbar = 1)."""

    temperature: float
    energies: NDArray
    vectors: NDArray
    weights: NDArray
    free_energy: float

    def density_matrix(self) -> NDArray:
        return np.asarray((self.vectors * self.weights) @ self.vectors.conj().T)


def gibbs_state(compiled: CompiledModel, coefficients: NDArray, temperature: float) -> GibbsState:
    """The Gibbs state of the Hamiltonian with string ``coefficients`` at ``temperature``."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"thermal state: temperature {temperature!r} must be positive and finite")
    n = compiled.model.n_qubits
    if n > MAX_THERMAL_QUBITS:
        raise ConfigError(
            f"thermal state: {n} qubits exceed the dense limit of {MAX_THERMAL_QUBITS} qubits"
        )
    energies, vectors = np.linalg.eigh(compiled.table.dense(coefficients))
    shifted = -(energies - energies[0]) / temperature
    log_z = np.log(np.exp(shifted).sum())
    weights = np.exp(shifted - log_z)
    free_energy = float(energies[0] - temperature * log_z)
    return GibbsState(temperature, energies, vectors, weights, free_energy)


def thermal_strings(compiled: CompiledModel, state: GibbsState) -> NDArray:
    """Tr(rho P_s) of every Pauli string of the model."""
    return compiled.table.trace_with(state.density_matrix())


def thermal_response_matrix(compiled: CompiledModel, state: GibbsState, perturbation: NDArray) -> NDArray:
    """The operator M with d Tr(rho V)/d theta = Tr(M A) + <A><V>/T for H -> H + theta A.

    In the eigenbasis M'_nm = V'_nm K_nm with K_nm = (p_n - p_m)/(E_n - E_m), and -p_n/T for
    equal energies (Kubo-Mori response). Returns M in the computational basis.
    """
    energies, weights, t = state.energies, state.weights, state.temperature
    diff_e = energies[:, None] - energies[None, :]
    diff_p = weights[:, None] - weights[None, :]
    same = np.abs(diff_e) < 1e-12 * max(1.0, float(np.abs(energies).max()))
    kernel = np.where(same, -0.5 * (weights[:, None] + weights[None, :]) / t, 0.0)
    np.divide(diff_p, diff_e, out=kernel, where=~same)
    v_eigen = state.vectors.conj().T @ compiled.table.dense(perturbation) @ state.vectors
    return np.asarray(state.vectors @ (v_eigen * kernel) @ state.vectors.conj().T)
