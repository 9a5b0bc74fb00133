"""The README's measurement example runs and says what it claims."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from qep_analog.qep.gradients import qep_gradient
from qep_analog.solvers.equilibrium import Equilibrium

README = Path(__file__).resolve().parents[2] / "README.md"


def test_measurement_example_runs_and_agrees() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if "gradient_from_counts(model, plan" in b]
    namespace: dict[str, object] = {}
    exec(block, namespace)
    plan, g = namespace["plan"], namespace["g"]
    assert len(plan.settings) == 9 and plan.settings[0].bases == "ZYZZZZZZZZ"  # type: ignore[attr-defined]
    model = namespace["model"]
    reference = qep_gradient(
        Equilibrium(model),  # type: ignore[arg-type]
        namespace["x"], namespace["theta"], namespace["eps"], 0.2, warn_small_gap=False,  # type: ignore[arg-type]
    )[0]  # fmt: skip
    z = (g.values - reference) / g.standard_errors  # type: ignore[attr-defined]
    assert np.abs(z).max() < 4.5 and 0.8 < z.std() < 1.25
