"""Reciprocity as a diagnostic on measured data.

In an equilibrium state (ground or Gibbs) d<O_k>/dtheta_j = d<A_j>/dnu_k. Measured, each side is a
central difference of two preparations:

    left  = (<O_k>(theta + d e_j) - <O_k>(theta - d e_j)) / (2 d)
    right = (<A_j>(nu = +d' e_k) - <A_j>(nu = -d' e_k)) / (2 d')

with standard errors from the shots. A difference beyond ``threshold`` combined standard errors says
that the prepared states do not follow the Hamiltonian as equilibrium states do (a non-adiabatic
preparation, heating, a knob that does not act as modelled): QEP gradients from such a device are
not gradients of the loss. Both sides carry an O(d^2) finite-difference bias of their own, so
the shifts must be small against the scale on which the responses change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import MeasurementError
from qep_analog.measurement.estimators import SettingCounts, estimate_plan
from qep_analog.measurement.gradient import generator_estimates
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.settings import MeasurementPlan
from qep_analog.model.qep_model import QEPModel

#: The four preparations of one pair.
PREPARATIONS = ("theta_plus", "theta_minus", "nu_plus", "nu_minus")
NOT_EQUILIBRIUM = "the prepared state is not an equilibrium state (non-adiabatic preparation, heating)"

#: Prepares states (B, dim) for inputs x (B, n_inputs), parameters theta (B, n_theta), nudges nu.
Preparation = Callable[[NDArray, NDArray, NDArray], NDArray]


@dataclass(frozen=True)
class ReciprocityResult:
    """Both sides of d<O_k>/dtheta_j = d<A_j>/dnu_k with standard errors, for one pair."""

    parameter: str
    output: str
    d_output_d_theta: float
    d_output_d_theta_error: float
    d_generator_d_nu: float
    d_generator_d_nu_error: float
    threshold: float

    @property
    def z(self) -> float:
        """Difference over its standard error."""
        error = float(np.hypot(self.d_output_d_theta_error, self.d_generator_d_nu_error))
        diff = self.d_output_d_theta - self.d_generator_d_nu
        return diff / error if error > 0 else (0.0 if diff == 0 else float(np.copysign(np.inf, diff)))

    @property
    def consistent(self) -> bool:
        return abs(self.z) <= self.threshold

    @property
    def verdict(self) -> str:
        if self.consistent:
            return f"consistent within {self.threshold:g} standard errors"
        return f"{NOT_EQUILIBRIUM}: |z| = {abs(self.z):.3g} > {self.threshold:g}"

    def describe(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "output": self.output,
            "d_output_d_theta": [self.d_output_d_theta, self.d_output_d_theta_error],
            "d_generator_d_nu": [self.d_generator_d_nu, self.d_generator_d_nu_error],
            "z": self.z,
            "consistent": self.consistent,
            "verdict": self.verdict,
        }


def pair_indices(model: QEPModel, parameter: str, output: str) -> tuple[int, int]:
    """The indices of a (parameter, output) pair in the model, or one :class:`MeasurementError` line."""
    if parameter not in model.trainable or output not in model.outputs:
        raise MeasurementError(
            f"reciprocity: unknown pair ({parameter!r}, {output!r}) (parameters: "
            f"{', '.join(model.parameter_names)}; outputs: {', '.join(model.output_names)})"
        )
    return model.parameter_names.index(parameter), model.output_names.index(output)


def reciprocity_from_counts(
    model: QEPModel,
    plan: MeasurementPlan,
    pair: tuple[str, str],
    data: Mapping[str, Sequence[SettingCounts]],
    delta_theta: float,
    delta_nu: float,
    *,
    mitigation: ReadoutErrors | None = None,
    threshold: float = 3.0,
) -> ReciprocityResult:
    """Both sides for ``pair`` = (parameter, output) from the counts of the four preparations
    (``data[name]`` per setting of ``plan`` for every name of :data:`PREPARATIONS`)."""
    j, k = pair_indices(model, *pair)
    missing = [name for name in PREPARATIONS if name not in data]
    if missing:
        raise MeasurementError(f"reciprocity: preparation {missing[0]!r} of {pair} has no counts")
    if not (delta_theta > 0 and delta_nu > 0):
        raise MeasurementError(f"reciprocity: shifts {delta_theta!r}, {delta_nu!r} must be positive")
    outputs = {
        name: generator_estimates(model, plan, estimate_plan(plan, data[name], mitigation), "outputs")
        for name in ("theta_plus", "theta_minus")
    }
    generators = {
        name: generator_estimates(model, plan, estimate_plan(plan, data[name], mitigation))
        for name in ("nu_plus", "nu_minus")
    }
    left = (outputs["theta_plus"].means[k] - outputs["theta_minus"].means[k]) / (2 * delta_theta)
    left_error = np.hypot(*(outputs[n].standard_errors[k] for n in outputs)) / (2 * delta_theta)
    right = (generators["nu_plus"].means[j] - generators["nu_minus"].means[j]) / (2 * delta_nu)
    right_error = np.hypot(*(generators[n].standard_errors[j] for n in generators)) / (2 * delta_nu)
    return ReciprocityResult(
        pair[0], pair[1], float(left), float(left_error), float(right), float(right_error), threshold
    )
