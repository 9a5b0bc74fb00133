"""A QEP model (and per-site readout errors) kept in the float-valued ``context`` of calibration data,
so that fits that need them (QEP routines) re-run offline from the stored data alone.

Keys are ``"<section>|<name>|<Pauli string>"`` (``"fixed||<string>"`` for the fixed part) with the
coefficient as value; identity terms are dropped (they shift no expectation value).
"""

from __future__ import annotations

import numpy as np

from qep_analog.errors import CalibrationError
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.model.qep_model import QEPModel

_SECTIONS = ("fixed", "inputs", "trainable", "outputs")


def model_context(model: QEPModel) -> dict[str, float]:
    """The model's terms as context entries (and its parity sector, when it has one)."""
    out: dict[str, float] = {}
    parts: list[tuple[str, str, PauliSum]] = [("fixed", "", model.fixed)]
    for section in _SECTIONS[1:]:
        parts += [(section, name, operator) for name, operator in getattr(model, section).items()]
    for section, name, operator in parts:
        if "|" in name:
            raise CalibrationError(f"stored model: term name {name!r} contains '|'")
        for string, value in operator.items():
            if string.factors:
                out[f"{section}|{name}|{string}"] = float(value)
    if model.parity is not None:
        out["parity"] = float(model.parity)
    return out


def model_from_context(context: dict[str, float], n_qubits: int) -> QEPModel:
    """The model stored by :func:`model_context` (term order as stored)."""
    terms: dict[str, dict[str, list[tuple[float, str]]]] = {s: {} for s in _SECTIONS}
    for key, value in context.items():
        section, _, rest = key.partition("|")
        if section not in terms or "|" not in rest:
            continue
        name, _, string = rest.partition("|")
        terms[section].setdefault(name, []).append((value, string))
    if not terms["trainable"] or not terms["outputs"]:
        raise CalibrationError("stored model: the data hold no trainable or output terms")

    def operators(kind: str) -> dict[str, PauliSum]:
        return {k: pauli_sum(v, n_qubits) for k, v in terms[kind].items()}

    fixed = pauli_sum(terms["fixed"].get("", []), n_qubits)
    parity = int(context["parity"]) if "parity" in context else None
    return QEPModel(
        n_qubits, operators("trainable"), operators("outputs"), fixed, operators("inputs"), parity=parity
    )


def readout_context(readout: ReadoutErrors) -> dict[str, float]:
    """Per-site readout errors as context entries."""
    out = {f"false_positive {i}": float(e) for i, e in enumerate(readout.false_positive)}
    out.update({f"false_negative {i}": float(e) for i, e in enumerate(readout.false_negative)})
    return out


def readout_from_context(context: dict[str, float], n_qubits: int) -> ReadoutErrors:
    """The readout errors stored by :func:`readout_context`."""
    return ReadoutErrors(
        np.array([context[f"false_positive {i}"] for i in range(n_qubits)]),
        np.array([context[f"false_negative {i}"] for i in range(n_qubits)]),
    )
