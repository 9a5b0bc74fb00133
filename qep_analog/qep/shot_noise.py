"""Gaussian shot noise on measured Pauli-string expectation values."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ConfigError


class ShotNoise:
    """Each non-identity Pauli string, measured with ``shots`` shots, gets Gaussian noise of
    variance (1 - <P>^2)/shots, independently. ``identity`` marks the identity string (exact).
    """

    def __init__(self, shots: int, identity: NDArray, rng: np.random.Generator) -> None:
        if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
            raise ConfigError(f"shot noise: shots = {shots!r} must be a positive integer")
        self.shots = shots
        self.identity = np.asarray(identity, dtype=bool)
        self.rng = rng

    def __call__(self, strings: NDArray) -> NDArray:
        variance = np.clip(1.0 - strings**2, 0.0, None) / self.shots
        noise = self.rng.standard_normal(strings.shape) * np.sqrt(variance)
        noise[..., self.identity] = 0.0
        return np.asarray(strings + noise)
