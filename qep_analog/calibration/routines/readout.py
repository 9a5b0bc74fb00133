"""Readout calibration (SPAM): |0⟩ and |1⟩ prepared on every site → ``readout_false_positive``
and ``readout_false_negative``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qep_analog.calibration.backend import RydbergCalibrationBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import binomial_sigma
from qep_analog.calibration.routine import (
    Estimate,
    FitResult,
    ItemReport,
    Routine,
    RoutineParameters,
    stored_parameters,
)
from qep_analog.calibration.routines.scans import (
    MAX_REDUCED_CHI2,
    verdict,
)
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError


@dataclass(frozen=True, kw_only=True)
class ReadoutParameters(RoutineParameters):
    """``repeats`` blocks of |0⟩ and |1⟩ preparations, ``shots`` each."""

    repeats: int = 4
    shots: int = 1000


def flip_estimate(flips: int, shots: int) -> tuple[float, float]:
    """A flip probability from ``flips`` of ``shots``: the mean and standard deviation of its
    posterior Beta(k + 1, n − k + 1) under a uniform prior."""
    a, b = flips + 1.0, shots - flips + 1.0
    return a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


class ReadoutCalibration(Routine[ReadoutParameters, RydbergCalibrationBackend]):
    """Prepare |0⟩ and |1⟩ → ``readout_false_positive`` ε = P(1|0), ``readout_false_negative``
    ε′ = P(0|1) per site; device-wide values are the means over sites.

    Model: a constant probability per prepared state and site; the reduced χ² measures the agreement
    of the repeated blocks (drift). Estimate (:func:`flip_estimate`): the posterior mean and standard
    deviation of the flip probability under a uniform prior, (k + 1)/(n + 2) ± its Beta(k + 1, n − k
    + 1) spread, from the k flips pooled over the n shots of all blocks. With many flips this is the
    pooled fraction k/n with its binomial error; with few (0–3, a small ε at a small shot budget) the
    binomial error at k/n is too small (0 at k = 0) and pulls (estimate − truth)/error reach 4σ, while
    these stay within about 2σ (rms pull 0.8–1.0 at 0.3–5 expected flips)."""

    name = "readout"
    parameters_type = ReadoutParameters
    criteria = (
        f"reduced chi2 of the repeated blocks < {MAX_REDUCED_CHI2}",
        "ε < 0.25 and ε′ < 0.25 on every site (contrast 1 − ε − ε′ > 0.5: not saturated, not noise)",
    )
    cell_bytes = 256  # the counts' JSON text (tracemalloc: 180)

    def data_shape(self, parameters: ReadoutParameters, n_sites: int) -> tuple[int, int]:
        """A row per preparation (|0⟩ and |1⟩, ``repeats`` times), a column per site."""
        return 2 * parameters.repeats, n_sites

    def acquire(
        self,
        parameters: ReadoutParameters,
        backend: RydbergCalibrationBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        prepared = np.tile([0.0, 1.0], p.repeats)
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="prepared",
            sweep_unit="",
            sweep=prepared,
            shots=p.shots,
            counts=backend.readout(prepared, p.shots),
        )

    def fit(self, data: CalibrationData) -> FitResult:
        states = data.sweep
        if not (np.any(states == 0) and np.any(states == 1)):
            raise CalibrationError(f"{self.name}: data need preparations of both 0 and 1")
        reasons: list[str] = []
        estimates: list[Estimate] = []
        chi2, dof = 0.0, 0
        eps_all: dict[str, list[Estimate]] = {"readout_false_positive": [], "readout_false_negative": []}
        for site in range(data.n_sites):
            for state, name in ((0, "readout_false_positive"), (1, "readout_false_negative")):
                k = data.counts[states == state, site]
                wrong = k if state == 0 else data.shots - k
                n = wrong.size * data.shots
                p, sigma = flip_estimate(int(wrong.sum()), n)
                pooled = float(wrong.sum()) / n
                block = binomial_sigma(wrong, data.shots)
                chi2 += float(np.sum(((wrong / data.shots - pooled) / block) ** 2))
                dof += wrong.size - 1
                if not p < 0.25:
                    reasons.append(f"site {site}: {name} {p:.3g} not < 0.25")
                estimate = Estimate(name, p, sigma, site)
                estimates.append(estimate)
                eps_all[name].append(estimate)
        reduced = chi2 / dof if dof > 0 else float("nan")
        if dof > 0 and not reduced < MAX_REDUCED_CHI2:
            reasons.append(f"reduced chi2 {reduced:.3g} not < {MAX_REDUCED_CHI2}")
        curves: dict[str, list[float]] = {}
        for name, per_site in eps_all.items():
            values = np.array([e.value for e in per_site])
            errors = np.array([e.uncertainty for e in per_site])
            estimates.append(
                Estimate(name, float(values.mean()), float(np.sqrt(np.sum(errors**2))) / values.size)
            )
            curves[name] = values.tolist()
        return FitResult(
            self.name, tuple(estimates), reduced, verdict(reasons), tuple(reasons), self.criteria, curves
        )


ROUTINE = ReadoutCalibration()
