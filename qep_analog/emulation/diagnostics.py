"""Adiabaticity of an emulated preparation: fidelity with the exact ground state of the final
Hamiltonian, energy above it, the gap along the schedule's path, and the duration it needs.

The required duration comes from the local adiabatic condition max_t |⟨1|∂_t H|0⟩| / Δ(t)² ≤ ε:
∂_t H scales as 1/T when the schedule is stretched, so T_req = T · max_t(...) / ε (ε = 0.05 by
default). A duration is recommended only when the device can run it (:func:`recommended_duration`:
T_req on the clock, not beyond the profile's ``max_duration``). The lowest levels along the path
come from a dense diagonalisation up to :data:`DENSE_DIM` levels (of a real Hamiltonian: one
tridiagonal reduction, :mod:`~qep_analog.emulation.dense_levels`), beyond from a sparse
eigensolver; the gap reported is to the lowest level the ramp couples to the ground state (levels
of another symmetry sector may cross it without harm).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from numpy.typing import NDArray

from qep_analog.devices.profile import DeviceProfile, realised_duration
from qep_analog.emulation.dense_levels import DenseLevels
from qep_analog.emulation.qutip_emulator import EmulationResult, pauli_matrix
from qep_analog.errors import ConfigError, ConstraintError
from qep_analog.model.pauli import PauliSum
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms
from qep_analog.sequences.waveforms import Waveform
from qep_analog.solvers.threads import single_blas_thread

MAX_DIAGNOSED_QUBITS = 14
ADIABATIC_TOLERANCE = 0.05


@dataclass(frozen=True)
class Adiabaticity:
    """Diagnostics of one preparation (energies and gaps in rad/µs, times in µs)."""

    fidelity: float
    energy_above_ground: float
    final_gap: float
    min_gap: float
    min_gap_time: float
    adiabatic_parameter: float
    required_duration: float
    duration: float

    @property
    def slow_enough(self) -> bool:
        return self.adiabatic_parameter <= ADIABATIC_TOLERANCE

    def to_document(self) -> dict[str, float | bool]:
        return {**{k: float(v) for k, v in vars(self).items()}, "slow_enough": self.slow_enough}


LEVELS = 4  # lowest levels examined at each time
#: levels a dense diagonalisation computes (the lowest the path couples is searched among them)
DENSE_LEVELS = 12


DENSE_DIM = 2048  # below this, dense diagonalisation (ARPACK can miss a level in degenerate spectra)


#: ‖(H − E_0)⁺ b‖ of a b ⊥ |0⟩, from what a dense diagonalisation kept
Response = Callable[[NDArray], float]


def _lowest(matrix: sp.csr_matrix | NDArray, k: int) -> tuple[NDArray, NDArray, Response | None]:
    """The k lowest levels (:data:`DENSE_LEVELS` of them when the matrix is small enough to
    diagonalise densely: LAPACK's subset driver, a third of a full diagonalisation's time), and for
    a dense one the ground state's exact response (a real matrix: from the same tridiagonal
    reduction, :class:`~qep_analog.emulation.dense_levels.DenseLevels`; a complex one: a Cholesky
    solve, :func:`_exact_response`)."""
    if matrix.shape[0] <= DENSE_DIM:
        dense = matrix if isinstance(matrix, np.ndarray) else matrix.toarray()
        top = min(max(k, DENSE_LEVELS), dense.shape[0]) - 1
        if not np.iscomplexobj(dense):
            levels = DenseLevels(dense, top + 1)
            return levels.values, levels.vectors, levels.response
        values, vectors = sl.eigh(dense, subset_by_index=[0, top], driver="evr")
        gap = max(float(values[1] - values[0]), 1e-12) if len(values) > 1 else 1.0
        return values, vectors, partial(_exact_response, dense, float(values[0]), vectors[:, 0], gap=gap)
    start = np.random.default_rng(0).normal(size=matrix.shape[0])
    values, vectors = sla.eigsh(matrix, k=k, which="SA", tol=1e-12, v0=start, ncv=max(20, 4 * k))
    order = np.argsort(values)
    return values[order], vectors[:, order], None


def _coupled_gap_and_rate(values: NDArray, vectors: NDArray, derivative: NDArray) -> tuple[float, float]:
    """The gap to the lowest level the ramp couples to the ground state, and max_m |⟨m|∂_t H|0⟩| /
    (E_m − E_0)² (``derivative``: ∂_t H|0⟩). Levels the ramp does not couple (another symmetry
    sector) may cross freely."""
    elements = np.abs(vectors[:, 1:].conj().T @ derivative)
    gaps = values[1:] - values[0]
    coupled = elements > 1e-9 * max(1.0, float(elements.max(initial=0.0)))
    if not np.any(coupled):
        return float(gaps[-1]), 0.0
    return float(gaps[coupled].min()), float(
        (elements[coupled] / np.maximum(gaps[coupled], 1e-12) ** 2).max()
    )


@dataclass(frozen=True, eq=False)
class PathSpectrum:
    """The spectrum along a schedule's path (rad/µs; times in µs), at ``times``: the gap to the
    lowest level the ramp couples to the ground state, the local adiabatic rate
    max_m |⟨m|∂_t H|0⟩|/Δ_m², and along the path's direction ∂_s H = H(T) − H(0) (controls on one
    path s) the gap to the lowest level it couples and the response ‖∂_s|0⟩‖ =
    (Σ_m |⟨m|∂_s H|0⟩|²/Δ_m²)^(1/2) (exact up to :data:`DENSE_DIM` levels; beyond, the levels not
    computed bounded with the highest of them); the final ground state, its energy and the final
    Hamiltonian."""

    times: NDArray
    gaps: NDArray
    rates: NDArray
    path_gaps: NDArray
    responses: NDArray
    shifts: NDArray
    ground: NDArray
    ground_energy: float
    final_hamiltonian: sp.csr_matrix

    @property
    def min_gap(self) -> float:
        return float(self.gaps.min())


@single_blas_thread
def path_spectrum(
    schedule: Schedule, profile: DeviceProfile, points: int = 41, nudge: PauliSum | None = None
) -> PathSpectrum:
    """The lowest levels of H(t) at ``points`` times along ``schedule`` (exact, small N); with a
    ``nudge`` V, also how far V moves the lowest coupled level from the ground state,
    |⟨m|V|m⟩ − ⟨0|V|0⟩| (``shifts``; NaN without one). One BLAS thread: on a shared machine a
    threaded diagonalisation of a few hundred levels took 8 times as long."""
    return _path_spectrum(schedule, profile, points, nudge)


@single_blas_thread
def path_spectra(
    schedules: Sequence[Schedule],
    profile: DeviceProfile,
    points: int,
    nudges: Sequence[PauliSum | None],
    threads: int = 1,
) -> list[PathSpectrum]:
    """:func:`path_spectrum` of each schedule (with its nudge), one schedule per thread in up to
    ``threads`` threads (the diagonalisations of a real Hamiltonian release the GIL; BLAS keeps one
    thread in each)."""
    work = list(zip(schedules, nudges, strict=True))
    if threads < 2 or len(work) < 2:
        return [_path_spectrum(schedule, profile, points, nudge) for schedule, nudge in work]
    with ThreadPoolExecutor(min(threads, len(work))) as pool:
        return list(pool.map(lambda item: _path_spectrum(item[0], profile, points, item[1]), work))


def _path_spectrum(
    schedule: Schedule, profile: DeviceProfile, points: int, nudge: PauliSum | None
) -> PathSpectrum:
    n = schedule.n_qubits
    if n > MAX_DIAGNOSED_QUBITS:
        raise ConfigError(f"diagnostics: {n} qubits exceed the limit of {MAX_DIAGNOSED_QUBITS}")
    static, terms = hamiltonian_terms(schedule, profile)
    matrices = [
        (schedule.controls[name], pauli_matrix(op, n)) for name, op in terms if name in schedule.controls
    ]
    base = pauli_matrix(static, n)
    moved = None if nudge is None else pauli_matrix(nudge, n)
    along = sum((float(w.values[-1] - w.values[0]) * m for w, m in matrices), start=0 * base)  # ∂_s H
    times = np.linspace(0.0, schedule.duration, points)
    levels = min(LEVELS, 1 << n)  # dense below DENSE_DIM: all levels of a small system
    gaps, rates, path_gaps, responses = (np.empty(points) for _ in range(4))
    shifts = np.full(points, np.nan)
    dense = _dense_sum(base, [m for _, m in matrices]) if base.shape[0] <= DENSE_DIM else None
    for k, t in enumerate(times):
        weights = [float(w(t)) for w, _ in matrices]
        if dense is not None:
            values, vectors, exact = _lowest(dense(weights), levels)
        else:
            scaled = (c * m for c, (_, m) in zip(weights, matrices, strict=True))
            values, vectors, exact = _lowest(base + sum(scaled, start=0 * base), levels)
        ground = vectors[:, 0]
        derivative = sum((_slope(w, t) * (m @ ground) for w, m in matrices), start=np.zeros_like(ground))
        gaps[k], rates[k] = _coupled_gap_and_rate(values[:levels], vectors[:, :levels], derivative)
        path_gaps[k], responses[k], level = _path_response(values, vectors, along, exact)
        if moved is not None:
            shifts[k] = abs(_diagonal(moved, vectors[:, level]) - _diagonal(moved, ground))
    final = base + sum((float(w(times[-1])) * m for w, m in matrices), start=0 * base)
    energy0 = float(values[0])
    return PathSpectrum(times, gaps, rates, path_gaps, responses, shifts, ground, energy0, final)


def _dense_sum(base: sp.csr_matrix, terms: list[sp.csr_matrix]) -> Callable[[list[float]], NDArray]:
    """c ↦ base + Σ c_k terms_k as a dense array (the matrices' entries gathered once)."""
    parts = [sp.coo_matrix(m) for m in (base, *terms)]
    dim = base.shape[0]
    flat = np.concatenate([part.row.astype(np.int64) * dim + part.col for part in parts])
    data = np.concatenate([part.data for part in parts])
    segment = np.repeat(np.arange(len(parts)), [part.nnz for part in parts])

    def dense(coefficients: list[float]) -> NDArray:
        entries = np.concatenate([[1.0], coefficients])[segment] * data
        if np.iscomplexobj(entries):
            real = np.bincount(flat, entries.real, dim * dim)
            return (real + 1j * np.bincount(flat, entries.imag, dim * dim)).reshape(dim, dim)
        return np.bincount(flat, entries, dim * dim).reshape(dim, dim)

    return dense


def _diagonal(matrix: sp.csr_matrix, vector: NDArray) -> float:
    return float(np.real(np.vdot(vector, matrix @ vector)))


def _path_response(
    values: NDArray, vectors: NDArray, along: sp.csr_matrix, exact: Response | None = None
) -> tuple[float, float, int]:
    """The gap to the lowest level ∂_s H couples to the ground state (the highest level computed
    when none of them is coupled: a lower bound), ‖∂_s|0⟩‖ and that level's index. With the
    ``exact`` response of a dense diagonalisation (:func:`_lowest`) ‖∂_s|0⟩‖ = ‖(H − E_0)⁺ Q ∂_s H|0⟩‖
    (Q = 1 − |0⟩⟨0|); otherwise the part beyond the levels computed is bounded by ‖Q ∂_s H|0⟩‖
    over the highest gap computed."""
    ground = vectors[:, 0]
    pushed = along @ ground
    projected = pushed - np.vdot(ground, pushed) * ground
    total = float(np.linalg.norm(projected)) ** 2
    elements = np.abs(vectors[:, 1:].conj().T @ pushed)
    gaps = np.maximum(values[1:] - values[0], 1e-12)
    coupled = elements > 1e-9 * max(math.sqrt(total), 1e-300)
    level = int(np.argmax(coupled)) + 1 if np.any(coupled) else len(values) - 1
    if exact is not None and gaps[0] > 1e-9 * max(1.0, abs(float(values[0]))):
        try:
            return float(gaps[level - 1]), exact(projected), level
        except np.linalg.LinAlgError:  # not positive definite in floating point: the bound below
            pass
    within = float(np.sum(elements**2))
    rest = max(total - within, 0.0) / gaps[-1] ** 2
    return float(gaps[level - 1]), math.sqrt(float(np.sum((elements / gaps) ** 2)) + rest), level


def _exact_response(
    hamiltonian: NDArray, energy: float, ground: NDArray, projected: NDArray, gap: float
) -> float:
    """‖(H − E_0)⁺ b‖ for b ⊥ |0⟩: H − E_0 + Δ|0⟩⟨0| is positive definite and acts on the
    complement of |0⟩ as H − E_0 does."""
    shifted = hamiltonian - energy * np.eye(len(ground)) + gap * np.outer(ground, ground.conj())
    solution = sl.cho_solve(sl.cho_factor(shifted, lower=True), projected)
    return float(np.linalg.norm(solution))


def adiabaticity(
    schedule: Schedule,
    profile: DeviceProfile,
    result: EmulationResult,
    points: int = 41,
    tolerance: float = ADIABATIC_TOLERANCE,
    spectrum: PathSpectrum | None = None,
) -> Adiabaticity:
    """Diagnose ``result`` (the emulated final state of ``schedule``); ``spectrum``: its path's, when
    already computed (:func:`path_spectrum`)."""
    spectrum = spectrum or path_spectrum(schedule, profile, points)
    ground, final = spectrum.ground, spectrum.final_hamiltonian
    state = result.full_state()  # a blockade-subspace state embedded
    if state.ndim == 1:
        fidelity = abs(np.vdot(ground, state)) ** 2
        energy = np.real(np.vdot(state, final @ state))
    else:
        fidelity = np.real(np.vdot(ground, state @ ground))
        energy = np.real((final @ state).trace())
    parameter = float(spectrum.rates.max())
    duration = schedule.duration
    return Adiabaticity(
        fidelity=float(fidelity),
        energy_above_ground=float(energy - spectrum.ground_energy),
        final_gap=float(spectrum.gaps[-1]),
        min_gap=spectrum.min_gap,
        min_gap_time=float(spectrum.times[np.argmin(spectrum.gaps)]),
        adiabatic_parameter=parameter,
        required_duration=duration * parameter / tolerance,
        duration=duration,
    )


def recommended_duration(
    diagnosis: Adiabaticity, profile: DeviceProfile, at_least: float | None = None
) -> float | None:
    """The required duration (µs) — the adiabatic condition's, and at least ``at_least`` (e.g. the
    duration that brings the gradient's bias estimate under a fraction of it,
    :meth:`~qep_analog.emulation.preparation_bias.GradientBias.duration_for`) — rounded up to the
    device clock, or ``None`` when it is longer than the longest sequence the profile allows (no
    allowed duration is slow enough)."""
    wanted = max(diagnosis.required_duration, diagnosis.duration, at_least or 0.0)
    try:
        return realised_duration(profile, wanted)
    except ConstraintError:
        return None


def _slope(waveform: Waveform, t: float) -> float:
    """dw/dt of a piecewise-linear waveform at t (the right-hand segment; the last one at the end)."""
    times, values = waveform.times, waveform.values
    k = min(int(np.searchsorted(times, t, side="right")) - 1, len(times) - 2)
    return float((values[k + 1] - values[k]) / (times[k + 1] - times[k]))
