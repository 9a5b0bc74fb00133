"""The paper's unsupervised tasks (TASKS.md §2-3) against its published numbers, the boundary
follower against an independent dense computation, the phase-diagram grid and the task files."""

from __future__ import annotations

from functools import reduce
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from scipy.interpolate import CubicSpline

from qep_analog.errors import ConfigError
from qep_analog.solvers.equilibrium import Equilibrium
from qep_analog.tasks.exploration import (
    correlation_grid,
    explore_phase,
    follow_boundary,
    open_cluster_ising,
    optimise_sensitivity,
)
from qep_analog.tasks.explore_config import load_explore_config

#: Published values are quoted to two to four digits; agreement within 1 % of them.
PUBLISHED_RTOL = 0.01


@pytest.fixture(scope="module")
def equilibrium() -> Equilibrium:
    return Equilibrium(open_cluster_ising(), tol=1e-10)


# -- the paper's runs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "cost_start", "cost_after_10"),
    [((-0.1, 0.4), -0.0087, -0.94), ((0.2, 0.9), -0.068, -0.88)],
)
def test_phase_exploration_first_ten_steps(equilibrium, start, cost_start, cost_after_10) -> None:
    run = explore_phase(start, iterations=11, equilibrium=equilibrium)
    assert [s.iteration for s in run] == list(range(11))  # 11 iterations: k = 0 .. 10
    assert run[0].objective == pytest.approx(cost_start, rel=0.02)  # quoted to 2 digits
    assert run.at(10) is run.final
    assert run.final.objective == pytest.approx(cost_after_10, rel=PUBLISHED_RTOL)
    assert run.best is run.final  # the cost falls monotonically here
    assert run.at(11) is None
    # normalised steps of 0.1
    moved = [abs(complex(*a.parameters) - complex(*b.parameters)) for a, b in pairwise(run)]
    assert moved == pytest.approx([0.1] * 10, abs=1e-12)
    # the recorded cost is -|<X0 X4>| of the recorded state
    assert all(s.objective == pytest.approx(-abs(s.observables[0]), abs=0) for s in run)


@pytest.mark.parametrize(
    ("start", "slope_start", "slope_after_10"),
    [((-1.5, -0.2, -1.5), 0.517, 1.30), ((1.0, -0.5, 0.3), 0.062, 1.116)],
)
def test_sensitivity_first_ten_steps(equilibrium, start, slope_start, slope_after_10) -> None:
    run = optimise_sensitivity(start, iterations=11, equilibrium=equilibrium)  # warnings are errors
    assert len(run) == 11
    assert run[0].objective == pytest.approx(slope_start, rel=PUBLISHED_RTOL)
    assert run.final.objective == pytest.approx(slope_after_10, rel=PUBLISHED_RTOL)
    assert run.best.objective == max(s.objective for s in run)
    assert all(s.gap is not None and s.small_gap for s in run)  # nudge 0.1 is not small here


def test_sensitivity_final_is_k99_of_a_two_cycle(equilibrium) -> None:
    """100 iterations end at k = 99, the odd member of the 2-cycle: the published 2.036."""
    run = optimise_sensitivity((1.0, -0.5, 0.3), iterations=100, equilibrium=equilibrium)
    assert len(run) == 100 and run.final.iteration == 99
    assert run.final.objective == pytest.approx(2.036, rel=PUBLISHED_RTOL)
    assert run.final.objective == pytest.approx(2.0365, abs=1e-4)
    odd = [run[k].objective for k in (95, 97, 99)]
    even = [run[k].objective for k in (94, 96, 98)]
    assert np.ptp(odd) < 1e-4 and np.ptp(even) < 1e-4
    assert min(odd) - max(even) > 4e-3  # two distinct values, not a converged point
    assert run.best.objective == pytest.approx(2.0365, abs=1e-4)
    # the walker sits at theta_zz ~ 0 with the two fields on either side of g ~ 0.24
    theta_zz, g1, g2 = run.final.parameters
    assert abs(theta_zz) < 1e-6 and sorted([g1, g2]) == pytest.approx([0.209, 0.279], abs=2e-3)


def test_full_runs_reproduce_the_paper(equilibrium) -> None:
    """All four 100-iteration runs: the paper's finals are the k = 99 values."""
    for start, final in (((-0.1, 0.4), -0.9991), ((0.2, 0.9), -0.9990)):
        run = explore_phase(start, equilibrium=equilibrium)
        assert run.final.iteration == 99
        assert run.final.objective == pytest.approx(final, rel=PUBLISHED_RTOL)
        assert run.final.objective == pytest.approx(final, abs=2e-4)
    run = optimise_sensitivity((-1.5, -0.2, -1.5), equilibrium=equilibrium)
    assert run.final.objective == pytest.approx(1.8641, abs=1e-4)  # published 1.864
    assert run[98].objective == pytest.approx(1.7907, abs=1e-4)
    assert run.best.objective == pytest.approx(1.8689, abs=1e-4)


def test_run_arguments_are_checked(equilibrium) -> None:
    with pytest.raises(ConfigError, match="iterations = 0"):
        explore_phase((0.1, 0.2), iterations=0, equilibrium=equilibrium)
    with pytest.raises(ConfigError, match="g1 != g2"):
        optimise_sensitivity((0.1, 0.3, 0.3), equilibrium=equilibrium)
    with pytest.raises(ConfigError, match="tolerance"):
        follow_boundary([1.0], 1.0, tolerance=0.5, equilibrium=equilibrium)


# -- the boundary against an independent dense computation ------------------------------------------

_I, _X, _Z = np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]]), np.diag([1.0, -1.0])
_N = 10


def _dense(factors: dict[int, np.ndarray]) -> np.ndarray:
    return reduce(np.kron, [factors.get(j, _I) for j in range(_N)])


@pytest.fixture(scope="module")
def dense_chain() -> dict[str, np.ndarray]:
    """The 1024 x 1024 operators of the open chain, built from Kronecker products."""
    return {
        "x": sum(_dense({j: _X}) for j in range(_N)),
        "zz": sum(_dense({j: _Z, j + 1: _Z}) for j in range(_N - 1)),
        "zxz": sum(_dense({j: _Z, j + 1: _X, j + 2: _Z}) for j in range(1, _N - 2)),
        "o": _dense({0: _X, 4: _X}),
    }


def _dense_correlation(chain: dict[str, np.ndarray], g: float, theta_zz: float) -> float:
    hamiltonian = -(g * chain["x"] + theta_zz * chain["zz"] + 0.5 * chain["zxz"])
    energies, vectors = scipy.linalg.eigh(hamiltonian, subset_by_index=[0, 1])
    assert energies[1] - energies[0] > 1e-3  # a unique ground state throughout the window
    psi = vectors[:, 0]
    return float(psi @ chain["o"] @ psi)


def _dense_argmax(chain, theta_zz: float, window: tuple[float, float], separation: float = 0.1):
    """argmax_c of the two-point slope: dense <X0 X4> every 0.02 in g, a cubic spline through it
    (checked against a 0.01 spacing to 1e-4 in c), S on a 1e-4 grid of c."""
    low, high = window
    g = np.arange(low - separation / 2 - 0.04, high + separation / 2 + 0.0401, 0.02)
    spline = CubicSpline(g, [_dense_correlation(chain, v, theta_zz) for v in g])
    centres = np.arange(low, high, 1e-4)
    slopes = np.abs(spline(centres + separation / 2) - spline(centres - separation / 2)) / separation
    k = int(slopes.argmax())
    assert 0 < k < len(centres) - 1  # an interior maximum
    return centres[k], slopes[k], spline


@pytest.mark.slow  # a long check; the default suite keeps a faster one of the same path
def test_boundary_follow_against_dense(equilibrium, dense_chain) -> None:
    """Warm-started from theta_zz = 1 to 1.5 on the g > 0 branch. Tolerance: |c - c_dense| <= 0.015
    (measured 0.008: the O(nudge) bias of one-sided QEP at nudge 0.1, plus the 1e-3 step
    tolerance); with nudge 0.01 the bias shrinks tenfold (|c - c_dense| <= 0.003)."""
    boundary = follow_boundary([1.0, 1.5], 1.0, equilibrium=equilibrium)
    fine = follow_boundary([1.0, 1.5], 1.0, nudge=0.01, equilibrium=equilibrium)
    for point, fine_point, window in zip(boundary, fine, [(0.93, 1.13), (1.35, 1.55)], strict=True):
        assert point.converged and fine_point.converged
        centre, slope, spline = _dense_argmax(dense_chain, point.theta_zz, window)
        assert point.center == pytest.approx(centre, abs=0.015)
        assert fine_point.center == pytest.approx(centre, abs=0.003)
        assert point.slope == pytest.approx(slope, rel=2e-3)  # S is flat at its maximum
        # the slope recorded at the found centre is the dense one there
        dense_there = abs(spline(point.center + 0.05) - spline(point.center - 0.05)) / 0.1
        assert point.slope == pytest.approx(dense_there, abs=1e-5)
    assert boundary[1].steps[0].parameters == (1.5, boundary[0].center)  # warm start


def test_boundary_branch_on_the_negative_side(equilibrium) -> None:
    boundary = follow_boundary([1.0, 1.2], -0.6, equilibrium=equilibrium)
    assert all(p.converged for p in boundary)
    # dense argmax (same method as above): -0.5599 at theta_zz = 1; S there 2.0115
    assert boundary[0].center == pytest.approx(-0.5599, abs=0.015)
    assert boundary[0].slope == pytest.approx(2.0115, rel=0.01)
    assert boundary.centers[1] < boundary.centers[0]  # the boundary moves out with theta_zz


# -- the phase diagram --------------------------------------------------------------------------------


def test_correlation_grid_marks_degenerate_points(equilibrium, dense_chain) -> None:
    grid = correlation_grid([0.05, 3.0], [1.5, 0.3], equilibrium, batch_size=3)
    assert grid.correlation.shape == grid.gaps.shape == (2, 2)
    # theta_x = 0.05 deep in the ordered phase (theta_zz = 1.5): gap ~ (0.05 / 1.5)^10
    assert grid.degenerate[0, 0] and not grid.degenerate[:, 1].any()
    assert grid.correlation[0, 1] == pytest.approx(_dense_correlation(dense_chain, 3.0, 1.5), abs=1e-8)
    assert grid.correlation[1, 1] > 0.95  # the X-polarised paramagnet


# -- task files ----------------------------------------------------------------------------------------

VALID = """\
schema: qep-explore/1
task: sensitivity
starts: [[-1.5, -0.2, -1.5]]
iterations: 3
"""


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (VALID.replace("iterations: 3", "iterations: 0"), "iterations = 0"),
        (VALID.replace("iterations: 3", "iterations: 2.5"), "iterations = 2.5"),
        (VALID.replace("iterations: 3", "itrations: 3"), "unknown key 'itrations'"),
        (VALID.replace("task: sensitivity", "task: sorting"), "task = 'sorting'"),
        (VALID.replace("qep-explore/1", "qep-explore/2"), "schema"),
        (VALID.replace("[[-1.5, -0.2, -1.5]]", "[[-1.5, -0.2]]"), "[theta_zz, g1, g2]"),
        (VALID.replace("[[-1.5, -0.2, -1.5]]", "[[0.1, 0.3, 0.3]]"), "g1 != g2"),
        (VALID.replace("[[-1.5, -0.2, -1.5]]", "[]"), "starts"),
        (VALID + "nudge: -0.1\n", "nudge = -0.1"),
        (VALID + "step_size: fast\n", "step_size = 'fast'"),
        (VALID + "boundary: {theta_zz: [1.0]}\n", "only for task boundary"),
        (VALID + "diagram: {points: [1, 5]}\n", "diagram.points"),
        (VALID + "diagram: {theta_x: [2, 1]}\n", "diagram.theta_x"),
        (VALID + "diagram: {colour: red}\n", "unknown key 'colour'"),
        (
            VALID.replace("sensitivity", "boundary").replace("[[-1.5, -0.2, -1.5]]", "[1.0]"),
            "boundary section",
        ),
        (
            VALID.replace("sensitivity", "boundary").replace("[[-1.5, -0.2, -1.5]]", "[1.0]")
            + "boundary: {theta_zz: [1.0], tolerance: 0.5}\n",
            "boundary.tolerance = 0.5",
        ),
    ],
)
def test_config_errors_are_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_explore_config(path)
    message = str(info.value)
    assert fragment in message and "bad.yaml" in message
    assert "\n" not in message


def test_config_defaults_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(VALID, encoding="utf-8")
    config = load_explore_config(path, {"iterations": 7, "output": str(tmp_path / "run")})
    assert (config.name, config.task, config.iterations) == ("ok", "sensitivity", 7)
    assert (config.nudge, config.step_size) == (0.1, 0.1)
    assert config.starts == ((-1.5, -0.2, -1.5),)
    assert config.output == tmp_path / "run"
    assert config.to_dict()["starts"] == [[-1.5, -0.2, -1.5]]


@pytest.mark.parametrize("name", ["explore_phase", "explore_sensitivity", "explore_boundary"])
def test_example_files_load(name: str) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    config = load_explore_config(examples / f"{name}.yaml")
    assert config.iterations in (60, 100) and len(config.starts) == 2


def test_device_reports_name_what_each_device_cannot_do(tmp_path: Path) -> None:
    from qep_analog.tasks.explore_config import device_reports

    reports = device_reports(("fresnel-like", "yb171-chain"))
    assert not reports["fresnel-like"]["fully_realisable"]
    assert "outputs.m: X0 X4" in reports["fresnel-like"]["dropped"]
    assert reports["yb171-chain"]["basis"].startswith("Hadamard")
    path = tmp_path / "bad.yaml"
    path.write_text(
        "schema: qep-explore/1\ntask: phase_exploration\nstarts: [[0.1, 0.2]]\ndevices: fresnel-like\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="devices = 'fresnel-like' is not a list of texts"):
        load_explore_config(path)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [("name: ../../x", "is not a plain name"), ("output: /tmp/x", "outside the working directory")],
)
def test_an_exploration_file_cannot_write_outside_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, fragment: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(VALID + line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=fragment):
        load_explore_config(path)
    if line.startswith("output"):
        assert load_explore_config(path, {"output": "/tmp/y"}).output == Path("/tmp/y")


def test_device_files_in_an_exploration_file_are_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qep_analog.tasks.explore_config import device_reports

    lab = tmp_path / "lab"
    (lab / "profiles").mkdir(parents=True)
    profile = (Path(__file__).resolve().parents[2] / "devices" / "yb171-chain.yaml").read_text()
    (lab / "profiles" / "ours.yaml").write_text(profile.replace("name: yb171-chain", "name: ours"))
    path = lab / "explore.yaml"
    path.write_text(VALID + "devices: [profiles/ours.yaml, fresnel-like]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_explore_config(Path("lab") / "explore.yaml")
    assert config.devices == (str(Path("lab") / "profiles" / "ours.yaml"), "fresnel-like")
    reports = device_reports(config.devices)
    assert reports[config.devices[0]]["profile"]["name"] == "ours"
