"""The gradient of an emulated QEP step next to its bias budget, for ``emulate`` (and the duration
that brings the bias under a fraction of the gradient, for ``emulate`` and ``sequence build``)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: a ramp this many times longer than the schedule's is the longest a "needs about" line looks for
NEEDS_LIMIT = 1000.0


def bias_fraction(text: str) -> float:
    """An argparse type: a fraction in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bias fraction {text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"bias fraction {value:g} is outside (0, 1]")
    return value


@dataclass(frozen=True)
class QEPStep:
    """What a schedule file's metadata says of the QEP step it prepares: the model as the device
    realises it, the point, the error signal and β."""

    model: Any
    x: NDArray
    theta: NDArray
    error_signal: NDArray
    beta: float

    @property
    def nudge(self) -> Any:
        """V = Σ ε_k O_k (a PauliSum)."""
        from qep_analog import PauliSum

        pairs = zip(self.error_signal.tolist(), self.model.outputs.values(), strict=True)
        return PauliSum.from_terms(list(pairs))


def qep_step_of(schedules: list[Any], profile: Any) -> QEPStep | None:
    """The QEP step of schedules built by ``sequence build`` (free, plus and minus phases whose model
    file is still there), else None."""
    from qep_analog import load_model, realised_model

    metadata = schedules[0].metadata
    labels = {s.label for s in schedules}
    source = metadata.get("model")
    if not {"free", "plus", "minus"} <= labels or "beta" not in metadata or not source:
        return None
    if not Path(source).is_file():
        return None
    model = realised_model(load_model(source), profile)
    return QEPStep(
        model,
        np.asarray(metadata.get("x", []), dtype=float),
        np.asarray(metadata.get("theta", []), dtype=float),
        np.asarray(metadata.get("error_signal", []), dtype=float),
        float(metadata["beta"]),
    )


def exact_gradient_of(step: QEPStep) -> NDArray:
    """The exact symmetric QEP gradient of the realised model at the step's β."""
    from qep_analog import Equilibrium, qep_gradient

    equilibrium = Equilibrium(step.model, tol=1e-10)
    row = np.atleast_2d
    return np.asarray(
        qep_gradient(
            equilibrium, row(step.x), row(step.theta), row(step.error_signal), step.beta, "symmetric"
        )[0]
    )


def duration_advice(
    estimate: Any, target: float, profile: Any, diagnosis: Any = None
) -> dict[str, float | None]:
    """The duration (µs, on the clock) that brings ‖b‖ under ``target`` within what the profile
    allows — with ``diagnosis`` (an ``Adiabaticity``) at least its adiabatic condition's — or None
    with the duration it would need (``needs``, None beyond 1000 × the ramp)."""
    from qep_analog import ConstraintError, DurationChoice, choose_duration, recommended_duration

    longest = profile.capabilities.max_duration
    duration = estimate.budget.duration
    if not math.isfinite(longest):
        longest = NEEDS_LIMIT * duration
    wanted = estimate.duration_for(target, longest)
    if wanted is None:
        needs = estimate.duration_for(target, NEEDS_LIMIT * duration)
        return {"recommended_duration_us": None, "needs_duration_us": needs}
    if diagnosis is not None:
        return {"recommended_duration_us": recommended_duration(diagnosis, profile, at_least=wanted)}
    try:
        choice = choose_duration(profile, None, DurationChoice(wanted, "bias budget"))
    except ConstraintError:
        return {"recommended_duration_us": None, "needs_duration_us": wanted}
    return {"recommended_duration_us": choice.duration}


def gradient_report(
    schedules: list[Any],
    rows: list[dict[str, Any]],
    profile: Any,
    step: QEPStep,
    fraction: float,
    spectra: dict[int, Any],
) -> dict[str, Any]:
    """The emulated gradient (the phases' expectation values, no shot noise), the exact one, their
    difference and the bias estimate per parameter, and the duration advice for ``fraction``."""
    from qep_analog import gradient_bias

    index = {schedule.label: k for k, schedule in reversed(list(enumerate(schedules)))}
    values = {label: np.asarray(rows[k]["generators"]) for label, k in index.items()}
    emulated = (values["plus"] - values["minus"]) / (2 * step.beta)
    exact = exact_gradient_of(step)
    free = index["free"]
    estimate = gradient_bias(
        schedules[free], profile, step.model, step.error_signal, step.beta, spectra[free]
    )
    norm = float(np.linalg.norm(exact))
    diagnosis = rows[free]["diagnosis"]
    advice = duration_advice(estimate, fraction * norm, profile, diagnosis) if norm > 0 else {}
    budget = estimate.budget
    return {
        "parameters": estimate.parameters,
        "emulated": emulated.tolist(),
        "exact": exact.tolist(),
        "measured_bias": (emulated - exact).tolist(),
        "bias": estimate.bias.tolist(),
        "relative_bias": float(np.linalg.norm(estimate.bias) / norm) if norm > 0 else math.inf,
        **ramp_of(schedules[free]),
        **budget.to_document(),
        "duration_times_min_gap": budget.duration * budget.min_gap,
        "bias_fraction": fraction,
        **advice,
    }


def print_gradient_report(report: dict[str, Any], noise: bool) -> None:
    width = max(len("parameter"), *(len(n) for n in report["parameters"]))
    source = "noisy emulated states" if noise else "emulated states"
    print(f"gradient from the {source} (no shot noise) against the exact QEP gradient at the same beta:")
    columns = f"{'emulated':>12}  {'exact':>12}  {'measured bias':>13}  {'bias bound':>10}"
    print(f"{'parameter':<{width}}  {columns}")
    for j, name in enumerate(report["parameters"]):
        print(
            f"{name:<{width}}  {report['emulated'][j]:>12.6g}  {report['exact'][j]:>12.6g}  "
            f"{report['measured_bias'][j]:>13.3g}  {report['bias'][j]:>10.3g}"
        )
    print(budget_line(report))


def budget_line(report: dict[str, Any]) -> str:
    """One line: the ramp, T·Δ_min, the excitation, ‖b‖/‖g‖ and the duration advice."""
    percent = 100 * report["bias_fraction"]
    ends = report.get("ends", "sharp")
    ramp = f"{report['shape']} ramp" + ("" if ends == "sharp" else f" with {ends} ends")
    line = (
        f"bias budget: {ramp} (boundary order {report['boundary_order']}), "
        f"{report['duration_us']:g} µs, T·Δ_min = {report['duration_times_min_gap']:.3g}, excitation "
        f"|a| = {report['excitation_amplitude']:.2g}; bias bound ‖b‖ = {report['relative_bias']:.2g} × ‖g‖"
    )
    if "recommended_duration_us" not in report:
        return line
    recommended = report["recommended_duration_us"]
    if recommended is not None:
        if recommended <= report["duration_us"] + 1e-9:
            return f"{line}; under {percent:g} % of the gradient"
        return f"{line}; under {percent:g} % from {recommended:.4g} µs (recommended)"
    needs = report.get("needs_duration_us")
    about = f"it needs about {needs:.3g} µs" if needs is not None else "not even 1000 × longer"
    return f"{line}; no duration the device allows brings it under {percent:g} % ({about})"


def ramp_of(schedule: Any) -> dict[str, str]:
    """The ramp's ``shape`` and ``ends`` as the schedule records them."""
    meta = schedule.metadata
    return {"shape": str(meta.get("shape", "unknown")), "ends": str(meta.get("ends", "sharp"))}


def build_report(schedules: list[Any], profile: Any, step: QEPStep, fraction: float) -> dict[str, Any]:
    """The bias estimate of freshly built schedules (no emulation: the exact gradient and the path's
    spectrum) and the duration that brings it under ``fraction`` of the gradient."""
    from qep_analog import gradient_bias

    free = next(s for s in schedules if s.label == "free")
    estimate = gradient_bias(free, profile, step.model, step.error_signal, step.beta)
    exact = exact_gradient_of(step)
    norm = float(np.linalg.norm(exact))
    budget = estimate.budget
    return {
        "parameters": estimate.parameters,
        "exact": exact.tolist(),
        "bias": estimate.bias.tolist(),
        "relative_bias": float(np.linalg.norm(estimate.bias) / norm) if norm > 0 else math.inf,
        **ramp_of(free),
        **budget.to_document(),
        "duration_times_min_gap": budget.duration * budget.min_gap,
        "bias_fraction": fraction,
        **(duration_advice(estimate, fraction * norm, profile) if norm > 0 else {}),
    }


def preparation_of(report: dict[str, Any]) -> dict[str, Any]:
    """What a counts run records of the preparation's bias (``CountsRun.preparation``: µs, rad/µs)."""
    names = report["parameters"]
    return {
        "bias": dict(zip(names, report["bias"], strict=True)),
        "measured_bias": dict(zip(names, report["measured_bias"], strict=True)),
        "shape": report["shape"],
        "boundary_order": report["boundary_order"],
        "duration": report["duration_us"],
        "min_gap": report["min_gap_rad_per_us"],
    }
