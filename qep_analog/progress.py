"""Progress bars of the command line that appear only once there is progress to show."""

from __future__ import annotations

import io
from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class LazyProgress:
    """A rich progress bar that appears with the first report, so a run that fails while starting
    shows none; a context manager that stops it."""

    def __init__(self, *columns: Any, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress = Progress(*columns, disable=not enabled, console=console)
        self._started = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._started:
            return
        if kind is None:
            self._progress.stop()
            return
        # a failed run ends with its error alone: the bar is cleared from a terminal, and elsewhere
        # (where it is drawn only when it stops) not drawn at all
        console = self._progress.console
        self._progress.live.transient = True
        drawn_to = console.file
        if not console.is_terminal:
            console.file = io.StringIO()
        try:
            self._progress.stop()
        finally:
            console.file = drawn_to

    def _start(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True


class StageProgress(LazyProgress):
    """One bar per stage (its name): items done of a total, a short text, the time remaining.
    ``stderr``: draw on standard error, so that standard output holds only the results."""

    def __init__(self, enabled: bool = True, stderr: bool = False) -> None:
        super().__init__(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[text]}"),
            TimeRemainingColumn(),
            enabled=enabled,
            console=Console(stderr=True) if stderr else None,
        )
        self._tasks: dict[str, Any] = {}

    def update(self, stage: str, done: int, total: int, text: str) -> None:
        self._start()
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total, text="")
        self._progress.update(self._tasks[stage], completed=done, total=total, text=text)
