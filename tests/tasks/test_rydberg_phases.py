"""Phase labels of the 1D Rydberg chain from the stored DMRG boundaries, and an exact check of them."""

from __future__ import annotations

import json
import math
from importlib import resources
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

from qep_analog.errors import ConfigError, StorageError
from qep_analog.storage import write_json
from qep_analog.tasks.rydberg_phases import (
    DATA_FILE,
    PHASES,
    SCHEMA,
    load_boundaries,
    rydberg_chain_phase,
)


def _data_text() -> str:
    return resources.files("qep_analog.tasks.data").joinpath(DATA_FILE).read_text(encoding="utf-8")


def _rydberg_ground_state(n_atoms: int, delta: float, rb_over_a: float, cutoff: int) -> np.ndarray:
    """Ground state of H = 1/2 Σ X − δ Σ n + Σ_{r <= cutoff} (R_b/a)^6 / r^6 n_i n_{i+r} (Ω = 1) by
    sparse Lanczos, built here from bit operations (independent of the package's operators).
    Basis index bit (n−1−i) is n_i."""
    dim = 2**n_atoms
    index = np.arange(dim)
    occupation = (index[:, None] >> (n_atoms - 1 - np.arange(n_atoms))[None, :]) & 1
    diagonal = -delta * occupation.sum(axis=1).astype(float)
    for r in range(1, cutoff + 1):
        pairs = (occupation[:, :-r] * occupation[:, r:]).sum(axis=1)
        diagonal += rb_over_a**6 / r**6 * pairs
    rows = [index]
    cols = [index]
    values = [diagonal]
    for i in range(n_atoms):
        rows.append(index)
        cols.append(index ^ (1 << (n_atoms - 1 - i)))
        values.append(np.full(dim, 0.5))
    hamiltonian = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(dim, dim)
    )
    energy, vector = eigsh(hamiltonian, k=1, which="SA", tol=1e-12, v0=np.ones(dim))
    return np.asarray(occupation), float(energy[0]), vector[:, 0]


def test_schema_line_and_recorded_settings() -> None:
    text = _data_text()
    assert text.splitlines()[1] == f'  "schema": "{SCHEMA}",'
    document = json.loads(text)
    assert document["phases"] == list(PHASES)
    assert len(document["lengths"]) >= 3 and all(n % 12 == 1 for n in document["lengths"])
    assert document["coupling_cutoff"] >= 2 and document["chi_max"] >= 32
    assert document["command"].startswith("python benchmarks/rydberg_phase_boundaries.py")
    assert document["method"]
    check = document["exact_check"]
    assert check["max_energy_error"] <= check["tolerance"]["energy"]
    assert check["max_density_error"] <= check["tolerance"]["density"]
    rb = [g.rb_over_a for g in load_boundaries().grid]
    assert rb[0] <= 1.6 and rb[-1] >= 2.8 and max(np.diff(rb)) <= 0.1 + 1e-9


@pytest.mark.parametrize(
    ("delta", "rb", "phase"),
    [
        (-1.0, 1.7, "disordered"),
        (0.5, 1.6, "disordered"),
        (0.5, 2.5, "disordered"),
        (0.6, 2.15, "disordered"),  # between the lobes, but far below any modulation
        (3.0, 1.6, "Z2"),
        (3.0, 1.75, "Z2"),
        (3.5, 1.9, "Z2"),
        (3.0, 2.4, "Z3"),
        (3.5, 2.75, "Z3"),
    ],
)
def test_deep_inside_each_phase(delta: float, rb: float, phase: str) -> None:
    assert rydberg_chain_phase(delta, rb) == phase


def test_no_label_outside_the_computed_region() -> None:
    data = load_boundaries()
    low_rb, high_rb = data.rb_range
    assert rydberg_chain_phase(2.0, low_rb - 0.05) is None
    assert rydberg_chain_phase(2.0, high_rb + 0.05) is None
    assert rydberg_chain_phase(data.delta_range[1] + 0.5, 1.7) is None
    assert data.incommensurate_rb is not None
    a, b = data.incommensurate_rb
    assert 1.9 < a < b < 2.4
    assert rydberg_chain_phase(3.0, 0.5 * (a + b)) is None  # the gap between the lobes
    for g in data.grid:  # no label in the interval around each onset
        low, high = g.unlabelled
        assert g.delta_c is not None and low <= g.delta_c <= high
        assert rydberg_chain_phase(0.5 * (low + high), g.rb_over_a) is None
    windows = [b for b in json.loads(_data_text())["boundaries"] if b["incommensurate_delta"]]
    assert windows  # the incommensurate region below the tip of the Z2 lobe
    for b in windows:
        low, high = b["incommensurate_delta"]
        assert rydberg_chain_phase(0.5 * (low + high), b["rb_over_a"]) is None
    with pytest.raises(ConfigError, match="not finite"):
        rydberg_chain_phase(math.nan, 2.0)


def test_boundaries_are_plausible() -> None:
    grid = load_boundaries().grid
    z2 = [g for g in grid if g.order == "Z2"]
    z3 = [g for g in grid if g.order == "Z3"]
    assert z2 and z3 and max(g.rb_over_a for g in z2) < min(g.rb_over_a for g in z3)
    onsets = [g.delta_c for g in z2 if g.delta_c is not None]
    assert len(onsets) == len(z2) and all(b > a for a, b in pairwise(onsets))  # the Z2 lobe bends up
    assert 0.7 < onsets[0] < 1.5
    assert all(g.delta_c is not None and 1.3 < g.delta_c < 3.5 for g in z3)
    # along δ: disordered, then the order, never back
    for g in grid:
        labels = [rydberg_chain_phase(d, g.rb_over_a) for d in np.linspace(-1.0, 4.0, 101)]
        seen = [x for k, x in enumerate(labels) if k == 0 or x != labels[k - 1]]
        assert seen[0] == "disordered" and seen[-1] == g.order and len(seen) <= 3


def test_exact_diagonalisation_sees_z2_order_grow_across_the_boundary() -> None:
    """L = 13 (odd: the open edges pin one Z2 pattern), R_b/a = 1.7: the density-wave amplitude in
    the middle of the chain and the staggered end-to-end correlation grow across the stored δ_c."""
    document = json.loads(_data_text())
    cutoff = document["coupling_cutoff"]
    delta_c = next(g.delta_c for g in load_boundaries().grid if abs(g.rb_over_a - 1.7) < 1e-9)
    assert delta_c is not None
    amplitude = []
    for delta in (delta_c - 0.5, delta_c, delta_c + 0.5):
        occupation, _, vector = _rydberg_ground_state(13, delta, 1.7, cutoff)
        density = (vector**2) @ occupation
        middle = density[3:10]
        amplitude.append(abs(np.sum((-1.0) ** np.arange(3, 10) * (middle - middle.mean()))) * 2 / 7)
    # measured: 0.16, 0.68, 0.85 (a perfect Z2 pattern gives 1)
    assert amplitude[0] < 0.25 < amplitude[1] < amplitude[2]
    assert amplitude[2] > 0.8 and amplitude[1] - amplitude[0] > 2 * (amplitude[2] - amplitude[1])


def test_stored_exact_check_is_the_intended_hamiltonian() -> None:
    """The energies the benchmark stored for its exact check (the package's model of the chain)
    agree with the chain built here from scratch."""
    document = json.loads(_data_text())
    check = document["exact_check"]
    for row in check["points"][:2]:
        _, energy, _ = _rydberg_ground_state(
            check["L"], row["delta"], row["rb_over_a"], document["coupling_cutoff"]
        )
        assert energy == pytest.approx(row["energy_ed"], abs=1e-8)


def test_load_boundaries_from_a_file(tmp_path: Path) -> None:
    document = json.loads(_data_text())
    del document["schema"]
    path = tmp_path / "boundaries.json"
    write_json(path, document, SCHEMA)
    data = load_boundaries(path)
    assert data.grid == load_boundaries().grid
    assert rydberg_chain_phase(3.0, 1.7, data) == "Z2"
    write_json(path, document, "qep-phase-boundaries/0")
    with pytest.raises(StorageError, match="schema"):
        load_boundaries(path)
    document["boundaries"][0].pop("order")
    write_json(path, document, SCHEMA)
    with pytest.raises(StorageError, match="malformed"):
        load_boundaries(path)
