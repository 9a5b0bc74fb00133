"""Rydberg schedules as Amazon Braket Analog Hamiltonian Simulation (AHS) programs, the format QuEra's
Aquila is programmed in (``braket.ir.ahs.program`` version 1, SI units, validated with the
``amazon-braket-schemas`` package).

Braket's Hamiltonian (rad/s, metres; |g⟩ = our |0⟩, |r⟩ = our |1⟩, n_k = |r⟩⟨r|_k):

    H(t) = Σ_k Ω/2 (e^{iφ} |g⟩⟨r|_k + e^{−iφ} |r⟩⟨g|_k) − Δ_global Σ_k n_k − Δ_local Σ_k h_k n_k
           + Σ_{k<l} C6/d_kl⁶ n_k n_l,

and ours (:mod:`qep_analog.devices.rydberg`, rad/µs, µm, Pulser's phase convention) is
Σ Ω/2 (cos φ X + sin φ Y) − Σ (δ + w_i Δ) n_i + Σ C6/r⁶ n n, while Braket's drive is
e^{iφ}|0⟩⟨1| + e^{−iφ}|1⟩⟨0| = cos φ X − sin φ Y: the two phases have opposite signs, which the
program never shows (it carries φ = 0, below). So, term by term: amplitude = Ω, detuning = δ, local detuning
magnitude = Δ with pattern h_k = w_k, sites = positions — the programmed values, as Pulser gets them;
the device applies its calibration (gains, offsets, scales) itself. The local term takes Δ ≥ 0 only
(Aquila's map is positive); a negative map exports to Pulser.

What AHS adds to a schedule:

* **Phase.** Aquila's phase series must start at 0. Our phase is constant, and a constant φ is a
  gauge: H(φ) = U H(0) U† with U = Π_k exp(−iφ n_k), diagonal in Z. The preparation starts in a Z
  basis state and AHS reads in Z only, so φ = 0 gives the same counts; the program carries φ = 0.
* **Switching off.** The amplitude (and the local detuning) must start and end at 0. Our ramps start
  at 0 and end at the target's Ω (and Δ), so the program appends a switch-off: Ω to 0 at the
  profile's Rabi slew limit (δ and Δ held), then Δ to 0 at the detuning slew limit (with Ω = 0 that
  leaves every Z outcome alone). Each step lasts at least the profile's minimum time step
  (``min_pulse``) and is on the clock; a schedule that leaves no room for it within the device's
  longest program is refused. Unlike our emulators, which read out at the end of the ramp, the
  device reads out after the Rabi switch-off (tens of ns at the slew limit).
* **Time steps.** Breakpoints closer than the minimum time step are thinned out (the values kept
  are the schedule's; AHS plays them linearly in between); a schedule that thinning would move by
  more than :data:`RESAMPLE_RTOL` of a control's range is refused.
* **Readout.** AHS measures every atom in Z; a schedule read in X or Y is refused, and so is one that
  does not start with every atom in the ground state.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.devices.platform import RYDBERG
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError, StorageError
from qep_analog.sequences.schedule import Schedule
from qep_analog.storage import atomic_write_text, load_json

#: the export format this module writes (``Platform.exporter_for``)
EXPORTER = "braket-ahs"
#: the schema header of the program IR
HEADER = {"name": "braket.ir.ahs.program", "version": "1"}
#: the largest move of a control by thinning its breakpoints, relative to its largest |value|
RESAMPLE_RTOL = 1e-3
_PER_US = 1e6  # rad/µs → rad/s
_UM = 1e-6  # µm → m


def _fail(schedule: Schedule, message: str) -> ConfigError:
    return ConfigError(f"schedule {schedule.label!r} on {schedule.device!r}: {message}")


def _seconds(ticks: NDArray, clock_us: float) -> list[float]:
    """Clock ticks as seconds, each the float nearest the exact decimal (so 5e-08, not 5.0000001e-08)."""
    clock = Decimal(repr(clock_us)) / Decimal(10**6)
    return [float(Decimal(int(k)) * clock) for k in ticks]


def _thin(ticks: NDArray, min_step: int) -> NDArray:
    """Breakpoints (clock ticks, ascending, 0 first) keeping the first and last and dropping any closer
    than ``min_step`` to the one kept before it (or to the last)."""
    kept = [int(ticks[0])]
    last = int(ticks[-1])
    for tick in ticks[1:-1]:
        if tick - kept[-1] >= min_step and last - tick >= min_step:
            kept.append(int(tick))
    if last > kept[-1]:
        kept.append(last)
    return np.asarray(kept, dtype=np.int64)


def _series(times_s: list[float], values: NDArray) -> dict[str, list[float]]:
    return {"values": [float(v) for v in values], "times": list(times_s)}


def _uniform(times_s: list[float], values: NDArray) -> dict[str, Any]:
    return {"time_series": _series(times_s, values), "pattern": "uniform"}


def to_ahs_program(schedule: Schedule, profile: DeviceProfile) -> dict[str, Any]:
    """The schedule as a Braket AHS program (``braket.ir.ahs.program`` v1 as a JSON-ready dict, SI
    units), checked against Braket's schema; refusals are one-line :class:`ConfigError`s."""
    if schedule.platform_spec is not RYDBERG:
        raise _fail(schedule, "only Rydberg schedules export to Braket AHS")
    if set(schedule.readout) - {"Z"}:
        raise _fail(
            schedule,
            f"readout basis {schedule.readout} cannot be expressed in Braket AHS (it reads in Z only)",
        )
    if "1" in schedule.initial_state:
        raise _fail(
            schedule,
            f"starts from {schedule.initial_state}; a Braket AHS program starts with every atom in the "
            "ground state",
        )
    caps = profile.rydberg
    positions = np.asarray(schedule.static["positions"], dtype=float)
    positions = positions.reshape(len(positions), -1)
    if positions.shape[1] > 2:
        raise _fail(schedule, f"a {positions.shape[1]}D register; Braket AHS registers are 2D")
    sites = np.zeros((len(positions), 2))
    sites[:, : positions.shape[1]] = positions * _UM

    clock = caps.clock
    rabi, detuning = schedule.controls["rabi"], schedule.controls["detuning"]
    weights = np.asarray(schedule.static.get("local_weights", np.zeros(len(positions))), dtype=float)
    local = schedule.controls.get("local_amplitude")
    if local is not None and not (weights.size and weights.max() > 0 and np.any(local.values != 0)):
        local = None  # no site or no time sees it
    controls = {"rabi": rabi, "detuning": detuning} | ({"local_amplitude": local} if local else {})

    # the schedule's breakpoints on the clock, thinned to the minimum time step
    ticks = np.unique(
        np.concatenate([np.round(w.times / clock).astype(np.int64) for w in controls.values()])
    )
    min_step = max(1, math.ceil(caps.min_pulse / clock - 1e-9))
    kept = _thin(ticks, min_step)
    for name, waveform in controls.items():
        exact = waveform(ticks * clock)
        played = np.interp(ticks, kept, waveform(kept * clock))
        moved = float(np.abs(played - exact).max())
        scale = float(np.abs(waveform.values).max())
        if moved > RESAMPLE_RTOL * scale:
            raise _fail(
                schedule,
                f"breakpoints closer than the minimum time step {caps.min_pulse * 1e3:g} ns: thinning them "
                f"moves {name} by {moved:.3g} rad/µs (> {RESAMPLE_RTOL:g} of its range); build it with "
                "fewer segments",
            )

    # the drive starts off and is switched off at the end
    for name, waveform in controls.items():
        if name != "detuning" and waveform.values[0] != 0:
            raise _fail(
                schedule, f"{name} starts at {waveform.values[0]:.6g} rad/µs; Braket AHS starts it at 0"
            )
    if local is not None and local.values.min() < 0:
        raise _fail(
            schedule,
            f"local detuning {local.values.min():.6g} rad/µs is negative; Braket's local detuning "
            "(−Δ_local Σ h_k n_k) takes Δ_local ≥ 0 (a negative map exports to Pulser)",
        )
    end = int(kept[-1])
    rabi_end = float(rabi(end * clock))
    local_end = float(local(end * clock)) if local is not None else 0.0
    rabi_off = (
        0 if rabi_end == 0 else max(min_step, math.ceil(rabi_end / caps.max_rabi_slew / clock - 1e-9))
    )
    local_off = (
        0 if local_end == 0 else max(min_step, math.ceil(local_end / caps.max_detuning_slew / clock - 1e-9))
    )
    tail = [end + rabi_off] if rabi_off else []
    tail += [end + rabi_off + local_off] if local_off else []
    total = (end + rabi_off + local_off) * clock
    if total > caps.max_duration * (1 + 1e-12):
        off = (rabi_off + local_off) * clock
        raise _fail(
            schedule,
            f"switching the drive off after its {end * clock:.6g} µs (a Braket AHS program ends with "
            f"Ω = 0 and no local detuning) takes {off * 1e3:.6g} ns more, beyond the device's "
            f"{caps.max_duration:.6g} µs: build it at most {caps.max_duration - off:.6g} µs long",
        )
    all_ticks = np.concatenate([kept, np.asarray(tail, dtype=np.int64)])
    times_s = _seconds(all_ticks, clock)
    after = len(tail)

    def values(waveform: Any, tail_values: list[float]) -> NDArray:
        return np.concatenate([waveform(kept * clock), tail_values[:after]]) * _PER_US

    detuning_end = float(detuning(end * clock))
    driving = {
        "amplitude": _uniform(times_s, values(rabi, [0.0, 0.0])),
        "phase": _uniform([times_s[0], times_s[-1]], np.zeros(2)),  # a constant phase is a gauge
        "detuning": _uniform(times_s, values(detuning, [detuning_end, detuning_end])),
    }
    local_fields = []
    if local is not None:
        local_tail = [local_end, 0.0] if rabi_off else [0.0]
        magnitude = {
            "time_series": _series(times_s, values(local, local_tail)),
            "pattern": [float(w) for w in weights],
        }
        local_fields.append({"magnitude": magnitude})
    document = {
        "braketSchemaHeader": dict(HEADER),
        "setup": {"ahs_register": {"sites": sites.tolist(), "filling": [1] * len(sites)}},
        "hamiltonian": {"drivingFields": [driving], "localDetuning": local_fields},
    }
    validate_ahs_program(document, f"schedule {schedule.label!r}")
    return document


def validate_ahs_program(document: Any, where: str = "Braket AHS program") -> None:
    """Check ``document`` against Braket's AHS program schema (``braket.ir.ahs.Program``); a
    failure is a one-line :class:`StorageError`."""
    try:
        from braket.ir.ahs import Program
    except ImportError:
        raise ConfigError(
            "Braket AHS export needs the package amazon-braket-schemas (pip install amazon-braket-schemas)"
        ) from None
    if not isinstance(document, dict) or document.get("braketSchemaHeader") != HEADER:
        found = document.get("braketSchemaHeader") if isinstance(document, dict) else type(document)
        raise StorageError(f"{where}: braketSchemaHeader {found!r}, expected {HEADER}")
    parse = getattr(Program, "model_validate", None) or Program.parse_obj
    try:
        parse(document)
    except Exception as exc:  # pydantic's ValidationError (v1 or v2 API)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise StorageError(f"{where}: not a valid Braket AHS program ({'; '.join(lines[:3])})") from None


def export_ahs_json(schedule: Schedule, profile: DeviceProfile, path: str | Path) -> dict[str, Any]:
    """Write the schedule's Braket AHS program (:func:`to_ahs_program`) as JSON, atomically; returns
    the document. It loads with ``braket.ir.ahs.Program.parse_raw``."""
    document = to_ahs_program(schedule, profile)
    atomic_write_text(path, ahs_json_text(document))
    return document


def ahs_json_text(document: dict[str, Any]) -> str:
    """The file text of a Braket AHS program (:func:`to_ahs_program`)."""
    return json.dumps(document, indent=1, allow_nan=False)


def read_ahs_json(path: str | Path) -> dict[str, Any]:
    """Read a Braket AHS program file and check it against the schema (one-line StorageError)."""
    document = load_json(path)
    validate_ahs_program(document, str(path))
    return dict(document)
