"""The README stays true: its Python examples run and its model file loads."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from qep_analog.model.model_file import model_from_document

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _python_block(marker: str) -> str:
    """The README's Python example that holds ``marker``."""
    return next(block for block in _blocks("python") if marker in block)


def test_python_example_runs_and_agrees() -> None:
    namespace: dict[str, object] = {}
    exec(_python_block("g_qep"), namespace)
    g_qep = np.asarray(namespace["g_qep"])
    g_exact = np.asarray(namespace["g_exact"])
    assert g_qep.shape == (1, 51)
    assert np.abs(g_qep - g_exact).max() < 1e-4
    assert namespace["check"].max_deviation < 1e-8  # type: ignore[attr-defined]


def test_model_file_example_loads() -> None:
    model = model_from_document(yaml.safe_load(_blocks("yaml")[0]))
    assert model.parameter_names == ["a", "b"]
    assert model.input_names == ["g"] and model.output_names == ["m"]


def test_quick_start_names_existing_files() -> None:
    text = README.read_text(encoding="utf-8")
    for path in re.findall(r"examples/[\w./]+\.yaml", text):
        assert (README.parent / path).is_file(), path


def test_device_example_runs() -> None:
    namespace: dict[str, object] = {}
    exec(_python_block("controls ="), namespace)
    controls = namespace["controls"]
    assert len(controls.positions) == 6  # type: ignore[attr-defined]


def test_ramp_shape_example_runs_and_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    """The bias budget's example: the plain quintic ramp 28 % off at T·Δ_min = 40 on the 6-atom
    chain, the default gap-aware one with quintic ends under 5 % (the printed lines, as the README
    shows them)."""
    block = _python_block("rydberg-gap-quintic")
    exec(block, {})
    printed = capsys.readouterr().out.splitlines()
    shown = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("# rydberg")]
    assert printed == shown


def test_noise_model_example_runs() -> None:
    """The example of the noise channels: the profile's noise through Pulser and back, and a run with
    relaxation and amplitude jitter (seeded) giving the printed ⟨n_0⟩."""
    namespace: dict[str, object] = {}
    exec(_python_block("noise_model_to_pulser"), namespace)
    assert round(namespace["result"].expectations["n0"], 3) == 0.554  # type: ignore[attr-defined]
