"""Spin model ↔ controls of a trapped-ion chain, with the chain's validity checks.

The effective Hamiltonian of a chain driven by a Mølmer–Sørensen beat note μ on the transverse modes
(along the first radial axis of the profile), with individual Rabi frequencies Ω_i, a global field from
an asymmetric beat note and AC-Stark-shift local fields:

    H = Σ_{i<j} J_ij X_i X_j + Σ_i h_i Z_i,
    J_ij = s_J · (r Ω_i)(r Ω_j) ω_R Σ_m b_im b_jm / (μ² − ω_m²),
    h_i = B + B_0 + ½ Σ_k C_ik g_k Δ_k,

with the calibration applied (r = rabi_scale, s_J = interaction_scale, B_0 = detuning_offset, g_k the
Stark gains) and C the addressing cross-talk (1 on the diagonal, ``stark_crosstalk`` for neighbours).
The AC-Stark shift Δ_k moves the qubit frequency, hence the ½. Couplings are set by the Ω_i for a
given μ: J_ij = Ω_i Ω_j K_ij(μ) is a rank-one rescaling of the trap's kernel K, so only patterns of
that form are realisable; :func:`translate` finds the Ω_i (and :func:`choose_beat_note` a μ).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar

from qep_analog.devices import ion_chain
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConstraintError
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.units import with_unit

FREQ = "angular_frequency"


@dataclass(frozen=True, eq=False)
class IonSpinModel:
    """H = Σ_{i<j} J_ij X_i X_j + Σ_i h_i Z_i (rad/µs; J symmetric with zero diagonal)."""

    fields: NDArray
    couplings: NDArray

    @property
    def n_qubits(self) -> int:
        return len(self.fields)

    @classmethod
    def from_pauli_sum(cls, hamiltonian: PauliSum, n: int) -> IonSpinModel:
        """The ion-chain form of a Hamiltonian of Z, XX and identity terms (else an error)."""
        fields, couplings = np.zeros(n), np.zeros((n, n))
        for string, c in hamiltonian.items():
            letters = "".join(letter for _, letter in string.factors)
            qubits = [q for q, _ in string.factors]
            if letters == "Z":
                fields[qubits[0]] += c
            elif letters == "XX":
                couplings[qubits[0], qubits[1]] = couplings[qubits[1], qubits[0]] = c
            elif letters != "":
                raise ConstraintError(f"ion chain: the term {c:g}·{string} has no control")
        return cls(fields, couplings)

    def to_pauli_sum(self) -> PauliSum:
        n = self.n_qubits
        terms = [(float(self.fields[i]), f"Z{i}") for i in range(n)]
        terms += [(float(self.couplings[i, j]), f"X{i} X{j}") for i in range(n) for j in range(i + 1, n)]
        return pauli_sum(t for t in terms if t[0] != 0.0)


@dataclass(frozen=True, eq=False)
class IonControls:
    """Per-ion Rabi frequencies Ω_i, beat note μ, global field B, per-ion Stark shifts Δ_i (rad/µs)."""

    rabi: NDArray
    beat_note: float
    global_field: float = 0.0
    stark_shifts: NDArray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_ions(self) -> int:
        return len(self.rabi)


@dataclass(frozen=True)
class ChainModes:
    """The transverse modes of an n-ion chain of a profile, and its recoil frequency (rad/µs)."""

    frequencies: NDArray
    vectors: NDArray
    recoil: float
    lamb_dicke: NDArray


@lru_cache(maxsize=64)
def _modes(n: int, mass: float, axial: float, radial: float, wavelength: float, angle: float) -> ChainModes:
    u = ion_chain.dimensionless_positions(n)
    frequencies, vectors = ion_chain.transverse_modes(u, axial, radial)
    recoil = ion_chain.recoil_frequency(mass, wavelength, angle)
    eta = ion_chain.lamb_dicke(mass, wavelength, angle, frequencies)
    return ChainModes(frequencies, vectors, recoil, eta)


def chain_modes(profile: DeviceProfile, n: int) -> ChainModes:
    """Transverse modes of ``n`` ions in the profile's trap (zig-zag and ion count checked)."""
    caps = profile.ions
    if n > caps.max_ions:
        raise ConstraintError(
            f"device {profile.label!r}: number of ions {n} exceeds the limit {caps.max_ions}"
        )
    return _modes(
        n,
        caps.mass,
        caps.axial_frequency,
        caps.radial_frequencies[0],
        caps.raman_wavelength,
        caps.raman_angle,
    )


def crosstalk_matrix(profile: DeviceProfile, n: int) -> NDArray:
    """C_ik: the fraction of the Stark shift aimed at ion k that ion i feels (nearest neighbours)."""
    c = profile.ions.stark_crosstalk
    return np.eye(n) + c * (np.eye(n, k=1) + np.eye(n, k=-1))


def coupling_kernel(profile: DeviceProfile, n: int, beat_note: float) -> NDArray:
    """K_ij(μ) with J_ij = Ω_i Ω_j K_ij for the nominal Rabi frequencies (calibration applied)."""
    modes = chain_modes(profile, n)
    cal = profile.calibration
    kernel = ion_chain.ising_couplings(
        cal.rabi_scale * np.ones(n), modes.recoil, beat_note, modes.frequencies, modes.vectors
    )
    return cal.interaction_scale * kernel


def realize(controls: IonControls, profile: DeviceProfile) -> IonSpinModel:
    """The spin Hamiltonian the chain implements for ``controls`` (calibration applied)."""
    n = controls.n_ions
    rabi = np.asarray(controls.rabi, dtype=float)
    couplings = rabi[:, None] * rabi[None, :] * coupling_kernel(profile, n, controls.beat_note)
    shifts = controls.stark_shifts if len(controls.stark_shifts) else np.zeros(n)
    local = crosstalk_matrix(profile, n) @ (profile.local_gains(n) * shifts) / 2
    fields = controls.global_field + profile.site_offsets(n) + local
    return IonSpinModel(fields, couplings)


def _rabi_for(couplings: NDArray, kernel: NDArray, profile: DeviceProfile, rtol: float) -> NDArray:
    """Ω_i > 0 with Ω_i Ω_j K_ij = J_ij: linear least squares on log J_ij/K_ij = a_i + a_j."""
    n = len(couplings)
    rows, cols = np.triu_indices(n, 1)
    ratio = couplings[rows, cols] / kernel[rows, cols]
    if np.any(~(ratio > 0)):
        k = int(np.argmax(~(ratio > 0)))
        raise ConstraintError(
            f"device {profile.label!r}: coupling J[{rows[k]},{cols[k]}] = "
            f"{couplings[rows[k], cols[k]]:.6g} rad/µs has the wrong sign for this beat note "
            f"(kernel {kernel[rows[k], cols[k]]:.3g})"
        )
    design = np.zeros((len(rows), n))
    design[np.arange(len(rows)), rows] = 1.0
    design[np.arange(len(rows)), cols] = 1.0
    logs, *_ = np.linalg.lstsq(design, np.log(ratio), rcond=None)
    rabi = np.exp(logs)
    achieved = rabi[:, None] * rabi[None, :] * kernel
    error = np.abs(achieved - couplings)[rows, cols] / np.abs(couplings[rows, cols]).max()
    if error.max() > rtol:
        k = int(np.argmax(error))
        raise ConstraintError(
            f"device {profile.label!r}: no choice of Rabi frequencies realises the coupling pattern at "
            f"this beat note: J[{rows[k]},{cols[k]}] misses by {error[k]:.2e} (relative) > {rtol:.0e}"
        )
    return rabi


def choose_beat_note(couplings: NDArray, profile: DeviceProfile) -> float:
    """The beat note μ in the profile's range above the transverse modes whose kernel, rescaled by the
    best Ω_i, comes closest to ``couplings`` (least squares in log J)."""
    n = len(couplings)
    modes = chain_modes(profile, n)
    low, high = profile.ions.beat_note_detuning
    low = max(low, float(modes.frequencies.max()) * (1 + 1e-4))
    if not low < high:
        raise ConstraintError(
            f"device {profile.label!r}: no beat note in range lies above the transverse modes"
        )
    rows, cols = np.triu_indices(n, 1)
    target = np.log(np.abs(couplings[rows, cols]))
    design = np.zeros((len(rows), n))
    design[np.arange(len(rows)), rows] = 1.0
    design[np.arange(len(rows)), cols] = 1.0

    def misfit(log_detuning: float) -> float:
        mu = float(modes.frequencies.max() + np.exp(log_detuning))
        kernel = np.abs(coupling_kernel(profile, n, mu)[rows, cols])
        residual = target - np.log(kernel)
        fitted = design @ np.linalg.lstsq(design, residual, rcond=None)[0]
        return float(np.sum((residual - fitted) ** 2))

    com = float(modes.frequencies.max())
    bounds = (np.log(low - com), np.log(high - com))
    best = minimize_scalar(misfit, bounds=bounds, method="bounded", options={"xatol": 1e-12})
    # a bounded search never lands exactly on a bound: patterns made at an end of the range end there
    candidates = [float(best.x), *bounds]
    return float(com + np.exp(min(candidates, key=misfit)))


def translate(
    model: IonSpinModel, profile: DeviceProfile, beat_note: float | None = None, rtol: float = 1e-9
) -> IonControls:
    """Controls that make the chain implement ``model``; ``beat_note`` chosen if not given."""
    n = model.n_qubits
    couplings = np.asarray(model.couplings, dtype=float)
    if n > 1 and np.any(couplings[np.triu_indices(n, 1)] != 0):
        mu = choose_beat_note(couplings, profile) if beat_note is None else beat_note
        rabi = _rabi_for(couplings, coupling_kernel(profile, n, mu), profile, rtol)
    else:
        chain_modes(profile, n)  # the chain must still be a valid linear chain
        mu = beat_note if beat_note is not None else profile.ions.beat_note_detuning[1]
        rabi = np.zeros(n)
    fields = np.asarray(model.fields, dtype=float) - profile.site_offsets(n)
    global_field = float(fields.max() + fields.min()) / 2  # the smallest Stark shifts
    local = np.linalg.solve(crosstalk_matrix(profile, n), 2 * (fields - global_field))
    controls = IonControls(rabi, float(mu), global_field, local / profile.local_gains(n))
    check_controls(controls, profile)
    return controls


def check_controls(controls: IonControls, profile: DeviceProfile) -> None:
    """Raise :class:`ConstraintError` (profile, quantity, value, limit, unit) for the first control out
    of range, a zig-zag chain, or a drive that breaks the spin-only approximation."""
    caps = profile.ions
    n = controls.n_ions
    modes = chain_modes(profile, n)
    label = profile.label

    def limit(quantity: str, value: float, bound: float) -> ConstraintError:
        return ConstraintError(
            f"device {label!r}: {quantity} {with_unit(value, FREQ)} exceeds the limit "
            f"{with_unit(bound, FREQ)}"
        )

    rabi = np.asarray(controls.rabi, dtype=float)
    if np.any(rabi < 0):
        raise ConstraintError(f"device {label!r}: Rabi frequency {rabi.min():.6g} rad/µs is negative")
    if rabi.max(initial=0.0) > caps.max_rabi:
        raise limit("Rabi frequency", float(rabi.max()), caps.max_rabi)
    low, high = caps.beat_note_detuning
    if not low <= controls.beat_note <= high:
        raise ConstraintError(
            f"device {label!r}: beat note {with_unit(controls.beat_note, FREQ)} is outside the range "
            f"[{with_unit(low, FREQ)}, {with_unit(high, FREQ)}]"
        )
    if abs(controls.global_field) > caps.max_global_field:
        raise limit("|global field|", abs(controls.global_field), caps.max_global_field)
    shifts = np.asarray(controls.stark_shifts, dtype=float)
    if len(shifts) not in (0, n):
        raise ConstraintError(f"device {label!r}: {len(shifts)} Stark shifts for {n} ions")
    if len(shifts) and np.abs(shifts).max() > caps.max_stark_shift:
        raise limit("|Stark shift|", float(np.abs(shifts).max()), caps.max_stark_shift)
    if rabi.max(initial=0.0) > 0:
        try:
            ion_chain.check_spin_only(
                rabi * profile.calibration.rabi_scale,
                modes.lamb_dicke,
                controls.beat_note,
                modes.frequencies,
                modes.vectors,
                caps.spin_only_limit,
            )
        except ConstraintError as exc:
            raise ConstraintError(f"device {label!r}: {exc}") from None
