"""Device profiles (schema ``qep-device/1``): what a simulator can do, how noisy it is, its calibration.

A profile keeps three things apart: the hard limits of the hardware (``capabilities``), the noise model
(``noise``) and the calibration state (``calibration``, later resolved against calibration records).
Every dimensional key carries its unit (see :mod:`qep_analog.units`); values are held in the
internal units µs, rad/µs and µm. Profiles are found by name on the library's search path
(:mod:`qep_analog.library`) or loaded by path. :func:`read_profile` gives the profile as written (the
*nominal* one); ``qep_analog.load_profile`` applies the calibration in force to it.

``platform`` is the platform's name as files store it; ``DeviceProfile.platform_spec`` is its
:class:`~qep_analog.devices.platform.Platform`. Each platform's capabilities class answers the
questions of its own section (its fields, the shortest pulse, the largest register, the lifted
limits of the emulation variant).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ConstraintError, ProfileError, QEPWarning
from qep_analog.library import library_entries, locate_file
from qep_analog.schema import Field, parse_section
from qep_analog.storage import read_yaml
from qep_analog.units import MAX_DURATION, MAX_FREQUENCY, MAX_LENGTH, MAX_RABI

if TYPE_CHECKING:
    from qep_analog.devices.platform import Platform

SCHEMA = "qep-device/1"
PLATFORMS = ("rydberg", "ion")

_FREQ = "angular_frequency"
_POSITIVE: dict[str, Any] = {"low": 0.0, "open_low": True}
_PROBABILITY: dict[str, Any] = {"low": 0.0, "high": 0.5, "open_high": True}

# Ceilings of the values a profile file states (internal units; the shared ones in
# :mod:`qep_analog.units`). A value beyond its ceiling is refused, never taken as "no limit"; the
# relaxed variant lifts limits in code (inf), past any file.
MAX_C6 = 1e10  # rad/µs·µm⁶: beyond Rydberg levels n ≈ 140 (n = 70: 5.4e6)
MAX_SLEW = MAX_FREQUENCY / 1e-3  # rad/µs²: 2π·10 GHz within 1 ns
MAX_SHOT_OVERHEAD = 6e7  # µs: one minute per shot
MAX_COHERENCE = 8.64e10  # µs: one day (T2*, 1/γ)
MAX_AGE = 3.15576e13  # µs: one year
MAX_ATOMS = 10_000
MAX_IONS = 1_000
MAX_MASS = 1e4  # amu
MAX_WAVELENGTH = 1e5  # nm: 100 µm
_RABI: dict[str, Any] = {**_POSITIVE, "high": MAX_RABI, "dimension": _FREQ}
_FREQUENCY: dict[str, Any] = {**_POSITIVE, "high": MAX_FREQUENCY, "dimension": _FREQ}
_OFFSET: dict[str, Any] = {"low": -MAX_FREQUENCY, "high": MAX_FREQUENCY, "dimension": _FREQ}
_DURATION: dict[str, Any] = {**_POSITIVE, "high": MAX_DURATION, "dimension": "time"}
_LENGTH: dict[str, Any] = {**_POSITIVE, "high": MAX_LENGTH, "dimension": "length"}
_SLEW: dict[str, Any] = {**_POSITIVE, "high": MAX_SLEW, "dimension": "slew_rate"}
_COHERENCE: dict[str, Any] = {**_POSITIVE, "high": MAX_COHERENCE, "dimension": "time"}
_OVERHEAD: dict[str, Any] = {"low": 0.0, "high": MAX_SHOT_OVERHEAD, "dimension": "time"}

_RABI_HELP = "≤ 2π·1 GHz"
_FREQUENCY_HELP = "≤ 2π·10 GHz"
_DURATION_HELP = "≤ 1 s"
_LENGTH_HELP = "≤ 1 m"
_OVERHEAD_HELP = "time per shot beyond the sequence (loading, cooling, imaging), ≤ 1 min"
_PULSER_DEVICE = (
    "the real device the strict profile mirrors: a name in pulser.devices or a device-specs JSON file"
)
_LOCAL_DETUNING = (
    Field("sign", "text", choices=("negative", "positive", "any"), help="allowed sign of the local term"),
    Field("max_per_site", **_FREQUENCY, help=f"largest |local detuning| on one site, {_FREQUENCY_HELP}"),
    Field("max_total", **_FREQUENCY, required=False, help=f"largest sum over sites, {_FREQUENCY_HELP}"),
)
_RYDBERG = (
    Field("atom", "text"),
    Field("rydberg_level", "integer", low=1),
    Field("dimensions", "integer", low=1, high=3, required=False),
    Field("c6", dimension="c6", **_POSITIVE, high=MAX_C6, help="C6 coefficient, ≤ 1e10 rad/µs·µm⁶"),
    Field("max_rabi", **_RABI, help=f"largest Rabi frequency, {_RABI_HELP}"),
    Field("max_abs_detuning", **_FREQUENCY, help=f"largest |global detuning|, {_FREQUENCY_HELP}"),
    Field("local_detuning", "section", fields=_LOCAL_DETUNING, required=False),
    Field("min_spacing", **_LENGTH, help=f"closest distance of two atoms, {_LENGTH_HELP}"),
    Field("max_atoms", "integer", low=1, high=MAX_ATOMS, help=f"≤ {MAX_ATOMS}"),
    Field(
        "max_radius", **_LENGTH, required=False, help=f"farthest distance from the centre, {_LENGTH_HELP}"
    ),
    Field("max_duration", **_DURATION, help=f"longest sequence, {_DURATION_HELP}"),
    Field("clock", **_DURATION, help=f"time step of the waveforms, {_DURATION_HELP}"),
    Field("min_pulse", **{**_DURATION, "open_low": False}, required=False, help=_DURATION_HELP),
    Field("max_rabi_slew", **_SLEW, required=False, help="≤ 2π·10 GHz per ns"),
    Field("max_detuning_slew", **_SLEW, required=False, help="≤ 2π·10 GHz per ns"),
    Field("shot_overhead", **_OVERHEAD, required=False, help=_OVERHEAD_HELP),
    Field("pulser_device", "text", required=False, help=_PULSER_DEVICE),
)
_ION = (
    Field("species", "text"),
    Field("mass", dimension="mass", **_POSITIVE, high=MAX_MASS, help="≤ 10⁴ amu"),
    Field("axial_frequency", **_FREQUENCY, help=f"axial trap frequency, {_FREQUENCY_HELP}"),
    Field("radial_frequencies", "pair", **_FREQUENCY, help=f"radial trap frequencies, {_FREQUENCY_HELP}"),
    Field("raman_wavelength", dimension="wavelength", **_POSITIVE, high=MAX_WAVELENGTH, help="≤ 10⁵ nm"),
    Field("raman_angle", dimension="angle", low=0.0, high=180.0, open_low=True),
    Field("max_rabi", **_RABI, help=f"largest carrier Rabi frequency, {_RABI_HELP}"),
    Field("beat_note_detuning", "range", **_FREQUENCY, help=f"range of the beat note μ, {_FREQUENCY_HELP}"),
    Field("max_stark_shift", **_FREQUENCY, help=f"largest local AC-Stark shift, {_FREQUENCY_HELP}"),
    Field("stark_crosstalk", low=0.0, high=1.0, open_high=True),
    Field("max_global_field", **_FREQUENCY, help=f"largest global field, {_FREQUENCY_HELP}"),
    Field("max_ions", "integer", low=1, high=MAX_IONS, help=f"≤ {MAX_IONS}"),
    Field("max_duration", **_DURATION, help=f"longest sequence, {_DURATION_HELP}"),
    Field("clock", **_DURATION, help=f"time step of the waveforms, {_DURATION_HELP}"),
    Field("spin_only_limit", low=0.0, high=1.0, open_low=True, required=False),
    Field("shot_overhead", **_OVERHEAD, required=False, help=_OVERHEAD_HELP),
)
_NOISE = (
    Field("readout_false_positive", **_PROBABILITY, help="P(read 1 | prepared 0), epsilon"),
    Field("readout_false_negative", **_PROBABILITY, help="P(read 0 | prepared 1), epsilon'"),
    Field("state_prep_error", low=0.0, high=1.0, open_high=True, required=False),
    Field("dephasing_time", **_COHERENCE, required=False, help="T2*: quasi-static, ≤ 1 day"),
    Field("markovian_dephasing_time", **_COHERENCE, required=False, help="1/γ, ≤ 1 day"),
    Field("amplitude_jitter", low=0.0, high=1.0, required=False, help="relative shot-to-shot rms"),
    Field("site_false_positive", "numbers", low=0.0, high=1.0, open_high=True, required=False),
    Field("site_false_negative", "numbers", low=0.0, high=1.0, open_high=True, required=False),
    Field("relaxation_time", **_COHERENCE, required=False, help="T1 of |1⟩ → |0⟩ decay, ≤ 1 day"),
    Field("depolarizing_time", **_COHERENCE, required=False, help="1/(depolarizing rate), ≤ 1 day"),
    Field("laser_waist", **_LENGTH, required=False, help=f"waist of the global drive beam, {_LENGTH_HELP}"),
    Field(
        "detuning_jitter", low=0.0, high=MAX_FREQUENCY, dimension=_FREQ, required=False,
        help=f"rms of a global detuning offset drawn per shot, {_FREQUENCY_HELP}",
    ),
    Field(
        "detuning_map_jitter", low=0.0, high=1.0, required=False,
        help="relative shot-to-shot rms of the detuning map's waveform",
    ),
)  # fmt: skip
#: noise fields added after the first profiles: left out of the snapshot hash at their defaults
_LATER_NOISE_DEFAULTS: dict[str, Any] = {
    "markovian_dephasing_time_us": None,
    "relaxation_time_us": None,
    "depolarizing_time_us": None,
    "laser_waist_um": None,
    "detuning_jitter_rad_per_us": 0.0,
    "detuning_map_jitter": 0.0,
}
_CALIBRATION = (
    Field("rabi_scale", **_POSITIVE, required=False),
    Field("detuning_offset", **_OFFSET, required=False, help=f"|offset| {_FREQUENCY_HELP}"),
    Field("interaction_scale", **_POSITIVE, required=False),
    Field("local_gains", "numbers", low=0.0, required=False),
    Field(
        "site_detuning_offsets", "numbers", **_OFFSET, required=False, help=f"|offset| {_FREQUENCY_HELP}"
    ),
    Field("ramp_duration", **_DURATION, required=False, help=_DURATION_HELP),
    Field(
        "max_age",
        dimension="time",
        **_POSITIVE,
        high=MAX_AGE,
        required=False,
        help="older values are stale, ≤ 1 year",
    ),
)
_TOP = (
    Field("schema", "text", choices=(SCHEMA,)),
    Field("name", "text"),
    Field("platform", "text", choices=PLATFORMS),
    Field("version", "integer", low=1),
    Field("description", "text", required=False),
    Field("capabilities", "section", fields=()),  # parsed per platform below
    Field("noise", "section", fields=_NOISE),
    Field("calibration", "section", fields=_CALIBRATION, required=False),
)


class UncalibratedSitesWarning(QEPWarning):
    """A model uses sites that a per-site calibration did not measure."""


@dataclass(frozen=True)
class LocalDetuning:
    """A detuning map: ``sign`` of the shared waveform, per-site and total magnitude limits (rad/µs)."""

    sign: Literal["negative", "positive", "any"]
    max_per_site: float
    max_total: float = math.inf


@dataclass(frozen=True)
class RydbergCapabilities:
    """Hard limits of a Rydberg tweezer array (rad/µs, µm, µs)."""

    atom: str
    rydberg_level: int
    c6: float
    max_rabi: float
    max_abs_detuning: float
    min_spacing: float
    max_atoms: int
    max_duration: float
    clock: float
    dimensions: int = 2
    local_detuning: LocalDetuning | None = None
    max_radius: float = math.inf
    min_pulse: float = 0.0
    max_rabi_slew: float = math.inf
    max_detuning_slew: float = math.inf
    shot_overhead: float = 0.0
    #: the Pulser device a strict profile's exports are built on (a name in ``pulser.devices`` or a
    #: device-specs JSON file, relative to the profile); None: a custom device named after the profile
    pulser_device: str | None = None

    FIELDS: ClassVar[tuple[Field, ...]] = _RYDBERG

    @classmethod
    def from_section(cls, raw: Any, where: str) -> RydbergCapabilities:
        """The capabilities from their parsed section; mistakes are one-line :class:`ProfileError`s."""
        caps = _present(parse_section(raw, _RYDBERG, where, ProfileError))
        if "local_detuning" in caps:
            local = _present(caps["local_detuning"])
            caps["local_detuning"] = LocalDetuning(**local)
        return cls(**caps)

    @property
    def max_sites(self) -> int:
        """The largest register: atoms."""
        return self.max_atoms

    def with_max_sites(self, n: int) -> RydbergCapabilities:
        return dataclasses.replace(self, max_atoms=n)

    @property
    def shortest_pulse(self) -> float:
        """The shortest sequence the device plays (µs)."""
        return self.min_pulse

    def lifted(self) -> RydbergCapabilities:
        """The limits of the controls lifted, the physics (C6, spacing, clock) kept."""
        return dataclasses.replace(
            self,
            max_rabi=math.inf,
            max_abs_detuning=math.inf,
            local_detuning=LocalDetuning("any", math.inf),
            max_atoms=10**6,
            max_radius=math.inf,
            max_duration=math.inf,
            max_rabi_slew=math.inf,
            max_detuning_slew=math.inf,
        )


@dataclass(frozen=True)
class IonCapabilities:
    """Hard limits and trap constants of a trapped-ion chain (rad/µs, µs, amu, nm, degrees)."""

    species: str
    mass: float
    axial_frequency: float
    radial_frequencies: tuple[float, float]
    raman_wavelength: float
    raman_angle: float
    max_rabi: float
    beat_note_detuning: tuple[float, float]
    max_stark_shift: float
    stark_crosstalk: float
    max_global_field: float
    max_ions: int
    max_duration: float
    clock: float
    spin_only_limit: float = 0.1
    shot_overhead: float = 0.0

    FIELDS: ClassVar[tuple[Field, ...]] = _ION

    @classmethod
    def from_section(cls, raw: Any, where: str) -> IonCapabilities:
        """The capabilities from their parsed section; mistakes (a trap that would make a zig-zag
        chain among them) are one-line :class:`ProfileError`s."""
        caps = _present(parse_section(raw, _ION, where, ProfileError))
        caps["radial_frequencies"] = tuple(caps["radial_frequencies"])
        caps["beat_note_detuning"] = tuple(caps["beat_note_detuning"])
        capabilities = cls(**caps)
        if min(capabilities.radial_frequencies) <= capabilities.axial_frequency:
            raise ProfileError(
                f"{where}: radial frequencies {list(capabilities.radial_frequencies)} "
                f"rad/µs must exceed the axial frequency {capabilities.axial_frequency:.6g} rad/µs"
            )
        return capabilities

    @property
    def max_sites(self) -> int:
        """The largest register: ions."""
        return self.max_ions

    def with_max_sites(self, n: int) -> IonCapabilities:
        return dataclasses.replace(self, max_ions=n)

    @property
    def shortest_pulse(self) -> float:
        """The shortest sequence the device plays (µs): one clock tick."""
        return self.clock

    def lifted(self) -> IonCapabilities:
        """The limits of the controls lifted, the physics (trap, Raman beams, clock) kept."""
        return dataclasses.replace(
            self,
            max_rabi=math.inf,
            beat_note_detuning=(0.0, math.inf),
            max_stark_shift=math.inf,
            max_global_field=math.inf,
            max_ions=10**6,
            max_duration=math.inf,
        )


#: the capabilities of each platform, by name
CAPABILITIES: dict[str, type[RydbergCapabilities] | type[IonCapabilities]] = {
    "rydberg": RydbergCapabilities,
    "ion": IonCapabilities,
}


@dataclass(frozen=True)
class NoiseModel:
    """Readout errors (ε = P(1|0), ε′ = P(0|1)), preparation error (the probability that an atom is
    missing from a shot), T2* (µs; emulated as quasi-static per-site detuning noise, Pulser's
    Doppler noise, :mod:`qep_analog.devices.noise_sources`), relative amplitude jitter;
    ``site_false_positive``/``site_false_negative``: ε, ε′ of each site when calibrated per site;
    ``markovian_dephasing_time``: 1/γ (µs) of Markovian dephasing (inf: none);
    ``relaxation_time``: T1 (µs) of the decay |1⟩ → |0⟩ (inf: none); ``depolarizing_time``: 1/rate
    (µs) of depolarizing noise (inf: none); ``laser_waist``: the waist (µm) of the global drive's
    Gaussian beam, which propagates along y through the origin (inf: a flat beam);
    ``detuning_jitter``: rms (rad/µs) of a detuning offset shared by all sites, drawn per shot;
    ``detuning_map_jitter``: relative rms of the detuning map's waveform, drawn per shot. The
    correspondence with Pulser's ``NoiseModel``: :mod:`qep_analog.devices.pulser_noise`."""

    readout_false_positive: float
    readout_false_negative: float
    state_prep_error: float = 0.0
    dephasing_time: float = math.inf
    amplitude_jitter: float = 0.0
    site_false_positive: tuple[float, ...] = ()
    site_false_negative: tuple[float, ...] = ()
    markovian_dephasing_time: float = math.inf
    relaxation_time: float = math.inf
    depolarizing_time: float = math.inf
    laser_waist: float = math.inf
    detuning_jitter: float = 0.0
    detuning_map_jitter: float = 0.0


@dataclass(frozen=True)
class Calibration:
    """The calibration state: scales of Ω and of the interactions, a detuning offset, local-field gains,
    per-site detuning offsets (added to ``detuning_offset`` on each site) and the recommended duration
    of an adiabatic ramp (µs; inf: none measured); ``max_age``: how long (µs) a calibrated value stays
    fresh (inf: no limit stated)."""

    rabi_scale: float = 1.0
    detuning_offset: float = 0.0
    interaction_scale: float = 1.0
    local_gains: tuple[float, ...] = ()
    site_detuning_offsets: tuple[float, ...] = ()
    ramp_duration: float = math.inf
    max_age: float = math.inf


@dataclass(frozen=True)
class DeviceProfile:
    """A device profile. ``strict`` profiles enforce the hardware limits; relaxed ones (for emulation)
    keep the physics (C6, trap, spacing, clock, noise) and lift the limits of the controls.
    ``calibration_records``: the ids of the calibration records applied to the file's values (empty
    for a nominal profile)."""

    name: str
    platform: Literal["rydberg", "ion"]
    version: int
    capabilities: RydbergCapabilities | IonCapabilities
    noise: NoiseModel
    calibration: Calibration = Calibration()
    description: str = ""
    strict: bool = True
    source: str = ""
    calibration_records: tuple[str, ...] = ()

    @property
    def rydberg(self) -> RydbergCapabilities:
        if not isinstance(self.capabilities, RydbergCapabilities):
            raise ProfileError(f"device {self.name!r}: is an ion chain, not a Rydberg array")
        return self.capabilities

    @property
    def ions(self) -> IonCapabilities:
        if not isinstance(self.capabilities, IonCapabilities):
            raise ProfileError(f"device {self.name!r}: is a Rydberg array, not an ion chain")
        return self.capabilities

    @property
    def label(self) -> str:
        return self.name if self.strict else f"{self.name} (relaxed)"

    @property
    def platform_spec(self) -> Platform:
        """The :class:`~qep_analog.devices.platform.Platform` object of ``platform`` (the name)."""
        from qep_analog.devices.platform import platform_of

        return platform_of(self.platform)

    def local_gains(self, n: int) -> NDArray:
        """The calibrated gain of the local field on sites 0 … n−1; 1 on sites the calibration did not
        measure (with a warning when some were measured)."""
        return self._per_site(n, ("local_gains", 1.0, None))[0]

    def site_offsets(self, n: int) -> NDArray:
        """The detuning offset of each of ``n`` sites: the device-wide one plus the per-site ones (0
        on sites the calibration did not measure, with a warning when some were measured)."""
        return self.calibration.detuning_offset + self._per_site(n, ("site_detuning_offsets", 0.0, None))[0]

    def site_readout_errors(self, n: int) -> tuple[NDArray, NDArray]:
        """ε and ε′ of each of ``n`` sites: the per-site values where the calibration measured them,
        the device-wide ones elsewhere (with one warning naming both when some sites were measured)."""
        noise = self.noise
        positive, negative = self._per_site(
            n,
            ("site_false_positive", noise.readout_false_positive, noise.site_false_positive),
            ("site_false_negative", noise.readout_false_negative, noise.site_false_negative),
        )
        return positive, negative

    def _per_site(self, n: int, *fields: tuple[str, float, tuple[float, ...] | None]) -> list[NDArray]:
        """Each field's value on each of ``n`` sites, per ``(field, unmeasured, measured)``: the
        ``measured`` values (else the calibration's field) and ``unmeasured`` past the measured ones;
        one warning names every field measured on fewer than ``n`` sites."""
        out, short = [], []
        for field, unmeasured, measured in fields:
            values = tuple(getattr(self.calibration, field) if measured is None else measured)
            if values and len(values) < n:
                short.append(
                    f"{field} calibrated on sites 0-{len(values) - 1} only (sites {len(values)}-{n - 1} "
                    f"take {unmeasured:g})"
                )
            array = np.full(n, unmeasured)
            array[: min(n, len(values))] = values[:n]
            out.append(array)
        if short:
            warnings.warn(
                UncalibratedSitesWarning(f"device {self.label!r}: {'; '.join(short)}"), stacklevel=3
            )
        return out

    def relaxed(self) -> DeviceProfile:
        """The emulation variant: limits of the controls lifted, physics and noise kept."""
        return dataclasses.replace(self, capabilities=self.capabilities.lifted(), strict=False)

    @property
    def snapshot_hash(self) -> str:
        """A hash of every value that acts on the device's physics or limits — not of the file the
        profile was read from, its description, the records its values came from or how long they
        stay fresh; numbers are hashed as floats (1 and 1.0 alike). Profiles with equal values
        have equal hashes; a change of any acting value changes it."""
        document = self.to_document()
        del document["source"], document["calibration_records"], document["description"]
        del document["calibration"]["max_age_us"]
        for key, default in _LATER_NOISE_DEFAULTS.items():  # hashes from before these fields
            if document["noise"][key] == default:
                del document["noise"][key]
        text = json.dumps(_as_floats(document), sort_keys=True, allow_nan=False, ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def provenance(self) -> dict[str, Any]:
        """What a run records of the profile it used: name, version, variant, snapshot hash and the
        calibration records in force."""
        return {
            "name": self.name,
            "version": self.version,
            "variant": "strict" if self.strict else "relaxed",
            "snapshot_hash": self.snapshot_hash,
            "calibration_records": list(self.calibration_records),
        }

    def to_document(self) -> dict[str, Any]:
        """The profile in internal units (keys with their unit suffix); no limit is written as null."""
        sections = {
            "capabilities": (self.capabilities, self.capabilities.FIELDS),
            "noise": (self.noise, _NOISE),
            "calibration": (self.calibration, _CALIBRATION),
        }
        document: dict[str, Any] = {
            "schema": SCHEMA,
            "name": self.name,
            "platform": self.platform,
            "version": self.version,
            "variant": "strict" if self.strict else "relaxed",
            "description": self.description,
            "source": self.source,
            "calibration_records": list(self.calibration_records),
        }
        for section, (values, fields) in sections.items():
            document[section] = _document_section(values, fields)
        return document


def realised_duration(profile: DeviceProfile, duration: float) -> float:
    """``duration`` (µs) rounded up to the device clock, or :class:`ConstraintError` when it is shorter
    than the shortest pulse or longer than the longest sequence the device runs."""
    caps = profile.capabilities
    if not math.isfinite(duration):
        raise ConstraintError(f"device {profile.label!r}: duration {duration} µs is not finite")
    if not math.isfinite(duration / caps.clock):  # 1e308 µs: no tick count
        raise ConstraintError(
            f"device {profile.label!r}: duration {duration:.6g} µs is beyond counting in clock ticks of "
            f"{caps.clock:.6g} µs"
        )
    ticks = duration / caps.clock - 1e-9
    # (a duration of more than 2**52 ticks is far beyond any limit: not rounded, its count overflows)
    realised = math.ceil(ticks) * caps.clock if abs(ticks) < 2**52 else duration
    shortest = caps.shortest_pulse
    if realised < shortest:
        raise ConstraintError(
            f"device {profile.label!r}: duration {duration:.6g} µs is shorter than the minimum "
            f"{shortest:.6g} µs"
        )
    if realised > caps.max_duration * (1 + 1e-12):
        raise ConstraintError(
            f"device {profile.label!r}: duration {realised:.6g} µs exceeds the limit "
            f"{caps.max_duration:.6g} µs"
        )
    return realised


_INTERNAL_SUFFIX = {
    "angular_frequency": "rad_per_us",
    "time": "us",
    "length": "um",
    "wavelength": "nm",
    "mass": "amu",
    "angle": "deg",
    "c6": "rad_per_us_um6",
    "slew_rate": "rad_per_us2",
}


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _document_section(values: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields:
        value = getattr(values, field.name)
        if field.kind == "text" and value is None:
            continue  # an optional name not given (the profile's hash stays what it was without it)
        suffix = _INTERNAL_SUFFIX.get(field.dimension)
        key = f"{field.name}_{suffix}" if suffix else field.name
        if field.kind == "section":
            out[key] = None if value is None else _document_section(value, field.fields)
        else:
            out[key] = _plain(value)
    return out


def _present(parsed: dict[str, Any]) -> dict[str, Any]:
    """Optional fields that were not given keep the dataclass defaults."""
    return {k: v for k, v in parsed.items() if v is not None}


def parse_profile(document: Any, source: str = "<profile>") -> DeviceProfile:
    """A profile from a parsed YAML document; every mistake is a one-line :class:`ProfileError`."""
    if isinstance(document, dict) and document.get("schema") != SCHEMA:
        raise ProfileError(f"{source}: schema {document.get('schema')!r}, expected {SCHEMA!r}")
    top = parse_section(
        {k: ({} if k == "capabilities" else v) for k, v in document.items()}
        if isinstance(document, dict)
        else document,
        _TOP,
        source,
        ProfileError,
    )
    raw_caps = document["capabilities"]
    where = f"{source}: device {top['name']!r}"
    capabilities = CAPABILITIES[top["platform"]].from_section(raw_caps, f"{where}.capabilities")
    noise = NoiseModel(
        **_tuples(_present(parse_section(document["noise"], _NOISE, f"{where}.noise", ProfileError)))
    )
    calibration = Calibration()
    if top["calibration"] is not None:
        calibration = Calibration(**_tuples(_present(top["calibration"])))
    return DeviceProfile(
        name=top["name"],
        platform=top["platform"],
        version=top["version"],
        capabilities=capabilities,
        noise=noise,
        calibration=calibration,
        description=top["description"] or "",
        source=source,
    )


def _as_floats(value: Any) -> Any:
    """Numbers as floats throughout a document (booleans and texts as they are)."""
    if isinstance(value, dict):
        return {k: _as_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_floats(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    """Lists (per-site values) as tuples, so that parsed and resolved profiles compare and hash alike."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def section_fields(profile: DeviceProfile, section: str) -> tuple[Field, ...]:
    """The field rules of a profile section (``capabilities``, ``noise`` or ``calibration``)."""
    return {
        "capabilities": profile.capabilities.FIELDS,
        "noise": _NOISE,
        "calibration": _CALIBRATION,
    }[section]


def list_profiles() -> dict[str, Path]:
    """Profile names on the library's search path and their files (the first one found wins)."""
    return {name: entry.path for name, entry in library_entries("devices").items()}


def read_profile(name_or_path: str | Path, relaxed: bool = False) -> DeviceProfile:
    """The profile as its file says (nominal: no calibration records applied), by name or by file
    path; ``relaxed`` for the emulation variant. A file found by name must carry that name: the name
    keys the device's calibration history."""
    path = locate_file("devices", name_or_path, ProfileError)
    document = read_yaml(path, ProfileError)
    profile = parse_profile(document, str(path))
    by_name = str(name_or_path) == path.stem and Path(str(name_or_path)).suffix == ""
    if by_name and profile.name != path.stem:
        raise ProfileError(
            f"{path}: found for the name {path.stem!r} but names device {profile.name!r}; the file "
            "name and name: must agree (the name keys the device's calibration history)"
        )
    return profile.relaxed() if relaxed else profile
