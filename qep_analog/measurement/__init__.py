"""From shots to expectation values to QEP gradients with error bars.

- :mod:`~qep_analog.measurement.settings`: qubit-wise commuting groups of Pauli strings, the product
  bases ("settings") a device measures in;
- :mod:`~qep_analog.measurement.sampling`: bitstrings sampled from state vectors in a setting, with
  readout errors;
- :mod:`~qep_analog.measurement.estimators`: means, standard errors and covariances of Pauli strings
  from counts, with readout-error mitigation;
- :mod:`~qep_analog.measurement.gradient`: QEP gradients with error bars from measured phases, shot
  allocation and the choice of beta;
- :mod:`~qep_analog.measurement.reciprocity`: the reciprocity diagnostic on measured data;
- :mod:`~qep_analog.measurement.counts_file`: the ``qep-counts/1`` run format and Pulser results.
"""
