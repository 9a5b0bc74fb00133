"""The declarative schema every stored format and every configuration class is validated with.

A format is a tuple of :class:`Field` (kind, unit dimension, bounds, choices, nested fields) and
:func:`parse_section` reads a mapping against it: device profiles, recipes, model files, experiment and
exploration files, runcards and counts files; configuration classes (``TrainingConfig``,
``PhaseSensorTask``, ``MPSOptions``) check their attributes against their ``FIELDS`` with
:func:`check_attributes`, and the file sections that fill them reuse those fields. Dimensional keys
carry a unit suffix (:mod:`qep_analog.units`) and come back in internal units under the field's name.

Parsing never lets another exception through: any value of any type either parses or raises the error
class the caller passes (``ProfileError`` for a profile, ``ConfigError`` for an experiment, ...) in one
line naming the file or section, the key, the value and the rule it breaks.
"""

from __future__ import annotations

import dataclasses
import math
import re
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from qep_analog.units import keys_for

Kind = Literal[
    "number",  # a finite real number (not a boolean), times the unit factor
    "integer",  # an int (not a boolean)
    "flag",  # true or false (not 0/1, not a text)
    "text",  # a non-empty string, one of ``choices`` if given
    "any",  # taken as it is (parsed by the format's own code)
    "numbers",  # a list of numbers, each within the bounds
    "integers",  # a list of integers, each within the bounds
    "texts",  # a list of texts
    "rows",  # a list of lists of numbers (each row of ``length`` numbers if given)
    "pair",  # a list of two numbers
    "range",  # a list [low, high] of two numbers with low < high
    "list",  # a list of items described by ``value``
    "tuple",  # a list whose items are described in order by ``fields``
    "section",  # a mapping with the closed keys ``fields``
    "mapping",  # a mapping of free names (identifiers, or ``choices``) to values described by ``value``
]
_ITEM_KIND: dict[str, Kind] = {
    "numbers": "number",
    "integers": "integer",
    "texts": "text",
    "rows": "numbers",
    "pair": "number",
    "range": "number",
}
_WHAT = {
    "numbers": "a list of numbers",
    "integers": "a list of integers",
    "texts": "a list of texts",
    "rows": "a list of lists of numbers",
    "pair": "a pair of numbers",
    "range": "a range [low, high] with low < high",
    "list": "a list",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")

#: The longest value printed in an error message (characters); longer ones end in "...".
MAX_SHOWN = 120
_SHORT = reprlib.Repr()  # (attributes set one by one: Python 3.11 takes no keywords)
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict, _SHORT.maxset = 3, 6, 6, 4, 6
_SHORT.maxstring = _SHORT.maxother = MAX_SHOWN


def shown(value: Any) -> str:
    """The repr of ``value`` for an error message, at most :data:`MAX_SHOWN` characters whatever its
    size or depth (a file's value may be a huge or aliased structure: its full repr is never built)."""
    text = _SHORT.repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


#: The ``default`` of a field whose key, when absent, is left out of the parsed mapping (so that the
#: class the mapping is passed to keeps its own default).
OMIT: Any = _Omit()


@dataclass(frozen=True)
class Field:
    """One key of a section: its kind, dimension, allowed values and whether it must be given.

    ``low``/``high`` bound every number in internal units (``open_low``/``open_high`` exclude the end
    point; a file's ``max_rabi_MHz`` is compared after its conversion to rad/µs);
    ``choices`` restricts texts (and the names of a mapping); ``nullable`` accepts null (None);
    ``default`` is what an absent optional key parses to (:data:`OMIT`: left out); ``fields`` are the
    keys of a section or the items of a tuple; ``value`` describes the items of a list or the values
    of a mapping; ``length`` is the exact length of a list (of each row of ``rows``), ``min_length``
    the least number of items or entries, ``distinct`` forbids repeated items.
    """

    name: str
    kind: Kind = "number"
    dimension: str = "dimensionless"
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    required: bool = True
    nullable: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()
    value: Field | None = None
    length: int | None = None
    min_length: int = 0
    distinct: bool = False
    help: str = ""

    def rule(self, factor: float = 1.0) -> str:
        """The bounds in words, in the unit whose factor to internal units is ``factor`` (the bounds
        are held in internal units: ``max_rabi_MHz <= 1000`` and ``max_rabi_rad_per_us <= 6283.19``
        state one ceiling)."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self._bound(self.low / factor)}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self._bound(self.high / factor)}")
        return " and ".join(parts)

    def _bound(self, value: float) -> str:
        """A bound as written in a message: an integer field's in full (``< 4294967296``)."""
        return str(int(value)) if self.kind in ("integer", "integers") else f"{value:g}"


#: Seeds are integers in [0, SEED_LIMIT), in files as on the command line (``--seed``): numpy's seeds
#: are non-negative, and 32 bits are portable.
SEED_LIMIT = 2**32


def seed_field(name: str = "seed", **options: Any) -> Field:
    """The rule of a seed read from a file or checked on a configuration: an integer in [0, 2**32)."""
    return Field(name, "integer", low=0, high=SEED_LIMIT, open_high=True, **options)


def check_seed(value: Any, where: str, error: type[Exception]) -> int:
    """``value`` if it is a seed (see :func:`seed_field`), else a one-line ``error`` naming ``where``."""
    return int(parse_value(value, seed_field(), where, error))


def optional(fields: Sequence[Field]) -> tuple[Field, ...]:
    """The fields with every key optional and left out when absent: a file section whose values go to
    a class (``TrainingConfig(**values)``) that keeps its defaults for the keys the file leaves out."""
    return tuple(dataclasses.replace(f, required=False, default=OMIT) for f in fields)


def check_attributes(instance: Any, fields: Sequence[Field], where: str, error: type[Exception]) -> None:
    """Check the attributes of ``instance`` named by ``fields`` against them (a dataclass's
    ``__post_init__``): the same rules, and the same messages, as when they are read from a file."""
    parse_section({f.name: getattr(instance, f.name) for f in fields}, fields, where, error)


def parse_section(
    data: Any, fields: Sequence[Field], where: str, error: type[Exception], path: str = ""
) -> dict[str, Any]:
    """Parse a mapping against ``fields``; values come back in internal units under field names.

    ``where`` names the file or section in messages, ``path`` the keys leading to this section.
    """
    at = f"{where}: {path}" if path else where
    if not isinstance(data, dict):
        raise error(f"{at}: expected a mapping, got {type(data).__name__}")
    accepted: dict[Any, tuple[Field, float]] = {}
    for field in fields:
        for key, factor in keys_for(field.name, field.dimension).items():
            accepted[key] = (field, factor)
    unknown = sorted((k for k in data if k not in accepted), key=str)
    if unknown:
        raise error(f"{at}: unknown key {shown(unknown[0])} (valid: {', '.join(sorted(accepted))})")
    out: dict[str, Any] = {}
    for field in fields:
        given = [k for k in keys_for(field.name, field.dimension) if k in data]
        if len(given) > 1:
            raise error(f"{at}: {field.name} is given twice ({' and '.join(given)})")
        if not given:
            if field.required:
                options = [f"{path}.{k}" if path else k for k in keys_for(field.name, field.dimension)]
                raise error(f"{where}: missing key {' or '.join(options)}")
            if field.default is not OMIT:
                out[field.name] = field.default
            continue
        key = given[0]
        out[field.name] = parse_value(
            data[key], field, where, error, f"{path}.{key}" if path else key, accepted[key][1]
        )
    return out


def parse_value(
    value: Any,
    field: Field,
    where: str,
    error: type[Exception],
    path: str | None = None,
    factor: float = 1.0,
) -> Any:
    """Parse one value against ``field`` (named ``path`` in messages, by default the field's name)."""
    path = field.name if path is None else path
    if value is None and field.nullable:
        return None

    def fail(rule: str) -> Exception:
        return error(f"{where}: {path} = {shown(value)} {rule}")

    kind = field.kind
    if kind == "any":
        return value
    if kind in ("number", "integer"):
        return _number(value, field, fail, path, factor)
    if kind == "flag":
        if not isinstance(value, bool):
            raise fail("is not true or false")
        return value
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise fail("is not a non-empty text")
        if field.choices and value not in field.choices:
            raise fail(f"is not one of {', '.join(field.choices)}")
        return value
    if field.min_length and (value is None or (isinstance(value, list | tuple | dict) and not value)):
        raise fail(f"is empty (at least {field.min_length} needed)")
    if kind == "section":
        return parse_section(value, field.fields, where, error, path)
    if kind == "mapping":
        return _mapping(value, field, where, error, path, fail)
    if not isinstance(value, list | tuple):
        names = ", ".join(f.name for f in field.fields)
        raise fail(f"is not {_WHAT.get(kind, f'a list [{names}]')}")
    if kind == "tuple":
        if len(value) != len(field.fields):
            raise fail(f"is not a list [{', '.join(f.name for f in field.fields)}]")
        pairs = zip(value, field.fields, strict=True)
        return [parse_value(v, f, where, error, f"{path}.{f.name}") for v, f in pairs]
    if len(value) < field.min_length:
        raise fail(f"has fewer than {field.min_length} items")
    if kind == "list":
        assert field.value is not None, f"list field {field.name} needs a value field"
        item = field.value
    else:
        item = dataclasses.replace(field, kind=_ITEM_KIND[kind], nullable=False, min_length=0)
    items = [parse_value(v, item, where, error, f"{path}[{i}]", factor) for i, v in enumerate(value)]
    if kind in ("pair", "range") and len(items) != 2:
        raise fail(f"is not {_WHAT[kind]}")
    if kind == "range" and not items[0] < items[1]:
        raise fail(f"is not {_WHAT[kind]}")
    if kind != "rows" and field.length is not None and len(items) != field.length:
        raise fail(f"is not a list of {field.length} items")
    if field.distinct and len({repr(v) for v in items}) != len(items):
        raise fail("lists an item twice")
    return items


def _number(value: Any, field: Field, fail: Any, path: str, factor: float) -> float | int:
    what = "an integer" if field.kind == "integer" else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"is not {what}")
    if field.kind == "integer" and not isinstance(value, int):
        raise fail("is not an integer")
    try:
        number = float(value)
    except OverflowError:
        raise fail("is not finite") from None
    if not math.isfinite(number):
        raise fail("is not finite")
    if field.kind == "integer":
        factor = 1.0
    scaled = number * factor  # bounds hold in internal units, whatever the key's unit
    too_low = field.low is not None and (scaled <= field.low if field.open_low else scaled < field.low)
    too_high = field.high is not None and (scaled >= field.high if field.open_high else scaled > field.high)
    if too_low or too_high:
        raise fail(f"breaks the rule {path} {field.rule(factor)}")
    if not math.isfinite(scaled):
        raise fail("is not finite in internal units")
    return int(value) if field.kind == "integer" else scaled


def _mapping(
    value: Any, field: Field, where: str, error: type[Exception], path: str, fail: Any
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail("is not a mapping")
    assert field.value is not None, f"mapping field {field.name} needs a value field"
    out: dict[str, Any] = {}
    for name, item in value.items():
        if field.choices and name not in field.choices:
            valid = ", ".join(field.choices) or "none"
            raise error(f"{where}: {path}: unknown name {shown(name)} (valid: {valid})")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise error(
                f"{where}: {path}: name {shown(name)} is not an identifier (letters, digits, _ . -)"
            )
        out[name] = parse_value(item, field.value, where, error, f"{path}.{name}")
    return out
