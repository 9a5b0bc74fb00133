"""Pasqal's MPS emulator (``emu-mps``, the optional extra ``emu``) on our Rydberg schedules.

The schedule is compiled to the Pulser sequence of
:func:`~qep_analog.sequences.pulser_export.to_pulser_sequence` (the one pulser-simulation runs) and
evolved by ``emu_mps.MPSBackend`` (TDVP in torch, time step ``dt_ns``, bond dimension up to
``chi_max``, truncation ``precision``). It reads the occupations n_i = ⟨|r⟩⟨r|_i⟩ (our ⟨N_i⟩,
|1⟩ = |r⟩), the correlation matrix ⟨n_i n_j⟩ and bitstrings in the ground-rydberg basis ('1' = |r⟩,
as ours): diagonal observables (strings of Z of at most two qubits) come from these, anything else is
a one-line error. Importing this module imports torch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import emu_mps
import numpy as np
from numpy.typing import NDArray
from pulser.backend import BitStrings, CorrelationMatrix, Occupation

from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.model.pauli import PauliSum
from qep_analog.sequences.pulser_export import to_pulser_sequence
from qep_analog.sequences.schedule import Schedule


@dataclass
class EmuMPSResult:
    """Expectation values, counts, the occupations n_i and the wall time (s) of one emu-mps run."""

    label: str
    expectations: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] | None = None
    occupations: NDArray = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0


def diagonal_value(operator: PauliSum, n: NDArray, nn: NDArray, name: str) -> float:
    """⟨O⟩ of a sum of Z strings of at most two qubits from ⟨n_i⟩ and ⟨n_i n_j⟩ (Z = 1 − 2n)."""
    total = 0.0
    for string, c in operator.items():
        letters = {letter for _, letter in string.factors}
        qubits = [q for q, _ in string.factors]
        if not letters <= {"Z"} or len(qubits) > 2:
            raise ConfigError(
                f"emu-mps: observable {name!r} holds {string}; only Z strings of at most two qubits "
                "are read (occupations and their correlations)"
            )
        if not qubits:
            total += c
        elif len(qubits) == 1:
            total += c * (1.0 - 2.0 * n[qubits[0]])
        else:
            i, j = qubits
            total += c * (1.0 - 2.0 * n[i] - 2.0 * n[j] + 4.0 * nn[i, j])
    return total


def run_emu_mps(
    schedule: Schedule,
    profile: DeviceProfile,
    observables: Mapping[str, PauliSum] | None = None,
    *,
    chi_max: int = 64,
    dt_ns: int = 10,
    precision: float = 1e-5,
    shots: int | None = None,
) -> EmuMPSResult:
    """Evolve the schedule's Pulser sequence with emu-mps from all atoms in |g⟩; ``shots`` bitstrings
    read in Z (one-line errors for another readout or initial state)."""
    if schedule.initial_state.strip("0"):
        raise ConfigError(
            f"emu-mps: schedule {schedule.label!r} starts from {schedule.initial_state}, not |g…g⟩"
        )
    if shots and set(schedule.readout) != {"Z"}:
        raise ConfigError(f"emu-mps: readout {schedule.readout}; counts are read in Z only")
    if not 1 <= chi_max <= 4096 or not 1 <= dt_ns <= 1000:
        raise ConfigError(f"emu-mps: chi_max {chi_max} not in [1, 4096] or dt_ns {dt_ns} not in [1, 1000]")
    started = time.perf_counter()
    sequence = to_pulser_sequence(schedule, profile)
    occupation = Occupation(evaluation_times=[1.0])
    correlation = CorrelationMatrix(evaluation_times=[1.0])
    wanted = [occupation, correlation]
    bits = BitStrings(evaluation_times=[1.0], num_shots=shots) if shots else None
    if bits is not None:
        wanted.append(bits)
    config = emu_mps.MPSConfig(
        dt=dt_ns, precision=precision, max_bond_dim=chi_max, observables=wanted, log_level=logging.ERROR
    )
    results = emu_mps.MPSBackend(sequence, config=config).run()
    n = np.asarray(results.get_result(occupation, 1.0), dtype=float)
    nn = np.real(np.array([[complex(v) for v in row] for row in results.get_result(correlation, 1.0)]))
    expectations = {name: diagonal_value(op, n, nn, name) for name, op in (observables or {}).items()}
    counts = None
    if bits is not None:
        counts = {str(k): int(v) for k, v in results.get_result(bits, 1.0).items()}
    return EmuMPSResult(schedule.label, expectations, counts, n, time.perf_counter() - started)
