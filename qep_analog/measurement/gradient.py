"""QEP gradients with error bars from measured phases; shot allocation; the choice of beta.

A QEP experiment for one input has phases, each a preparation measured in every setting of a
:class:`~qep_analog.measurement.settings.MeasurementPlan`: ``plus`` (nu = +beta eps), ``minus``
(nu = -beta eps, symmetric scheme) or ``free`` (nu = 0, one-sided scheme; also where eps comes
from). With T the matrix of the generators' string coefficients,

    symmetric:  g = T (m+ - m-) / (2 beta),   Cov g = T (C+ + C-) T^T / (4 beta^2)
    one-sided:  g = T (m+ - m0) / beta,       Cov g = T (C+ + C0) T^T / beta^2

with m, C the string means and their covariance (block diagonal over settings, the strings of one
setting correlated because they are read from the same shots). The error signal eps is the one
applied in the experiment and is held fixed: the error bars are those of the gradient given eps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import MeasurementError
from qep_analog.measurement.estimators import (
    Estimate,
    SettingCounts,
    estimate_plan,
    exact_moments,
    outcome_values,
)
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.sampling import MAX_SHOTS, outcome_probabilities, sample_counts
from qep_analog.measurement.settings import MeasurementPlan
from qep_analog.memory import require_memory
from qep_analog.model.pauli import IDENTITY
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.names import SCHEMES
from qep_analog.qep.scheme import PHASES, denominator, difference_quotient


def check_scheme(scheme: str, beta: float) -> None:
    """A known scheme and a positive, finite β, or one :class:`MeasurementError` line."""
    if scheme not in SCHEMES:
        raise MeasurementError(f"gradient: scheme {scheme!r} is unknown (valid: {', '.join(SCHEMES)})")
    if isinstance(beta, bool) or not (isinstance(beta, int | float) and np.isfinite(beta) and beta > 0):
        raise MeasurementError(f"gradient: beta = {beta!r} must be a positive number")


def coefficient_matrix(model: QEPModel, plan: MeasurementPlan, section: str = "trainable") -> NDArray:
    """Coefficients (n_operators, n_plan_strings) of the ``section`` operators on the plan's strings.

    Every non-identity string of the operators must be in the plan.
    """
    index = {s: k for k, s in enumerate(plan.strings)}
    operators = getattr(model, section)
    out = np.zeros((len(operators), len(index)))
    for row, (name, operator) in enumerate(operators.items()):
        for string, coefficient in operator.items():
            if string == IDENTITY:
                continue
            if string not in index:
                raise MeasurementError(
                    f"gradient: {section} {name!r} needs {string.label}, measured in no setting"
                )
            out[row, index[string]] = coefficient
    return out


def _identity_offsets(model: QEPModel, section: str) -> NDArray:
    return np.array([op.get(IDENTITY, 0.0) for op in getattr(model, section).values()])


@dataclass(frozen=True, eq=False)
class MeasuredGradient:
    """dL/dtheta with standard errors and covariance, from measured phases."""

    parameters: list[str]
    values: NDArray
    covariance: NDArray
    beta: float
    scheme: str
    shots: dict[str, list[int]]
    generators: dict[str, Estimate] = field(default_factory=dict)
    outputs: Estimate | None = None

    @property
    def standard_errors(self) -> NDArray:
        return np.asarray(np.sqrt(np.clip(np.diag(self.covariance), 0.0, None)))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "parameters": self.parameters,
            "gradient": self.values.tolist(),
            "standard_error": self.standard_errors.tolist(),
            "beta": self.beta,
            "scheme": self.scheme,
            "shots": self.shots,
        }
        if self.outputs is not None:
            out["outputs"] = {
                label: {"value": float(m), "standard_error": float(e)}
                for label, m, e in zip(
                    self.outputs.labels, self.outputs.means, self.outputs.standard_errors, strict=True
                )
            }
        return out


def generator_estimates(
    model: QEPModel, plan: MeasurementPlan, strings: Estimate, section: str = "trainable"
) -> Estimate:
    """<A_j> (or <O_k> with ``section="outputs"``) and their covariance from the plan's strings."""
    t = coefficient_matrix(model, plan, section)
    means = t @ strings.means + _identity_offsets(model, section)
    return Estimate(tuple(getattr(model, section)), means, t @ strings.covariance @ t.T, strings.shots)


def gradient_from_counts(
    model: QEPModel,
    plan: MeasurementPlan,
    phases: Mapping[str, Sequence[SettingCounts]],
    beta: float,
    scheme: str = "symmetric",
    mitigation: ReadoutErrors | None = None,
) -> MeasuredGradient:
    """The QEP gradient and its covariance from measured phases (see the module docstring).

    ``phases`` maps ``plus``/``minus``/``free`` to counts per setting of ``plan``; ``mitigation``
    inverts these readout errors. A ``free`` phase also gives the outputs <O_k>.
    """
    check_scheme(scheme, beta)
    unknown = sorted(set(phases) - {"plus", "minus", "free"})
    if unknown:
        raise MeasurementError(f"gradient: unknown phase {unknown[0]!r} (valid: plus, minus, free)")
    for name in PHASES[scheme]:
        if name not in phases:
            raise MeasurementError(f"gradient: the {scheme} scheme needs a {name!r} phase")
    generators = {
        name: generator_estimates(model, plan, estimate_plan(plan, data, mitigation))
        for name, data in phases.items()
    }
    first, second = (generators[p] for p in PHASES[scheme])
    scale = denominator(beta, scheme)
    values = difference_quotient(first.means, second.means, beta, scheme)
    covariance = (first.covariance + second.covariance) / scale**2
    outputs = None
    if "free" in phases:
        outputs = generator_estimates(
            model, plan, estimate_plan(plan, phases["free"], mitigation), "outputs"
        )
    shots = {name: [c.shots for c in data] for name, data in phases.items()}
    return MeasuredGradient(
        model.parameter_names, values, covariance, float(beta), scheme, shots, generators, outputs
    )


def _shot_table(plan: MeasurementPlan, phases: Sequence[str], shots: int | ArrayLike) -> NDArray:
    table = np.broadcast_to(np.asarray(shots), (len(phases), len(plan.settings)))
    if not np.issubdtype(table.dtype, np.integer) or (table < 1).any():
        raise MeasurementError(f"measurement: shots {shots!r} must be positive integers")
    return np.asarray(table)


def phase_names(scheme: str, free_phase: bool = True) -> list[str]:
    """The phases of a scheme: ``plus``, then ``minus`` (symmetric) and ``free`` (always there for
    one-sided; with ``free_phase`` for symmetric, where it gives the error signal)."""
    if scheme not in SCHEMES:
        raise MeasurementError(f"gradient: scheme {scheme!r} is unknown (valid: {', '.join(SCHEMES)})")
    return list(PHASES[scheme]) + (["free"] if free_phase and scheme == "symmetric" else [])


def sample_phases(
    states: Mapping[str, NDArray],
    plan: MeasurementPlan,
    shots: int | ArrayLike,
    rng: np.random.Generator,
    readout: ReadoutErrors | None = None,
) -> dict[str, list[SettingCounts]]:
    """Read each phase's state in every setting of ``plan``; ``shots`` per setting: one number or a
    (phases, settings) table in the order of ``states``."""
    names = list(states)
    table = _shot_table(plan, names, shots)
    return {
        name: [
            SettingCounts.from_dense(
                setting.bases, sample_counts(states[name], setting.bases, int(table[p, k]), rng, readout)
            )
            for k, setting in enumerate(plan.settings)
        ]
        for p, name in enumerate(names)
    }


# -- shot allocation ---------------------------------------------------------------------------


def setting_variances(
    model: QEPModel,
    plan: MeasurementPlan,
    states: Mapping[str, NDArray],
    beta: float,
    scheme: str = "symmetric",
    readout: ReadoutErrors | None = None,
    mitigate: bool = True,
) -> NDArray:
    """Per-shot variance (phases, settings) of each setting's contribution to sum_j Var(g_j).

    ``states`` maps the scheme's phases to state vectors; one shot in setting s of phase p adds
    V[p, s] / M[p, s] to the total gradient variance sum_j Var(g_j) for M[p, s] shots.
    """
    check_scheme(scheme, beta)
    t = coefficient_matrix(model, plan)
    scale = denominator(beta, scheme)
    names = PHASES[scheme]
    out = np.zeros((len(names), len(plan.settings)))
    start = 0
    for k, setting in enumerate(plan.settings):
        width = len(setting.strings)
        block = t[:, start : start + width]
        for p, name in enumerate(names):
            probabilities = outcome_probabilities(states[name], setting.bases, readout)
            _, per_shot = exact_moments(
                probabilities, setting.bases, list(setting.strings), readout if mitigate else None
            )
            out[p, k] = np.trace(block @ per_shot @ block.T) / scale**2
        start += width
    return out


def setting_variances_from_counts(
    model: QEPModel,
    plan: MeasurementPlan,
    phases: Mapping[str, Sequence[SettingCounts]],
    beta: float,
    scheme: str = "symmetric",
    mitigation: ReadoutErrors | None = None,
) -> NDArray:
    """:func:`setting_variances` estimated from pilot counts instead of states."""
    check_scheme(scheme, beta)
    t = coefficient_matrix(model, plan)
    scale = denominator(beta, scheme)
    names = PHASES[scheme]
    out = np.zeros((len(names), len(plan.settings)))
    for p, name in enumerate(names):
        estimates = estimate_plan(plan, phases[name], mitigation)
        start = 0
        for k, setting in enumerate(plan.settings):
            width = len(setting.strings)
            block = t[:, start : start + width]
            cov = estimates.covariance[start : start + width, start : start + width] * phases[name][k].shots
            out[p, k] = np.trace(block @ cov @ block.T) / scale**2
            start += width
    return out


@dataclass(frozen=True, eq=False)
class ShotAllocation:
    """Shots per (phase, setting) and the total gradient variance sum_j Var(g_j) they give,
    against the same budget spread uniformly."""

    shots: NDArray
    variance: float
    uniform_variance: float

    @property
    def gain(self) -> float:
        """Uniform variance over allocated variance (> 1: the allocation helps)."""
        return self.uniform_variance / self.variance if self.variance > 0 else 1.0


def allocate_shots(per_shot_variance: ArrayLike, budget: int, minimum: int = 2) -> ShotAllocation:
    """Split ``budget`` shots over (phase, setting) cells to minimise sum V/M (Neyman: M ∝ sqrt V),
    with at least ``minimum`` shots per cell (for a sample variance), rounded by largest remainder."""
    v = np.clip(np.asarray(per_shot_variance, dtype=float), 0.0, None)
    cells = v.size
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < minimum * cells:
        raise MeasurementError(
            f"shot allocation: budget {budget!r} is below {minimum} shots x {cells} cells"
        )
    root = np.sqrt(v).ravel()
    shots = np.full(cells, float(minimum))
    free = np.ones(cells, dtype=bool)
    # water-filling: cells whose Neyman share falls below the minimum keep the minimum
    for _ in range(cells):
        remaining = budget - minimum * (~free).sum()
        weight = root[free].sum()
        share = np.where(free, remaining * root / weight if weight > 0 else remaining / free.sum(), minimum)
        low = free & (share < minimum)
        if not low.any():
            shots = share
            break
        free &= ~low
    whole = np.floor(shots).astype(np.int64)
    order = np.argsort(-(shots - whole), kind="stable")
    whole[order[: budget - whole.sum()]] += 1
    whole = whole.reshape(v.shape)

    def total(m: NDArray) -> float:
        return float((v / m).sum())

    uniform = np.full(v.shape, budget / cells)
    return ShotAllocation(whole, total(whole.astype(float)), total(uniform))


# -- the choice of beta ------------------------------------------------------------------------


def bias_coefficients(betas: ArrayLike, gradients: ArrayLike, scheme: str = "symmetric") -> NDArray:
    """Fit g(beta) = g0 + kappa beta^p (p = 2 symmetric, 1 one-sided) per parameter by least squares
    over gradients (n_betas, n_parameters) at ``betas``; returns kappa (n_parameters,)."""
    b = np.asarray(betas, dtype=float)
    g = np.atleast_2d(np.asarray(gradients, dtype=float))
    if len(b) < 2 or g.shape[0] != len(b):
        raise MeasurementError(
            f"bias: need gradients at two or more betas, got {len(b)} betas for {g.shape[0]}"
        )
    power = 2 if scheme == "symmetric" else 1
    design = np.stack([np.ones_like(b), b**power], axis=1)
    solution, *_ = np.linalg.lstsq(design, g, rcond=None)
    return np.asarray(solution[1])


@dataclass(frozen=True)
class BetaChoice:
    """beta minimising MSE(beta) = c1 beta^(2p) + c2 / (M beta^2) (p = 2 symmetric, 1 one-sided),
    and the two terms there."""

    beta: float
    bias_term: float
    variance_term: float
    c1: float
    c2: float
    shots: int
    scheme: str

    @property
    def mse(self) -> float:
        return self.bias_term + self.variance_term

    def terms(self, beta: float) -> tuple[float, float]:
        """(squared bias, variance) at another ``beta``."""
        power = 4 if self.scheme == "symmetric" else 2
        return self.c1 * beta**power, self.c2 / (self.shots * beta**2)


def choose_beta(kappa: ArrayLike, c2: float, shots: int, scheme: str = "symmetric") -> BetaChoice:
    """The beta of smallest estimated MSE of the whole gradient, sum over parameters.

    ``kappa``: bias coefficients (:func:`bias_coefficients`), so c1 = sum kappa^2; ``c2``: the
    per-shot variance of the gradient times beta^2, sum over parameters (e.g. the sum of
    :func:`setting_variances` at beta = 1 for equal shots M per setting and phase: c2 = sum V).
    Symmetric: beta* = (c2 / (2 c1 M))^(1/6); one-sided: beta* = (c2 / (c1 M))^(1/4).
    """
    c1 = float(np.sum(np.asarray(kappa, dtype=float) ** 2))
    if scheme not in SCHEMES:
        raise MeasurementError(f"beta: scheme {scheme!r} is unknown (valid: {', '.join(SCHEMES)})")
    if not (c1 > 0 and c2 > 0 and shots > 0):
        raise MeasurementError(
            f"beta: needs c1 > 0, c2 > 0 and shots > 0 (c1 = {c1:g}, c2 = {c2:g}, M = {shots})"
        )
    if scheme == "symmetric":
        beta = (c2 / (2.0 * c1 * shots)) ** (1.0 / 6.0)
    else:
        beta = (c2 / (c1 * shots)) ** 0.25
    choice = BetaChoice(float(beta), 0.0, 0.0, c1, float(c2), int(shots), scheme)
    bias, variance = choice.terms(beta)
    return BetaChoice(float(beta), bias, variance, c1, float(c2), int(shots), scheme)


# -- batched sampling for training -------------------------------------------------------------


#: float64 (or int64) vectors over the outcomes besides the tabulated values: the outcome indices,
#: their bits (per qubit, in the largest setting: counted as 4 + n)
OUTCOME_VECTORS = 4


class BitstringSampler:
    """Reads batches of states in the settings of a plan and estimates the model's strings.

    ``shots`` per setting and state; ``readout`` errors are applied, and inverted when
    ``mitigate``. The per-outcome values of every setting are tabulated once (2^n rows).
    """

    def __init__(
        self,
        model: QEPModel,
        plan: MeasurementPlan,
        shots: int,
        readout: ReadoutErrors | None = None,
        mitigate: bool = True,
    ) -> None:
        if isinstance(shots, bool) or not isinstance(shots, int) or not 1 <= shots <= MAX_SHOTS:
            raise MeasurementError(f"sampler: shots = {shots!r} must be an integer in [1, {MAX_SHOTS}]")
        dim = 1 << model.n_qubits
        tabulated = sum(len(st.strings) for st in plan.settings)
        require_memory(
            f"sampler: outcome values of {len(plan.settings)} settings of {model.n_qubits} qubits",
            8 * dim * (tabulated + OUTCOME_VECTORS + model.n_qubits),
        )
        self.model = model
        self.plan = plan
        self.shots = shots
        self.readout = None if readout is None or readout.trivial else readout
        if self.readout is not None:
            self.readout.check(model.n_qubits)
        table = model.compiled.table
        self.n_strings = len(table.strings)
        self.identity = np.array([s == IDENTITY for s in table.strings])
        outcomes = np.arange(1 << model.n_qubits)
        mitigation = self.readout if mitigate else None
        self._columns = [np.array([table.index[s] for s in st.strings]) for st in plan.settings]
        self._values = [
            outcome_values(st.bases, outcomes, list(st.strings), mitigation) for st in plan.settings
        ]
        output_strings = {s for op in model.outputs.values() for s in op if s != IDENTITY}
        self.output_settings = [k for k, st in enumerate(plan.settings) if output_strings & set(st.strings)]

    def strings(
        self, states: NDArray, rng: np.random.Generator, settings: Sequence[int] | None = None
    ) -> NDArray:
        """Estimated values (B, n_strings) of the compiled strings; strings outside the read
        settings are 0, the identity 1."""
        psi = np.atleast_2d(np.asarray(states))
        if not np.issubdtype(psi.dtype, np.number) or psi.shape[-1] != 1 << self.model.n_qubits:
            raise MeasurementError(
                f"sampler: bitstrings are sampled from state vectors of dimension 2^{self.model.n_qubits}, "
                f"got {psi.dtype} of shape {psi.shape} (an MPS or Gibbs backend?)"
            )
        out = np.zeros((psi.shape[0], self.n_strings))
        out[:, self.identity] = 1.0
        for k in range(len(self.plan.settings)) if settings is None else settings:
            counts = sample_counts(psi, self.plan.settings[k].bases, self.shots, rng, self.readout)
            out[:, self._columns[k]] = counts @ self._values[k] / self.shots
        return out
