"""The declarative schema: what each Field kind accepts and refuses, and every format reading through it."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from qep_analog.calibration.runcard import load_runcard
from qep_analog.devices.profile import read_profile
from qep_analog.errors import (
    CalibrationError,
    ConfigError,
    MeasurementError,
    ModelFileError,
    ProfileError,
)
from qep_analog.measurement.counts_file import read_counts_run
from qep_analog.model.model_file import load_model
from qep_analog.qep.trainer import TrainingConfig
from qep_analog.schema import OMIT, Field, optional, parse_section, parse_value
from qep_analog.sequences.recipes import load_recipe
from qep_analog.tasks.experiment import load_experiment
from qep_analog.tasks.explore_config import load_explore_config

ROOT = Path(__file__).resolve().parents[1]


class Refused(ValueError):
    """The error class the tests hand to the parser."""


def parse(value: Any, field: Field) -> Any:
    return parse_value(value, field, "file.yaml", Refused)


def refused(value: Any, field: Field) -> str:
    with pytest.raises(Refused) as info:
        parse(value, field)
    message = str(info.value)
    assert "\n" not in message and message.startswith("file.yaml: ")
    return message


# -- each kind accepts what it should ------------------------------------------------------------------

ACCEPTED = [
    (Field("x"), 2, 2.0),
    (Field("x"), -0.5, -0.5),
    (Field("x", low=0.0, high=1.0), 1.0, 1.0),
    (Field("n", "integer", low=1), 3, 3),
    (Field("on", "flag"), False, False),
    (Field("s", "text", choices=("a", "b")), "b", "b"),
    (Field("v", "any"), {"free": [1]}, {"free": [1]}),
    (Field("xs", "numbers", low=0.0), [0, 1.5], [0.0, 1.5]),
    (Field("ns", "integers", distinct=True), (3, 1), [3, 1]),
    (Field("ts", "texts"), ["a", "b"], ["a", "b"]),
    (Field("rs", "rows", length=2), [[1, 2], [3, 4.5]], [[1.0, 2.0], [3.0, 4.5]]),
    (Field("p", "pair"), [2, 1], [2.0, 1.0]),
    (Field("r", "range"), (-1, 1), [-1.0, 1.0]),
    (Field("l", "list", value=Field("n", "integer")), [1, 2], [1, 2]),
    (Field("t", "tuple", fields=(Field("c"), Field("op", "text"))), [1, "X0"], [1.0, "X0"]),
    (Field("m", "mapping", value=Field("v")), {"a": 1, "b.c-d": 2.5}, {"a": 1.0, "b.c-d": 2.5}),
    (Field("m", "mapping", value=Field("v"), choices=("g",)), {"g": 0}, {"g": 0.0}),
    (
        Field("s", "section", fields=(Field("a"), Field("b", required=False))),
        {"a": 1},
        {"a": 1.0, "b": None},
    ),
    (Field("x", nullable=True), None, None),
    (Field("r", "range", nullable=True), None, None),
]


@pytest.mark.parametrize(("field", "value", "parsed"), ACCEPTED)
def test_each_kind_accepts(field: Field, value: Any, parsed: Any) -> None:
    assert parse(value, field) == parsed
    assert type(parse(value, field)) is type(parsed)


def test_unit_suffixes_convert_to_internal_units() -> None:
    fields = (Field("rabi", dimension="angular_frequency"), Field("t", dimension="time"))
    values = parse_section({"rabi_MHz": 1.0, "t_ns": 500}, fields, "f", Refused)
    assert values == pytest.approx({"rabi": 2 * math.pi, "t": 0.5})
    assert parse_section({"rabi_rad_per_us": 3, "t_us": 2}, fields, "f", Refused) == {"rabi": 3.0, "t": 2.0}


def test_absent_keys_take_the_default_or_are_left_out() -> None:
    fields = (Field("a", required=False, default=0.5), Field("b", required=False), Field("c", default=OMIT))
    assert parse_section({}, optional(fields[2:]), "f", Refused) == {}
    assert parse_section({"c": 1}, fields, "f", Refused) == {"a": 0.5, "b": None, "c": 1.0}


# -- and refuses the rest, naming the key, the value and the rule ------------------------------------------

REFUSED = [
    (Field("x"), True, "x = True is not a number"),
    (Field("x"), False, "x = False is not a number"),
    (Field("n", "integer"), True, "n = True is not an integer"),
    (Field("n", "integer"), 2.0, "n = 2.0 is not an integer"),
    (Field("x"), math.nan, "x = nan is not finite"),
    (Field("x"), math.inf, "x = inf is not finite"),
    (Field("x"), -math.inf, "x = -inf is not finite"),
    (Field("x"), 10**400, "is not finite"),
    (Field("x"), "1.0", "x = '1.0' is not a number"),
    (Field("x"), None, "x = None is not a number"),
    (Field("x", low=0.0, open_low=True), 0, "x = 0 breaks the rule x > 0"),
    (Field("x", low=0.0, high=0.5, open_high=True), 0.5, "x = 0.5 breaks the rule x >= 0 and < 0.5"),
    (Field("n", "integer", low=1), 0, "n = 0 breaks the rule n >= 1"),
    (Field("on", "flag"), 1, "on = 1 is not true or false"),
    (Field("on", "flag"), 0, "on = 0 is not true or false"),
    (Field("on", "flag"), "yes", "on = 'yes' is not true or false"),
    (Field("on", "flag"), "true", "on = 'true' is not true or false"),
    (Field("s", "text"), "", "s = '' is not a non-empty text"),
    (Field("s", "text"), 3, "s = 3 is not a non-empty text"),
    (Field("s", "text", choices=("a", "b")), "c", "s = 'c' is not one of a, b"),
    (Field("xs", "numbers"), 5, "xs = 5 is not a list of numbers"),
    (Field("xs", "numbers"), [1, True], "xs[1] = True is not a number"),
    (Field("xs", "numbers"), [1, math.nan], "xs[1] = nan is not finite"),
    (Field("xs", "numbers", low=0.0), [1, -1], "xs[1] = -1 breaks the rule xs[1] >= 0"),
    (Field("xs", "numbers", min_length=1), [], "xs = [] is empty"),
    (Field("ns", "integers"), [1, 2.5], "ns[1] = 2.5 is not an integer"),
    (Field("ns", "integers", distinct=True), [1, 1], "ns = [1, 1] lists an item twice"),
    (Field("ns", "integers", length=2), [1, 2, 3], "ns = [1, 2, 3] is not a list of 2 items"),
    (Field("ts", "texts"), "a", "ts = 'a' is not a list of texts"),
    (Field("ts", "texts"), ["a", 1], "ts[1] = 1 is not a non-empty text"),
    (Field("rs", "rows"), [1, 2], "rs[0] = 1 is not a list of numbers"),
    (Field("rs", "rows", length=2), [[1, 2, 3]], "rs[0] = [1, 2, 3] is not a list of 2 items"),
    (Field("p", "pair"), [1, 2, 3], "p = [1, 2, 3] is not a pair of numbers"),
    (Field("r", "range"), [2, 1], "r = [2, 1] is not a range [low, high] with low < high"),
    (Field("r", "range"), [1, 1], "r = [1, 1] is not a range"),
    (Field("r", "range"), None, "r = None is not a range"),
    (Field("t", "tuple", fields=(Field("c"), Field("op", "text"))), [1], "t = [1] is not a list [c, op]"),
    (
        Field("t", "tuple", fields=(Field("c"), Field("op", "text"))),
        [False, "X"],
        "t.c = False is not a number",
    ),
    (Field("l", "list", value=Field("n", "integer")), {"a": 1}, "l = {'a': 1} is not a list"),
    (Field("m", "mapping", value=Field("v")), [1], "m = [1] is not a mapping"),
    (Field("m", "mapping", value=Field("v")), {"a": True}, "m.a = True is not a number"),
    (Field("m", "mapping", value=Field("v")), {"9a": 1}, "m: name '9a' is not an identifier"),
    (Field("m", "mapping", value=Field("v")), {3: 1}, "m: name 3 is not an identifier"),
    (Field("m", "mapping", value=Field("v"), choices=("g",)), {"h": 1}, "m: unknown name 'h' (valid: g)"),
    (Field("m", "mapping", value=Field("v"), min_length=1), None, "m = None is empty"),
    (Field("s", "section", fields=(Field("a"),)), 5, "s: expected a mapping, got int"),
    (Field("s", "section", fields=(Field("a", "flag"),)), {"a": 0}, "s.a = 0 is not true or false"),
]


@pytest.mark.parametrize(("field", "value", "fragment"), REFUSED)
def test_each_kind_refuses(field: Field, value: Any, fragment: str) -> None:
    assert fragment in refused(value, field)


def test_unknown_keys_list_the_valid_ones() -> None:
    fields = (Field("rabi", dimension="angular_frequency"), Field("n", "integer"))
    with pytest.raises(
        Refused, match=r"^f: unknown key 'rabbi_MHz' \(valid: n, rabi_MHz, rabi_kHz, rabi_rad"
    ):
        parse_section({"rabbi_MHz": 1.0, "n": 1}, fields, "f", Refused)
    section = Field("s", "section", fields=fields)
    with pytest.raises(Refused, match=r"^f: top\.s: unknown key 'x' \(valid: n, rabi_MHz"):
        parse_section({"top": {"s": {"x": 1}}}, (Field("top", "section", fields=(section,)),), "f", Refused)


def test_duplicate_unit_spellings_and_missing_keys() -> None:
    fields = (Field("t", dimension="time"),)
    with pytest.raises(Refused, match=r"^f: t is given twice \(t_us and t_ns\)$"):
        parse_section({"t_us": 1.0, "t_ns": 1.0}, fields, "f", Refused)
    with pytest.raises(Refused, match=r"^f: missing key t_us or t_ns or t_ms or t_s or t_h$"):
        parse_section({}, fields, "f", Refused)
    with pytest.raises(Refused, match=r"^f: missing key s\.a$"):
        parse_section({"s": {}}, (Field("s", "section", fields=(Field("a"),)),), "f", Refused)


def test_the_caller_chooses_the_error_class() -> None:
    for error in (ProfileError, ConfigError, CalibrationError, MeasurementError, ModelFileError):
        with pytest.raises(error):
            parse_value("x", Field("x"), "f", error)


# -- configuration classes check their attributes with the same rules --------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"check_gap": 1}, "training: check_gap = 1 is not true or false"),
        ({"mitigate_readout": "yes"}, "training: mitigate_readout = 'yes' is not true or false"),
        ({"seed": True}, "training: seed = True is not an integer"),
        ({"temperature": math.inf}, "training: temperature = inf is not finite"),
        ({"bounds": (0, math.nan)}, "training: bounds[1] = nan is not finite"),
        ({"learning_rate": False}, "training: learning_rate = False is not a number"),
    ],
)
def test_training_config_rules(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainingConfig(**kwargs)
    assert str(info.value).startswith(message)


# -- every format refuses a bad value in one line of its own error class, naming the key ----------

#: each shipped file: how it is read and the error class it raises
LOADERS: dict[str, tuple[Callable[[Path], Any], type[Exception]]] = {
    "examples/phase_sensor.yaml": (load_experiment, ConfigError),
    "examples/explore_phase.yaml": (load_explore_config, ConfigError),
    "examples/models/rydberg_chain.yaml": (load_model, ModelFileError),
    "calibration/rydberg-basic.yaml": (load_runcard, CalibrationError),
    "examples/counts_example/run.json": (read_counts_run, MeasurementError),
    "devices/fresnel-like.yaml": (read_profile, ProfileError),
    "sequences/rydberg-smooth.yaml": (load_recipe, ConfigError),
}
#: (file, keys to the mutated value, the bad value, what the message must say)
FORMATS = [
    ("examples/phase_sensor.yaml", ("training", "check_gap"), 1, "check_gap = 1"),
    ("examples/phase_sensor.yaml", ("training", "beta"), True, "beta = True"),
    ("examples/phase_sensor.yaml", ("model", "sites"), [0, 1.5], "sites[1] = 1.5"),
    ("examples/phase_sensor.yaml", ("evaluation", "every"), 0, "every = 0"),
    ("examples/explore_phase.yaml", ("nudge",), math.nan, "nudge = nan"),
    ("examples/explore_phase.yaml", ("diagram", "points"), [73, 1], "points[1] = 1"),
    ("examples/explore_phase.yaml", ("starts", 0), [0.1, "x"], "starts[0].theta_zz = 'x'"),
    ("examples/models/rydberg_chain.yaml", ("n_qubits",), True, "n_qubits = True"),
    ("examples/models/rydberg_chain.yaml", ("outputs", "m", 0, 0), math.inf, "m[0].coefficient = inf"),
    ("calibration/rydberg-basic.yaml", ("update",), "never", "update = 'never'"),
    ("calibration/rydberg-basic.yaml", ("targets",), [0, -1], "targets[1] = -1"),
    ("examples/counts_example/run.json", ("beta",), -0.05, "beta = -0.05"),
    ("examples/counts_example/run.json", ("readout", "mitigate"), 1, "mitigate = 1"),
    ("examples/counts_example/run.json", ("theta", "a"), False, "theta.a = False"),
    ("devices/fresnel-like.yaml", ("capabilities", "max_atoms"), True, "max_atoms = True"),
    ("devices/fresnel-like.yaml", ("noise", "readout_false_positive"), 0.5, "readout_false_positive = 0.5"),
    ("sequences/rydberg-smooth.yaml", ("segments",), 0, "segments = 0"),
    ("sequences/rydberg-smooth.yaml", ("duration_us",), "4", "duration_us = '4'"),
]


@pytest.mark.parametrize(("source", "keys", "value", "fragment"), FORMATS, ids=[f[3] for f in FORMATS])
def test_formats_refuse_a_bad_value(
    tmp_path: Path, source: str, keys: tuple[Any, ...], value: Any, fragment: str
) -> None:
    load, error = LOADERS[source]
    original = ROOT / source
    is_json = original.suffix == ".json"
    text = original.read_text(encoding="utf-8")
    document = json.loads(text) if is_json else yaml.safe_load(text)
    load(original)  # the shipped file is fine
    changed = copy.deepcopy(document)
    parent = changed
    for key in keys[:-1]:
        parent = parent[key]
    parent[keys[-1]] = value
    path = tmp_path / original.name
    path.write_text(json.dumps(changed) if is_json else yaml.safe_dump(changed), encoding="utf-8")
    with pytest.raises(error) as info:
        load(path)
    message = str(info.value)
    assert type(info.value) is error
    assert "\n" not in message and str(path) in message and fragment in message, message
