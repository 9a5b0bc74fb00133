"""Spin model ↔ controls of a Rydberg array, and the hardware limits of those controls.

The device Hamiltonian (Pulser's convention written on our basis |0⟩ = |g⟩, |1⟩ = |r⟩; rad/µs,
φ the laser phase):

    H = Σ_i Ω/2 (cos φ X_i + sin φ Y_i) − Σ_i δ_i n_i + Σ_{i<j} C6/r_ij⁶ n_i n_j,
    δ_i = δ + g_i w_i Δ  (global detuning δ, detuning-map weights w_i ∈ [0, 1], shared amplitude Δ),

with the calibration applied: Ω → rabi_scale·Ω, δ → δ + detuning_offset, C6 → interaction_scale·C6,
g_i the local gains. With n_i = (1 − Z_i)/2 it is the spin model

    H = Σ_i h_i Z_i + h_x Σ_i X_i + Σ_{i<j} J_ij Z_i Z_j + const,
    h_x = Ω cos φ / 2,  J_ij = C6 / (4 r_ij⁶),  h_i = δ_i / 2 − Σ_{j≠i} J_ij.

The interactions shift the local fields; :func:`translate` compensates for it. A one-signed detuning
map reaches signed fields through the global detuning: δ = max δ_i and Δ ≤ 0 (negative maps) or
δ = min δ_i and Δ ≥ 0 (positive maps).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.distance import pdist

from qep_analog.devices.geometry import COORD_PRECISION_UM, positions_for_couplings, zz_couplings
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConstraintError
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.units import with_unit

WEIGHT_DECIMALS = 6  # Pulser's rounding of detuning-map weights


@dataclass(frozen=True, eq=False)
class IsingModel:
    """H = Σ h_i Z_i + h_x Σ X_i + Σ_{i<j} J_ij Z_i Z_j + constant (rad/µs; J symmetric, zero diagonal)."""

    fields: NDArray
    transverse: float
    couplings: NDArray
    constant: float = 0.0

    @property
    def n_qubits(self) -> int:
        return len(self.fields)

    @classmethod
    def from_pauli_sum(cls, hamiltonian: PauliSum, n: int) -> IsingModel:
        """The Ising form of a Hamiltonian of Z, uniform X, ZZ and identity terms (else an error)."""
        fields, couplings, x_fields = np.zeros(n), np.zeros((n, n)), np.zeros(n)
        constant = 0.0
        for string, c in hamiltonian.items():
            letters = "".join(letter for _, letter in string.factors)
            qubits = [q for q, _ in string.factors]
            if letters == "":
                constant += c
            elif letters == "Z":
                fields[qubits[0]] += c
            elif letters == "X":
                x_fields[qubits[0]] += c
            elif letters == "ZZ":
                couplings[qubits[0], qubits[1]] = couplings[qubits[1], qubits[0]] = c
            else:
                raise ConstraintError(f"Rydberg array: the term {c:g}·{string} has no control")
        if np.ptp(x_fields) > 1e-12 * max(1.0, float(np.abs(x_fields).max())):
            raise ConstraintError(
                f"Rydberg array: X fields {x_fields.tolist()} differ between atoms (global drive)"
            )
        return cls(fields, float(x_fields.mean()), couplings, constant)

    def to_pauli_sum(self) -> PauliSum:
        n = self.n_qubits
        terms = [(float(self.fields[i]), f"Z{i}") for i in range(n)]
        terms += [(float(self.transverse), f"X{i}") for i in range(n)]
        terms += [(float(self.couplings[i, j]), f"Z{i} Z{j}") for i in range(n) for j in range(i + 1, n)]
        terms.append((float(self.constant), "I"))
        return pauli_sum(t for t in terms if t[0] != 0.0)


@dataclass(frozen=True, eq=False)
class RydbergControls:
    """The controls of one shot: positions (n, d) in µm, Ω, φ, global δ, detuning map w and Δ (rad/µs)."""

    positions: NDArray
    rabi: float
    detuning: float
    local_weights: NDArray = field(default_factory=lambda: np.zeros(0))
    local_amplitude: float = 0.0
    phase: float = 0.0

    @property
    def n_atoms(self) -> int:
        return len(self.positions)


def as_programmed(controls: RydbergControls) -> RydbergControls:
    """The controls as the device is programmed: Pulser keeps detuning-map weights to 6 decimals, so
    the weights are rounded, and every later step uses the rounded (realised) values."""
    return dataclasses.replace(controls, local_weights=np.round(controls.local_weights, WEIGHT_DECIMALS))


def _weights(controls: RydbergControls) -> NDArray:
    n = controls.n_atoms
    return controls.local_weights if len(controls.local_weights) else np.zeros(n)


def realize(controls: RydbergControls, profile: DeviceProfile) -> IsingModel:
    """The spin Hamiltonian the device implements for ``controls`` (calibration applied)."""
    caps, cal = profile.rydberg, profile.calibration
    n = controls.n_atoms
    couplings = zz_couplings(controls.positions, cal.interaction_scale * caps.c6)
    detunings = (
        controls.detuning
        + profile.site_offsets(n)
        + profile.local_gains(n) * _weights(controls) * controls.local_amplitude
    )
    fields = detunings / 2 - couplings.sum(axis=1)
    constant = -detunings.sum() / 2 + couplings.sum() / 2  # Σ_{i<j} U_ij/4 = Σ_{i<j} J_ij
    transverse = cal.rabi_scale * controls.rabi * math.cos(controls.phase) / 2
    return IsingModel(fields, transverse, couplings, constant)


def translate(
    model: IsingModel,
    profile: DeviceProfile,
    positions: NDArray | None = None,
    exact_couplings: bool = True,
    rtol: float = 1e-9,
) -> RydbergControls:
    """Controls that make the device implement ``model`` (up to its constant), limits checked.

    Without ``positions`` the atoms are placed to realise ``model.couplings`` exactly. With
    ``positions`` the couplings they give must match (``exact_couplings``) or are accepted as they
    are (e.g. a chain with van der Waals tails); either way the fields are compensated for the
    couplings the atoms actually have, so ``realize`` returns ``model.fields`` exactly.
    """
    caps, cal = profile.rydberg, profile.calibration
    n = model.n_qubits
    c6 = cal.interaction_scale * caps.c6
    if positions is None:
        positions = positions_for_couplings(model.couplings, c6, caps.dimensions, rtol)
    positions = np.asarray(positions, dtype=float).reshape(n, -1)
    actual = zz_couplings(positions, c6)
    scale = max(float(np.abs(model.couplings).max(initial=0.0)), 1e-300)
    mismatch = float(np.abs(actual - model.couplings).max(initial=0.0)) / scale
    if exact_couplings and n > 1 and mismatch > rtol:
        raise ConstraintError(
            f"device {profile.label!r}: the positions give couplings that differ from the model's by "
            f"{mismatch:.2e} (relative) > {rtol:.0e}; pass exact_couplings=False to accept them"
        )
    # δ_i = 2 h_i + 2 Σ_j J_ij (the interactions' share of the Z fields is put back).
    detunings = 2 * np.asarray(model.fields, dtype=float) + 2 * actual.sum(axis=1) - profile.site_offsets(n)
    weights, amplitude, detuning = _split_detunings(detunings, profile, rtol)
    phase = 0.0 if model.transverse >= 0 else math.pi
    rabi = 2 * abs(model.transverse) / cal.rabi_scale
    controls = RydbergControls(positions, rabi, detuning, weights, amplitude, phase)
    check_controls(controls, profile)
    return controls


def _split_detunings(
    detunings: NDArray, profile: DeviceProfile, rtol: float
) -> tuple[NDArray, float, float]:
    """Site detunings → (weights in [0, 1], shared amplitude Δ, global δ) for the profile's map."""
    caps = profile.rydberg
    n = len(detunings)
    high, low = float(detunings.max()), float(detunings.min())
    spread = high - low
    if spread <= rtol * max(abs(high), abs(low), 1e-300) or n == 1:
        return np.zeros(n), 0.0, float(detunings.mean())
    local = caps.local_detuning
    if local is None:
        raise ConstraintError(
            f"device {profile.label!r}: site detunings differ by {with_unit(spread, 'angular_frequency')} "
            "but the device has no local detuning (uniform fields only)"
        )
    if local.sign == "positive":
        detuning, offsets = low, detunings - low  # Δ ≥ 0
    else:
        detuning, offsets = high, detunings - high  # Δ ≤ 0
    effective = offsets / profile.local_gains(n)  # g_i w_i Δ = offset_i
    amplitude = float(effective[np.argmax(np.abs(effective))])
    weights = np.clip(effective / amplitude, 0.0, 1.0)
    return weights, amplitude, detuning


def _limit_error(
    profile: DeviceProfile, quantity: str, value: float, limit: float, dimension: str = "dimensionless"
) -> ConstraintError:
    return ConstraintError(
        f"device {profile.label!r}: {quantity} {with_unit(value, dimension)} exceeds the limit "
        f"{with_unit(limit, dimension)}"
    )


def check_controls(controls: RydbergControls, profile: DeviceProfile) -> None:
    """Raise :class:`ConstraintError` naming the profile, quantity, value, limit and unit of the first
    control or register property outside the profile's limits."""
    caps = profile.rydberg
    freq = "angular_frequency"
    pos = np.asarray(controls.positions, dtype=float)
    n = controls.n_atoms
    if pos.ndim != 2 or pos.shape[1] > caps.dimensions:
        raise _limit_error(profile, "register dimension", pos.shape[-1], caps.dimensions)
    if n > caps.max_atoms:
        raise _limit_error(profile, "number of atoms", n, caps.max_atoms)
    if n > 1:
        require_memory(f"device {profile.label!r}: distances of {n} atoms", 4 * n * (n - 1))
        distances = pdist(pos)
        closest = float(distances.min())
        if closest - caps.min_spacing < -COORD_PRECISION_UM:
            raise ConstraintError(
                f"device {profile.label!r}: atoms {closest:.6g} µm apart, closer than the minimum "
                f"spacing {caps.min_spacing:.6g} µm"
            )
    radius = float(np.linalg.norm(pos, axis=1).max(initial=0.0))
    if radius > caps.max_radius:
        raise ConstraintError(
            f"device {profile.label!r}: an atom {radius:.6g} µm from the centre, beyond the maximum "
            f"radial distance {caps.max_radius:.6g} µm"
        )
    if not 0 <= controls.rabi <= caps.max_rabi:
        raise _limit_error(profile, "Rabi frequency", controls.rabi, caps.max_rabi, freq)
    if abs(controls.detuning) > caps.max_abs_detuning:
        raise _limit_error(profile, "|detuning|", abs(controls.detuning), caps.max_abs_detuning, freq)
    weights = _weights(controls)
    if len(weights) != n:
        raise ConstraintError(f"device {profile.label!r}: {len(weights)} detuning-map weights, {n} atoms")
    if np.any((weights < 0) | (weights > 1)):
        bad = float(weights[(weights < 0) | (weights > 1)][0])
        raise ConstraintError(f"device {profile.label!r}: detuning-map weight {bad:.6g} is outside [0, 1]")
    amplitude = controls.local_amplitude
    if amplitude == 0 or not np.any(weights > 0):
        return
    local = caps.local_detuning
    if local is None:
        raise ConstraintError(
            f"device {profile.label!r}: local detuning {with_unit(amplitude, freq)} requested, but the "
            "device has no detuning map"
        )
    if (local.sign == "negative" and amplitude > 0) or (local.sign == "positive" and amplitude < 0):
        raise ConstraintError(
            f"device {profile.label!r}: local detuning {with_unit(amplitude, freq)} has the wrong sign "
            f"(this device's map takes {local.sign} values only)"
        )
    per_site = float(weights.max()) * abs(amplitude)
    if per_site > local.max_per_site:
        raise _limit_error(profile, "local detuning on a site", per_site, local.max_per_site, freq)
    total = float(weights.sum()) * abs(amplitude)
    if total > local.max_total:
        raise _limit_error(profile, "total local detuning", total, local.max_total, freq)
