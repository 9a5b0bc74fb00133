"""The bundle counts file as docs/counts-format.md documents it: its example, written into a bundle
under its documented name, is read back, with qubit 0 the leftmost character; the documented
refusals are refused with the documented messages."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qep_analog as qa
from qep_analog.backends.bundle import COUNTS_SCHEMA, file_stem
from qep_analog.backends.jobs import PhaseJob
from qep_analog.backends.registry import make_backend
from qep_analog.errors import BundlePending, MeasurementError
from qep_analog.measurement.estimators import outcome_values
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel

DOC = Path(__file__).resolve().parents[2] / "docs" / "counts-format.md"
SECTION = "## Bundle counts (`qep-bundle-counts/1`)"


def documented_example() -> tuple[str, dict[str, Any]]:
    """The counts file name the section names (``counts/….json``) and its first ```json block."""
    text = DOC.read_text(encoding="utf-8")
    assert text.count(SECTION) == 1
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
    assert block is not None
    before = section[: block.start()]
    name = re.findall(r"`(counts/[^`]+\.json)`", before)[-1]  # the name just before the example
    return name, json.loads(block.group(1))


def _chain(n: int) -> QEPModel:
    trainable = {
        "h": pauli_sum([(1.0, f"X{i}") for i in range(n)]),
        "delta": pauli_sum([(1.0, f"Z{i}") for i in range(n)]),
        "J": pauli_sum([(1.0, f"Z{i} Z{i + 1}") for i in range(n - 1)]),
    }
    return QEPModel(n, trainable, {"m": pauli_sum([(1.0, "Z0")])})


def test_the_documented_counts_file_is_read_back(tmp_path: Path) -> None:
    name, example = documented_example()
    basis, counts = example["bases"], example["counts"]
    n, shots = len(basis), sum(counts.values())
    sample, phase = example["job"].split("/")
    model = _chain(n)
    theta = tuple(model.vector("trainable", {"h": 4, "delta": 3, "J": 1.5}, 0.0))
    job = PhaseJob(int(sample), phase, (), theta, (0.0,), (basis,), shots)
    profile, recipe = qa.read_profile("aquila-like"), qa.load_recipe("rydberg-aquila")
    backend = make_backend("bundle", model, profile, recipe, directory=tmp_path)
    with pytest.raises(
        BundlePending, match=r"1 sequences written.*counts-format\.md in the bundle says how"
    ):
        backend.run([job])
    # the lab's computer gets the format with the bundle: this very document
    assert (tmp_path / "counts-format.md").read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
    with pytest.raises(BundlePending, match=rf"no file {file_stem(job, basis)}\.json in counts/ yet"):
        backend.run([job])
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    (entry,) = manifest["jobs"]
    assert entry["key"] == example["job"] and entry["bases"] == [basis] and entry["shots"] == shots
    assert manifest["format"] == "braket-ahs"
    assert manifest["files"][example["job"]][basis] == f"sequences/{file_stem(job, basis)}.ahs.json"
    assert name == f"counts/{file_stem(job, basis)}.json"  # the documented name is the one read
    assert example["schema"] == COUNTS_SCHEMA

    path = tmp_path / name
    path.write_text(json.dumps(example), encoding="utf-8")
    read = backend.run([job]).results[0].counts
    assert read is not None and read[basis].shots == shots
    assert read[basis].to_bitstrings() == {k: v for k, v in counts.items() if v}
    # qubit 0 the leftmost character: <Z_q> from the reader against the example's q-th characters
    observables = [pauli_sum([(1.0, f"Z{q}")]) for q in range(n)]
    values = outcome_values(basis, read[basis].outcomes, observables)
    means = read[basis].counts @ values / shots
    direct = [sum(c * (1 - 2 * int(bits[q])) for bits, c in counts.items()) / shots for q in range(n)]
    np.testing.assert_allclose(means, direct, rtol=0, atol=1e-12)
    assert abs(direct[0] - direct[-1]) > 0.01  # the example tells qubit 0 from the last one

    first = next(iter(counts))
    refused = [
        ({**example, "counts": {first: -1}}, rf"count -1 of {first} is not a non-negative integer$"),
        ({**example, "counts": {first: 12.0}}, r"count 12\.0 of .* is not a non-negative integer$"),
        ({**example, "counts": {first: True}}, r"count True of .* is not a non-negative integer$"),
        ({**example, "counts": {first: shots - 1}}, rf"{shots - 1} shots, the manifest asks for {shots}$"),
        ({**example, "job": f"{sample}/plus"}, rf"says job '{sample}/plus', bases '{basis}'$"),
        ({**example, "schema": "qep-counts/2"}, r"schema 'qep-counts/2', expected 'qep-bundle-counts/1'$"),
        ({k: v for k, v in example.items() if k != "counts"}, r"'counts' must be a non-empty mapping"),
    ]
    for document, message in refused:
        path.write_text(json.dumps(document), encoding="utf-8")
        with pytest.raises(MeasurementError, match=message):
            backend.run([job])
    path.write_text(json.dumps({**example, "notes": "not read"}), encoding="utf-8")
    assert backend.run([job]).results[0].counts is not None  # other keys are not read
    (tmp_path / "counts" / f"9-plus-{basis}.json").write_text(json.dumps(example), encoding="utf-8")
    with pytest.raises(MeasurementError, match=rf"counts file 9-plus-{basis}\.json is for no job"):
        backend.run([job])
