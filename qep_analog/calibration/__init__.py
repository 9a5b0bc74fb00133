"""Calibration: routines (acquire → data on disk → fit with explicit quality → records), the per-device
history of records, the effective profile resolved from it, runcards and a seeded fake lab.

Modules: ``records`` (CalibrationRecord), ``history`` (locked JSON-lines history), ``resolve``
(effective profile), ``data`` (acquired data files), ``routine`` (the routine contract),
``fitting`` (binomial least squares), ``backend`` (what a Rydberg lab must do), ``fake_lab``,
``rydberg_routines``, ``runcard`` and ``runner`` (run a runcard, re-fit a run offline).
"""
