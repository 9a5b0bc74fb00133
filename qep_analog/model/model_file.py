"""Model files (schema ``qep-model/1``): the format users write by hand.

.. code-block:: yaml

    schema: qep-model/1
    n_qubits: 4
    fixed:                        # H0: [coefficient, operator] pairs
      - [-1.0, "Z0 Z1"]
    inputs:                       # x_name: terms multiplied by x_name
      g: [[-1.0, "X0"], [-1.0, "X1"]]
    trainable:                    # theta_name: terms multiplied by theta_name
      a: [[1.0, "Z1 Z2"]]
    outputs:                      # O_name: its nudge nu_name multiplies these terms
      m: [[1.0, "Z3"]]
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from qep_analog.errors import ModelFileError
from qep_analog.model.pauli import PauliSum, parse_operator
from qep_analog.model.qep_model import QEPModel
from qep_analog.storage import atomic_write_text, read_yaml

SCHEMA = "qep-model/1"
_KEYS = {"schema", "n_qubits", "fixed", "inputs", "trainable", "outputs"}
_REQUIRED = ("schema", "n_qubits", "trainable", "outputs")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def load_model(path: str | Path) -> QEPModel:
    """Read and validate a model file; every problem raises a one-line :class:`ModelFileError`."""
    document = read_yaml(path, ModelFileError)
    return model_from_document(document, source=str(path))


def model_from_document(document: Any, source: str = "model") -> QEPModel:
    """Build a :class:`QEPModel` from a parsed ``qep-model/1`` document."""
    if not isinstance(document, dict):
        raise ModelFileError(f"{source}: expected a mapping at the top level")
    unknown = sorted(set(document) - _KEYS, key=str)
    if unknown:
        raise ModelFileError(f"{source}: unknown key {unknown[0]!r} (valid: {', '.join(sorted(_KEYS))})")
    for key in _REQUIRED:
        if key not in document:
            raise ModelFileError(f"{source}: required key {key!r} is missing")
    if document["schema"] != SCHEMA:
        raise ModelFileError(f"{source}: schema {document['schema']!r} is not {SCHEMA!r}")
    n_qubits = document["n_qubits"]
    if isinstance(n_qubits, bool) or not isinstance(n_qubits, int) or n_qubits < 1:
        raise ModelFileError(f"{source}: n_qubits = {n_qubits!r} is not a positive integer")
    fixed_terms = document.get("fixed")
    fixed = _terms([] if fixed_terms is None else fixed_terms, n_qubits, f"{source}: fixed")
    sections = {
        key: _named_terms(document.get(key), n_qubits, f"{source}: {key}", required=key != "inputs")
        for key in ("inputs", "trainable", "outputs")
    }
    try:
        return QEPModel(
            n_qubits=n_qubits,
            fixed=fixed,
            inputs=sections["inputs"],
            trainable=sections["trainable"],
            outputs=sections["outputs"],
        )
    except ModelFileError as exc:
        raise ModelFileError(f"{source}: {exc}") from None


def _named_terms(value: Any, n_qubits: int, where: str, required: bool) -> dict[str, PauliSum]:
    if value is None:
        if required:
            raise ModelFileError(f"{where}: section is empty (at least one name is required)")
        return {}
    if not isinstance(value, dict):
        raise ModelFileError(f"{where}: expected a mapping name -> terms, got {type(value).__name__}")
    if required and not value:
        raise ModelFileError(f"{where}: section is empty (at least one name is required)")
    out: dict[str, PauliSum] = {}
    for name, terms in value.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ModelFileError(f"{where}: name {name!r} is not an identifier (letters, digits, _ . -)")
        out[name] = _terms(terms, n_qubits, f"{where}.{name}")
    return out


def _terms(value: Any, n_qubits: int, where: str) -> PauliSum:
    if not isinstance(value, list):
        raise ModelFileError(f"{where}: expected a list of [coefficient, operator] pairs")
    pairs: list[tuple[float, PauliSum]] = []
    for k, item in enumerate(value):
        place = f"{where}[{k}]"
        if not isinstance(item, list) or len(item) != 2:
            raise ModelFileError(f"{place}: {item!r} is not a [coefficient, operator] pair")
        coefficient, operator = item
        if isinstance(coefficient, bool) or not isinstance(coefficient, int | float):
            raise ModelFileError(f"{place}: coefficient {coefficient!r} is not a number")
        if not math.isfinite(coefficient):
            raise ModelFileError(f"{place}: coefficient {coefficient!r} is not finite")
        pairs.append((float(coefficient), parse_operator(operator, n_qubits, place)))
    return PauliSum.from_terms(pairs)


def model_to_document(model: QEPModel) -> dict[str, Any]:
    """The ``qep-model/1`` document of a model (operators expanded into Pauli strings)."""

    def terms(operator: PauliSum) -> list[list[Any]]:
        return [[c, s.label] for s, c in operator.items()]

    return {
        "schema": SCHEMA,
        "n_qubits": model.n_qubits,
        "fixed": terms(model.fixed),
        "inputs": {k: terms(v) for k, v in model.inputs.items()},
        "trainable": {k: terms(v) for k, v in model.trainable.items()},
        "outputs": {k: terms(v) for k, v in model.outputs.items()},
    }


def save_model(model: QEPModel, path: str | Path) -> None:
    """Write a model file atomically."""
    text = yaml.safe_dump(model_to_document(model), sort_keys=False, default_flow_style=None)
    atomic_write_text(path, text)
