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

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar

from qep_analog.devices import ion_chain
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConstraintError
from qep_analog.memory import require_memory
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.units import with_unit

FREQ = "angular_frequency"
TWO_PI = 2 * math.pi


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


#: n x n float64 matrices of the normal modes and the couplings derived from them (the Hessian and
#: its eigenvectors, eigh's copy, the coupling kernel and its products; tracemalloc at 200 and 400
#: ions: 5)
MODE_MATRICES = 8


def chain_modes(profile: DeviceProfile, n: int) -> ChainModes:
    """Transverse modes of ``n`` ions in the profile's trap (zig-zag and ion count checked)."""
    caps = profile.ions
    if n > caps.max_ions:
        raise ConstraintError(
            f"device {profile.label!r}: number of ions {n} exceeds the limit {caps.max_ions}"
        )
    require_memory(f"device {profile.label!r}: normal modes of {n} ions", 8 * MODE_MATRICES * n * n)
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


@dataclass(frozen=True)
class RankOneFit:
    """Ω_i > 0 with Ω_i Ω_j K_ij ≈ J_ij (least squares on log J_ij/K_ij = a_i + a_j) and the largest
    miss relative to the largest |J|: ``error`` is inf when some J_ij/K_ij is not positive (``pair``:
    the first such pair, else the worst-fitting one)."""

    rabi: NDArray
    error: float
    pair: tuple[int, int]


def driven_pairs(couplings: NDArray) -> tuple[NDArray, NDArray]:
    """The pairs (i < j) of ions that are driven — those with a coupling to some ion; an ion without
    any coupling is left undriven (Ω_i = 0) rather than fitted."""
    driven = np.flatnonzero(np.any(couplings != 0, axis=1))
    if len(driven) < 2:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    rows, cols = np.triu_indices(len(driven), 1)
    return driven[rows], driven[cols]


def rank_one_fit(couplings: NDArray, kernel: NDArray) -> RankOneFit:
    """The Rabi frequencies that rescale ``kernel`` closest to ``couplings`` (see :class:`RankOneFit`);
    ions without any coupling get Ω = 0."""
    n = len(couplings)
    rows, cols = driven_pairs(couplings)
    if not len(rows):
        return RankOneFit(np.zeros(n), 0.0, (0, 1))
    ratio = couplings[rows, cols] / kernel[rows, cols]
    if np.any(~(ratio > 0)):
        k = int(np.argmax(~(ratio > 0)))
        return RankOneFit(np.zeros(n), math.inf, (int(rows[k]), int(cols[k])))
    design = np.zeros((len(rows), n))
    design[np.arange(len(rows)), rows] = 1.0
    design[np.arange(len(rows)), cols] = 1.0
    logs, *_ = np.linalg.lstsq(design, np.log(ratio), rcond=None)
    rabi = np.where(np.any(design, axis=0), np.exp(logs), 0.0)
    achieved = rabi[:, None] * rabi[None, :] * kernel
    error = np.abs(achieved - couplings)[rows, cols] / np.abs(couplings[rows, cols]).max()
    k = int(np.argmax(error))
    return RankOneFit(rabi, float(error[k]), (int(rows[k]), int(cols[k])))


def _rabi_for(couplings: NDArray, kernel: NDArray, profile: DeviceProfile, rtol: float) -> NDArray:
    """Ω_i > 0 with Ω_i Ω_j K_ij = J_ij within ``rtol`` (relative to the largest |J|), else an error."""
    fit = rank_one_fit(couplings, kernel)
    i, j = fit.pair
    if math.isinf(fit.error):
        raise ConstraintError(
            f"device {profile.label!r}: coupling J[{i},{j}] = {couplings[i, j]:.6g} rad/µs has the wrong "
            f"sign for this beat note (kernel {kernel[i, j]:.3g})"
        )
    if fit.error > rtol:
        raise ConstraintError(
            f"device {profile.label!r}: no choice of Rabi frequencies realises the coupling pattern at "
            f"this beat note: J[{i},{j}] misses by {fit.error:.2e} (relative) > {rtol:.0e}"
        )
    return fit.rabi


#: beat notes tried per decade of μ − ω_COM when several realise a pattern (e.g. two or three ions)
GRID_PER_DECADE = 60
#: with no upper bound (a relaxed profile), μ is sought up to this multiple of the COM frequency
UNBOUNDED_MU = 2.0


@dataclass(frozen=True)
class BeatNoteWindow:
    """Beat notes μ = ``anchor`` + ``side``·e^t for t in ``bounds``: above the transverse modes
    (``side`` = +1, the anchor the COM mode: couplings of one sign, antiferromagnetic) or between the
    COM mode and the next one below it (``side`` = −1: the COM mode dominates, ferromagnetic)."""

    anchor: float
    side: float
    bounds: tuple[float, float]

    def mu(self, t: float) -> float:
        return float(self.anchor + self.side * np.exp(t))


#: a beat note keeps this fraction of a mode's frequency away from it (the couplings diverge there)
MODE_CLEARANCE = 1e-4


def beat_note_windows(profile: DeviceProfile, n: int) -> list[BeatNoteWindow]:
    """The windows of beat notes within the profile's range: above the transverse modes, and (for
    two ions or more) between the COM mode and the next; a relaxed profile's unbounded range ends at
    ``UNBOUNDED_MU`` × the COM frequency."""
    frequencies = np.sort(chain_modes(profile, n).frequencies)
    com = float(frequencies[-1])
    low, high = profile.ions.beat_note_detuning
    high = min(high, UNBOUNDED_MU * com)
    windows = []
    above = (max(low, com * (1 + MODE_CLEARANCE)), high)
    if above[0] < above[1]:
        windows.append(BeatNoteWindow(com, 1.0, (np.log(above[0] - com), np.log(above[1] - com))))
    if n > 1:
        below = (
            max(low, float(frequencies[-2]) * (1 + MODE_CLEARANCE)),
            min(high, com * (1 - MODE_CLEARANCE)),
        )
        if below[0] < below[1]:
            windows.append(BeatNoteWindow(com, -1.0, (np.log(com - below[1]), np.log(com - below[0]))))
    if not windows:
        raise ConstraintError(
            f"device {profile.label!r}: no beat note in range clears the transverse modes"
        )
    return windows


def _headroom(rabi: NDArray, mu: float, profile: DeviceProfile, n: int) -> float:
    """log of the smallest ratio limit/value over the Rabi limit and the spin-only limit (< 0: a limit
    is broken)."""
    caps, modes = profile.ions, chain_modes(profile, n)
    scaled = rabi * profile.calibration.rabi_scale
    spin = ion_chain.spin_only_parameter(scaled, modes.lamb_dicke, mu, modes.frequencies, modes.vectors)
    return float(min(np.log(caps.max_rabi / rabi.max()), np.log(caps.spin_only_limit / spin)))


def choose_beat_note(couplings: NDArray, profile: DeviceProfile, rtol: float = 1e-9) -> float:
    """The beat note μ for the pattern and the strength of ``couplings``, in the profile's range, above
    the transverse modes or between the COM mode and the next (:func:`beat_note_windows`): among the μ
    whose kernel, rescaled by the best Ω_i, realises the pattern (signs included) within ``rtol``, the
    one with the most room below the Rabi and spin-only limits (two or three ions of one sign fit
    every μ of a window, so the strength decides); where none does, the μ that comes closest (least
    squares in log J) — :func:`translate` then says by how much it misses."""
    n = len(couplings)
    rows, cols = driven_pairs(couplings)
    wanted = couplings[rows, cols]
    target = np.log(np.abs(wanted))
    design = np.zeros((len(rows), n))
    design[np.arange(len(rows)), rows] = 1.0
    design[np.arange(len(rows)), cols] = 1.0

    def residuals(mu: float) -> NDArray | None:
        """log J − log(Ω_i Ω_j |K_ij|) at the best Ω (None: a sign differs)."""
        kernel = coupling_kernel(profile, n, mu)[rows, cols]
        if np.any(np.sign(kernel) != np.sign(wanted)):
            return None
        residual = target - np.log(np.abs(kernel))
        return np.asarray(residual - design @ np.linalg.lstsq(design, residual, rcond=None)[0])

    def misfit(mu: float) -> float:
        r = residuals(mu)
        return math.inf if r is None else float(r @ r)

    def polish(window: BeatNoteWindow, t: float) -> float:
        """Gauss–Newton steps on the residuals: the minimum of their square to machine precision."""
        for _ in range(6):
            r, r_step = residuals(window.mu(t)), residuals(window.mu(t + 1e-7))
            if r is None or r_step is None:
                break
            slope = (r_step - r) / 1e-7
            if not slope @ slope > 0:
                break
            t_new = float(np.clip(t - (r @ slope) / (slope @ slope), *window.bounds))
            if misfit(window.mu(t_new)) > misfit(window.mu(t)):
                break
            t = t_new
        return t

    closest: list[tuple[float, float]] = []
    candidates: list[tuple[float, float]] = []
    for window in beat_note_windows(profile, n):
        best = minimize_scalar(
            lambda t, w=window: min(misfit(w.mu(t)), 1e300),
            bounds=window.bounds, method="bounded", options={"xatol": 1e-12},
        )  # fmt: skip
        # a bounded search never lands exactly on a bound: patterns made at an end of the range end there
        ends = [window.mu(t) for t in (polish(window, float(best.x)), *window.bounds)]
        closest += [(misfit(mu), mu) for mu in ends]
        grid: list[float] = []
        if len(rows) <= len(np.unique(np.concatenate([rows, cols]))):
            # no more pairs than driven ions: every μ of the window fits, the strength decides
            decades = (window.bounds[1] - window.bounds[0]) / np.log(10)
            steps = max(2, int(np.ceil(decades * GRID_PER_DECADE)) + 1)
            grid = [window.mu(t) for t in np.linspace(*window.bounds, steps)]
        for mu in [*ends, *grid]:
            fit = rank_one_fit(couplings, coupling_kernel(profile, n, mu))
            if fit.error <= rtol:
                candidates.append((_headroom(fit.rabi, mu, profile, n), mu))
    if not candidates:
        return min(closest)[1]
    return max(candidates)[1]


def coupling_summary(controls: IonControls, profile: DeviceProfile) -> str:
    """What the controls make of the chain, for a lab: μ and its distance to the COM mode, J0 and α of
    the realised couplings, the largest Rabi frequency and the spin-only parameter."""
    n = controls.n_ions
    modes = chain_modes(profile, n)
    com = float(modes.frequencies.max())
    rabi = np.asarray(controls.rabi, dtype=float) * profile.calibration.rabi_scale
    spin = ion_chain.spin_only_parameter(rabi, modes.lamb_dicke, controls.beat_note, modes.frequencies,
                                         modes.vectors)  # fmt: skip
    text = (
        f"beat note μ = 2π·{controls.beat_note / TWO_PI:.6g} MHz (μ − ω_COM = "
        f"2π·{(controls.beat_note - com) / TWO_PI * 1e3:.4g} kHz), Rabi ≤ 2π·"
        f"{float(np.max(controls.rabi)) / TWO_PI * 1e3:.4g} kHz, spin-only parameter {spin:.2g}"
    )
    couplings = realize(controls, profile).couplings
    if n < 2 or not np.any(couplings):
        return text
    j0, alpha = coupling_scale(couplings)
    power = "" if math.isnan(alpha) else f", α = {round(alpha, 3) + 0.0:g}"
    return f"{text}; J0 = 2π·{j0 / TWO_PI * 1e3:.4g} kHz{power}"


def coupling_scale(couplings: NDArray) -> tuple[float, float]:
    """(J0, α) of J_ij ≈ J0/|i − j|^α (rad/µs; see :func:`ion_chain.fit_power_law`); for two ions J0 is
    their coupling and α is nan."""
    if len(couplings) == 2:
        return float(couplings[0, 1]), math.nan
    return ion_chain.fit_power_law(couplings)


def translate(
    model: IonSpinModel, profile: DeviceProfile, beat_note: float | None = None, rtol: float = 1e-9
) -> IonControls:
    """Controls that make the chain implement ``model``; ``beat_note`` chosen if not given."""
    n = model.n_qubits
    couplings = np.asarray(model.couplings, dtype=float)
    if n > 1 and np.any(couplings[np.triu_indices(n, 1)] != 0):
        mu = choose_beat_note(couplings, profile, rtol) if beat_note is None else beat_note
        rabi = _rabi_for(couplings, coupling_kernel(profile, n, mu), profile, rtol)
    else:
        chain_modes(profile, n)  # the chain must still be a valid linear chain
        mu = beat_note if beat_note is not None else profile.ions.beat_note_detuning[1]
        rabi = np.zeros(n)
    fields = np.asarray(model.fields, dtype=float) - profile.site_offsets(n)
    global_field = float(fields.max() + fields.min()) / 2  # the smallest Stark shifts
    local = np.linalg.solve(crosstalk_matrix(profile, n), 2 * (fields - global_field))
    controls = IonControls(rabi, float(mu), global_field, local / profile.local_gains(n))
    try:
        check_controls(controls, profile)
    except ConstraintError as exc:
        if beat_note is not None or not np.any(rabi):
            raise
        j0 = float(np.abs(couplings[np.triu_indices(n, 1)]).max())
        raise ConstraintError(
            f"{exc} — at the beat note with the most room, μ = {with_unit(float(mu), FREQ)}: no beat "
            f"note in range realises couplings up to {with_unit(j0, FREQ)} within the limits"
        ) from None
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
