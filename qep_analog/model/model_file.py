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
    defaults:                     # optional: values an input or parameter takes when not given
      a: 0.0
    # parity: 1                   # optional: prepare states in this sector of Π_q Z_q (+1 or -1);
                                  # every term must keep it (an even number of X and Y factors:
                                  # not this model, whose input g flips single qubits)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from qep_analog.errors import ModelFileError
from qep_analog.model.pauli import PauliSum, parse_operator
from qep_analog.model.qep_model import N_QUBITS, QEPModel
from qep_analog.schema import Field, parse_section
from qep_analog.storage import atomic_write_text, read_yaml

SCHEMA = "qep-model/1"
_TERM = Field("term", "tuple", fields=(Field("coefficient"), Field("operator", "any")))
_TERMS = Field("terms", "list", value=_TERM)
_FIELDS = (
    Field("schema", "text", choices=(SCHEMA,)),
    N_QUBITS,
    Field("fixed", "list", value=_TERM, required=False, nullable=True),
    Field("inputs", "mapping", value=_TERMS, required=False, nullable=True),
    Field("trainable", "mapping", value=_TERMS, min_length=1),
    Field("outputs", "mapping", value=_TERMS, min_length=1),
    Field("defaults", "mapping", value=Field("default"), required=False, nullable=True),
    Field("parity", "integer", required=False, nullable=True),
)


def load_model(path: str | Path) -> QEPModel:
    """Read and validate a model file; every problem raises a one-line :class:`ModelFileError`."""
    document = read_yaml(path, ModelFileError)
    return model_from_document(document, source=str(path))


def model_from_document(document: Any, source: str = "model") -> QEPModel:
    """Build a :class:`QEPModel` from a parsed ``qep-model/1`` document."""
    values = parse_section(document, _FIELDS, source, ModelFileError)
    n_qubits = values["n_qubits"]
    fixed = _operator(values["fixed"] or [], n_qubits, f"{source}: fixed")
    sections = {
        key: {
            name: _operator(terms, n_qubits, f"{source}: {key}.{name}")
            for name, terms in (values[key] or {}).items()
        }
        for key in ("inputs", "trainable", "outputs")
    }
    try:
        return QEPModel(
            n_qubits=n_qubits,
            fixed=fixed,
            inputs=sections["inputs"],
            trainable=sections["trainable"],
            outputs=sections["outputs"],
            defaults=values["defaults"] or {},
            parity=values["parity"],
        )
    except ModelFileError as exc:
        raise ModelFileError(f"{source}: {exc}") from None


def _operator(terms: list[list[Any]], n_qubits: int, where: str) -> PauliSum:
    """The sum of parsed [coefficient, operator] terms; each operator string is read at ``where[k]``."""
    return PauliSum.from_terms(
        [(c, parse_operator(operator, n_qubits, f"{where}[{k}]")) for k, (c, operator) in enumerate(terms)]
    )


def model_to_document(model: QEPModel) -> dict[str, Any]:
    """The ``qep-model/1`` document of a model (operators expanded into Pauli strings)."""

    def terms(operator: PauliSum) -> list[list[Any]]:
        return [[c, s.label] for s, c in operator.items()]

    document: dict[str, Any] = {
        "schema": SCHEMA,
        "n_qubits": model.n_qubits,
        "fixed": terms(model.fixed),
        "inputs": {k: terms(v) for k, v in model.inputs.items()},
        "trainable": {k: terms(v) for k, v in model.trainable.items()},
        "outputs": {k: terms(v) for k, v in model.outputs.items()},
    }
    if model.defaults:
        document["defaults"] = dict(model.defaults)
    if model.parity is not None:
        document["parity"] = model.parity
    return document


def save_model(model: QEPModel, path: str | Path) -> None:
    """Write a model file atomically."""
    text = yaml.safe_dump(model_to_document(model), sort_keys=False, default_flow_style=None)
    atomic_write_text(path, text)
