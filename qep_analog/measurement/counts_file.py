"""Measured QEP runs on disk (``qep-counts/2``; ``qep-counts/1`` read too) and Pulser results as
counts.

A run directory holds ``run.json`` (see ``docs/counts-format.md``)::

    {"schema": "qep-counts/1",
     "model": "model.yaml" | {a qep-model/1 document},
     "x": {"g": 0.5}, "theta": {"a": 0.3}, "error_signal": {"m": 1.0},
     "beta": 0.1, "scheme": "symmetric",
     "readout": {"false_positive": 0.025, "false_negative": 0.1, "mitigate": true},
     "phases": {"plus": [{"bases": "ZZXZ", "counts": {"0101": 12, ...}}, ...],
                "minus": [...], "free": [...]}}

Bitstrings put qubit 0 first, '1' is the excited state; every phase lists the same settings in the
same order. Every problem is one :class:`~qep_analog.errors.MeasurementError` line naming the file.

Versions: ``/2`` adds the optional ``preparation`` section (the bias of the preparations). A reader
of ``/1`` refuses unknown keys, so a file that has the section is written as ``/2`` and one without
it as ``/1``, which every reader of either version reads (as git writes its index version 3 only
when an entry needs it). Both are read; a ``/1`` file with a ``preparation`` section (written before
the version existed) is read with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qep_analog.errors import MeasurementError, ModelFileError, StorageError
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.gradient import MeasuredGradient, gradient_from_counts
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.measurement.settings import MeasurementPlan, MeasurementSetting, model_strings
from qep_analog.model.model_file import load_model, model_from_document, model_to_document
from qep_analog.model.qep_model import QEPModel
from qep_analog.qep.names import SCHEMES
from qep_analog.qep.scheme import PHASES
from qep_analog.schema import OMIT, Field, parse_section, parse_value, shown
from qep_analog.storage import confined_path, read_json, write_json

SCHEMA = "qep-counts/2"
#: the first version: no ``preparation`` section; still written for a run without one
SCHEMA_V1 = "qep-counts/1"
RUN_FILE = "run.json"
#: the point a run was measured at: x, theta and error_signal name -> value, names of the model
_NAMES = Field("names", "mapping", value=Field("value"), nullable=True)
_SETTING = Field("setting", "section", fields=(Field("bases", "text"), Field("counts", "any")))
_SETTINGS = Field("settings", "list", value=_SETTING, min_length=1, required=False, default=OMIT)
_FIELDS = (
    Field("schema", "text", choices=(SCHEMA, SCHEMA_V1)),
    Field("model", "any"),
    # x, theta and error_signal are read as _NAMES once the model names the valid keys
    Field("x", "any", required=False),
    Field("theta", "any", required=False),
    Field("error_signal", "any", required=False),
    Field("beta", low=0.0, open_low=True),
    Field("scheme", "text", choices=SCHEMES, required=False, default="symmetric"),
    Field(
        "readout",
        "section",
        required=False,
        nullable=True,
        fields=(
            # a number for every qubit or a list of one per qubit, read by _readout
            Field("false_positive", "any", required=False, default=0.0),
            Field("false_negative", "any", required=False, default=0.0),
            Field("mitigate", "flag", required=False, default=True),
        ),
    ),
    Field(
        "phases",
        "section",
        fields=tuple(dataclasses.replace(_SETTINGS, name=phase) for phase in ("plus", "minus", "free")),
    ),
    Field("notes", "any", required=False),
    # the bias of the preparations the counts come from (``emulate --shots``; docs/counts-format.md)
    Field(
        "preparation",
        "section",
        required=False,
        nullable=True,
        fields=(
            Field("bias", "mapping", value=Field("value", low=0.0)),
            Field("measured_bias", "mapping", value=Field("value"), required=False, nullable=True),
            Field("shape", "text"),
            Field("boundary_order", "integer", low=0),
            Field("duration", dimension="time", low=0.0, open_low=True),
            Field("min_gap", dimension="angular_frequency", low=0.0),
        ),
    ),
)
PULSER_BASES = ("ground-rydberg", "digital")


@dataclass(frozen=True, eq=False)
class CountsRun:
    """A measured QEP run: the model and the point it was measured at, and the counts per phase."""

    model: QEPModel
    x: dict[str, float]
    theta: dict[str, float]
    error_signal: dict[str, float]
    beta: float
    scheme: str
    phases: dict[str, list[SettingCounts]]
    readout: ReadoutErrors | None = None
    mitigate: bool = True
    model_file: str | None = None
    #: the preparation's bias estimate per parameter (``bias``), the measured emulated − exact
    #: difference (``measured_bias``), its ramp (``shape``, ``boundary_order``, ``duration`` in µs) and
    #: the smallest gap (``min_gap``, rad/µs); None when the run does not say
    preparation: dict[str, Any] | None = None

    def plan(self) -> MeasurementPlan:
        """The settings of the run, each string of the generators (and of the outputs, with a free
        phase) assigned to the first setting that measures it."""
        return plan_from_settings(
            self.model, [c.bases for c in next(iter(self.phases.values()))], outputs="free" in self.phases
        )

    def gradient(self, mitigate: bool | None = None) -> MeasuredGradient:
        """The QEP gradient with error bars (mitigated if the run says so, or ``mitigate``)."""
        use = self.mitigate if mitigate is None else mitigate
        return gradient_from_counts(
            self.model,
            self.plan(),
            self.phases,
            self.beta,
            self.scheme,
            self.readout if use and self.readout is not None else None,
        )


def plan_from_settings(model: QEPModel, bases: Sequence[str], *, outputs: bool = True) -> MeasurementPlan:
    """A plan over given settings: each needed string goes to the first setting that measures it."""
    needed = model_strings(model, outputs=outputs)
    assigned: list[list[Any]] = [[] for _ in bases]
    for string in needed:
        for k, b in enumerate(bases):
            if MeasurementSetting(b).covers(string):
                assigned[k].append(string)
                break
        else:
            raise MeasurementError(f"settings {', '.join(bases)}: none measures {string.label}")
    settings = tuple(MeasurementSetting(b, tuple(s)) for b, s in zip(bases, assigned, strict=True))
    return MeasurementPlan(model.n_qubits, settings, lower_bound=0)


def _readout(values: dict[str, Any], n_qubits: int, where: str) -> ReadoutErrors:
    """Readout errors from a parsed ``readout`` section: epsilon, epsilon' for every qubit or per qubit."""
    arrays = []
    for key in ("false_positive", "false_negative"):
        item = values[key]
        field = Field(key, "numbers" if isinstance(item, list) else "number")
        parsed = parse_value(item, field, where, MeasurementError, f"readout.{key}")
        items = parsed if isinstance(parsed, list) else [parsed] * n_qubits
        if len(items) != n_qubits:
            raise MeasurementError(f"{where}: readout.{key}: {len(items)} values for {n_qubits} qubits")
        arrays.append(np.array(items))
    try:
        return ReadoutErrors(arrays[0], arrays[1])
    except MeasurementError as exc:
        raise MeasurementError(f"{where}: readout: {exc}") from None


def _phases(
    values: dict[str, Any], n_qubits: int, scheme: str, where: str
) -> dict[str, list[SettingCounts]]:
    """The counts of each phase given in a parsed ``phases`` section: the scheme's phases, each with
    the same settings in the same order, each setting measured at least twice."""
    for name in PHASES[scheme]:
        if name not in values:
            raise MeasurementError(f"{where}: phases: the {scheme} scheme needs a {name!r} phase")
    out: dict[str, list[SettingCounts]] = {}
    reference: list[str] | None = None
    first = ""
    for name, settings in values.items():
        place = f"{where}: phases.{name}"
        parsed = []
        for k, item in enumerate(settings):
            spot = f"{place}[{k}]"
            bases = item["bases"]
            if len(bases) != n_qubits or set(bases) - set("XYZ"):
                raise MeasurementError(f"{spot}.bases: {shown(bases)} is not {n_qubits} letters of X, Y, Z")
            data = SettingCounts.from_bitstrings(bases, item["counts"], f"{spot}.counts")
            if data.shots < 2:
                raise MeasurementError(f"{spot}.counts: {data.shots} shots, at least 2 are needed")
            parsed.append(data)
        bases_list = [c.bases for c in parsed]
        if len(set(bases_list)) != len(bases_list):
            raise MeasurementError(f"{place}: a setting is listed twice")
        if reference is None:
            reference, first = bases_list, name
        elif bases_list != reference:
            raise MeasurementError(
                f"{place}: settings {', '.join(bases_list)} differ from the first phase's "
                f"(phases.{first}: {', '.join(reference)}); every phase reads the same settings"
            )
        out[name] = parsed
    return out


def read_counts_run(run_dir: str | Path) -> CountsRun:
    """Read and validate ``RUN_DIR/run.json`` (or a path to the JSON file itself)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / RUN_FILE
    try:
        document = read_json(path, (SCHEMA, SCHEMA_V1))
    except StorageError as exc:
        raise MeasurementError(str(exc)) from None
    where = str(path)
    values = parse_section(document, _FIELDS, where, MeasurementError)
    reference = values["model"]
    model_file = None
    try:
        if isinstance(reference, str):
            model_path = confined_path(reference, path.parent, f"{where}: model", MeasurementError)
            try:
                model = load_model(model_path)
            except ModelFileError as exc:
                raise MeasurementError(f"{where}: model file: {exc}") from None
            model_file = reference
        elif isinstance(reference, dict):
            model = model_from_document(reference, f"{where}: model")
        else:
            raise MeasurementError(f"{where}: model must be a file name or a qep-model/1 mapping")
    except ModelFileError as exc:
        raise MeasurementError(str(exc)) from None
    names = {"x": model.input_names, "theta": model.parameter_names, "error_signal": model.output_names}
    point = {
        key: parse_value(
            values[key],
            dataclasses.replace(_NAMES, name=key, choices=tuple(valid)),
            where,
            MeasurementError,
        )
        or {}
        for key, valid in names.items()
    }
    # the phases first: their bitstrings check the model's qubit count before anything is sized by it
    phases = _phases(values["phases"], model.n_qubits, values["scheme"], where)
    readout = None if values["readout"] is None else _readout(values["readout"], model.n_qubits, where)
    preparation = values.get("preparation")
    if preparation is not None:
        unknown = sorted(set(preparation["bias"]) - set(model.parameter_names))
        if unknown:
            raise MeasurementError(f"{where}: preparation.bias names {unknown[0]!r}, not a parameter")
    run = CountsRun(
        model=model,
        **point,
        beta=values["beta"],
        scheme=values["scheme"],
        phases=phases,
        readout=readout,
        mitigate=readout is not None and values["readout"]["mitigate"],
        model_file=model_file,
        preparation=preparation,
    )
    try:
        run.plan()
    except MeasurementError as exc:
        raise MeasurementError(f"{where}: {exc}") from None
    return run


def write_counts_run(run_dir: str | Path, run: CountsRun) -> Path:
    """Write ``RUN_DIR/run.json`` atomically (the model embedded unless ``run.model_file`` names it):
    ``qep-counts/2`` with a ``preparation`` section, else ``qep-counts/1``."""
    path = Path(run_dir) / RUN_FILE
    document: dict[str, Any] = {
        "model": run.model_file if run.model_file is not None else model_to_document(run.model),
        "x": run.x,
        "theta": run.theta,
        "error_signal": run.error_signal,
        "beta": run.beta,
        "scheme": run.scheme,
    }
    if run.readout is not None:
        document["readout"] = {**run.readout.describe(), "mitigate": run.mitigate}
    if run.preparation is not None:
        document["preparation"] = _preparation_document(run.preparation)
    document["phases"] = {
        name: [{"bases": c.bases, "counts": c.to_bitstrings()} for c in settings]
        for name, settings in run.phases.items()
    }
    write_json(path, document, SCHEMA if run.preparation is not None else SCHEMA_V1)
    return path


def _preparation_document(preparation: dict[str, Any]) -> dict[str, Any]:
    """The ``preparation`` section in file units (µs, rad/µs in the key suffixes)."""
    out = {k: v for k, v in preparation.items() if k not in ("duration", "min_gap")}
    out["duration_us"] = preparation["duration"]
    out["min_gap_rad_per_us"] = preparation["min_gap"]
    return out


def counts_run_from_phases(
    model: QEPModel,
    point: Mapping[str, Sequence[float]],
    beta: float,
    sampled: Sequence[tuple[str, str, Mapping[str, int]]],
    readout: ReadoutErrors | None = None,
) -> CountsRun:
    """A symmetric run from sampled counts, one ``(phase, bases, counts)`` per preparation (phases
    ``plus``, ``minus`` and optionally ``free``; others are left out). ``point`` gives ``x``,
    ``theta`` and ``error_signal`` as values in the model's order; ``readout``: the errors the counts
    carry (mitigated by the gradient), ``None`` for ideal readout."""
    names = {"x": model.input_names, "theta": model.parameter_names, "error_signal": model.output_names}
    values = {}
    for key, valid in names.items():
        given = list(point.get(key, []))
        if given and len(given) != len(valid):
            raise MeasurementError(f"counts run: {len(given)} values of {key} for {len(valid)} names")
        values[key] = {name: float(v) for name, v in zip(valid, given, strict=False)}
    phases: dict[str, list[SettingCounts]] = {}
    for phase, bases, counts in sampled:
        if phase in ("plus", "minus", "free"):
            where = f"counts run: phase {phase!r}, bases {bases}"
            phases.setdefault(phase, []).append(SettingCounts.from_bitstrings(bases, counts, where))
    for phase in PHASES["symmetric"]:
        if phase not in phases:
            raise MeasurementError(f"counts run: no {phase!r} phase among the sampled preparations")
    return CountsRun(
        model=model,
        beta=beta,
        scheme="symmetric",
        phases=phases,
        readout=readout,
        mitigate=readout is not None,
        x=values["x"],
        theta=values["theta"],
        error_signal=values["error_signal"],
    )


def counts_from_pulser(
    counts: Mapping[str, int],
    atom_order: Sequence[Hashable],
    qubits: Sequence[Hashable] | None = None,
    basis: str = "ground-rydberg",
) -> dict[str, int]:
    """Pulser's sampled counts as our bitstrings.

    Pulser's bitstring character i belongs to atom ``atom_order[i]`` (the register order, the
    ``atom_order`` of its results) and is '1' for |r> (ground-rydberg basis) or |h> (digital basis):
    the excited state, as in our convention (Pulser's state vectors put |r> first; its sampled
    bitstrings do not). ``qubits[q]`` is the atom that is our qubit q (default: ``atom_order``).
    """
    if basis not in PULSER_BASES:
        raise MeasurementError(f"Pulser counts: basis {basis!r} is not one of {', '.join(PULSER_BASES)}")
    order = list(atom_order)
    ours = order if qubits is None else list(qubits)
    if sorted(map(str, ours)) != sorted(map(str, order)) or len(set(order)) != len(order):
        raise MeasurementError(f"Pulser counts: qubits {ours} are not a permutation of the atoms {order}")
    position = {atom: i for i, atom in enumerate(order)}
    take = [position[atom] for atom in ours]
    out: dict[str, int] = {}
    for key, value in counts.items():
        if not isinstance(key, str) or len(key) != len(order) or set(key) - set("01"):
            raise MeasurementError(
                f"Pulser counts: bitstring {key!r} is not {len(order)} characters of 0/1"
            )
        converted = "".join(key[i] for i in take)
        out[converted] = out.get(converted, 0) + int(value)
    return out
