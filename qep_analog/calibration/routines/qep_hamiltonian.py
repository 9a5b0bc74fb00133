"""QEP Hamiltonian calibration: per-site field offsets fitted with gradients measured by QEP on the device.

The probe is a QEP model on the calibration atoms: a chain with nearest-neighbour ZZ couplings set by
the spacing (van der Waals tails included) and a transverse drive, an input field x on every Z_i,
trainable corrections c_i on Z_i and outputs ⟨Z_i⟩. For K input fields x_k the profile predicts
⟨Z⟩ₖ(c = 0); the device, whose sites carry field offsets the profile does not know (light shifts,
residues of the C6 compensation), gives other values. The mismatch

    L(c) = (1/K) Σ_k |⟨Z⟩ₖ,device(c) − ⟨Z⟩ₖ,predicted|²

is minimised over c with the gradient measured *on the device* by QEP: the error signal
ε_k = 2(⟨Z⟩ₖ − target_k)/K nudges the outputs, ν = ±β_k ε_k (β_k chosen so that the largest nudge
field is ``nudge``), and ∂L/∂c_j = Σ_k (⟨Z_j⟩₊ − ⟨Z_j⟩₋)/2β_k (the trainable generators are the Z_j).
Each step is a Gauss–Newton step c ← c − H⁻¹ g with the measured gradient g and the preconditioner
H = (2/K) Σ_k χ_kᵀχ_k from the model's susceptibilities χ_k = ∂⟨Z⟩ₖ/∂c (exact, small arrays), no
step larger than ``TRUST``·inputs. At the minimum the device realises the model, so the offsets are
−c: ``site_detuning_offsets`` (detuning units, δ = 2h) become the current ones minus 2c.

Uncertainty: shot noise of the free phases (through ε) and of the nudged phases (through g),
propagated linearly through the last step (budget entry ``statistical``), and the errors of the
calibrated values the probe is compiled with (:data:`UPSTREAM`: the C6 scale ``interaction_scale``,
``rabi_scale`` and each site's ``local_gains``, their records' errors σ): a device off by ±σ in one of
them prepares other ⟨Z⟩ (dz_k, exact ground states of the Hamiltonian it realises from the compiled
controls, on a device that carries the offsets the corrections reached, where the fit linearises);
the Gauss–Newton minimum then moves by −H⁻¹ (2/K) Σ_k χ_kᵀ dz_k, and each site's offset by that over
the field per offset (entries ``interaction_scale``, ``rabi_scale``, ``local_gains``, the gains' in
quadrature; added in quadrature to the statistical error). Values without a record (error 0) add
nothing. Readout is corrected with the profile's ε, ε′ (per site
once the readout routine has calibrated them: a per-site error left in would read as a field offset);
their records' errors move the corrected free-phase ⟨Z_i⟩ by (1 + z)/b·σ_ε and (z − 1)/b·σ_ε′ and
the minimum as above (entry ``readout``, every site's ε and ε′ in quadrature). T2* does not enter:
the probe's states are exact ground states; the device-wide offset's error is absorbed in the
offsets the step measures (they are the sites' total offsets less the device-wide one).

Rydberg arrays only: on an ion chain (XX couplings, Z fields) the fields act on ⟨Z⟩ through pair
flips, i.e. through sums of two sites' fields; the staggered combination is nearly invisible (the
Gauss–Newton matrix of 4 ions has condition number ≈ 500 even at long-range couplings) and shot noise
swamps it. On ions the per-site Ramsey fringes measure each ion's offset (kept as per-site
``detuning_offset`` records); no routine turns them into ``site_detuning_offsets`` yet.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from qep_analog.calibration.backend import ScheduleBackend
from qep_analog.calibration.data import CalibrationData
from qep_analog.calibration.fitting import binomial_sigma
from qep_analog.calibration.ground_state import final_state_bytes
from qep_analog.calibration.known import Known, record_ids
from qep_analog.calibration.records import FIELDS, Quality
from qep_analog.calibration.routine import (
    Estimate,
    FitResult,
    ItemReport,
    Routine,
    RoutineParameters,
    stored_parameters,
)
from qep_analog.calibration.routines.scans import (
    FREQUENCY,
    RABI,
    parameter_rule,
)
from qep_analog.calibration.stored_model import (
    model_context,
    model_from_context,
    readout_context,
    readout_from_context,
)
from qep_analog.devices.profile import DeviceProfile
from qep_analog.devices.rydberg import realize
from qep_analog.errors import CalibrationError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import bits_of
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.scheme import denominator, difference_quotient
from qep_analog.sequences.phases import qep_phase_schedules, realised_model, target_controls
from qep_analog.sequences.recipes import default_recipe, load_recipe
from qep_analog.solvers.equilibrium import Equilibrium

MAX_REDUCED_CHI2 = 3.0
FIELD_PER_OFFSET = 0.5  # a detuning offset b moves the Z field by b/2 (h = δ/2)
MAX_CONDITION = 1e4
#: the calibrated values the probe is compiled with whose errors move the fitted offsets
UPSTREAM = ("interaction_scale", "rabi_scale", "local_gains")
MAX_STEP = 4  # the last step, in standard errors, above which the iteration has not converged
#: no step moves a correction by more than this fraction of the largest input field
TRUST = 0.25


@dataclass(frozen=True, kw_only=True)
class QEPHamiltonianParameters(RoutineParameters):
    """The probe chain and the experiment (rad/µs)."""

    coupling: float = field(default=1.25, metadata=FREQUENCY)  # nearest-neighbour coupling of the probe
    transverse: float = field(default=2.0, metadata=RABI)  # h_x (Rydberg: Ω/2)
    inputs: float = field(default=2.0, metadata=FREQUENCY)  # largest input field (see input_fields)
    nudge: float = field(default=0.5, metadata=FREQUENCY)  # largest nudge field β·max|ε|
    patterns: int = field(default=3, metadata=parameter_rule(kind="integer", low=2))
    iterations: int = 4
    shots: int = 4000


def input_fields(p: QEPHamiltonianParameters) -> NDArray:
    """The K input fields, evenly from −inputs to inputs."""
    return np.asarray(p.inputs * np.linspace(-1.0, 1.0, p.patterns))


def probe_model(profile: DeviceProfile, n: int, p: QEPHamiltonianParameters) -> QEPModel:
    """The probe chain: nearest-neighbour ZZ couplings and a transverse drive (:func:`realised_model`
    adds the van der Waals tails)."""
    if n < 2:
        raise CalibrationError(f"qep_hamiltonian: {n} sites, need ≥ 2")
    z = {f"c{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    inputs = {"x": pauli_sum((1.0, f"Z{i}") for i in range(n))}
    outputs = {f"z{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    if profile.platform_spec.name not in QEPHamiltonianCalibration.platforms:
        raise CalibrationError(f"qep_hamiltonian: runs on Rydberg arrays, not on {profile.name!r}")
    fixed = pauli_sum(
        [(p.coupling, f"Z{i} Z{i + 1}") for i in range(n - 1)] + [(p.transverse, f"X{i}") for i in range(n)]
    )
    return QEPModel(n, z, outputs, fixed, inputs)


def _z_values(model: QEPModel, x: NDArray, theta: NDArray) -> NDArray:
    """Exact ⟨Z_i⟩ for each row of inputs ``x`` (B, 1) at corrections ``theta`` (B, n)."""
    equilibrium = Equilibrium(model, tol=1e-11)
    prepared = equilibrium.prepare(x, theta)
    return np.asarray(equilibrium.compiled.output_values(prepared.strings))


def susceptibilities(model: QEPModel, inputs: NDArray, theta: NDArray) -> NDArray:
    """χ_k[i, j] = ∂⟨Z_i⟩/∂c_j at each input field (central differences of exact ground states, step
    10⁻⁴ of the largest coupling of the probe)."""
    n = model.n_qubits
    step = 1e-4 * max(abs(v) for s, v in model.fixed.items() if s.factors)
    shifts = np.vstack([step * np.eye(n), -step * np.eye(n)])  # (2n, n)
    x = np.repeat(inputs, 2 * n)[:, None]
    thetas = np.tile(theta[None, :] + shifts, (len(inputs), 1))
    z = _z_values(model, x, thetas).reshape(len(inputs), 2, n, n)  # k, sign, j, i
    return np.transpose((z[:, 0] - z[:, 1]) / (2 * step), (0, 2, 1))


def site_ones(counts: NDArray, n: int) -> NDArray:
    """Counts of '1' on each of ``n`` sites from counts per outcome (2^n,) (qubit 0 most significant)."""
    return np.asarray(np.asarray(counts) @ bits_of(np.arange(1 << n), n), dtype=np.int64)


def _mitigated(ones: NDArray, shots: int, readout: ReadoutErrors) -> tuple[NDArray, NDArray]:
    """⟨Z⟩ (and its standard error) per site from counts of '1' (…, sites), readout corrected."""
    z_read = 1 - 2 * ones / shots
    sigma = 2 * binomial_sigma(ones, shots) / readout.contrast
    return (z_read - readout.offset) / readout.contrast, sigma


@dataclass(frozen=True)
class _Step:
    """One measured iteration: corrections used, residuals, gradient, and their covariances."""

    theta: NDArray
    residuals: NDArray  # (K, n)
    residual_sigma: NDArray  # (K, n)
    gradient: NDArray
    gradient_cov: NDArray
    chi: NDArray  # (K, n, n)


class QEPHamiltonianCalibration(Routine[QEPHamiltonianParameters, ScheduleBackend]):
    """Per-site field offsets → ``site_detuning_offsets`` by QEP on the device (see the module)."""

    name = "qep_hamiltonian"
    known_fields = tuple(FIELDS)  # its schedules are built with the whole profile in force
    parameters_type = QEPHamiltonianParameters
    platforms = ("rydberg",)
    site_columns = False  # the probe couples the sites
    adaptive = True  # each iteration steps from what the previous one measured
    criteria = (
        f"reduced chi2 of the last free phases after the step < {MAX_REDUCED_CHI2}",
        "the last step is within 4 standard errors of zero on every site (converged)",
        f"the preconditioner is well conditioned (condition number < {MAX_CONDITION:g})",
    )

    def data_shape(self, parameters: QEPHamiltonianParameters, n_sites: int) -> tuple[int, int]:
        """Per iteration and pattern three rows (free, plus, minus), a column per site."""
        return 3 * parameters.patterns * parameters.iterations, n_sites

    def memory_bytes(self, parameters: QEPHamiltonianParameters, n_sites: int) -> int:
        """The data's cells and the preparation of each phase's state on every site."""
        return super().memory_bytes(parameters, n_sites) + final_state_bytes(n_sites)

    def acquire(
        self,
        parameters: QEPHamiltonianParameters,
        backend: ScheduleBackend,
        profile: DeviceProfile,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        """:meth:`acquire_known` with the profile's values taken as exact (no propagated errors)."""
        return self.acquire_known(parameters, backend, profile, Known(), progress)

    def acquire_known(
        self,
        parameters: QEPHamiltonianParameters,
        backend: ScheduleBackend,
        profile: DeviceProfile,
        known: Known,
        progress: ItemReport | None = None,
    ) -> CalibrationData:
        p = parameters
        n = backend.n_sites
        probe = probe_model(profile, n, p)
        model = realised_model(probe, profile)  # what the profile predicts the device does
        recipe = load_recipe(default_recipe(profile.platform, n))  # the fake lab may skip the ramp
        inputs = input_fields(p)
        targets = _z_values(model, inputs[:, None], np.zeros((p.patterns, n)))
        readout_errors = ReadoutErrors.from_profile(profile, n)  # per site once calibrated per site
        offset = profile.calibration.detuning_offset
        readout = "Z" * n
        theta = np.zeros(n)
        rows: list[NDArray] = []
        context: dict[str, float] = {
            **model_context(model),
            **readout_context(readout_errors),
            **readout_error_context(profile, known, n),
            **{f"site_offset {i}": float(v) for i, v in enumerate(profile.site_offsets(n) - offset)},
        }
        for t in range(p.iterations):
            context.update({f"theta {t} {i}": float(v) for i, v in enumerate(theta)})
            schedules = [
                qep_phase_schedules(probe, profile, recipe, [x], theta, np.zeros(n), 1.0, readout)[0]
                for x in inputs
            ]
            free = np.array([site_ones(c, n) for c in backend.run_schedules(schedules, p.shots)])
            z, _ = _mitigated(free, p.shots, readout_errors)
            signals = 2 * (z - targets) / p.patterns
            nudged = []
            for k, x in enumerate(inputs):
                beta = p.nudge / max(float(np.abs(signals[k]).max()), 1e-12)
                context[f"beta {t} {k}"] = beta
                phases = qep_phase_schedules(probe, profile, recipe, [x], theta, signals[k], beta, readout)
                nudged.append([site_ones(c, n) for c in backend.run_schedules(phases[1:], p.shots)])
            for k in range(p.patterns):
                rows += [free[k], nudged[k][0], nudged[k][1]]
            block = np.array(rows[-3 * p.patterns :])
            step = self._step(model, inputs, targets, theta, block, context, t, p.shots)
            change = -np.linalg.solve(_hessian(step.chi), step.gradient)
            theta = theta + change * _trust_scale(change, TRUST * p.inputs)
            if progress is not None:
                progress(t + 1, p.iterations)
        counts = np.array(rows, dtype=np.int64)
        context.update(upstream_context(model, profile, known, inputs, theta))
        return CalibrationData(
            routine=self.name,
            parameters=stored_parameters(p),
            sweep_name="preparation (iteration, input, phase)",
            sweep_unit="",
            sweep=np.arange(len(counts), dtype=float),
            shots=p.shots,
            counts=counts,
            context=context,
            uses=record_ids(profile, self.known_fields),
        )

    @staticmethod
    def _step(
        model: QEPModel,
        inputs: NDArray,
        targets: NDArray,
        theta: NDArray,
        counts: NDArray,
        context: dict[str, float],
        t: int,
        shots: int,
    ) -> _Step:
        """Residuals, the QEP gradient and its covariance of iteration ``t`` (counts (3K, n))."""
        k_count, n = len(inputs), model.n_qubits
        z, sigma = _mitigated(counts, shots, readout_from_context(context, n))
        z = z.reshape(k_count, 3, n)
        sigma = sigma.reshape(k_count, 3, n)
        residuals = z[:, 0] - targets
        gradient = np.zeros(n)
        variance = np.zeros(n)
        for k in range(k_count):
            beta = context[f"beta {t} {k}"]
            gradient += difference_quotient(z[k, 1], z[k, 2], beta, "symmetric")
            variance += (sigma[k, 1] ** 2 + sigma[k, 2] ** 2) / denominator(beta, "symmetric") ** 2
        chi = susceptibilities(model, inputs, theta)
        # the free phases enter through ε = 2r/K: g ≈ (2/K) Σ χᵀ r
        free_cov = sum(
            (2 / k_count) ** 2 * chi[k].T @ np.diag(sigma[k, 0] ** 2) @ chi[k] for k in range(k_count)
        )
        return _Step(theta, residuals, sigma[:, 0], gradient, np.diag(variance) + free_cov, chi)

    def fit(self, data: CalibrationData) -> FitResult:
        p = self.parameters(data.parameters)
        n = data.n_sites
        if data.counts.shape[0] != 3 * p.patterns * p.iterations:
            expected = 3 * p.patterns * p.iterations
            raise CalibrationError(f"{self.name}: {data.counts.shape[0]} preparations, expected {expected}")
        model = model_from_context(data.context, n)
        inputs = input_fields(p)
        targets = _z_values(model, inputs[:, None], np.zeros((p.patterns, n)))
        t = p.iterations - 1
        theta = np.array([data.context[f"theta {t} {i}"] for i in range(n)])
        block = data.counts[3 * p.patterns * t :]
        step = self._step(model, inputs, targets, theta, block, data.context, t, data.shots)
        hessian = _hessian(step.chi)
        inverse = np.linalg.inv(hessian)
        change = -inverse @ step.gradient
        covariance = inverse @ step.gradient_cov @ inverse.T
        errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        corrections = theta + change
        # the residuals the step leaves, to first order
        left = step.residuals + np.einsum("kij,j->ki", step.chi, change)
        chi2 = float(np.sum((left / step.residual_sigma) ** 2))
        dof = max(left.size - n, 1)
        reduced = chi2 / dof
        reasons = []
        if not reduced < MAX_REDUCED_CHI2:
            reasons.append(f"reduced chi2 {reduced:.3g} not < {MAX_REDUCED_CHI2}")
        for i in np.flatnonzero(np.abs(change) > MAX_STEP * errors):
            reasons.append(
                f"site {i}: last step {change[i]:.3g} rad/µs above {MAX_STEP} errors ({errors[i]:.2g})"
            )
        condition = float(np.linalg.cond(hessian))
        if not condition < MAX_CONDITION:
            reasons.append(f"preconditioner condition number {condition:.3g} not < {MAX_CONDITION:g}")
        per = FIELD_PER_OFFSET
        current = np.array([data.context[f"site_offset {i}"] for i in range(n)])
        offsets = current - corrections / per
        moves = upstream_moves(data.context, step.chi, inverse) / per  # (upstream, sites)
        free_z = step.residuals + targets
        readout_moves = readout_error_moves(data.context, free_z, step.chi, inverse) / per
        estimates = []
        for site in range(n):
            parts = {"statistical": float(errors[site] / per)}
            for j, name in enumerate(upstream_names(data.context)):
                parts[name] = float(np.hypot(parts.get(name, 0.0), moves[j, site]))
            if readout_moves.size:
                parts["readout"] = float(np.sqrt(np.sum(readout_moves[:, site] ** 2)))
            total = float(np.sqrt(sum(v**2 for v in parts.values())))
            estimates.append(
                Estimate("site_detuning_offsets", float(offsets[site]), total, site, tuple(parts.items()))
            )
        curves = {
            "corrections": corrections.tolist(),
            "last_step": change.tolist(),
            "residuals": step.residuals.ravel().tolist(),
        }
        quality: Quality = "bad" if reasons else "good"
        return FitResult(
            self.name, tuple(estimates), reduced, quality, tuple(reasons), self.criteria, curves
        )


def _moved(profile: DeviceProfile, name: str, site: int | None, delta: float) -> DeviceProfile:
    """``profile`` with the calibrated ``name`` (a site's gain when ``site``) moved by ``delta``."""
    cal = profile.calibration
    if site is None:
        moved = dataclasses.replace(cal, **{name: getattr(cal, name) + delta})
    else:
        gains = list(cal.local_gains)
        gains[site] += delta
        moved = dataclasses.replace(cal, local_gains=tuple(gains))
    return dataclasses.replace(profile, calibration=moved)


def _upstream_errors(profile: DeviceProfile, known: Known, n: int) -> list[tuple[str, int | None, float]]:
    """(field, site, standard error) of every upstream value (:data:`UPSTREAM`) with a record."""
    out: list[tuple[str, int | None, float]] = []
    for name in ("interaction_scale", "rabi_scale"):
        value = known.device_value(profile, name)
        if value.uncertainty > 0:
            out.append((name, None, value.uncertainty))
    gains = profile.calibration.local_gains
    for site in range(min(n, len(gains))):
        record = known.record("local_gains", site)
        if record is not None and math.isclose(record.value, gains[site], abs_tol=1e-12):
            if record.uncertainty > 0:
                out.append(("local_gains", site, record.uncertainty))
    return out


def device_z(
    model: QEPModel, profile: DeviceProfile, truth: DeviceProfile, x: float, theta: NDArray
) -> NDArray:
    """⟨Z_i⟩ of the ground state a device whose calibration is ``truth`` reaches when the phase at
    input ``x`` and corrections ``theta`` is compiled with ``profile`` (exact, small arrays)."""
    controls = target_controls(model, profile, [x], theta)
    hamiltonian = realize(controls, truth).to_pauli_sum()  # type: ignore[arg-type]
    n = model.n_qubits
    device = QEPModel(n, model.trainable, model.outputs, hamiltonian, model.inputs)
    return _z_values(device, np.zeros((1, 1)), np.zeros((1, n)))[0]


def upstream_context(
    model: QEPModel, profile: DeviceProfile, known: Known, inputs: NDArray, theta: NDArray
) -> dict[str, float]:
    """For each upstream value with an error σ: how far the device's ⟨Z_i⟩ at each input move when
    the device differs from ``profile`` by ±σ in it, (z(+σ) − z(−σ))/2, at the corrections
    ``theta`` the iterations reached, on a device that carries the per-site offsets those
    corrections compensate (so that it realises the profile's model there: the point the fit
    linearises about). Context ``upstream {j} {k} {i}``, its field ``upstream_field {j}`` (the
    index in :data:`UPSTREAM`), site ``upstream_site {j}`` and error ``upstream_error {j}``."""
    out: dict[str, float] = {}
    n = model.n_qubits
    errors = _upstream_errors(profile, known, n)
    local = profile.site_offsets(n) - profile.calibration.detuning_offset
    found = tuple(float(v) for v in local - theta / FIELD_PER_OFFSET)
    device = dataclasses.replace(
        profile, calibration=dataclasses.replace(profile.calibration, site_detuning_offsets=found)
    )
    for j, (name, site, sigma) in enumerate(errors):
        up, down = _moved(device, name, site, sigma), _moved(device, name, site, -sigma)
        for k, x in enumerate(inputs):
            dz = device_z(model, profile, up, float(x), theta) - device_z(
                model, profile, down, float(x), theta
            )
            out.update({f"upstream {j} {k} {i}": float(v) / 2 for i, v in enumerate(dz)})
        out[f"upstream_field {j}"] = float(UPSTREAM.index(name))
        out[f"upstream_site {j}"] = -1.0 if site is None else float(site)
        out[f"upstream_error {j}"] = sigma
    out["upstream_count"] = float(len(errors))
    return out


def upstream_names(context: dict[str, float]) -> list[str]:
    """The budget name of each upstream value in ``context`` (:func:`upstream_context`)."""
    return [
        UPSTREAM[int(context[f"upstream_field {j}"])] for j in range(int(context.get("upstream_count", 0)))
    ]


def upstream_moves(context: dict[str, float], chi: NDArray, inverse: NDArray) -> NDArray:
    """How far the fitted corrections move per upstream value's error, shape (upstream, sites): the
    device's ⟨Z⟩ moved by dz_k shifts the gradient by (2/K) Σ_k χ_kᵀ dz_k and the Gauss–Newton
    minimum by −H⁻¹ times that (absolute values)."""
    count = int(context.get("upstream_count", 0))
    k_count, n = chi.shape[0], chi.shape[1]
    moves = np.zeros((count, n))
    for j in range(count):
        dz = np.array([[context[f"upstream {j} {k} {i}"] for i in range(n)] for k in range(k_count)])
        moves[j] = minimum_move(dz, chi, inverse)
    return moves


def minimum_move(dz: NDArray, chi: NDArray, inverse: NDArray) -> NDArray:
    """How far the Gauss–Newton minimum moves (absolute values) when the free phases' ⟨Z⟩ move by
    ``dz`` (K, n): the gradient by (2/K) Σ_k χ_kᵀ dz_k, the minimum by −H⁻¹ times that."""
    return np.abs(inverse @ (2 / len(dz) * np.einsum("kij,ki->j", chi, dz)))


def readout_error_context(profile: DeviceProfile, known: Known, n: int) -> dict[str, float]:
    """The standard errors of each site's ε and ε′ the readout is corrected with (their records'; 0
    for the profile file's values): context ``readout_error {i} fp`` / ``fn``."""
    out: dict[str, float] = {}
    for site in range(n):
        eps, eps_prime = known.site_readout(profile, site)
        out[f"readout_error {site} fp"] = eps.uncertainty
        out[f"readout_error {site} fn"] = eps_prime.uncertainty
    return out


def readout_error_moves(context: dict[str, float], z: NDArray, chi: NDArray, inverse: NDArray) -> NDArray:
    """How far the fitted corrections move per error of one site's ε or ε′, shape (2n, sites): the
    corrected ⟨Z_i⟩ = (z_read − ε′ + ε)/(1 − ε − ε′) of the free phases (``z``, (K, n)) moves by
    (1 + z)/b per unit of ε_i and by (z − 1)/b per unit of ε′_i (b = 1 − ε_i − ε′_i), and the
    Gauss–Newton minimum by −H⁻¹ (2/K) Σ_k χ_kᵀ dz_k (absolute values; the nudged phases' difference
    only rescales a gradient that vanishes at the minimum). Empty when no error is known."""
    k_count, n = z.shape
    readout = readout_from_context(context, n)
    rows = []
    for i in range(n):
        for kind, slope in (("fp", 1 + z[:, i]), ("fn", z[:, i] - 1)):
            sigma = context.get(f"readout_error {i} {kind}", 0.0)
            if not sigma > 0:
                continue
            dz = np.zeros((k_count, n))
            dz[:, i] = slope / readout.contrast[i] * sigma
            rows.append(minimum_move(dz, chi, inverse))
    return np.array(rows).reshape(len(rows), n)


def _trust_scale(change: NDArray, limit: float) -> float:
    """The factor that shortens ``change`` to at most ``limit`` in its largest entry (1 for a step
    within it, a zero step included)."""
    largest = float(np.abs(change).max())
    return 1.0 if largest <= limit else limit / largest


def _hessian(chi: NDArray) -> NDArray:
    """Gauss–Newton Hessian (2/K) Σ_k χ_kᵀχ_k of L."""
    return np.asarray(2 / len(chi) * np.einsum("kij,kil->jl", chi, chi))


ROUTINE = QEPHamiltonianCalibration()
