"""Physics of a trapped-ion chain: equilibrium positions, normal modes and Ising couplings.

Pure functions, no device profile. Units: time µs, angular frequency rad/µs, length µm, mass in
atomic mass units (amu); SI only inside, where physical constants enter. References: D. F. V. James,
Appl. Phys. B 66, 181 (1998) (positions and modes); K. Kim et al., PRL 103, 120502 (2009) (couplings).

Positions are computed in units of the length scale ℓ = (e²/(4πε0 m ω_z²))^(1/3): the dimensionless
positions ``u`` depend on the number of ions only, and the mode functions take them.

The effective spin model of a Mølmer–Sørensen drive detuned by μ from the carrier is

    H = Σ_{i<j} J_ij X_i X_j,   J_ij = Ω_i Ω_j ω_R Σ_m b_im b_jm / (μ² − ω_m²),

each pair counted once. For μ above every transverse mode all J_ij are positive (antiferromagnetic)
and fall off roughly as J0/|i − j|^α, α → 0 as μ approaches the centre-of-mass mode and α → 3 far
from it.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.constants as const
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import ConfigError, ConstraintError, SolverError

__all__ = [
    "CA40_MASS_AMU",
    "YB171_MASS_AMU",
    "axial_modes",
    "check_spin_only",
    "dimensionless_positions",
    "equilibrium_positions",
    "fit_power_law",
    "ising_couplings",
    "lamb_dicke",
    "length_scale_um",
    "recoil_frequency",
    "spin_only_parameter",
    "transverse_modes",
    "zigzag_threshold",
]

#: Atomic masses (amu) of the usual qubit ions (the missing electron, 5.5e-4 amu, is neglected).
YB171_MASS_AMU = 170.9363258
CA40_MASS_AMU = 39.96259086

#: μ closer than this (relative) to a mode frequency is a resonance: the couplings diverge.
RESONANCE_RTOL = 1e-6

#: Largest residual force (dimensionless) accepted for positions passed to the mode functions.
EQUILIBRIUM_TOL = 1e-6

_OBJECT = "ion chain"


def _cyclic(omega: float) -> str:
    """An angular frequency in rad/µs as '2π·f MHz (ω rad/µs)' for messages."""
    return f"2π·{omega / (2 * math.pi):.4g} MHz ({omega:.4g} rad/µs)"


def _positive(name: str, value: float, unit: str) -> float:
    """``value`` as a float, or ConfigError unless it is finite and positive."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{_OBJECT}: {name} must be positive and finite, got {value} {unit}")
    return number


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"{_OBJECT}: the number of ions must be an integer >= 1, got {n!r}")
    return int(n)


def _mass_kg(mass_amu: float) -> float:
    return _positive("mass", mass_amu, "amu") * const.atomic_mass


def length_scale_um(mass_amu: float, axial_rad_per_us: float) -> float:
    """Length scale ℓ = (e²/(4πε0 m ω_z²))^(1/3) of the chain, in µm.

    Parameters
    ----------
    mass_amu : ion mass (amu).
    axial_rad_per_us : axial trap frequency ω_z (rad/µs).
    """
    omega_si = _positive("axial frequency", axial_rad_per_us, "rad/µs") * 1e6
    length_m = (const.e**2 / (4 * math.pi * const.epsilon_0 * _mass_kg(mass_amu) * omega_si**2)) ** (1 / 3)
    return length_m * 1e6


def _pair_powers(u: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """sign(u_i − u_j)/(u_i − u_j)² and |u_i − u_j|⁻³, with zero diagonals."""
    d = u[:, None] - u[None, :]
    np.fill_diagonal(d, 1.0)
    inv_abs = 1.0 / np.abs(d)
    inv2 = np.sign(d) * inv_abs**2
    inv3 = inv_abs**3
    np.fill_diagonal(inv2, 0.0)
    np.fill_diagonal(inv3, 0.0)
    return inv2, inv3


def _coulomb_laplacian(u: NDArray[np.float64]) -> NDArray[np.float64]:
    """C with C_ii = Σ_{k≠i} |u_i − u_k|⁻³, C_ij = −|u_i − u_j|⁻³ (A = 1 + 2C, B = (ω_x/ω_z)² − C)."""
    inv3 = _pair_powers(u)[1]
    c = -inv3
    c[np.diag_indices_from(c)] = inv3.sum(axis=1)
    return c


def _force(u: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Dimensionless force balance F_i = u_i − Σ_{j≠i} sign(u_i − u_j)/(u_i − u_j)² and its Jacobian,
    the axial Hessian A = 1 + 2C."""
    inv2, inv3 = _pair_powers(u)
    jacobian = -2.0 * inv3
    jacobian[np.diag_indices_from(jacobian)] = 1.0 + 2.0 * inv3.sum(axis=1)
    return u - inv2.sum(axis=1), jacobian


def _initial_guess(n: int) -> NDArray[np.float64]:
    """Quantiles of a parabolic density on [−L, L], with q_i = (i + a)/(n − 1 + 2a) and L = c n^p
    fitted to exact chains of 3–150 ions (within 0.2 of the solution, 0.003 for n = 3)."""
    a, c, p = 0.753, 1.727, 0.399
    y = (np.arange(n) + a) / (n - 1 + 2 * a) - 0.5
    # s solves (3/4)(s − s³/3) = y on [−1, 1] (the cumulative parabolic density), in closed form.
    s = 2.0 * np.cos(np.arccos(-2.0 * y) / 3.0 - 2.0 * np.pi / 3.0)
    return c * n**p * s


def dimensionless_positions(n: int) -> NDArray[np.float64]:
    """Equilibrium positions u of n ions in units of ℓ (`length_scale_um`), ascending and centred.

    They solve u_i − Σ_{j<i} (u_i − u_j)⁻² + Σ_{j>i} (u_i − u_j)⁻² = 0, by Newton's method with the
    analytic Jacobian (the axial Hessian) from a fitted parabolic-density guess, backtracking when a
    step would not reduce the residual or would reorder the ions. The energy is strictly convex on
    ordered chains, so this converges; 3–5 steps for n ≤ 200.
    """
    n = _count(n)
    if n == 1:
        return np.zeros(1)
    u = _initial_guess(n)
    force, jacobian = _force(u)
    for _ in range(100):
        step = np.linalg.solve(jacobian, -force)
        if np.abs(step).max() <= 1e-13 * np.abs(u).max():
            break
        norm = np.linalg.norm(force)
        t = 1.0
        while True:
            trial = u + t * step
            if np.all(np.diff(trial) > 0):
                trial_force, trial_jacobian = _force(trial)
                if np.linalg.norm(trial_force) <= (1.0 - 1e-4 * t) * norm:
                    break
            t *= 0.5
            if t < 1e-10:
                raise SolverError(
                    f"{_OBJECT}: equilibrium of {n} ions: line search failed at residual force {norm:.3g}"
                )
        u, force, jacobian = trial, trial_force, trial_jacobian
    else:
        raise SolverError(f"{_OBJECT}: equilibrium of {n} ions did not converge in 100 Newton steps")
    return 0.5 * (u - u[::-1])  # exactly centred and mirror-symmetric


def equilibrium_positions(n: int, mass_amu: float, axial_rad_per_us: float) -> NDArray[np.float64]:
    """Equilibrium positions (µm, ascending, centred) of n ions in a harmonic trap of axial frequency
    ``axial_rad_per_us`` (rad/µs): ℓ times `dimensionless_positions`.
    """
    return length_scale_um(mass_amu, axial_rad_per_us) * dimensionless_positions(n)


def _checked_positions(u: ArrayLike) -> NDArray[np.float64]:
    """Dimensionless equilibrium positions, or ConfigError (e.g. for positions in µm)."""
    u = np.asarray(u, dtype=float)
    if u.ndim != 1 or u.size < 1:
        raise ConfigError(f"{_OBJECT}: positions must be a non-empty 1-D array, got shape {u.shape}")
    if not np.all(np.isfinite(u)) or np.any(np.diff(u) <= 0):
        raise ConfigError(f"{_OBJECT}: positions must be finite and strictly ascending")
    residual = float(np.abs(_force(u)[0]).max())
    if residual > EQUILIBRIUM_TOL * max(1.0, float(np.abs(u).max())):
        raise ConfigError(
            f"{_OBJECT}: positions are not in equilibrium (residual force {residual:.3g}, limit "
            f"{EQUILIBRIUM_TOL:g}); pass dimensionless positions from dimensionless_positions(n)"
        )
    return u


def _fix_signs(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each column's first clearly non-zero entry made positive."""
    first = np.argmax(np.abs(vectors) > 1e-8, axis=0)
    signs = np.sign(vectors[first, np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1.0, signs)


def axial_modes(u: ArrayLike, axial_rad_per_us: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Axial normal modes of the chain.

    Parameters
    ----------
    u : dimensionless equilibrium positions (`dimensionless_positions`).
    axial_rad_per_us : axial trap frequency ω_z (rad/µs).

    Returns
    -------
    frequencies : ω_m = ω_z √eig(A) (rad/µs), ascending: the centre of mass ω_z first, then the
        stretch mode √3 ω_z.
    modes : b[i, m], participation of ion i in mode m; orthonormal columns, first clear non-zero
        entry of each column positive.
    """
    omega_z = _positive("axial frequency", axial_rad_per_us, "rad/µs")
    u = _checked_positions(u)
    hessian = np.eye(u.size) + 2.0 * _coulomb_laplacian(u)
    eigenvalues, vectors = np.linalg.eigh(hessian)
    return omega_z * np.sqrt(eigenvalues), _fix_signs(vectors)


def zigzag_threshold(n: int, axial_rad_per_us: float) -> float:
    """Smallest radial frequency (rad/µs) at which a linear chain of n ions is stable.

    The transverse Hessian is B = (ω_x/ω_z)² − C with C the Coulomb part (`transverse_modes`); the
    chain is linear while (ω_x/ω_z)² exceeds the largest eigenvalue of C: ω_x > ω_z √λ_max(C).
    Independent of the mass; 0 for a single ion.
    """
    omega_z = _positive("axial frequency", axial_rad_per_us, "rad/µs")
    u = dimensionless_positions(n)
    largest = float(np.linalg.eigvalsh(_coulomb_laplacian(u))[-1])
    return omega_z * math.sqrt(max(largest, 0.0))


def transverse_modes(
    u: ArrayLike, axial_rad_per_us: float, radial_rad_per_us: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Transverse normal modes along one radial axis.

    B_ii = (ω_x/ω_z)² − Σ_{k≠i} |u_i − u_k|⁻³, B_ij = +|u_i − u_j|⁻³, ω_m = ω_z √eig(B).

    Parameters
    ----------
    u : dimensionless equilibrium positions (`dimensionless_positions`).
    axial_rad_per_us : axial trap frequency ω_z (rad/µs).
    radial_rad_per_us : radial trap frequency ω_x (rad/µs).

    Returns
    -------
    frequencies : rad/µs, ascending: the centre-of-mass mode ω_x is the last, the tilt mode
        √(ω_x² − ω_z²) the one before.
    modes : b[i, m], orthonormal columns, first clear non-zero entry of each column positive.

    Raises
    ------
    ConstraintError : ω_x at or below the zig-zag threshold (an eigenvalue of B not positive).
    """
    omega_z = _positive("axial frequency", axial_rad_per_us, "rad/µs")
    omega_x = _positive("radial frequency", radial_rad_per_us, "rad/µs")
    u = _checked_positions(u)
    eigenvalues, vectors = np.linalg.eigh(_coulomb_laplacian(u))
    ratio2 = (omega_x / omega_z) ** 2
    if ratio2 - eigenvalues[-1] <= 0:
        threshold = omega_z * math.sqrt(eigenvalues[-1])
        raise ConstraintError(
            f"{_OBJECT}: radial frequency {_cyclic(omega_x)} is not above the zig-zag threshold "
            f"{threshold:.4g} rad/µs for {u.size} ions (axial {_cyclic(omega_z)})"
        )
    # B = ratio2 − C: C's largest eigenvalue is B's smallest; reverse for ascending frequencies.
    frequencies = omega_z * np.sqrt(ratio2 - eigenvalues[::-1])
    return frequencies, _fix_signs(vectors[:, ::-1])


def _delta_k_per_m(wavelength_nm: float, beam_angle_deg: float) -> float:
    """Δk = 2k sin(θ/2), k = 2π/λ, in 1/m."""
    wavelength = _positive("wavelength", wavelength_nm, "nm") * 1e-9
    angle = float(beam_angle_deg)
    if not (0 < angle <= 180):
        raise ConfigError(f"{_OBJECT}: beam angle must be in (0, 180] deg, got {beam_angle_deg} deg")
    return 2.0 * (2 * math.pi / wavelength) * math.sin(math.radians(angle) / 2)


def recoil_frequency(mass_amu: float, wavelength_nm: float, beam_angle_deg: float) -> float:
    """Recoil frequency ω_R = ħΔk²/(2m) in rad/µs, with Δk = 2k sin(θ/2), k = 2π/λ.

    Parameters
    ----------
    mass_amu : ion mass (amu).
    wavelength_nm : wavelength of the Raman beams (nm).
    beam_angle_deg : angle between the two beams (deg): 180 counter-propagating (Δk = 2k), 90 the
        common geometry (Δk = √2 k).
    """
    delta_k = _delta_k_per_m(wavelength_nm, beam_angle_deg)
    return const.hbar * delta_k**2 / (2 * _mass_kg(mass_amu)) * 1e-6


def lamb_dicke(
    mass_amu: float, wavelength_nm: float, beam_angle_deg: float, mode_frequencies: ArrayLike
) -> NDArray[np.float64]:
    """Lamb–Dicke parameters η_m = Δk √(ħ/(2 m ω_m)) of modes of frequencies ω_m (rad/µs).

    Same arguments as `recoil_frequency`; η_m² ω_m = ω_R.
    """
    delta_k = _delta_k_per_m(wavelength_nm, beam_angle_deg)
    omega = np.asarray(mode_frequencies, dtype=float)
    if not np.all(np.isfinite(omega)) or np.any(omega <= 0):
        raise ConfigError(f"{_OBJECT}: mode frequencies must be positive and finite (rad/µs)")
    return delta_k * np.sqrt(const.hbar / (2 * _mass_kg(mass_amu) * omega * 1e6))


def _drive(
    rabi: ArrayLike, mu: float, frequencies: ArrayLike, modes: ArrayLike
) -> tuple[NDArray[np.float64], float, NDArray[np.float64], NDArray[np.float64]]:
    """Checked (Ω per ion, μ, ω_m, b) for the coupling formulas."""
    omega = np.asarray(frequencies, dtype=float)
    b = np.asarray(modes, dtype=float)
    if omega.ndim != 1 or b.shape != (omega.size, omega.size):
        raise ConfigError(
            f"{_OBJECT}: modes of shape {b.shape} do not match frequencies of shape {omega.shape}; "
            "expected (n, n) and (n,), one mode per ion"
        )
    if not np.all(np.isfinite(omega)) or np.any(omega <= 0):
        raise ConfigError(f"{_OBJECT}: mode frequencies must be positive and finite (rad/µs)")
    n = b.shape[0]
    rabi_array = np.asarray(rabi, dtype=float)
    if rabi_array.ndim == 0:
        rabi_array = np.full(n, float(rabi_array))
    if rabi_array.shape != (n,):
        raise ConfigError(f"{_OBJECT}: Rabi frequencies of shape {rabi_array.shape}, expected ({n},)")
    if not np.all(np.isfinite(rabi_array)) or np.any(rabi_array < 0):
        raise ConfigError(f"{_OBJECT}: Rabi frequencies must be non-negative and finite (rad/µs)")
    mu = _positive("beat-note detuning μ", mu, "rad/µs")
    closest = int(np.argmin(np.abs(mu - omega) / omega))
    if abs(mu - omega[closest]) <= RESONANCE_RTOL * omega[closest]:
        raise ConfigError(
            f"{_OBJECT}: beat-note detuning μ = {mu:.8g} rad/µs is within {RESONANCE_RTOL:g} (relative) "
            f"of mode {closest} at {omega[closest]:.8g} rad/µs: the couplings diverge on resonance"
        )
    return rabi_array, mu, omega, b


def ising_couplings(
    rabi: ArrayLike, recoil: float, mu: float, frequencies: ArrayLike, modes: ArrayLike
) -> NDArray[np.float64]:
    """Ising couplings J_ij = Ω_i Ω_j ω_R Σ_m b_im b_jm / (μ² − ω_m²) (rad/µs).

    Convention: H = Σ_{i<j} J_ij X_i X_j, each pair once.

    Parameters
    ----------
    rabi : Rabi frequency Ω_i per ion, an array of n or one value for all (rad/µs).
    recoil : recoil frequency ω_R (rad/µs, `recoil_frequency`).
    mu : beat-note detuning μ from the carrier (rad/µs); not on a mode (ConfigError).
    frequencies : mode frequencies ω_m (rad/µs), shape (n,).
    modes : b[i, m], shape (n, n), as from `transverse_modes`.

    Returns
    -------
    J : (n, n), symmetric, zero diagonal (rad/µs).
    """
    rabi_array, mu, omega, b = _drive(rabi, mu, frequencies, modes)
    recoil = _positive("recoil frequency", recoil, "rad/µs")
    kernel = (b / (mu**2 - omega**2)) @ b.T
    couplings = recoil * rabi_array[:, None] * rabi_array[None, :] * kernel
    couplings = 0.5 * (couplings + couplings.T)
    np.fill_diagonal(couplings, 0.0)
    return couplings


def fit_power_law(couplings: ArrayLike) -> tuple[float, float]:
    """Fit J_ij ≈ J0 / |i − j|^α to the couplings of every pair i < j.

    Unweighted least squares of log|J_ij| = log|J0| − α log|i − j| over the n(n − 1)/2 pairs (upper
    triangle); J0 carries the common sign of the couplings. Needs n ≥ 3 and couplings that are all
    non-zero and of one sign (ConfigError otherwise: e.g. μ between two modes gives mixed signs).

    Returns
    -------
    (J0, alpha) : J0 in the unit of the couplings.
    """
    j = np.asarray(couplings, dtype=float)
    if j.ndim != 2 or j.shape[0] != j.shape[1] or j.shape[0] < 3:
        raise ConfigError(f"{_OBJECT}: power-law fit needs a square matrix of n >= 3 ions, got {j.shape}")
    rows, cols = np.triu_indices(j.shape[0], k=1)
    values = j[rows, cols]
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"{_OBJECT}: power-law fit needs finite couplings")
    positive, negative = int(np.sum(values > 0)), int(np.sum(values < 0))
    if positive != values.size and negative != values.size:
        raise ConfigError(
            f"{_OBJECT}: power-law fit needs couplings of one sign; {positive} positive, {negative} "
            f"negative and {values.size - positive - negative} zero of {values.size} pairs"
        )
    design = np.column_stack([np.ones(values.size), -np.log(cols - rows)])
    (log_j0, alpha), *_ = np.linalg.lstsq(design, np.log(np.abs(values)), rcond=None)
    return float(np.sign(values[0]) * np.exp(log_j0)), float(alpha)


def spin_only_parameter(
    rabi: ArrayLike, lamb_dicke: ArrayLike, mu: float, frequencies: ArrayLike, modes: ArrayLike
) -> float:
    """Small parameter of the spin-only approximation: max over ions i and modes m of
    (η_m b_im Ω_i / (μ − ω_m))², the largest phonon amplitude the drive excites.

    Arguments as in `ising_couplings`, with the Lamb–Dicke parameters η_m (shape (n,),
    `lamb_dicke`) in place of the recoil frequency.
    """
    return _spin_only(rabi, lamb_dicke, mu, frequencies, modes)[0]


def _spin_only(
    rabi: ArrayLike, lamb_dicke: ArrayLike, mu: float, frequencies: ArrayLike, modes: ArrayLike
) -> tuple[float, int, int, float]:
    """(largest value, its ion, its mode, μ − ω_m there)."""
    rabi_array, mu, omega, b = _drive(rabi, mu, frequencies, modes)
    eta = np.asarray(lamb_dicke, dtype=float)
    if eta.shape != omega.shape:
        raise ConfigError(
            f"{_OBJECT}: Lamb-Dicke parameters of shape {eta.shape} do not match frequencies {omega.shape}"
        )
    amplitude = (eta * b * rabi_array[:, None] / (mu - omega)) ** 2
    ion, mode = np.unravel_index(int(np.argmax(amplitude)), amplitude.shape)
    return float(amplitude[ion, mode]), int(ion), int(mode), float(mu - omega[mode])


def check_spin_only(
    rabi: ArrayLike,
    lamb_dicke: ArrayLike,
    mu: float,
    frequencies: ArrayLike,
    modes: ArrayLike,
    limit: float = 0.1,
) -> float:
    """`spin_only_parameter`, or ConstraintError when it exceeds ``limit``."""
    limit = _positive("spin-only limit", limit, "")
    value, ion, mode, detuning = _spin_only(rabi, lamb_dicke, mu, frequencies, modes)
    if value > limit:
        raise ConstraintError(
            f"{_OBJECT}: spin-only parameter (η b Ω/(μ − ω))² = {value:.3g} exceeds the limit {limit:g} "
            f"(ion {ion}, mode {mode}, μ − ω_m = {_cyclic(detuning)})"
        )
    return value
