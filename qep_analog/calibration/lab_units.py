"""The units a calibration run is shown in: those its runcard and its device profile were written in.

Routines compute in internal units (µs, rad/µs) and store them so; what people read (the summary,
the report, its plots) uses, per quantity, the unit suffix the run's own files chose
(``detuning_MHz``: MHz, ``stop_ms``: ms; angular frequencies shown as f = ω/2π):

- a step's sweep: the unit of the step's ``start``/``stop`` parameters, else of the step's
  parameters of that dimension, else the runcard's first of that dimension, else the profile's;
- a calibrated field (a device quantity): the unit the profile writes that field in
  (``dephasing_time_ms``; per-site offsets: their own key, else ``detuning_offset``'s), else the
  profile's unit of that dimension — whatever the step's parameters are written in, so that the
  summary, ``calibrate report`` and ``calibrate history`` show a field in one unit
  (:func:`profile_units`);
- nothing written of that dimension: the internal unit.

A step's choice is kept in ``run.json`` (``steps[k].units``: quantity → suffix), so a report of the
run shows the same units without the runcard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from qep_analog.calibration.records import FIELDS
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import StorageError
from qep_analog.storage import read_yaml
from qep_analog.units import SUFFIXES, dimension_of, from_internal, split_key, suffix_label

#: the keys a profile writes a calibrated field under, where they differ from the field's name (the
#: per-site offsets follow the device-wide offset when the file writes only that one)
PROFILE_KEYS = {
    "radial_frequency": ("radial_frequencies",),
    "site_detuning_offsets": ("site_detuning_offsets", "detuning_offset"),
}
#: the quantity of a step's sweep in ``units``
SWEEP = "sweep"
#: the parameters that bound a sweep
BOUNDS = ("start", "stop")


def written_keys(document: Any) -> list[str]:
    """Every key of a parsed YAML document, nested sections included, in the file's order."""
    if isinstance(document, Mapping):
        keys: list[str] = []
        for key, value in document.items():
            keys.append(str(key))
            keys.extend(written_keys(value))
        return keys
    if isinstance(document, list):
        return [key for item in document for key in written_keys(item)]
    return []


def profile_keys(profile: DeviceProfile) -> list[str]:
    """The keys of the file ``profile`` was read from (none when it was not read from a file)."""
    path = Path(profile.source)
    if not path.is_file():
        return []
    try:
        return written_keys(read_yaml(path, StorageError))
    except StorageError:
        return []


def _suffixes(keys: Iterable[str], dimension: str, quantities: tuple[str, ...] = ()) -> list[str]:
    """The suffixes of ``dimension`` in ``keys`` (of ``quantities`` only, when given), in order."""
    out = []
    for key in keys:
        split = split_key(key)
        if split is not None and split[1] == dimension and (not quantities or split[0] in quantities):
            out.append(split[2])
    return out


def step_units(
    step_keys: Iterable[str],
    runcard_keys: Iterable[str],
    profile_keys: Iterable[str],
    sweep_unit: str,
    fields: Iterable[str],
) -> dict[str, str]:
    """The display suffix of a step's sweep (``"sweep"``) and of each field it estimated, by the
    rules of the module doc; quantities without a dimension are left out."""
    step, runcard, profile = list(step_keys), list(runcard_keys), list(profile_keys)
    units: dict[str, str] = {}
    dimension = dimension_of(sweep_unit)
    if dimension in SUFFIXES:
        candidates = (
            _suffixes(step, dimension, BOUNDS)
            + _suffixes(step, dimension)
            + _suffixes(runcard, dimension)
            + _suffixes(profile, dimension)
        )
        units[SWEEP] = (candidates or [_internal_suffix(dimension)])[0]
    for field in fields:
        dimension = dimension_of(FIELDS[field].unit)
        if dimension not in SUFFIXES:
            continue
        candidates = _suffixes(profile, dimension, PROFILE_KEYS.get(field, (field,))) + _suffixes(
            profile, dimension
        )
        units[field] = (candidates or [_internal_suffix(dimension)])[0]
    return units


def _internal_suffix(dimension: str) -> str:
    return next(suffix for suffix, factor in SUFFIXES[dimension].items() if factor == 1.0)


def shown_in(value: float | None, unit: str, suffix: str | None) -> float | None:
    """``value`` (internal ``unit``) in the unit of ``suffix`` (None: as it is)."""
    if value is None or suffix is None:
        return value
    return from_internal(value, dimension_of(unit), suffix)


def unit_label(unit: str, suffix: str | None) -> str:
    """The unit people read: ``suffix``'s, or the internal ``unit`` when there is none."""
    return unit if suffix is None else suffix_label(suffix)


def axis_label(name: str, unit: str, suffix: str | None) -> str:
    """A plot axis of quantity ``name`` (internal ``unit``) shown in ``suffix``'s unit: ``delay (µs)``,
    cyclic frequencies as ``detuning/2π (MHz)``, ``name`` alone without a unit."""
    shown = unit_label(unit, suffix)
    if not shown:
        return name
    cyclic = suffix is not None and dimension_of(unit) == "angular_frequency" and suffix != "rad_per_us"
    return f"{name}/2π ({shown})" if cyclic else f"{name} ({shown})"


def profile_units(profile: DeviceProfile, fields: Iterable[str]) -> dict[str, str]:
    """The display suffix of each of ``fields`` as ``profile``'s file writes it (else the profile's
    unit of its dimension; quantities without a dimension are left out)."""
    return step_units([], [], profile_keys(profile), "", fields)
