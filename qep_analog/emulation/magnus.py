"""Exact propagation of a schedule's Hamiltonian: a commutator-free Magnus integrator of order 4 whose
exponentials act through Chebyshev series, in compiled kernels.

**Operators.** H(t) = static + Σ_k w_k(t)·O_k (:func:`hamiltonian_terms`) with piecewise-linear
waveforms w_k. Each part is held on a common list of flip masks m_g as a diagonal (the van der Waals
couplings, detunings, fields: one real vector) and row elements E_g[c] = ⟨c|O|c XOR m_g⟩ (the
drive, the ion couplings); a group whose elements are the same for every c (Σ X_i, X_i X_j) is one
number. (H ψ)[c] = d[c] ψ[c] + Σ_g E_g[c] ψ[c XOR m_g]. Building them takes the Pauli strings' bit
masks (one cached vector per string), never a sparse matrix per term.

**Steps.** Steps never straddle a waveform breakpoint (the union of the controls' breakpoints),
between which the waveforms — hence H — are linear in t. One step of length h from t is CF4
(Blanes & Moan 2006; Alvermann & Fehske 2011, "CF4:2")

    ψ ← exp(−ih(a₁H₁ + a₂H₂)) exp(−ih(a₂H₁ + a₁H₂)) ψ,
    H_j = H(t + c_j h), c_{1,2} = 1/2 ∓ √3/6, a_{1,2} = (3 ∓ 2√3)/12,

of order 4, exact when H is constant. Since H is affine in the waveform values, each exponent is
(h/2)·H at a combination of the values at the two Gauss nodes.

**Step sizes.** By default (:func:`step_grid`) every segment between breakpoints is cut into equal
steps no longer than h_max = √(κ / max_t ‖Ḣ(t)‖₁), ‖Ḣ‖₁ = Σ_k |ẇ_k|·‖O_k‖₁ (‖O‖₁ the sum of the
|coefficients|, a bound on the norm) and κ = :data:`STEP_STRENGTH` = 0.1: every step has h²‖Ḣ‖ ≤ κ,
a bound on the phase that the change of H within a step carries (CF4 is exact for a constant H: a
schedule of constant waveforms takes one step per segment). In a segment whose controls move, a step
is also no longer than φ / max_q ‖H_c‖_q, ‖H_c‖_q = Σ_k |w_k|·‖O_k‖_q the controlled part's
coefficients on strings acting on qubit q (at the segment's ends; the static part — van der Waals
energies of states a blockade keeps empty — left out) and φ = :data:`STEP_PHASE` = 1.5: CF4's error
in a step grows as h⁵‖H‖²‖Ḣ‖, so with h²‖Ḣ‖ ≤ κ alone a long, slowly changing segment took steps
of h‖H‖ ≈ 5 rad and its error grew as T² (a 53 µs linear ramp of one atom: 2.4e-4 in infidelity
against step doubling at tol 1e-10; 3e-11 with φ; a 40 ms linear field ramp of 4 ions in 2 ms
segments: 8.5e-7, 6e-14 with φ); ramps sampled finely enough (the shipped recipes) are not changed
by it (tests/sequences/test_magnus.py). The rule is justified by tests, not by
an error bound: against QuTiP at atol 1e-12, rtol 1e-10 the final states of the 6-atom Rydberg chain
(sin², linear and gap-aware ramps) are within 5e-12 in infidelity, of the 9-atom Rydberg sensor on
aquila-like (τr ≈ 12 per exponential) within 6e-9 at worst over six inputs, of a 4-ion chain within
5e-9 (tests/sequences/test_magnus.py). On such stiff problems the local errors are far larger than
the global error (they largely cancel) and the error does not fall monotonically with h. With
``tol`` (:func:`evolve`) the steps are controlled instead by step doubling: each step is also taken
as two half steps, ‖ψ_halves − e^(iφ)ψ_one‖/15 (the Richardson estimate of a 4th-order step's local
error, the global phase removed) must be ≤ tol·h/T, so that the local errors of a schedule of
duration T add up to at most ``tol`` (a state norm); the halves are kept. An estimate below
:data:`ERROR_FLOOR` (the series' cut, where round-off makes it noise) is accepted: without that floor a
tight ``tol`` could shrink h without end. ``tol = 1e-4`` brings every
sensor input of the tests to ~1e-11, at 2–3.5× the products of the default.

**Exponentials.** exp(−iτH)ψ = e^(−iτa) Σ_k (2 − δ_k0)(−i)^k J_k(τr) T_k((H − a)/r) ψ with
[a − r, a + r] ⊇ the spectrum from Gershgorin's discs (H is Hermitian, so ‖T_k((H − a)/r)‖ ≤ 1), the
series cut where the neglected |coefficients| sum below :data:`SERIES_TOLERANCE` (a bound on the
cut's error); J_k by Miller's backward recurrence. About τr + 20 products H·ψ per exponential: a
9-atom sensor job takes ~12 500 products (200 steps; h‖H‖ is dominated by the van der Waals
energies of multiply excited states).

**Dephasing** (:func:`run_trajectories`) is unravelled exactly: with Lindblad operators √(γ/2)·Z_i,
L†L ∝ 1, so the jumps are Z_i kicks at the times of independent Poisson processes of rate γ/2 per
qubit whatever the state, and between them the evolution is the closed one. A kick flips the sign of
the qubit's coherences, so on average they decay as E[(−1)^N] = e^(−γt): the mean of |ψ⟩⟨ψ| over
trajectories is the Lindblad density matrix. Depolarizing noise (Lindblad operators √(r/4)·X_i,
√(r/4)·Y_i, √(r/4)·Z_i, again L†L ∝ 1) is unravelled the same way, X, Y and Z kicks at rate r/4
each. Each trajectory has its own kicks and its own draw of
the amplitude jitter and of the quasi-static frequency offsets δ_q (a static diagonal
Σ_q (δ_q/2)·Z_q of the trajectory's own); blocks of :data:`BLOCK` trajectories evolve side by side
on the step grid refined by all their kick times. The emulator runs them at looser settings
(:data:`TRAJECTORY_STRENGTH`, :data:`TRAJECTORY_TOLERANCE`) than a closed evolution: their numerical
error stays far below the statistical error of the mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numba
import numpy as np
from numpy.typing import NDArray

from qep_analog.devices.profile import DeviceProfile
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliString, PauliSum
from qep_analog.sequences.schedule import Schedule, Terms, hamiltonian_terms, initial_state_index

#: Gauss–Legendre nodes and CF4 weights
_C1 = 0.5 - math.sqrt(3.0) / 6.0
_C2 = 0.5 + math.sqrt(3.0) / 6.0
_A1 = (3.0 - 2.0 * math.sqrt(3.0)) / 12.0
_A2 = (3.0 + 2.0 * math.sqrt(3.0)) / 12.0
#: each exponential's Chebyshev series is cut where the neglected |coefficients| sum below this
SERIES_TOLERANCE = 1e-10
#: κ of the default step rule: every step has h²·‖Ḣ‖ ≤ κ (see the module doc)
STEP_STRENGTH = 0.1
#: φ of the default step rule: a step in which the controls move has h·max_q ‖H_c‖_q ≤ φ
STEP_PHASE = 1.5
#: trajectories evolved side by side (the block's kick times refine its step grid)
BLOCK = 16
#: κ and series tolerance of noisy trajectories: each trajectory's state is then within ~2e-3 (a
#: norm, on the hardest sensor job of the tests) of a tightly converged one, far below the
#: statistical error of a mean over trajectories (probabilities spread by ~0.1 from one trajectory
#: to the next on the Rydberg sensor)
TRAJECTORY_STRENGTH = 1.0
TRAJECTORY_TOLERANCE = 1e-5


@lru_cache(maxsize=8192)
def _string_elements(string: PauliString, n: int) -> tuple[int, NDArray]:
    """(flip mask, ⟨c|P|c XOR mask⟩ for every basis state c) of a Pauli string, qubit 0 the most
    significant bit: the phase i^(#Y) times (−1)^parity((c XOR mask) AND z-mask)."""
    x, z = string.x_mask(n), string.z_mask(n)
    basis = np.arange(1 << n, dtype=np.int64)
    sign = 1.0 - 2.0 * (np.bitwise_count((basis ^ x) & z) & 1).astype(np.float64)
    values = (1j) ** (string.n_y % 4) * sign
    values.setflags(write=False)
    return x, values


def flip_masks(operators: Sequence[PauliSum], n: int) -> NDArray:
    """The distinct flip masks of some Pauli sums, 0 (the diagonal) first."""
    masks = {0}
    for operator in operators:
        masks.update(string.x_mask(n) for string in operator)
    return np.array(sorted(masks), dtype=np.int64)


def row_elements(
    operator: PauliSum, n: int, masks: NDArray | Sequence[int] | None = None
) -> tuple[NDArray, NDArray]:
    """(masks, E) with E[g, c] = ⟨c|O|c XOR masks[g]⟩ of a Pauli sum; ``masks`` (0 first) must hold
    every flip mask of it (default: its own)."""
    chosen = flip_masks([operator], n) if masks is None else np.asarray(masks, dtype=np.int64)
    group = {int(m): g for g, m in enumerate(chosen)}
    out = np.zeros((len(chosen), 1 << n), dtype=np.complex128)
    for string, coefficient in operator.items():
        mask, values = _string_elements(string, n)
        out[group[mask]] += coefficient * values
    return chosen, out


@dataclass(frozen=True)
class SplitHamiltonian:
    """H(t) = Σ_k w_k(t) part_k with w_0 = 1 (the static part) and w_k the k-th control's waveform
    (``names[k − 1]``): ``diagonals[k]`` the diagonal of part k, ``rows[k, 0 / 1, g]`` the real /
    imaginary parts of its row elements on the flip mask ``masks[g]`` (not 0), ``uniform[g]``: those
    are the same for every basis state in every part. ``norms[k − 1]``: ‖O_k‖₁; ``site_norms[k − 1,
    q]``: the part of it on strings that act on qubit q. The waveforms are sampled at the union of
    their breakpoints (``grid``; ``values[i, k − 1]`` = w_k(grid[i]))."""

    n_qubits: int
    masks: NDArray
    diagonals: NDArray
    rows: NDArray
    uniform: NDArray
    norms: NDArray
    names: tuple[str, ...]
    grid: NDArray
    values: NDArray
    site_norms: NDArray

    @classmethod
    def of(cls, schedule: Schedule, profile: DeviceProfile) -> SplitHamiltonian:
        return cls.of_terms(schedule, hamiltonian_terms(schedule, profile))

    @classmethod
    def of_terms(cls, schedule: Schedule, parts: Terms) -> SplitHamiltonian:
        """From the schedule's waveforms and (static part, [(control name, operator)])."""
        n = schedule.n_qubits
        split = ScheduleParts.of_terms(schedule, parts)
        masks = flip_masks(split.operators, n)
        elements = np.array([row_elements(op, n, masks)[1] for op in split.operators])
        rows = np.ascontiguousarray(np.stack([elements[:, 1:].real, elements[:, 1:].imag], axis=1))
        uniform = np.all(rows == rows[..., :1], axis=(0, 1, 3))
        return cls(
            n, np.ascontiguousarray(masks[1:]), np.ascontiguousarray(elements[:, 0].real), rows,
            uniform, split.norms, split.names, split.grid, split.values, split.site_norms,
        )  # fmt: skip

    @property
    def parts(self) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        """The arrays the kernels take."""
        return self.diagonals, self.rows, self.uniform, self.masks

    def sampled(self, times: NDArray, scales: NDArray | None = None) -> NDArray:
        """Weights (1, w_1(t), …) at ``times``, the controls scaled by ``scales``."""
        return sampled_weights(self, times, scales)


class Waveforms(Protocol):
    """The controls' piecewise-linear waveforms of a split Hamiltonian (full space or a subspace):
    ``values[i, k]`` = w_k(grid[i]) of the control ``names[k]``, ``norms[k]`` = ‖O_k‖₁,
    ``site_norms[k, q]`` the part of it on strings that act on qubit q."""

    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def grid(self) -> NDArray: ...
    @property
    def values(self) -> NDArray: ...
    @property
    def norms(self) -> NDArray: ...
    @property
    def site_norms(self) -> NDArray: ...


@dataclass(frozen=True)
class ScheduleParts:
    """A schedule's Hamiltonian as parts: ``operators[0]`` the static part, ``operators[k]`` the
    control ``names[k − 1]``'s operator (controls without one, or absent from the schedule, left
    out), their waveforms sampled at the union of the breakpoints (``grid``, ``values``) and
    ``norms[k − 1]`` = ‖O_k‖₁ (the sum of the |coefficients|), ``site_norms[k − 1, q]`` the part of
    it on strings that act on qubit q."""

    operators: tuple[PauliSum, ...]
    names: tuple[str, ...]
    grid: NDArray
    values: NDArray
    norms: NDArray
    site_norms: NDArray

    @classmethod
    def of(cls, schedule: Schedule, profile: DeviceProfile) -> ScheduleParts:
        return cls.of_terms(schedule, hamiltonian_terms(schedule, profile))

    @classmethod
    def of_terms(cls, schedule: Schedule, parts: Terms) -> ScheduleParts:
        """From the schedule's waveforms and (static part, [(control name, operator)])."""
        static, terms = parts
        used = [(name, op) for name, op in terms if op and name in schedule.controls]
        grid = np.unique(np.concatenate([w.times for w in schedule.controls.values()]))
        values = np.zeros((len(grid), len(used)))
        for k, (name, _) in enumerate(used):
            values[:, k] = schedule.controls[name](grid)
        norms = np.array([sum(abs(c) for c in op.values()) for _, op in used], dtype=float)
        site_norms = np.zeros((len(used), schedule.n_qubits))
        for k, (_, op) in enumerate(used):
            for string, coefficient in op.items():
                for q, _letter in string.factors:
                    site_norms[k, q] += abs(coefficient)
        operators = (static, *(op for _, op in used))
        return cls(operators, tuple(name for name, _ in used), grid, values, norms, site_norms)


def sampled_weights(waveforms: Waveforms, times: NDArray, scales: NDArray | None = None) -> NDArray:
    """Weights (1, w_1(t), …) at ``times``, the controls scaled by ``scales``."""
    out = np.ones((len(times), 1 + len(waveforms.names)))
    for k in range(len(waveforms.names)):
        out[:, k + 1] = np.interp(times, waveforms.grid, waveforms.values[:, k])
    if scales is not None:
        out[:, 1:] *= scales
    return out


def step_grid(
    hamiltonian: Waveforms, strength: float = STEP_STRENGTH, phase: float = STEP_PHASE
) -> NDArray:
    """The default step ends: the breakpoints, each segment cut into ⌈L/h_max⌉ equal steps with
    h_max = √(κ / max_t ‖Ḣ(t)‖₁), ‖Ḣ‖₁ = Σ_k |ẇ_k|·‖O_k‖₁, and, in a segment whose controls move,
    at most φ / max_q ‖H_c‖_q, ‖H_c‖_q = Σ_k |w_k|·‖O_k‖_q over the segment's ends (see the module
    doc). Their number is checked against the memory limit first: per step, its end (float64, built
    in pieces and joined) and the weights of the Hamiltonian's parts sampled there."""
    grid = hamiltonian.grid
    lengths = np.diff(grid)
    slopes = np.abs(np.diff(hamiltonian.values, axis=0)) / lengths[:, None]
    rates = slopes @ hamiltonian.norms
    peak = float(rates.max()) if len(rates) else 0.0
    counts = np.ones(len(lengths), dtype=int)
    if peak > 0:
        local = (np.abs(hamiltonian.values) @ hamiltonian.site_norms).max(axis=1)  # at each breakpoint
        moving = np.maximum(local[:-1], local[1:]) * (rates > 0)
        longest = np.minimum(math.sqrt(strength / peak), phase / np.maximum(moving, 1e-300))
        wanted = np.maximum(1.0, np.ceil(lengths / longest - 1e-9))
        steps = float(wanted.sum()) + 1
        require_memory(f"emulator: {steps:.3g} time steps", 8 * (3 + len(hamiltonian.names)) * steps)
        counts = wanted.astype(int)
    pieces = [grid[i] + lengths[i] * np.arange(counts[i]) / counts[i] for i in range(len(lengths))]
    return np.concatenate([*pieces, grid[-1:]])


# -- kernels -----------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _bessel_series(z: float, tolerance: float) -> NDArray:
    """J_k(z) (z > 0) for k = 0 … K − 1, K the first index from which Σ_{k≥K} 2|J_k| < ``tolerance``
    (K ≥ 2): Miller's backward recurrence from far above z, normalised by J_0 + 2 Σ J_2k = 1."""
    start = int(z + 40.0 + 12.0 * z ** (1.0 / 3.0) + math.sqrt(160.0 * (z + 1.0)))
    start += start % 2
    values = np.zeros(start + 2)
    values[start] = 1e-300
    for k in range(start, 0, -1):
        values[k - 1] = 2.0 * k / z * values[k] - values[k + 1]
        if abs(values[k - 1]) > 1e250:
            for j in range(k - 1, start + 1):
                values[j] *= 1e-250
    norm = values[0]
    for k in range(2, start + 1, 2):
        norm += 2.0 * values[k]
    kept = int(z) + 1
    tail = 0.0
    for k in range(start, int(z), -1):
        tail += 2.0 * abs(values[k] / norm)
        if tail >= tolerance:
            kept = k + 1
            break
    kept = max(kept, 2)
    if kept >= start - 10:  # pragma: no cover - the start is far enough above z
        raise ValueError("Chebyshev series: the Bessel recurrence started too low")
    return values[:kept] / norm


@numba.njit(cache=True, nogil=True)
def _combine(
    diagonals: NDArray, rows: NDArray, uniform: NDArray, weights: NDArray, diagonal: NDArray,
    combined: NDArray,
) -> None:  # fmt: skip
    """The diagonal and row elements of Σ_k weights[k] part_k (a uniform group: element 0 only)."""
    dim = diagonals.shape[1]
    diagonal[:] = 0.0
    combined[:, :, :1] = 0.0
    for k in range(diagonals.shape[0]):
        w = weights[k]
        if w == 0.0:
            continue
        for c in range(dim):
            diagonal[c] += w * diagonals[k, c]
        for g in range(uniform.shape[0]):
            if uniform[g]:
                combined[0, g, 0] += w * rows[k, 0, g, 0]
                combined[1, g, 0] += w * rows[k, 1, g, 0]
    for g in range(uniform.shape[0]):
        if uniform[g]:
            continue
        for part in range(2):
            for c in range(dim):
                total = 0.0
                for k in range(diagonals.shape[0]):
                    total += weights[k] * rows[k, part, g, c]
                combined[part, g, c] = total


@numba.njit(cache=True, nogil=True, fastmath=True)
def _flip_runs(a: float, bit: int, v: NDArray, out: NDArray) -> None:
    """out[c] += a·v[c XOR 2^bit] (bit ≥ 2), as contiguous runs the compiler vectorises."""
    run = 1 << bit
    source = v.reshape((v.shape[0] >> (bit + 1), 2, run))
    target = out.reshape((v.shape[0] >> (bit + 1), 2, run))
    for i in range(source.shape[0]):
        for u in range(run):
            target[i, 0, u] += a * source[i, 1, u]
        for u in range(run):
            target[i, 1, u] += a * source[i, 0, u]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _flip_low(a0: float, a1: float, v: NDArray, out: NDArray) -> None:
    """out[c] += a0·v[c XOR 1] + a1·v[c XOR 2], four states at a time."""
    source = v.reshape((v.shape[0] >> 2, 4))
    target = out.reshape((v.shape[0] >> 2, 4))
    for i in range(source.shape[0]):
        x0, x1, x2, x3 = source[i, 0], source[i, 1], source[i, 2], source[i, 3]
        target[i, 0] += a0 * x1 + a1 * x2
        target[i, 1] += a0 * x0 + a1 * x3
        target[i, 2] += a0 * x3 + a1 * x0
        target[i, 3] += a0 * x2 + a1 * x1


@numba.njit(cache=True, nogil=True, fastmath=True)
def _product(
    diagonal: NDArray, combined: NDArray, uniform: NDArray, masks: NDArray, middle: float,
    factor: float, v: NDArray, out: NDArray,
) -> None:  # fmt: skip
    """out ← factor·(H − middle)·v − out; v and out as (real part, imaginary part) rows. A uniform
    real group of one flipped bit (the drive Σ X_i) goes by runs; the others state by state."""
    vr, vi, outr, outi = v[0], v[1], out[0], out[1]
    dim = diagonal.shape[0]
    for c in range(dim):
        d = factor * (diagonal[c] - middle)
        outr[c] = d * vr[c] - outr[c]
        outi[c] = d * vi[c] - outi[c]
    low = np.zeros(2)
    for g in range(masks.shape[0]):
        m = masks[g]
        if uniform[g]:
            a = factor * combined[0, g, 0]
            b = factor * combined[1, g, 0]
            if b == 0.0 and m & (m - 1) == 0 and dim >= 4:
                if m < 4:
                    low[m >> 1] = a
                else:
                    bit = 2
                    while 1 << bit != m:
                        bit += 1
                    _flip_runs(a, bit, vr, outr)
                    _flip_runs(a, bit, vi, outi)
            elif b == 0.0:
                for c in range(dim):
                    s = c ^ m
                    outr[c] += a * vr[s]
                    outi[c] += a * vi[s]
            else:
                for c in range(dim):
                    s = c ^ m
                    outr[c] += a * vr[s] - b * vi[s]
                    outi[c] += a * vi[s] + b * vr[s]
        else:
            re, im = combined[0, g], combined[1, g]
            for c in range(dim):
                s = c ^ m
                a = factor * re[c]
                b = factor * im[c]
                outr[c] += a * vr[s] - b * vi[s]
                outi[c] += a * vi[s] + b * vr[s]
    if low[0] != 0.0 or low[1] != 0.0:
        _flip_low(low[0], low[1], vr, outr)
        _flip_low(low[0], low[1], vi, outi)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _accumulate(coefficient: float, quarter: int, v: NDArray, result: NDArray) -> None:
    """result += coefficient·(−i)^quarter·v."""
    vr, vi, rr, ri = v[0], v[1], result[0], result[1]
    sign = 1.0 if quarter < 2 else -1.0
    a = sign * coefficient
    if quarter % 2 == 0:
        for c in range(vr.shape[0]):
            rr[c] += a * vr[c]
            ri[c] += a * vi[c]
    else:
        for c in range(vr.shape[0]):
            rr[c] += a * vi[c]
            ri[c] -= a * vr[c]


@numba.njit(cache=True, nogil=True)
def _expm_action(
    diagonal: NDArray, combined: NDArray, uniform: NDArray, masks: NDArray, tau: float,
    psi: NDArray, work: NDArray,
) -> int:  # fmt: skip
    """ψ ← exp(−iτH)ψ in place (ψ as (real part, imaginary part) rows) by the Chebyshev series on
    Gershgorin's bounds of H; ``work`` is (3, 2, dim) scratch. Returns the number of H·ψ products."""
    dim = diagonal.shape[0]
    spread = 0.0
    for g in range(masks.shape[0]):
        if uniform[g]:
            spread += math.hypot(combined[0, g, 0], combined[1, g, 0])
    low, high = np.inf, -np.inf
    for c in range(dim):
        radius = spread
        for g in range(masks.shape[0]):
            if not uniform[g]:
                radius += math.hypot(combined[0, g, c], combined[1, g, c])
        low = min(low, diagonal[c] - radius)
        high = max(high, diagonal[c] + radius)
    middle = 0.5 * (high + low)
    half = 0.5 * (high - low)
    cos, sin = math.cos(tau * middle), -math.sin(tau * middle)  # e^(−iτa)
    if half * tau < 1e-15:
        re = psi[0].copy()
        psi[0] = cos * re - sin * psi[1]
        psi[1] = sin * re + cos * psi[1]
        return 0
    bessel = _bessel_series(tau * half, SERIES_TOLERANCE)
    previous, current, result = work[0], work[1], work[2]
    # T_0 ψ = ψ and T_1 ψ = (H − a)/r ψ: result = J_0 ψ − 2i J_1 T_1 ψ
    previous[:] = psi
    current[:] = 0.0
    _product(diagonal, combined, uniform, masks, middle, 1.0 / half, psi, current)
    result[:] = 0.0
    _accumulate(bessel[0], 0, psi, result)
    _accumulate(2.0 * bessel[1], 1, current, result)
    for k in range(2, bessel.shape[0]):
        # T_k = 2(H − a)/r T_{k−1} − T_{k−2}, written over T_{k−2}; (−i)^k: 1, −i, −1, i
        _product(diagonal, combined, uniform, masks, middle, 2.0 / half, current, previous)
        _accumulate(2.0 * bessel[k], k % 4, previous, result)
        previous, current = current, previous
    for c in range(dim):
        psi[0, c] = cos * result[0, c] - sin * result[1, c]
        psi[1, c] = sin * result[0, c] + cos * result[1, c]
    return bessel.shape[0] - 1


@numba.njit(cache=True, nogil=True)
def _cf4(
    diagonals: NDArray, rows: NDArray, uniform: NDArray, masks: NDArray, w1: NDArray, w2: NDArray,
    h: float, psi: NDArray, diagonal: NDArray, combined: NDArray, work: NDArray,
) -> int:  # fmt: skip
    """One CF4 step of length h given the weights at the two Gauss nodes: the exponent
    h(a₂H₁ + a₁H₂) = (h/2)·H(2a₂w₁ + 2a₁w₂) acts first. Returns the number of H·ψ products."""
    _combine(diagonals, rows, uniform, 2.0 * (_A2 * w1 + _A1 * w2), diagonal, combined)
    products = _expm_action(diagonal, combined, uniform, masks, 0.5 * h, psi, work)
    _combine(diagonals, rows, uniform, 2.0 * (_A1 * w1 + _A2 * w2), diagonal, combined)
    return products + _expm_action(diagonal, combined, uniform, masks, 0.5 * h, psi, work)


@numba.njit(cache=True, nogil=True)
def _step(
    diagonals: NDArray, rows: NDArray, uniform: NDArray, masks: NDArray, grid: NDArray,
    weights: NDArray, i: int, t: float, h: float, psi: NDArray, diagonal: NDArray,
    combined: NDArray, work: NDArray,
) -> int:  # fmt: skip
    """A CF4 step from t inside [grid[i], grid[i + 1]], where the weights are linear."""
    length = grid[i + 1] - grid[i]
    s1 = (t + _C1 * h - grid[i]) / length
    s2 = (t + _C2 * h - grid[i]) / length
    w1 = (1.0 - s1) * weights[i] + s1 * weights[i + 1]
    w2 = (1.0 - s2) * weights[i] + s2 * weights[i + 1]
    return _cf4(diagonals, rows, uniform, masks, w1, w2, h, psi, diagonal, combined, work)


@numba.njit(cache=True, nogil=True)
def _scratch(diagonals: NDArray, rows: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    dim = diagonals.shape[1]
    return np.empty(dim), np.empty((2, rows.shape[2], dim)), np.empty((3, 2, dim))


@numba.njit(cache=True, nogil=True)
def _fixed(
    diagonals: NDArray, rows: NDArray, uniform: NDArray, masks: NDArray, grid: NDArray,
    weights: NDArray, psi: NDArray,
) -> int:  # fmt: skip
    """ψ evolved in place by one CF4 step per interval of ``grid``; returns the number of H·ψ
    products."""
    diagonal, combined, work = _scratch(diagonals, rows)
    products = 0
    for i in range(len(grid) - 1):
        products += _step(
            diagonals, rows, uniform, masks, grid, weights, i, grid[i], grid[i + 1] - grid[i], psi,
            diagonal, combined, work,
        )  # fmt: skip
    return products


@numba.njit(cache=True, nogil=True)
def _distance(a: NDArray, b: NDArray) -> float:
    """min over φ of ‖a − e^(iφ) b‖ (a global phase is no error)."""
    overlap_r = np.sum(b[0] * a[0] + b[1] * a[1])
    overlap_i = np.sum(b[0] * a[1] - b[1] * a[0])
    size = math.hypot(overlap_r, overlap_i)
    cos, sin = (1.0, 0.0) if size == 0.0 else (overlap_r / size, overlap_i / size)
    total = 0.0
    for c in range(a.shape[1]):
        dr = a[0, c] - (cos * b[0, c] - sin * b[1, c])
        di = a[1, c] - (sin * b[0, c] + cos * b[1, c])
        total += dr * dr + di * di
    return math.sqrt(total)


#: the local error estimate's floor: the Chebyshev series' cut (SERIES_TOLERANCE per exponential)
#: and round-off make it noisy below this; a step whose estimate is under it is accepted
ERROR_FLOOR = SERIES_TOLERANCE


@numba.njit(cache=True, nogil=True)
def _adaptive(
    diagonals: NDArray, rows: NDArray, uniform: NDArray, masks: NDArray, grid: NDArray,
    weights: NDArray, psi: NDArray, tol: float,
) -> tuple[NDArray, int]:  # fmt: skip
    """ψ evolved in place with step doubling (see the module doc); returns the accepted step ends
    and the number of H·ψ products."""
    diagonal, combined, work = _scratch(diagonals, rows)
    one = np.empty_like(psi)
    halves = np.empty_like(psi)
    duration = grid[-1] - grid[0]
    ends = np.empty(max(64, 2 * len(grid)))
    ends[0] = grid[0]
    n_ends = 1
    products = 0
    h_try = grid[1] - grid[0]
    for i in range(len(grid) - 1):
        t, end = grid[i], grid[i + 1]
        while end - t > 1e-12 * duration:
            h = min(h_try, end - t)
            last = end - t - h <= 1e-9 * (end - t)
            if last:
                h = end - t
            one[:] = psi
            halves[:] = psi
            for start, length, state in ((t, h, one), (t, 0.5 * h, halves), (t + 0.5 * h, 0.5 * h, halves)):
                products += _step(
                    diagonals, rows, uniform, masks, grid, weights, i, start, length, state, diagonal,
                    combined, work,
                )  # fmt: skip
            error = _distance(halves, one) / 15.0
            # below the series cut and round-off the estimate says nothing: accept (else h shrinks forever)
            allowed = max(tol * h / duration, ERROR_FLOOR)
            factor = 4.0 if error == 0.0 else min(4.0, 0.9 * (allowed / error) ** 0.2)
            if error <= allowed:
                psi[:] = halves
                t = end if last else t + h
                if n_ends == ends.shape[0]:
                    bigger = np.empty(2 * n_ends)
                    bigger[:n_ends] = ends
                    ends = bigger
                ends[n_ends] = t
                n_ends += 1
                # a step cut short by the breakpoint does not shorten the next one
                h_try = max(h_try, h * factor) if last else h * factor
            else:
                h_try = h * max(0.2, factor)
    return ends[:n_ends], products


# -- trajectories in blocks: H_r = base + s_r·J; row c of a block holds (Re ψ_r[c])_r, (Im ψ_r[c])_r --


@numba.njit(cache=True, nogil=True, fastmath=True)
def _block_product(
    base_diagonal: NDArray, jit_diagonal: NDArray, base: NDArray, jit: NDArray, uniform: NDArray,
    masks: NDArray, scales: NDArray, static: NDArray, coefficients: NDArray, imaginary: NDArray,
    middle: float, factor: float, v: NDArray, out: NDArray,
) -> None:  # fmt: skip
    """out ← factor·(H_r − middle)·v_r − out for every column r; ``static[c, r]``: a diagonal of
    column r's own (the quasi-static offsets), ``coefficients[g]``: the uniform group g's elements
    of the H_r (real parts, then imaginary parts), ``imaginary[g]``: some of those are not real."""
    dim, width = v.shape
    count = width // 2
    x = np.empty(width)
    y = np.empty(count)
    for c in range(dim):
        for r in range(count):
            x[r] = factor * (base_diagonal[c] + scales[r] * jit_diagonal[c] + static[c, r] - middle)
            x[count + r] = x[r]
        vc, oc = v[c], out[c]
        for r in range(width):
            oc[r] = x[r] * vc[r] - oc[r]
    for g in range(masks.shape[0]):
        m = masks[g]
        if uniform[g]:
            for r in range(count):
                x[r] = factor * coefficients[g, r]
                x[count + r] = x[r]
                y[r] = factor * coefficients[g, count + r]
            for c in range(dim):
                vs, oc = v[c ^ m], out[c]
                for r in range(width):
                    oc[r] += x[r] * vs[r]
                if imaginary[g]:
                    for r in range(count):
                        oc[r] -= y[r] * vs[count + r]
                        oc[count + r] += y[r] * vs[r]
        else:
            for c in range(dim):
                vs, oc = v[c ^ m], out[c]
                for r in range(count):
                    x[r] = factor * (base[0, g, c] + scales[r] * jit[0, g, c])
                    y[r] = factor * (base[1, g, c] + scales[r] * jit[1, g, c])
                for r in range(count):
                    oc[r] += x[r] * vs[r] - y[r] * vs[count + r]
                    oc[count + r] += x[r] * vs[count + r] + y[r] * vs[r]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _block_accumulate(coefficient: float, quarter: int, v: NDArray, result: NDArray) -> None:
    """result += coefficient·(−i)^quarter·v (blocks)."""
    dim, width = v.shape
    count = width // 2
    a = coefficient if quarter < 2 else -coefficient
    for c in range(dim):
        vc, rc = v[c], result[c]
        if quarter % 2 == 0:
            for r in range(width):
                rc[r] += a * vc[r]
        else:
            for r in range(count):
                rc[r] += a * vc[count + r]
                rc[count + r] -= a * vc[r]


@numba.njit(cache=True, nogil=True)
def _block_expm_action(
    base_diagonal: NDArray, jit_diagonal: NDArray, base: NDArray, jit: NDArray, uniform: NDArray,
    masks: NDArray, scales: NDArray, static: NDArray, tau: float, psi: NDArray, work: NDArray,
    tolerance: float,
) -> int:  # fmt: skip
    """ψ_r ← exp(−iτH_r)ψ_r for every column, one Chebyshev series on the union of the H_r's
    Gershgorin bounds; ``work`` is (3, dim, 2R) scratch."""
    dim, width = psi.shape
    count, groups = width // 2, masks.shape[0]
    coefficients = np.zeros((groups, width))
    imaginary = np.zeros(groups, dtype=np.bool_)
    for g in range(groups):
        if uniform[g]:
            for r in range(count):
                coefficients[g, r] = base[0, g, 0] + scales[r] * jit[0, g, 0]
                coefficients[g, count + r] = base[1, g, 0] + scales[r] * jit[1, g, 0]
                imaginary[g] = imaginary[g] or coefficients[g, count + r] != 0.0
    low, high = np.inf, -np.inf
    for r in range(count):
        spread = 0.0
        for g in range(groups):
            if uniform[g]:
                spread += math.hypot(coefficients[g, r], coefficients[g, count + r])
        for c in range(dim):
            radius = spread
            for g in range(groups):
                if not uniform[g]:
                    radius += math.hypot(
                        base[0, g, c] + scales[r] * jit[0, g, c], base[1, g, c] + scales[r] * jit[1, g, c]
                    )
            centre = base_diagonal[c] + scales[r] * jit_diagonal[c] + static[c, r]
            low = min(low, centre - radius)
            high = max(high, centre + radius)
    middle = 0.5 * (high + low)
    half = 0.5 * (high - low)
    cos, sin = math.cos(tau * middle), -math.sin(tau * middle)
    previous, current, result = work[0], work[1], work[2]
    if half * tau < 1e-15:
        result[:] = psi
        terms = 1
    else:
        bessel = _bessel_series(tau * half, tolerance)
        terms = bessel.shape[0]
        previous[:] = psi
        current[:] = 0.0
        arguments = (
            base_diagonal,
            jit_diagonal,
            base,
            jit,
            uniform,
            masks,
            scales,
            static,
            coefficients,
            imaginary,
        )
        _block_product(*arguments, middle, 1.0 / half, psi, current)
        result[:] = 0.0
        _block_accumulate(bessel[0], 0, psi, result)
        _block_accumulate(2.0 * bessel[1], 1, current, result)
        for k in range(2, terms):
            _block_product(*arguments, middle, 2.0 / half, current, previous)
            _block_accumulate(2.0 * bessel[k], k % 4, previous, result)
            previous, current = current, previous
    for c in range(dim):
        for r in range(count):
            x, y = result[c, r], result[c, count + r]
            psi[c, r] = cos * x - sin * y
            psi[c, count + r] = sin * x + cos * y
    return terms - 1


@numba.njit(cache=True, nogil=True)
def _block_evolve(
    diagonals: NDArray, rows: NDArray, uniform: NDArray, masks: NDArray, jittered: int,
    scales: NDArray, static: NDArray, grid: NDArray, weights: NDArray, psi: NDArray,
    kick_index: NDArray, kick_column: NDArray, kick_bits: NDArray, kick_kinds: NDArray,
    tolerance: float,
) -> int:  # fmt: skip
    """Columns ψ_r evolved in place under H_r(t) = Σ_k w_k(t) part_k + diag(static[:, r]) with the
    part ``jittered`` scaled by ``scales[r]``, one CF4 step per interval of ``grid``; before the step from
    grid[kick_index[j]] (after the last step for the last index) the Pauli kick_kinds[j] (0: Z,
    1: X, 2: Y) on the qubit of kick_bits[j] of column kick_column[j] (ascending index). Returns the
    number of block products."""
    dim, width = psi.shape
    count, groups = width // 2, masks.shape[0]
    base_diagonal, jit_diagonal = np.empty(dim), np.zeros(dim)
    base, jit = np.empty((2, groups, dim)), np.zeros((2, groups, dim))
    work = np.empty((3, dim, width))
    products = 0
    j = 0
    for i in range(len(grid)):
        while j < kick_index.shape[0] and kick_index[j] == i:
            r, bit, kind = kick_column[j], kick_bits[j], kick_kinds[j]
            if kind == 0:  # Z
                for c in range(dim):
                    if c & bit:
                        psi[c, r] = -psi[c, r]
                        psi[c, count + r] = -psi[c, count + r]
            else:  # X swaps |0⟩ and |1⟩; Y: |0⟩ → i|1⟩, |1⟩ → −i|0⟩
                for c in range(dim):
                    if c & bit:
                        continue
                    low_r, low_i = psi[c, r], psi[c, count + r]
                    high_r, high_i = psi[c | bit, r], psi[c | bit, count + r]
                    if kind == 1:
                        psi[c, r], psi[c, count + r] = high_r, high_i
                        psi[c | bit, r], psi[c | bit, count + r] = low_r, low_i
                    else:
                        psi[c, r], psi[c, count + r] = high_i, -high_r
                        psi[c | bit, r], psi[c | bit, count + r] = -low_i, low_r
            j += 1
        if i == len(grid) - 1:
            break
        h = grid[i + 1] - grid[i]
        w1 = (1.0 - _C1) * weights[i] + _C1 * weights[i + 1]
        w2 = (1.0 - _C2) * weights[i] + _C2 * weights[i + 1]
        for combination in (2.0 * (_A2 * w1 + _A1 * w2), 2.0 * (_A1 * w1 + _A2 * w2)):
            if jittered >= 0:
                only = np.zeros_like(combination)
                only[jittered] = combination[jittered]
                combination[jittered] = 0.0
                _combine(diagonals, rows, uniform, only, jit_diagonal, jit)
            _combine(diagonals, rows, uniform, combination, base_diagonal, base)
            products += _block_expm_action(
                base_diagonal,
                jit_diagonal,
                base,
                jit,
                uniform,
                masks,
                scales,
                static,
                0.5 * h,
                psi,
                work,
                tolerance,
            )
    return products


# -- entry points ------------------------------------------------------------------------------


def _split(psi: NDArray) -> NDArray:
    psi = np.asarray(psi, dtype=complex)
    return np.ascontiguousarray(np.stack([psi.real, psi.imag], axis=-2))


def _joined(psi: NDArray) -> NDArray:
    return np.asarray(psi[..., 0, :] + 1j * psi[..., 1, :])


def basis_state(schedule: Schedule) -> NDArray:
    """The schedule's initial basis state as a vector."""
    psi = np.zeros(1 << schedule.n_qubits, dtype=complex)
    psi[initial_state_index(schedule)] = 1.0
    return psi


@dataclass(frozen=True)
class Evolution:
    """Final state(s) (one row per trajectory), the step ends that reached them (without the kick
    times) and the number of products H·ψ (of a block of trajectories: H_r·ψ_r for all r) it
    took."""

    state: NDArray
    step_ends: NDArray
    products: int


def evolve(hamiltonian: SplitHamiltonian, psi0: NDArray, tol: float | None = None) -> Evolution:
    """ψ(T) from ψ(0) under the closed evolution: steps by :func:`step_grid`, or with ``tol`` by step
    doubling (see the module doc)."""
    psi = _split(psi0)
    if tol is not None:
        grid = hamiltonian.grid
        ends, products = _adaptive(*hamiltonian.parts, grid, hamiltonian.sampled(grid), psi, float(tol))
        return Evolution(_joined(psi), ends, products)
    steps = step_grid(hamiltonian)
    products = _fixed(*hamiltonian.parts, steps, hamiltonian.sampled(steps), psi)
    return Evolution(_joined(psi), steps, products)


#: bytes per Z kick of the trajectories: its (time, qubit) tuple in the draw and the block's sorted
#: (time, draw, qubit) tuples (tracemalloc: about 165), its float and int64 entries in the block's
#: arrays and the step grid refined by it (40 more)
KICK_BYTES = 256


@dataclass(frozen=True)
class Trajectory:
    """One unravelling: the relative amplitude max(0, 1 + σξ) of the jittered control, the Z kicks
    as (time, qubit), by time, each qubit's quasi-static frequency offset δ_q (rad/µs; H gains
    Σ_q (δ_q/2)·Z_q; empty: none), the X and Y kicks as (time, qubit, letter) (depolarizing noise),
    the atoms missing from the shot and the scale of the detuning map's waveform (the last two
    change the Hamiltonian's operators: :mod:`qep_analog.emulation.noisy_terms`)."""

    amplitude: float = 1.0
    kicks: tuple[tuple[float, int], ...] = ()
    offsets: tuple[float, ...] = ()
    flips: tuple[tuple[float, int, str], ...] = ()
    absent: tuple[int, ...] = ()
    map_scale: float = 1.0

    @property
    def operators(self) -> tuple[tuple[int, ...], float]:
        """What the trajectory changes in the Hamiltonian's operators: (missing atoms, map scale)."""
        return self.absent, self.map_scale


def draw_trajectories(
    count: int,
    n_qubits: int,
    duration: float,
    gamma: float,
    jitter: float,
    rng: np.random.Generator,
    detuning_rms: float = 0.0,
    *,
    depolarizing: float = 0.0,
    detuning_jitter: float = 0.0,
    map_jitter: float = 0.0,
    state_prep: float = 0.0,
) -> list[Trajectory]:
    """``count`` trajectories: amplitude max(0, 1 + ``jitter``·ξ), ξ ~ N(0, 1), on every qubit Z
    kicks at the times of a Poisson process of rate γ/2 on [0, ``duration``] and a static frequency
    offset δ_q ~ N(0, ``detuning_rms``²) (rad/µs); then (each only where its rate is not 0) one
    offset ~ N(0, ``detuning_jitter``²) added on every qubit, X, Y and Z kicks at rate
    ``depolarizing``/4 each per qubit, each atom missing with probability ``state_prep`` and the
    detuning map's scale max(0, 1 + ``map_jitter``·ξ). The draws of a source come in the same order
    whether the later ones are on or not (a seed gives the same draws as before they existed)."""
    expected = count * n_qubits * (0.5 * gamma + 0.75 * depolarizing) * duration
    require_memory(f"emulator: about {expected:.3g} dephasing kicks", KICK_BYTES * expected)
    out = []
    for _ in range(count):
        amplitude = max(0.0, 1.0 + jitter * rng.standard_normal()) if jitter > 0 else 1.0
        kicks: list[tuple[float, int]] = []
        if gamma > 0:
            for q in range(n_qubits):
                times = rng.uniform(0.0, duration, rng.poisson(0.5 * gamma * duration))
                kicks += [(float(t), q) for t in times]
        offsets = detuning_rms * rng.standard_normal(n_qubits) if detuning_rms > 0 else np.zeros(0)
        if detuning_jitter > 0:
            offsets = (
                offsets if offsets.size else np.zeros(n_qubits)
            ) + detuning_jitter * rng.standard_normal()
        flips: list[tuple[float, int, str]] = []
        if depolarizing > 0:
            for q in range(n_qubits):
                for letter in "XYZ":
                    times = rng.uniform(0.0, duration, rng.poisson(0.25 * depolarizing * duration))
                    if letter == "Z":
                        kicks += [(float(t), q) for t in times]
                    else:
                        flips += [(float(t), q, letter) for t in times]
        absent: tuple[int, ...] = ()
        if state_prep > 0:
            absent = tuple(int(q) for q in np.flatnonzero(rng.uniform(size=n_qubits) < state_prep))
        map_scale = max(0.0, 1.0 + map_jitter * rng.standard_normal()) if map_jitter > 0 else 1.0
        out.append(
            Trajectory(
                amplitude, tuple(sorted(kicks)), tuple(map(float, offsets)), tuple(sorted(flips)),
                absent, map_scale,
            )
        )  # fmt: skip
    return out


def static_diagonals(draws: Sequence[Trajectory], n_qubits: int) -> NDArray:
    """``out[c, r]`` = Σ_q (δ_q/2)·⟨c|Z_q|c⟩ of draw r (qubit 0 the most significant bit)."""
    out = np.zeros((1 << n_qubits, len(draws)))
    basis = np.arange(1 << n_qubits)
    signs = 1.0 - 2.0 * ((basis[:, None] >> np.arange(n_qubits - 1, -1, -1)[None, :]) & 1)
    for r, draw in enumerate(draws):
        if draw.offsets:
            out[:, r] = signs @ (0.5 * np.asarray(draw.offsets))
    return out


def run_trajectories(
    hamiltonian: SplitHamiltonian,
    psi0: NDArray,
    draws: Sequence[Trajectory],
    jittered: str | None,
    steps: NDArray | None = None,
    tolerance: float = SERIES_TOLERANCE,
    progress: Callable[[int, int], None] | None = None,
    power: int = 1,
) -> Evolution:
    """The final states of ``draws`` (one row each): ``jittered``'s waveform scaled by the draw's
    amplitude to the ``power`` (the platform's ``drive_power``), its static offsets added, Z kicks
    at their times, one CF4 step per interval of ``steps`` (default :func:`step_grid`). Blocks of up
    to :data:`BLOCK` trajectories evolve side by side on ``steps`` refined by the block's kick times
    (one Chebyshev series per exponential for the block, on the union of its spectral bounds);
    ``progress(done, len(draws))`` after each block."""
    steps = step_grid(hamiltonian) if steps is None else np.asarray(steps, dtype=float)
    states, products = [], 0
    for first in range(0, len(draws), BLOCK):
        block, count = _block(
            hamiltonian, psi0, draws[first : first + BLOCK], jittered, steps, tolerance, power
        )
        states.append(block)
        products += count
        if progress is not None:
            progress(first + len(block), len(draws))
    return Evolution(np.concatenate(states), steps, products)


def _block(
    hamiltonian: SplitHamiltonian,
    psi0: NDArray,
    draws: Sequence[Trajectory],
    jittered: str | None,
    steps: NDArray,
    tolerance: float,
    power: int = 1,
) -> tuple[NDArray, int]:
    n = hamiltonian.n_qubits
    column = 1 + hamiltonian.names.index(jittered) if jittered in hamiltonian.names else -1
    kinds = {"Z": 0, "X": 1, "Y": 2}
    kicks = sorted(
        [(t, r, q, 0) for r, draw in enumerate(draws) for t, q in draw.kicks]
        + [(t, r, q, kinds[letter]) for r, draw in enumerate(draws) for t, q, letter in draw.flips]
    )
    times = np.array([t for t, _, _, _ in kicks], dtype=float)
    grid = np.unique(np.concatenate([steps, times]))
    psi = np.ascontiguousarray(np.repeat(_split(psi0).T, len(draws), axis=1))
    products = _block_evolve(
        *hamiltonian.parts, column, np.array([draw.amplitude**power for draw in draws], dtype=float),
        np.ascontiguousarray(static_diagonals(draws, n)), grid,
        hamiltonian.sampled(grid), psi, np.searchsorted(grid, times).astype(np.int64),
        np.array([r for _, r, _, _ in kicks], dtype=np.int64),
        np.array([1 << (n - 1 - q) for _, _, q, _ in kicks], dtype=np.int64),
        np.array([kind for _, _, _, kind in kicks], dtype=np.int64), tolerance,
    )  # fmt: skip
    count = len(draws)
    return np.ascontiguousarray((psi[:, :count] + 1j * psi[:, count:]).T), products
