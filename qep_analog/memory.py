"""The memory budget: a size given by the user is checked against it before anything is allocated.

Every place where a user-given size (qubits, grid points, scan points, shots, batch sizes, bond
dimensions, time steps) drives an allocation estimates the bytes it would allocate, from the same
shapes the code allocates, and calls :func:`require_memory` first. An estimate beyond the limit is a
one-line :class:`~qep_analog.errors.ConfigError` (exit 2) naming what would be allocated, the
estimate and the limit, instead of a ``MemoryError`` minutes later.

The limit is :data:`DEFAULT_MEMORY_LIMIT` (2 GiB), or the size in ``$QEP_ANALOG_MEMORY_LIMIT``
(``8GiB``, ``512MiB``, ``3G`` or a number of bytes).
"""

from __future__ import annotations

import math
import os
import re

from qep_analog.errors import ConfigError

#: The environment variable that sets the memory limit.
MEMORY_LIMIT_VARIABLE = "QEP_ANALOG_MEMORY_LIMIT"
#: The memory limit (bytes) when ``$QEP_ANALOG_MEMORY_LIMIT`` is unset.
DEFAULT_MEMORY_LIMIT = 2 * 2**30
#: Bytes of one complex128 and one float64 number.
COMPLEX_BYTES = 16
FLOAT_BYTES = 8

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def parse_size(text: str, where: str = MEMORY_LIMIT_VARIABLE) -> int:
    """Bytes of a size written ``8GiB``, ``512MiB``, ``3G``, ``1.5GB`` or ``1000000`` (units are
    binary: K = 2^10 bytes); anything else, or zero, is a one-line :class:`ConfigError`."""
    match = _SIZE.fullmatch(text)
    if match is None or not float(match.group(1)) > 0:
        raise ConfigError(
            f"{where} = {text[:40]!r} is not a positive size (write e.g. 8GiB, 512MiB or a number of bytes)"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def memory_limit() -> int:
    """The memory budget in bytes: ``$QEP_ANALOG_MEMORY_LIMIT`` if set, else 2 GiB."""
    text = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
    return parse_size(text) if text else DEFAULT_MEMORY_LIMIT


def gibibytes(nbytes: float) -> str:
    """``2.98 GiB`` for a number of bytes, however large (``10^3003 GiB`` beyond a float)."""
    try:
        return f"{nbytes / 2**30:.3g} GiB"
    except OverflowError:  # an int too large for a float: 16 * 2**10000
        return f"10^{math.floor(math.log10(nbytes) - 30 * math.log10(2))} GiB"


def require_memory(what: str, nbytes: float) -> None:
    """Refuse (a one-line :class:`ConfigError`) to allocate ``nbytes`` for ``what`` when they exceed
    the memory limit; ``what`` names the object and the size that drives it (``"device map: coupling
    matrices of 10000 qubits"``)."""
    limit = memory_limit()
    if nbytes > limit:
        raise ConfigError(
            f"{what} would need about {gibibytes(nbytes)}, more than the memory limit of "
            f"{gibibytes(limit)} ({_how_to_raise(nbytes)})"
        )


def _how_to_raise(nbytes: float) -> str:
    """``set QEP_ANALOG_MEMORY_LIMIT=64GiB to allow it``: the next power of two GiB above ``nbytes``
    (for an estimate up to 1 PiB; beyond, only the variable is named)."""
    if nbytes > 2**50:
        return f"beyond any machine; the limit is set by {MEMORY_LIMIT_VARIABLE}"
    gib = 2 ** max(0, math.ceil(math.log2(nbytes / 2**30)))
    return f"set {MEMORY_LIMIT_VARIABLE}={gib}GiB to allow it"
