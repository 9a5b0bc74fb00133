"""Where states are prepared and read: exact states sampled as bitstrings (``sampled``), and the QEP
gradient through emulated adiabatic preparations set against the exact one (``emulated_gradient``)."""
