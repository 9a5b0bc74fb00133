"""Errors and warnings of qep-analog.

Every error names the object at fault, the offending value and the limit it broke, in one line, so
that the command line can print it as it is.
"""

from __future__ import annotations


class QEPError(Exception):
    """Base class of every error qep-analog raises on purpose."""


class ModelFileError(QEPError, ValueError):
    """A model file (``qep-model/1``) or an operator string is malformed."""


class ConfigError(QEPError, ValueError):
    """An experiment configuration or an argument is invalid."""


class PreconditionError(QEPError):
    """A precondition of the method fails, e.g. a degenerate ground state."""


class SolverError(QEPError, RuntimeError):
    """A numerical solver did not converge."""


class StorageError(QEPError):
    """A stored file (checkpoint, metrics, results) is missing, corrupt or of another schema."""


class ProfileError(QEPError, ValueError):
    """A device profile is malformed or breaks a rule of its schema."""


class ConstraintError(QEPError, ValueError):
    """A control or a register breaks a hardware limit of a device profile."""


class MeasurementError(QEPError, ValueError):
    """Measured data (counts, settings, readout errors, a counts file) is malformed or inconsistent."""


class CalibrationError(QEPError, ValueError):
    """A runcard, calibration data, a record or a calibration history is malformed or inconsistent."""


class BundlePending(QEPError):
    """A job bundle was written (or is still incomplete) and waits for the lab's counts."""


class QEPWarning(UserWarning):
    """Base class of warnings qep-analog emits."""


class DamagedLogWarning(QEPWarning):
    """A line of a run's log (``metrics.jsonl``) is damaged and was skipped."""


class SmallGapWarning(QEPWarning):
    """A nudge is not small against the spectral gap: the linear-response estimate is biased."""


class LevelCrossingWarning(SmallGapWarning):
    """A nudge moved another level below the free ground state: the QEP estimate is wrong."""


class RoundOffWarning(QEPWarning):
    """A nudge so small that floating-point round-off of the Hamiltonian eats part of its response."""
