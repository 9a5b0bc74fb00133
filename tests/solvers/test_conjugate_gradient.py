"""The linear-response solver (projected conjugate gradients) on a breakdown."""

from __future__ import annotations

import numpy as np

from qep_analog.solvers.conjugate_gradient import response_one


def test_zero_curvature_stops_with_its_residual_instead_of_dividing_by_zero() -> None:
    """H = I with E0 = 1 makes (H − E0) zero on the complement of the state: the first step finds no
    curvature. The solver stops there and reports the whole residual (relative residual 1), which
    its callers turn into a solver failure, instead of a ZeroDivisionError."""
    masks = np.array([0, 1], dtype=np.int64)
    identity = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=complex)  # element g = 0: the identity
    flip = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=complex)  # element g = 1: X
    state = np.array([1.0, 0.0], dtype=complex)
    out = np.empty(2, dtype=complex)
    iterations, residual = response_one(identity, flip, masks, state, 1.0, 1e-10, 50, out, False)
    assert iterations == 1 and residual == 1.0
    assert np.all(out == 0.0)


def test_a_well_posed_response_still_converges() -> None:
    """One qubit, H = −Z (ground state |0⟩, E0 = −1, gap 2), perturbation X: (H − E0) x = −P X|0⟩
    gives x = −|1⟩/2."""
    masks = np.array([0, 1], dtype=np.int64)
    minus_z = np.array([[-1.0, 0.0], [1.0, 0.0]], dtype=complex)
    flip = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=complex)
    state = np.array([1.0, 0.0], dtype=complex)
    out = np.empty(2, dtype=complex)
    iterations, residual = response_one(minus_z, flip, masks, state, -1.0, 1e-12, 50, out, False)
    assert residual < 1e-12 and iterations == 1
    np.testing.assert_allclose(out, [0.0, -0.5], atol=1e-14)
