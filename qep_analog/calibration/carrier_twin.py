"""The digital twin's prediction of single-ion carrier pulses on a trapped-ion chain.

An ion schedule drives only the spin-spin couplings and Z fields (:mod:`qep_analog.sequences.schedule`),
so the emulator cannot play a carrier pulse. A square carrier pulse with the Mølmer–Sørensen beat
note off leaves the ions independent: ion q evolves under

    H_q = ½ r·Ω·a X − (δ + k·(B_0 + o_q) + δ_q) n,

Ω and δ programmed, r = ``calibration.rabi_scale``, B_0 + o_q the profile's field offset of the site
(:meth:`~qep_analog.devices.profile.DeviceProfile.site_offsets`), k = 2 the qubit detuning one unit of
field makes, and the shot's noise drawn as the emulator draws it
(:func:`~qep_analog.emulation.magnus.draw_trajectories`): the amplitude a = max(0, 1 + σ_a ξ) shared
by every ion and a quasi-static offset δ_q of rms √2/T2* per ion. Each trajectory is evolved exactly
(the eigenvectors of the 2×2 Hamiltonian), P(|1⟩) averaged over the trajectories and read with each
ion's ε_q, ε′_q (:func:`~qep_analog.emulation.qutip_emulator.site_flips`).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from numpy.typing import NDArray

from qep_analog.devices.noise_sources import NoiseRates, noise_sources
from qep_analog.devices.platform import platform_of
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.magnus import draw_trajectories
from qep_analog.emulation.qutip_emulator import site_flips
from qep_analog.errors import ConfigError

#: the sources a carrier pulse's twin models; dephasing, relaxation and depolarizing are refused when
#: their rate is not 0, and the tweezer sources (missing atoms, beam waist, map jitter) do nothing on
#: ions, as in the emulator's ion schedules
CARRIER_SOURCES = frozenset({"detuning", "amplitude_jitter", "detuning_jitter", "readout"})


#: the Markovian sources the carrier twin does not model, in the order its error names them
UNMODELLED = ("dephasing", "relaxation", "depolarizing")


def carrier_read_one(
    profile: DeviceProfile,
    durations: NDArray,
    rabi: float,
    detuning: float,
    n_sites: int,
    *,
    noise: bool | str | Collection[str] = True,
    realisations: int = 1000,
    seed: int | None = None,
) -> NDArray:
    """P(ion q read '1') after a square carrier pulse from |0…0⟩ of each of ``durations`` (µs) at
    programmed ``rabi`` and ``detuning`` (rad/µs), shape (durations, ``n_sites``): the twin of the ion
    ``profile`` (its calibration and noise model) averaged over ``realisations`` trajectories."""
    if platform_of(profile).carrier_schedules:
        raise ConfigError(
            f"carrier twin: device {profile.name!r} is a {profile.platform} device, whose schedules play "
            "carrier pulses (use the emulator); the carrier twin is for ion chains"
        )
    if isinstance(n_sites, bool) or not isinstance(n_sites, int) or n_sites < 1:
        raise ConfigError(f"carrier twin: n_sites = {n_sites!r} is not a positive integer")
    if isinstance(realisations, bool) or not isinstance(realisations, int) or realisations < 1:
        raise ConfigError(f"carrier twin: realisations = {realisations!r} is not a positive integer")
    t = np.asarray(durations, dtype=float).ravel()
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ConfigError(f"carrier twin: durations {t.tolist()} must be finite, ≥ 0 µs and not empty")
    sources = noise_sources(noise, "carrier twin")
    rates = NoiseRates.of(profile.noise, sources)
    skipped = [name for name in UNMODELLED if name in rates.active]
    if skipped:
        raise ConfigError(
            f"carrier twin: noise sources {', '.join(skipped)} of {profile.name!r} are not modelled "
            f"(only {', '.join(sorted(CARRIER_SOURCES))})"
        )
    rng = np.random.default_rng(seed)
    # no missing ions: state_prep acts on tweezer arrays only
    count = realisations if rates.stochastic else 1
    draws = draw_trajectories(
        count, n_sites, float(t.max()), 0.0, rates.amplitude_jitter, rng, rates.detuning_rms,
        detuning_jitter=rates.detuning_jitter,
    )  # fmt: skip
    amplitude = np.array([d.amplitude for d in draws])[:, None]  # (R, 1)
    offsets = np.array([d.offsets if d.offsets else (0.0,) * n_sites for d in draws])  # (R, n)
    field = profile.platform_spec.detuning_per_offset * profile.site_offsets(n_sites)
    omega = profile.calibration.rabi_scale * rabi * amplitude * np.ones(n_sites)  # (R, n)
    delta = detuning + field[None, :] + offsets  # (R, n)
    hamiltonians = np.zeros((*omega.shape, 2, 2))
    hamiltonians[..., 0, 1] = hamiltonians[..., 1, 0] = omega / 2
    hamiltonians[..., 1, 1] = -delta
    energies, vectors = np.linalg.eigh(hamiltonians)  # (R, n, 2), (R, n, 2, 2)
    weights = vectors[..., 1, :] * vectors[..., 0, :].conj()  # ⟨1|k⟩⟨k|0⟩: (R, n, 2)
    phases = np.exp(-1j * energies[None] * t[:, None, None, None])  # (T, R, n, 2)
    population = np.mean(np.abs(np.sum(weights[None] * phases, axis=-1)) ** 2, axis=1)  # (T, n)
    if "readout" not in sources:
        return np.asarray(population)
    eps, eps_prime = site_flips(profile, n_sites)
    return np.asarray(eps + (1 - eps - eps_prime) * population)
