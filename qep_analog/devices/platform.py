"""The platform of a device as an object: what a Rydberg array and an ion chain do differently.

``DeviceProfile.platform`` (and a schedule's or a recipe's) stays the platform's *name*, the string
files and records store; :func:`platform_of` (or ``DeviceProfile.platform_spec``) gives its
:class:`Platform`, :data:`RYDBERG` or :data:`ION`. Code outside :mod:`qep_analog.devices` asks this
object instead of comparing names: the controls (translated, realised and checked by
:mod:`~qep_analog.devices.rydberg` and :mod:`~qep_analog.devices.ions`, to which it delegates), the
readout basis, the ramp a recipe drives to a target, the units of the detuning offset, the local
field and the exporter of its schedules (per profile: :meth:`Platform.exporter_for`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from qep_analog.devices import ions, rydberg
from qep_analog.devices.profile import DeviceProfile, IonCapabilities, RydbergCapabilities
from qep_analog.errors import ProfileError
from qep_analog.model.pauli import PauliSum, bitstring_parity

Controls = rydberg.RydbergControls | ions.IonControls
SpinModel = rydberg.IsingModel | ions.IonSpinModel

#: every export format of schedules and the file suffix it writes (``qep sequence build --export``,
#: the bundle backend): Pulser's abstract JSON, our ion schedule JSON, Braket's AHS program IR
EXPORT_SUFFIXES: dict[str, str] = {"pulser": ".pulser.json", "ion": ".ion.json", "braket-ahs": ".ahs.json"}


@dataclass(frozen=True)
class LocalField:
    """A device's site-resolved field: what it is called, its largest size on one site (rad/µs) and
    the sign it takes."""

    what: str
    max_per_site: float
    sign: Literal["negative", "positive", "any"]


@dataclass(frozen=True)
class Ramp:
    """What an adiabatic ramp to a target drives: per control the (start, stop) values of the path
    (each follows the path parameter s from 0 to 1), the static settings and the basis state the
    ramp starts from (qubit 0 first)."""

    paths: dict[str, tuple[float, float]]
    static: dict[str, Any]
    initial_state: str


@dataclass(frozen=True)
class Platform(ABC):
    """One platform's answers; the implementations are stateless and frozen."""

    #: the name profiles, schedules, recipes and records store
    name: ClassVar[str]
    #: what its sites are called ("atoms", "ions")
    particles: ClassVar[str]
    #: what fixes the couplings of a register (a nudge must leave it alone)
    register: ClassVar[str]
    #: the type of its shot controls and of its hard limits
    controls_type: ClassVar[type[rydberg.RydbergControls] | type[ions.IonControls]]
    capabilities_type: ClassVar[type[RydbergCapabilities] | type[IonCapabilities]]
    #: the export format of its schedules by default (``exporter_for`` picks it per profile)
    exporter: ClassVar[str]
    #: every export format that can carry its schedules
    exporters: ClassVar[tuple[str, ...]]
    #: the qubit detuning one unit of the profile's ``detuning_offset`` makes
    detuning_per_offset: ClassVar[float]
    #: the basis the device reads out in without a rotation
    native_basis: ClassVar[str] = "Z"
    #: whether a basis rotation runs under the interactions (always on): an X/Y readout is biased
    rotation_biased: ClassVar[bool]
    #: whether the profile holds the leakage of the local field onto neighbours (``stark_crosstalk``)
    represents_crosstalk: ClassVar[bool]
    #: the control whose waveform carries the drive amplitude (the amplitude jitter scales it)
    drive_control: ClassVar[str]
    #: the power of the drive amplitude that control is: a shot whose Ω is scaled by 1 + σξ scales it
    #: by (1 + σξ)^power (Ω itself: 1; the ion couplings, ∝ Ω_i Ω_j: 2)
    drive_power: ClassVar[int]
    #: whether its schedules can play a carrier pulse (Rydberg: the drive Ω is a control; ions: their
    #: schedules drive couplings, so a carrier pulse is modelled outside them)
    carrier_schedules: ClassVar[bool]
    #: the recipe field a ramp starts from, and what a recipe without it is told
    recipe_start: ClassVar[str]
    recipe_start_rule: ClassVar[str]
    #: whether its interactions blockade (a blockade subspace of its configurations exists)
    blockade: ClassVar[bool]
    #: whether its sites are atoms loaded into tweezers under one global beam with a detuning map:
    #: atoms can be missing from a shot, the beam's profile and the map's jitter act (Pulser's noise)
    tweezer_noise: ClassVar[bool]

    def exporter_for(self, profile: DeviceProfile) -> str:
        """The export format of ``profile``'s schedules (a key of :data:`EXPORT_SUFFIXES`)."""
        return self.exporter

    def needs_rotation(self, basis: str) -> bool:
        """Whether reading ``basis`` (one letter per qubit) needs a rotation before readout."""
        return bool(set(basis) - {self.native_basis})

    @abstractmethod
    def spin_model(self, hamiltonian: PauliSum, n: int) -> SpinModel:
        """The platform's spin-model form of ``hamiltonian`` on ``n`` qubits (else ConstraintError)."""

    @abstractmethod
    def translate(self, model: SpinModel, profile: DeviceProfile, like: Controls | None = None) -> Controls:
        """Controls that realise ``model``, limits checked, on the register of ``like`` when given
        (its atom positions; its beat note for ions)."""

    @abstractmethod
    def realize(self, controls: Controls, profile: DeviceProfile) -> SpinModel:
        """The spin model the device implements for ``controls`` (calibration applied)."""

    @abstractmethod
    def check_controls(self, controls: Controls, profile: DeviceProfile) -> None:
        """Raise ConstraintError for the first control outside the profile's limits."""

    def as_programmed(self, controls: Controls) -> Controls:
        """The controls as the device is programmed (rounded where the control stack rounds)."""
        return self._own(controls)

    @abstractmethod
    def same_register(self, controls: Controls, other: Controls) -> bool:
        """Whether two controls share the register (hence the couplings up to the drive)."""

    @abstractmethod
    def local_field(self, profile: DeviceProfile) -> LocalField | None:
        """The device's site-resolved field, or None when it has none."""

    @abstractmethod
    def carrier_detuning_limit(self, profile: DeviceProfile) -> tuple[float, str]:
        """The largest |detuning| (rad/µs) of a carrier pulse on the device, and the profile field
        it comes from."""

    def prepared_parity(self, n: int, start: float = 1.0) -> int | None:
        """The sector of Π_i Z_i (±1) the device's ramps keep on ``n`` sites from the start value
        ``start``, or None when its Hamiltonians do not keep one (a Rabi drive flips single sites)."""
        return None

    @abstractmethod
    def ramp(self, target: Controls, start: float) -> Ramp:
        """The ramp from the recipe's start value (``recipe_start``) to ``target``."""

    def _own(self, controls: Controls) -> Any:
        if not isinstance(controls, self.controls_type):
            raise TypeError(f"{type(controls).__name__} are not controls of the {self.name} platform")
        return controls


@dataclass(frozen=True)
class RydbergPlatform(Platform):
    """Rydberg tweezer arrays (:mod:`qep_analog.devices.rydberg`)."""

    name = "rydberg"
    particles = "atoms"
    register = "atom positions"
    controls_type = rydberg.RydbergControls
    capabilities_type = RydbergCapabilities
    exporter = "pulser"
    exporters = ("pulser", "braket-ahs")
    detuning_per_offset = 1.0  # δ → δ + offset
    rotation_biased = True
    represents_crosstalk = False
    drive_control = "rabi"
    drive_power = 1
    carrier_schedules = True
    recipe_start = "initial_detuning"
    recipe_start_rule = "a Rydberg recipe needs initial_detuning (negative) to start from |0…0⟩"
    blockade = True
    tweezer_noise = True

    def exporter_for(self, profile: DeviceProfile) -> str:
        """Pulser, unless the detuning map is positive (Aquila-like): Pulser's DMM takes negative
        detunings only, Braket's AHS local detuning (−Δ_local Σ h_k n_k, Δ_local ≥ 0) positive ones."""
        local = profile.rydberg.local_detuning
        return "braket-ahs" if local is not None and local.sign == "positive" else "pulser"

    def spin_model(self, hamiltonian: PauliSum, n: int) -> rydberg.IsingModel:
        return rydberg.IsingModel.from_pauli_sum(hamiltonian, n)

    def translate(
        self, model: SpinModel, profile: DeviceProfile, like: Controls | None = None
    ) -> rydberg.RydbergControls:
        if not isinstance(model, rydberg.IsingModel):
            raise TypeError(f"{type(model).__name__} is not a Rydberg spin model")
        positions = None if like is None else self._own(like).positions
        return rydberg.translate(model, profile, positions=positions)

    def realize(self, controls: Controls, profile: DeviceProfile) -> rydberg.IsingModel:
        return rydberg.realize(self._own(controls), profile)

    def check_controls(self, controls: Controls, profile: DeviceProfile) -> None:
        rydberg.check_controls(self._own(controls), profile)

    def as_programmed(self, controls: Controls) -> rydberg.RydbergControls:
        return rydberg.as_programmed(self._own(controls))

    def same_register(self, controls: Controls, other: Controls) -> bool:
        return bool(np.array_equal(self._own(controls).positions, self._own(other).positions))

    def local_field(self, profile: DeviceProfile) -> LocalField | None:
        local = profile.rydberg.local_detuning
        return (
            None if local is None else LocalField("detuning-map amplitude", local.max_per_site, local.sign)
        )

    def carrier_detuning_limit(self, profile: DeviceProfile) -> tuple[float, str]:
        return profile.rydberg.max_abs_detuning, "max_abs_detuning"

    def ramp(self, target: Controls, start: float) -> Ramp:
        """Ω = s·Ω_f, δ = δ_0 + s(δ_f − δ_0), Δ = s·Δ_f from |0…0⟩, the ground state of −δ_0 Σ n_i."""
        controls: rydberg.RydbergControls = self._own(target)
        n = controls.n_atoms
        paths = {"rabi": (0.0, controls.rabi), "detuning": (start, controls.detuning)}
        weights = controls.local_weights if len(controls.local_weights) else np.zeros(n)
        if controls.local_amplitude != 0 and np.any(weights > 0):
            paths["local_amplitude"] = (0.0, controls.local_amplitude)
        static = {
            "positions": np.asarray(controls.positions),
            "local_weights": weights,
            "phase": controls.phase,
        }
        return Ramp(paths, static, "0" * n)


@dataclass(frozen=True)
class IonPlatform(Platform):
    """Trapped-ion chains (:mod:`qep_analog.devices.ions`)."""

    name = "ion"
    particles = "ions"
    register = "Rabi frequencies"
    controls_type = ions.IonControls
    capabilities_type = IonCapabilities
    exporter = "ion"
    exporters = ("ion",)
    detuning_per_offset = 2.0  # h → h + B_0 moves the qubit frequency by 2·B_0
    rotation_biased = False
    represents_crosstalk = True
    drive_control = "coupling_scale"
    drive_power = 2
    carrier_schedules = False
    recipe_start = "initial_field"
    recipe_start_rule = "an ion recipe needs a non-zero initial_field to polarise the chain"
    blockade = False
    tweezer_noise = False

    def spin_model(self, hamiltonian: PauliSum, n: int) -> ions.IonSpinModel:
        return ions.IonSpinModel.from_pauli_sum(hamiltonian, n)

    def translate(
        self, model: SpinModel, profile: DeviceProfile, like: Controls | None = None
    ) -> ions.IonControls:
        if not isinstance(model, ions.IonSpinModel):
            raise TypeError(f"{type(model).__name__} is not an ion-chain spin model")
        beat_note = None if like is None else self._own(like).beat_note
        return ions.translate(model, profile, beat_note=beat_note)

    def realize(self, controls: Controls, profile: DeviceProfile) -> ions.IonSpinModel:
        return ions.realize(self._own(controls), profile)

    def check_controls(self, controls: Controls, profile: DeviceProfile) -> None:
        ions.check_controls(self._own(controls), profile)

    def same_register(self, controls: Controls, other: Controls) -> bool:
        a, b = self._own(controls), self._own(other)
        return a.beat_note == b.beat_note and bool(np.allclose(a.rabi, b.rabi, rtol=1e-9, atol=1e-12))

    def local_field(self, profile: DeviceProfile) -> LocalField:
        return LocalField("Stark shift", profile.ions.max_stark_shift, "any")

    def carrier_detuning_limit(self, profile: DeviceProfile) -> tuple[float, str]:
        """A carrier detuning δ moves the qubit as a global field δ/2 does."""
        return self.detuning_per_offset * profile.ions.max_global_field, "2·max_global_field"

    def start_state(self, n: int, start: float) -> str:
        """The state a ramp from the field ``start`` begins in: polarised along it (B Z_i is lowest
        for Z_i = −1, read as 1, when B_0 > 0)."""
        return ("1" if start > 0 else "0") * n

    def prepared_parity(self, n: int, start: float = 1.0) -> int | None:
        """The chain's XX couplings and Z fields keep Π_i Z_i, so a ramp keeps the sector of its start
        state: (−1)^n from a positive field (every shipped ion recipe's), +1 from a negative one."""
        return bitstring_parity(self.start_state(n, start))

    def ramp(self, target: Controls, start: float) -> Ramp:
        """B = B_0 + s(B_f − B_0), couplings and Stark shifts scaled by s, from the state polarised
        along B_0 (:meth:`start_state`)."""
        controls: ions.IonControls = self._own(target)
        n = controls.n_ions
        paths = {
            "global_field": (start, controls.global_field),
            "coupling_scale": (0.0, 1.0),
            "stark_scale": (0.0, 1.0),
        }
        shifts = controls.stark_shifts if len(controls.stark_shifts) else np.zeros(n)
        static = {
            "rabi": np.asarray(controls.rabi),
            "beat_note": controls.beat_note,
            "stark_shifts": shifts,
        }
        return Ramp(paths, static, self.start_state(n, start))


RYDBERG = RydbergPlatform()
ION = IonPlatform()
#: every platform by name
PLATFORMS: dict[str, Platform] = {p.name: p for p in (RYDBERG, ION)}


def platform_of(profile_or_name: DeviceProfile | Platform | str) -> Platform:
    """The platform of a profile, or of a platform name (a platform is its own); an unknown name is a
    one-line :class:`ProfileError` listing the known ones."""
    if isinstance(profile_or_name, Platform):
        return profile_or_name
    name = profile_or_name.platform if isinstance(profile_or_name, DeviceProfile) else profile_or_name
    try:
        return PLATFORMS[name]
    except (KeyError, TypeError):
        raise ProfileError(f"platform {name!r}: unknown (known: {', '.join(PLATFORMS)})") from None


def translate(model: SpinModel, profile: DeviceProfile, like: Controls | None = None) -> Controls:
    """The controls that make ``profile``'s device realise ``model`` (an Ising model for a Rydberg
    array, an ion spin model for a chain), within its limits; ``like``: keep that register."""
    return platform_of(profile).translate(model, profile, like)


def realize(controls: Controls, profile: DeviceProfile) -> SpinModel:
    """The spin model ``profile``'s device realises with ``controls`` (the calibration applied)."""
    return platform_of(profile).realize(controls, profile)
