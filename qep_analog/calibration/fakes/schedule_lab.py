"""Fake many-body experiments: whole schedules emulated on a *true* profile, outcome counts back.

The :class:`~qep_analog.calibration.backend.ScheduleBackend` side of the fake labs. A true profile is
one whose calibration holds the hidden values: the same controls act with the true Ω scale, detuning
offsets, C6 or coupling scale, local gains and trap. Preparation is either

- ``"adiabatic"``: the schedule is integrated with QuTiP (what the ramp really prepares), or
- ``"ground"``: the ground state of the final Hamiltonian (a perfectly adiabatic device; fast),

and read out with per-site readout errors and multinomial shot noise. :class:`FakeScheduleLab` does
this on any given true profile, :class:`RunsSchedulesOnTrueProfile` on a fake lab's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.ground_state import final_ground_state
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.errors import ConfigError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import sample_counts
from qep_analog.schema import check_seed
from qep_analog.sequences.schedule import Schedule

Preparation = Literal["adiabatic", "ground"]
PREPARATIONS = ("adiabatic", "ground")


@dataclass
class FakeScheduleLab:
    """Runs schedules on the device of ``true_profile`` with per-site ``readout`` errors (one entry per
    site; a schedule on n qubits uses sites 0 … n−1)."""

    true_profile: DeviceProfile
    readout: ReadoutErrors
    seed: int = 0
    preparation: Preparation = "ground"
    name: str = "fake-lab"
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_seed(self.seed, "fake lab", ConfigError)
        if self.preparation not in PREPARATIONS:
            raise ConfigError(
                f"fake lab: preparation {self.preparation!r} is not one of {', '.join(PREPARATIONS)}"
            )
        self._rng = np.random.default_rng(self.seed)

    @property
    def n_sites(self) -> int:
        return self.readout.n_qubits

    def state(self, schedule: Schedule) -> NDArray:
        """The state the device prepares at the end of ``schedule`` (before readout)."""
        return prepared_state(schedule, self.true_profile, self.preparation, self.n_sites)

    def reseed(self, entropy: Sequence[int]) -> None:
        """Restart the shot noise from ``entropy`` (a resumed run draws what the first run drew)."""
        self._rng = np.random.default_rng(list(entropy))

    def noise_state(self) -> dict[str, Any]:
        """The shot-noise generator's state (a calibration run stores it after each step)."""
        return dict(self._rng.bit_generator.state)

    def restore_noise_state(self, state: dict[str, Any]) -> None:
        """Continue the shot noise from a state :meth:`noise_state` returned."""
        restore_generator(self._rng, state)

    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]:
        return emulate_counts(
            schedules, self.true_profile, shots, self._rng, self.readout, self.preparation
        )


def restore_generator(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Set ``rng`` to a stored ``state`` of its bit generator; a state of another generator or a
    malformed one is a one-line ConfigError."""
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"fake lab: stored noise state not usable ({type(exc).__name__}: {exc})"
        ) from None


def prepared_state(
    schedule: Schedule, profile: DeviceProfile, preparation: Preparation, n_sites: int
) -> NDArray:
    """The state ``profile``'s device prepares at the end of ``schedule`` (before readout)."""
    if schedule.n_qubits > n_sites:
        raise ConfigError(
            f"fake lab: schedule {schedule.label!r} on {schedule.n_qubits} qubits, the lab has "
            f"{n_sites} sites"
        )
    if preparation == "ground":
        return final_ground_state(schedule, profile)
    return QutipEmulator(profile).run(schedule).state


def emulate_counts(
    schedules: Sequence[Schedule],
    profile: DeviceProfile,
    shots: int,
    rng: np.random.Generator,
    readout: ReadoutErrors,
    preparation: Preparation = "ground",
) -> list[NDArray]:
    """Outcome counts of each schedule run on ``profile``'s device, read with per-site ``readout``
    errors (a schedule on n qubits uses sites 0 … n−1)."""
    if preparation not in PREPARATIONS:
        raise ConfigError(f"fake lab: preparation {preparation!r} is not one of {', '.join(PREPARATIONS)}")
    out = []
    for schedule in schedules:
        n = schedule.n_qubits
        state = prepared_state(schedule, profile, preparation, readout.n_qubits)
        errors = ReadoutErrors(readout.false_positive[:n], readout.false_negative[:n])
        out.append(sample_counts(state, schedule.readout, shots, rng, errors))
    return out


class RunsSchedulesOnTrueProfile:
    """The :class:`~qep_analog.calibration.backend.ScheduleBackend` side of a fake lab: whole
    schedules emulated on the lab's ``true_profile()``, prepared as its ``preparation`` says, read
    out with the per-site readout errors of its ``hidden`` parameters, shot noise from its generator."""

    hidden: Any
    preparation: Preparation
    _rng: np.random.Generator

    def true_profile(self) -> DeviceProfile:
        raise NotImplementedError

    def reseed(self, entropy: Sequence[int]) -> None:
        """Restart the shot noise from ``entropy`` (a resumed run draws what the first run drew)."""
        self._rng = np.random.default_rng(list(entropy))

    def noise_state(self) -> dict[str, Any]:
        """The shot-noise generator's state (a calibration run stores it after each step)."""
        return dict(self._rng.bit_generator.state)

    def restore_noise_state(self, state: dict[str, Any]) -> None:
        """Continue the shot noise from a state :meth:`noise_state` returned."""
        restore_generator(self._rng, state)

    def run_schedules(self, schedules: Sequence[Schedule], shots: int) -> list[NDArray]:
        readout = ReadoutErrors(
            np.asarray(self.hidden.false_positive), np.asarray(self.hidden.false_negative)
        )
        return emulate_counts(schedules, self.true_profile(), shots, self._rng, readout, self.preparation)
