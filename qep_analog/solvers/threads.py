"""Keep BLAS to one thread while the compiled solvers run their own threads.

OpenBLAS threads spin for a while after each call; next to the solvers' own threads on a small
machine they take the cores the solvers need (measured: a training step of the phase sensor went
from 31 ms to 91 ms on 2 cores). Functions that run solves are wrapped in
:func:`single_blas_thread`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

F = TypeVar("F", bound=Callable[..., Any])
_controller: ThreadpoolController | None = None


def _blas() -> ThreadpoolController:
    global _controller
    if _controller is None:
        # Load SciPy's own OpenBLAS too (the compiled solvers call LAPACK through it), so that the
        # controller sees and limits both copies.
        import scipy.linalg.cython_lapack  # noqa: F401

        _controller = ThreadpoolController()
    return _controller


def single_blas_thread(function: F) -> F:
    """Decorator: run ``function`` with BLAS limited to one thread (restored afterwards)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _blas().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
