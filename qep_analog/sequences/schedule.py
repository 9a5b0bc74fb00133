"""Backend-agnostic schedules: time-dependent controls of one preparation, checked against a profile.

A Rydberg schedule drives ``rabi`` Ω(t), ``detuning`` δ(t) and ``local_amplitude`` Δ(t) (the detuning
map's shared waveform) on static ``positions``, ``local_weights`` and ``phase``. An ion schedule drives
``global_field`` B(t), ``coupling_scale`` c(t) ∈ [0, 1] (J → c·J, i.e. Ω_i → √c·Ω_i) and
``stark_scale`` s(t) (Stark shifts → s·Δ_i) on static ``rabi`` Ω_i, ``beat_note`` μ and
``stark_shifts`` Δ_i. The spin Hamiltonian at time t is ``static + Σ_k w_k(t) · operator_k`` from
:func:`hamiltonian_terms`; at the end it is the realised target Hamiltonian.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qep_analog.devices import ions, rydberg
from qep_analog.devices.platform import ION, RYDBERG, Platform, platform_of
from qep_analog.devices.profile import DeviceProfile, realised_duration
from qep_analog.errors import ConstraintError, StorageError
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.sequences.waveforms import Waveform, on_clock
from qep_analog.storage import read_json, write_json

SCHEMA = "qep-schedule/1"
RYDBERG_CONTROLS = ("rabi", "detuning", "local_amplitude")
ION_CONTROLS = ("global_field", "coupling_scale", "stark_scale")


@dataclass(frozen=True, eq=False)
class Schedule:
    """One preparation: waveforms per control, static settings, readout bases, and where it came from."""

    platform: Literal["rydberg", "ion"]
    device: str
    controls: dict[str, Waveform]
    static: dict[str, Any]
    readout: str
    label: str = "free"
    initial_state: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_qubits(self) -> int:
        return len(self.readout)

    @property
    def platform_spec(self) -> Platform:
        """The :class:`~qep_analog.devices.platform.Platform` of ``platform`` (the name)."""
        return platform_of(self.platform)

    @property
    def duration(self) -> float:
        return max(w.duration for w in self.controls.values())

    def final_values(self) -> dict[str, float]:
        return {name: float(w.values[-1]) for name, w in self.controls.items()}

    def to_document(self) -> dict[str, Any]:
        static = {
            k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for k, v in self.static.items()
        }
        return {
            "platform": self.platform,
            "device": self.device,
            "label": self.label,
            "duration_us": self.duration,
            "readout": self.readout,
            "initial_state": self.initial_state,
            "controls": {name: w.to_document() for name, w in self.controls.items()},
            "static": static,
            "metadata": self.metadata,
        }


def save_schedules(path: str | Path, schedules: list[Schedule]) -> None:
    """Write schedules (e.g. the free, +βε and −βε phases) to one ``qep-schedule/1`` JSON file."""
    write_json(path, {"schema": SCHEMA, "schedules": [s.to_document() for s in schedules]}, SCHEMA)


def load_schedules(path: str | Path) -> list[Schedule]:
    """Read a ``qep-schedule/1`` file; a malformed one raises :class:`StorageError` (one line)."""
    document = read_json(path, SCHEMA)
    try:
        out = []
        for item in document["schedules"]:
            controls = {
                name: Waveform(np.array(w["times_us"]), np.array(w["values_rad_per_us"]))
                for name, w in item["controls"].items()
            }
            static = {k: np.array(v) if isinstance(v, list) else v for k, v in item["static"].items()}
            out.append(
                Schedule(
                    item["platform"], item["device"], controls, static, item["readout"], item["label"],
                    item.get("initial_state", ""), item.get("metadata", {}),
                )
            )  # fmt: skip
    except (KeyError, TypeError, ValueError, ConstraintError) as exc:
        raise StorageError(f"{path}: not a valid schedule file ({type(exc).__name__}: {exc})") from None
    if not out:
        raise StorageError(f"{path}: holds no schedule")
    return out


Terms = tuple[PauliSum, list[tuple[str, PauliSum]]]


def hamiltonian_terms(schedule: Schedule, profile: DeviceProfile) -> Terms:
    """(static part, [(control name, operator)]) with H(t) = static + Σ w_k(t) operator_k (rad/µs)."""
    return _TERMS[schedule.platform_spec](schedule, profile, schedule.n_qubits)


def _rydberg_terms(schedule: Schedule, profile: DeviceProfile, n: int) -> Terms:
    cal = profile.calibration
    positions = np.asarray(schedule.static["positions"], dtype=float)
    couplings = 4 * rydberg.zz_couplings(positions, cal.interaction_scale * profile.rydberg.c6)  # U_ij
    phase = float(schedule.static.get("phase", 0.0))
    static_terms = [(float(couplings[i, j]), f"N{i} N{j}") for i in range(n) for j in range(i + 1, n)]
    offsets = profile.site_offsets(n)
    static_terms += [(-float(offsets[i]), f"N{i}") for i in range(n)]
    drive = [(cal.rabi_scale * math.cos(phase) / 2, f"X{i}") for i in range(n)]
    # Pulser's Ω/2 (cos φ σx − sin φ σy) on (|r⟩, |g⟩) is Ω/2 (cos φ X + sin φ Y) on our |0⟩ = g
    drive += [(cal.rabi_scale * math.sin(phase) / 2, f"Y{i}") for i in range(n)]
    terms = [("rabi", pauli_sum(drive)), ("detuning", pauli_sum((-1.0, f"N{i}") for i in range(n)))]
    if "local_amplitude" in schedule.controls:
        weights = np.asarray(schedule.static["local_weights"], dtype=float)
        gains = profile.local_gains(n)
        local = pauli_sum((-float(gains[i] * weights[i]), f"N{i}") for i in range(n) if weights[i] != 0)
        terms.append(("local_amplitude", local))
    return pauli_sum(t for t in static_terms if t[0] != 0.0), terms


def _ion_terms(schedule: Schedule, profile: DeviceProfile, n: int) -> Terms:
    controls = ions.IonControls(
        np.asarray(schedule.static["rabi"], dtype=float),
        float(schedule.static["beat_note"]),
        0.0,
        np.asarray(schedule.static["stark_shifts"], dtype=float),
    )
    realised = ions.realize(controls, profile)  # fields = site offsets + local Stark part
    offsets = profile.site_offsets(n)
    couplings = pauli_sum(
        (float(realised.couplings[i, j]), f"X{i} X{j}") for i in range(n) for j in range(i + 1, n)
    )
    stark = pauli_sum((float(realised.fields[i] - offsets[i]), f"Z{i}") for i in range(n))
    static = pauli_sum((float(offsets[i]), f"Z{i}") for i in range(n) if offsets[i])
    terms = [
        ("global_field", pauli_sum((1.0, f"Z{i}") for i in range(n))),
        ("coupling_scale", couplings),
        ("stark_scale", stark),
    ]
    return static, terms


#: the operators of each platform's controls
_TERMS = {RYDBERG: _rydberg_terms, ION: _ion_terms}


def hamiltonian_at(schedule: Schedule, profile: DeviceProfile, t: float) -> PauliSum:
    """The spin Hamiltonian H(t) (constants included)."""
    static, terms = hamiltonian_terms(schedule, profile)
    return PauliSum.from_terms([(1.0, static)] + [(float(schedule.controls[k](t)), op) for k, op in terms])


def _fail(schedule: Schedule, message: str) -> ConstraintError:
    return ConstraintError(f"schedule {schedule.label!r} on {schedule.device!r}: {message}")


def check_schedule(schedule: Schedule, profile: DeviceProfile) -> None:
    """Refuse, with one line naming the quantity, value and limit, a schedule the device cannot play:
    too long, off the clock, too fast (slew rates), too strong, or of the wrong sign."""
    clock = profile.capabilities.clock
    duration = schedule.duration
    try:
        realised = realised_duration(profile, duration)
    except ConstraintError as exc:
        raise _fail(schedule, str(exc).split(": ", 1)[1]) from None
    if abs(realised - duration) > 1e-9:
        raise _fail(
            schedule, f"duration {duration:.6g} µs is not a multiple of the clock {clock * 1e3:g} ns"
        )
    for name, waveform in schedule.controls.items():
        off = np.abs(waveform.times / clock - np.round(waveform.times / clock))
        if off.max() > 1e-6:
            t = float(waveform.times[np.argmax(off)])
            raise _fail(
                schedule, f"{name} has a breakpoint at {t:.9g} µs, off the {clock * 1e3:g} ns clock"
            )
    _CHECKS[schedule.platform_spec](schedule, profile)


def _check_rydberg(schedule: Schedule, profile: DeviceProfile) -> None:
    caps = profile.rydberg
    for name, limit in (("rabi", caps.max_rabi_slew), ("detuning", caps.max_detuning_slew)):
        if name in schedule.controls and schedule.controls[name].max_slew > limit * (1 + 1e-9):
            slew = schedule.controls[name].max_slew
            raise _fail(
                schedule, f"{name} changes at {slew:.6g} rad/µs², faster than the slew limit {limit:.6g}"
            )
    rabi = schedule.controls["rabi"]
    if rabi.values.min() < 0:
        raise _fail(schedule, f"Rabi frequency {rabi.values.min():.6g} rad/µs is negative")
    local = schedule.controls.get("local_amplitude")
    weights = np.asarray(schedule.static.get("local_weights", np.zeros(schedule.n_qubits)), dtype=float)
    amplitudes = [0.0] if local is None else [float(local.values.min()), float(local.values.max())]
    detuning = schedule.controls["detuning"]
    extremes = [float(detuning.values[np.argmax(np.abs(detuning.values))])]
    positions = np.asarray(schedule.static["positions"], dtype=float)
    for amplitude in amplitudes:
        controls = rydberg.RydbergControls(
            positions, float(rabi.values.max()), extremes[0], weights, amplitude,
            float(schedule.static.get("phase", 0.0)),
        )  # fmt: skip
        try:
            rydberg.check_controls(controls, profile)
        except ConstraintError as exc:
            raise _fail(schedule, str(exc).split(": ", 1)[1]) from None


def _check_ion(schedule: Schedule, profile: DeviceProfile) -> None:
    scale = schedule.controls["coupling_scale"].values
    if scale.min() < 0 or scale.max() > 1:
        raise _fail(schedule, f"coupling scale {scale.min():.6g}..{scale.max():.6g} leaves [0, 1]")
    stark = float(np.abs(schedule.controls["stark_scale"].values).max())
    field = schedule.controls["global_field"]
    controls = ions.IonControls(
        np.sqrt(scale.max()) * np.asarray(schedule.static["rabi"], dtype=float),
        float(schedule.static["beat_note"]),
        float(field.values[np.argmax(np.abs(field.values))]),
        stark * np.asarray(schedule.static["stark_shifts"], dtype=float),
    )
    try:
        ions.check_controls(controls, profile)
    except ConstraintError as exc:
        raise _fail(schedule, str(exc).split(": ", 1)[1]) from None


#: the limits of each platform's controls, checked over a schedule
_CHECKS = {RYDBERG: _check_rydberg, ION: _check_ion}


def stretch_schedule(
    schedule: Schedule, duration: float, profile: DeviceProfile, metadata: dict[str, Any] | None = None
) -> Schedule:
    """The schedule played in ``duration`` µs: every breakpoint's time scaled by one factor and put on
    the device clock, each control taking its value at the scaled-back time; checked against the
    profile (a faster ramp may break a slew limit). ``metadata`` is added to the schedule's."""
    factor = duration / schedule.duration
    clock = profile.capabilities.clock
    controls = {}
    for name, waveform in schedule.controls.items():
        times = on_clock(waveform.times * factor, clock)
        controls[name] = Waveform(times, waveform(times / factor))
    stretched = dataclasses.replace(
        schedule, controls=controls, metadata={**schedule.metadata, **(metadata or {})}
    )
    check_schedule(stretched, profile)
    return stretched


def initial_state_index(schedule: Schedule) -> int:
    """The basis state the preparation starts from, as an index (qubit 0 the most significant bit)."""
    bits = schedule.initial_state or "0" * schedule.n_qubits
    return int(bits, 2)
