"""The unit suffixes of stored keys, as the device modules import them (see :mod:`qep_analog.units`)."""

from qep_analog.units import INTERNAL_UNIT, SUFFIXES, keys_for, with_unit

__all__ = ["INTERNAL_UNIT", "SUFFIXES", "keys_for", "with_unit"]
