"""The path spectrum's fast path (real Hamiltonians: one tridiagonal reduction, compiled) against
independent computations: NumPy's full diagonalisation of the same matrix, and the complex path
(SciPy's subset driver and a Cholesky solve) on the same schedule."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import THETA

from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation import diagnostics
from qep_analog.emulation.dense_levels import DenseLevels
from qep_analog.emulation.diagnostics import PathSpectrum, path_spectra, path_spectrum
from qep_analog.emulation.preparation_bias import nudge_operator
from qep_analog.emulation.qutip_emulator import pauli_matrix
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import qep_phase_schedules
from qep_analog.sequences.recipes import load_recipe
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms

#: relative agreement of levels and responses with the independent computations (LAPACK's own
#: accuracy is ~1e-13 relative to the spectrum's width on these matrices)
TOLERANCE = 1e-8
FIELDS = ("gaps", "rates", "path_gaps", "responses")


def _response(values: np.ndarray, vectors: np.ndarray, b: np.ndarray) -> float:
    """‖(H − E_0)⁺ b‖ from a full diagonalisation."""
    overlaps = vectors[:, 1:].conj().T @ b
    return float(np.sqrt(np.sum(np.abs(overlaps) ** 2 / (values[1:] - values[0]) ** 2)))


@pytest.mark.parametrize("n", [2, 3, 40, 300])
def test_lowest_levels_and_response_match_a_full_diagonalisation(n: int) -> None:
    rng = np.random.default_rng(n)
    matrix = rng.normal(size=(n, n))
    matrix = matrix + matrix.T
    values, vectors = np.linalg.eigh(matrix)
    k = min(12, n)
    levels = DenseLevels(matrix, k)
    scale = float(np.abs(values).max())
    np.testing.assert_allclose(levels.values, values[:k], rtol=0, atol=1e-12 * scale)
    overlaps = np.abs(np.sum(levels.vectors * vectors[:, :k], axis=0))  # same vectors up to sign
    np.testing.assert_allclose(overlaps, 1.0, atol=1e-9)
    b = rng.normal(size=n)
    b -= (vectors[:, 0] @ b) * vectors[:, 0]
    assert levels.response(b) == pytest.approx(_response(values, vectors, b), rel=TOLERANCE)


def test_degenerate_levels_are_all_found() -> None:
    """A diagonal matrix with repeated entries (a ramp's start, Ω = 0): every copy of a level."""
    diagonal = np.array([3.0, -1.0, 2.0, -1.0, 0.5, 2.0, -1.0, 7.0])
    levels = DenseLevels(np.diag(diagonal), 6)
    np.testing.assert_allclose(levels.values, np.sort(diagonal)[:6], atol=1e-14)
    lowest = levels.vectors[:, :3]
    np.testing.assert_allclose(lowest @ lowest.T, np.diag((diagonal == -1.0).astype(float)), atol=1e-12)


def _free_schedule(chain_model: QEPModel, profile: DeviceProfile) -> tuple[Schedule, object]:
    recipe = load_recipe("rydberg-smooth")
    free = qep_phase_schedules(chain_model, profile, recipe, [], THETA, [1.0], 0.1, "Z" * 5)[0]
    return free, nudge_operator(list(chain_model.outputs.values()), [1.0])


def test_real_path_matches_the_complex_path(
    chain_model: QEPModel, relaxed_fresnel: DeviceProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same schedule with its term matrices stored complex takes SciPy's complex subset driver
    and the Cholesky response: every level, rate, response and shift agrees."""
    free, nudge = _free_schedule(chain_model, relaxed_fresnel)
    real = path_spectrum(free, relaxed_fresnel, 17, nudge)
    monkeypatch.setattr(
        diagnostics, "pauli_matrix", lambda op, n: sp.csr_matrix(pauli_matrix(op, n), dtype=complex)
    )
    complex_ = path_spectrum(free, relaxed_fresnel, 17, nudge)
    for field in FIELDS:
        np.testing.assert_allclose(getattr(real, field), getattr(complex_, field), rtol=TOLERANCE)
    width = float(np.abs(complex_.shifts).max())
    np.testing.assert_allclose(real.shifts, complex_.shifts, rtol=0, atol=TOLERANCE * width)
    assert abs(np.vdot(real.ground, complex_.ground)) == pytest.approx(1.0, abs=1e-12)
    assert real.ground_energy == pytest.approx(complex_.ground_energy, rel=1e-12)


def test_responses_match_a_full_diagonalisation_along_the_path(
    chain_model: QEPModel, relaxed_fresnel: DeviceProfile
) -> None:
    """H(t) summed here from the schedule's terms, diagonalised by NumPy in full: the ground energy,
    the response ‖(H − E_0)⁺ Q ∂_s H|0⟩‖ at every time and the final ground state."""
    free, _ = _free_schedule(chain_model, relaxed_fresnel)
    spectrum = path_spectrum(free, relaxed_fresnel, 9)
    static, terms = hamiltonian_terms(free, relaxed_fresnel)
    n = free.n_qubits
    parts = [(free.controls[name], pauli_matrix(op, n).toarray()) for name, op in terms]
    along = sum((float(w.values[-1] - w.values[0]) * m for w, m in parts), start=np.zeros((1 << n,) * 2))
    for k, t in enumerate(spectrum.times):
        hamiltonian = pauli_matrix(static, n).toarray() + sum(float(w(t)) * m for w, m in parts)
        values, vectors = np.linalg.eigh(hamiltonian)
        pushed = along @ vectors[:, 0]
        assert spectrum.responses[k] == pytest.approx(_response(values, vectors, pushed), rel=TOLERANCE)
    assert spectrum.ground_energy == pytest.approx(values[0], rel=1e-12)
    assert abs(np.vdot(spectrum.ground, vectors[:, 0])) == pytest.approx(1.0, abs=1e-12)


def test_spectra_in_threads_are_those_of_one_thread(
    chain_model: QEPModel, relaxed_fresnel: DeviceProfile
) -> None:
    free, nudge = _free_schedule(chain_model, relaxed_fresnel)
    other = qep_phase_schedules(chain_model, relaxed_fresnel, load_recipe("rydberg-smooth"), [],
                                0.5 * THETA, [1.0], 0.1, "Z" * 5)[0]  # fmt: skip
    schedules, nudges = [free, other, free], [nudge, None, None]
    alone: list[PathSpectrum] = path_spectra(schedules, relaxed_fresnel, 9, nudges, threads=1)
    threaded = path_spectra(schedules, relaxed_fresnel, 9, nudges, threads=2)
    for one, two in zip(alone, threaded, strict=True):
        for field in (*FIELDS, "shifts", "ground"):
            np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
