"""``sequence plot``: the register and the detuning-map weights (Rydberg), the Rabi frequencies and Stark
shifts (ions), and the controls in lab units (MHz for Rydberg arrays, kHz for ions)."""

from __future__ import annotations

import math

import numpy as np
from conftest import THETA, smooth

from qep_analog.devices.ions import IonControls, realize
from qep_analog.devices.profile import read_profile
from qep_analog.figures import plt
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.phases import qep_phase_schedules
from qep_analog.sequences.plots import in_unit, schedule_figure
from qep_analog.sequences.recipes import load_recipe

TOLERANCE = 1e-12


def test_cyclic_units() -> None:
    assert in_unit(2 * math.pi * 1.5, "MHz") == 1.5
    assert abs(in_unit(2 * math.pi * 2e-3, "kHz") - 2.0) < TOLERANCE


def _bar_heights(ax: object, phase: int, sites: int) -> np.ndarray:
    patches = ax.patches[phase * sites : (phase + 1) * sites]  # type: ignore[attr-defined]
    return np.array([p.get_height() for p in patches])


def test_rydberg_plot_shows_register_weights_and_mhz(chain_model: QEPModel) -> None:
    profile = read_profile("fresnel-like")
    schedules = qep_phase_schedules(chain_model, profile, smooth(4.0, 60), [], THETA, [1.0], 0.1, "Z" * 6)
    fig = schedule_figure(schedules)
    register, weights, rabi, detuning, local = fig.axes[:5]  # then the colour bar
    positions = np.asarray(schedules[0].static["positions"])
    assert np.allclose(register.collections[0].get_offsets(), positions, atol=TOLERANCE)
    assert register.get_xlabel() == "x (µm)"
    for k, schedule in enumerate(schedules):  # free, plus, minus: the nudge is in the weights
        assert np.allclose(_bar_heights(weights, k, 6), schedule.static["local_weights"], atol=TOLERANCE)
    assert not np.allclose(schedules[0].static["local_weights"], schedules[1].static["local_weights"])
    assert rabi.get_ylabel() == "Ω/2π (MHz)" and detuning.get_ylabel() == "δ/2π (MHz)"
    final = schedules[0].final_values()
    drawn = rabi.lines[0].get_ydata()[-1]
    assert abs(drawn - final["rabi"] / (2 * math.pi)) < TOLERANCE
    assert abs(detuning.lines[0].get_ydata()[0] - (-12.6 / (2 * math.pi))) < TOLERANCE
    assert local.get_ylabel() == "Δ/2π (map) (MHz)"
    plt.close(fig)


def test_ion_plot_shows_rabi_and_stark_in_khz() -> None:
    profile = read_profile("yb171-chain")
    n = 4
    couplings = realize(IonControls(np.full(n, 1.5), 30.0), profile).couplings
    fixed = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    trainable = {f"b{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    model = QEPModel(n, trainable, {"m": pauli_sum([(1.0, "Z0")])}, fixed)
    theta = np.array([0.004, 0.002, 0.003, 0.0025])
    schedules = qep_phase_schedules(model, profile, load_recipe("ion-exponential"), [], theta, [1.0], 0.005)
    fig = schedule_figure(schedules)
    rabi, stark, field = fig.axes[0], fig.axes[1], fig.axes[2]
    assert rabi.get_ylabel() == "Ω_i/2π (kHz)" and stark.get_ylabel() == "Stark shift Δ_i/2π (kHz)"
    kilohertz = 2 * math.pi * 1e-3  # rad/µs
    expected = np.asarray(schedules[0].static["rabi"]) / kilohertz
    assert np.allclose(_bar_heights(rabi, 0, n), expected, rtol=TOLERANCE)
    for k, schedule in enumerate(schedules):
        shifts = np.asarray(schedule.static["stark_shifts"]) / kilohertz
        assert np.allclose(_bar_heights(stark, k, n), shifts, rtol=TOLERANCE, atol=TOLERANCE)
    assert field.get_ylabel() == "B/2π (kHz)"
    start = schedules[0].controls["global_field"].values[0] / kilohertz
    assert abs(field.lines[0].get_ydata()[0] - start) < 1e-9 * abs(start)
    assert [ax.get_ylabel() for ax in fig.axes[3:]] == ["coupling scale", "Stark scale"]
    plt.close(fig)
