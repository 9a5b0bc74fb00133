"""Equilibrium states of a model: the ground state (T = 0) or the Gibbs state (T > 0).

:class:`Equilibrium` is where QEP's exact emulation prepares its free and nudged states; every
estimator in :mod:`qep_analog.qep` goes through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import ConfigError
from qep_analog.model.qep_model import CompiledModel, QEPModel
from qep_analog.solvers.exact import MAX_EXACT_QUBITS, ExactSolver, GroundStates
from qep_analog.solvers.thermal import (
    MAX_THERMAL_QUBITS,
    GibbsState,
    check_gibbs_memory,
    gibbs_state,
    thermal_strings,
)


@dataclass(frozen=True)
class Prepared:
    """A batch of prepared equilibrium states.

    ``strings`` (B, n_strings) Pauli-string expectation values; ``energies`` (B,) ground energies
    (T = 0) or free energies (T > 0); ``gaps`` (B,) or None; ``states``: state vectors (B, dim) at
    T = 0, Gibbs states at T > 0.
    """

    strings: NDArray
    energies: NDArray
    gaps: NDArray | None
    states: NDArray | list[GibbsState]


class Equilibrium:
    """Prepares ground (``temperature`` None or 0) or Gibbs states of H(x, theta, nu)."""

    def __init__(self, model: QEPModel, *, temperature: float | None = None, tol: float = 1e-10) -> None:
        if temperature is not None and not (np.isfinite(temperature) and temperature >= 0):
            raise ConfigError(f"equilibrium: temperature {temperature!r} must be >= 0 and finite")
        limit = MAX_THERMAL_QUBITS if temperature else MAX_EXACT_QUBITS
        if model.n_qubits > limit:
            kind = "thermal (dense)" if temperature else "exact"
            raise ConfigError(
                f"equilibrium: {model.n_qubits} qubits exceed the {kind} limit of {limit} qubits"
            )
        if temperature and model.parity is not None:
            raise ConfigError(
                f"equilibrium: temperature {temperature:g} with parity {model.parity:+d}: a Gibbs "
                "state of one parity sector is not supported (use temperature 0)"
            )
        self.model = model
        self.compiled: CompiledModel = model.compiled
        self.temperature = temperature or None
        self.solver = ExactSolver(self.compiled, tol=tol)

    @property
    def thermal(self) -> bool:
        return self.temperature is not None

    def coefficients(self, x: ArrayLike, theta: ArrayLike, nu: ArrayLike | None) -> NDArray:
        """String coefficients with a batch axis, broadcasting x, theta and nu."""
        coeffs = self.compiled.coefficients(x, theta, nu)
        return np.atleast_2d(coeffs)

    def prepare(
        self,
        x: ArrayLike,
        theta: ArrayLike,
        nu: ArrayLike | None = None,
        *,
        start: ArrayLike | None = None,
        with_gap: bool = False,
        check_degeneracy: bool = True,
        keep_states: bool = True,
    ) -> Prepared:
        """Prepare the batch of states; ``start`` warm-starts the ground-state solver.

        With ``with_gap`` the gaps are computed and, unless ``check_degeneracy`` is False, a
        degenerate ground state raises :class:`~qep_analog.errors.PreconditionError`. Without
        ``keep_states`` the result's ``states`` is empty (callers that need only the string
        expectation values: executors then do not ship the states back).
        """
        coeffs = self.coefficients(x, theta, nu)
        if self.temperature is None:
            ground: GroundStates = self.solver.solve(
                coeffs,
                None if start is None else np.asarray(start),
                with_gap=with_gap,
                check_degeneracy=check_degeneracy,
            )
            states: NDArray | list[GibbsState] = ground.states if keep_states else []
            return Prepared(ground.strings, ground.energies, ground.gaps, states)
        check_gibbs_memory(self.compiled, len(coeffs))
        gibbs = [gibbs_state(self.compiled, c, self.temperature) for c in coeffs]
        strings = np.array([thermal_strings(self.compiled, g) for g in gibbs])
        energies = np.array([g.free_energy for g in gibbs])
        gaps = np.array([g.energies[1] - g.energies[0] for g in gibbs]) if with_gap else None
        return Prepared(strings, energies, gaps, gibbs if keep_states else [])
