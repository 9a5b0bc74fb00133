"""Fixtures of the measurement tests: a small measured run on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from qep_analog.backends.sampled import measure_phases
from qep_analog.measurement.counts_file import CountsRun, write_counts_run
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.settings import measurement_plan
from qep_analog.model.model_file import save_model
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.solvers.equilibrium import Equilibrium


def small_model() -> QEPModel:
    return QEPModel(
        n_qubits=3,
        fixed=pauli_sum([(-1.0, "Z0 Z1"), (-0.7, "X2"), (-0.5, "X0"), (-0.4, "X1")]),
        inputs={"g": pauli_sum([(-1.0, "X0"), (-1.0, "X1")])},
        trainable={"a": pauli_sum([(1.0, "Z1 Z2")]), "b": pauli_sum([(1.0, "X2"), (0.5, "Z2")])},
        outputs={"m": pauli_sum([(1.0, "Z2"), (0.5, "Z1 Z2")])},
    )


def _make_run(tmp_path: Path, *, embed: bool = True, shots: int = 20000) -> tuple[Path, CountsRun]:
    model = small_model()
    eq = Equilibrium(model)
    plan = measurement_plan(model)
    readout = ReadoutErrors.uniform(3, 0.025, 0.1)
    x, theta, eps = np.array([0.5]), np.array([0.3, -0.2]), np.array([1.0])
    phases = measure_phases(eq, x, theta, eps, 0.1, plan, shots, np.random.default_rng(0), readout=readout)
    model_file = None
    if not embed:
        save_model(model, tmp_path / "model.yaml")
        model_file = "model.yaml"
    run = CountsRun(
        model=model, x={"g": 0.5}, theta={"a": 0.3, "b": -0.2}, error_signal={"m": 1.0}, beta=0.1,
        scheme="symmetric", phases=phases, readout=readout, mitigate=True, model_file=model_file,
    )  # fmt: skip
    write_counts_run(tmp_path, run)
    return tmp_path, run


@pytest.fixture
def make_run() -> Callable[..., tuple[Path, CountsRun]]:
    """``make_run(run_dir, embed=True, shots=20000)``: an emulated symmetric run of a 3-qubit model
    (beta 0.1, readout errors 0.025 / 0.1, mitigated) written to ``run_dir/run.json``."""
    return _make_run
