"""Where states are prepared and read.

The contract (``jobs``): phase jobs in — one preparation of a QEP experiment each, at the model's
(x, θ, ν), with readout bases and shots — and counts or exact expectation values out, with what a
run records (backend, version, profile snapshot and calibration records, seeds, wall and device
time). ``registry`` names the backends and imports one only when it is asked for: ``exact``
and ``mps`` (``exact``: ground states of the realised model, as vectors or as matrix-product
states), ``fake-lab`` (``lab``: a lab that runs whole schedules), ``bundle`` (``bundle``: files for a
lab's own control system, counts back), ``pasqal-cloud`` (``cloud``: the schedules on Pasqal's
cloud, a QPU or its emulators, through pasqal-cloud) and ``qutip`` and ``pulser`` (``emulated``: the
recipe's adiabatic schedules on our QuTiP emulator, with the profile's noise when asked, or on
pulser-simulation). ``estimate`` turns a batch's
results into per-sample gradients with error bars.

Also here: exact states sampled as bitstrings for the trainer and the measurement studies
(``sampled``), and the QEP gradient through emulated preparations set against the exact one
(``emulated_gradient``).
"""
