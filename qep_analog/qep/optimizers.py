"""First-order optimizers whose state can be checkpointed as plain JSON."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ConfigError
from qep_analog.schema import Field, parse_section


class Optimizer(Protocol):
    """``step(theta, gradient)`` returns the new parameters; ``state``/``load_state`` checkpoint it."""

    def step(self, theta: NDArray, gradient: NDArray) -> NDArray: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


class SGD:
    """Plain gradient descent, theta <- theta - learning_rate * gradient."""

    def __init__(self, learning_rate: float) -> None:
        if not learning_rate > 0:
            raise ConfigError(f"sgd: learning_rate = {learning_rate} must be positive")
        self.learning_rate = learning_rate

    def step(self, theta: NDArray, gradient: NDArray) -> NDArray:
        return np.asarray(theta - self.learning_rate * gradient)

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        return None


class Adam:
    """Adam (Kingma and Ba) with bias-corrected moments."""

    def __init__(
        self,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        if not learning_rate > 0:
            raise ConfigError(f"adam: learning_rate = {learning_rate} must be positive")
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= value < 1:
                raise ConfigError(f"adam: {name} = {value} must be in [0, 1)")
        self.learning_rate, self.beta1, self.beta2, self.epsilon = (
            learning_rate,
            beta1,
            beta2,
            epsilon,
        )
        self.t = 0
        self.m: NDArray | None = None
        self.v: NDArray | None = None

    def step(self, theta: NDArray, gradient: NDArray) -> NDArray:
        if self.m is None or self.v is None:
            self.m = np.zeros_like(theta)
            self.v = np.zeros_like(theta)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * gradient
        self.v = self.beta2 * self.v + (1 - self.beta2) * gradient**2
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return np.asarray(theta - self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon))

    def state(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "m": None if self.m is None else self.m.tolist(),
            "v": None if self.v is None else self.v.tolist(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        self.m = None if state["m"] is None else np.array(state["m"], dtype=float)
        self.v = None if state["v"] is None else np.array(state["v"], dtype=float)


#: the largest moment an optimizer state may store (larger ones overflow in a step)
MAX_MOMENT = 1e150
#: the stored state of each optimizer (``state()``), per parameter where it is a list
_STATE_FIELDS = {
    "adam": (
        Field("t", "integer", low=0),
        Field("m", "numbers", nullable=True, low=-MAX_MOMENT, high=MAX_MOMENT),
        Field("v", "numbers", nullable=True, low=0.0, high=MAX_MOMENT),
    ),
    "sgd": (),
}


def check_state(name: str, state: Any, size: int, where: str, error: type[Exception]) -> None:
    """A stored state of optimizer ``name`` for ``size`` parameters: its keys, kinds, bounds and
    lengths (one entry per parameter in each list; Adam's moments both absent before its first step,
    both present after it), else a one-line ``error`` naming ``where``."""
    fields = tuple(
        dataclasses.replace(f, length=size) if f.kind == "numbers" else f for f in _STATE_FIELDS[name]
    )
    values = parse_section(state, fields, where, error, "optimizer")
    started = name == "adam" and values["t"] > 0
    if name == "adam" and any((values[key] is None) == started for key in ("m", "v")):
        raise error(
            f"{where}: optimizer: t = {values['t']}, but the moments m and v must be null at t = 0 and "
            "lists after it"
        )


_MAKERS: dict[str, type[Adam] | type[SGD]] = {"adam": Adam, "sgd": SGD}
OPTIMIZERS = tuple(_MAKERS)


def make_optimizer(name: str, learning_rate: float) -> Optimizer:
    """An optimizer by name (``adam`` or ``sgd``)."""
    if name not in _MAKERS:
        raise ConfigError(f"optimizer: unknown name {name!r} (valid: {', '.join(OPTIMIZERS)})")
    return _MAKERS[name](learning_rate)
