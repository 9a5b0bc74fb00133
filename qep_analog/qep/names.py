"""The names of the QEP difference schemes and of the trainer's gradient estimators.

Kept apart from the modules that compute with them, so that the command line can offer them as
choices without importing the solvers.
"""

from __future__ import annotations

#: nudges ±β (central difference, O(β²) bias) or +β against the free state (O(β) bias)
SCHEMES = ("symmetric", "one-sided")
#: the trainer's gradient: QEP from nudged states, or the exact linear response
ESTIMATORS = ("qep", "exact")
