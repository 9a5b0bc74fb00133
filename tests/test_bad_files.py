"""Hostile input files (issue 16): alias bombs, deep nesting, FIFOs and devices, huge files, a hang.

Every command that could hang or exhaust memory without the limits runs in a subprocess with a
timeout and an address-space ceiling.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli_process as run_cli

from qep_analog.errors import ConfigError, StorageError
from qep_analog.schema import MAX_SHOWN, Field, parse_value, shown
from qep_analog.storage import MAX_DEPTH, load_json, read_input_bytes, read_yaml
from qep_analog.tasks.experiment import load_experiment
from qep_analog.tasks.phase_sensor import PhaseSensorTask, sample_patches

HEAD = "schema: qep-experiment/1\ntask: phase_sensor\n"
#: nine levels of nine aliases: 9**9 strings once expanded (a 3 GB repr), 600 bytes on disk
LAUGHS = '  n_chain: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"  {k}: &{k} [{','.join([f'*{p}'] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi", strict=True)
)
DEEP_YAML = HEAD + "model: " + "[" * 20_000 + "]" * 20_000 + "\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_refused(completed: subprocess.CompletedProcess[str], *words: str) -> None:
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr[-2000:]
    for word in words:
        assert word in completed.stderr


# -- 1. memory bombs ------------------------------------------------------------------------------


def test_alias_bomb_is_refused_by_the_yaml_reader(tmp_path: Path) -> None:
    path = write(tmp_path, "laughs.yaml", HEAD + "model:\n" + LAUGHS)
    with pytest.raises(StorageError, match="aliases expand the document to more than"):
        read_yaml(path)
    with pytest.raises(ConfigError, match="aliases expand"):
        load_experiment(path)


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="aliases expand"):
        read_yaml(write(tmp_path, "loop.yaml", "a: &a [*a]\n"))


def test_alias_bomb_through_the_cli(tmp_path: Path) -> None:
    path = write(tmp_path, "laughs.yaml", HEAD + "model:\n" + LAUGHS)
    assert_refused(run_cli("train", str(path), cwd=tmp_path), "aliases expand")


def test_shown_values_are_bounded() -> None:
    leaf = ["lol"] * 9
    for _ in range(12):  # 9**13 strings once expanded; shared lists, so built in microseconds
        leaf = [leaf] * 9
    assert len(shown(leaf)) <= MAX_SHOWN
    assert len(shown("x" * 10**6)) <= MAX_SHOWN
    assert shown([1, 2.5, "a"]) == repr([1, 2.5, "a"])


def test_schema_error_prints_a_bounded_value() -> None:
    value = [["x" * 1000] * 100] * 100  # a repr of 10 MB
    with pytest.raises(ConfigError) as caught:
        parse_value(value, Field("n_chain", "integer"), "file.yaml", ConfigError)
    message = str(caught.value)
    assert len(message) < MAX_SHOWN + 100
    assert message.startswith("file.yaml: n_chain = [[") and message.endswith("is not an integer")


def test_fifo_device_and_directory_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    for path, reason in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file")):
        with pytest.raises(StorageError, match=reason):
            read_yaml(path)
        with pytest.raises(StorageError, match=reason):
            load_json(path)
    with pytest.raises(StorageError, match="is a directory"):
        load_json(tmp_path)


@pytest.mark.parametrize("name", ["pipe.yaml", "/dev/zero"])
def test_fifo_and_device_through_the_cli(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name == "pipe.yaml":
        os.mkfifo(path)
    assert_refused(run_cli("train", str(path), cwd=tmp_path), "not a regular file")


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "big.json", "[" + "0," * 60 + "0]")
    assert len(read_input_bytes(path, limit=1000)) == len(path.read_bytes())
    with pytest.raises(StorageError, match="more than the limit of 100 bytes"):
        read_input_bytes(path, limit=100)


# -- 2. deep nesting ------------------------------------------------------------------------------


def test_deep_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=f"nesting deeper than {MAX_DEPTH} levels"):
        read_yaml(write(tmp_path, "deep.yaml", DEEP_YAML))
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)  # the mapping is the first level
    assert read_yaml(write(tmp_path, "ok.yaml", f"a: {nested}\n")) is not None


def test_deep_json_is_refused(tmp_path: Path) -> None:
    for text in ("[" * 20_000 + "]" * 20_000, '{"a":' * 20_000 + "0" + "}" * 20_000):
        with pytest.raises(StorageError, match=f"nesting deeper than {MAX_DEPTH} levels"):
            load_json(write(tmp_path, "deep.json", text))
    brackets_in_a_string = '{"a": "' + "[" * 20_000 + '"}'
    assert load_json(write(tmp_path, "text.json", brackets_in_a_string))["a"] == "[" * 20_000


def test_json_nan_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="NaN is not a JSON number"):
        load_json(write(tmp_path, "nan.json", '{"x": NaN}'))


def test_deep_yaml_through_the_cli(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.yaml", DEEP_YAML)
    assert_refused(run_cli("train", str(path), cwd=tmp_path), "nesting deeper than")


# -- 6. the patch sampler cannot loop forever -----------------------------------------------------


def test_nan_patch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"patches\[0\]\[0\] = nan is not finite"):
        PhaseSensorTask(n_chain=3, test_size=5, patches=[[float("nan"), 1.0]])
    path = write(tmp_path, "nan.yaml", HEAD + "model:\n  n_chain: 3\n  patches: [[.nan, 1.0]]\n")
    with pytest.raises(ConfigError, match="is not finite"):
        load_experiment(path)


@pytest.mark.parametrize(
    ("centre", "side", "rule"),
    [
        ((1.0, 1.0), 1e300, "patch_side = 1e\\+300 breaks the rule"),
        ((4.0, 0.0), 1e-300, "after 1000 rounds"),
    ],
)
def test_degenerate_patch_is_refused(centre: tuple[float, float], side: float, rule: str) -> None:
    with pytest.raises(ConfigError, match=rule):
        PhaseSensorTask(n_chain=3, test_size=5, patches=[list(centre)], patch_side=side)


def test_patch_sampler_is_bounded() -> None:
    with pytest.raises(ConfigError, match="0 of 10 points on the simplex"):
        sample_patches(np.random.default_rng(0), 10, np.array([[4.0, 0.0]]), 1e-300)


def test_degenerate_patch_through_the_cli(tmp_path: Path) -> None:
    body = "model:\n  n_chain: 3\n  patches: [[4.0, 0.0]]\n  patch_side: 1.0e-300\n"
    path = write(tmp_path, "corner.yaml", HEAD + body + "training: {steps: 1}\n")
    assert_refused(run_cli("train", str(path), cwd=tmp_path), "points on the simplex")
