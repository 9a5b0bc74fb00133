"""One QEP step through a backend, as a lab runs it: the free phase of every sample is prepared and
read (its outputs give the error signal ε = ∂L/∂⟨O⟩), then the nudged phases ν = ±βε, and the
gradient of each sample comes from the counts with error bars (or from exact values).

A round is one batch of jobs. A backend that has ``for_round(name)`` (the bundle) gets a fresh one per
round, so a step's rounds and a run's steps each have their own folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.backends.estimate import sample_gradients
from qep_analog.backends.jobs import BatchResult, PhaseJob, phase_jobs, sample_coefficients
from qep_analog.measurement.counts_file import plan_from_settings
from qep_analog.measurement.estimators import estimate_plan
from qep_analog.measurement.gradient import generator_estimates
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.losses import Loss


@dataclass(frozen=True)
class MeasuredOutputs:
    """The free phase of a batch: ⟨O⟩ per sample with standard errors (zero when exact)."""

    jobs: tuple[PhaseJob, ...]
    batch: BatchResult
    values: NDArray
    errors: NDArray


@dataclass(frozen=True)
class MeasuredStep:
    """A QEP step of a batch on a backend: per sample the gradient dL/dθ and its standard errors,
    the free outputs, and what the step cost (shots, device time) with each round's metadata."""

    gradients: NDArray
    errors: NDArray
    outputs: NDArray
    output_errors: NDArray
    shots: int
    device_time_s: float | None
    rounds: tuple[dict[str, Any], ...]
    #: per sample the bias estimate of the preparations (``None``: the backend gives none)
    bias: NDArray | None = None

    @property
    def mean_gradient(self) -> NDArray:
        return np.asarray(self.gradients.mean(axis=0))

    @property
    def mean_gradient_bias(self) -> NDArray | None:
        """The bias bound of the batch-mean gradient (the mean of the samples' bounds)."""
        return None if self.bias is None else np.asarray(self.bias.mean(axis=0))

    @property
    def mean_gradient_errors(self) -> NDArray:
        """Standard errors of the batch-mean gradient (independent samples)."""
        return np.asarray(np.sqrt((self.errors**2).sum(axis=0)) / len(self.errors))


def backend_model(backend: Any, model: QEPModel) -> QEPModel:
    """The model whose generators the backend's counts measure (the realised one, tails included)."""
    return getattr(backend, "model", None) or model


def mitigation_of(backend: Any) -> ReadoutErrors | None:
    """The readout errors a backend's counts carry and the estimates invert (None: ideal reads)."""
    return getattr(backend, "mitigation", None)


def in_round(backend: Any, name: str, entropy: Sequence[int] | None = None) -> Any:
    """The backend for the round ``name``: its own folder (a bundle), its own random stream
    (``entropy``: a resumed run draws what the first run drew)."""
    if entropy is not None and hasattr(backend, "reseed"):
        backend.reseed(entropy)
    return backend.for_round(name) if hasattr(backend, "for_round") else backend


def shots_of(jobs: Sequence[PhaseJob]) -> int:
    return sum(job.shots * len(job.bases) for job in jobs if job.shots)


def measure_outputs(
    backend: Any,
    model: QEPModel,
    inputs: NDArray,
    theta: NDArray,
    bases: Sequence[str],
    shots: int | None,
    round_name: str = "free",
    entropy: Sequence[int] | None = None,
) -> MeasuredOutputs:
    """The free phase of every input: ⟨O⟩ with standard errors."""
    model = backend_model(backend, model)
    zeros = tuple(0.0 for _ in model.outputs)
    rows = np.atleast_2d(inputs)
    thetas = sample_coefficients(theta, len(rows))
    jobs = tuple(
        PhaseJob(b, "free", tuple(map(float, x)), thetas[b], zeros, tuple(bases), shots)
        for b, x in enumerate(rows)
    )
    batch = in_round(backend, round_name, entropy).run(jobs)
    found = batch.by_key()
    mitigation = mitigation_of(backend)
    plan = None
    values, errors = [], []
    for job in jobs:
        result = found[job.key]
        if result.exact:
            values.append(np.asarray(result.outputs))
            errors.append(np.zeros(len(model.outputs)))
            continue
        plan = plan or plan_from_settings(model, list(bases), outputs=True)
        strings = estimate_plan(plan, [result.counts[b] for b in bases], mitigation)
        estimate = generator_estimates(model, plan, strings, "outputs")
        values.append(np.asarray(estimate.means))
        errors.append(np.asarray(estimate.standard_errors))
    return MeasuredOutputs(jobs, batch, np.array(values), np.array(errors))


def measured_step(
    backend: Any,
    model: QEPModel,
    inputs: NDArray,
    theta: NDArray,
    targets: NDArray,
    loss: Loss,
    *,
    beta: float,
    scheme: str,
    bases: Sequence[str],
    shots: int | None,
    round_prefix: str = "",
    entropy: Sequence[int] | None = None,
) -> MeasuredStep:
    """The free round (outputs → ε), then the nudged round, then each sample's gradient. With
    ``entropy`` the rounds draw their shots from ``(*entropy, 0)`` and ``(*entropy, 1)``."""
    model = backend_model(backend, model)
    first, second_entropy = (None, None) if entropy is None else ((*entropy, 0), (*entropy, 1))
    free = measure_outputs(backend, model, inputs, theta, bases, shots, f"{round_prefix}free", first)
    error_signal = loss.error_signal(free.values, targets)
    nudged = [
        job
        for job in phase_jobs(inputs, theta, error_signal, beta, scheme, bases, shots, free_phase=False)
        if job.phase != "free"
    ]
    second = in_round(backend, f"{round_prefix}nudged", second_entropy).run(nudged)
    jobs = [*free.jobs, *nudged]
    merged = BatchResult((*free.batch.results, *second.results), {})
    per_sample = sample_gradients(model, jobs, merged, beta, scheme, mitigation_of(backend))
    bias = None
    if hasattr(backend, "preparation_bias"):
        bias = backend.preparation_bias(free.jobs, beta, error_signal)
    times = [b.metadata.get("device_time_s") for b in (free.batch, second)]
    return MeasuredStep(
        np.array([g.values for g in per_sample]),
        np.array([g.standard_errors for g in per_sample]),
        free.values,
        free.errors,
        shots_of(jobs),
        None if any(t is None for t in times) else float(sum(times)),  # type: ignore[arg-type]
        (free.batch.metadata, second.metadata),
        bias,
    )
