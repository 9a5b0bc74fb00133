"""What the device-native sensors share: two sensor outputs in [0, 1] name a class by the nearest of
the classes' codewords (the P00, P11 and P01 of the paper's sensor); the loss is the squared distance
to the target's codeword."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qep_analog.errors import ConfigError

#: The rounds of ``size`` draws :meth:`CodewordSensor.labelled_points` makes before it gives up: a
#: window where fewer than 1 in 1000 points carries a class (e.g. one beyond the known phase diagram)
#: is a :class:`ConfigError`, not an endless loop.
MAX_SAMPLE_ROUNDS = 1000


@dataclass(frozen=True)
class SensorAxes:
    """How a sensor task's points are drawn: the columns on x and y, their labels, the x scale and
    a vertical spread for a y that takes a few values only (e.g. a beat-note side)."""

    columns: tuple[int, int]
    labels: tuple[str, str]
    xscale: str = "linear"
    spread: float = 0.0


class CodewordSensor(ABC):
    """Targets, batches, predictions and metrics of a sensor whose classes ``phases`` have the
    codewords ``codewords`` (one row per class); a task gives its points' labels, its model inputs
    and how it draws points."""

    phases: tuple[str, ...]
    codewords: NDArray
    _test_points: NDArray

    @abstractmethod
    def label(self, points: NDArray) -> list[str | None]: ...

    @abstractmethod
    def model_inputs(self, points: NDArray) -> NDArray: ...

    @abstractmethod
    def _sample_points(self, rng: np.random.Generator, size: int) -> NDArray: ...

    def labelled_points(
        self, rng: np.random.Generator, size: int, draw: Callable[[int], NDArray], window: str
    ) -> NDArray:
        """``size`` points of ``draw(size)`` (rows) that carry a class, those without one redrawn for
        at most :data:`MAX_SAMPLE_ROUNDS` rounds; ``window`` names the input window in the error."""
        out: list[NDArray] = []
        for _ in range(MAX_SAMPLE_ROUNDS):
            if len(out) >= size:
                break
            drawn = draw(size)
            out += [p for p, label in zip(drawn, self.label(drawn), strict=True) if label is not None]
        if len(out) < size:
            raise ConfigError(
                f"{window}: {len(out)} of {size} points carry a class of {', '.join(self.phases)} after "
                f"{MAX_SAMPLE_ROUNDS} rounds of draws (narrow the window to the phases)"
            )
        return np.array(out[:size])

    def targets(self, points: NDArray) -> NDArray:
        return self.codewords_of(self.label(points))

    def sample_batch(self, rng: np.random.Generator, size: int) -> tuple[NDArray, NDArray]:
        points = self._sample_points(rng, size)
        return self.model_inputs(points), self.targets(points)

    def test_set(self) -> tuple[NDArray, NDArray]:
        return self.model_inputs(self._test_points), self.targets(self._test_points)

    def codewords_of(self, labels: Sequence[str | None]) -> NDArray:
        """The codeword of each label (each must be one of ``phases``)."""
        index = {p: k for k, p in enumerate(self.phases)}
        return np.array([self.codewords[index[str(label)]] for label in labels])

    def predicted_phases(self, outputs: NDArray) -> NDArray:
        """The index in ``phases`` of the codeword nearest to each row of outputs (or targets)."""
        outputs = np.atleast_2d(outputs)
        return np.asarray(
            ((outputs[:, None, :] - self.codewords[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        )

    def metrics(self, outputs: NDArray, targets: NDArray) -> dict[str, float]:
        """Max-choice accuracy (the nearest codeword is the target's) and the single-shot accuracy:
        the mean probability that one shot reads a sensor's codeword bit."""
        outputs = np.atleast_2d(outputs)
        bits = np.where(targets > 0.5, outputs, 1.0 - outputs)
        return {
            "max_choice_accuracy": float(
                np.mean(self.predicted_phases(outputs) == self.predicted_phases(targets))
            ),
            "single_shot_accuracy": float(np.clip(bits, 0.0, 1.0).mean()),
        }
