"""Our limits and Pulser's own Register/Sequence validation accept and reject the same controls."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli
from pulser.devices import AnalogDevice, Device, VirtualDevice

from qep_analog.cli import EXIT_BAD_INPUT
from qep_analog.devices.geometry import lattice_positions
from qep_analog.devices.profile import read_profile, realised_duration
from qep_analog.devices.pulser_device import constant_sequence, to_pulser_device
from qep_analog.devices.rydberg import RydbergControls, check_controls
from qep_analog.errors import ConfigError, ConstraintError, ProfileError

ROOT = Path(__file__).resolve().parents[2]
PAIR = np.array([[-3.0, 0.0], [3.0, 0.0]])
OK = RydbergControls(PAIR, rabi=1.0, detuning=0.0)
TWO_PI = 2 * np.pi

EDGE_CASES = {
    "nominal": OK,
    "spacing at the limit": dataclasses.replace(OK, positions=PAIR * 5 / 6),
    "spacing below the limit": dataclasses.replace(OK, positions=PAIR * 4.9 / 6),
    "radius at the limit": dataclasses.replace(OK, positions=np.array([[-46.0, 0.0], [0.0, 0.0]])),
    "radius beyond the limit": dataclasses.replace(OK, positions=np.array([[-46.5, 0.0], [0.0, 0.0]])),
    "100 atoms": dataclasses.replace(OK, positions=lattice_positions(10, 10, 5.0)),
    "101 atoms": dataclasses.replace(OK, positions=lattice_positions(11, 10, 5.0)[:101]),
    "3D register on a 2D device": dataclasses.replace(OK, positions=np.array([[0, 0, 0], [0, 0, 6.0]])),
    "Rabi at the limit": dataclasses.replace(OK, rabi=TWO_PI * 2),
    "Rabi above the limit": dataclasses.replace(OK, rabi=TWO_PI * 2.02),
    "detuning at the limit": dataclasses.replace(OK, detuning=-TWO_PI * 10),
    "detuning above the limit": dataclasses.replace(OK, detuning=TWO_PI * 10.1),
    "local detuning at the limit": dataclasses.replace(
        OK, local_weights=np.array([1.0, 0.3]), local_amplitude=-TWO_PI * 10
    ),
    "local detuning below the bottom": dataclasses.replace(
        OK, local_weights=np.array([1.0, 0.3]), local_amplitude=-TWO_PI * 10.1
    ),
    "local detuning below the bottom, small weights": dataclasses.replace(
        OK, local_weights=np.array([0.5, 0.3]), local_amplitude=-TWO_PI * 19
    ),
    "local detuning positive": dataclasses.replace(
        OK, local_weights=np.array([1.0, 0.0]), local_amplitude=1.0
    ),
    "weight above one": dataclasses.replace(OK, local_weights=np.array([1.5, 0.0]), local_amplitude=-1.0),
}


def _pulser_accepts(controls: RydbergControls, duration: float = 1.0) -> bool:
    try:
        constant_sequence(controls, read_profile("fresnel-like"), duration_us=duration)
    except (ValueError, TypeError, RuntimeError):
        return False
    return True


def _we_accept(controls: RydbergControls) -> bool:
    try:
        check_controls(controls, read_profile("fresnel-like"))
    except ConstraintError:
        return False
    return True


@pytest.mark.parametrize("case", EDGE_CASES)
def test_pulser_and_we_agree(case: str) -> None:
    controls = EDGE_CASES[case]
    assert _we_accept(controls) == _pulser_accepts(controls)


def test_the_table_has_both_verdicts() -> None:
    verdicts = [_we_accept(c) for c in EDGE_CASES.values()]
    assert sum(verdicts) >= 5 and len(verdicts) - sum(verdicts) >= 8


def test_profiles_convert_to_pulser_devices() -> None:
    fresnel = to_pulser_device(read_profile("fresnel-like"))
    assert isinstance(fresnel, Device)
    assert fresnel.interaction_coeff == pytest.approx(read_profile("fresnel-like").rydberg.c6, rel=1e-12)
    channel = fresnel.channels["rydberg_global"]
    assert channel.max_amp == pytest.approx(TWO_PI * 2) and channel.clock_period == 4
    assert fresnel.dmm_objects[0].bottom_detuning == pytest.approx(-TWO_PI * 10)
    aquila = to_pulser_device(read_profile("aquila-like"))
    assert aquila.dmm_objects == ()  # Pulser's detuning map takes negative values only
    assert isinstance(to_pulser_device(read_profile("fresnel-like", relaxed=True)), VirtualDevice)


@pytest.mark.parametrize("duration", [0.012, 0.016, 1.0, 5.996, 6.0, 6.004, 6.1])
def test_durations_agree(duration: float) -> None:
    profile = read_profile("fresnel-like")
    try:
        realised = realised_duration(profile, duration)
    except ConstraintError:
        ours = False
    else:
        ours = True
        assert realised == pytest.approx(duration)  # these are clock multiples
    assert ours == _pulser_accepts(OK, duration)


def test_durations_round_up_to_the_clock() -> None:
    profile = read_profile("fresnel-like")
    assert realised_duration(profile, 1.002) == pytest.approx(1.004, abs=1e-12)
    with pytest.raises(ConstraintError, match=r"duration 6\.004 µs exceeds the limit 6 µs"):
        realised_duration(profile, 6.001)
    assert realised_duration(read_profile("yb171-chain"), 2500.005) == pytest.approx(2500.01, abs=1e-9)


@pytest.mark.parametrize(
    ("duration", "rule"),
    [(1e308, "duration 1e\\+308 µs is beyond counting in clock ticks"), (math.inf, "inf µs is not finite"),
     (math.nan, "nan µs is not finite")],
)  # fmt: skip
def test_durations_beyond_any_clock_are_one_line(duration: float, rule: str) -> None:
    """A duration whose tick count overflows (or is not a number) is refused, not an OverflowError."""
    with pytest.raises(ConstraintError, match=rule):
        realised_duration(read_profile("fresnel-like"), duration)


def _analog_like(folder: Path, pulser_device: str = "AnalogDevice") -> Path:
    """Fresnel-like with the limits of Pulser's AnalogDevice (no detuning map, 80 atoms within 38 µm),
    naming the device it mirrors."""
    text = (ROOT / "devices" / "fresnel-like.yaml").read_text(encoding="utf-8")
    text = text.replace("name: fresnel-like", "name: analog-like")
    text = text[: text.index("  local_detuning:")] + text[text.index("  min_spacing_um:") :]
    text = text.replace("max_atoms: 100 ", "max_atoms: 80 ").replace(
        "max_radius_um: 46.0", "max_radius_um: 38.0"
    )
    text = text.replace("  shot_overhead_ms:", f"  pulser_device: {pulser_device}\n  shot_overhead_ms:")
    path = folder / "analog-like.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_profile_naming_a_real_device_is_built_on_it(tmp_path: Path) -> None:
    profile = read_profile(_analog_like(tmp_path))
    assert to_pulser_device(profile) is AnalogDevice
    assert isinstance(to_pulser_device(profile.relaxed()), VirtualDevice)  # emulation keeps the virtual one
    # the same device from its specifications as JSON (what a cloud gives)
    (tmp_path / "specs.json").write_text(AnalogDevice.to_abstract_repr(), encoding="utf-8")
    from_json = read_profile(_analog_like(tmp_path, "specs.json"))
    assert to_pulser_device(from_json) == AnalogDevice


def test_the_register_sits_on_the_devices_calibrated_layout(tmp_path: Path) -> None:
    profile = read_profile(_analog_like(tmp_path))
    on_traps = RydbergControls(np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 0.0]]), rabi=1.0, detuning=0.0)
    sequence = constant_sequence(on_traps, profile, duration_us=1.0)
    layout = sequence.register.layout
    assert sequence.device.name == "AnalogDevice" and layout == AnalogDevice.pre_calibrated_layouts[0]
    assert list(sequence.register.qubit_ids) == ["q0", "q1", "q2"]  # our order kept
    assert np.allclose(np.array(list(sequence.register.qubits.values())), on_traps.positions)
    off = dataclasses.replace(on_traps, positions=np.array([[-5.0, 0.0], [5.5, 0.0], [0.0, 0.0]]))
    message = r"atom q1 at \(5\.5, 0\) µm is 0\.5 µm from the nearest trap of its calibrated layout"
    with pytest.raises(ConfigError, match=message):
        constant_sequence(off, profile, duration_us=1.0)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("max_atoms: 80 ", "max_atoms: 100 "), "max_atoms 100 exceeds its max_atom_num 80"),
        (
            ("max_radius_um: 38.0", "max_radius_um: 46.0"),
            "max_radius 46 µm exceeds its max_radial_distance 38 µm",
        ),
        (
            ("max_rabi_MHz: 2.0", "max_rabi_MHz: 2.5"),
            r"max_rabi 15\.708 rad/µs exceeds its rydberg_global\.max_amp",
        ),
        (("rydberg_level: 60", "rydberg_level: 70"), "rydberg_level 70 differs from its 60"),
        (
            ("min_spacing_um: 5.0", "min_spacing_um: 4.0"),
            "min_spacing 4 µm is below its min_atom_distance 5 µm",
        ),
        (
            (
                "  min_spacing_um:",
                "  local_detuning: {sign: negative, max_per_site_MHz: 5}\n  min_spacing_um:",
            ),
            r"local_detuning: it has no detuning map modulator \(DMM\)",
        ),
        (
            ("pulser_device: AnalogDevice", "pulser_device: NoSuchDevice"),
            "neither a device of pulser.devices",
        ),
        (("pulser_device: AnalogDevice", "pulser_device: gone.json"), "gone.json: no such file"),
    ],
)
def test_a_profile_looser_than_its_device_is_a_one_line_error(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = _analog_like(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert edit[0] in text
    path.write_text(text.replace(*edit), encoding="utf-8")
    with pytest.raises(ProfileError, match=message) as caught:
        to_pulser_device(read_profile(path))
    assert "\n" not in str(caught.value) and "analog-like" in str(caught.value)


def test_device_validate_checks_the_mirrored_device(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = _analog_like(tmp_path)
    status, out, _ = run_cli(capsys, ["device", "validate", str(path)])
    assert status == 0 and out.rstrip().endswith("within the limits of Pulser's AnalogDevice")
    path.write_text(
        path.read_text(encoding="utf-8").replace("max_atoms: 80 ", "max_atoms: 81 "), encoding="utf-8"
    )
    status, out, err = run_cli(capsys, ["device", "validate", str(path)])
    assert status == EXIT_BAD_INPUT and out == "" and err.count("\n") == 1
    assert "mirrors Pulser's AnalogDevice: max_atoms 81 exceeds its max_atom_num 80" in err


@pytest.mark.parametrize(("modulation", "tolerance"), [(False, 3e-3), (True, 7e-3)])
def test_an_x_export_on_analog_device_reads_what_the_bias_estimate_says(
    tmp_path: Path, modulation: bool, tolerance: float
) -> None:
    """On AnalogDevice Pulser puts 340 ns between the ramp and the π/2 pulse (its channel's rise
    time): the atoms (10 µm apart, U = 0.87 rad/µs) interact meanwhile, and the bias estimate
    includes it. pulser-simulation's final state of the export matches the estimated read to 1.4e-3
    (the 1 ns sampling, as on a custom device) and, with the channel's modulation, which the estimate
    does not model, to 3.5e-3 (measured; tolerances twice that)."""
    from pulser.backend import StateResult
    from pulser_simulation import QutipBackendV2, QutipConfig

    from qep_analog.emulation.pulser_backend import from_pulser_basis
    from qep_analog.emulation.qutip_emulator import QutipEmulator
    from qep_analog.emulation.readout_bias import readout_bias, rotated_reads
    from qep_analog.sequences.pulser_export import readout_sequence
    from qep_analog.sequences.schedule import Schedule
    from qep_analog.sequences.waveforms import Waveform

    profile = read_profile(_analog_like(tmp_path))
    t = np.linspace(0.0, 1.2, 13)
    controls = {
        "rabi": Waveform(t, TWO_PI * np.sin(np.pi * t / 2.4) ** 2),
        "detuning": Waveform(t, TWO_PI * (-3 + 2 * t / 1.2)),
    }
    static = {"positions": [[-10.0, 0.0], [0.0, 0.0], [10.0, 0.0]], "phase": 0.0}
    schedule = Schedule("rydberg", "analog-like", controls, static, "XXX")
    prepared = QutipEmulator(profile).run(schedule).state
    bias = readout_bias(schedule, profile, prepared)
    assert bias is not None and bias.rotation.delay == pytest.approx(0.34)
    played, _ = rotated_reads(prepared, schedule, profile, bias.rotation)
    config = QutipConfig(
        observables=[StateResult(evaluation_times=[1.0])], sampling_rate=1.0, with_modulation=modulation
    )
    final = QutipBackendV2(readout_sequence(schedule, profile), config=config).run().final_state
    state = from_pulser_basis(final.to_qobj().full())
    bits = (np.arange(8)[:, None] >> np.arange(2, -1, -1)[None, :]) & 1
    read = np.abs(state) ** 2 @ (1 - 2 * bits)
    assert np.abs(read - played).max() < tolerance
