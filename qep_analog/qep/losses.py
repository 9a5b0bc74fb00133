"""Losses on the outputs <O> and their error signals eps = dL/d<O>."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ConfigError


class Loss(Protocol):
    """A per-sample loss L(<O>; y) with its gradient eps = dL/d<O>; arrays are (B, n_outputs)."""

    @property
    def name(self) -> str: ...

    def value(self, outputs: NDArray, targets: NDArray) -> NDArray: ...

    def error_signal(self, outputs: NDArray, targets: NDArray) -> NDArray: ...


@dataclass(frozen=True)
class SquaredError:
    """L = sum_l (<O_l> - y_l)^2, eps_l = 2 (<O_l> - y_l)."""

    name: str = "squared_error"

    def value(self, outputs: NDArray, targets: NDArray) -> NDArray:
        return np.asarray(((outputs - targets) ** 2).sum(axis=-1))

    def error_signal(self, outputs: NDArray, targets: NDArray) -> NDArray:
        return np.asarray(2.0 * (outputs - targets))


@dataclass(frozen=True)
class CrossEntropy:
    """Cross-entropy of the targets with the normalised output probabilities q_l = p_l / sum p.

    L = -sum_l y_l log q_l. Measured probabilities below ``floor`` (shot noise makes them zero or
    negative) are clipped to it, which bounds the error signal by about 1/floor.
    """

    name: str = "cross_entropy"
    floor: float = 1e-2

    def value(self, outputs: NDArray, targets: NDArray) -> NDArray:
        p = np.clip(outputs, self.floor, None)
        q = p / p.sum(axis=-1, keepdims=True)
        return np.asarray(-(targets * np.log(q)).sum(axis=-1))

    def error_signal(self, outputs: NDArray, targets: NDArray) -> NDArray:
        p = np.clip(outputs, self.floor, None)
        total = p.sum(axis=-1, keepdims=True)
        return np.asarray(-targets / p + targets.sum(axis=-1, keepdims=True) / total)


@dataclass(frozen=True)
class CustomLoss:
    """A user loss: ``value_fn(outputs, targets)`` and ``error_fn(outputs, targets)`` = dL/d<O>."""

    value_fn: Callable[[NDArray, NDArray], NDArray]
    error_fn: Callable[[NDArray, NDArray], NDArray]
    name: str = "custom"

    def value(self, outputs: NDArray, targets: NDArray) -> NDArray:
        return np.asarray(self.value_fn(outputs, targets))

    def error_signal(self, outputs: NDArray, targets: NDArray) -> NDArray:
        return np.asarray(self.error_fn(outputs, targets))


LOSSES: dict[str, Callable[[], Loss]] = {
    "squared_error": lambda: SquaredError(),
    "cross_entropy": lambda: CrossEntropy(),
}


def loss_by_name(name: str) -> Loss:
    """A built-in loss by name."""
    if name not in LOSSES:
        raise ConfigError(f"loss: unknown name {name!r} (valid: {', '.join(LOSSES)})")
    return LOSSES[name]()
