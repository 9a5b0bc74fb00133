"""The method paper's unsupervised tasks on the 10-spin open cluster-Ising chain (TASKS.md §2-3).

H = -[theta_x sum X_j + theta_zz sum Z_j Z_{j+1} + 0.5 sum_{j=1}^{7} Z_j X_{j+1} Z_{j+2} + nu X_0 X_4]

In the model the output is ``m = -X_0 X_4``, so its nudge term nu * m is the paper's -nu X_0 X_4 and
the trainable terms carry the same overall minus sign.

- Phase exploration (:func:`explore_phase`): maximise |<X_0 X_4>| over (theta_x, theta_zz) with
  one-sided QEP gradients (nudge 0.1 along sign<X_0 X_4>) and normalised steps of 0.1.
- Sensitivity optimisation (:func:`optimise_sensitivity`): maximise the slope
  S = |<O>_{g1} - <O>_{g2}| / |g1 - g2| of O = X_0 X_4 between two field values, every derivative of
  <O> by one-sided QEP (nudge +0.1 at both points).
- Boundary following (:func:`follow_boundary`): for each theta_zz of a list, the centre c of two
  field values c -+ separation/2 with the steepest two-point slope, by QEP derivatives and a
  converging step rule, warm-started from the previous theta_zz.
- The phase diagram (:func:`correlation_grid`): <X_0 X_4> over a (theta_x, theta_zz) grid, with the
  points whose ground state is degenerate marked.

Iteration convention (the paper's): a run of K iterations evaluates the objective K times, at
k = 0 .. K-1, each evaluation followed by an update; the update after the last evaluation is never
evaluated, so the last recorded value is the cost after K - 1 updates (the paper's "final" value,
k = 99 of 100). "After 10 iterations" is the value at k = 10.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import ConfigError
from qep_analog.memory import require_memory
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.gradients import qep_estimate, small_gap_samples
from qep_analog.solvers.equilibrium import Equilibrium, Prepared

CHAIN_LENGTH = 10
CLUSTER_STRENGTH = 0.5
PHASE_PARAMETERS = ("theta_x", "theta_zz")
SENSITIVITY_PARAMETERS = ("theta_zz", "g1", "g2")
BOUNDARY_PARAMETERS = ("theta_zz", "center")


def open_cluster_ising(n: int = CHAIN_LENGTH) -> QEPModel:
    """The open chain with trainable field ``theta_x`` and coupling ``theta_zz``; output -X_0 X_4."""
    return QEPModel(
        n_qubits=n,
        fixed=pauli_sum((-CLUSTER_STRENGTH, f"Z{j} X{j + 1} Z{j + 2}") for j in range(1, n - 2)),
        trainable={
            "theta_x": pauli_sum((-1.0, f"X{j}") for j in range(n)),
            "theta_zz": pauli_sum((-1.0, f"Z{j} Z{j + 1}") for j in range(n - 1)),
        },
        outputs={"m": pauli_sum([(-1.0, "X0 X4")])},
    )


@dataclass(frozen=True)
class Step:
    """One iteration: the parameters before the update and the objective there.

    ``gradient``: the QEP estimate of d(objective)/d(parameters) used for the update;
    ``observables``: <X_0 X_4> at the prepared points (one for the phase exploration, two for the
    slopes); ``gap``: the smallest spectral gap among them (None when not computed);
    ``small_gap``: the nudge was not small against a gap (the QEP estimate is biased).
    """

    iteration: int
    parameters: tuple[float, ...]
    objective: float
    gradient: tuple[float, ...] = ()
    observables: tuple[float, ...] = ()
    gap: float | None = None
    small_gap: bool = False

    def record(self, names: Sequence[str], objective_name: str) -> dict[str, Any]:
        """A JSON-ready dict: iteration, named parameters, the objective and the diagnostics."""
        out: dict[str, Any] = {"iteration": self.iteration}
        out.update(zip(names, self.parameters, strict=True))
        out[objective_name] = self.objective
        out["x0x4"] = list(self.observables)
        out["gradient"] = list(self.gradient)
        if self.gap is not None:
            out["gap"] = self.gap
            out["small_gap"] = self.small_gap
        return out


@dataclass(frozen=True)
class Trajectory:
    """The recorded iterations of one run from one start, k = 0 .. K-1 (see the module docstring).

    ``maximise`` says which way is better for ``best``: the phase exploration records the cost
    C = -|<X0 X4>| (lower is better), the sensitivity optimisation the slope S (higher is better).
    """

    task: str
    parameter_names: tuple[str, ...]
    objective_name: str
    maximise: bool
    steps: tuple[Step, ...]
    degeneracy_tol: float = 0.0

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __getitem__(self, k: int) -> Step:
        return self.steps[k]

    @property
    def start(self) -> tuple[float, ...]:
        return self.steps[0].parameters

    @property
    def final(self) -> Step:
        """The last recorded iteration (k = K - 1: after K - 1 updates)."""
        return self.steps[-1]

    @property
    def best(self) -> Step:
        """The best recorded iteration (the first one if several tie)."""
        pick = max if self.maximise else min
        return pick(self.steps, key=lambda s: s.objective)

    def at(self, k: int) -> Step | None:
        """The iteration k (after k updates), or None when the run is shorter."""
        return self.steps[k] if 0 <= k < len(self.steps) else None

    @property
    def degenerate_steps(self) -> int:
        """Iterations at which a prepared ground state was degenerate (gap below the tolerance)."""
        return sum(1 for s in self.steps if s.gap is not None and s.gap < self.degeneracy_tol)

    @property
    def small_gap_steps(self) -> int:
        return sum(1 for s in self.steps if s.small_gap)


Progress = Callable[[Step], None]


def _unit(vector: NDArray) -> NDArray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _default(equilibrium: Equilibrium | None) -> Equilibrium:
    return equilibrium or Equilibrium(open_cluster_ising())


def _check_run(iterations: int, nudge: float, step_size: float) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int | np.integer) or iterations < 1:
        raise ConfigError(f"exploration: iterations = {iterations!r} must be a positive integer")
    if not (np.isfinite(nudge) and nudge > 0):
        raise ConfigError(f"exploration: nudge = {nudge!r} must be finite and > 0")
    if not (np.isfinite(step_size) and step_size > 0):
        raise ConfigError(f"exploration: step_size = {step_size!r} must be finite and > 0")


def _prepare(eq: Equilibrium, thetas: NDArray, with_gap: bool) -> Prepared:
    """Free ground states; gaps are recorded, not enforced (degenerate points are reported)."""
    return eq.prepare(np.zeros((len(thetas), 0)), thetas, with_gap=with_gap, check_degeneracy=False)


def _gradient(
    eq: Equilibrium, thetas: NDArray, error_signal: NDArray, nudge: float, free: Prepared
) -> tuple[NDArray, bool]:
    """One-sided QEP dL/dtheta at each point, and whether a nudge was not small against a gap
    (or crossed levels)."""
    no_inputs = np.zeros((len(thetas), 0))
    estimate = qep_estimate(eq, no_inputs, thetas, error_signal, nudge, "one-sided", free=free)
    crossed = estimate.crossed is not None and bool(estimate.crossed.any())
    small = crossed or len(small_gap_samples(eq, free, error_signal, nudge)[0]) > 0
    return estimate.gradient, small


def _min_gap(free: Prepared) -> float | None:
    return None if free.gaps is None else float(np.min(free.gaps))


def explore_phase(
    start: tuple[float, float],
    iterations: int = 100,
    nudge: float = 0.1,
    step_size: float = 0.1,
    equilibrium: Equilibrium | None = None,
    *,
    with_gap: bool = True,
    progress: Progress | None = None,
) -> Trajectory:
    """Phase exploration from ``start`` = (theta_x, theta_zz); objective: the cost C = -|<X0 X4>|.

    Records ``iterations`` evaluations, k = 0 .. iterations-1, each followed by the update
    theta <- theta - step_size * g / ||g|| with g the one-sided QEP estimate of dC/dtheta. From the
    paper's starts the walk runs into the X-polarised paramagnet (|theta_x| grows steadily) and the
    cost creeps towards -1: k = 99 gives -0.99908 and -0.99897 (published -0.9991, -0.9990).
    ``progress`` is called with every recorded step.
    """
    _check_run(iterations, nudge, step_size)
    eq = _default(equilibrium)
    theta = np.array(start, dtype=float)
    steps = []
    for iteration in range(iterations):
        thetas = theta[None, :]
        free = _prepare(eq, thetas, with_gap)
        correlation = -float(eq.compiled.output_values(free.strings)[0, 0])
        # L = -|<X0 X4>| = -|<m>|, so eps = dL/d<m> = sign <X0 X4>; the nudge is nudge * eps.
        error_signal = np.array([[np.sign(correlation) or 1.0]])
        gradient, small = _gradient(eq, thetas, error_signal, nudge, free)
        step = Step(
            iteration,
            (float(theta[0]), float(theta[1])),
            -abs(correlation),
            tuple(float(v) for v in gradient[0]),
            (correlation,),
            _min_gap(free),
            small,
        )
        steps.append(step)
        if progress is not None:
            progress(step)
        theta = theta - step_size * _unit(gradient[0])
    return Trajectory(
        "phase_exploration", PHASE_PARAMETERS, "cost", False, tuple(steps), eq.solver.degeneracy_tol
    )


def optimise_sensitivity(
    start: tuple[float, float, float],
    iterations: int = 100,
    nudge: float = 0.1,
    step_size: float = 0.1,
    equilibrium: Equilibrium | None = None,
    *,
    with_gap: bool = True,
    progress: Progress | None = None,
) -> Trajectory:
    """Sensitivity optimisation from ``start`` = (theta_zz, g1, g2); objective: the slope S.

    Records ``iterations`` evaluations (k = 0 .. iterations-1), each followed by the normalised
    ascent step (theta_zz, g1, g2) += step_size * grad S / ||grad S||.

    Fixed-size normalised steps never converge: near the optimum the walker settles into a
    2-cycle, alternating between two points whose slopes differ by a few per cent. From
    (-1.5, -0.2, -1.5) the slope alternates between 1.7907 (even k) and 1.8641 (odd k), from
    (1.0, -0.5, 0.3) between 2.0311 (even) and 2.0365 (odd); the published finals 1.864 and 2.036
    are the k = 99 values of a 100-iteration run, and the "final" value of a run therefore depends
    on the parity of its length. ``Trajectory.best`` is the robust summary (1.8689 and 2.0365).
    Start 1's first point (g = -0.2 at theta_zz = -1.5, deep in the ordered phase) has a
    numerically degenerate ground state, where the QEP derivative is that of the state the solver
    returns; such steps are counted in ``Trajectory.degenerate_steps``.
    """
    _check_run(iterations, nudge, step_size)
    if start[1] == start[2]:
        raise ConfigError(f"sensitivity: start {tuple(start)} needs g1 != g2")
    eq = _default(equilibrium)
    point = np.array(start, dtype=float)
    steps = []
    for iteration in range(iterations):
        theta_zz, g1, g2 = point
        thetas = np.array([[g1, theta_zz], [g2, theta_zz]])
        free = _prepare(eq, thetas, with_gap)
        values = -eq.compiled.output_values(free.strings)[:, 0]  # <X0 X4> at g1 and g2
        distance = g1 - g2
        if distance == 0:
            raise ConfigError(
                f"sensitivity: g1 = g2 = {g1!r} at iteration {iteration}; the slope is undefined"
            )
        slope = abs(values[0] - values[1]) / abs(distance)
        # d<m>/d(g, theta_zz) at each point (eps = 1, nudge +nudge); <X0 X4> = -<m>.
        derivatives, small = _gradient(eq, thetas, np.ones((2, 1)), nudge, free)
        derivatives = -derivatives
        sign = np.sign(values[0] - values[1])
        direction = np.sign(distance)
        gradient = np.array(
            [
                sign * (derivatives[0, 1] - derivatives[1, 1]) / abs(distance),
                sign * derivatives[0, 0] / abs(distance) - direction * slope / abs(distance),
                -sign * derivatives[1, 0] / abs(distance) + direction * slope / abs(distance),
            ]
        )
        step = Step(
            iteration,
            (float(theta_zz), float(g1), float(g2)),
            float(slope),
            tuple(float(v) for v in gradient),
            (float(values[0]), float(values[1])),
            _min_gap(free),
            small,
        )
        steps.append(step)
        if progress is not None:
            progress(step)
        point = point + step_size * _unit(gradient)
    return Trajectory(
        "sensitivity", SENSITIVITY_PARAMETERS, "slope", True, tuple(steps), eq.solver.degeneracy_tol
    )


# -- boundary following ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundaryPoint:
    """The steepest two-point slope at one theta_zz: the centre g_c, the slope S there, the search.

    ``converged``: the step fell below the tolerance within the iteration limit; ``steps``: the
    search (parameters (theta_zz, c), objective S(c), gradient (dS/dc,)).
    """

    theta_zz: float
    center: float
    slope: float
    converged: bool
    gap: float | None
    steps: tuple[Step, ...] = field(repr=False)

    @property
    def iterations(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Boundary:
    """One followed branch of the boundary: a point per theta_zz, in the order followed."""

    start_center: float
    separation: float
    points: tuple[BoundaryPoint, ...]
    degeneracy_tol: float = 0.0

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self) -> Iterator[BoundaryPoint]:
        return iter(self.points)

    def __getitem__(self, k: int) -> BoundaryPoint:
        return self.points[k]

    @property
    def theta_zz(self) -> NDArray:
        return np.array([p.theta_zz for p in self.points])

    @property
    def centers(self) -> NDArray:
        return np.array([p.center for p in self.points])

    @property
    def slopes(self) -> NDArray:
        return np.array([p.slope for p in self.points])


def _slope_and_derivative(
    eq: Equilibrium, theta_zz: float, center: float, separation: float, nudge: float, iteration: int
) -> Step:
    """S(c) = |<O>_{c+d/2} - <O>_{c-d/2}| / d and dS/dc from one-sided QEP derivatives d_g<O>."""
    low, high = center - separation / 2, center + separation / 2
    thetas = np.array([[high, theta_zz], [low, theta_zz]])
    free = _prepare(eq, thetas, True)
    values = -eq.compiled.output_values(free.strings)[:, 0]
    derivatives, small = _gradient(eq, thetas, np.ones((2, 1)), nudge, free)
    d_field = -derivatives[:, 0]  # d<X0 X4>/dg at c + d/2 and c - d/2
    sign = np.sign(values[0] - values[1]) or 1.0
    slope = abs(values[0] - values[1]) / separation
    d_slope = sign * (d_field[0] - d_field[1]) / separation
    return Step(
        iteration,
        (float(theta_zz), float(center)),
        float(slope),
        (float(d_slope),),
        (float(values[1]), float(values[0])),
        _min_gap(free),
        small,
    )


def follow_boundary(
    theta_zz_values: Sequence[float],
    start_center: float,
    separation: float = 0.1,
    nudge: float = 0.1,
    step_size: float = 0.1,
    tolerance: float = 1e-3,
    max_iterations: int = 100,
    equilibrium: Equilibrium | None = None,
    *,
    progress: Progress | None = None,
) -> Boundary:
    """Follow the phase boundary g_c(theta_zz): at each theta_zz (in the order given) maximise
    S(c) = |<X0 X4>_{c+d/2} - <X0 X4>_{c-d/2}| / d over the centre c, d = ``separation``.

    dS/dc = s (d_g<O>(c + d/2) - d_g<O>(c - d/2)) / d with s the sign of the difference and each
    d_g<O> a one-sided QEP estimate (nudge +``nudge``). Step rule: c moves by h in the direction
    of dS/dc, h starts at ``step_size`` and halves whenever dS/dc changes sign (the maximum was
    passed); the search stops when h < ``tolerance`` (converged, c within about 2h of the zero
    of the QEP derivative) or after ``max_iterations``. Each theta_zz starts from the previous
    centre. The QEP derivatives carry an O(nudge) bias, so c can differ from the exact argmax
    by a little more than the tolerance (about 0.01 at nudge 0.1 on the g > 0 branch).
    """
    _check_run(max_iterations, nudge, step_size)
    if not (np.isfinite(separation) and separation > 0):
        raise ConfigError(f"boundary: separation = {separation!r} must be finite and > 0")
    if not (np.isfinite(tolerance) and 0 < tolerance <= step_size):
        raise ConfigError(f"boundary: tolerance = {tolerance!r} must be > 0 and <= step_size {step_size}")
    if not np.isfinite(start_center):
        raise ConfigError(f"boundary: start centre {start_center!r} is not finite")
    values = [float(v) for v in theta_zz_values]
    if not values or not all(np.isfinite(values)):
        raise ConfigError(
            f"boundary: theta_zz values {values!r} must be a non-empty list of finite numbers"
        )
    eq = _default(equilibrium)
    center = float(start_center)
    counter = 0
    points = []
    for theta_zz in values:
        h = step_size
        previous_sign = 0.0
        search: list[Step] = []
        converged = False
        for _ in range(max_iterations):
            step = _slope_and_derivative(eq, theta_zz, center, separation, nudge, counter)
            counter += 1
            search.append(step)
            if progress is not None:
                progress(step)
            sign = float(np.sign(step.gradient[0]))
            if sign == 0.0:
                converged = True
                break
            if previous_sign and sign != previous_sign:
                h /= 2
            if h < tolerance:
                converged = True
                break
            previous_sign = sign
            center += sign * h
        last = search[-1]
        points.append(
            BoundaryPoint(theta_zz, last.parameters[1], last.objective, converged, last.gap, tuple(search))
        )
    return Boundary(float(start_center), float(separation), tuple(points), eq.solver.degeneracy_tol)


# -- the phase diagram -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationGrid:
    """<X0 X4> on a (theta_x, theta_zz) grid: ``correlation`` and ``gaps`` have shape
    (len(theta_zz), len(theta_x)); ``degenerate`` marks gaps below ``degeneracy_tol``, where the
    ground state (and <X0 X4> of the state the solver returns) is not defined."""

    theta_x: NDArray
    theta_zz: NDArray
    correlation: NDArray
    gaps: NDArray
    degeneracy_tol: float

    @property
    def degenerate(self) -> NDArray:
        return np.asarray(self.gaps < self.degeneracy_tol)


#: bytes per point of :func:`correlation_grid`: the two meshgrid arrays, the (points, 2) parameters
#: and the correlation and gap values, float64 each
GRID_POINT_BYTES = 6 * 8


def grid_bytes(n_x: int, n_zz: int) -> int:
    """The bytes :func:`correlation_grid` allocates for an ``n_x`` x ``n_zz`` grid (its batches of
    ground states aside: a batch's size does not grow with the grid)."""
    return GRID_POINT_BYTES * n_x * n_zz


def correlation_grid(
    theta_x: ArrayLike,
    theta_zz: ArrayLike,
    equilibrium: Equilibrium | None = None,
    *,
    batch_size: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> CorrelationGrid:
    """<X0 X4> and the gap at every grid point, solved in batches of ``batch_size`` points.

    Degenerate points are not refused (``check_degeneracy=False``) but marked, so that a plot can
    mask them; ``progress(done, total)`` is called after each batch.
    """
    eq = _default(equilibrium)
    xs = np.asarray(theta_x, dtype=float).ravel()
    zs = np.asarray(theta_zz, dtype=float).ravel()
    if not (len(xs) and len(zs) and np.isfinite(xs).all() and np.isfinite(zs).all()):
        raise ConfigError("phase diagram: theta_x and theta_zz must be non-empty and finite")
    if batch_size < 1:
        raise ConfigError(f"phase diagram: batch_size = {batch_size} must be positive")
    require_memory(f"phase diagram: {len(xs)} x {len(zs)} points", grid_bytes(len(xs), len(zs)))
    grid_x, grid_z = np.meshgrid(xs, zs)
    thetas = np.stack([grid_x.ravel(), grid_z.ravel()], axis=1)
    correlation = np.empty(len(thetas))
    gaps = np.empty(len(thetas))
    for begin in range(0, len(thetas), batch_size):
        chunk = thetas[begin : begin + batch_size]
        free = _prepare(eq, chunk, True)
        assert free.gaps is not None
        correlation[begin : begin + len(chunk)] = -eq.compiled.output_values(free.strings)[:, 0]
        gaps[begin : begin + len(chunk)] = free.gaps
        if progress is not None:
            progress(begin + len(chunk), len(thetas))
    shape = grid_x.shape
    return CorrelationGrid(
        xs, zs, correlation.reshape(shape), gaps.reshape(shape), eq.solver.degeneracy_tol
    )
