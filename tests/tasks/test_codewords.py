"""The device-native sensors draw their points from a window by rejection: a window where almost no
point carries a class is refused in a bounded number of rounds, not sampled forever."""

from __future__ import annotations

import time

import pytest

import qep_analog as qa
from qep_analog.errors import ConfigError
from qep_analog.tasks.ion_sensor import IonSensorTask
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask


def test_rydberg_window_beyond_the_phase_diagram_is_refused() -> None:
    """R_b/a up to 2**31: the known diagram ends near 3, so no draw in a million carries a class."""
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"rb_over_a \[1.7, 2147483648.0\]: 0 of 20 points carry a class"):
        RydbergSensorTask(
            profile=qa.read_profile("fresnel-like"), n_chain=3, spacing_um=5.1, rb_over_a=(1.7, 2.0**31),
            phases=("disordered", "Z2"), test_size=20,
        )  # fmt: skip
    assert time.perf_counter() - start < 60  # (a bound, not a timing: it looped forever before)


def test_ion_window_of_unclassified_phases_is_refused() -> None:
    """A window deep in the paramagnet with only the ordered phases classified."""
    with pytest.raises(ConfigError, match=r"field_over_j \[10.0, 20.0\]: 0 of 12 points carry"):
        IonSensorTask(
            profile=qa.read_profile("yb171-chain"), n_chain=4, test_size=12, field_over_j=(10.0, 20.0),
            phases=("ferromagnet", "antiferromagnet"),
        )  # fmt: skip
