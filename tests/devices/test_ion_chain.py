"""Trapped-ion chain physics (qep_analog.devices.ion_chain) against closed forms, James (1998)'s table
and an independent route: the Hessian of the SI potential energy by finite differences."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.constants as const
import scipy.linalg

from qep_analog.devices.ion_chain import (
    YB171_MASS_AMU,
    axial_modes,
    check_spin_only,
    dimensionless_positions,
    equilibrium_positions,
    fit_power_law,
    ising_couplings,
    lamb_dicke,
    length_scale_um,
    recoil_frequency,
    spin_only_parameter,
    transverse_modes,
    zigzag_threshold,
)
from qep_analog.errors import ConfigError, ConstraintError

TWO_PI = 2 * math.pi
#: Closed forms (positions, mode frequencies, constants): double precision, relative.
EXACT_RTOL = 1e-10
#: Dimensionless force balance of the solved positions (absolute, per unit of the chain's half-length).
FORCE_TOL = 1e-12
#: James (1998), Table 1, given to 4 decimals.
TABLE_ATOL = 5e-5
#: Couplings and mode frequencies against the finite-difference Hessian (4th order in the step).
FD_RTOL = 1e-6

AXIAL = TWO_PI * 0.3  # rad/µs
RADIAL = TWO_PI * 3.0  # rad/µs
COULOMB = const.e**2 / (4 * math.pi * const.epsilon_0)  # J m
#: Ion mass from the molar mass (a route independent of scipy's atomic mass constant).
YB_KG = YB171_MASS_AMU * const.physical_constants["molar mass constant"][0] / const.Avogadro


def residual_force(u: np.ndarray) -> np.ndarray:
    """u_i − Σ_{j<i} (u_i − u_j)⁻² + Σ_{j>i} (u_i − u_j)⁻², by explicit loops."""
    n = len(u)
    out = np.array(u, dtype=float)
    for i in range(n):
        for j in range(n):
            if j < i:
                out[i] -= 1.0 / (u[i] - u[j]) ** 2
            elif j > i:
                out[i] += 1.0 / (u[i] - u[j]) ** 2
    return out


def fd_hessian(energy, n: int, step: float) -> np.ndarray:
    """Hessian of ``energy`` at 0 by central differences, Richardson-extrapolated (error O(step⁴))."""

    def central(h: float) -> np.ndarray:
        e0 = energy(np.zeros(n))
        out = np.zeros((n, n))
        unit = np.eye(n) * h
        for i in range(n):
            out[i, i] = (energy(unit[i]) - 2 * e0 + energy(-unit[i])) / h**2
            for j in range(i):
                pp, pm = energy(unit[i] + unit[j]), energy(unit[i] - unit[j])
                mp, mm = energy(-unit[i] + unit[j]), energy(-unit[i] - unit[j])
                out[i, j] = out[j, i] = (pp - pm - mp + mm) / (4 * h**2)
        return out

    return (4 * central(step / 2) - central(step)) / 3


def fd_modes(z_m: np.ndarray, mass_kg: float, omega_si: float, transverse: bool):
    """Normal modes (rad/µs, ascending; vectors) from the SI potential energy around the equilibrium
    ``z_m`` (m), displaced along the axis or along one transverse direction."""
    n = len(z_m)
    pairs = [(i, j) for i in range(n) for j in range(i)]

    def energy(displacement: np.ndarray) -> float:
        if transverse:
            x, z = displacement, z_m
            trap = 0.5 * mass_kg * omega_si**2 * np.sum(x**2)
            coulomb = sum(COULOMB / math.hypot(z[i] - z[j], x[i] - x[j]) for i, j in pairs)
        else:
            z = z_m + displacement
            trap = 0.5 * mass_kg * omega_si**2 * np.sum(z**2)
            coulomb = sum(COULOMB / abs(z[i] - z[j]) for i, j in pairs)
        return trap + coulomb

    spacing = float(np.min(np.diff(z_m)))
    hessian = fd_hessian(energy, n, 3e-3 * spacing)
    eigenvalues, vectors = scipy.linalg.eigh(hessian / mass_kg)
    return np.sqrt(eigenvalues) * 1e-6, vectors


# ---------------------------------------------------------------- positions


def test_two_and_three_ions_closed_forms():
    np.testing.assert_allclose(
        dimensionless_positions(2), [-(0.25 ** (1 / 3)), 0.25 ** (1 / 3)], rtol=1e-14
    )
    a = 1.25 ** (1 / 3)
    np.testing.assert_allclose(dimensionless_positions(3), [-a, 0.0, a], rtol=1e-14, atol=1e-15)
    assert dimensionless_positions(1).tolist() == [0.0]


def test_two_ion_spacing_in_si():
    # m ω² d/2 = e²/(4πε0 d²)  =>  d³ = e²/(2πε0 m ω²)
    d = (const.e**2 / (2 * math.pi * const.epsilon_0 * YB_KG * (AXIAL * 1e6) ** 2)) ** (1 / 3) * 1e6
    z = equilibrium_positions(2, YB171_MASS_AMU, AXIAL)
    assert z[1] - z[0] == pytest.approx(d, rel=EXACT_RTOL)
    ell = (COULOMB / (YB_KG * (AXIAL * 1e6) ** 2)) ** (1 / 3) * 1e6
    assert length_scale_um(YB171_MASS_AMU, AXIAL) == pytest.approx(ell, rel=EXACT_RTOL)
    np.testing.assert_allclose(
        equilibrium_positions(7, YB171_MASS_AMU, AXIAL), ell * dimensionless_positions(7), rtol=EXACT_RTOL
    )


@pytest.mark.parametrize(("n", "upper_half"), [(4, [0.4544, 1.4368]), (5, [0.0, 0.8221, 1.7429])])
def test_james_table(n: int, upper_half: list[float]):
    u = dimensionless_positions(n)
    np.testing.assert_allclose(u[n // 2 :], upper_half, atol=TABLE_ATOL)


@pytest.mark.parametrize("n", [4, 10, 25, 50, 100])
def test_force_balance_symmetry_order(n: int):
    u = dimensionless_positions(n)
    assert np.abs(residual_force(u)).max() <= FORCE_TOL * max(1.0, np.abs(u).max())
    assert np.all(np.diff(u) > 0)
    np.testing.assert_array_equal(u, -u[::-1])


# ---------------------------------------------------------------- modes


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 12, 30, 60])
def test_axial_com_and_stretch(n: int):
    frequencies, modes = axial_modes(dimensionless_positions(n), AXIAL)
    assert frequencies[0] == pytest.approx(AXIAL, rel=EXACT_RTOL)
    assert frequencies[1] == pytest.approx(math.sqrt(3) * AXIAL, rel=EXACT_RTOL)
    assert np.all(np.diff(frequencies) > 0)
    np.testing.assert_allclose(modes.T @ modes, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(modes[:, 0], np.full(n, 1 / math.sqrt(n)), atol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 12, 20])
def test_transverse_com_and_tilt(n: int):
    frequencies, modes = transverse_modes(dimensionless_positions(n), AXIAL, RADIAL)
    assert frequencies[-1] == pytest.approx(RADIAL, rel=EXACT_RTOL)
    assert frequencies[-2] == pytest.approx(math.sqrt(RADIAL**2 - AXIAL**2), rel=EXACT_RTOL)
    assert np.all(np.diff(frequencies) > 0)
    np.testing.assert_allclose(modes.T @ modes, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(modes[:, -1], np.full(n, 1 / math.sqrt(n)), atol=1e-12)
    # tilt: antisymmetric, proportional to the position
    u = dimensionless_positions(n)
    np.testing.assert_allclose(modes[:, -2], -u / np.linalg.norm(u), atol=1e-12)


def test_three_ion_spectra_closed_form():
    u = dimensionless_positions(3)
    axial, _ = axial_modes(u, AXIAL)
    np.testing.assert_allclose(axial, AXIAL * np.sqrt([1, 3, 29 / 5]), rtol=EXACT_RTOL)
    radial, _ = transverse_modes(u, AXIAL, RADIAL)
    expected = np.sqrt(RADIAL**2 - AXIAL**2 * np.array([12 / 5, 1, 0]))
    np.testing.assert_allclose(radial, expected, rtol=EXACT_RTOL)
    assert zigzag_threshold(3, AXIAL) == pytest.approx(AXIAL * math.sqrt(12 / 5), rel=EXACT_RTOL)
    assert zigzag_threshold(2, AXIAL) == pytest.approx(AXIAL, rel=EXACT_RTOL)
    assert zigzag_threshold(1, AXIAL) == 0.0


def test_single_ion():
    assert axial_modes([0.0], AXIAL)[0].tolist() == [AXIAL]
    frequencies, modes = transverse_modes([0.0], AXIAL, RADIAL)
    assert frequencies.tolist() == [RADIAL] and modes.tolist() == [[1.0]]


def test_modes_match_finite_difference_hessian():
    n = 8
    z_m = equilibrium_positions(n, YB171_MASS_AMU, AXIAL) * 1e-6
    u = dimensionless_positions(n)
    for transverse, omega in ((False, AXIAL), (True, RADIAL)):
        ours = transverse_modes(u, AXIAL, RADIAL)[0] if transverse else axial_modes(u, AXIAL)[0]
        reference, _ = fd_modes(z_m, YB_KG, omega * 1e6, transverse)
        np.testing.assert_allclose(ours, reference, rtol=FD_RTOL)


# ---------------------------------------------------------------- couplings


def test_couplings_match_independent_evaluation():
    n = 10
    rng = np.random.default_rng(4)
    rabi = TWO_PI * rng.uniform(0.5, 1.5, n)
    mu = RADIAL + TWO_PI * 0.1
    recoil = recoil_frequency(YB171_MASS_AMU, 355.0, 90.0)
    frequencies, modes = transverse_modes(dimensionless_positions(n), AXIAL, RADIAL)
    couplings = ising_couplings(rabi, recoil, mu, frequencies, modes)

    z_m = equilibrium_positions(n, YB171_MASS_AMU, AXIAL) * 1e-6
    omega, b = fd_modes(z_m, YB_KG, RADIAL * 1e6, transverse=True)
    # ω_R = ħ(√2 k)²/(2m) with m from the molar mass
    k = TWO_PI / 355e-9
    recoil_ref = const.hbar * 2 * k**2 / (2 * YB_KG) * 1e-6
    reference = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                total = sum(b[i, m] * b[j, m] / (mu**2 - omega[m] ** 2) for m in range(n))
                reference[i, j] = rabi[i] * rabi[j] * recoil_ref * total
    np.testing.assert_allclose(couplings, reference, rtol=FD_RTOL, atol=0)
    assert np.all(couplings[~np.eye(n, dtype=bool)] > 0)  # μ above every mode: antiferromagnetic
    np.testing.assert_array_equal(couplings, couplings.T)
    np.testing.assert_array_equal(np.diag(couplings), 0.0)


def test_couplings_from_lamb_dicke_parameters():
    # J_ij = Ω_i Ω_j Σ_m η_m² ω_m b_im b_jm / (μ² − ω_m²), since η_m² ω_m = ω_R
    n = 6
    frequencies, modes = transverse_modes(dimensionless_positions(n), AXIAL, RADIAL)
    eta = lamb_dicke(YB171_MASS_AMU, 355.0, 90.0, frequencies)
    recoil = recoil_frequency(YB171_MASS_AMU, 355.0, 90.0)
    np.testing.assert_allclose(eta**2 * frequencies, recoil, rtol=EXACT_RTOL)
    mu = RADIAL - TWO_PI * 0.02  # between the tilt and the COM mode
    rabi = TWO_PI * 0.8
    direct = rabi**2 * (modes * eta**2 * frequencies / (mu**2 - frequencies**2)) @ modes.T
    np.fill_diagonal(direct, 0.0)
    np.testing.assert_allclose(ising_couplings(rabi, recoil, mu, frequencies, modes), direct, rtol=1e-12)
    np.testing.assert_array_equal(
        ising_couplings(rabi, recoil, mu, frequencies, modes),
        ising_couplings(np.full(n, rabi), recoil, mu, frequencies, modes),
    )


def test_recoil_and_lamb_dicke_values():
    # single-photon recoil (Δk = k at 60°): h/(2 m λ²) cyclic; Δk² ∝ sin²(θ/2): 90° ×2, 180° ×4
    single = const.h / (2 * YB_KG * (355e-9) ** 2) * TWO_PI * 1e-6
    assert recoil_frequency(YB171_MASS_AMU, 355.0, 60.0) == pytest.approx(single, rel=EXACT_RTOL)
    assert recoil_frequency(YB171_MASS_AMU, 355.0, 90.0) == pytest.approx(2 * single, rel=EXACT_RTOL)
    assert recoil_frequency(YB171_MASS_AMU, 355.0, 180.0) == pytest.approx(4 * single, rel=EXACT_RTOL)
    # Yb171+ at 355 nm, 90°, 3 MHz: η ≈ 0.079 (ω_R ≈ 2π·18.5 kHz)
    assert recoil_frequency(YB171_MASS_AMU, 355.0, 90.0) / TWO_PI == pytest.approx(18.52e-3, rel=1e-3)
    assert lamb_dicke(YB171_MASS_AMU, 355.0, 90.0, [RADIAL])[0] == pytest.approx(0.0786, rel=1e-3)


def test_power_law_exponent_grows_with_detuning():
    n = 15
    frequencies, modes = transverse_modes(dimensionless_positions(n), AXIAL, RADIAL)
    recoil = recoil_frequency(YB171_MASS_AMU, 355.0, 90.0)
    detunings_khz = [5, 10, 20, 50, 100, 200, 500, 1000, 3000]
    alphas = []
    for detuning in detunings_khz:
        couplings = ising_couplings(TWO_PI, recoil, RADIAL + TWO_PI * detuning * 1e-3, frequencies, modes)
        alphas.append(fit_power_law(couplings)[1])
    assert np.all(np.diff(alphas) > 0)
    # computed: 0.284, 0.485, 0.778, 1.310, 1.782, 2.224, 2.633, 2.799, 2.904
    assert 0.25 < alphas[0] < 0.32  # 5 kHz above the COM mode: nearly all-to-all
    assert 1.7 < alphas[4] < 1.85  # 100 kHz
    assert 2.85 < alphas[-1] < 3.0  # far detuned: towards the dipolar 1/r³


def test_power_law_fit_recovers_exact_power_law():
    n = 9
    distance = np.abs(np.subtract.outer(np.arange(n), np.arange(n))).astype(float)
    np.fill_diagonal(distance, 1.0)
    couplings = -2.5 / distance**1.3
    np.fill_diagonal(couplings, 0.0)
    j0, alpha = fit_power_law(couplings)
    assert j0 == pytest.approx(-2.5, rel=1e-12)
    assert alpha == pytest.approx(1.3, rel=1e-12)


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize("n", [5, 12, 30])
def test_zigzag_threshold_matches_bisection(n: int):
    u = dimensionless_positions(n)

    def stable(radial: float) -> bool:
        b = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                if i != j:
                    b[i, j] = 1.0 / abs(u[i] - u[j]) ** 3
                    b[i, i] -= 1.0 / abs(u[i] - u[j]) ** 3
            b[i, i] += (radial / AXIAL) ** 2
        return bool(np.linalg.eigvalsh(b).min() > 0)

    low, high = AXIAL, 50 * AXIAL
    assert not stable(low) and stable(high)
    while high - low > 1e-13 * high:
        middle = 0.5 * (low + high)
        low, high = (low, middle) if stable(middle) else (middle, high)
    threshold = zigzag_threshold(n, AXIAL)
    assert threshold == pytest.approx(high, rel=1e-9)
    transverse_modes(u, AXIAL, threshold * (1 + 1e-6))  # just above: linear
    with pytest.raises(ConstraintError, match=re.escape(f"{threshold:.4g} rad/µs for {n} ions")):
        transverse_modes(u, AXIAL, threshold * (1 - 1e-6))


def test_zigzag_message_names_value_and_limit():
    n = 30
    radial = TWO_PI * 0.8
    with pytest.raises(ConstraintError) as info:
        transverse_modes(dimensionless_positions(n), AXIAL, radial)
    message = str(info.value)
    assert "\n" not in message and message.startswith("ion chain:")
    assert "2π·0.8 MHz (5.027 rad/µs)" in message
    assert f"{zigzag_threshold(n, AXIAL):.4g} rad/µs for 30 ions" in message


def test_spin_only_parameter_against_loop():
    n = 7
    rng = np.random.default_rng(1)
    frequencies, modes = transverse_modes(dimensionless_positions(n), AXIAL, RADIAL)
    eta = lamb_dicke(YB171_MASS_AMU, 355.0, 90.0, frequencies)
    rabi = TWO_PI * rng.uniform(0.1, 0.3, n)
    mu = RADIAL + TWO_PI * 0.05
    expected, ion, mode = max(
        ((eta[m] * modes[i, m] * rabi[i] / (mu - frequencies[m])) ** 2, i, m)
        for i in range(n)
        for m in range(n)
    )
    value = spin_only_parameter(rabi, eta, mu, frequencies, modes)
    assert value == pytest.approx(expected, rel=1e-12)
    assert check_spin_only(rabi, eta, mu, frequencies, modes, limit=1.1 * value) == value
    with pytest.raises(ConstraintError) as info:
        check_spin_only(rabi, eta, mu, frequencies, modes, limit=0.5 * value)
    message = str(info.value)
    assert f"= {value:.3g} exceeds the limit {0.5 * value:g}" in message
    assert f"(ion {ion}, mode {mode}," in message


# ---------------------------------------------------------------- bad arguments


def test_bad_arguments_raise_config_error():
    u = dimensionless_positions(4)
    frequencies, modes = transverse_modes(u, AXIAL, RADIAL)
    recoil = 0.1
    bad_calls = [
        lambda: dimensionless_positions(0),
        lambda: dimensionless_positions(2.0),  # type: ignore[arg-type]
        lambda: dimensionless_positions(True),
        lambda: equilibrium_positions(3, -1.0, AXIAL),
        lambda: length_scale_um(YB171_MASS_AMU, 0.0),
        lambda: axial_modes(u, math.nan),
        lambda: transverse_modes(u, AXIAL, -RADIAL),
        lambda: transverse_modes(u[::-1], AXIAL, RADIAL),  # not ascending
        lambda: transverse_modes(equilibrium_positions(4, YB171_MASS_AMU, AXIAL), AXIAL, RADIAL),  # µm
        lambda: zigzag_threshold(-3, AXIAL),
        lambda: recoil_frequency(YB171_MASS_AMU, 355.0, 0.0),
        lambda: recoil_frequency(YB171_MASS_AMU, -355.0, 90.0),
        lambda: lamb_dicke(YB171_MASS_AMU, 355.0, 90.0, [1.0, -1.0]),
        lambda: ising_couplings(1.0, recoil, RADIAL + 1, frequencies, modes[:3]),  # 3 ions, 4 modes
        lambda: ising_couplings(1.0, recoil, RADIAL + 1, frequencies[:3], modes),
        lambda: ising_couplings(np.ones(3), recoil, RADIAL + 1, frequencies, modes),
        lambda: ising_couplings(-1.0, recoil, RADIAL + 1, frequencies, modes),
        lambda: ising_couplings(1.0, recoil, 0.0, frequencies, modes),
        lambda: ising_couplings(1.0, 0.0, RADIAL + 1, frequencies, modes),
        lambda: spin_only_parameter(1.0, np.ones(3), RADIAL + 1, frequencies, modes),
        lambda: fit_power_law(np.ones((2, 2))),
        lambda: fit_power_law(np.ones((3, 4))),
    ]
    for call in bad_calls:
        with pytest.raises(ConfigError):
            call()


def test_resonant_detuning_raises():
    frequencies, modes = transverse_modes(dimensionless_positions(4), AXIAL, RADIAL)
    with pytest.raises(ConfigError, match=r"of mode 3 .* diverge on resonance"):
        ising_couplings(1.0, 0.1, RADIAL * (1 + 1e-9), frequencies, modes)
    with pytest.raises(ConfigError, match="resonance"):
        spin_only_parameter(1.0, np.full(4, 0.1), frequencies[1], frequencies, modes)


def test_power_law_fit_needs_one_sign():
    n = 6
    frequencies, modes = transverse_modes(dimensionless_positions(n), AXIAL, RADIAL)
    mu = 0.5 * (frequencies[2] + frequencies[3])  # between two modes: couplings of both signs
    couplings = ising_couplings(TWO_PI, 0.1, mu, frequencies, modes)
    with pytest.raises(ConfigError, match=r"one sign; [0-9]+ positive, [0-9]+ negative"):
        fit_power_law(couplings)
