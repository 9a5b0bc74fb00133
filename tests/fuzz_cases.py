"""The cases of the fuzz harness (tests/test_fuzz.py): mutations of every shipped file, one per case.

A case is named ``CLASS-TARGET-INDEX`` (``numbers-model.ion_chain-0003``) and everything in it comes
from that name: a NumPy generator seeded with :data:`SEED` and the name writes the same files and runs
the same command every time, so ``pytest tests/test_fuzz.py -m "slow or not slow" -k NAME`` repeats
one case exactly.

A *target* is one shipped file (or one generated like it: schedule files, a calibration history) and
the commands that read it in full; a *class* is one kind of damage:

- ``structure``: malformed YAML and JSON: truncation, flipped bytes, deleted, duplicated and swapped
  lines, broken indentation, keys deleted, added, renamed and duplicated, extra documents;
- ``types``: a value swapped for one of another type (text, number, list, mapping, null, boolean);
- ``numbers``: NaN, ±inf, 1e308, 1e400, -0.0, 1e-320, 10**30, negatives, raw number tokens;
- ``tags``: ``!!python/object/apply`` (which would run a command) and other tags;
- ``aliases``: billion-laughs anchors and recursive aliases inside a value;
- ``nesting``: brackets and mappings nested around the limit and far beyond it;
- ``qubits``: qubit, atom and ion indices out of range (operators, sites, targets, bitstrings);
- ``sizes``: sizes that would exhaust memory (qubits, grids, points, segments, shots), run for real;
- ``special``: empty files, binary junk, non-UTF-8, directories, symbolic links, oversized (sparse)
  files, FIFOs and devices.

Valid files reach the expensive stage of their command (training, exploration, calibration); in
``stopped`` runs that stage is replaced by :class:`Stopped`, which counts as success: the harness is
about reading files, not about training. ``sizes`` cases run the real command (in a subprocess).
"""

from __future__ import annotations

import copy
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: the seed of every case's generator (with the case's name)
SEED = 20_160_116
ROOT = Path(__file__).resolve().parent.parent
#: the marker a slot of a rendered document carries until a raw YAML/JSON snippet replaces it
SLOT = "FUZZSLOT"
#: the limits of the readers (qep_analog.storage), around which the nesting cases are placed
MAX_DEPTH = 100
MAX_FILE_BYTES = 64 * 2**20


# -- targets ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One file and the commands that read it in full (``{file}``: its path; ``{root}``: the
    checkout); the case's index picks the command."""

    name: str
    kind: str
    source: str  # path in the checkout, or "generated:NAME"
    file_name: str
    commands: tuple[tuple[str, ...], ...]
    #: files of the checkout copied into the work folder (relative paths kept): a file's references
    extras: tuple[str, ...] = ()

    @property
    def fmt(self) -> str:
        """``json``, ``jsonl`` (one JSON document a line: a calibration history) or ``yaml``."""
        suffix = Path(self.file_name).suffix
        return suffix[1:] if suffix in (".json", ".jsonl") else "yaml"


MODELS = "{root}/examples/models"
RYDBERG_THETA = ("--theta", "h=1", "delta=0.1", "s=0.2", "J=1")
ION_THETA = ("--theta", "b=0.001", "c=0.0005")
RYDBERG_BUILD = (
    "sequence",
    "build",
    "rydberg-linear",
    "--model",
    f"{MODELS}/rydberg_chain.yaml",
    *RYDBERG_THETA,
    "--out",
    "out/schedules.json",
)
ION_BUILD = (
    "sequence",
    "build",
    "ion-exponential",
    "--model",
    f"{MODELS}/ion_chain.yaml",
    *ION_THETA,
    "--out",
    "out/schedules.json",
)


def _profile(name: str, platform: str) -> Target:
    build = RYDBERG_BUILD if platform == "rydberg" else ION_BUILD
    model = "rydberg_chain" if platform == "rydberg" else "ion_chain"
    return Target(
        f"profile.{name}",
        "profile",
        f"devices/{name}.yaml",
        f"{name}.yaml",
        (
            ("device", "validate", "{file}"),
            (*build, "--device", "{file}"),
            ("device", "map", f"{MODELS}/{model}.yaml", "--device", "{file}"),
            ("device", "show", "{file}", "--json"),
        ),
    )


def _model(name: str, theta: tuple[str, ...], device: str, build: tuple[str, ...]) -> Target:
    return Target(
        f"model.{name}",
        "model",
        f"examples/models/{name}.yaml",
        f"{name}.yaml",
        (
            ("gradient", "{file}", *theta),
            ("device", "map", "{file}", "--device", device),
            (*build, "--device", device, "--model", "{file}"),
        ),
    )


def _recipe(name: str, device: str) -> Target:
    model, theta = ("ion_chain", ION_THETA) if device.startswith("yb") else ("rydberg_chain", RYDBERG_THETA)
    return Target(
        f"recipe.{name}",
        "recipe",
        f"sequences/{name}.yaml",
        f"{name}.yaml",
        (
            (
                "sequence",
                "build",
                "{file}",
                "--device",
                device,
                "--model",
                f"{MODELS}/{model}.yaml",
                *theta,
                "--out",
                "out/schedules.json",
            ),
        ),
    )


def _runcard(name: str, device: str) -> Target:
    run = ("calibrate", "{file}", "--backend", "fake-lab", "--out", "out/calibration", "--quiet")
    return Target(
        f"runcard.{name}",
        "runcard",
        f"calibration/{name}.yaml",
        f"{name}.yaml",
        ((*run, "--device", device),),
    )


def _experiment(name: str) -> Target:
    extras = (
        ("examples/results/phase_sensor_10/result.json",) if name.startswith("scale_phase_sensor_") else ()
    )
    return Target(
        f"experiment.{name}",
        "experiment",
        f"examples/{name}.yaml",
        f"{name}.yaml",
        (("train", "{file}", "--quiet"),),
        extras,
    )


def _exploration(name: str) -> Target:
    return Target(
        f"exploration.{name}",
        "exploration",
        f"examples/{name}.yaml",
        f"{name}.yaml",
        (("explore", "{file}", "--quiet"),),
    )


EXPERIMENTS = (
    "phase_sensor",
    "phase_sensor_10",
    "phase_sensor_bitstrings",
    "phase_sensor_exact_values",
    "phase_sensor_paper",
    "scale_phase_sensor_14",
    "scale_phase_sensor_32",
    "scale_phase_sensor_64",
    "ion_sensor",
    "ion_sensor_device",
    "rydberg_sensor",
    "rydberg_sensor_device",
    "rydberg_sensor_fresnel",
)
CLUSTER_THETA = ("--theta", "theta_x=1", "theta_zz=0.5")
SMALL_OUT = ("--out", "out/s.json")
TARGETS: tuple[Target, ...] = (
    _profile("aquila-like", "rydberg"),
    _profile("fresnel-like", "rydberg"),
    _profile("yb171-chain", "ion"),
    _profile("ca40-chain", "ion"),
    _model(
        "cluster_ising_open", CLUSTER_THETA, "aquila-like", (*RYDBERG_BUILD[:3], *CLUSTER_THETA, *SMALL_OUT)
    ),
    _model("rydberg_chain", RYDBERG_THETA, "aquila-like", (*RYDBERG_BUILD[:3], *RYDBERG_THETA, *SMALL_OUT)),
    _model(
        "ion_chain", ("--theta", "b=1", "c=0.5"), "yb171-chain", (*ION_BUILD[:3], *ION_THETA, *SMALL_OUT)
    ),
    _recipe("rydberg-linear", "fresnel-like"),
    _recipe("rydberg-smooth", "fresnel-like"),
    _recipe("rydberg-gap-aware", "fresnel-like"),
    _recipe("rydberg-aquila", "aquila-like"),
    _recipe("ion-exponential", "yb171-chain"),
    _recipe("rydberg-quintic", "fresnel-like"),
    _recipe("rydberg-gap-quintic", "fresnel-like"),
    _recipe("ion-exponential-smooth", "yb171-chain"),
    _runcard("rydberg-basic", "fresnel-like"),
    _runcard("rydberg-noise", "fresnel-like"),
    _runcard("ion-noise", "yb171-chain"),
    _runcard("rydberg-daily", "aquila-like"),
    _runcard("rydberg-ramp", "fresnel-like"),
    _runcard("ion-daily", "yb171-chain"),
    _runcard("ion-ramp", "ca40-chain"),
    *(_experiment(name) for name in EXPERIMENTS),
    _exploration("explore_phase"),
    _exploration("explore_sensitivity"),
    _exploration("explore_boundary"),
    Target(
        "counts.counts_example",
        "counts",
        "examples/counts_example/run.json",
        "run.json",
        (("gradient-from-counts", "{file}"), ("gradient-from-counts", "{file}", "--no-mitigate", "--json")),
    ),
    Target(
        "result.phase_sensor_10",
        "result",
        "examples/results/phase_sensor_10/result.json",
        "result.json",
        (("train", "{root}/examples/phase_sensor_10.yaml", "--init", "{file}", "--quiet"),),
    ),
    *(
        Target(
            f"schedule.{platform}",
            "schedule",
            f"generated:schedule.{platform}",
            "schedules.json",
            (("sequence", "plot", "{file}", "--out", "out/schedules.png"),),
        )
        for platform in ("rydberg", "ion")
    ),
    Target(
        "history.fresnel-like",
        "history",
        "generated:history.fresnel-like",
        "history/fresnel-like.jsonl",  # (the calibration history folder of a case: work/history)
        (
            ("calibrate", "history", "fresnel-like"),
            ("device", "show", "fresnel-like"),
            (*RYDBERG_BUILD, "--device", "fresnel-like"),
        ),
    ),
)
BY_NAME = {t.name: t for t in TARGETS}
KINDS = tuple(dict.fromkeys(t.kind for t in TARGETS))


def _schedules(argv: tuple[str, ...]) -> Callable[[Path], bytes]:
    """The schedule file ``qep-analog ARGV`` writes (run in ``folder``)."""

    def make(folder: Path) -> bytes:
        from qep_analog.cli import main

        previous = Path.cwd()
        os.chdir(folder)
        try:
            assert main([part.format(root=ROOT) for part in argv]) == 0, argv
        finally:
            os.chdir(previous)
        return (folder / "out" / "schedules.json").read_bytes()

    return make


def _history(folder: Path) -> bytes:
    """A calibration history of fresnel-like: device-wide and per-site records, good and bad."""
    from qep_analog.calibration.history import CalibrationHistory
    from qep_analog.calibration.records import CalibrationRecord

    def record(field: str, value: float, unit: str, site: int | None = None) -> CalibrationRecord:
        quality = "bad" if field == "dephasing_time" else "good"
        return CalibrationRecord(
            field=field, value=value, uncertainty=0.01 * abs(value), unit=unit,
            timestamp="2025-01-02T03:04:05+00:00", run_id="20250102-030405-a1b2", routine="ramsey",
            quality=quality, valid=True, device="fresnel-like", profile_version=1,
            runcard="rydberg-basic", site=site,
        )  # fmt: skip

    history = CalibrationHistory(folder, "fresnel-like")
    history.append(
        [
            record("rabi_scale", 0.97, ""),
            record("detuning_offset", 0.12, "rad/µs"),
            record("readout_false_positive", 0.03, ""),
            record("readout_false_negative", 0.09, "", site=2),
            record("local_gains", 0.95, "", site=1),
            record("dephasing_time", 4.0, "µs"),
        ]
    )
    return history.path.read_bytes()


#: how the generated sources are made (in an empty folder)
GENERATED: dict[str, Callable[[Path], bytes]] = {
    "schedule.rydberg": _schedules((*RYDBERG_BUILD, "--device", "aquila-like")),
    "schedule.ion": _schedules((*ION_BUILD, "--device", "yb171-chain")),
    "history.fresnel-like": _history,
}


def shipped_source(target: Target) -> bytes:
    return (ROOT / target.source).read_bytes()


# -- documents ----------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def parse(text: bytes, fmt: str) -> Any:
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text) if fmt == "json" else yaml.safe_load(text)


def render(document: Any, fmt: str, slot: str | None = None) -> bytes:
    """The text of ``document``; the string :data:`SLOT` in it becomes the raw ``slot`` snippet."""
    if fmt == "json":
        text = json.dumps(document, indent=2, allow_nan=True)
        marker = f'"{SLOT}"'
    elif fmt == "jsonl":
        lines = document if isinstance(document, list) else [document]
        text = "".join(json.dumps(line, allow_nan=True, ensure_ascii=False) + "\n" for line in lines)
        marker = f'"{SLOT}"'
    else:
        text = yaml.safe_dump(
            document, sort_keys=False, default_flow_style=None, allow_unicode=True, width=4096
        )
        marker = SLOT
    if slot is not None:
        if document == SLOT:  # the root
            text = slot + "\n"
        else:
            text = text.replace(marker, slot, 1)
    return text.encode("utf-8")


def nodes(document: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) of ``document``, containers and leaves, the root first."""
    yield path, document
    if isinstance(document, dict):
        for key, value in document.items():
            yield from nodes(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from nodes(value, (*path, index))


def replaced(document: Any, path: Path_, value: Any) -> Any:
    """A copy of ``document`` with the node at ``path`` replaced by ``value``."""
    if not path:
        return value
    out = copy.deepcopy(document)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return out


def at(document: Any, path: Path_) -> Any:
    for key in path:
        document = document[key]
    return document


def pick(rng: np.random.Generator, items: list[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- classes ------------------------------------------------------------------------------------------


@dataclass
class Made:
    """What a case writes and runs: ``files`` (name -> bytes, or a callable making the entry at its
    path), the command's arguments and where the main file goes."""

    argv: list[str]
    files: dict[str, bytes | Callable[[Path], None]] = field(default_factory=dict)
    note: str = ""
    #: the path given for {file} (default: the main file in the work folder)
    file_argument: str | None = None
    #: stopped (the expensive stage replaced) or the real command
    stopped: bool = True
    #: run in a subprocess with a memory ceiling and a timeout
    subprocess: bool = False
    timeout: float = 60.0


SYNTAX = list(":[]{}-,&*!|>'\"%@`#?\t\n ")
# fmt: off
STRUCTURE_OPERATIONS = [
    "truncate", "flip", "flip_ascii", "delete_line", "duplicate_line", "swap_lines", "indent", "tab",
    "insert", "delete_char", "delete_key", "unknown_key", "rename_key", "second_document", "wrap_list",
    "scalar_root", "duplicate_key",
]
# fmt: on


def structure(text: bytes, target: Target, rng: np.random.Generator) -> tuple[bytes, str]:
    """One to three kinds of damage to the text or its keys."""
    notes = []
    for _ in range(int(rng.integers(1, 4))):
        op = pick(rng, STRUCTURE_OPERATIONS)
        notes.append(op)
        text = _structure_op(op, text, target, rng)
    return text, "+".join(notes)


def _structure_op(op: str, text: bytes, target: Target, rng: np.random.Generator) -> bytes:
    lines = text.split(b"\n")
    n = max(len(text), 1)
    if op == "truncate":
        return text[: int(rng.integers(0, n))]
    if op in ("flip", "flip_ascii"):
        data = bytearray(text)
        for _ in range(int(rng.integers(1, 9))):
            if data:
                position = int(rng.integers(len(data)))
                data[position] = (
                    int(rng.integers(256)) if op == "flip" else ord(pick(rng, SYNTAX + list("az09.eE+")))
                )
        return bytes(data)
    if op == "delete_line":
        del lines[int(rng.integers(len(lines)))]
        return b"\n".join(lines)
    if op == "duplicate_line":
        i = int(rng.integers(len(lines)))
        lines.insert(i, lines[i])
        return b"\n".join(lines)
    if op == "swap_lines":
        i, j = (int(k) for k in rng.integers(len(lines), size=2))
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    if op == "indent":
        i = int(rng.integers(len(lines)))
        shift = int(rng.integers(1, 4))
        lines[i] = b" " * shift + lines[i] if rng.random() < 0.5 else lines[i][shift:]
        return b"\n".join(lines)
    if op == "tab":
        i = int(rng.integers(len(lines)))
        lines[i] = b"\t" + lines[i].lstrip(b" ")
        return b"\n".join(lines)
    if op == "insert":
        position = int(rng.integers(n))
        return text[:position] + pick(rng, SYNTAX).encode() + text[position:]
    if op == "delete_char":
        position = int(rng.integers(n))
        return text[:position] + text[position + 1 :]
    # operations on the parsed document (the text may already be damaged: then the text is kept)
    try:
        document = parse(text, target.fmt)
    except (ValueError, yaml.YAMLError):
        return text
    if op == "second_document":
        return text + (b"\n" if target.fmt != "yaml" else b"\n---\n") + text
    if op == "wrap_list":
        return render([document], target.fmt)
    if op == "scalar_root":
        return render(pick(rng, ["qep", 1, None, True]), target.fmt)
    mappings = [(p, v) for p, v in nodes(document) if isinstance(v, dict) and v]
    if not mappings:
        return text
    path, mapping = pick(rng, mappings)
    key = pick(rng, list(mapping))
    if op == "delete_key":
        new = {k: v for k, v in mapping.items() if k != key}
    elif op == "unknown_key":
        new = {**mapping, pick(rng, ["extra", "n_qubit", "Schema", "__class__", "units_MHz"]): 1}
    elif op == "rename_key":
        renamed = f"{key}_" if isinstance(key, str) else "x"
        new = {(renamed if k == key else k): v for k, v in mapping.items()}
    elif target.fmt == "yaml":  # duplicate_key: the key's line written twice (readers must refuse)
        return _duplicate_yaml_key(text, key, rng) or text
    else:  # duplicate_key in JSON (which keeps the last one by default)
        value = json.dumps(mapping[key], allow_nan=True)
        rendered = render(replaced(document, path, {**mapping, key: SLOT}), target.fmt).decode()
        return rendered.replace(f'"{SLOT}"', f"{value}, {json.dumps(str(key))}: {value}", 1).encode()
    return render(replaced(document, path, new), target.fmt)


def _duplicate_yaml_key(text: bytes, key: Any, rng: np.random.Generator) -> bytes | None:
    lines = text.split(b"\n")
    pattern = re.compile(rb"^\s*" + re.escape(str(key).encode()) + rb"\s*:")
    found = [i for i, line in enumerate(lines) if pattern.match(line)]
    if not found:
        return None
    i = pick(rng, found)
    lines.insert(i + 1, lines[i])
    return b"\n".join(lines)


# fmt: off
ALTERNATIVES: list[Any] = [
    "text", "", " ", 0, 1, -1, 2.5, True, False, None, [], {}, [1, 2], {"a": 1}, ["x"], [[1, 2]],
    [None], "1e3", "nan", "0x10", "yes", "null", "~", "X0", "../../outside", [[]],
    {"schema": "qep-model/1"},
]
# fmt: on


def types(text: bytes, target: Target, rng: np.random.Generator) -> tuple[bytes, str]:
    """A node's value swapped for a value of another type, or a key for a key of another type."""
    document = parse(text, target.fmt)
    path, value = pick(rng, list(nodes(document))[1:])
    if rng.random() < 0.15 and path:  # the key instead of the value
        parent = at(document, path[:-1])
        if isinstance(parent, dict):
            new_key = (
                pick(rng, [1, True, None, 2.5, "", " "])
                if target.fmt == "yaml"
                else pick(rng, ["", " ", "1"])
            )
            swapped = {(new_key if k == path[-1] else k): v for k, v in parent.items()}
            return render(
                replaced(document, path[:-1], swapped), target.fmt
            ), f"key {path!r} -> {new_key!r}"
    choices = [a for a in ALTERNATIVES if type(a) is not type(value)]
    if rng.random() < 0.15:
        new = [value] if rng.random() < 0.5 else {"value": value}
    else:
        new = pick(rng, choices)
    return render(replaced(document, path, new), target.fmt), f"{path!r} -> {new!r}"


# fmt: off
EXTREMES: list[Any] = [
    float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e-320,
    -0.0, 0, 0.0, -1, -1.5, 10**30, -(10**30), 2**63, 2**64, -(2**63), 2**31, 10**16 + 1, 1e-300,
    1e150, 1.0000001e150, 1e16, 123456789.123456789,
]
RAW_YAML = [
    "1e400", "-1e400", ".NaN", "+.inf", "-.Inf", "1_000", "0o17", "0x1F", "0b101", "1e-400", "12e9999",
    "1.0e+309", "-0", "0.", ".5", "1:30", "123456789012345678901234567890e10", "+1", "1__0",
]
RAW_JSON = [
    "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1.0e+309", "1E-400", "-0", "1e-999999",
    "123456789012345678901234567890", "0.1e2",
]
# fmt: on


def numbers(text: bytes, target: Target, rng: np.random.Generator) -> tuple[bytes, str]:
    """A number (or, in a file of few numbers, any value) replaced by an extreme one."""
    document = parse(text, target.fmt)
    candidates = [(p, v) for p, v in nodes(document) if is_number(v)]
    if not candidates:
        candidates = [(p, v) for p, v in nodes(document) if p and not isinstance(v, dict | list)]
    path, _ = pick(rng, candidates)
    if rng.random() < 0.3:
        raw = pick(rng, RAW_JSON if target.fmt != "yaml" else RAW_YAML)
        return render(replaced(document, path, SLOT), target.fmt, slot=raw), f"{path!r} -> {raw}"
    new = pick(rng, EXTREMES)
    return render(replaced(document, path, new), target.fmt), f"{path!r} -> {new!r}"


TAGS = [
    '!!python/object/apply:os.system ["touch {sentinel}"]',
    '!!python/object/apply:subprocess.check_output [["touch", "{sentinel}"]]',
    "!!python/object/new:os.system [touch {sentinel}]",
    "!<tag:yaml.org,2002:python/object/apply:os.system> [touch {sentinel}]",
    "!!python/name:os.system ''",
    "!!python/module:os ''",
    "!!python/object:pathlib.Path {{}}",
    "!!python/tuple [1, 2]",
    "!!python/complex 1+2j",
    "!!python/bytes AAAA",
    '!!binary "AAAA"',
    "!!set {{a, b}}",
    "!!omap [{{a: 1}}, {{b: 2}}]",
    "!!pairs [{{a: 1}}, {{a: 2}}]",
    "!!timestamp 2001-12-14",
    "!!str 1",
    '!!int "12"',
    '!!float "nan"',
    '!!bool "yes"',
    '!!null ""',
    "!custom 1",
    "!!merge <<",
]


def tags(text: bytes, target: Target, rng: np.random.Generator, sentinel: Path) -> tuple[bytes, str]:
    """A value replaced by a tagged one; the ``python/`` tags would run ``touch SENTINEL``."""
    document = parse(text, target.fmt)
    path, _ = pick(rng, list(nodes(document)))
    snippet = pick(rng, TAGS).format(sentinel=sentinel)
    return render(replaced(document, path, SLOT), target.fmt, slot=snippet), f"{path!r} -> {snippet}"


def laughs(width: int, depth: int) -> str:
    """Anchors of ``width`` aliases of the one before, ``depth`` deep: ``width**depth`` leaves."""
    parts = [f"&l0 [{', '.join(['lol'] * width)}]"]
    parts += [f"&l{d} [{', '.join([f'*l{d - 1}'] * width)}]" for d in range(1, depth)]
    return "[" + ", ".join(parts) + "]"


def aliases(text: bytes, target: Target, rng: np.random.Generator) -> tuple[bytes, str]:
    """A value replaced by an alias bomb (expanding to 1e3-1e15 nodes) or a recursive alias."""
    document = parse(text, target.fmt)
    path, _ = pick(rng, list(nodes(document)))
    variant = int(rng.integers(6))
    if variant <= 2:
        width = int(rng.integers(2, 11))
        depth = int(np.clip(round(float(rng.uniform(3, 15)) / np.log10(width)), 2, 40))
        snippet, note = laughs(width, depth), f"laughs {width}**{depth}"
    elif variant == 3:
        snippet, note = pick(rng, ["&r [*r]", "&r {a: *r}", "&r [1, [2, *r]]"]), "recursive"
    elif variant == 4:
        snippet = "[&m {a: [lol, lol, lol]}, {<<: [*m, *m], b: *m}]"
        note = "merge keys"
    else:
        snippet, note = (
            pick(rng, ["*undefined", "&a 1", "[&a 1, *a, *a]", "{&k a: 1, *k : 2}"]),
            "plain aliases",
        )
    return render(replaced(document, path, SLOT), target.fmt, slot=snippet), f"{path!r}: {note}"


def nesting(text: bytes, target: Target, rng: np.random.Generator) -> tuple[bytes, str]:
    """A value nested in lists or mappings near the readers' limit, or far beyond it."""
    depth = pick(rng, [MAX_DEPTH - 3, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 150, 1000, 20_000, 200_000])
    document = parse(text, target.fmt)
    style = int(rng.integers(4))
    if style == 3 and target.fmt == "yaml":  # the whole document: a block sequence, one line
        return ("- " * depth + "1\n").encode(), f"block sequence {depth} deep"
    path, _ = pick(rng, list(nodes(document)))
    if style == 0:
        snippet = "[" * depth + "]" * depth
    elif style == 1:
        key = '"a": ' if target.fmt != "yaml" else "a: "
        snippet = ("{" + key) * depth + "1" + "}" * depth
    else:
        key = '"a": ' if target.fmt != "yaml" else "a: "
        snippet = ("[{" + key) * (depth // 2) + "0" + "}]" * (depth // 2)
    return render(
        replaced(document, path, SLOT), target.fmt, slot=snippet
    ), f"{path!r}: style {style}, {depth} deep"


OPERATOR = re.compile(r"^[XYZN]\d+( [XYZN]\d+)*$")
BITSTRING = re.compile(r"^[01]+$")
INDEX_KEYS = ("sites", "targets")


def _bad_indices(rng: np.random.Generator, n: int) -> Any:
    # fmt: off
    return pick(rng, [
        [0, n], [0, n + 1], [-1, 0], [0, 0], [10**9, 1], [2**63], list(range(n + 5)), [], [0.5, 1],
        [10**30], [n - 1, n + 99], ["0"],
    ])
    # fmt: on


def _bad_operator(rng: np.random.Generator, operator: str, n: int) -> str:
    tokens = operator.split()
    i = int(rng.integers(len(tokens)))
    letter, index = tokens[i][0], tokens[i][1:]
    # fmt: off
    tokens[i] = pick(rng, [
        f"{letter}{n}", f"{letter}{n + 1}", f"{letter}99", f"{letter}{10**9}", f"{letter}{10**30}",
        f"{letter}-1", f"{letter}{index}.5", f"{letter}0{index}", f"{letter.lower()}{index}",
        f"{letter}{index}{letter}{index}", f"I{index}", f"A{index}", letter, f"{letter}{'9' * 400}",
        f"{letter}\u0661", f"{letter} {index}", f"{letter}{index},{letter}{index}",
        f"{tokens[i]} {tokens[i]}", f"{letter}{2**64}",
    ])
    # fmt: on
    return " ".join(tokens)


def _qubit_slots(document: Any) -> list[tuple[Path_, str]]:
    """Where a document names qubits, atoms or ions: (path, what)."""
    found = []
    for path, value in nodes(document):
        key = path[-1] if path else None
        if isinstance(value, str) and OPERATOR.match(value):
            found.append((path, "operator"))
        elif key in INDEX_KEYS and isinstance(value, list):
            found.append((path, "indices"))
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(k, str) and BITSTRING.match(k) for k in value)
        ):
            found.append((path, "bitstrings"))
        elif key in ("bases", "readout") and isinstance(value, str) and value.isalpha():
            found.append((path, "letters"))
        elif key == "initial_state" and isinstance(value, str):
            found.append((path, "bitstring"))
        elif key == "site" and isinstance(value, int):
            found.append((path, "site"))
        elif (
            key in ("positions", "local_weights", "rabi", "stark_shifts")
            and isinstance(value, list)
            and value
        ):
            found.append((path, "per-site list"))
    return found


def qubits_apply(target: Target, text: bytes) -> bool:
    return target.kind == "runcard" or bool(_qubit_slots(parse(text, target.fmt)))


def qubits(text: bytes, target: Target, rng: np.random.Generator) -> tuple[bytes, str]:
    """A qubit, atom or ion index out of range: in an operator, a list of sites, a bitstring."""
    document = parse(text, target.fmt)
    n = int(document.get("n_qubits") or 0) if isinstance(document, dict) else 0
    if isinstance(document, dict) and isinstance(document.get("model"), dict):
        n = int(document["model"].get("n_qubits") or document["model"].get("n_chain") or 0) or n
    n = n or 8
    slots = _qubit_slots(document)
    if target.kind == "runcard" and (not slots or rng.random() < 0.5):
        new = _bad_indices(rng, 4)
        return render({**document, "targets": new}, target.fmt), f"targets: {new!r}"
    path, what = pick(rng, slots)
    value = at(document, path)
    if what == "operator":
        new = _bad_operator(rng, value, n)
    elif what == "indices":
        new = _bad_indices(rng, n)
    elif what == "bitstrings":
        key = pick(rng, list(value))
        bad_key = pick(
            rng, [key[:-1], key + "0", key.replace("0", "2", 1), "x" * len(key), "", "1" * 64, key + " "]
        )
        new = {(bad_key if k == key else k): v for k, v in value.items()}
    elif what == "letters":
        new = pick(
            rng, [value[:-1], value + "Z", value.replace(value[0], "Q", 1), value.lower(), "", value * 40]
        )
    elif what == "site":
        new = pick(rng, [n, 99, 10**4, 10**9, -1, 2**63, 10**30, 1.5, True])
    elif what == "bitstring":
        new = pick(rng, [value[:-1], value + "0", "2" * len(value), "", "1" * 200])
    else:
        new = pick(rng, [value[:-1], [*value, value[-1]], value * 20, []])
    return render(replaced(document, path, new), target.fmt), f"{what} {path!r} -> {new!r}"[:300]


# -- special files ------------------------------------------------------------------------------------

# fmt: off
SPECIAL_IN_PROCESS = [
    "empty", "whitespace", "comment", "empty document", "null", "scalar", "list", "binary junk",
    "non-UTF-8", "BOM", "UTF-16", "NUL byte", "CRLF", "two documents", "directory", "dangling link",
    "link loop", "link to a directory", "oversized sparse file", "trailing slash", "missing",
    "huge string value", "unreadable", "long line",
]
# fmt: on
SPECIAL_SUBPROCESS = ["FIFO", "/dev/zero", "link to /dev/zero", "/dev/urandom", "FIFO named in the file"]
#: where a file of each kind names another file (the FIFO of "FIFO named in the file")
REFERENCES: dict[str, tuple[Path_, str]] = {
    "profile": (("capabilities", "pulser_device"), "pulser.json"),
    "model": ((), ""),
    "experiment": (("device",), "device.yaml"),
    "exploration": (("devices",), "device.yaml"),
    "counts": (("model",), "model.yaml"),
}


def special(
    text: bytes, target: Target, rng: np.random.Generator, variant: str, work: Path
) -> tuple[dict[str, bytes | Callable[[Path], None]], str | None]:
    """The files of a special-file case and the path given for ``{file}`` (None: the main file)."""
    name = target.file_name
    files: dict[str, bytes | Callable[[Path], None]] = {}
    argument: str | None = None
    lines = text.split(b"\n")
    if variant in ("empty", "whitespace", "comment", "empty document", "null", "scalar", "list"):
        files[name] = {
            "empty": b"",
            "whitespace": b"  \n\n\t\n",
            "comment": b"# nothing here\n",
            "empty document": b"---\n...\n",
            "null": b"null\n",
            "scalar": b"42\n",
            "list": b"[1, 2]\n",
        }[variant]
    elif variant == "binary junk":
        files[name] = rng.integers(0, 256, size=int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
    elif variant == "non-UTF-8":
        position = int(rng.integers(len(text)))
        files[name] = text[:position] + b"\xff\xfe\xe9" + text[position:]
    elif variant == "BOM":
        files[name] = b"\xef\xbb\xbf" + text
    elif variant == "UTF-16":
        files[name] = text.decode("utf-8").encode("utf-16")
    elif variant == "NUL byte":
        position = int(rng.integers(len(text)))
        files[name] = text[:position] + b"\x00" + text[position:]
    elif variant == "CRLF":
        files[name] = b"\r\n".join(lines)
    elif variant == "two documents":
        files[name] = text + (b"\n" if target.fmt != "yaml" else b"\n---\n") + text
    elif variant == "directory":
        files[name] = lambda path: path.mkdir()
    elif variant == "dangling link":
        files[name] = lambda path: path.symlink_to(path.parent / "nowhere")
    elif variant == "link loop":
        files[name] = lambda path: (
            path.symlink_to(path.parent / "loop"),
            (path.parent / "loop").symlink_to(path),
        )
    elif variant == "link to a directory":
        files[name] = lambda path: path.symlink_to(path.parent)
    elif variant == "oversized sparse file":
        files[name] = lambda path: os.truncate(_touch(path), MAX_FILE_BYTES + 1)
    elif variant == "trailing slash":
        files[name] = text
        argument = f"{work / name}/"
    elif variant == "missing":
        argument = str(work / f"missing-{name}")
    elif variant == "huge string value":  # one value of a million characters: messages stay short
        document = parse(text, target.fmt)
        path, _ = pick(rng, [(p, v) for p, v in nodes(document) if p and not isinstance(v, dict | list)])
        files[name] = render(replaced(document, path, "é" * 10**6), target.fmt)
    elif variant == "unreadable":
        files[name] = lambda path: (path.write_bytes(text), path.chmod(0))
    elif variant == "long line":
        files[name] = text + (b" " * 2 * 10**6 if target.fmt != "yaml" else b"\n# " + b"x" * 2 * 10**6)
    elif variant == "FIFO":
        files[name] = lambda path: os.mkfifo(path)
    elif variant in ("/dev/zero", "/dev/urandom"):
        argument = variant
    elif variant == "link to /dev/zero":
        files[name] = lambda path: path.symlink_to("/dev/zero")
    elif variant == "FIFO named in the file":
        location, reference = REFERENCES.get(target.kind, ((), ""))
        document = parse(text, target.fmt)
        if reference and isinstance(document, dict):
            value: Any = [reference] if target.kind == "exploration" else reference
            files[name] = render(replaced(document, location, value), target.fmt)
            files[reference] = lambda path: os.mkfifo(path)
        else:
            files[name] = lambda path: os.mkfifo(path)
    else:
        raise AssertionError(variant)
    return files, argument


def _touch(path: Path) -> Path:
    path.touch()
    return path


# -- sizes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """A size that would exhaust memory: values set at paths of a target's file, the real command."""

    target: str
    values: tuple[tuple[Path_, Any], ...]
    argv: tuple[str, ...] | None = None  # default: the target's first command
    timeout: float = 90.0


_SMALL_SENSOR = ((("model", "n_chain"), 3), (("evaluation", "test_size"), 5), (("evaluation", "every"), 1))
_TRAIN_ONE = ("train", "{file}", "--steps", "1", "--quiet")
_SPECTROSCOPY = {"rabi_MHz": 0.5, "duration_us": 1.0, "start_MHz": -1.5, "stop_MHz": 1.5, "shots": 400}


def _routine(name: str, **parameters: Any) -> tuple[tuple[Path_, Any], ...]:
    """A runcard of the one routine ``name`` (the others would run for real before it)."""
    return ((("routines",), [{"routine": name, "parameters": parameters}]),)


SIZES: tuple[Size, ...] = (
    Size("model.cluster_ising_open", ((("n_qubits",), 31),)),
    Size("model.ion_chain", ((("n_qubits",), 10**6),)),
    Size("model.cluster_ising_open", ((("n_qubits",), 24),)),
    Size(
        "model.rydberg_chain",
        ((("n_qubits",), 10_000),),
        ("device", "map", "{file}", "--device", "aquila-like"),
    ),
    Size(
        "model.ion_chain", ((("n_qubits",), 10**9),), ("device", "map", "{file}", "--device", "yb171-chain")
    ),
    Size("experiment.phase_sensor", ((("model", "n_chain"), 10_000),), _TRAIN_ONE),
    Size("experiment.phase_sensor", (*_SMALL_SENSOR, (("evaluation", "test_size"), 10**9)), _TRAIN_ONE),
    Size("experiment.phase_sensor", (*_SMALL_SENSOR, (("training", "batch_size"), 10**9)), _TRAIN_ONE),
    Size("experiment.phase_sensor", (*_SMALL_SENSOR, (("training", "shots"), 10**13)), _TRAIN_ONE),
    Size("experiment.rydberg_sensor", ((("model", "n_chain"), 10_000),), _TRAIN_ONE),
    Size("experiment.ion_sensor", ((("model", "n_chain"), 10_000),), _TRAIN_ONE),
    Size("exploration.explore_phase", ((("diagram", "points"), [100_000, 100_000]),)),
    Size("exploration.explore_sensitivity", ((("starts",), [[1.0, 0.5, 0.5]] * 100_000),)),
    Size(
        "exploration.explore_boundary", ((("boundary", "theta_zz"), [1 + k * 1e-6 for k in range(10**5)]),)
    ),
    Size("runcard.rydberg-basic", _routine("detuning_spectroscopy", **_SPECTROSCOPY, points=10**8)),
    Size("runcard.rydberg-basic", _routine("readout", repeats=10**9, shots=1000)),
    Size("runcard.rydberg-basic", _routine("readout", repeats=4, shots=10**13)),
    Size("recipe.rydberg-smooth", ((("segments",), 10**9),)),
    Size("recipe.rydberg-gap-aware", ((("gap_points",), 10**9),)),
    Size("recipe.ion-exponential", ((("segments",), 10**9),)),
    Size("recipe.rydberg-linear", ((("duration_us",), 1e6),)),
    Size("schedule.rydberg", (), ("emulate", "{file}", "--shots", str(10**13), "--quiet", "--json")),
    Size("profile.fresnel-like", ((("capabilities", "max_atoms"), 10**9),)),
)


# -- the catalogue ------------------------------------------------------------------------------------

#: cases per target (and class) in the fast and the slow variant; the slow one continues the indices
PER_TARGET = {
    "structure": (2, 16),
    "types": (2, 14),
    "numbers": (2, 14),
    "tags": (1, 6),
    "aliases": (1, 5),
    "qubits": (1, 8),
}
#: cases per kind in the fast and slow variant
NESTING_PER_KIND = (1, 10)
#: the special-file variants run in the fast variant, by kind (the slow one runs every other)
FAST_SPECIAL = {
    "profile": ["empty", "binary junk", "directory"],
    "model": ["non-UTF-8", "NUL byte", "huge string value"],
    "recipe": ["UTF-16", "link loop"],
    "runcard": ["oversized sparse file", "two documents"],
    "experiment": ["BOM", "dangling link", "FIFO"],
    "exploration": ["trailing slash", "scalar"],
    "counts": ["missing", "whitespace"],
    "result": ["list", "link to a directory"],
    "schedule": ["comment", "/dev/zero"],
    "history": ["NUL byte", "two documents"],
}
FAST_SIZES = (0, 5, 17, 22)
SPECIAL_VARIANTS = SPECIAL_IN_PROCESS + SPECIAL_SUBPROCESS
CLASSES = ("structure", "types", "numbers", "tags", "aliases", "nesting", "qubits", "sizes", "special")


def applies(cls: str, target: Target) -> bool:
    if cls in ("tags", "aliases"):
        return target.fmt == "yaml"
    if cls == "qubits":  # (the generated schedules name sites: their readout, positions, ...)
        return target.source.startswith("generated:") or qubits_apply(target, shipped_source(target))
    return True


def catalogue(slow: bool) -> list[str]:
    """The names of the cases of the fast (``slow=False``) or the slow variant."""
    names = []
    for cls, (fast, extra) in PER_TARGET.items():
        for target in TARGETS:
            if applies(cls, target):
                indices = range(fast, fast + extra) if slow else range(fast)
                names += [f"{cls}-{target.name}-{i:04d}" for i in indices]
    for kind in KINDS:
        of_kind = [t for t in TARGETS if t.kind == kind]
        fast, extra = NESTING_PER_KIND
        for i in range(fast, fast + extra) if slow else range(fast):
            names.append(f"nesting-{of_kind[i % len(of_kind)].name}-{i:04d}")
        for v, variant in enumerate(SPECIAL_VARIANTS):
            if (variant in FAST_SPECIAL[kind]) != slow:
                names.append(f"special-{of_kind[v % len(of_kind)].name}-{v:04d}")
    for i, size in enumerate(SIZES):
        if (i in FAST_SIZES) != slow:
            names.append(f"sizes-{size.target}-{i:04d}")
    return names


def split_name(name: str) -> tuple[str, Target, int]:
    cls, rest = name.split("-", 1)
    target, index = rest.rsplit("-", 1)
    return cls, BY_NAME[target], int(index)


def make_case(name: str, source: Callable[[Target], bytes], work: Path, sentinel: Path) -> Made:
    """The files and the command of the case ``name`` (``work``: the folder it runs in)."""
    cls, target, index = split_name(name)
    rng = np.random.default_rng([SEED, zlib.crc32(name.encode())])
    text = source(target)
    command = target.commands[index % len(target.commands)]
    made = Made(argv=[])
    if cls == "structure":
        content, made.note = structure(text, target, rng)
    elif cls == "types":
        content, made.note = types(text, target, rng)
    elif cls == "numbers":
        content, made.note = numbers(text, target, rng)
    elif cls == "tags":
        content, made.note = tags(text, target, rng, sentinel)
    elif cls == "aliases":
        content, made.note = aliases(text, target, rng)
    elif cls == "nesting":
        content, made.note = nesting(text, target, rng)
    elif cls == "qubits":
        content, made.note = qubits(text, target, rng)
    elif cls == "special":
        variant = SPECIAL_VARIANTS[index]
        made.files, made.file_argument = special(text, target, rng, variant, work)
        made.note = variant
        made.subprocess = variant in SPECIAL_SUBPROCESS
        content = None
    elif cls == "sizes":
        size = SIZES[index]
        document = parse(text, target.fmt)
        for path, value in size.values:
            document = replaced(document, path, value)
        content = render(document, target.fmt)
        command = size.argv or target.commands[0]
        made.note = ", ".join(f"{'.'.join(map(str, p))} = {_short(v)}" for p, v in size.values) or " ".join(
            command
        )
        made.stopped, made.subprocess, made.timeout = False, True, size.timeout
    else:
        raise AssertionError(cls)
    if content is not None:
        made.files[target.file_name] = content
    for extra in target.extras:
        made.files[extra] = (ROOT / extra).read_bytes()
    file_argument = made.file_argument or str(work / target.file_name)
    made.argv = [part.format(file=file_argument, root=ROOT) for part in command]
    return made


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def write_files(made: Made, work: Path) -> None:
    for name, content in made.files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)


def counts(names: list[str]) -> dict[str, int]:
    """Cases per class."""
    out = dict.fromkeys(CLASSES, 0)
    for name in names:
        out[name.split("-", 1)[0]] += 1
    return out


# -- runs ---------------------------------------------------------------------------------------------


class Stopped(Exception):
    """A command reached its expensive stage (training, exploration, calibration) with valid input."""


def _stop(*args: Any, **kwargs: Any) -> Any:
    raise Stopped()


def install_stops(setattr_: Callable[[Any, str, Any], None]) -> None:
    """Replace the expensive stage of train, explore and calibrate by :class:`Stopped` (``setattr_``:
    :func:`setattr`, or ``monkeypatch.setattr`` to undo it after the test)."""
    import qep_analog
    from qep_analog.qep.trainer import Trainer

    setattr_(Trainer, "run", _stop)
    setattr_(qep_analog, "run_exploration", _stop)
    setattr_(qep_analog, "run_runcard", _stop)


def drive(argv: list[str]) -> int:
    """``qep-analog ARGV`` with the expensive stages stopped (exit 0 when stopped): the program of a
    stopped case run in a subprocess."""
    from qep_analog.cli import main

    install_stops(setattr)
    try:
        return main(argv)
    except Stopped:
        return 0


#: the program (``python PROGRAM ARGV``) of a stopped case in a subprocess
STOPPED_PROGRAM = (
    "-c",
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import fuzz_cases; "
    "sys.exit(fuzz_cases.drive(sys.argv[1:]))",
)


if __name__ == "__main__":  # the cases per class: python tests/fuzz_cases.py
    for variant, slow in (("fast", False), ("slow", True)):
        names = catalogue(slow)
        per_class = ", ".join(f"{cls} {n}" for cls, n in counts(names).items())
        print(f"{variant}: {len(names)} cases ({per_class})")
