"""Progress bars of the command line that appear only once there is progress to show."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from rich.progress import Progress


class LazyProgress:
    """A rich progress bar that appears with the first report, so a run that fails while starting
    shows none; a context manager that stops it."""

    def __init__(self, *columns: Any, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress = Progress(*columns, disable=not enabled)
        self._started = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._started:
            self._progress.stop()

    def _start(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
