"""A small declarative schema for stored profiles: closed sections of typed, unit-suffixed fields.

Parsing never lets another exception through: any value of any type either parses into internal
units or raises :class:`ProfileError` naming the key, the value and the rule it breaks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from qep_analog.devices.units import keys_for
from qep_analog.errors import ProfileError

Kind = Literal["number", "integer", "text", "numbers", "pair", "range", "section"]


@dataclass(frozen=True)
class Field:
    """One quantity of a section: its kind, dimension, allowed interval and whether it is required.

    ``low``/``high`` bound every number (``open_low``/``open_high`` exclude the end point);
    ``choices`` restricts text; ``fields`` describes a nested section.
    """

    name: str
    kind: Kind = "number"
    dimension: str = "dimensionless"
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    required: bool = True
    choices: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()
    help: str = ""

    def rule(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high:g}")
        return " and ".join(parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any, field: Field, key: str, where: str, factor: float) -> float:
    if not _is_number(value):
        raise ProfileError(f"{where}: {key} = {value!r} is not a number")
    if field.kind == "integer" and not isinstance(value, int):
        raise ProfileError(f"{where}: {key} = {value!r} is not an integer")
    number = float(value)
    if not math.isfinite(number):
        raise ProfileError(f"{where}: {key} = {value!r} is not finite")
    too_low = field.low is not None and (number <= field.low if field.open_low else number < field.low)
    too_high = field.high is not None and (number >= field.high if field.open_high else number > field.high)
    if too_low or too_high:
        raise ProfileError(f"{where}: {key} = {value!r} breaks the rule {key} {field.rule()}")
    return number * factor


def _value(value: Any, field: Field, key: str, where: str, factor: float) -> Any:
    if field.kind in ("number", "integer"):
        number = _number(value, field, key, where, factor)
        return int(value) if field.kind == "integer" else number
    if field.kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise ProfileError(f"{where}: {key} = {value!r} is not a non-empty text")
        if field.choices and value not in field.choices:
            raise ProfileError(f"{where}: {key} = {value!r} is not one of {', '.join(field.choices)}")
        return value
    if field.kind == "section":
        return parse_section(value, field.fields, f"{where}.{key}")
    if not isinstance(value, list):
        raise ProfileError(f"{where}: {key} = {value!r} is not a list of numbers")
    numbers = [_number(v, field, f"{key}[{i}]", where, factor) for i, v in enumerate(value)]
    if field.kind == "pair" and len(numbers) != 2:
        raise ProfileError(f"{where}: {key} = {value!r} is not a pair of numbers")
    if field.kind == "range":
        if len(numbers) != 2 or not numbers[0] < numbers[1]:
            raise ProfileError(f"{where}: {key} = {value!r} is not a range [low, high] with low < high")
    return numbers


def parse_section(data: Any, fields: Sequence[Field], where: str) -> dict[str, Any]:
    """Parse a mapping against ``fields``; values come back in internal units under field names."""
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a mapping, got {type(data).__name__}")
    accepted: dict[str, tuple[Field, float]] = {}
    for field in fields:
        for key, factor in keys_for(field.name, field.dimension).items():
            accepted[key] = (field, factor)
    unknown = sorted((k for k in data if k not in accepted), key=str)
    if unknown:
        valid = ", ".join(sorted(accepted))
        raise ProfileError(f"{where}: unknown key {unknown[0]!r} (valid: {valid})")
    out: dict[str, Any] = {}
    for field in fields:
        given = [k for k in keys_for(field.name, field.dimension) if k in data]
        if len(given) > 1:
            raise ProfileError(f"{where}: {field.name} is given twice ({' and '.join(given)})")
        if not given:
            if field.required:
                options = " or ".join(keys_for(field.name, field.dimension))
                raise ProfileError(f"{where}: missing key {options}")
            out[field.name] = None
            continue
        key = given[0]
        out[field.name] = _value(data[key], field, key, where, accepted[key][1])
    return out
