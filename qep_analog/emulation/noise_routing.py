"""A run with Pulser's ``NoiseModel``: our emulator where it has every channel, pulser-simulation where
it lacks one (with a one-line warning saying which)."""

from __future__ import annotations

import dataclasses
import warnings

import pulser

from qep_analog.devices.profile import DeviceProfile
from qep_analog.devices.pulser_noise import noise_model_from_pulser, pulser_only_channels, sources_of
from qep_analog.emulation.qutip_emulator import EmulationResult, QutipEmulator
from qep_analog.errors import ConfigError, QEPWarning
from qep_analog.model.pauli import PauliSum
from qep_analog.sequences.schedule import Schedule


class RoutedToPulserWarning(QEPWarning):
    """A noise channel our emulator lacks sent the run to pulser-simulation."""


def emulate_noise_model(
    schedule: Schedule,
    profile: DeviceProfile,
    noise_model: pulser.NoiseModel,
    observables: dict[str, PauliSum] | None = None,
    *,
    realisations: int = 16,
    seed: int | None = None,
    method: str = "magnus",
) -> EmulationResult:
    """Emulate ``schedule`` under ``noise_model``: with our emulator (``method``) on the profile with
    that noise section and exactly its channels switched on, or — when the model has a channel our
    emulator lacks (:func:`~qep_analog.devices.pulser_noise.pulser_only_channels`) — with
    pulser-simulation, ``realisations`` trajectories, and a warning naming the channels. A schedule
    Pulser cannot run (an ion chain's, or one not starting from |0…0⟩) is then a one-line
    :class:`ConfigError`."""
    lacking = pulser_only_channels(noise_model)
    if not lacking:
        noisy = dataclasses.replace(profile, noise=noise_model_from_pulser(noise_model))
        emulator = QutipEmulator(noisy, method=method)
        sources = sources_of(noise_model)
        return emulator.run(schedule, observables, noise=sources, realisations=realisations, seed=seed)
    if "pulser" not in schedule.platform_spec.exporters:
        raise ConfigError(
            f"schedule {schedule.label!r}: noise {', '.join(lacking)} is not in our emulator and "
            "pulser-simulation runs Rydberg arrays only"
        )
    from qep_analog.emulation.pulser_backend import run_pulser

    warnings.warn(
        RoutedToPulserWarning(
            f"noise {', '.join(lacking)}: not in our emulator; schedule {schedule.label!r} runs on "
            "pulser-simulation"
        ),
        stacklevel=2,
    )
    return run_pulser(
        schedule, profile, observables, noise_model=noise_model, trajectories=realisations, seed=seed
    )
