"""Fake many-body experiments: whole schedules emulated on a *true* profile, outcome counts back.

The :class:`~qep_analog.calibration.backend.ScheduleBackend` side of the fake labs. A true profile is
one whose calibration holds the hidden values: the same controls act with the true Ω scale, detuning
offsets, C6 or coupling scale, local gains and trap. Preparation is either

- ``"adiabatic"``: the schedule is integrated with QuTiP (what the ramp really prepares), or
- ``"ground"``: the ground state of the final Hamiltonian (a perfectly adiabatic device; fast),

and read out with per-site readout errors and multinomial shot noise. :class:`FakeScheduleLab` does
this on any given true profile, :class:`RunsSchedulesOnTrueProfile` on a fake lab's own.

Noise (``sources``, :data:`LAB_SOURCES`: on for the fake labs' own schedules, off by default for a
:class:`FakeScheduleLab` given a profile): an adiabatic preparation is evolved with the true
profile's quasi-static detuning offsets (rms √2/T2* per site and shot), shot-to-shot amplitude
jitter (the drive scaled by a = max(0, 1 + σξ), ion couplings by a²) and Markovian dephasing (only
where the true profile has a finite ``markovian_dephasing_time``), drawn and evolved by the
emulator's own trajectories (:func:`~qep_analog.emulation.magnus.draw_trajectories`,
:func:`~qep_analog.emulation.magnus.run_trajectories`, as ``QutipEmulator.run(..., noise=...)``
draws them) from the lab's generator: each shot reads its own trajectory, so the counts are those of
shot-to-shot noise (beyond :data:`MAX_LAB_TRAJECTORIES` shots of one schedule, consecutive shots
share a trajectory, ⌈shots/R⌉ at most, and the counts vary a little more than binomially). The
``"ground"`` preparation is the ideal ground state of the programmed final Hamiltonian: no
evolution, so none of these sources acts on it, only the readout errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.ground_state import final_ground_state
from qep_analog.devices.noise_sources import NoiseRates
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation import magnus
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.errors import ConfigError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import sample_counts
from qep_analog.schema import check_seed
from qep_analog.sequences.schedule import Schedule

Preparation = Literal["adiabatic", "ground"]
PREPARATIONS = ("adiabatic", "ground")
#: the noise sources of a fake lab's schedules (each where the true profile gives it a value): the
#: hidden T2* as quasi-static offsets, the amplitude jitter and Markovian dephasing; the readout
#: errors are the lab's own per-site ones
LAB_SOURCES = frozenset({"detuning", "amplitude_jitter", "dephasing"})
#: the most trajectories one schedule's shots are drawn from (one per shot up to this many shots)
MAX_LAB_TRAJECTORIES = 4096


@dataclass
class FakeScheduleLab:
    """Runs schedules on the device of ``true_profile`` with per-site ``readout`` errors (one entry per
    site; a schedule on n qubits uses sites 0 … n−1). ``noise``: whether an adiabatic preparation
    carries the true profile's :data:`LAB_SOURCES` (off by default: the profile given here is a
    file's, its noise model nobody's hidden truth)."""

    true_profile: DeviceProfile
    readout: ReadoutErrors
    seed: int = 0
    preparation: Preparation = "ground"
    name: str = "fake-lab"
    noise: bool = False
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
        sources = LAB_SOURCES if self.noise else frozenset()
        return emulate_counts(
            schedules, self.true_profile, shots, self._rng, self.readout, self.preparation, sources
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


def prepared_state_check(schedule: Schedule, n_sites: int) -> None:
    """A schedule on more qubits than the lab's ``n_sites`` is a one-line ConfigError."""
    if schedule.n_qubits > n_sites:
        raise ConfigError(
            f"fake lab: schedule {schedule.label!r} on {schedule.n_qubits} qubits, the lab has "
            f"{n_sites} sites"
        )


def prepared_state(
    schedule: Schedule, profile: DeviceProfile, preparation: Preparation, n_sites: int
) -> NDArray:
    """The state ``profile``'s device prepares at the end of ``schedule`` (before readout), noiseless."""
    prepared_state_check(schedule, n_sites)
    if preparation == "ground":
        return final_ground_state(schedule, profile)
    return QutipEmulator(profile).run(schedule).state


def shot_states(
    schedule: Schedule,
    profile: DeviceProfile,
    trajectories: int,
    rng: np.random.Generator,
    sources: frozenset[str] = LAB_SOURCES,
) -> NDArray:
    """Final states (rows, 2^n) of ``schedule`` evolved on ``profile``'s device with the noise
    ``sources`` of its noise model: ``trajectories`` rows drawn from ``rng`` as the emulator draws
    them, or one row when no source draws anything."""
    rates = NoiseRates.of(profile.noise, sources)
    psi0 = magnus.basis_state(schedule)
    hamiltonian = magnus.SplitHamiltonian.of(schedule, profile)
    if not rates.stochastic:
        return magnus.evolve(hamiltonian, psi0).state[None, :]
    draws = magnus.draw_trajectories(
        trajectories, schedule.n_qubits, schedule.duration, rates.dephasing_rate,
        rates.amplitude_jitter, rng, rates.detuning_rms,
    )  # fmt: skip
    spec = schedule.platform_spec
    steps = magnus.step_grid(hamiltonian, magnus.TRAJECTORY_STRENGTH)
    states = magnus.run_trajectories(
        hamiltonian, psi0, draws, spec.drive_control, steps, magnus.TRAJECTORY_TOLERANCE, None,
        spec.drive_power,
    ).state  # fmt: skip
    return np.asarray(states / np.linalg.norm(states, axis=1, keepdims=True))


def emulate_counts(
    schedules: Sequence[Schedule],
    profile: DeviceProfile,
    shots: int,
    rng: np.random.Generator,
    readout: ReadoutErrors,
    preparation: Preparation = "ground",
    sources: frozenset[str] = frozenset(),
) -> list[NDArray]:
    """Outcome counts of each schedule run on ``profile``'s device, read with per-site ``readout``
    errors (a schedule on n qubits uses sites 0 … n−1). An adiabatic preparation carries the noise
    ``sources`` of the profile's noise model (see the module doc): each shot its own trajectory, up
    to :data:`MAX_LAB_TRAJECTORIES`; the ground state carries none."""
    if preparation not in PREPARATIONS:
        raise ConfigError(f"fake lab: preparation {preparation!r} is not one of {', '.join(PREPARATIONS)}")
    out = []
    for schedule in schedules:
        n = schedule.n_qubits
        errors = ReadoutErrors(readout.false_positive[:n], readout.false_negative[:n])
        if preparation == "ground" or not sources:
            state = prepared_state(schedule, profile, preparation, readout.n_qubits)
            out.append(sample_counts(state, schedule.readout, shots, rng, errors))
            continue
        prepared_state_check(schedule, readout.n_qubits)
        count = max(1, min(shots, MAX_LAB_TRAJECTORIES))
        states = shot_states(schedule, profile, count, rng, sources)
        rows = states.shape[0]
        per_row = np.full(rows, shots // rows)
        per_row[: shots % rows] += 1
        counts = sample_counts(states, schedule.readout, per_row, rng, errors)
        out.append(np.asarray(counts).reshape(rows, -1).sum(axis=0))
    return out


class RunsSchedulesOnTrueProfile:
    """The :class:`~qep_analog.calibration.backend.ScheduleBackend` side of a fake lab: whole
    schedules emulated on the lab's ``true_profile()``, prepared as its ``preparation`` says (an
    adiabatic one with the hidden noise of :data:`LAB_SOURCES`: T2*, amplitude jitter, Markovian
    dephasing if hidden), read out with the per-site readout errors of its ``hidden`` parameters,
    trajectories and shot noise from its generator."""

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
        return emulate_counts(
            schedules, self.true_profile(), shots, self._rng, readout, self.preparation, LAB_SOURCES
        )
