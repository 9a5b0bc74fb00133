"""The ion sensor: the model is the chain the device drives (per beat-note side), the per-sample
parameterisation's Jacobians, the labels from the chain's pseudo-critical field, the device's limits
at the corners of the input window, and training through the exact backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import qep_analog as qa
from qep_analog.backends.configure import backend_for_run
from qep_analog.devices import ions
from qep_analog.devices.mapping import map_model
from qep_analog.qep.gradients import exact_gradient
from qep_analog.sequences.phases import model_hamiltonian, target_controls
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.tasks.ion_sensor import SIDES, IonSensorTask

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def task() -> IonSensorTask:
    return IonSensorTask(profile=qa.read_profile("yb171-chain"), n_chain=4, test_size=12)


def _phi(task: IonSensorTask, seed: int = 0) -> np.ndarray:
    """Parameters away from the start: sensor Rabi frequencies and fields of both sides drawn."""
    rng = np.random.default_rng(seed)
    phi = task.initial_parameters(rng)
    geometry = task.parameterisation
    for k in range(len(SIDES)):
        own = slice(k * geometry.per_side, (k + 1) * geometry.per_side)
        phi[own] = np.concatenate([rng.uniform(0.3, 1.0, 2), rng.normal(0.0, 0.5, geometry.n_ions)])
    return geometry.project(phi)[0]


def test_each_sample_is_the_chain_the_device_drives_at_its_side(task: IonSensorTask) -> None:
    """H(x, θ(φ, x)) equals the Hamiltonian ``ions.realize`` gives for the Rabi frequencies (chain at
    Ω0, sensors at r·Ω0) and the side's beat note; translating it back recovers that beat note —
    above the modes and between the COM mode and the next."""
    geometry = task.parameterisation
    phi = _phi(task)
    points = np.array([[0.5, 0.0], [0.5, 1.0]])
    inputs = task.model_inputs(points)
    theta = geometry.sample_coefficients(phi, inputs)
    n = geometry.n_ions
    for k, side in enumerate(geometry.sides):
        rabi = np.full(n, side.rabi)
        own = phi[k * geometry.per_side : (k + 1) * geometry.per_side]
        rabi[[0, n - 1]] = own[:2] * side.rabi
        realised = ions.realize(ions.IonControls(rabi, side.beat_note), task.profile)
        model = ions.IonSpinModel.from_pauli_sum(model_hamiltonian(task.model, inputs[k], theta[k]), n)
        np.testing.assert_allclose(model.couplings, realised.couplings, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(model.fields, 0.5 * side.j0 + own[2:] * side.j0, rtol=1e-12)
        controls = ions.translate(model, task.profile)
        assert controls.beat_note == pytest.approx(side.beat_note, rel=1e-10)
        np.testing.assert_allclose(controls.rabi, rabi, rtol=1e-7)
    assert np.all(geometry.sides[0].kernel[np.triu_indices(n, 1)] > 0)  # antiferromagnetic
    assert np.all(geometry.sides[1].kernel[np.triu_indices(n, 1)] < 0)  # ferromagnetic


def test_per_sample_jacobians_match_central_differences(task: IonSensorTask) -> None:
    geometry = task.parameterisation
    phi = _phi(task, 1)
    inputs = task.model_inputs(np.array([[0.1, 0.0], [3.0, 1.0], [8.0, 0.0]]))
    numeric = np.stack(
        [
            (
                geometry.sample_coefficients(phi + 1e-6 * e, inputs)
                - geometry.sample_coefficients(phi - 1e-6 * e, inputs)
            )
            / 2e-6
            for e in np.eye(len(phi))
        ],
        axis=2,
    )
    analytic = geometry.sample_jacobians(phi, inputs)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9 * np.abs(analytic).max())
    # a sample depends on its own side's parameters only
    above = slice(0, geometry.per_side)
    assert not np.any(analytic[1][:, above]) and np.any(analytic[0][:, above])


def test_labels_follow_the_order_parameter_of_the_chain(task: IonSensorTask) -> None:
    """The critical field is where the order parameter — computed here independently, with the
    project's solver on the chain as a QEP model — falls fastest; points beyond the margin are
    paramagnets above it and ordered below it; within it they have no class."""
    for k, side in enumerate(task.parameterisation.sides):
        couplings = task._chain_couplings(side)
        m = len(couplings)
        signs = np.ones(m) if side.name == "below" else (-1.0) ** np.arange(m)
        fixed = qa.pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(m) for j in range(i + 1, m))
        order2 = qa.pauli_sum(
            (signs[i] * signs[j] / m**2 * (1 if i == j else 2), f"X{i} X{j}" if i != j else "I")
            for i in range(m)
            for j in range(i, m)
        )
        model = qa.QEPModel(
            m, {"B": qa.pauli_sum((side.j0, f"Z{i}") for i in range(m))}, {"m2": order2}, fixed
        )
        equilibrium = Equilibrium(model, tol=1e-12)
        critical = task.critical[side.name]
        grid = critical * np.exp(np.linspace(-0.5, 0.5, 41))
        free = equilibrium.prepare(np.zeros((len(grid), 0)), grid[:, None])
        values = equilibrium.compiled.output_values(free.strings)[:, 0]
        slope = np.gradient(values, grid)
        assert grid[int(np.argmin(slope))] == pytest.approx(critical, rel=0.05)
        order = "ferromagnet" if side.name == "below" else "antiferromagnet"
        wide = np.exp(task.margin * 1.01)
        points = np.array(
            [[critical * wide, k], [critical / wide, k], [critical * np.exp(task.margin / 2), k]]
        )
        assert task.label(points) == ["paramagnet", order, None]


def test_the_example_fits_the_device(task: IonSensorTask) -> None:
    """Every corner of the example's input window, at the largest sensor Rabi frequencies and fields
    the parameters may take and with the largest nudge a step takes, translates into controls inside
    the device's limits (translate checks them); the device map realises every term."""
    experiment = qa.load_experiment(ROOT / "examples" / "ion_sensor.yaml", nominal=True)
    example = experiment.task
    assert isinstance(example, IonSensorTask)
    assert map_model(example.model, example.profile, rotate=False).fully_realisable
    geometry = example.parameterisation
    extreme = []
    for side in geometry.sides:
        extreme += [np.full(2, side.max_sensor_rabi), np.full(geometry.n_ions, side.max_field)]
    for phi in (np.concatenate(extreme), example.initial_parameters(np.random.default_rng(0))):
        corners = np.array([[f, s] for f in example.field_over_j for s in (0, 1)])
        inputs = example.model_inputs(corners)
        nudge = 2 * experiment.training.beta * np.ones(2)
        for x, theta in zip(inputs, geometry.sample_coefficients(phi, inputs), strict=True):
            free = target_controls(example.model, example.profile, x, theta)
            for sign in (1.0, -1.0):
                target_controls(example.model, example.profile, x, theta, sign * nudge, like=free)


def test_the_exact_backend_gives_the_exact_gradient_of_the_device_parameters(task: IonSensorTask) -> None:
    """QEP through the exact backend, per-sample coefficients and Jacobians, against the exact
    linear-response gradient chained sample by sample."""
    config = qa.TrainingConfig(steps=1, batch_size=4, shots=None, beta=1e-6, eval_every=100, seed=0)
    trainer = qa.Trainer(
        task, config, ".", backend=backend_for_run("exact", task.model, None, run_dir=".", seed=0)
    )
    phi = _phi(task, 2)
    x, y = task.test_set()
    x, y = x[:6], y[:6]
    measured, _ = trainer.gradient(phi, x, y, np.random.default_rng(0), step=1)
    equilibrium = Equilibrium(task.model, tol=1e-12)
    theta = task.parameterisation.sample_coefficients(phi, x)
    free = equilibrium.prepare(x, theta)
    eps = task.loss.error_signal(equilibrium.compiled.output_values(free.strings), y)
    per_sample = exact_gradient(equilibrium, x, theta, eps, free=free)
    jacobians = task.parameterisation.sample_jacobians(phi, x)
    expected = np.einsum("bp,bpf->f", per_sample, jacobians) / len(x)
    np.testing.assert_allclose(measured, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def test_a_short_training_on_exact_states_learns(tmp_path: Path, task: IonSensorTask) -> None:
    """Twenty steps lower the test loss (the example reaches max-choice ≥ 0.9, examples/results)."""
    config = qa.TrainingConfig(
        steps=20, batch_size=8, shots=None, beta=1e-5, learning_rate=0.1, eval_every=20, seed=0
    )
    result = qa.Trainer(task, config, tmp_path).run()
    history = [r for r in qa.Trainer(task, config, tmp_path).read_metrics() if "test_loss" in r]
    assert history[-1]["test_loss"] < 0.8 * history[0]["test_loss"]
    assert "coefficients" not in result  # per-sample coefficients: the parameters are the record


def _sensor_rabi(task: IonSensorTask, phi: np.ndarray) -> np.ndarray:
    """The sensors' Rabi frequencies of both sides (units of each side's chain Rabi)."""
    per_side = task.parameterisation.per_side
    return np.concatenate([phi[k * per_side : k * per_side + 2] for k in range(len(SIDES))])


def test_the_sensors_rabi_floor_is_kept_by_the_projection_and_checked() -> None:
    """``min_sensor_rabi``: the projection lifts a sensor's Rabi frequency to it (and names the
    parameter) as it lowers one above the largest; a floor below 0 or above the largest is refused;
    the run's description names the floor only when one is set."""
    profile = qa.read_profile("yb171-chain")
    floor = 0.4
    task = IonSensorTask(profile=profile, n_chain=4, test_size=4, min_sensor_rabi=floor)
    geometry = task.parameterisation
    phi = _phi(task)
    phi[0], phi[1] = -0.2, 0.1  # above: one negative, one under the floor
    phi[geometry.per_side] = 10.0  # below: one above the largest
    projected, clipped = geometry.project(phi)
    rabi = _sensor_rabi(task, projected)
    assert rabi[:2].tolist() == [floor, floor]
    assert rabi[2] == geometry.sides[1].max_sensor_rabi
    assert clipped == ["rabi_A_above", "rabi_B_above", "rabi_A_below"]
    unbounded = IonSensorTask(profile=profile, n_chain=4, test_size=4)
    assert _sensor_rabi(task, unbounded.parameterisation.project(phi)[0])[:2].tolist() == [0.0, 0.1]
    # a run without the floor describes itself as before (its checkpoints keep resuming)
    assert task.describe()["min_sensor_rabi"] == floor and "min_sensor_rabi" not in unbounded.describe()
    with pytest.raises(qa.ConfigError, match=r"min_sensor_rabi = -0.1 .*>= 0"):
        IonSensorTask(profile=profile, n_chain=4, test_size=4, min_sensor_rabi=-0.1)
    largest = min(side.max_sensor_rabi for side in geometry.sides)
    with pytest.raises(qa.ConfigError, match=r"min_sensor_rabi = 5 is above the sensors' largest .*1\.26"):
        IonSensorTask(profile=profile, n_chain=4, test_size=4, min_sensor_rabi=5.0)
    assert largest == pytest.approx(1.2649, abs=1e-3)


def test_a_short_training_keeps_the_sensors_above_the_floor(tmp_path: Path) -> None:
    """Three large steps on exact states take the sensors' drive down when nothing holds it (the
    unbounded run goes below 0.9 of the chain's); with ``min_sensor_rabi`` 0.9 the trained sensors
    end on the floor, not under it, and the steps that reached it record the parameter as clipped."""
    profile = qa.read_profile("yb171-chain")
    config = qa.TrainingConfig(
        steps=3, batch_size=4, shots=None, beta=1e-5, learning_rate=0.1, eval_every=3, seed=0
    )
    floor = 0.9
    lowest = {}
    for bound in (0.0, floor):
        task = IonSensorTask(profile=profile, n_chain=4, test_size=4, min_sensor_rabi=bound)
        run = tmp_path / f"floor_{bound}"
        result = qa.Trainer(task, config, run).run()
        phi = np.array([result["parameters"][name] for name in task.parameterisation.names])
        lowest[bound] = float(_sensor_rabi(task, phi).min())
        clipped = {n for r in qa.Trainer(task, config, run).read_metrics() for n in r.get("clipped", [])}
        assert any(name.startswith("rabi_") for name in clipped) == (bound > 0)
    assert lowest[0.0] < floor
    assert lowest[floor] == pytest.approx(floor, abs=1e-12)
