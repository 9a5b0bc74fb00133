"""The end-to-end check of a calibration: one QEP gradient measured on the device against the exact one.

A check model on the calibration sites (trainable fields on every Z_i and a trainable coupling: on a
Rydberg array nearest-neighbour ZZ under a transverse drive, on an ion chain the trap's XX pattern;
output m = (Z_0 + Z_1)/2, error signal ε = 1) is translated with the current effective profile into
free, +βε and −βε schedules. The device runs them and the QEP gradient (⟨A⟩₊ − ⟨A⟩₋)/2β comes from
the counts (Z basis; X too on ions, for the couplings), readout corrected with the profile's ε, ε′
(per site when calibrated per site; :func:`qep_analog.measurement.gradient.gradient_from_counts`).
The exact gradient is that of the model the profile says the device realises (van der Waals or drive
tails included), at β → 0. A true profile makes the two agree; a mis-calibrated one makes the device
realise another Hamiltonian.

Quality is "good" when the cosine similarity reaches ``min_cosine`` and the relative error stays
below ``max_relative_error`` (a device far from its profile may give a gradient of the right direction
but the wrong size). The check proposes no records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qep_analog.calibration.backend import ScheduleBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.ground_state import final_state_bytes
from qep_analog.calibration.records import FIELDS
from qep_analog.calibration.routine import (
    FitResult,
    ItemReport,
    Routine,
    RoutineParameters,
    stored_parameters,
)
from qep_analog.calibration.routines.scans import (
    DRIVE,
    FIELD_SIZE,
    FREQUENCY,
    MAX_REDUCED_CHI2,
    parameter_rule,
    run_in_parts,
    verdict,
)
from qep_analog.calibration.stored_model import (
    model_context,
    model_from_context,
    readout_context,
    readout_from_context,
)
from qep_analog.devices import ions
from qep_analog.devices.platform import ION, RYDBERG
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import CalibrationError
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.gradient import gradient_from_counts
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.settings import measurement_plan
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.gradients import qep_gradient
from qep_analog.sequences.phases import qep_phase_schedules, realised_model
from qep_analog.sequences.recipes import default_recipe, load_recipe
from qep_analog.solvers.equilibrium import Equilibrium

#: the field pattern of the check point (times ``fields``), repeated along the chain
FIELD_PATTERN = (1.0, -2 / 3, 1 / 3, -1.0)
ION_BEAT_NOTE_OFFSET = 2 * np.pi * 0.02  # rad/µs
PHASES = ("free", "plus", "minus")
EXACT_BETA = 1e-4


@dataclass(frozen=True, kw_only=True)
class GradientCheckParameters(RoutineParameters):
    """The check point (rad/µs) and the experiment; ``max_relative_error`` bounds
    ‖g − g_exact‖/‖g_exact‖ (the size counts as well as the direction)."""

    transverse: float = field(default=1.0, metadata=DRIVE)
    coupling: float = field(default=1.25, metadata=FREQUENCY)
    fields: float = field(default=0.3, metadata=FIELD_SIZE)
    beta: float = field(default=0.6, metadata=FREQUENCY)  # nudge on m per unit error signal
    shots: int = 200_000
    min_cosine: float = field(default=0.98, metadata=parameter_rule(low=0.0, open_low=True, high=1.0))
    max_relative_error: float = field(default=0.25, metadata=parameter_rule(low=0.0, open_low=True))


def _rydberg_coupling(
    profile: DeviceProfile, n: int, p: GradientCheckParameters
) -> tuple[PauliSum, PauliSum, float]:
    """Nearest-neighbour ZZ under the transverse drive; θ_J = ``coupling``."""
    if not p.transverse > 0:
        raise CalibrationError("qep_gradient_check: a Rydberg check needs transverse > 0")
    coupling = pauli_sum((1.0, f"Z{i} Z{i + 1}") for i in range(n - 1))
    return coupling, pauli_sum((p.transverse, f"X{i}") for i in range(n)), p.coupling


def _ion_coupling(
    profile: DeviceProfile, n: int, p: GradientCheckParameters
) -> tuple[PauliSum, PauliSum, float]:
    """The Mølmer–Sørensen pattern 2π·20 kHz above the centre-of-mass mode, no drive; θ_J = 1 gives
    the nearest neighbours ``coupling``."""
    if p.transverse:
        raise CalibrationError(f"qep_gradient_check: transverse = {p.transverse:g} rad/µs on ions, need 0")
    beat_note = float(ions.chain_modes(profile, n).frequencies.max()) + ION_BEAT_NOTE_OFFSET
    kernel = ions.coupling_kernel(profile, n, beat_note)
    pattern = p.coupling * kernel / kernel[0, 1]
    coupling = pauli_sum((float(pattern[i, j]), f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    return coupling, pauli_sum([]), 1.0


#: each platform's trainable coupling J, fixed part and θ_J of the check model
CHECK_COUPLINGS = {RYDBERG: _rydberg_coupling, ION: _ion_coupling}


def check_model(profile: DeviceProfile, n: int, p: GradientCheckParameters) -> tuple[QEPModel, np.ndarray]:
    """The check model on ``n`` sites and its parameters θ (fields, then the coupling)."""
    if n < 2:
        raise CalibrationError(f"qep_gradient_check: {n} sites, need ≥ 2")
    trainable = {f"h{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    outputs = {"m": pauli_sum([(0.5, "Z0"), (0.5, "Z1")])}
    trainable["J"], fixed, coupling = CHECK_COUPLINGS[profile.platform_spec](profile, n, p)
    theta = np.array([p.fields * FIELD_PATTERN[i % len(FIELD_PATTERN)] for i in range(n)] + [coupling])
    return QEPModel(n, trainable, outputs, fixed), theta


class QEPGradientCheck(Routine[GradientCheckParameters, ScheduleBackend]):
    """One QEP gradient on the device against the exact gradient (see the module)."""

    name = "qep_gradient_check"
    known_fields = tuple(FIELDS)  # its schedules are built with the whole profile in force
    parameters_type = GradientCheckParameters
    site_columns = False  # columns are outcomes
    criteria = (
        "cosine similarity of the measured and the exact gradient ≥ min_cosine (a parameter)",
        "relative error of the measured gradient ≤ max_relative_error (a parameter)",
        f"reduced chi2 of the measured gradient (its standard errors) against the exact one "
        f"< {MAX_REDUCED_CHI2}",
    )

    def data_shape(self, parameters: GradientCheckParameters, n_sites: int) -> tuple[int, int]:
        """A row per phase (free, plus, minus) and setting (at most two: Z, and X for a transverse
        field), a column per outcome (2^n)."""
        return 3 * 2, 1 << n_sites

    def memory_bytes(self, parameters: GradientCheckParameters, n_sites: int) -> int:
        """The data's cells and the preparation of each phase's state on every site."""
        return super().memory_bytes(parameters, n_sites) + final_state_bytes(n_sites)

    def acquire(
        self,
        parameters: GradientCheckParameters,
        backend: ScheduleBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        n = backend.n_sites
        model, theta = check_model(profile, n, p)
        realised = realised_model(model, profile)
        settings = [setting.bases for setting in measurement_plan(realised).settings]
        recipe = load_recipe(default_recipe(profile.platform, model.n_qubits))
        schedules = qep_phase_schedules(model, profile, recipe, [], theta, [1.0], p.beta)
        by_key = {(s.label, s.readout): s for s in schedules}
        missing = [b for b in settings if ("free", b) not in by_key]
        if missing:
            raise CalibrationError(f"{self.name}: no schedule reads the setting {missing[0]}")
        phases = [[by_key[(label, bases)] for bases in settings] for label in PHASES]
        counts = np.array(run_in_parts(backend, phases, p.shots, progress), dtype=np.int64)
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="phase (free, plus, minus) × setting; columns: outcomes, qubit 0 most significant",
            sweep_unit="",
            sweep=np.arange(len(counts), dtype=float),
            shots=p.shots,
            counts=counts,
            context={
                **model_context(realised),
                **{f"theta {j}": float(v) for j, v in enumerate(theta)},
                "n_qubits": float(n),
                **readout_context(ReadoutErrors.from_profile(profile, n)),
            },
        )

    def fit(self, data: CalibrationData) -> FitResult:
        p = self.parameters(data.parameters)
        n = int(data.context["n_qubits"])
        model = model_from_context(data.context, n)
        theta = np.array([data.context[f"theta {j}"] for j in range(len(model.trainable))])
        plan = measurement_plan(model)
        settings = [setting.bases for setting in plan.settings]
        if data.counts.shape != (len(PHASES) * len(settings), 1 << n):
            raise CalibrationError(
                f"{self.name}: counts of shape {data.counts.shape}, expected "
                f"({len(PHASES) * len(settings)}, {1 << n})"
            )
        rows = iter(data.counts)
        phases = {
            label: [SettingCounts(bases, np.arange(1 << n), next(rows)) for bases in settings]
            for label in PHASES
        }
        mitigation = readout_from_context(data.context, n)
        measured = gradient_from_counts(model, plan, phases, p.beta, mitigation=mitigation)
        exact = qep_gradient(
            Equilibrium(model), np.zeros((1, 0)), theta[None, :], np.ones((1, 1)), EXACT_BETA, "symmetric"
        )[0]
        cosine = float(measured.values @ exact / (np.linalg.norm(measured.values) * np.linalg.norm(exact)))
        relative = float(np.linalg.norm(measured.values - exact) / np.linalg.norm(exact))
        errors = measured.standard_errors
        chi2 = float(np.sum(((measured.values - exact) / errors) ** 2)) / len(exact)
        reasons = [] if cosine >= p.min_cosine else [f"cosine {cosine:.4f} < {p.min_cosine}"]
        if not relative <= p.max_relative_error:
            reasons.append(f"relative error {relative:.3g} > {p.max_relative_error}")
        if not chi2 < MAX_REDUCED_CHI2:
            reasons.append(f"reduced chi2 {chi2:.3g} not < {MAX_REDUCED_CHI2}")
        quality = verdict(reasons)
        curves = {
            "measured": measured.values.tolist(),
            "standard_error": errors.tolist(),
            "exact": exact.tolist(),
            "cosine": [cosine],
            "relative_error": [relative],
        }
        return FitResult(self.name, (), chi2, quality, tuple(reasons), self.criteria, curves)

    def draw(self, ax: Any, data: CalibrationData, result: dict[str, Any]) -> bool:
        """Measured gradient (with standard errors) next to the exact one, per parameter."""
        curves = result["curves"]
        index = np.arange(len(curves["exact"]))
        ax.bar(index - 0.2, curves["exact"], 0.4, label="exact", color="C0")
        ax.bar(
            index + 0.2,
            curves["measured"],
            0.4,
            yerr=curves["standard_error"],
            label="measured",
            color="C1",
        )
        names = [
            k.split("|")[1]
            for k in dict.fromkeys(k.rsplit("|", 1)[0] for k in data.context if k.startswith("trainable|"))
        ]
        ax.set_xticks(index, names)
        ax.set_ylabel("dL/dθ")
        ax.set_title(
            f"{self.name}: {result['quality']}, cosine {curves['cosine'][0]:.4f}, "
            f"relative error {curves['relative_error'][0]:.3g}",
            fontsize=9,
        )
        ax.legend(fontsize=7)
        return True


ROUTINE = QEPGradientCheck()
