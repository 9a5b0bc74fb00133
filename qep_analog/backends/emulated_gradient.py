"""QEP through emulated preparation: the gradient from the final states of the free, +βε and −βε
schedules, next to the exact QEP gradient of the Hamiltonian the device realises and the bias
estimate of the ramp (:mod:`qep_analog.emulation.preparation_bias`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.diagnostics import Adiabaticity, adiabaticity, path_spectrum
from qep_analog.emulation.preparation_bias import (
    GradientBias,
    PathBudget,
    gradient_bias,
    nudge_operator,
)
from qep_analog.emulation.qutip_emulator import QutipEmulator
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.gradients import qep_gradient
from qep_analog.qep.scheme import quotient_of_phases
from qep_analog.sequences.phases import qep_phase_schedules, realised_model
from qep_analog.sequences.recipes import Recipe
from qep_analog.sequences.schedule import Schedule
from qep_analog.solvers.equilibrium import Equilibrium


@dataclass(frozen=True)
class EmulatedGradient:
    """The emulated QEP gradient, the exact QEP gradient of the realised model (same β), their
    agreement, the adiabaticity of each phase's preparation and the bias estimate of the ramp
    (per parameter, from the free phase's path)."""

    parameters: list[str]
    emulated: NDArray
    exact: NDArray
    phases: dict[str, Adiabaticity]
    estimate: GradientBias

    @property
    def bias(self) -> NDArray:
        """The bias estimate b_j per parameter."""
        return self.estimate.bias

    @property
    def budget(self) -> PathBudget:
        return self.estimate.budget

    @property
    def measured_bias(self) -> NDArray:
        """emulated − exact, per parameter."""
        return np.asarray(self.emulated - self.exact)

    @property
    def cosine(self) -> float:
        return float(
            self.emulated @ self.exact / (np.linalg.norm(self.emulated) * np.linalg.norm(self.exact))
        )

    @property
    def relative_error(self) -> float:
        return float(np.linalg.norm(self.emulated - self.exact) / np.linalg.norm(self.exact))

    @property
    def relative_bias(self) -> float:
        """‖b‖ / ‖g_exact‖: the estimate of :attr:`relative_error`'s bound."""
        return float(np.linalg.norm(self.bias) / np.linalg.norm(self.exact))

    @property
    def slow_enough(self) -> bool:
        return all(a.slow_enough for a in self.phases.values())


def phase_values(
    schedules: Sequence[Schedule], emulator: Any, model: QEPModel
) -> tuple[dict[str, NDArray], dict[str, Any]]:
    """Per phase label, the generators' expectation values in the final state of its schedule, and
    the emulator's results (any emulator with ``run(schedule, observables)``: ours, the MPS one)."""
    values, results = {}, {}
    for schedule in schedules:
        result = emulator.run(schedule, model.trainable)
        values[schedule.label] = np.array([result.expectations[name] for name in model.trainable])
        results[schedule.label] = result
    return values, results


def emulated_qep_gradient(
    model: QEPModel,
    profile: DeviceProfile,
    recipe: Recipe,
    x: ArrayLike,
    theta: ArrayLike,
    error_signal: ArrayLike,
    beta: float,
    emulator: QutipEmulator | None = None,
) -> EmulatedGradient:
    """Prepare the three phases by emulated ramps and take (⟨A⟩₊ − ⟨A⟩₋)/2β from their final states
    (expectation values, no shot noise); compare with the exact symmetric QEP gradient of the model
    the device realises (van der Waals tails included)."""
    realised = realised_model(model, profile)
    emulator = emulator or QutipEmulator(profile)
    schedules = qep_phase_schedules(
        realised, profile, recipe, x, theta, error_signal, beta, readout="Z" * model.n_qubits
    )
    nudge = nudge_operator(list(realised.outputs.values()), error_signal)
    values, results = phase_values(schedules, emulator, realised)
    phases, spectra = {}, {}
    for schedule in schedules:
        spectra[schedule.label] = path_spectrum(schedule, profile, nudge=nudge)
        phases[schedule.label] = adiabaticity(
            schedule, profile, results[schedule.label], spectrum=spectra[schedule.label]
        )
    emulated = quotient_of_phases(values, beta, "symmetric")
    equilibrium = Equilibrium(realised, tol=1e-10)
    x_row = np.atleast_2d(np.asarray(x, dtype=float).reshape(1, -1))
    theta_row = np.atleast_2d(np.asarray(theta, dtype=float))
    eps_row = np.atleast_2d(np.asarray(error_signal, dtype=float))
    exact = qep_gradient(equilibrium, x_row, theta_row, eps_row, beta, "symmetric")[0]
    estimate = gradient_bias(schedules[0], profile, realised, error_signal, beta, spectra["free"])
    return EmulatedGradient(list(realised.trainable), emulated, exact, phases, estimate)
