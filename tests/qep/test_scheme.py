"""The QEP difference scheme: phases, signs and the quotient, against analytic responses."""

from __future__ import annotations

import numpy as np
import pytest

from qep_analog.qep.names import SCHEMES
from qep_analog.qep.scheme import PHASES, SIGNS, denominator, nudge_signs, quotient_of_phases


def response(nu: float) -> np.ndarray:
    """<A>(ν) = a + b ν + c ν² + d ν³ for two generators."""
    return np.array([0.3 - 1.7 * nu + 0.4 * nu**2 + 2.0 * nu**3, -2.0 + 0.25 * nu - 3.0 * nu**2])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_quotient_bias_order(scheme: str) -> None:
    slope = np.array([-1.7, 0.25])
    errors = []
    for beta in (1e-2, 5e-3):
        values = {phase: response(SIGNS[phase] * beta) for phase in PHASES[scheme]}
        errors.append(np.abs(quotient_of_phases(values, beta, scheme) - slope).max())
    order = np.log2(errors[0] / errors[1])
    # symmetric: the ν² terms cancel, the error is d β² (order 2); one-sided: c β (order 1)
    assert order == pytest.approx(2.0 if scheme == "symmetric" else 1.0, abs=0.02)


def test_phases_and_signs() -> None:
    assert nudge_signs("symmetric") == (1.0, -1.0) and nudge_signs("one-sided") == (1.0,)
    assert denominator(0.1, "symmetric") == pytest.approx(0.2) and denominator(0.1, "one-sided") == 0.1
    exact = {"plus": np.array([1.0]), "minus": np.array([-1.0]), "free": np.array([0.0])}
    assert quotient_of_phases(exact, 0.5, "symmetric") == pytest.approx([2.0])
    assert quotient_of_phases(exact, 0.5, "one-sided") == pytest.approx([2.0])
