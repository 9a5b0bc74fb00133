"""Device profiles: shipped files, units, one-line errors, relaxed variants, and mutation robustness."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulser.devices.interaction_coefficients import c6_dict

from qep_analog.devices.profile import (
    IonCapabilities,
    RydbergCapabilities,
    list_profiles,
    parse_profile,
    read_profile,
)
from qep_analog.errors import ProfileError
from qep_analog.library import builtin_directory

DEVICES_DIR = builtin_directory("devices")

SHIPPED = ("fresnel-like", "aquila-like", "yb171-chain", "ca40-chain")
TWO_PI = 2 * math.pi


def _document(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEVICES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def test_shipped_profiles_load_under_their_file_names() -> None:
    assert set(SHIPPED) <= set(list_profiles())
    for name in SHIPPED:
        profile = read_profile(name)
        assert profile.name == name
        assert profile.strict


def test_fresnel_like_numbers_in_internal_units() -> None:
    caps = read_profile("fresnel-like").rydberg
    assert caps.max_rabi == pytest.approx(TWO_PI * 2.0, rel=1e-15)
    assert caps.max_abs_detuning == pytest.approx(TWO_PI * 10.0, rel=1e-15)
    assert caps.local_detuning is not None and caps.local_detuning.sign == "negative"
    assert caps.local_detuning.max_per_site == pytest.approx(TWO_PI * 10.0, rel=1e-15)
    assert caps.max_duration == pytest.approx(6.0) and caps.clock == pytest.approx(0.004)
    assert (caps.min_spacing, caps.max_atoms, caps.max_radius) == (5.0, 100, 46.0)
    noise = read_profile("fresnel-like").noise
    assert (noise.readout_false_positive, noise.readout_false_negative) == (0.025, 0.10)
    assert noise.dephasing_time == pytest.approx(4.5)


@pytest.mark.parametrize("name", ["fresnel-like", "aquila-like"])
def test_rydberg_c6_agrees_with_pulsers_table(name: str) -> None:
    caps = read_profile(name).rydberg
    assert caps.c6 == pytest.approx(c6_dict[caps.rydberg_level], rel=1e-6)


def test_ion_profiles_convert_cyclic_frequencies() -> None:
    caps = read_profile("yb171-chain").ions
    assert caps.axial_frequency == pytest.approx(TWO_PI * 0.3, rel=1e-15)
    assert caps.max_stark_shift == pytest.approx(TWO_PI * 40e-3, rel=1e-15)
    assert caps.max_duration == pytest.approx(10_000.0)  # 10 ms in µs
    assert isinstance(read_profile("ca40-chain").capabilities, IonCapabilities)


def test_relaxed_variant_lifts_control_limits_and_keeps_physics() -> None:
    strict = read_profile("fresnel-like")
    relaxed = read_profile("fresnel-like", relaxed=True)
    assert not relaxed.strict and relaxed.label == "fresnel-like (relaxed)"
    caps = relaxed.rydberg
    assert math.isinf(caps.max_rabi) and math.isinf(caps.max_duration)
    assert caps.c6 == strict.rydberg.c6 and caps.min_spacing == strict.rydberg.min_spacing
    assert relaxed.noise == strict.noise
    assert relaxed.to_document()["capabilities"]["max_rabi_rad_per_us"] is None


def test_load_by_path_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text((DEVICES_DIR / "fresnel-like.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert isinstance(read_profile(path).capabilities, RydbergCapabilities)
    with pytest.raises(ProfileError, match=r"device 'no-such-device': not a known name \(known: .*fresnel"):
        read_profile("no-such-device")


def _broken(mutate: Any) -> str:
    document = _document("fresnel-like")
    mutate(document)
    with pytest.raises(ProfileError) as info:
        parse_profile(document, "test.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_errors_name_the_key_value_and_rule() -> None:
    message = _broken(lambda d: d["capabilities"].update(max_rabi_MHz=-1.0))
    assert "max_rabi_MHz = -1.0" in message and "> 0" in message
    message = _broken(lambda d: d["capabilities"].update(max_rabi_rad_per_us=12.0))
    assert "given twice" in message
    message = _broken(lambda d: d["capabilities"].update(max_rabbi_MHz=1.0))
    assert "unknown key 'max_rabbi_MHz'" in message
    message = _broken(lambda d: d["capabilities"].pop("c6_rad_per_us_um6"))
    assert "missing key c6_rad_per_us_um6" in message
    message = _broken(lambda d: d["noise"].update(readout_false_positive=0.7))
    assert "readout_false_positive = 0.7" in message and "< 0.5" in message
    message = _broken(lambda d: d["capabilities"].update(max_atoms=10.5))
    assert "not an integer" in message
    message = _broken(lambda d: d.update(schema="qep-device/0"))
    assert "expected 'qep-device/1'" in message
    message = _broken(lambda d: d["capabilities"]["local_detuning"].update(sign="both"))
    assert "'both' is not one of negative, positive, any" in message


def test_ion_radial_frequencies_must_exceed_axial() -> None:
    document = _document("yb171-chain")
    document["capabilities"]["radial_frequencies_MHz"] = [0.2, 4.0]
    with pytest.raises(ProfileError, match="must exceed the axial frequency"):
        parse_profile(document, "test.yaml")


# ---- property-based: any mutation of a valid profile loads or raises ProfileError --------------

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _mutated(name: str, choice: int, action: int, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(_document(name))
    paths = _paths(document)
    path = paths[choice % len(paths)]
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == 0 and isinstance(parent, dict):
        del parent[last]
    elif action == 1 and isinstance(parent, dict):
        parent[f"extra_{last}"] = value
    else:
        parent[last] = value
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(SHIPPED),
    choice=st.integers(min_value=0, max_value=10_000),
    action=st.integers(min_value=0, max_value=2),
    value=_VALUES,
)
def test_any_mutation_loads_or_raises_profile_error(
    name: str, choice: int, action: int, value: Any
) -> None:
    document = _mutated(name, choice, action, value)
    try:
        profile = parse_profile(document, "mutated.yaml")
    except ProfileError as exc:
        assert "\n" not in str(exc)
    else:
        assert profile.name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(SHIPPED),
    position=st.integers(min_value=0, max_value=10_000),
    text=st.text(max_size=3),
    delete=st.integers(min_value=0, max_value=3),
)
def test_any_text_edit_loads_or_raises_profile_error(
    tmp_path_factory: pytest.TempPathFactory, name: str, position: int, text: str, delete: int
) -> None:
    original = (DEVICES_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    at = position % (len(original) + 1)
    edited = original[:at] + text + original[at + delete :]
    path = tmp_path_factory.mktemp("edit") / "edited.yaml"
    path.write_text(edited, encoding="utf-8")
    try:
        profile = read_profile(path)
    except ProfileError as exc:
        assert "\n" not in str(exc)
    else:
        assert np.isfinite(profile.version)
