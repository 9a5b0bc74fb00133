"""The QEP difference scheme: which phases one gradient needs and the quotient taken over them.

A phase is one preparation of the same input and parameters with the nudge ν = sign · β ε:
``plus`` (+1), ``minus`` (−1) and ``free`` (0). The symmetric scheme takes
(⟨A⟩₊ − ⟨A⟩₋)/(2β) (bias O(β²)); the one-sided scheme (⟨A⟩₊ − ⟨A⟩₀)/β (bias O(β)). Every estimator
— exact states, sampled bitstrings, emulated schedules, measured counts — builds its phases and
takes its quotient here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import ConfigError
from qep_analog.qep.names import SCHEMES

#: the two phases whose difference a scheme divides: (first, second)
PHASES: dict[str, tuple[str, str]] = {"symmetric": ("plus", "minus"), "one-sided": ("plus", "free")}
#: the sign of the nudge β ε in each phase
SIGNS: dict[str, float] = {"plus": 1.0, "minus": -1.0, "free": 0.0}


def nudge_signs(scheme: str) -> tuple[float, ...]:
    """The signs of the nudged phases a scheme prepares besides the free one: (+1, −1) or (+1,)."""
    return tuple(SIGNS[p] for p in PHASES[scheme] if SIGNS[p] != 0.0)


def denominator(beta: float, scheme: str) -> float:
    """2β (symmetric) or β (one-sided): what the difference of the two phases is divided by."""
    if scheme not in PHASES:
        raise ConfigError(f"scheme {scheme!r} is unknown (valid: {', '.join(SCHEMES)})")
    return 2.0 * beta if scheme == "symmetric" else beta


def difference_quotient(first: ArrayLike, second: ArrayLike, beta: float, scheme: str) -> NDArray:
    """(first − second) / denominator: ``first`` measured in ``plus``, ``second`` in ``minus``
    (symmetric) or ``free`` (one-sided)."""
    return np.asarray((np.asarray(first) - np.asarray(second)) / denominator(beta, scheme))


def quotient_of_phases(values: Mapping[str, ArrayLike], beta: float, scheme: str) -> NDArray:
    """The scheme's quotient of values measured per phase name."""
    first, second = PHASES[scheme]
    return difference_quotient(values[first], values[second], beta, scheme)
