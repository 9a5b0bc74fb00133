"""Short versions of the paper's unsupervised tasks against its published numbers (TASKS.md §2-3)."""

from __future__ import annotations

import warnings
from itertools import pairwise

import pytest

from qep_analog.errors import SmallGapWarning
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.tasks.exploration import explore_phase, open_cluster_ising, optimise_sensitivity

#: Published values are quoted to two or three digits; agreement within 1 % of them.
PUBLISHED_RTOL = 0.01


@pytest.fixture(scope="module")
def equilibrium() -> Equilibrium:
    return Equilibrium(open_cluster_ising(), tol=1e-10)


@pytest.mark.parametrize(
    ("start", "cost_start", "cost_after_10"),
    [((-0.1, 0.4), -0.0087, -0.94), ((0.2, 0.9), -0.068, -0.88)],
)
def test_phase_exploration_first_ten_steps(equilibrium, start, cost_start, cost_after_10) -> None:
    steps = explore_phase(start, iterations=10, equilibrium=equilibrium)
    assert len(steps) == 11
    assert steps[0].objective == pytest.approx(cost_start, rel=0.02)  # quoted to 2 digits
    assert steps[10].objective == pytest.approx(cost_after_10, rel=PUBLISHED_RTOL)
    # normalised steps of 0.1
    moved = [abs(complex(*a.parameters) - complex(*b.parameters)) for a, b in pairwise(steps)]
    assert moved == pytest.approx([0.1] * 10, abs=1e-12)


@pytest.mark.parametrize(
    ("start", "slope_start", "slope_after_10"),
    [((-1.5, -0.2, -1.5), 0.517, 1.30), ((1.0, -0.5, 0.3), 0.062, 1.116)],
)
def test_sensitivity_first_ten_steps(equilibrium, start, slope_start, slope_after_10) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallGapWarning)
        steps = optimise_sensitivity(start, iterations=10, equilibrium=equilibrium)
    assert steps[0].objective == pytest.approx(slope_start, rel=PUBLISHED_RTOL)
    assert steps[10].objective == pytest.approx(slope_after_10, rel=PUBLISHED_RTOL)
