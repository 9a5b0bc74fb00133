"""The blockade subspace of a Rydberg register: the configurations with no two excited atoms closer
than a cutoff radius r_c (order 0), or with at most K such pairs excited (order K).

**Why it holds.** Two atoms at distance r interact by V(r) = C6/r⁶ when both are excited. When
V ≫ Ω, the doubly excited state |11⟩ of the pair is reached only virtually: adiabatic elimination
(|11⟩ has the energy V − 2δ, the singly excited ones −δ, the drive couples them by Ω/2 each) gives
the amplitude a₁₁ ≈ −(Ω/2)(a₀₁ + a₁₀)/(V − δ), and |a₀₁ + a₁₀| ≤ √2, so its population is at most

    p₁₁ ≤ Ω² / (2 (V − δ)²)        (δ > 0 lowers the pair's gap; δ ≤ 0 only raises it).

**The cutoff.** For a tolerance ε on that population, every pair with
V(r) ≥ V_c = max(δ_max, 0) + Ω_max/√(2ε) — i.e. r < r_c = (C6/V_c)^(1/6) — is blockaded. Ω_max and
δ_max are the schedule's largest Rabi frequency and global detuning. The user may give r_c instead
(µm). At order K (default 0) the basis keeps the configurations with at most K excited blockaded
pairs: order 0 is the blockade subspace proper (no two excited atoms closer than r_c), and the
doubly excited configurations removed carry with them their interaction; every pair keeps its full
C6/r⁶ interaction (the diagonal) in the configurations that are kept.

**The error model.** Order 0 drops, per blockaded pair, (i) the population of |11⟩, ≤ ε, and (ii)
its virtual coupling: the second-order shift (Ω/2)²/(V − δ) of the pair's singly excited states,
≤ Ω·√(2ε)/4 at V ≥ V_c. An atom with z blockaded neighbours loses up to z such shifts, so the ⟨n_i⟩
of the subspace differ from the full space's by the path's response to a perturbation of relative
size z·√(2ε)/4 (0.07 for a chain, 0.14 on a square lattice at ε = 10⁻²): on the sin² ramps of
``tests/sequences/test_blockade_subspace.py`` and ``benchmarks/bench_blockade_subspace.py``
(R_b/a = 1.5, ε = 10⁻²) max_i |Δ⟨n_i⟩| is 0.001–0.03 on chains and small arrays, about 0.07 on a
5 × 5 array (against order 1). Order K moves the cut to processes through K + 1 excited blockaded
pairs: measured max_i |Δ⟨n_i⟩| ≤ 6·10⁻³ at K = 1, ≤ 1.2·10⁻³ at K = 2, ≤ 2.2·10⁻⁵ at K = 3 on
chains of 8–16 atoms and arrays of 6–16 (not monotone in K on the smallest arrays). Order 0 is for
qualitative work and large arrays; for ⟨n_i⟩ to 10⁻³ at R_b/a ≈ 1.5 use K = 2–3.

**Enumeration.** The configurations are those with at most K edges of the blockade graph (an edge
for each pair closer than r_c) between excited atoms — at K = 0 its independent sets — enumerated
by a compiled depth-first search over the qubits in order, the unexcited branch first: they come out
as ascending basis indices (qubit 0 the most significant bit), so a configuration's position is
found by binary search. Their number is counted (without storing them) and checked against the
memory limit before they are stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray
from scipy.spatial.distance import pdist, squareform

from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.memory import memory_limit, require_memory
from qep_analog.sequences.schedule import Schedule

#: the default tolerance ε on a blockaded pair's doubly excited population (see the module doc)
DEFAULT_TOLERANCE = 1e-2
#: the largest blockade order (excited blockaded pairs a configuration may hold)
MAX_ORDER = 3
#: a configuration is an int64 bit string: at most this many atoms
MAX_SUBSPACE_QUBITS = 62


def cutoff_interaction(rabi_max: float, detuning_max: float, tolerance: float) -> float:
    """V_c = max(δ_max, 0) + Ω_max/√(2ε) (rad/µs): pairs interacting more strongly are blockaded
    to within ε in their doubly excited population (see the module doc)."""
    if not 0.0 < tolerance < 1.0:
        raise ConfigError(f"blockade tolerance {tolerance!r} is not in (0, 1)")
    return max(detuning_max, 0.0) + abs(rabi_max) / math.sqrt(2.0 * tolerance)


def blockade_radius(c6: float, rabi_max: float, detuning_max: float, tolerance: float) -> float:
    """r_c = (C6/V_c)^(1/6) (µm; C6 in rad/µs·µm⁶, Ω and δ in rad/µs); 0 (nothing removed) when V_c
    is 0 (no drive and no positive detuning: nothing leaves the initial configuration)."""
    threshold = cutoff_interaction(rabi_max, detuning_max, tolerance)
    return 0.0 if threshold <= 0.0 else float((c6 / threshold) ** (1.0 / 6.0))


def schedule_blockade_radius(schedule: Schedule, profile: DeviceProfile, tolerance: float) -> float:
    """The cutoff radius (µm) of a Rydberg schedule on ``profile``: Ω_max and δ_max from its ``rabi``
    and ``detuning`` waveforms (Ω scaled by the calibration's Rabi scale, C6 by its interaction
    scale)."""
    if not schedule.platform_spec.blockade:
        raise ConfigError(
            f"blockade subspace: schedule {schedule.label!r} is {schedule.platform}; only Rydberg arrays "
            "have a blockade"
        )
    cal = profile.calibration
    rabi = schedule.controls.get("rabi")
    detuning = schedule.controls.get("detuning")
    rabi_max = 0.0 if rabi is None else cal.rabi_scale * float(np.abs(rabi.values).max())
    detuning_max = 0.0 if detuning is None else float(detuning.values.max())
    return blockade_radius(cal.interaction_scale * profile.rydberg.c6, rabi_max, detuning_max, tolerance)


def check_radius(radius: float) -> float:
    """A user's cutoff radius (µm): finite and ≥ 0, else a one-line error."""
    valid = isinstance(radius, (int, float)) and not isinstance(radius, bool)
    if not (valid and math.isfinite(radius) and radius >= 0.0):
        raise ConfigError(f"blockade radius {radius!r} µm is not a finite number ≥ 0")
    return float(radius)


def check_order(order: int) -> int:
    """A blockade order (the excited blockaded pairs a configuration may hold): an integer in
    [0, :data:`MAX_ORDER`], else a one-line error."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 0 <= order <= MAX_ORDER:
        raise ConfigError(f"blockade order {order!r} is not an integer in [0, {MAX_ORDER}]")
    return int(order)


def blockade_neighbours(positions: NDArray, radius: float) -> NDArray:
    """``out[q]``: the bit mask (qubit p at bit n − 1 − p) of the atoms closer than ``radius`` (µm)
    to atom q."""
    points = np.atleast_2d(np.asarray(positions, dtype=float))
    n = len(points)
    out = np.zeros(n, dtype=np.int64)
    if n < 2:
        return out
    close = squareform(pdist(points)) < radius
    np.fill_diagonal(close, False)
    bits = np.int64(1) << np.arange(n - 1, -1, -1, dtype=np.int64)
    for q in range(n):
        out[q] = np.bitwise_or.reduce(bits[close[q]], initial=np.int64(0))
    return out


@numba.njit(cache=True, nogil=True)
def _independent_sets(neighbours: NDArray, out: NDArray, cap: int, allowed: int = 0) -> int:
    """The configurations with at most ``allowed`` edges of the graph (``neighbours[q]``: q's
    neighbours as a bit mask) between excited atoms (0: the independent sets), as ascending bit
    strings written to ``out`` while it has room; stops after ``cap`` + 1 of them. Returns their
    number (``cap`` + 1: more than ``cap``)."""
    n = neighbours.shape[0]
    edges = np.zeros(n + 1, dtype=np.int64)  # excited edges among the qubits decided so far
    config = np.zeros(n + 1, dtype=np.int64)
    choice = np.zeros(n + 1, dtype=np.int64)  # 0: take the bit unset next, 1: set, 2: done
    count = 0
    q = 0
    while q >= 0:
        if q == n:
            if count < out.shape[0]:
                out[count] = config[n]
            count += 1
            if count > cap:
                return count
            q -= 1
            continue
        if choice[q] == 0:
            choice[q] = 1
            edges[q + 1] = edges[q]
            config[q + 1] = config[q]
            choice[q + 1] = 0
            q += 1
        elif choice[q] == 1:
            choice[q] = 2
            bit = np.int64(1) << (n - 1 - q)
            # the undecided qubits are unset: only earlier neighbours can be excited
            added = edges[q]
            shared = config[q] & neighbours[q]
            while shared:
                shared &= shared - 1
                added += 1
            if added <= allowed:
                edges[q + 1] = added
                config[q + 1] = config[q] | bit
                choice[q + 1] = 0
                q += 1
        else:
            q -= 1
    return count


def count_configurations(neighbours: NDArray, cap: int, allowed: int = 0) -> int:
    """The number of configurations with at most ``allowed`` blockaded pairs excited (``cap`` + 1
    when there are more than ``cap``)."""
    neighbours = np.asarray(neighbours, dtype=np.int64)
    return int(_independent_sets(neighbours, np.empty(0, np.int64), cap, allowed))


def independent_sets(neighbours: NDArray, allowed: int = 0) -> NDArray:
    """The configurations with at most ``allowed`` blockaded pairs excited (0: the independent sets
    of the blockade graph), as ascending basis indices (qubit 0 the most significant bit)."""
    neighbours = np.asarray(neighbours, dtype=np.int64)
    total = count_configurations(neighbours, np.iinfo(np.int64).max - 1, allowed)
    out = np.empty(total, dtype=np.int64)
    _independent_sets(neighbours, out, total, allowed)
    return out


@dataclass(frozen=True)
class BlockadeSubspace:
    """The configurations (ascending basis indices, qubit 0 the most significant bit) with at most
    ``order`` excited pairs of atoms closer than ``radius`` (µm) — order 0: no two excited atoms
    closer than ``radius``; ``blockaded_pairs``: the number of such pairs of atoms."""

    n_qubits: int
    radius: float
    configurations: NDArray
    blockaded_pairs: int
    order: int = 0

    @property
    def dimension(self) -> int:
        return len(self.configurations)

    @classmethod
    def of(
        cls,
        positions: NDArray,
        radius: float,
        bytes_per_configuration: float,
        what: str = "emulator",
        order: int = 0,
    ) -> BlockadeSubspace:
        """The subspace of atoms at ``positions`` (µm); its size is checked against the memory limit
        (``bytes_per_configuration`` each) before it is enumerated."""
        radius = check_radius(radius)
        positions = np.atleast_2d(np.asarray(positions, dtype=float))
        n = len(positions)
        if n > MAX_SUBSPACE_QUBITS:
            raise ConfigError(
                f"{what}: {n} atoms exceed the blockade subspace's limit of {MAX_SUBSPACE_QUBITS}"
            )
        neighbours = blockade_neighbours(positions, radius)
        cap = max(1, int(memory_limit() // max(bytes_per_configuration, 1.0)))
        order = check_order(order)
        count = count_configurations(neighbours, cap, order)
        size = "more than " if count > cap else ""
        require_memory(
            f"{what}: blockade subspace of {size}{count - (count > cap)} configurations of {n} atoms "
            f"(r_c = {radius:.3g} µm)",
            count * bytes_per_configuration,
        )
        configurations = np.empty(count, dtype=np.int64)
        _independent_sets(neighbours, configurations, count, order)
        pairs = int(sum(int(m).bit_count() for m in neighbours) // 2)
        return cls(n, radius, configurations, pairs, order)
