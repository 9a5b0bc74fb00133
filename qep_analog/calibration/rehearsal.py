"""A rehearsal of a runcard: every routine acquires against a stand-in of the backend that measures
nothing and returns empty counts of the right shapes.

What a routine checks before it measures — its parameters against the device's limits and the
backend's sites, the schedules it builds, a runcard's targets — is checked this way for every step
before a run creates its folder or spends any device time (an adaptive routine, which chooses its
experiments from what it measured, up to its first experiment). The stand-in also checks what each
experiment would play against the profile's limits (:func:`limits`: Rabi frequency, detuning or
field, local field, duration; schedules by
:func:`~qep_analog.sequences.schedule.check_schedule`), whatever routine asks for it: a breach is one
line naming the step and the runcard parameter behind it (``rabi_MHz = 10 exceeds the limit 2 MHz of
device 'fresnel-like' (max_rabi)``). A relaxed profile lifts these limits, so it refuses none. The
rehearsal runs every step against the profile in force when the run starts; a check that depends on
what an earlier step measures can still stop a run later (its folder then says where and why: see
:func:`qep_analog.calibration.runner.run_state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import CalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.registry import routine_named
from qep_analog.calibration.routine import Routine, parameter_fields
from qep_analog.calibration.runcard import Runcard, RunStep
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError, ConstraintError
from qep_analog.sequences.schedule import Schedule, check_schedule
from qep_analog.units import from_internal, keys_for, split_key, suffix_label, with_unit


class FirstExperiment(Exception):
    """Raised by a stand-in that rehearses up to the first experiment only."""


@dataclass(frozen=True)
class Limit:
    """A limit of the device on what an experiment plays: the largest size of ``quantity`` (internal
    units of ``dimension``), the profile field it comes from, and the word a runcard parameter that
    sets it has in its name (``rabi``: ``rabi_MHz``)."""

    quantity: str
    bound: float
    field: str
    dimension: str
    hint: str


def limits(profile: DeviceProfile) -> dict[str, Limit]:
    """The limits of ``profile`` on the calibration experiments' controls, by control: ``rabi``,
    ``detuning`` (on ions a carrier detuning δ moves the qubit as a global field δ/2 does), ``local``
    (the site-resolved field, when the device has one) and ``duration``."""
    freq, caps = "angular_frequency", profile.capabilities
    bound, field = profile.platform_spec.carrier_detuning_limit(profile)
    detuning = Limit("|detuning|", bound, field, freq, "detuning")
    out = {
        "rabi": Limit("Rabi frequency", caps.max_rabi, "max_rabi", freq, "rabi"),
        "detuning": detuning,
        "duration": Limit("duration", caps.max_duration, "max_duration", "time", "duration"),
    }
    local = profile.platform_spec.local_field(profile)
    if local is not None:
        size = f"|{local.what}|"
        out["local"] = Limit(size, local.max_per_site, "local field per site", freq, "amplitude")
    return out


class BeyondLimit(Exception):
    """Raised by a stand-in asked to play ``value`` (internal units) beyond ``limit``."""

    def __init__(self, limit: Limit, value: float) -> None:
        super().__init__(limit.quantity)
        self.limit = limit
        self.value = value


class StandInBackend:
    """Answers every experiment of the backend protocols with zero counts, without measuring; an
    experiment the real ``backend`` cannot run is a one-line :class:`CalibrationError`, one that
    would play a control beyond the limits of ``profile`` (:func:`limits`) raises
    :class:`BeyondLimit`. With ``first_only``, the first experiment ends the rehearsal
    (:class:`FirstExperiment`): an adaptive routine's later experiments depend on counts a stand-in
    does not have."""

    def __init__(
        self, backend: CalibrationBackend, profile: DeviceProfile, first_only: bool = False
    ) -> None:
        self._backend = backend
        self._profile = profile
        self._limits = limits(profile)
        self._first_only = first_only
        self.name = backend.name

    def _within(self, **controls: Any) -> None:
        """Each control (values in internal units) within its limit, by :func:`limits`' names."""
        for name, values in controls.items():
            limit = self._limits.get(name)
            largest = float(np.max(np.abs(np.asarray(values, dtype=float)), initial=0.0))
            if limit is not None and largest > limit.bound * (1 + 1e-9):
                raise BeyondLimit(limit, largest)

    @property
    def n_sites(self) -> int:
        return self._backend.n_sites

    def _zeros(self, experiment: str, points: int, columns: int) -> NDArray:
        if not callable(getattr(self._backend, experiment, None)):
            raise CalibrationError(f"backend {self.name!r} cannot run {experiment} experiments")
        if self._first_only:
            raise FirstExperiment
        return np.zeros((points, columns), dtype=np.int64)

    def square_pulse(self, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int) -> NDArray:
        self._within(rabi=rabis, detuning=detunings, duration=durations)
        points = np.broadcast(np.asarray(durations), np.asarray(rabis), np.asarray(detunings)).size
        return self._zeros("square_pulse", points, self.n_sites)

    def ramsey(self, delays: NDArray, detuning: float, shots: int) -> NDArray:
        self._within(detuning=detuning, duration=delays)
        return self._zeros("ramsey", len(delays), self.n_sites)

    def readout(self, prepared: NDArray, shots: int) -> NDArray:
        return self._zeros("readout", len(prepared), self.n_sites)

    def pair_pulse(
        self, distance: float, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray:
        self._within(rabi=rabis, detuning=detunings, duration=durations)
        points = np.broadcast(np.asarray(durations), np.asarray(rabis), np.asarray(detunings)).size
        return self._zeros("pair_pulse", points, 1)

    def pair_pulses(
        self, positions: NDArray, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray:
        self._within(rabi=rabis, detuning=detunings, duration=durations)
        points = np.broadcast(np.asarray(durations), np.asarray(rabis), np.asarray(detunings)).size
        return self._zeros("pair_pulses", points, len(positions) // 2)

    def local_ramsey(
        self, delays: NDArray, detuning: float, site: int, amplitude: float, shots: int
    ) -> NDArray:
        self._within(detuning=detuning, local=amplitude, duration=delays)
        return self._zeros("local_ramsey", len(delays), self.n_sites)

    def local_ramsey_sites(
        self, delays: NDArray, detuning: float, sites: tuple[int, ...], amplitude: float, shots: int
    ) -> NDArray:
        self._within(detuning=detuning, local=amplitude, duration=delays)
        return self._zeros("local_ramsey_sites", len(delays), self.n_sites)

    def sideband_scan(self, detunings: NDArray, rabi: float, duration: float, shots: int) -> NDArray:
        """The probe's detunings, near the motional modes, are a sideband's, not a carrier's: not
        checked against the carrier's detuning limit."""
        self._within(rabi=rabi, duration=duration)
        return self._zeros("sideband_scan", len(detunings), self.n_sites)

    def ms_pair(
        self, pair: tuple[int, int], durations: NDArray, rabi: float, beat_note: float, shots: int
    ) -> NDArray:
        self._within(rabi=rabi, duration=durations)
        return self._zeros("ms_pair", len(durations), 1)

    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]:
        for schedule in schedules:
            if schedule.n_qubits > self.n_sites:
                raise CalibrationError(
                    f"backend {self.name!r}: schedule {schedule.label!r} on {schedule.n_qubits} "
                    f"qubits, the backend has {self.n_sites} sites"
                )
            try:
                check_schedule(schedule, self._profile)
            except ConstraintError as exc:
                raise CalibrationError(str(exc)) from None
        self._zeros("run_schedules", 0, 1)
        return [np.zeros(1 << schedule.n_qubits, dtype=np.int64) for schedule in schedules]


def selected(
    runcard: Runcard, routine: Routine, data: CalibrationData, backend: CalibrationBackend
) -> CalibrationData:
    """``data`` restricted to the runcard's targets, when the routine's columns are the backend's
    sites."""
    if runcard.targets and routine.site_columns and data.n_sites == backend.n_sites:
        return data.select(runcard.targets)
    return data


def rehearse(
    runcard: Runcard,
    steps: Sequence[RunStep],
    profile: DeviceProfile,
    backend: CalibrationBackend,
) -> None:
    """Acquire every step of ``steps`` (of ``runcard``) on a :class:`StandInBackend` of ``backend``
    against the effective ``profile``: the first failed check is raised as it would be in the run,
    a control beyond the device's limits as one line naming the step (its index in the runcard) and
    the parameter behind it (:func:`beyond_limit`)."""
    first = len(runcard.steps) - len(steps)  # ``steps`` are the runcard's last ones
    for index, step in enumerate(steps, start=first):
        routine = routine_named(step.routine, profile.platform)
        stand_in: Any = StandInBackend(backend, profile, first_only=routine.adaptive)
        try:
            data = routine.acquire(step.parameters, stand_in, profile)
        except FirstExperiment:
            continue
        except BeyondLimit as exc:
            where = f"runcard {runcard.name!r}: routines[{index}]: routine {step.routine!r}"
            raise CalibrationError(f"{where}: {beyond_limit(step, exc, profile)}") from None
        selected(runcard, routine, data, backend)


def beyond_limit(step: RunStep, exc: BeyondLimit, profile: DeviceProfile) -> str:
    """What went beyond the limit, in the runcard's words: the parameter of ``step`` of the limit's
    dimension beyond it (the one named like the limit's control first) in the unit it was written
    in; the value played when a routine's rule chose it."""
    limit, device = exc.limit, profile.label
    written = {parts[0]: key for key in step.keys if (parts := split_key(key)) is not None}
    beyond = []
    for field in parameter_fields(type(step.parameters)):
        value = getattr(step.parameters, field.name)
        if field.dimension != limit.dimension or not isinstance(value, int | float):
            continue
        if abs(value) > limit.bound * (1 + 1e-9):
            keys = keys_for(field.name, field.dimension)
            key = written.get(field.name) or next(k for k, factor in keys.items() if factor == 1.0)
            beyond.append((limit.hint not in field.name, key, float(value)))
    if not beyond:
        return (
            f"{limit.quantity} {with_unit(exc.value, limit.dimension)} (set by the routine's rules) "
            f"exceeds the limit {with_unit(limit.bound, limit.dimension)} of device {device!r} "
            f"({limit.field})"
        )
    _, key, value = min(beyond)
    parts = split_key(key)
    assert parts is not None  # a dimensional parameter's key has a unit suffix
    _, dimension, suffix = parts
    shown, bound = from_internal(value, dimension, suffix), from_internal(limit.bound, dimension, suffix)
    return (
        f"{key} = {shown:g} exceeds the limit {bound:g} {suffix_label(suffix)} of device {device!r} "
        f"({limit.field})"
    )
