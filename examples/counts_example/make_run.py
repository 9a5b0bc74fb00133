"""Write examples/counts_example/run.json: the README's 4-qubit model measured in emulation."""

import numpy as np

from qep_analog.backends.sampled import measure_phases
from qep_analog.measurement.counts_file import CountsRun, write_counts_run
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.settings import measurement_plan
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.solvers.equilibrium import Equilibrium

model = QEPModel(
    n_qubits=4,
    fixed=pauli_sum([(-1.0, "Z0 Z1"), (-0.7, "X2")]),
    inputs={"g": pauli_sum([(-1.0, "X0"), (-1.0, "X1")])},
    trainable={"a": pauli_sum([(1.0, "Z1 Z2")]), "b": pauli_sum([(1.0, "X3"), (0.5, "Z3")])},
    outputs={"m": pauli_sum([(1.0, "Z3"), (0.5, "Z1 Z2")])},
)
readout = ReadoutErrors.uniform(4, 0.025, 0.10)  # the fresnel-like profile
x, theta, eps, beta = np.array([0.5]), np.array([0.3, -0.2]), np.array([1.0]), 0.05
plan = measurement_plan(model)
phases = measure_phases(
    Equilibrium(model), x, theta, eps, beta, plan, 1_000_000, np.random.default_rng(0), readout=readout
)
run = CountsRun(
    model=model,
    x={"g": 0.5},
    theta={"a": 0.3, "b": -0.2},
    error_signal={"m": 1.0},
    beta=beta,
    scheme="symmetric",
    phases=phases,
    readout=readout,
    mitigate=True,
)
print(write_counts_run("examples/counts_example", run))
