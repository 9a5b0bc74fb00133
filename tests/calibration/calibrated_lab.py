"""What the digital-twin tests share: a fake lab calibrated by a noise runcard (its records, the
profile with the calibration in force, the lab's counts of square pulses not used in calibration),
the χ² test of a prediction against those counts, and the checks of what the runcard recovered."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2

from qep_analog.calibration.fakes.ion_lab import HiddenIonParameters
from qep_analog.calibration.fakes.rydberg_lab import HiddenRydbergParameters
from qep_analog.calibration.history import CalibrationHistory
from qep_analog.calibration.in_force import load_profile
from qep_analog.calibration.records import CalibrationRecord
from qep_analog.calibration.runcard import load_runcard
from qep_analog.calibration.runner import run_runcard
from qep_analog.calibration.twin import TwinParameter, twin_parameters
from qep_analog.devices.profile import DeviceProfile

#: shots of each point of the new sequence
SHOTS = 300
#: the twin must pass the χ² test at this p-value, the nominal profile must fail it
P_PASS = 1e-3


class SquarePulseLab(Protocol):
    """A fake lab that plays square pulses (durations µs, programmed Rabi frequencies and detunings
    rad/µs) and returns the counts of '1' per point and site."""

    def square_pulse(
        self, durations: NDArray, rabis: NDArray, detunings: NDArray, shots: int
    ) -> NDArray: ...


@dataclasses.dataclass(frozen=True)
class Calibrated:
    hidden: HiddenRydbergParameters | HiddenIonParameters
    nominal: DeviceProfile
    twin: DeviceProfile  # the profile with the calibration in force
    records: dict[str, CalibrationRecord]  # the run's last record of each FIELD or FIELD@SITE
    counts: NDArray  # the lab's counts of the new sequence, (durations, sites)
    history: Path  # the folder of the history the runcard wrote


def calibrate(
    lab: SquarePulseLab,
    hidden: HiddenRydbergParameters | HiddenIonParameters,
    nominal: DeviceProfile,
    runcard: str,
    folder: Path,
    pulses: tuple[NDArray, float, float],
) -> Calibrated:
    """``lab`` (hiding ``hidden``) calibrated by the five steps of ``runcard`` from ``nominal`` into a
    history under ``folder``, every step good; the profile with the calibration in force, loaded as
    emulate and train load it; and the lab's counts of the new sequence ``pulses`` (durations µs, one
    programmed Rabi frequency and one detuning, rad/µs), :data:`SHOTS` shots each."""
    history = CalibrationHistory(folder / "history", nominal.name)
    outcome = run_runcard(load_runcard(runcard), nominal, lab, folder / "run", history)
    assert [s.result.quality for s in outcome.steps] == ["good"] * 5
    # a later step's record of a field is the one in force (ion-noise: Ramsey's offset after the
    # spectroscopy's)
    records = {r.record_id.split(":", 1)[1]: r for s in outcome.steps for r in s.records}
    durations, rabi, detuning = pulses
    points = durations.size
    counts = lab.square_pulse(durations, np.full(points, rabi), np.full(points, detuning), SHOTS)
    twin = load_profile(nominal.name, history=folder / "history")
    assert twin.snapshot_hash == outcome.profile.snapshot_hash
    return Calibrated(hidden, nominal, twin, records, counts, folder / "history")


def chi2_test(counts: NDArray, p: NDArray) -> tuple[float, int, float]:
    """χ² of binomial counts against predicted probabilities, its degrees of freedom, its p-value."""
    value = float(np.sum((counts - SHOTS * p) ** 2 / (SHOTS * p * (1 - p))))
    return value, p.size, float(chi2.sf(value, p.size))


def check_recovered(calibrated: Calibrated, jitter: float, sites: int) -> dict[str, TwinParameter]:
    """The runcard's jitter, T2*, Rabi scale, detuning offset and per-site readout errors within 4σ
    of the hidden truth (``jitter`` the hidden jitter, ``sites`` the sites read), the jitter and the
    false negatives in force, and the twin's parameters naming the records that set them (the
    interaction scale, in neither noise runcard, none); returns the twin's parameters by name."""
    h, records = calibrated.hidden, calibrated.records
    truth = {
        "amplitude_jitter": jitter,
        "dephasing_time": h.dephasing_time,
        "rabi_scale": h.rabi_scale,
        "detuning_offset": h.detuning_offset,
        **{f"readout_false_positive@{i}": e for i, e in enumerate(h.false_positive)},
        **{f"readout_false_negative@{i}": e for i, e in enumerate(h.false_negative)},
    }
    for key, true in truth.items():
        r = records[key]
        assert abs(r.value - true) < 4 * r.uncertainty, (
            f"{key}: {r.value:.5g} ± {r.uncertainty:.2g}, true {true}"
        )
    noise = calibrated.twin.noise
    assert (
        noise.amplitude_jitter
        == records["amplitude_jitter"].value
        != calibrated.nominal.noise.amplitude_jitter
    )
    assert noise.site_false_negative == tuple(
        records[f"readout_false_negative@{i}"].value for i in range(sites)
    )
    parameters = {p.name: p for p in twin_parameters(calibrated.twin)}
    assert parameters["amplitude_jitter"].records == (records["amplitude_jitter"].record_id,)
    assert len(parameters["site_false_positive"].records) == sites
    assert not parameters["interaction_scale"].calibrated  # not in this runcard
    return parameters


def check_twin_passes(counts: NDArray, p: NDArray) -> None:
    """The twin's prediction ``p`` passes the χ² test on the 116 points (29 durations, 4 sites)."""
    value, dof, p_value = chi2_test(counts, p)
    assert p_value > P_PASS, f"twin: chi2 {value:.1f} on {dof} degrees of freedom, p = {p_value:.3g}"
    assert dof == 116


def check_nominal_fails(counts: NDArray, p: NDArray) -> None:
    """The prediction ``p`` of a profile with the wrong calibration fails the χ² test far beyond
    shot noise (χ² above ten times its degrees of freedom)."""
    value, dof, p_value = chi2_test(counts, p)
    assert p_value < 1e-12 and value > 10 * dof


def with_file_jitter(calibrated: Calibrated) -> DeviceProfile:
    """The twin with everything calibrated but the jitter, which is the profile file's."""
    twin, jitter = calibrated.twin, calibrated.nominal.noise.amplitude_jitter
    return dataclasses.replace(twin, noise=dataclasses.replace(twin.noise, amplitude_jitter=jitter))
