"""Data files of the tasks (read with importlib.resources): ``rydberg_chain_phases.json``, the
ground-state phase boundaries of the 1D Rydberg chain (see :mod:`qep_analog.tasks.rydberg_phases`)."""
