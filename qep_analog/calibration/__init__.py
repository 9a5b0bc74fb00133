"""Calibration: routines (acquire → data on disk → fit with explicit quality → records), the per-device
history of records, the effective profile resolved from it, and runcards. Three rooms:

- the framework, here: ``routine`` (the routine contract), ``data`` (acquired data files),
  ``records`` (CalibrationRecord), ``history`` (locked JSON-lines history), ``resolve`` (effective
  profile), ``runcard`` and ``runner`` (run a runcard, re-fit a run offline), ``fitting`` (binomial
  least squares), ``backend`` (the protocols a lab implements), ``lineshapes`` (the physics models
  routines fit and fake labs draw from), ``ground_state`` (the final ground state of a schedule),
  ``stored_model`` (QEP models and readout errors kept in a data context), ``registry`` (routines by
  name, imported when asked for) and ``plots``;
- ``routines/``: one module per routine, named after it, plus small shared helpers;
- ``fakes/``: the seeded fake labs (Rydberg array, ion chain, schedules on a true profile), for
  tests and the command line's fake-lab backend; production code does not import them.
"""
