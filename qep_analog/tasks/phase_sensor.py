"""The supervised task of the method's paper: a two-qubit sensor that recognises the phase of the
8-spin periodic cluster-Ising chain (see TASKS.md section 1).

Inputs x = (g_zxz, g_zz, g_x) on the simplex g_zxz + g_zz + g_x = 4. Phases (thermodynamic-limit
boundaries): I cluster/SPT (g_zz < 2, g_x < g_zxz), II ZZ-ordered (g_zz >= 2), III paramagnet
(g_zz < 2, g_x >= g_zxz); targets are one-hot over the outputs (P00, P01, P11).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ConfigError
from qep_analog.memory import require_memory
from qep_analog.model.qep_model import QEPModel
from qep_analog.model.standard import is_coupling, phase_sensor
from qep_analog.qep.losses import Loss, SquaredError
from qep_analog.qep.trainer import Penalty, parameters_from_result
from qep_analog.schema import Field, check_attributes, seed_field, shown

SIMPLEX_TOTAL = 4.0
#: bytes per Pauli string of the model (its string and the operators' entries; tracemalloc: 280);
#: the model has 3 per chain site (ZXZ, ZZ, X) and 52 of the sensor
MODEL_STRING_BYTES = 320
#: bytes per test point (its inputs and labels; tracemalloc: 56)
TEST_POINT_BYTES = 64
PHASE_NAMES = ("cluster (SPT)", "ZZ-ordered", "paramagnet")
INITIALISATIONS = ("bounded", "normal")


def phase_labels(inputs: NDArray) -> NDArray:
    """One-hot phase labels (B, 3) of inputs (B, 3) = (g_zxz, g_zz, g_x)."""
    g_zxz, g_zz, g_x = np.asarray(inputs, dtype=float).T
    phase = np.where(g_zz >= 2.0, 1, np.where(g_x < g_zxz, 0, 2))
    return np.eye(3)[phase]


def sample_simplex(rng: np.random.Generator, size: int) -> NDArray:
    """Points drawn uniformly on the simplex g_zxz + g_zz + g_x = 4, g >= 0."""
    return np.asarray(SIMPLEX_TOTAL * rng.dirichlet(np.ones(3), size=size))


#: The rounds of ``size`` draws :func:`sample_patches` makes before it gives up (a patch is at
#: least 1/8 on the simplex, so a round fills a batch in expectation; only a degenerate patch fails).
MAX_PATCH_ROUNDS = 1000


def sample_patches(rng: np.random.Generator, size: int, centres: NDArray, side: float) -> NDArray:
    """Points uniform in square patches of ``side`` around ``centres`` (g_x, g_zz), kept on the
    simplex (g_zxz = 4 - g_x - g_zz >= 0, all >= 0). Points are drawn in a uniformly chosen patch
    and rejected off the simplex, so a patch weighs as much as its area on the simplex; patches that
    yield too few points (:data:`MAX_PATCH_ROUNDS` rounds) are a :class:`ConfigError`."""
    out = np.empty((size, 3))
    filled = 0
    for _ in range(MAX_PATCH_ROUNDS):
        if filled == size:
            break
        which = rng.integers(len(centres), size=size)
        g_x, g_zz = (centres[which] + rng.uniform(-side / 2, side / 2, size=(size, 2))).T
        g_zxz = SIMPLEX_TOTAL - g_x - g_zz
        ok = (g_x >= 0) & (g_zz >= 0) & (g_zxz >= 0)
        points = np.stack([g_zxz, g_zz, g_x], axis=1)[ok][: size - filled]
        out[filled : filled + len(points)] = points
        filled += len(points)
    if filled < size:
        raise ConfigError(
            f"phase sensor: patches {shown(np.asarray(centres).tolist())} with patch_side = {side:g}: "
            f"{filled} of {size} points on the simplex after {MAX_PATCH_ROUNDS} rounds of draws"
        )
    return out


def phase_grid(points: int = 20) -> NDArray:
    """The evaluation grid: g_x, g_zxz in linspace(0, 4, points), g_zz = 4 - g_x - g_zxz >= 0.

    With 20 points: 210 inputs, 75 / 55 / 80 in phases I / II / III (the five points with
    g_x = g_zxz < 2 are paramagnets by the rule g_x >= g_zxz).
    """
    axis = np.linspace(0.0, SIMPLEX_TOTAL, points)
    g_x, g_zxz = (a.ravel() for a in np.meshgrid(axis, axis, indexing="ij"))
    g_zz = SIMPLEX_TOTAL - g_x - g_zxz
    keep = g_zz >= -1e-9
    return np.stack([g_zxz[keep], np.clip(g_zz[keep], 0.0, None), g_x[keep]], axis=1)


def triangle_coordinates(inputs: NDArray) -> tuple[NDArray, NDArray]:
    """Plot coordinates (g_x + g_zz/2, g_zz) of inputs (B, 3)."""
    _, g_zz, g_x = np.asarray(inputs).T
    return g_x + g_zz / 2.0, g_zz


def accuracy_metrics(outputs: NDArray, targets: NDArray) -> dict[str, float]:
    """Max-choice accuracy (argmax <O> = argmax y) and single-shot accuracy (mean sum y <O>)."""
    max_choice = float(np.mean(outputs.argmax(axis=1) == targets.argmax(axis=1)))
    single_shot = float(np.mean((targets * outputs).sum(axis=1)))
    return {"max_choice_accuracy": max_choice, "single_shot_accuracy": single_shot}


@dataclass(kw_only=True)
class PhaseSensorTask:
    """The phase-recognition task: model, data, loss, metrics and initialisation."""

    n_chain: int = 8
    sites: tuple[int, ...] = (0, 1)
    system_operators: str = "XYZ"
    periodic: bool = True
    init: str = "bounded"
    coupling_range: float = 0.1
    test_size: int = 200
    seed: int = 0
    patches: NDArray | None = None
    patch_side: float = 0.4
    loss: Loss = field(default_factory=SquaredError)
    model: QEPModel = field(init=False)

    #: the rule of each attribute read from a file (an experiment file's ``model`` section)
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("n_chain", "integer", low=3),
        Field("sites", "integers", low=0),
        Field("system_operators", "text"),
        Field("periodic", "flag"),
        Field("init", "text"),
        Field("coupling_range", low=0.0, open_low=True),
        Field("test_size", "integer", low=1),
        seed_field(),
        Field("patches", "rows", length=2, min_length=1, nullable=True),
        Field("patch_side", low=0.0, open_low=True, high=SIMPLEX_TOTAL, help="side of each square patch"),
    )

    def __post_init__(self) -> None:
        if isinstance(self.patches, np.ndarray):
            self.patches = self.patches.tolist()
        check_attributes(self, self.FIELDS, "phase sensor", ConfigError)
        require_memory(
            f"phase sensor: a chain of {self.n_chain} and a test set of {self.test_size} points",
            MODEL_STRING_BYTES * (3 * self.n_chain + 52) + TEST_POINT_BYTES * self.test_size,
        )
        if self.patches is not None:
            centres = np.asarray(self.patches, dtype=float)
            g_x, g_zz = centres.T
            outside = (g_x < 0) | (g_zz < 0) | (g_x + g_zz > SIMPLEX_TOTAL)
            if outside.any():
                raise ConfigError(
                    f"phase sensor: patch centre (g_x, g_zz) = {tuple(centres[outside][0])} "
                    f"lies outside the simplex g_x, g_zz >= 0, g_x + g_zz <= {SIMPLEX_TOTAL:g}"
                )
            self.patches = centres
            # a degenerate patch (a corner with a side below float resolution) fails here, not in training
            sample_patches(np.random.default_rng(0), 16, centres, self.patch_side)
        self.model = phase_sensor(self.n_chain, self.sites, self.system_operators, self.periodic)
        self.coupling_mask = np.array([is_coupling(n) for n in self.model.parameter_names])
        self._trained: NDArray | None = None
        if self.init not in INITIALISATIONS:
            self._trained = self._parameters_from(self.init)
        test_rng = np.random.default_rng([self.seed, 1])
        self._test_inputs = sample_simplex(test_rng, self.test_size)

    def sample_batch(self, rng: np.random.Generator, size: int) -> tuple[NDArray, NDArray]:
        if self.patches is not None:
            inputs = sample_patches(rng, size, self.patches, self.patch_side)
        else:
            inputs = sample_simplex(rng, size)
        return inputs, phase_labels(inputs)

    def test_set(self) -> tuple[NDArray, NDArray]:
        return self._test_inputs, phase_labels(self._test_inputs)

    def metrics(self, outputs: NDArray, targets: NDArray) -> dict[str, float]:
        return accuracy_metrics(outputs, targets)

    def _parameters_from(self, path: str) -> NDArray:
        """The parameters of a finished run (``result.json`` of ``qep-analog train``), by name: a sensor
        trained on one chain starts another (its terms act on the sensor and chain sites 0, 1 only)."""
        if not Path(path).is_file():
            raise ConfigError(
                f"phase sensor: init {path!r} is neither {' nor '.join(INITIALISATIONS)} nor a run result"
            )
        return parameters_from_result(path, self.model.parameter_names, "phase sensor: init")

    def initial_parameters(self, rng: np.random.Generator) -> NDArray:
        """Couplings uniform in [-range, range] and sensor terms standard normal ("bounded"), every
        parameter standard normal ("normal"), or those of a finished run (``init`` a result path)."""
        if self._trained is not None:
            return self._trained.copy()
        n = len(self.model.parameter_names)
        theta = rng.standard_normal(n)
        if self.init == "bounded":
            couplings = rng.uniform(-self.coupling_range, self.coupling_range, n)
            theta = np.where(self.coupling_mask, couplings, theta)
        return np.asarray(theta)

    def describe(self) -> dict[str, Any]:
        """The settings that define the task (stored with checkpoints)."""
        described: dict[str, Any] = {
            "task": "phase_sensor",
            "n_chain": self.n_chain,
            "sites": list(self.sites),
            "system_operators": self.system_operators,
            "init": self.init,
            "coupling_range": self.coupling_range,
            "test_size": self.test_size,
            "patches": None if self.patches is None else np.asarray(self.patches).tolist(),
            "patch_side": self.patch_side,
            "loss": self.loss.name,
        }
        if not self.periodic:  # (absent for periodic chains: older checkpoints keep resuming)
            described["periodic"] = False
        return described

    def penalty(self, strength: float, threshold: float) -> Penalty:
        """The soft penalty on the system-sensor couplings only."""
        return Penalty(strength=strength, threshold=threshold, mask=self.coupling_mask)
