"""Which parts of a QEP model a device realises, and how.

Every operator of a model (fixed part, inputs, trainable generators, output/nudge terms) is sorted by
how the device can set its coefficient:

- ``shot``: a control value within one sequence (Rabi frequency, global detuning, the amplitude of the
  detuning map; an ion's Rabi frequencies, Stark shifts, global field);
- ``sequence``: a new sequence on the same atoms (new detuning-map weights: a Rydberg array has one
  map per sequence, so several independent local-field patterns cannot share it);
- ``register``: a new register (atom positions set the Rydberg couplings);
- ``none``: the device cannot realise it (the term is named, and dropped from the realised model).

Outputs are also sorted by how they are read: directly in the Z basis, or after a basis rotation
(biased under the interactions of a Rydberg array, where rotations are not instantaneous).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qep_analog.devices import ions
from qep_analog.devices.geometry import (
    chain_positions,
    positions_for_couplings,
    register_fit_bytes,
    zz_couplings,
)
from qep_analog.devices.platform import ION, RYDBERG, Platform
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConstraintError
from qep_analog.memory import FLOAT_BYTES, require_memory
from qep_analog.model.pauli import IDENTITY, PauliString, PauliSum
from qep_analog.model.qep_model import QEPModel

LEVELS = ("shot", "sequence", "register", "none")
PATTERN_TOL = 1e-9
#: n x n float64 matrices alive at once while an operator's pair couplings are classified (the
#: pattern, its upper triangle and indices, the symmetry check's temporaries, the geometry's target)
DENSE_MATRICES = 8
#: bytes per pair of a chain's realised couplings (tails added): its Pauli string, float and the
#: entries of the term's and the realised model's dicts (measured with tracemalloc: about 560)
REALISED_PAIR_BYTES = 640


@dataclass(frozen=True)
class TermMapping:
    """How the device sets one operator of the model."""

    section: str
    name: str
    level: str
    controls: str
    note: str = ""


@dataclass(frozen=True)
class ReadoutMapping:
    """How the device measures one output."""

    name: str
    basis: str
    note: str = ""


@dataclass(frozen=True)
class ModelMapping:
    """The mapping report: per operator and per output, the realised model and the dropped terms."""

    device: str
    platform: str
    n_qubits: int
    basis: str
    terms: list[TermMapping]
    readout: list[ReadoutMapping]
    dropped: list[str]
    problems: list[str] = field(default_factory=list)
    realised: QEPModel | None = None

    @property
    def fully_realisable(self) -> bool:
        return not self.dropped and not self.problems

    def to_document(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "platform": self.platform,
            "n_qubits": self.n_qubits,
            "basis": self.basis,
            "fully_realisable": self.fully_realisable,
            "problems": self.problems,
            "terms": [vars(t) for t in self.terms],
            "readout": [vars(r) for r in self.readout],
            "dropped": self.dropped,
        }


@dataclass
class _Parts:
    """An operator split by kind: single-qubit Z and X fields, ZZ and XX pairs, everything else."""

    z: dict[int, float] = field(default_factory=dict)
    x: dict[int, float] = field(default_factory=dict)
    zz: dict[tuple[int, int], float] = field(default_factory=dict)
    xx: dict[tuple[int, int], float] = field(default_factory=dict)
    other: list[PauliString] = field(default_factory=list)


def _split(operator: PauliSum) -> _Parts:
    parts = _Parts()
    for string, coefficient in operator.items():
        letters = "".join(letter for _, letter in string.factors)
        qubits = tuple(q for q, _ in string.factors)
        if letters == "":
            continue
        if letters in ("Z", "X"):
            getattr(parts, letters.lower())[qubits[0]] = coefficient
        elif letters in ("ZZ", "XX"):
            getattr(parts, letters.lower())[(qubits[0], qubits[1])] = coefficient
        else:
            parts.other.append(string)
    return parts


def _vector(values: dict[int, float], n: int) -> np.ndarray:
    out = np.zeros(n)
    for q, c in values.items():
        out[q] = c
    return out


def _matrix(values: dict[tuple[int, int], float], n: int) -> np.ndarray:
    out = np.zeros((n, n))
    for (i, j), c in values.items():
        out[i, j] = out[j, i] = c
    return out


def _global(values: dict[int, float], n: int) -> bool:
    """The same coefficient on every qubit."""
    vector = _vector(values, n)
    return len(values) == n and bool(np.ptp(vector) <= PATTERN_TOL * max(1.0, float(np.abs(vector).max())))


def _names(strings: list[PauliString]) -> str:
    shown = ", ".join(str(s) for s in strings[:3])
    return shown + (f" and {len(strings) - 3} more" if len(strings) > 3 else "")


def _worst(levels: list[str]) -> str:
    return max(levels, key=LEVELS.index) if levels else "shot"


@dataclass
class _Term:
    """What a classifier found for one operator: level, controls, notes, the part the device realises
    (with any tails it adds) and the strings it cannot realise."""

    levels: list[str] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    realised: dict[PauliString, float] = field(default_factory=dict)
    dropped: list[PauliString] = field(default_factory=list)

    def keep(self, operator: PauliSum, strings: list[PauliString]) -> None:
        self.realised.update({s: operator[s] for s in strings})

    def drop(self, strings: list[PauliString], why: str) -> None:
        if strings:
            self.levels.append("none")
            self.dropped += strings
            self.notes.append(f"{why}: {_names(strings)}")


def _z(q: int) -> PauliString:
    return PauliString(((q, "Z"),))


def _x(q: int) -> PauliString:
    return PauliString(((q, "X"),))


def _pair(i: int, j: int, letter: str) -> PauliString:
    return PauliString(((i, letter), (j, letter)))


def _rydberg_term(operator: PauliSum, n: int, profile: DeviceProfile, local: str) -> _Term:
    """``local``: the level of a site-dependent Z field (see :func:`_local_level`)."""
    parts, term = _split(operator), _Term()
    term.drop(parts.other + [_pair(i, j, "X") for i, j in parts.xx], "no Rydberg control for")
    if parts.x:
        if _global(parts.x, n):
            term.levels.append("shot")
            term.controls.append("Rabi frequency")
            term.keep(operator, [_x(q) for q in parts.x])
        else:
            term.drop([_x(q) for q in parts.x], "a site-dependent X field (the drive is global)")
    if parts.z:
        strings = [_z(q) for q in parts.z]
        if _global(parts.z, n):
            term.levels.append("shot")
            term.controls.append("global detuning")
            term.keep(operator, strings)
        elif profile.rydberg.local_detuning is None:
            term.drop(strings, "a site-dependent Z field (the device has no detuning map)")
        else:
            term.levels.append(local)
            term.controls.append("detuning map" + (" weights" if local == "sequence" else " amplitude"))
            term.keep(operator, strings)
    if parts.zz:
        _rydberg_couplings(operator, parts, n, profile, term)
    return term


def _rydberg_couplings(
    operator: PauliSum, parts: _Parts, n: int, profile: DeviceProfile, term: _Term
) -> None:
    """ZZ couplings come from positions; scaling a pattern by θ scales the register by θ^(-1/6), so a
    register realising the pattern once realises θ times it, van der Waals tails included."""
    strings = [_pair(i, j, "Z") for i, j in parts.zz]
    pattern = _matrix(parts.zz, n)
    upper = pattern[np.triu_indices(n, 1)]
    if np.any(upper > 0) and np.any(upper < 0):
        term.drop(strings, "ZZ couplings of both signs (van der Waals couplings share one sign)")
        return
    sign = 1.0 if np.all(upper >= 0) else -1.0
    c6 = profile.rydberg.c6
    term.levels.append("register")
    term.controls.append("atom positions")
    if sign < 0:
        term.notes.append("its parameter must stay negative (van der Waals couplings are repulsive)")
    try:
        positions_for_couplings(sign * pattern, c6, profile.rydberg.dimensions)
        term.keep(operator, strings)
        return
    except ConstraintError:
        pass
    chain = all(j == i + 1 for i, j in parts.zz) and len(parts.zz) == n - 1
    complete = bool(np.all(upper != 0))
    if not chain and not complete:
        # Some pairs are left to the model's other terms (e.g. a sensor's couplings beside a
        # fixed chain): only the whole pattern of a preparation is a register.
        term.keep(operator, strings)
        term.notes.append("with the model's other couplings: each preparation's register is checked")
        return
    if not chain:
        term.levels[-1] = "none"
        term.drop(strings, "no register realises this ZZ pattern")
        return
    positions = chain_positions(sign * np.diag(pattern, 1), c6)
    realised = sign * zz_couplings(positions, c6)
    for i in range(n):
        for j in range(i + 1, n):
            term.realised[_pair(i, j, "Z")] = float(realised[i, j])
    tail = realised[0, 2] / realised[0, 1] if n > 2 else 0.0
    term.notes.append(f"a chain: van der Waals tails added (next-nearest {tail:.3g} of nearest)")


def _ion_term(operator: PauliSum, n: int, profile: DeviceProfile, local: str) -> _Term:
    """``local`` is unused: every ion has its own Stark shift, set within a shot."""
    parts, term = _split(operator), _Term()
    unsupported = parts.other + [_pair(i, j, "Z") for i, j in parts.zz] + [_x(q) for q in parts.x]
    term.drop(unsupported, "no ion-chain control for")
    if parts.z:
        term.levels.append("shot")
        term.controls.append("global field" if _global(parts.z, n) else "Stark shifts")
        term.keep(operator, [_z(q) for q in parts.z])
    if parts.xx:
        _ion_couplings(operator, parts, n, profile, term)
    return term


#: a coupling pattern is realised by Ω_i Ω_j K_ij(μ) when it misses by at most this (relative)
PATTERN_RTOL = 1e-6


def _ion_couplings(operator: PauliSum, parts: _Parts, n: int, profile: DeviceProfile, term: _Term) -> None:
    """XX couplings J_ij = Ω_i Ω_j K_ij(μ): θ times a pattern is the same pattern at √θ·Ω. A pattern of
    that form is realised exactly; a nearest-neighbour chain approximately, with the drive's tails."""
    strings = [_pair(i, j, "X") for i, j in parts.xx]
    pattern = _matrix(parts.xx, n)
    upper = pattern[np.triu_indices(n, 1)]
    nonzero = upper[upper != 0]
    if np.any(nonzero > 0) and np.any(nonzero < 0):
        term.drop(strings, "XX couplings of both signs")
        return
    sign = float(np.sign(nonzero[0]))
    if np.all(upper != 0):
        # θ·pattern is realised with μ above the transverse modes when θ·pattern > 0, and between the
        # COM mode and the next when the COM-dominated kernel matches it
        found: dict[float, float] = {}
        errors = []
        for parameter_sign in (1.0, -1.0):
            couplings = parameter_sign * pattern
            mu = ions.choose_beat_note(couplings, profile)
            fit = ions.rank_one_fit(couplings, ions.coupling_kernel(profile, n, mu))
            if fit.error <= PATTERN_RTOL:
                found[parameter_sign] = mu
            else:
                errors.append(f"J[{fit.pair[0]},{fit.pair[1]}] misses by {fit.error:.2e} (relative)")
        if not found:
            term.drop(strings, f"XX pattern is not Ω_i Ω_j K_ij(μ) ({errors[0]})")
            return
        if len(found) == 1:
            which = "positive" if 1.0 in found else "negative"
            term.notes.append(f"its parameter must stay {which} (the sign the chain's kernel gives)")
        beat_note = found.get(1.0, found.get(-1.0, 0.0))
        term.levels.append("shot")
        term.controls.append(f"Rabi frequencies Ω_i, μ = 2π·{beat_note / (2 * np.pi):.4g} MHz")
        term.keep(operator, strings)
        return
    chain = all(j == i + 1 for i, j in parts.xx) and len(parts.xx) == n - 1
    if not chain:
        # Some pairs are left to the model's other terms (e.g. a sensor ion's couplings beside a
        # driven chain): only the whole pattern of a preparation is a set of Rabi frequencies.
        term.levels.append("shot")
        term.controls.append("Rabi frequencies Ω_i and the beat note")
        term.keep(operator, strings)
        term.notes.append("with the model's other couplings: each preparation's drive is checked")
        return
    # The shortest-range couplings the profile allows: μ at the top of its range.
    beat_note = profile.ions.beat_note_detuning[1]
    kernel = ions.coupling_kernel(profile, n, beat_note)
    target = np.log(sign * np.diag(pattern, 1) / np.diag(kernel, 1))
    design = np.eye(n - 1, n) + np.eye(n - 1, n, k=1)  # log Ω_i + log Ω_{i+1}
    rabi = np.exp(np.linalg.lstsq(design, target, rcond=None)[0])
    realised = sign * rabi[:, None] * rabi[None, :] * kernel
    for i in range(n):
        for j in range(i + 1, n):
            term.realised[_pair(i, j, "X")] = float(realised[i, j])
    term.levels.append("shot")
    term.controls.append(f"Rabi frequencies Ω_i, μ = 2π·{beat_note / (2 * np.pi):.4g} MHz")
    tail = realised[0, 2] / realised[0, 1] if n > 2 else 0.0
    term.notes.append(f"a chain: the drive's tails added (next-nearest {tail:.3g} of nearest)")


def hadamard_rotated(model: QEPModel) -> QEPModel:
    """The model in the basis rotated by a Hadamard on every qubit: X ↔ Z, Y → −Y."""
    swap = {"X": "Z", "Z": "X", "Y": "Y"}

    def rotate(operator: PauliSum) -> PauliSum:
        out = {}
        for string, c in operator.items():
            factors = tuple((q, swap[letter]) for q, letter in string.factors)
            out[PauliString(factors)] = -c if string.n_y % 2 else c
        return PauliSum(out)

    return QEPModel(
        model.n_qubits,
        {k: rotate(v) for k, v in model.trainable.items()},
        {k: rotate(v) for k, v in model.outputs.items()},
        rotate(model.fixed),
        {k: rotate(v) for k, v in model.inputs.items()},
    )


#: how each platform's device realises one operator
_TERM_MAPPERS = {RYDBERG: _rydberg_term, ION: _ion_term}


def _readout(name: str, operator: PauliSum, platform: Platform) -> ReadoutMapping:
    letters = "".join(sorted({letter for string in operator for _, letter in string.factors}))
    if not platform.needs_rotation(letters):
        return ReadoutMapping(name, platform.native_basis)
    if platform.rotation_biased:
        return ReadoutMapping(name, "rotation", "X/Y need a rotation under interactions: biased readout")
    single = all(len({letter for _, letter in string.factors}) <= 1 for string in operator)
    if single:
        return ReadoutMapping(name, "rotation", "global rotation before readout")
    return ReadoutMapping(name, "rotation", "individual rotations before readout (addressed beams)")


def mapping_bytes(model: QEPModel, profile: DeviceProfile, rotate: bool | None = None) -> int:
    """The bytes :func:`map_model` allocates at its peak, from the model's size and coupling patterns:
    n x n matrices for every operator's pairs; for a chain of nearest-neighbour couplings the n(n-1)/2
    realised pairs (the device adds tails to every pair); for a pattern coupling every pair, the
    least-squares problem over all pairs (a Rydberg register's fit, an ion drive's design)."""
    n = model.n_qubits
    pairs = n * (n - 1) // 2
    platform = profile.platform_spec
    native = "zz" if platform == RYDBERG else "xx"
    letters = {None: ("zz", "xx"), False: (native,), True: ("xx" if native == "zz" else "zz",)}[rotate]
    operators = [model.fixed, *model.inputs.values(), *model.trainable.values(), *model.outputs.values()]
    peak = DENSE_MATRICES * FLOAT_BYTES * n * n + 3 * FLOAT_BYTES * len(operators) * n
    for operator in operators:
        parts = _split(operator)
        for letter in letters:
            pattern = getattr(parts, letter)
            if len(pattern) == n - 1 and all(j == i + 1 for i, j in pattern):
                peak += REALISED_PAIR_BYTES * pairs
            elif len(pattern) == pairs and n > 2 and platform == RYDBERG:
                peak += register_fit_bytes(n, profile.rydberg.dimensions)
            elif len(pattern) == pairs and n > 2:
                peak += 2 * FLOAT_BYTES * pairs * n  # the drive's rank-one fit: its design, copied
    return peak


def map_model(model: QEPModel, profile: DeviceProfile, rotate: bool | None = None) -> ModelMapping:
    """Sort every operator of ``model`` by how ``profile``'s device realises it (see the module doc).

    ``rotate``: map the Hadamard-rotated model (X ↔ Z). ``None`` tries both and keeps the one that
    drops fewer terms; an ion chain's native XX + Z model is a Rydberg array's ZZ + X one rotated.
    What it would allocate is checked against the memory limit first (:func:`mapping_bytes`).
    """
    require_memory(
        f"mapping a model of {model.n_qubits} qubits onto {profile.label}",
        mapping_bytes(model, profile, rotate),
    )
    if rotate is None:
        plain, rotated = map_model(model, profile, False), map_model(model, profile, True)
        return rotated if len(rotated.dropped) < len(plain.dropped) else plain
    mapped = hadamard_rotated(model) if rotate else model
    n = model.n_qubits
    problems = []
    platform = profile.platform_spec
    limit = profile.capabilities.max_sites
    if n > limit:
        problems.append(f"{n} qubits exceed the device's {limit} {platform.particles}")
        # Map the rest as if the device were large enough, so the report stays informative.
        profile = dataclasses.replace(profile, capabilities=profile.capabilities.with_max_sites(n))
    operators: list[tuple[str, str, PauliSum]] = [("fixed", "H0", mapped.fixed)]
    for section in ("inputs", "trainable", "outputs"):
        operators += [(section, name, op) for name, op in getattr(mapped, section).items()]
    local = _local_level([_split(op) for _, _, op in operators], n)
    terms, dropped = [], []
    kept: dict[str, dict[str, PauliSum]] = {"fixed": {}, "inputs": {}, "trainable": {}, "outputs": {}}
    for section, name, operator in operators:
        if not operator:  # a zero operator needs no control; its name stays (vectors keep their order)
            kept[section][name] = PauliSum()
            continue
        term = _TERM_MAPPERS[platform](operator, n, profile, local)
        constant = dict(operator.items()).get(IDENTITY, 0.0)
        if constant:  # a constant needs no control; an output keeps it (⟨n⟩ = ⟨(1 − Z)/2⟩)
            term.realised[IDENTITY] = constant
        level = _worst(term.levels)
        terms.append(
            TermMapping(section, name, level, ", ".join(term.controls) or "-", "; ".join(term.notes))
        )
        dropped += [f"{section}.{name}: {s}" for s in sorted(term.dropped)]
        kept[section][name] = PauliSum(term.realised)
    readout = [_readout(name, op, platform) for name, op in mapped.outputs.items()]
    realised = None
    # a parameter is kept when realised, or when its operator is zero as written (no control needed)
    trainable = {k: v for k, v in kept["trainable"].items() if v or not mapped.trainable[k]}
    outputs = {k: v for k, v in kept["outputs"].items() if v}
    if trainable and outputs and not problems:
        realised = QEPModel(n, trainable, outputs, kept["fixed"].get("H0", PauliSum()), kept["inputs"])
    basis = "Hadamard-rotated (X <-> Z)" if rotate else "as written"
    return ModelMapping(
        profile.label, profile.platform, n, basis, terms, readout, dropped, problems, realised
    )


def _local_level(operators: list[_Parts], n: int) -> str:
    """``shot`` when every varying site-dependent Z pattern, and the static one, are parallel after
    removing their uniform part (one detuning map serves them all); ``sequence`` otherwise."""
    patterns = []
    for parts in operators:
        # The interactions shift the fields (h_i = δ_i/2 − Σ_j J_ij): their share is a pattern too.
        vector = _vector(parts.z, n) + 2 * _matrix(parts.zz, n).sum(axis=1)
        centred = vector - vector.mean()
        if np.abs(centred).max(initial=0.0) > PATTERN_TOL:
            patterns.append(centred / np.abs(centred).max())
    if len(patterns) <= 1:
        return "shot"
    rank = np.linalg.matrix_rank(np.array(patterns), tol=1e-8)
    return "shot" if rank <= 1 else "sequence"


def mapping_table(report: ModelMapping) -> str:
    """A plain-text table of the report, for the command line."""
    lines = [
        f"device {report.device} ({report.platform}), model of {report.n_qubits} qubits, "
        f"basis {report.basis}"
    ]
    lines += [f"problem: {p}" for p in report.problems]
    width = max([len(f"{t.section}.{t.name}") for t in report.terms] + [9])
    lines.append(f"{'operator':<{width}}  {'realised':<9}  {'controls':<36}  note")
    for t in report.terms:
        lines.append(f"{t.section + '.' + t.name:<{width}}  {t.level:<9}  {t.controls:<36}  {t.note}")
    for r in report.readout:
        lines.append(f"readout {r.name}: {r.basis}" + (f" ({r.note})" if r.note else ""))
    if report.dropped:
        lines.append(f"not realisable, dropped from the realised model: {len(report.dropped)} terms")
        lines += [f"  {d}" for d in report.dropped[:10]]
        if len(report.dropped) > 10:
            lines.append(f"  ... and {len(report.dropped) - 10} more")
    lines.append("fully realisable" if report.fully_realisable else "not fully realisable")
    return "\n".join(lines)
