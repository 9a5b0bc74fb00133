"""The QEP gradient of each sample from a backend's results: from counts with error bars (the
measurement module, readout mitigation included), or from exact expectation values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qep_analog.backends.jobs import BatchResult, PhaseJob
from qep_analog.errors import MeasurementError
from qep_analog.measurement.counts_file import plan_from_settings
from qep_analog.measurement.gradient import gradient_from_counts
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.scheme import quotient_of_phases


@dataclass(frozen=True)
class SampleGradient:
    """dL/dθ of one sample with standard errors (zero for exact values), and the free phase's
    outputs ⟨O⟩ with their standard errors when the free phase was run."""

    sample: int
    values: NDArray
    standard_errors: NDArray
    outputs: NDArray | None = None
    output_errors: NDArray | None = None


def sample_gradients(
    model: QEPModel,
    jobs: Sequence[PhaseJob],
    batch: BatchResult,
    beta: float,
    scheme: str,
    mitigation: ReadoutErrors | None = None,
) -> list[SampleGradient]:
    """The gradient of every sample of ``jobs`` from ``batch`` (the results of those jobs)."""
    results = batch.by_key()
    missing = [job.key for job in jobs if job.key not in results]
    if missing:
        raise MeasurementError(f"backend results: no result for job {missing[0]!r}")
    samples = sorted({job.sample for job in jobs})
    out = []
    for sample in samples:
        mine = {job.phase: job for job in jobs if job.sample == sample}
        found = {phase: results[job.key] for phase, job in mine.items()}
        if all(r.exact for r in found.values()):
            generators = {phase: r.generators for phase, r in found.items()}
            values = quotient_of_phases(generators, beta, scheme)  # type: ignore[arg-type]
            free = found.get("free")
            outputs = None if free is None else np.asarray(free.outputs)
            zeros = np.zeros_like(values)
            errors = None if outputs is None else np.zeros_like(outputs)
            out.append(SampleGradient(sample, values, zeros, outputs, errors))
            continue
        if any(r.exact for r in found.values()):
            raise MeasurementError(f"backend results of sample {sample}: counts and exact values mixed")
        bases = list(mine["plus"].bases)
        phases = {
            phase: [r.counts[b] for b in bases]  # type: ignore[index]
            for phase, r in found.items()
        }
        plan = plan_from_settings(model, bases, outputs="free" in phases)
        measured = gradient_from_counts(model, plan, phases, beta, scheme, mitigation)
        estimate = measured.outputs
        out.append(
            SampleGradient(
                sample,
                measured.values,
                measured.standard_errors,
                None if estimate is None else np.asarray(estimate.means),
                None if estimate is None else np.asarray(estimate.standard_errors),
            )
        )
    return out
