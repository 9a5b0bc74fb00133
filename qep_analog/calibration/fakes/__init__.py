"""Seeded fake labs for tests and the command line's ``--backend fake-lab``: devices whose true
parameters differ from the nominal profile by hidden, known amounts.

Modules: ``rydberg_lab`` (:class:`FakeRydbergLab`: single atoms, interacting pairs, local detuning
map), ``ion_lab`` (:class:`FakeIonLab`: carrier, sideband and Mølmer–Sørensen experiments, Stark
shifts) and ``schedule_lab`` (whole schedules emulated on a true profile, for both labs and on its
own as :class:`FakeScheduleLab`). They implement the protocols of
:mod:`qep_analog.calibration.backend`; besides tests only ``calibrate --backend fake-lab`` and the
``fake-lab`` training backend (:mod:`qep_analog.backends.configure`, when named) import them.
"""
