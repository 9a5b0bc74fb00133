"""What every PNG the package draws shares: a non-interactive Matplotlib backend and an atomic write.

The rooms draw their own figures (training curves and phase diagrams in ``tasks``, schedules in
``sequences``, calibration runs in ``calibration``) and save them with :func:`save_figure`, so a
killed run never leaves half a PNG behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from qep_analog.storage import temporary_sibling

__all__ = ["plt", "save_figure"]


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> None:
    """Write the figure as PNG atomically (temporary file, then rename) and close it."""
    target = Path(path)
    fig.tight_layout()
    tmp = temporary_sibling(target, suffix=".png")
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(fig)
