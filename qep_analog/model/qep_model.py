"""The QEP model: H(x, theta, nu) = H0 + sum_i x_i B_i + sum_j theta_j A_j + sum_k nu_k O_k."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from qep_analog.errors import ConfigError, ModelFileError
from qep_analog.memory import FLOAT_BYTES, require_memory
from qep_analog.model.operators import OperatorTable, table_bytes
from qep_analog.model.pauli import IDENTITY, PauliString, PauliSum
from qep_analog.schema import Field, parse_value

#: The number of qubits of a model (a model file's ``n_qubits``).
N_QUBITS = Field("n_qubits", "integer", low=1)
#: Largest number of qubits whose operators are compiled for state vectors (2^30 amplitudes).
MAX_STATE_VECTOR_QUBITS = 30
#: Largest magnitude of a coefficient, an input, a parameter or a nudge, and of the norm bound
#: Σ_s |c_s| of a Hamiltonian: squares (norms, energies², residuals) of larger numbers overflow.
MAX_MAGNITUDE = 1e150


@dataclass(frozen=True, eq=False)
class QEPModel:
    """A spin Hamiltonian with named fixed, input, trainable and output terms.

    All terms enter with a plus sign. ``outputs[k]`` is the observable O_k, which is also the term
    that the nudge coupling nu_k multiplies. Every operator is a real Pauli sum, hence Hermitian.
    """

    n_qubits: int
    trainable: Mapping[str, PauliSum]
    outputs: Mapping[str, PauliSum]
    fixed: PauliSum = field(default_factory=PauliSum)
    inputs: Mapping[str, PauliSum] = field(default_factory=dict)
    #: values of inputs and parameters that a caller may leave out (a model file's ``defaults``)
    defaults: Mapping[str, float] = field(default_factory=dict)
    #: the sector of the parity P = Π_q Z_q (+1 or −1) the states are prepared in, for a model whose
    #: every term conserves P (a device that keeps P prepares the lowest state of the sector its
    #: ramp starts in); None: the lowest state of either sector
    parity: int | None = None

    def __post_init__(self) -> None:
        parse_value(self.n_qubits, N_QUBITS, "QEPModel", ModelFileError)
        object.__setattr__(self, "inputs", dict(self.inputs))
        object.__setattr__(self, "trainable", dict(self.trainable))
        object.__setattr__(self, "outputs", dict(self.outputs))
        object.__setattr__(self, "defaults", {k: float(v) for k, v in self.defaults.items()})
        seen: dict[str, str] = {}
        for section in ("inputs", "trainable", "outputs"):
            for name, operator in getattr(self, section).items():
                if name in seen:
                    raise ModelFileError(
                        f"QEPModel: name {name!r} is used in both {seen[name]} and {section}"
                    )
                seen[name] = section
                self._check_operator(f"{section}.{name}", operator)
        self._check_operator("fixed", self.fixed)
        for name, value in self.defaults.items():
            if name not in self.inputs and name not in self.trainable:
                known = ", ".join([*self.inputs, *self.trainable])
                raise ModelFileError(f"QEPModel: default for {name!r}, not an input or parameter ({known})")
            if not np.isfinite(value):
                raise ModelFileError(f"QEPModel: default {name} = {value} is not finite")
            if abs(value) > MAX_MAGNITUDE:
                raise ModelFileError(
                    f"QEPModel: default {name} = {value:g} is beyond the bound |value| <= {MAX_MAGNITUDE:g}"
                )
        self._check_parity()
        for name, operator in self.outputs.items():
            if all(string == IDENTITY for string in operator):
                raise ModelFileError(
                    f"QEPModel: outputs.{name} is {'the identity' if operator else 'empty'}: its "
                    "expectation value is a constant, every gradient of it 0 (an output needs a "
                    "non-identity Pauli string)"
                )
        if not self.trainable:
            raise ModelFileError("QEPModel: trainable has no terms (at least one is required)")
        if not self.outputs:
            raise ModelFileError("QEPModel: outputs has no terms (at least one is required)")

    def _check_parity(self) -> None:
        if self.parity is None:
            return
        if self.parity not in (1, -1) or isinstance(self.parity, bool):
            raise ModelFileError(f"QEPModel: parity {self.parity!r} must be +1, -1 or None")
        object.__setattr__(self, "parity", int(self.parity))
        flip = self._parity_flip()
        if flip is not None:
            where, string = flip
            raise ModelFileError(
                f"QEPModel: parity {self.parity:+d} is not conserved: {where} term "
                f"{string.label!r} flips it (an odd number of X and Y factors)"
            )

    def _parity_flip(self) -> tuple[str, PauliString] | None:
        """(where, term) of the first term that flips the parity Π_q Z_q, or None."""
        sections = [("fixed", self.fixed)] + [
            (f"{section}.{name}", operator)
            for section in ("inputs", "trainable", "outputs")
            for name, operator in getattr(self, section).items()
        ]
        return next(((where, s) for where, operator in sections for s in operator if s.flips_parity), None)

    @property
    def conserves_parity(self) -> bool:
        """Whether every term commutes with the parity Π_q Z_q (an even number of X and Y factors)."""
        return self._parity_flip() is None

    def _check_operator(self, where: str, operator: PauliSum) -> None:
        if not isinstance(operator, PauliSum):
            raise ModelFileError(f"QEPModel: {where} is {type(operator).__name__}, not a PauliSum")
        if operator.max_qubit >= self.n_qubits:
            raise ModelFileError(
                f"QEPModel: {where} acts on qubit {operator.max_qubit} but n_qubits = {self.n_qubits}"
            )
        for string, coefficient in operator.items():
            if not abs(coefficient) <= MAX_MAGNITUDE:
                raise ModelFileError(
                    f"QEPModel: {where} coefficient {coefficient:g} of {string.label!r} is "
                    f"{'beyond the bound' if np.isfinite(coefficient) else 'not finite, bound'} "
                    f"|c| <= {MAX_MAGNITUDE:g} (larger numbers overflow when squared)"
                )

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the compiled operators (megabytes; rebuilt on first use where needed)."""
        state = dict(self.__dict__)
        state.pop("compiled", None)
        return state

    @property
    def input_names(self) -> list[str]:
        return list(self.inputs)

    @property
    def parameter_names(self) -> list[str]:
        return list(self.trainable)

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs)

    @cached_property
    def compiled(self) -> CompiledModel:
        """The operators of the model compiled for state vectors (built once per model; at most
        ``MAX_STATE_VECTOR_QUBITS`` qubits)."""
        return CompiledModel(self)

    def vector(self, section: str, values: Mapping[str, float] | None, default: float) -> NDArray:
        """A dense vector over the names of ``section`` from a name -> value mapping.

        Unknown names raise :class:`ConfigError` listing the valid ones.
        """
        names = list(getattr(self, section))
        out = np.full(len(names), float(default))
        for name, value in (values or {}).items():
            if name not in names:
                raise ConfigError(f"{section}: unknown name {name!r} (valid: {', '.join(names) or 'none'})")
            out[names.index(name)] = float(value)
        return out

    def values(self, section: str, given: Mapping[str, float] | None, what: str) -> NDArray:
        """Every input or parameter of ``section`` from ``given``, else from :attr:`defaults`.

        A name in neither raises :class:`ConfigError` (``what`` names the option that gives them);
        unknown names raise as in :meth:`vector`.
        """
        given = dict(given or {})
        names = list(getattr(self, section))
        out = self.vector(section, given, 0.0)
        missing = [name for name in names if name not in given and name not in self.defaults]
        if missing:
            raise ConfigError(
                f"{what}: {', '.join(missing)} not given and without a default in the model "
                f"(give NAME=VALUE, or state it under defaults: in the model file)"
            )
        for j, name in enumerate(names):
            if name not in given:
                out[j] = self.defaults[name]
        return out


class ModelStrings:
    """The Pauli strings of a model and its coefficient matrices (no state vectors, any size):
    H(x, θ, ν) = Σ_s c_s P_s with c = fixed + x·inputs + θ·trainable + ν·outputs."""

    def __init__(self, model: QEPModel) -> None:
        self.model = model
        strings: set[PauliString] = set(model.fixed)
        for section in (model.inputs, model.trainable, model.outputs):
            for operator in section.values():
                strings.update(operator)
        operators = 1 + len(model.inputs) + len(model.trainable) + len(model.outputs)
        require_memory(
            f"model: coefficient matrices of {operators} operators x {len(strings)} Pauli strings",
            FLOAT_BYTES * operators * len(strings),
        )
        self.strings = sorted(strings)
        self.index = {s: k for k, s in enumerate(self.strings)}
        self.fixed = self._matrix([model.fixed])[0]
        self.inputs = self._matrix(list(model.inputs.values()))
        self.trainable = self._matrix(list(model.trainable.values()))
        self.outputs = self._matrix(list(model.outputs.values()))

    def _matrix(self, operators: list[PauliSum]) -> NDArray:
        out = np.zeros((len(operators), len(self.strings)))
        for row, operator in enumerate(operators):
            for string, coefficient in operator.items():
                out[row, self.index[string]] = coefficient
        return out

    def coefficients(self, x: ArrayLike, theta: ArrayLike, nu: ArrayLike | None = None) -> NDArray:
        """String coefficients of H(x, theta, nu); any argument may carry a leading batch axis."""
        x_arr = np.asarray(x, dtype=float)
        th = np.asarray(theta, dtype=float)
        nu_arr = np.zeros(self.outputs.shape[0]) if nu is None else np.asarray(nu, dtype=float)
        for name, arr, width in (
            ("x", x_arr, self.inputs.shape[0]),
            ("theta", th, self.trainable.shape[0]),
            ("nu", nu_arr, self.outputs.shape[0]),
        ):
            if arr.shape[-1:] != (width,) and not (width == 0 and arr.size == 0):
                raise ConfigError(f"model: {name} has shape {arr.shape}, expected (..., {width})")
        self._check_magnitudes(x_arr, th, nu_arr)
        total = self.fixed + th @ self.trainable + nu_arr @ self.outputs
        if self.inputs.shape[0]:
            total = total + x_arr @ self.inputs
        else:  # no inputs: the batch axes of x (e.g. shape (B, 0)) still count
            total = total + np.zeros((*x_arr.shape[:-1], 1))
        _check_norm(np.asarray(total))
        return np.asarray(total)

    def _check_magnitudes(self, x: NDArray, theta: NDArray, nu: NDArray) -> None:
        """Every input, parameter and nudge finite and within ``MAX_MAGNITUDE`` (one-line error)."""
        model = self.model
        for label, arr, names in (
            ("x", x, model.input_names),
            ("theta", theta, model.parameter_names),
            ("nu", nu, model.output_names),
        ):
            if arr.size == 0:
                continue
            bad = ~(np.abs(arr) <= MAX_MAGNITUDE)
            if bad.any():
                column = int(np.argwhere(bad)[0][-1])
                value = float(arr[np.nonzero(bad)][0])
                name = names[column] if column < len(names) else str(column)
                kind = "beyond the bound" if np.isfinite(value) else "not finite, bound"
                raise ConfigError(
                    f"model: {label} {name} = {value:g} is {kind} |value| <= {MAX_MAGNITUDE:g} "
                    "(larger numbers overflow the Hamiltonian's norm)"
                )

    def generator_values(self, string_values: NDArray) -> NDArray:
        """<A_j> from string expectation values (..., n_strings)."""
        return np.asarray(string_values @ self.trainable.T)

    def output_values(self, string_values: NDArray) -> NDArray:
        """<O_k> from string expectation values (..., n_strings)."""
        return np.asarray(string_values @ self.outputs.T)


def _check_norm(coefficients: NDArray) -> None:
    """The norm bound Σ_s |c_s| of each Hamiltonian within ``MAX_MAGNITUDE`` (one-line error)."""
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.abs(coefficients).sum(axis=-1)
    worst = float(np.max(norms)) if norms.size else 0.0
    if not worst <= MAX_MAGNITUDE:
        raise ConfigError(
            f"model: the Hamiltonian's norm bound sum|c| = {worst:g} is beyond the bound "
            f"{MAX_MAGNITUDE:g} (coefficients times inputs, parameters and nudges overflow when squared)"
        )


class CompiledModel(ModelStrings):
    """The model's strings compiled into one shared :class:`OperatorTable` for state vectors."""

    def __init__(self, model: QEPModel) -> None:
        if model.n_qubits > MAX_STATE_VECTOR_QUBITS:
            raise ConfigError(
                f"compiled model: {model.n_qubits} qubits exceed the state-vector limit of "
                f"{MAX_STATE_VECTOR_QUBITS} (use the MPS backend, qep_analog.solvers.mps)"
            )
        super().__init__(model)
        require_memory(
            f"compiled model: operators of {model.n_qubits} qubits and {len(self.strings)} Pauli strings",
            table_bytes(model.n_qubits, len(self.strings)),
        )
        self.table = OperatorTable(model.n_qubits, self.strings)

    @property
    def dim(self) -> int:
        return self.table.dim

    def hamiltonian(self, x: ArrayLike, theta: ArrayLike, nu: ArrayLike | None = None) -> sp.csr_matrix:
        """H(x, theta, nu) as a sparse matrix."""
        return self.table.sparse(self.coefficients(x, theta, nu))
