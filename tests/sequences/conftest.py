"""Shared pieces for the sequence and emulation tests: a small Rydberg chain model on a relaxed Fresnel."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from qep_analog.devices.profile import DeviceProfile, read_profile
from qep_analog.model.model_file import load_model
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.recipes import Recipe, load_recipe

ROOT = Path(__file__).resolve().parents[2]
THETA = np.array([4.0, 3.0, 0.5, 1.5])  # h, delta, s, J: a gapped chain (gap ≈ 3 rad/µs on the path)


@pytest.fixture
def chain_model() -> QEPModel:
    return load_model(ROOT / "examples" / "models" / "rydberg_chain.yaml")


@pytest.fixture
def relaxed_fresnel() -> DeviceProfile:
    return read_profile("fresnel-like", relaxed=True)


def smooth(duration: float, segments: int = 200, initial_detuning: float = -12.6) -> Recipe:
    return dataclasses.replace(
        load_recipe("rydberg-smooth"),
        duration=duration,
        segments=segments,
        initial_detuning=initial_detuning,
    )
