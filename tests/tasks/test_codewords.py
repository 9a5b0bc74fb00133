"""The device-native sensors draw their points from a window by rejection: a window where almost no
point carries a class is refused in a bounded number of rounds, not sampled forever."""

from __future__ import annotations

import time
import warnings

import pytest

import qep_analog as qa
from qep_analog.errors import ConfigError
from qep_analog.tasks.ion_sensor import IonSensorTask
from qep_analog.tasks.rydberg_sensor import RydbergSensorTask


def test_rydberg_window_beyond_the_phase_diagram_is_refused() -> None:
    """R_b/a from 5 to 1000: the known diagram ends near 3, so no draw carries a class."""
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"rb_over_a \[5.0, 1000.0\]: 0 of 20 points carry a class"):
        RydbergSensorTask(
            profile=qa.read_profile("fresnel-like"), n_chain=3, spacing_um=5.1, rb_over_a=(5.0, 1000.0),
            phases=("disordered", "Z2"), test_size=20,
        )  # fmt: skip
    assert time.perf_counter() - start < 60  # (a bound, not a timing: it looped forever before)


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [("rb_over_a", (0.0, 2.0), r"rb_over_a\[0\] = 0.0 breaks the rule rb_over_a\[0\] >= 0.001 and <= 1000"),
     ("rb_over_a", (1.7, 2.0**31), r"rb_over_a\[1\] = 2147483648.0 breaks the rule"),
     ("spacing_um", 1e308, "breaks the rule spacing_um > 0 and <= 1e\\+06"),
     ("delta_over_omega", (-1.0, 1e300), r"delta_over_omega\[1\] = 1e\+300 breaks the rule")],
)  # fmt: skip
def test_rydberg_window_at_the_edges_is_refused(key: str, value: object, rule: str) -> None:
    """R_b/a = 0 was an infinite drive (a divide-by-zero warning on the way to the error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match=rule):
            RydbergSensorTask(
                profile=qa.read_profile("fresnel-like"), n_chain=3, test_size=5, **{key: value}
            )


def test_ion_window_of_unclassified_phases_is_refused() -> None:
    """A window deep in the paramagnet with only the ordered phases classified."""
    with pytest.raises(ConfigError, match=r"field_over_j \[10.0, 20.0\]: 0 of 12 points carry"):
        IonSensorTask(
            profile=qa.read_profile("yb171-chain"), n_chain=4, test_size=12, field_over_j=(10.0, 20.0),
            phases=("ferromagnet", "antiferromagnet"),
        )  # fmt: skip


@pytest.mark.parametrize("key", ["detuning_below_kHz", "detuning_above_kHz"])
def test_ion_beat_note_on_a_mode_is_refused_without_a_warning(key: str) -> None:
    """A beat note 5e-324 kHz from the COM mode: the resonance error, not a divide-by-zero first."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match="the couplings diverge on resonance"):
            IonSensorTask(profile=qa.read_profile("yb171-chain"), n_chain=4, test_size=12, **{key: 5e-324})
