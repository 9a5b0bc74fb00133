"""The digital twin of a device: the emulator run on the profile with the calibration in force.

:func:`~qep_analog.calibration.in_force.load_profile` applies the usable records of a device's
history to its profile; the emulator (:class:`~qep_analog.emulation.qutip_emulator.QutipEmulator`
with ``noise``), ``emulate --noise`` and the lab-loop ``qutip`` backend read the noise model and the
controls' calibration from that profile, so they predict what the calibrated device does:

=====================  ======================================  =====================================
twin parameter         profile field                           measured by (routine)
=====================  ======================================  =====================================
readout ε_i, ε′_i      noise.site_false_positive / _negative   ``readout`` (per site; else the
                       (else readout_false_positive / _neg.)   device-wide record)
T2* (quasi-static)     noise.dephasing_time                    ``ramsey``
amplitude jitter       noise.amplitude_jitter                  ``amplitude_jitter`` (long Rabi)
Ω scale                calibration.rabi_scale                  ``rabi``
detuning offset        calibration.detuning_offset             ``ramsey``, ``detuning_spectroscopy``
per-site offsets       calibration.site_detuning_offsets       ``local_field_map``
local gains            calibration.local_gains                 ``local_field_map``
C6 / coupling scale    calibration.interaction_scale           ``pair_spectroscopy``,
                                                               ``two_ion_oscillation``
Markovian dephasing    noise.markovian_dephasing_time          none: the profile file's value
=====================  ======================================  =====================================

:func:`twin_parameters` says, for each, its value and the records it comes from (none: the profile
file's value); :func:`noise_listing` the noise parameters an emulation with some sources switched on
uses (what ``emulate --noise`` prints: the sources that act, then one line naming those that are
off); :func:`read_probabilities` is the twin's prediction of a schedule's read outcomes.
An ion schedule has no carrier drive: the twin's prediction of single-ion carrier pulses on a chain
is :func:`~qep_analog.calibration.carrier_twin.carrier_read_one` (runcard ``ion-noise``).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.records import RecordId
from qep_analog.devices.noise_sources import (
    NOISE_SOURCES,
    SOURCE_FIELDS,
    NoiseRates,
    noise_sources,
    platform_sources,
)
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.qutip_emulator import (
    QutipEmulator,
    read_distribution,
    rotate_to_basis,
    site_flips,
)
from qep_analog.sequences.schedule import Schedule

#: the twin's parameters: profile section, profile field, the record field that sets it, unit
_PARAMETERS = (
    ("noise", "site_false_positive", "readout_false_positive", ""),
    ("noise", "site_false_negative", "readout_false_negative", ""),
    ("noise", "readout_false_positive", "readout_false_positive", ""),
    ("noise", "readout_false_negative", "readout_false_negative", ""),
    ("noise", "dephasing_time", "dephasing_time", "µs"),
    ("noise", "amplitude_jitter", "amplitude_jitter", ""),
    ("noise", "markovian_dephasing_time", "", "µs"),
    ("calibration", "rabi_scale", "rabi_scale", ""),
    ("calibration", "detuning_offset", "detuning_offset", "rad/µs"),
    ("calibration", "site_detuning_offsets", "site_detuning_offsets", "rad/µs"),
    ("calibration", "local_gains", "local_gains", ""),
    ("calibration", "interaction_scale", "interaction_scale", ""),
)


@dataclass(frozen=True)
class TwinParameter:
    """One parameter of the twin: ``section.name`` of the profile, its ``value`` (a number, or one per
    site), ``unit`` and the ids of the ``records`` that set it (empty: the profile file's value)."""

    section: str
    name: str
    value: float | tuple[float, ...]
    unit: str
    records: tuple[str, ...]

    @property
    def calibrated(self) -> bool:
        return bool(self.records)

    def to_document(self) -> dict[str, object]:
        """JSON-ready: a value that is not finite (no Markovian dephasing: inf) is null."""
        value: list[float] | float | None = (
            list(self.value) if isinstance(self.value, tuple) else self.value
        )
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        return {
            "parameter": f"{self.section}.{self.name}",
            "value": value,
            "unit": self.unit,
            "records": list(self.records),
        }


def _record_ids(profile: DeviceProfile, record_field: str, per_site: bool) -> tuple[str, ...]:
    """The ids among the profile's records in force that set ``record_field`` (per site or not)."""
    out = []
    for record_id in profile.calibration_records:
        parts = RecordId.parse(record_id)
        if parts.field == record_field and (parts.site is not None) == per_site:
            out.append(record_id)
    return tuple(out)


def twin_parameters(profile: DeviceProfile) -> list[TwinParameter]:
    """Each parameter of the twin of ``profile`` (a profile with the calibration in force): its value
    and the records in force that set it. Per-site fields the profile does not hold are left out."""
    out = []
    for section, name, record_field, unit in _PARAMETERS:
        value = getattr(getattr(profile, section), name)
        if isinstance(value, tuple):
            if not value:
                continue
            value = tuple(float(v) for v in value)
        else:
            value = float(value)
        # a per-site field is set by per-site records, a device-wide one by device-wide records
        ids = _record_ids(profile, record_field, isinstance(value, tuple)) if record_field else ()
        out.append(TwinParameter(section, name, value, unit, ids))
    return out


@dataclass(frozen=True)
class NoiseListing:
    """The twin's noise model as an emulation with some sources switched on uses it: the parameters
    of the sources that act (``active``: switched on, with a value, on this platform) and the names
    of the other sources (``off``)."""

    active: tuple[TwinParameter, ...]
    off: tuple[str, ...]

    def lines(self) -> list[str]:
        """One text per active parameter (value, unit, where it comes from), then one line naming
        the sources that are off."""
        out = []
        for p in self.active:
            if isinstance(p.value, tuple):
                value = "[" + ", ".join(f"{v:.4g}" for v in p.value) + "]"
            else:
                value = f"{p.value:.4g}"
            unit = f" {p.unit}" if p.unit else ""
            source = f"{len(p.records)} record(s)" if p.records else "profile file"
            out.append(f"{p.name} = {value}{unit} ({source})")
        if self.off:
            out.append(f"off (not switched on, or no value): {', '.join(self.off)}")
        return out


def noise_listing(profile: DeviceProfile, noise: bool | str | Collection[str] = True) -> NoiseListing:
    """The noise parameters of ``profile`` (with the calibration in force) that an emulation with the
    sources ``noise`` uses — those of the sources switched on that have a value and act on the
    platform (:attr:`~qep_analog.devices.noise_sources.NoiseRates.active`) — with the records that set
    them, and the names of the other sources."""
    sources = platform_sources(noise_sources(noise, "digital twin"), profile.platform_spec)
    acting = NoiseRates.of(profile.noise, sources).active
    calibrated = {p.name: p for p in twin_parameters(profile) if p.section == "noise"}
    active: list[TwinParameter] = []
    for source in NOISE_SOURCES:
        if source not in acting:
            continue
        for name, unit in SOURCE_FIELDS[source]:
            if name in calibrated:
                active.append(calibrated[name])
                continue
            value = getattr(profile.noise, name)
            if isinstance(value, tuple):  # a per-site field the profile does not hold (empty)
                continue
            active.append(TwinParameter("noise", name, float(value), unit, ()))
    return NoiseListing(tuple(active), tuple(s for s in NOISE_SOURCES if s not in acting))


def read_probabilities(
    profile: DeviceProfile,
    schedule: Schedule,
    *,
    noise: bool | str | Collection[str] = True,
    realisations: int = 16,
    seed: int | None = None,
) -> NDArray:
    """The twin's distribution of read outcomes (2^n, qubit 0 the most significant bit) of
    ``schedule`` in its readout basis: the emulator on ``profile`` with its noise sources (all by
    default) averaged over ``realisations`` trajectories, read with the profile's per-site readout
    errors when the ``readout`` source is on."""
    sources = noise_sources(noise, "digital twin")
    state = QutipEmulator(profile).run(schedule, noise=sources, realisations=realisations, seed=seed).state
    rotated = rotate_to_basis(state, schedule.readout)
    p = np.abs(rotated) ** 2 if rotated.ndim == 1 else np.real(np.diag(rotated))
    p = np.clip(p, 0.0, None)
    n = schedule.n_qubits
    flips = site_flips(profile, n) if "readout" in sources else (0.0, 0.0)
    return np.asarray(read_distribution(p / p.sum(), n, flips))


def read_one(distribution: NDArray, n: int) -> NDArray:
    """P(qubit q read '1') of each qubit from a distribution over the 2^n outcomes."""
    tensor = np.asarray(distribution, dtype=float).reshape((2,) * n)
    return np.array([tensor.sum(axis=tuple(k for k in range(n) if k != q))[1] for q in range(n)])
