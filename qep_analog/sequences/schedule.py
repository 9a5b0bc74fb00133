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
from qep_analog.model.qep_model import MAX_MAGNITUDE
from qep_analog.schema import OMIT, Field, parse_section, shown
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


#: every stored number within |value| <= MAX_MAGNITUDE (larger ones overflow in slews and distances)
_BOUNDED: dict[str, Any] = {"low": -MAX_MAGNITUDE, "high": MAX_MAGNITUDE}
_WAVEFORM = (
    Field("times_us", "numbers", min_length=2, **_BOUNDED),
    Field("values_rad_per_us", "numbers", min_length=2, **_BOUNDED),
)
#: the static settings of each platform's schedules (lists of numbers: one per qubit)
_STATIC: dict[str, tuple[Field, ...]] = {
    "rydberg": (
        Field("positions", "rows", min_length=1, **_BOUNDED),
        Field("local_weights", "numbers", required=False, default=OMIT, **_BOUNDED),
        Field("phase", required=False, default=OMIT, **_BOUNDED),
    ),
    "ion": (
        Field("rabi", "numbers", **_BOUNDED),
        Field("beat_note", **_BOUNDED),
        Field("stark_shifts", "numbers", **_BOUNDED),
    ),
}
_PER_QUBIT = ("positions", "local_weights", "rabi", "stark_shifts")
#: the controls each platform's schedules must drive (a Rydberg ``local_amplitude`` is optional)
_REQUIRED_CONTROLS = {"rydberg": ("rabi", "detuning"), "ion": ION_CONTROLS}
_CONTROLS = {"rydberg": RYDBERG_CONTROLS, "ion": ION_CONTROLS}
#: what readers take from a schedule's metadata (its other keys are kept as they are)
_METADATA = (
    Field("profile", "text", required=False, default=OMIT),
    Field("model", "text", required=False, default=OMIT),
    Field("relaxed", "flag", required=False, default=OMIT),
    Field("nominal", "flag", required=False, default=OMIT),
    Field("beta", required=False, default=OMIT, **_BOUNDED),
    Field("x", "numbers", required=False, default=OMIT, **_BOUNDED),
    Field("theta", "numbers", required=False, default=OMIT, **_BOUNDED),
    Field("error_signal", "numbers", required=False, default=OMIT, **_BOUNDED),
    Field("duration_source", "text", required=False, default=OMIT),
    Field("recipe", "text", required=False, default=OMIT),
    Field("device", "any", required=False, default=OMIT),  # the profile's provenance
)
#: what readers take from ``metadata.device``
_PROVENANCE = (
    Field("name", "text", required=False, default=OMIT),
    Field("snapshot_hash", "text", required=False, default=OMIT),
)
_FIELDS = (
    Field("platform", "text", choices=tuple(_STATIC)),
    Field("device", "text"),
    Field("label", "text"),
    Field("duration_us", low=0.0, high=MAX_MAGNITUDE, required=False),
    Field("readout", "text"),
    Field("initial_state", "any", required=False, default=""),
    Field("controls", "mapping", value=Field("waveform", "section", fields=_WAVEFORM), min_length=1),
    Field("static", "any"),
    Field("metadata", "any", required=False, default={}),
)


def load_schedules(path: str | Path) -> list[Schedule]:
    """Read a ``qep-schedule/1`` file, every field checked (kinds, lengths per qubit, waveforms, the
    platform's controls and static settings); a malformed or hand-damaged one raises
    :class:`StorageError` in one line naming the file and the value at fault."""
    document = read_json(path, SCHEMA)
    items = parse_section(
        {"schedules": document.get("schedules")},
        (Field("schedules", "list", value=Field("schedule", "any"), min_length=1),),
        str(path),
        StorageError,
    )["schedules"]
    out = [schedule_from_document(item, f"{path}: schedules[{k}]") for k, item in enumerate(items)]
    first = out[0]
    for k, schedule in enumerate(out):
        if (schedule.platform, schedule.device) != (first.platform, first.device):
            raise StorageError(
                f"{path}: schedules[{k}] is for {schedule.platform} device {shown(schedule.device)}, "
                f"schedules[0] for {first.platform} device {shown(first.device)}; a file holds one build"
            )
    return out


def schedule_from_document(item: Any, where: str) -> Schedule:
    """One schedule of a ``qep-schedule/1`` file, checked (see :func:`load_schedules`)."""
    values = parse_section(item, _FIELDS, where, StorageError)
    platform = values["platform"]
    n = _qubits(values["readout"], values["initial_state"], where)
    controls = values["controls"]
    unknown = sorted(set(controls) - set(_CONTROLS[platform]))
    missing = [name for name in _REQUIRED_CONTROLS[platform] if name not in controls]
    if unknown or missing:
        raise StorageError(
            f"{where}: controls {sorted(controls)} of a {platform} schedule: "
            + (f"unknown {unknown}" if unknown else f"missing {missing}")
            + f" (valid: {', '.join(_CONTROLS[platform])})"
        )
    static = parse_section(values["static"], _STATIC[platform], where, StorageError, "static")
    _check_static(static, n, "local_amplitude" in controls, where)
    metadata = values["metadata"]
    _check_read_keys(metadata, _METADATA, where, "metadata")
    if "device" in metadata:
        _check_read_keys(metadata["device"], _PROVENANCE, where, "metadata.device")
    try:
        waveforms = {
            name: Waveform(np.array(w["times_us"]), np.array(w["values_rad_per_us"]))
            for name, w in controls.items()
        }
    except ConstraintError as exc:
        raise StorageError(f"{where}: controls: {exc}") from None
    arrays = {k: np.array(v) if isinstance(v, list) else v for k, v in static.items()}
    return Schedule(
        platform, values["device"], waveforms, arrays, values["readout"], values["label"],
        values["initial_state"], metadata,
    )  # fmt: skip


def _check_read_keys(section: Any, fields: tuple[Field, ...], where: str, path: str) -> None:
    """``section`` is a mapping whose keys named by ``fields`` follow them (others are not read)."""
    if not isinstance(section, dict):
        raise StorageError(f"{where}: {path} = {shown(section)} is not a mapping")
    names = {f.name for f in fields}
    parse_section({k: v for k, v in section.items() if k in names}, fields, where, StorageError, path)


def _qubits(readout: str, initial_state: Any, where: str) -> int:
    """The number of qubits of a stored schedule: its readout bases, matched by its initial state."""
    if set(readout) - set("XYZ"):
        raise StorageError(f"{where}: readout = {shown(readout)} is not a string of X, Y, Z")
    n = len(readout)
    if not isinstance(initial_state, str) or (
        initial_state and (len(initial_state) != n or set(initial_state) - set("01"))
    ):
        raise StorageError(
            f"{where}: initial_state = {shown(initial_state)} is not {n} bits of 0 and 1 (or empty)"
        )
    return n


def _check_static(static: dict[str, Any], n: int, local: bool, where: str) -> None:
    """One entry per qubit in each per-qubit setting; positions with one to three coordinates."""
    for key in _PER_QUBIT:
        if key in static and len(static[key]) != n:
            raise StorageError(f"{where}: static.{key} holds {len(static[key])} entries for {n} qubits")
    dims = {len(row) for row in static.get("positions", [])}
    if len(dims) > 1 or not dims <= {1, 2, 3}:
        raise StorageError(f"{where}: static.positions are not rows of one, two or three coordinates")
    if local and "local_weights" not in static:
        raise StorageError(f"{where}: a local_amplitude control needs static.local_weights")


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
