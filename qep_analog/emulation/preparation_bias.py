"""The bias a finite adiabatic ramp leaves in a QEP gradient, estimated from the path's spectrum.

The excitation a ramp H(s(τ)), τ = t/T, leaves after T is, to first order in the adiabatic
expansion, summed over the excited levels m and bounded through the lowest one the path couples,

    a(T) = ∫₀¹ s'(τ) · r(τ) · e^(i T θ(τ)) dτ,    θ(τ) = ∫₀^τ Δ,

with Δ(τ) the gap to the lowest level ∂_s H couples to the ground state and r = ‖∂_s|0⟩‖ =
(Σ_m |⟨m|∂_s H|0⟩|²/Δ_m²)^(1/2) the response of the ground state to the path, both from the exact
spectrum along the path (:func:`~qep_analog.emulation.diagnostics.path_spectrum`, interpolated), and
s' the ramp's own (piecewise-constant) speed, kinks of the sampled waveform included (every level m
is given the phase of the lowest one).
Integrating by parts k + 1 times for a ramp of boundary order k (s', …, s^(k) zero at both ends,
:mod:`qep_analog.sequences.shapes`) leaves only the end terms

    |a| ≈ D_e · r_e / (T Δ_e)^(k+1),     D_e = |d^(k+1)s/dτ^(k+1)| at the end e,

(a linear ramp: D = 1; cosine: π²/2; quintic: 60) and what the interior holds where the gap is
smallest (Landau–Zener-like, beyond every power of 1/T for a smooth ramp); the integral keeps both.

In the symmetric quotient (⟨A_j⟩₊ − ⟨A_j⟩₋)/2β an excitation made at τ carries the dynamical phase
from τ to the end, which the nudge ±βV (it follows s) moves by ±β T Ψ(τ), Ψ(τ) = ∫_τ^1 s δ dτ' with
δ = |⟨m|V|m⟩ − ⟨0|V|0⟩| the shift of the lowest coupled level m (along the path, from the spectrum;
without it δ is bounded by Λ, the spread of the eigenvalues of V = Σ ε_k O_k); and the amplitude
itself moves with the levels at a relative rate ≈ 2Λ s/Δ. With σ_j = ‖Q A_j|0⟩‖ in the final ground
state:

    b_j = C · 2σ_j · ( |∫ s' r e^(iTθ) sin(β T Ψ)/β dτ| + |∫ s' r e^(iTθ) 2Λ s/Δ dτ| ),

capped where |a| > 1 (both integrals scaled by 1/|a|). Against the gradient (≈ 2σ_j Λ/Δ) this is
≈ TΔ·|a| from the start and the interior: O(1) for a linear ramp until β T Λ ≳ 1, then ~1/(βT);
~1/T for a cosine ramp; ~1/T² for a quintic one. C = :data:`BIAS_CONSTANT` is calibrated on random
small models (``python benchmarks/bench_ramp_shapes.py --calibrate``) so that b_j bounds
|g_emulated − g_exact| of every component on at least 95 % of them. Closed evolution only: noise
adds its own bias (the measured difference shows it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import CubicSpline, PchipInterpolator

from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.diagnostics import PathSpectrum, path_spectrum
from qep_analog.emulation.qutip_emulator import pauli_matrix
from qep_analog.model.pauli import PauliSum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.schedule import Schedule
from qep_analog.sequences.shapes import boundary_order, canonical_shape

#: C of the module doc (see :mod:`qep_analog.emulation.preparation_bias`)
BIAS_CONSTANT = 1.5
#: nodes of the uniform part of the integration grid (the waveform's breakpoints are added)
_NODES = 4000
#: the durations tried for a recommendation: this many per factor of 10, up to the limit
_GRID_PER_DECADE = 100
#: a recommended duration T keeps the bias under its target all over [T, WINDOW·T]
WINDOW = 1.3


@dataclass(frozen=True, eq=False)
class PathBudget:
    """A ramp's path as the bias integrals need it, on nodes τ ∈ [0, 1]: s, the gap Δ (rad/µs), r,
    θ = ∫Δ dτ (rad/µs) and Ψ = ∫_τ^1 s (``shifted``: ∫_τ^1 s·δ, δ the nudge's shift of the lowest
    coupled level per unit V, in place of Λ); with the duration (µs) the spectrum was taken at, the
    boundary order and the smallest gap."""

    duration: float
    boundary_order: int
    min_gap: float
    tau: NDArray
    progress: NDArray
    gap: NDArray
    response: NDArray
    phase: NDArray
    remaining: NDArray
    shifted: bool = False

    def _integral(self, factor: NDArray, duration: float) -> complex:
        """∫ s' r factor e^(i T θ) dτ, exact for s' constant and r·factor linear between
        nodes and θ linear (Filon's rule)."""
        h = np.diff(self.tau)
        speed = np.diff(self.progress) / h
        values = self.response * factor
        left, right = speed * values[:-1], speed * values[1:]
        phase = duration * self.phase
        x = np.diff(phase)
        zeroth, first = _filon_weights(x)
        terms = np.exp(1j * phase[:-1]) * h * (left * zeroth + (right - left) * first)
        return complex(terms.sum())

    def amplitude(self, duration: float | None = None) -> float:
        """|a(T)| of the module doc after ``duration`` µs (default: the ramp's own)."""
        t = self.duration if duration is None else duration
        return abs(self._integral(np.ones_like(self.tau), t))

    def bias(
        self, spreads: ArrayLike, nudge_spread: float, beta: float, duration: float | None = None
    ) -> NDArray:
        """b_j of the module doc (``spreads``: σ_j; ``nudge_spread``: Λ; ``beta``: β)."""
        t = self.duration if duration is None else duration
        moved = self.remaining if self.shifted else nudge_spread * self.remaining
        phase_part = abs(self._integral(np.sin(beta * t * moved) / beta, t))
        level_part = abs(self._integral(2 * nudge_spread * self.progress / self.gap, t))
        scale = 1.0 / max(1.0, self.amplitude(t))
        return np.asarray(
            BIAS_CONSTANT * 2 * np.asarray(spreads, dtype=float) * scale * (phase_part + level_part)
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "duration_us": self.duration,
            "boundary_order": self.boundary_order,
            "min_gap_rad_per_us": self.min_gap,
            "excitation_amplitude": self.amplitude(),
        }


def _filon_weights(x: NDArray) -> tuple[NDArray, NDArray]:
    """∫₀¹ e^(ixu) du and ∫₀¹ u e^(ixu) du (series for small |x|)."""
    small = np.abs(x) < 1e-3
    safe = np.where(small, 1.0, x)
    e = np.exp(1j * safe)
    zeroth = np.where(small, 1 + 1j * x / 2 - x**2 / 6, (e - 1) / (1j * safe))
    first = np.where(small, 0.5 + 1j * x / 3 - x**2 / 8, e / (1j * safe) + (e - 1) / safe**2)
    return zeroth, first


def path_budget(schedule: Schedule, spectrum: PathSpectrum) -> PathBudget:
    """The budget of ``schedule`` from its path's ``spectrum`` (:func:`path_spectrum`). The gap and
    the response are interpolated as functions of s (a cubic spline: smooth along a smooth path, so
    the integral keeps the cancellations of a smooth ramp; piecewise cubic in τ for a path whose s
    does not increase), the waveform's own s(τ) taken at its breakpoints."""
    breaks, s_breaks = path_progress(schedule)
    tau_s = spectrum.times / schedule.duration
    at_samples = np.interp(tau_s, breaks, s_breaks)
    tau = np.unique(np.concatenate([breaks, tau_s, np.linspace(0.0, 1.0, _NODES + 1)]))
    progress = np.interp(tau, breaks, s_breaks)
    if np.all(np.diff(at_samples) > 0):
        gap_of, response_of = (CubicSpline(at_samples, v) for v in (spectrum.path_gaps, spectrum.responses))
        gap, response = gap_of(progress), response_of(progress)
    else:
        gap = PchipInterpolator(tau_s, spectrum.path_gaps)(tau)
        response = PchipInterpolator(tau_s, spectrum.responses)(tau)
    gap = np.maximum(gap, 1e-12)
    phase = np.concatenate([[0.0], np.cumsum((gap[1:] + gap[:-1]) / 2 * np.diff(tau))])
    shifted = bool(np.all(np.isfinite(spectrum.shifts)))
    weight = progress * (PchipInterpolator(tau_s, spectrum.shifts)(tau) if shifted else 1.0)
    cumulative = np.concatenate([[0.0], np.cumsum((weight[1:] + weight[:-1]) / 2 * np.diff(tau))])
    return PathBudget(
        duration=schedule.duration,
        boundary_order=_order(schedule),
        min_gap=spectrum.min_gap,
        tau=tau,
        progress=progress,
        gap=gap,
        response=np.maximum(response, 0.0),
        phase=phase,
        remaining=cumulative[-1] - cumulative,
        shifted=shifted,
    )


def _order(schedule: Schedule) -> int:
    """The boundary order the schedule records, else that of its shape's name, else 0."""
    meta = schedule.metadata
    if "boundary_order" in meta:
        return int(meta["boundary_order"])
    shape = canonical_shape(str(meta.get("shape", "")))
    return boundary_order(shape) if shape in ("linear", "cosine", "quintic") else 0


def path_progress(schedule: Schedule) -> tuple[NDArray, NDArray]:
    """(τ, s) at the breakpoints of the first control that moves: s = (w − w(0))/(w(T) − w(0))."""
    for waveform in schedule.controls.values():
        span = float(waveform.values[-1] - waveform.values[0])
        if span != 0:
            return waveform.times / schedule.duration, (waveform.values - waveform.values[0]) / span
    return np.array([0.0, 1.0]), np.array([0.0, 1.0])


def duration_for_bias(
    budget: PathBudget,
    spreads: ArrayLike,
    nudge_spread: float,
    beta: float,
    target: float,
    longest: float,
) -> float | None:
    """The shortest duration T (µs), from the budget's own up to ``longest``, with ‖b‖ ≤ ``target``
    all over [T, 1.3 T] (on a grid of 100 durations per decade: a lucky zero of an oscillating bias
    is not a recommendation), or None when there is none. The path's breakpoints are kept: a much
    longer ramp may need more of them (the kinks then count in ‖b‖)."""
    shortest = budget.duration
    if not (target > 0 and math.isfinite(longest)) or longest < shortest:
        return None
    count = max(2, int(_GRID_PER_DECADE * math.log10(max(longest / shortest, 1.0))) + 1)
    extra = int(_GRID_PER_DECADE * math.log10(WINDOW)) + 1
    grid = np.geomspace(shortest, WINDOW * longest, count + extra)
    under = np.array([np.linalg.norm(budget.bias(spreads, nudge_spread, beta, t)) <= target for t in grid])
    for k, t in enumerate(grid):
        if t > longest:
            return None
        if np.all(under[k:][grid[k:] <= WINDOW * t]):
            return float(t)
    return None


def generator_spreads(ground: NDArray, operators: list[PauliSum], n: int) -> NDArray:
    """σ_j = ‖Q A_j|0⟩‖ = √(⟨A_j²⟩ − ⟨A_j⟩²) of each operator in the state ``ground``."""
    out = np.empty(len(operators))
    for j, operator in enumerate(operators):
        pushed = pauli_matrix(operator, n) @ ground
        out[j] = np.linalg.norm(pushed - np.vdot(ground, pushed) * ground)
    return out


def nudge_operator(outputs: list[PauliSum], error_signal: ArrayLike) -> PauliSum:
    """V = Σ ε_k O_k."""
    eps = np.atleast_1d(np.asarray(error_signal, dtype=float))
    return PauliSum.from_terms(list(zip(eps.tolist(), outputs, strict=True)))


def nudge_spread(outputs: list[PauliSum], error_signal: ArrayLike, n: int) -> float:
    """Λ: the spread of the eigenvalues of V = Σ ε_k O_k (exact when V is diagonal, else the bound
    2 Σ |c| over its Pauli strings)."""
    nudge = nudge_operator(outputs, error_signal)
    if all(letter in "ZN" for string in nudge for _, letter in string.factors):
        diagonal = pauli_matrix(nudge, n).diagonal().real
        return float(diagonal.max() - diagonal.min())
    return 2.0 * float(sum(abs(c) for string, c in nudge.items() if string.factors))


@dataclass(frozen=True, eq=False)
class GradientBias:
    """The bias estimate of a QEP gradient prepared along ``budget``'s path: per parameter of the
    model (σ_j in ``spreads``), for the nudge β·V (Λ = ``nudge_spread``)."""

    parameters: list[str]
    budget: PathBudget
    spreads: NDArray
    nudge_spread: float
    beta: float

    @property
    def bias(self) -> NDArray:
        """b_j at the ramp's own duration."""
        return self.at(self.budget.duration)

    def at(self, duration: float) -> NDArray:
        """b_j after ``duration`` µs along the same path."""
        return self.budget.bias(self.spreads, self.nudge_spread, self.beta, duration)

    def duration_for(self, target: float, longest: float) -> float | None:
        """The shortest duration up to ``longest`` µs with ‖b‖ ≤ ``target`` over [T, 1.3 T] (None: none)."""
        return duration_for_bias(self.budget, self.spreads, self.nudge_spread, self.beta, target, longest)

    def to_document(self) -> dict[str, Any]:
        return {
            **self.budget.to_document(),
            "bias": dict(zip(self.parameters, self.bias.tolist(), strict=True)),
            "beta": self.beta,
            "nudge_spread": self.nudge_spread,
        }


def gradient_bias(
    schedule: Schedule,
    profile: DeviceProfile,
    model: QEPModel,
    error_signal: ArrayLike,
    beta: float,
    spectrum: PathSpectrum | None = None,
) -> GradientBias:
    """The bias estimate of the gradient whose free phase ``schedule`` prepares (``model``: as the
    device realises it; ``spectrum``: the schedule's path, when already computed — with the nudge
    V = Σ ε_k O_k, :func:`nudge_operator`, for the level shifts; else Λ stands for them)."""
    nudge = nudge_operator(list(model.outputs.values()), error_signal)
    spectrum = spectrum or path_spectrum(schedule, profile, nudge=nudge)
    n = model.n_qubits
    return GradientBias(
        list(model.trainable),
        path_budget(schedule, spectrum),
        generator_spreads(spectrum.ground, list(model.trainable.values()), n),
        nudge_spread(list(model.outputs.values()), error_signal, n),
        beta,
    )
