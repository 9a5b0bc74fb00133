"""Terms switched on at full strength at t = 0: refused unless they commute with the start.

An adiabatic preparation starts in a basis state |b⟩, the ground state of the initial Hamiltonian
H(0). A term that is already on at t = 0 and moves |b⟩ (does not commute with H(0) on it) is a sudden
quench: the state is not the ground state of H(0), and a nudge switched on that way leaves an O(1)
error in the QEP quotient, however slow the rest of the ramp. The platforms' ramps
(``Platform.ramp``) drive every control, nudge included, from its start value along the path s(t),
so a schedule built from a recipe passes; a schedule file edited or written by hand, or a ramp that
would hold a non-diagonal control at its final value, is refused here with one line naming it.
"""

from __future__ import annotations

import numpy as np

from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.model.pauli import PauliSum
from qep_analog.sequences.schedule import Schedule, hamiltonian_terms, initial_state_index

#: an off-diagonal amplitude below this fraction of the term's size is round-off
TOLERANCE = 1e-12


def moved_amplitudes(operator: PauliSum, state: int, n: int) -> dict[int, complex]:
    """⟨b′|operator|b⟩ for every basis state b′ ≠ b the operator reaches from ``state`` = b (an
    index, qubit 0 the most significant bit); empty when b is an eigenstate."""
    out: dict[int, complex] = {}
    for string, coefficient in operator.items():
        flips = string.x_mask(n)
        if not flips:
            continue
        sign = -1 if bin(state & string.z_mask(n)).count("1") % 2 else 1
        out[state ^ flips] = out.get(state ^ flips, 0.0) + coefficient * sign * 1j**string.n_y
    return {k: v for k, v in out.items() if v != 0}


def check_switch_on(schedule: Schedule, profile: DeviceProfile) -> None:
    """Refuse (:class:`ConfigError`, one line) a schedule whose static part or a control that is not
    zero at t = 0 moves the initial basis state (a term on at full strength that does not commute
    with the initial Hamiltonian), naming the control, its value at t = 0 and the Pauli string."""
    n = schedule.n_qubits
    start = initial_state_index(schedule)
    static, terms = hamiltonian_terms(schedule, profile)
    parts = [("the static part", 1.0, static)]
    for name, operator in terms:
        waveform = schedule.controls.get(name)
        if waveform is not None and abs(waveform.values[0]) > TOLERANCE * np.abs(waveform.values).max():
            parts.append((f"control {name!r}", float(waveform.values[0]), operator))
    for what, value, operator in parts:
        size = sum(abs(c) for c in operator.values())
        moved = moved_amplitudes(operator, start, n)
        largest = max(moved.values(), key=abs, default=0.0)
        if abs(largest) > TOLERANCE * max(size, 1e-300):
            string = next(s for s in operator if s.x_mask(n)).label
            at = "" if what == "the static part" else f" = {value:.6g} rad/µs"
            bits = format(start, f"0{n}b")
            raise ConfigError(
                f"schedule {schedule.label!r} on {schedule.device!r}: {what}{at} is on at t = 0 and "
                f"does not commute with the initial Hamiltonian ({string} moves |{bits}⟩): ramp it "
                "from 0 along the path like every other term"
            )
