"""Calibration routines, one module per routine, named after it (``rabi``, ``ramsey``, …).

Each module defines one :class:`~qep_analog.calibration.routine.Routine` and its instance
``ROUTINE``; :mod:`qep_analog.calibration.registry` imports a module only when its routine is asked
for. Shared helpers: ``scans`` (thresholds, scan grids, frequency guesses), ``single_qubit`` (the
detuning-offset conversion, per-site checks and device-wide means) and ``fringes`` (the Ramsey
fringe fit).
"""
