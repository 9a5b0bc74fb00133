"""An absurd but finite limit in a profile file is refused, not taken as "no limit": every limit has a
physical ceiling (stated in the field's help), named with the key and the value in one line. The
relaxed variant lifts the limits in code and is not bound by them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from qep_analog.devices.profile import parse_profile, read_profile, section_fields
from qep_analog.errors import ProfileError
from qep_analog.library import builtin_directory
from qep_analog.units import keys_for

DEVICES = builtin_directory("devices")


def document(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((DEVICES / f"{name}.yaml").read_text()))


@pytest.mark.parametrize(
    ("name", "section", "key", "value", "rule"),
    [
        ("fresnel-like", "capabilities", "max_rabi_MHz", 1e308, "max_rabi_MHz > 0 and <= 1000"),
        (
            "fresnel-like",
            "capabilities",
            "max_rabi_rad_per_us",
            1e4,
            "max_rabi_rad_per_us > 0 and <= 6283.19",
        ),
        (
            "fresnel-like",
            "capabilities",
            "max_abs_detuning_MHz",
            1e5,
            "max_abs_detuning_MHz > 0 and <= 10000",
        ),
        ("fresnel-like", "capabilities", "max_duration_us", 1e12, "max_duration_us > 0 and <= 1e+06"),
        ("fresnel-like", "capabilities", "max_atoms", 10**9, "max_atoms >= 1 and <= 10000"),
        ("fresnel-like", "capabilities", "shot_overhead_ms", 1e9, "shot_overhead_ms >= 0 and <= 60000"),
        ("aquila-like", "capabilities", "max_radius_um", 1e7, "max_radius_um > 0 and <= 1e+06"),
        ("aquila-like", "capabilities", "min_spacing_um", 2e6, "min_spacing_um > 0 and <= 1e+06"),
        ("aquila-like", "noise", "dephasing_time_us", 1e300, "dephasing_time_us > 0 and <= 8.64e+10"),
        ("yb171-chain", "capabilities", "max_rabi_MHz", 5e3, "max_rabi_MHz > 0 and <= 1000"),
        (
            "yb171-chain",
            "capabilities",
            "max_stark_shift_kHz",
            1e200,
            "max_stark_shift_kHz > 0 and <= 1e+07",
        ),
        ("yb171-chain", "capabilities", "max_ions", 10**6, "max_ions >= 1 and <= 1000"),
        ("yb171-chain", "capabilities", "beat_note_detuning_MHz", [4.0, 1e300], "<= 10000"),
        (
            "ca40-chain",
            "capabilities",
            "max_global_field_kHz",
            1e308,
            "max_global_field_kHz > 0 and <= 1e+07",
        ),
        ("ca40-chain", "capabilities", "max_duration_ms", 1e4, "max_duration_ms > 0 and <= 1000"),
        ("ca40-chain", "calibration", "max_age_h", 1e9, "max_age_h > 0 and <= 8766"),
    ],
)
def test_a_limit_beyond_its_ceiling_is_refused(
    name: str, section: str, key: str, value: Any, rule: str
) -> None:
    raw = document(name)
    field = next(
        f for f in section_fields(read_profile(name), section) if key in keys_for(f.name, f.dimension)
    )
    raw[section] = {k: v for k, v in raw[section].items() if k not in keys_for(field.name, field.dimension)}
    raw[section][key] = value
    with pytest.raises(ProfileError) as info:
        parse_profile(raw, f"{name}.yaml")
    text = str(info.value)
    assert text.startswith(f"{name}.yaml: ") and key in text and rule in text, text
    assert "\n" not in text


def test_a_limit_at_its_ceiling_is_accepted() -> None:
    raw = document("fresnel-like")
    raw["capabilities"]["max_rabi_MHz"] = 1000.0
    assert parse_profile(raw).rydberg.max_rabi == pytest.approx(2 * math.pi * 1e3)


@pytest.mark.parametrize("name", ["fresnel-like", "aquila-like", "yb171-chain", "ca40-chain"])
def test_shipped_profiles_obey_the_ceilings_and_relax_past_them(name: str, tmp_path: Path) -> None:
    profile = read_profile(name)
    relaxed = read_profile(name, relaxed=True)
    assert relaxed == profile.relaxed() and not relaxed.strict
    assert math.isinf(relaxed.capabilities.max_rabi) and math.isinf(relaxed.capabilities.max_duration)
    assert relaxed.to_document()["capabilities"]["max_rabi_rad_per_us"] is None  # no limit, not a number
    assert relaxed.snapshot_hash != profile.snapshot_hash


def test_every_dimensional_limit_states_its_ceiling() -> None:
    for name in ("fresnel-like", "yb171-chain"):
        profile = read_profile(name)
        for section in ("capabilities", "noise", "calibration"):
            for field in section_fields(profile, section):
                if (
                    field.kind in ("number", "numbers", "pair", "range")
                    and field.dimension != "dimensionless"
                ):
                    assert field.high is not None, (name, section, field.name)
                    if field.dimension in ("angular_frequency", "time", "length"):
                        assert "≤" in field.help, (name, section, field.name)
