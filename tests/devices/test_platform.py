"""The platform objects: resolution by profile and by name, agreement with the direct calls into
devices/rydberg.py and devices/ions.py (and with the name comparisons they replace), and the rule
that code outside qep_analog/devices/ asks the platform object instead of comparing names."""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from qep_analog.calibration.routines import qep_gradient_check, ramp_duration_scan
from qep_analog.calibration.routines.local_field_map import LocalFieldParameters, local_amplitude
from qep_analog.calibration.routines.single_qubit import detuning_per_offset
from qep_analog.cli.sequence import EXPORTS
from qep_analog.devices import ions, mapping, rydberg
from qep_analog.devices.geometry import zz_couplings
from qep_analog.devices.platform import (
    ION,
    PLATFORMS,
    RYDBERG,
    IonPlatform,
    LocalField,
    Platform,
    RydbergPlatform,
    platform_of,
)
from qep_analog.devices.profile import (
    CAPABILITIES,
    DeviceProfile,
    IonCapabilities,
    RydbergCapabilities,
    read_profile,
)
from qep_analog.devices.profile import PLATFORMS as PROFILE_PLATFORMS
from qep_analog.errors import ConstraintError, ProfileError
from qep_analog.model.pauli import pauli_sum
from qep_analog.sequences import ion_export, schedule
from qep_analog.sequences.recipes import DEFAULT_RECIPES, load_recipe

PACKAGE = Path(__file__).resolve().parents[2] / "qep_analog"
RYDBERG_PROFILES = ("fresnel-like", "aquila-like")
ION_PROFILES = ("yb171-chain", "ca40-chain")
SHIPPED = RYDBERG_PROFILES + ION_PROFILES

#: modules outside devices/ allowed to compare a platform name or test a controls/capabilities
#: class by hand, with the reason (none are needed today)
ALLOWED: dict[str, str] = {}
NAMES = {"rydberg", "ion"}
PLATFORM_CLASSES = {"RydbergControls", "IonControls", "RydbergCapabilities", "IonCapabilities"}


def _rydberg_model(profile: DeviceProfile) -> rydberg.IsingModel:
    """A three-atom chain 7 µm apart with uneven fields (a detuning map is needed)."""
    positions = np.array([[-7.0, 0.0], [0.0, 0.0], [7.0, 0.0]])
    couplings = zz_couplings(positions, profile.calibration.interaction_scale * profile.rydberg.c6)
    return rydberg.IsingModel(np.array([0.5, -0.3, 0.2]), 1.1, couplings)


def _ion_beat_note(profile: DeviceProfile, n: int = 3) -> float:
    return float(ions.chain_modes(profile, n).frequencies.max()) + 2 * np.pi * 0.02


def _ion_model(profile: DeviceProfile, n: int = 3) -> ions.IonSpinModel:
    """The trap's own coupling pattern 2π·20 kHz above the transverse modes, uneven fields."""
    kernel = ions.coupling_kernel(profile, n, _ion_beat_note(profile, n))
    return ions.IonSpinModel(np.array([0.01, -0.02, 0.005]), 5e-4 * kernel / kernel[0, 1])


def _ion_target(profile: DeviceProfile) -> ions.IonControls:
    """The ion model's controls at its beat note."""
    return ions.translate(_ion_model(profile), profile, beat_note=_ion_beat_note(profile))


def _same_controls(a: object, b: object) -> None:
    assert type(a) is type(b)
    for f in dataclasses.fields(a):  # type: ignore[arg-type]
        np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name), err_msg=f.name)


# ---------------------------------------------------------------------------- resolution


@pytest.mark.parametrize("name", SHIPPED)
def test_a_profile_resolves_to_its_platform(name: str) -> None:
    profile = read_profile(name)
    platform = platform_of(profile)
    assert platform is profile.platform_spec is platform_of(profile.platform)
    assert platform.name == profile.platform
    assert platform is (RYDBERG if name in RYDBERG_PROFILES else ION)
    assert isinstance(profile.capabilities, platform.capabilities_type)
    assert platform_of(profile.relaxed()) is platform


def test_names_resolve_and_platforms_are_their_own() -> None:
    assert platform_of("rydberg") is RYDBERG and isinstance(RYDBERG, RydbergPlatform)
    assert platform_of("ion") is ION and isinstance(ION, IonPlatform)
    assert platform_of(ION) is ION
    assert list(PLATFORMS) == list(PROFILE_PLATFORMS) == list(CAPABILITIES) == ["rydberg", "ion"]
    assert {p.capabilities_type for p in PLATFORMS.values()} == set(CAPABILITIES.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        RYDBERG.name = "ion"  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["qubitz", "Rydberg", ""])
def test_an_unknown_platform_is_one_line_listing_the_known_ones(bad: str) -> None:
    with pytest.raises(ProfileError) as caught:
        platform_of(bad)
    message = str(caught.value)
    assert message == f"platform {bad!r}: unknown (known: rydberg, ion)"
    assert "\n" not in message


# ---------------------------------------------------------------------------- the old branches


@pytest.mark.parametrize("name", SHIPPED)
def test_constants_agree_with_the_branches_they_replace(name: str) -> None:
    profile = read_profile(name)
    platform = profile.platform_spec
    is_ion = profile.platform == "ion"
    assert platform.detuning_per_offset == detuning_per_offset(profile) == (2.0 if is_ion else 1.0)
    assert platform.represents_crosstalk is is_ion
    assert platform.rotation_biased is (profile.platform == "rydberg")
    assert platform.particles == ("ions" if is_ion else "atoms")
    assert platform.drive_control == ("coupling_scale" if is_ion else "rabi")
    assert platform.exporter == ("ion" if is_ion else "pulser") and platform.exporter in EXPORTS
    assert (platform.exporter == ion_export.EXPORTER) is is_ion
    assert platform.controls_type is (ions.IonControls if is_ion else rydberg.RydbergControls)
    caps = profile.capabilities
    assert caps.max_sites == (profile.ions.max_ions if is_ion else profile.rydberg.max_atoms)
    assert caps.with_max_sites(7).max_sites == 7
    shortest = caps.clock if isinstance(caps, IonCapabilities) else caps.min_pulse
    assert caps.shortest_pulse == shortest
    assert caps.FIELDS is type(caps).FIELDS


@pytest.mark.parametrize("name", SHIPPED)
def test_lifted_limits_keep_the_physics(name: str) -> None:
    profile = read_profile(name)
    lifted = profile.relaxed().capabilities
    assert lifted == profile.capabilities.lifted()
    assert math.isinf(lifted.max_rabi) and math.isinf(lifted.max_duration)
    assert lifted.max_sites == 10**6 and lifted.clock == profile.capabilities.clock
    if isinstance(lifted, RydbergCapabilities):
        assert lifted.c6 == profile.rydberg.c6
        assert lifted.local_detuning is not None and lifted.local_detuning.sign == "any"
    else:
        assert lifted.beat_note_detuning == (0.0, math.inf)
        assert lifted.axial_frequency == profile.ions.axial_frequency


def test_readout_bases() -> None:
    for platform in (RYDBERG, ION):
        assert platform.native_basis == "Z"
        assert not platform.needs_rotation("ZZZ") and not platform.needs_rotation("")
        assert platform.needs_rotation("XXX") and platform.needs_rotation("ZYZ")


@pytest.mark.parametrize("name", RYDBERG_PROFILES)
def test_rydberg_controls_agree_with_rydberg_py(name: str) -> None:
    profile = read_profile(name)
    model = _rydberg_model(profile)
    hamiltonian = model.to_pauli_sum()
    spin = RYDBERG.spin_model(hamiltonian, 3)
    direct = rydberg.IsingModel.from_pauli_sum(hamiltonian, 3)
    np.testing.assert_array_equal(spin.couplings, direct.couplings)
    np.testing.assert_array_equal(spin.fields, direct.fields)
    controls = RYDBERG.translate(model, profile)
    _same_controls(controls, rydberg.translate(model, profile))
    assert np.any(controls.local_weights > 0)  # the map is used, so the comparison means something
    moved = dataclasses.replace(controls, positions=controls.positions * 1.1)
    with pytest.raises(ConstraintError, match="positions give couplings that differ"):
        RYDBERG.translate(model, profile, like=moved)  # on that register the couplings differ
    realised = RYDBERG.realize(controls, profile)
    direct_realised = rydberg.realize(controls, profile)
    np.testing.assert_array_equal(realised.fields, direct_realised.fields)
    assert realised.transverse == direct_realised.transverse
    RYDBERG.check_controls(controls, profile)
    too_strong = dataclasses.replace(controls, rabi=2 * profile.rydberg.max_rabi)
    with pytest.raises(ConstraintError) as ours:
        RYDBERG.check_controls(too_strong, profile)
    with pytest.raises(ConstraintError) as theirs:
        rydberg.check_controls(too_strong, profile)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", RYDBERG_PROFILES)
def test_rydberg_translation_on_a_given_register(name: str) -> None:
    profile = read_profile(name)
    model = _rydberg_model(profile)
    free = RYDBERG.translate(model, profile)
    nudged = dataclasses.replace(model, fields=model.fields + np.array([0.05, 0.0, -0.05]))
    ours = RYDBERG.translate(nudged, profile, like=free)
    _same_controls(ours, rydberg.translate(nudged, profile, positions=free.positions))
    assert RYDBERG.same_register(ours, free)
    assert not RYDBERG.same_register(dataclasses.replace(free, positions=free.positions * 1.1), free)
    programmed = RYDBERG.as_programmed(ours)
    np.testing.assert_array_equal(programmed.local_weights, np.round(ours.local_weights, 6))


@pytest.mark.parametrize("name", ION_PROFILES)
def test_ion_controls_agree_with_ions_py(name: str) -> None:
    profile = read_profile(name)
    model = _ion_model(profile)
    hamiltonian = model.to_pauli_sum()
    spin = ION.spin_model(hamiltonian, 3)
    np.testing.assert_array_equal(
        spin.couplings, ions.IonSpinModel.from_pauli_sum(hamiltonian, 3).couplings
    )
    reference = ions.IonControls(np.ones(3), _ion_beat_note(profile))
    controls = ION.translate(model, profile, like=reference)
    _same_controls(controls, ions.translate(model, profile, beat_note=reference.beat_note))
    assert np.all(controls.rabi > 0)
    try:  # the beat note chosen: the same controls, or the same refusal
        chosen: object = ions.translate(model, profile)
    except ConstraintError as exc:
        with pytest.raises(ConstraintError) as caught:
            ION.translate(model, profile)
        assert str(caught.value) == str(exc)
    else:
        _same_controls(ION.translate(model, profile), chosen)
    realised = ION.realize(controls, profile)
    direct = ions.realize(controls, profile)
    np.testing.assert_array_equal(realised.couplings, direct.couplings)
    np.testing.assert_array_equal(realised.fields, direct.fields)
    assert ION.as_programmed(controls) is controls
    ION.check_controls(controls, profile)
    too_strong = dataclasses.replace(controls, global_field=2 * profile.ions.max_global_field)
    with pytest.raises(ConstraintError) as ours:
        ION.check_controls(too_strong, profile)
    with pytest.raises(ConstraintError) as theirs:
        ions.check_controls(too_strong, profile)
    assert str(ours.value) == str(theirs.value)
    nudged = ions.IonSpinModel(model.fields + 0.003, model.couplings)
    on_register = ION.translate(nudged, profile, like=controls)
    _same_controls(on_register, ions.translate(nudged, profile, beat_note=controls.beat_note))
    assert ION.same_register(on_register, controls)
    assert not ION.same_register(dataclasses.replace(controls, rabi=1.01 * controls.rabi), controls)


def test_controls_of_the_other_platform_are_refused() -> None:
    rydberg_profile, ion_profile = read_profile("fresnel-like"), read_profile("yb171-chain")
    ion_controls = _ion_target(ion_profile)
    rydberg_controls = RYDBERG.translate(_rydberg_model(rydberg_profile), rydberg_profile)
    with pytest.raises(TypeError, match="not controls of the rydberg platform"):
        RYDBERG.realize(ion_controls, rydberg_profile)
    with pytest.raises(TypeError, match="not controls of the ion platform"):
        ION.ramp(rydberg_controls, 1.0)


@pytest.mark.parametrize("name", SHIPPED)
def test_local_field_agrees_with_the_profile(name: str) -> None:
    profile = read_profile(name)
    local = profile.platform_spec.local_field(profile)
    if profile.platform == "ion":
        assert local == LocalField("Stark shift", profile.ions.max_stark_shift, "any")
    else:
        detuning = profile.rydberg.local_detuning
        assert detuning is not None
        assert local == LocalField("detuning-map amplitude", detuning.max_per_site, detuning.sign)
        without = dataclasses.replace(
            profile, capabilities=dataclasses.replace(profile.rydberg, local_detuning=None)
        )
        assert RYDBERG.local_field(without) is None
    assert local is not None
    expected = -min(0.4 * 2 * np.pi, local.max_per_site)
    assert local_amplitude(LocalFieldParameters(), profile) == pytest.approx(
        -expected if local.sign == "positive" else expected
    )


@pytest.mark.parametrize("name", RYDBERG_PROFILES)
def test_rydberg_ramp_is_the_recipe_path(name: str) -> None:
    profile = read_profile(name)
    target = RYDBERG.translate(_rydberg_model(profile), profile)
    ramp = RYDBERG.ramp(target, -5.0)
    assert ramp.paths == {
        "rabi": (0.0, target.rabi),
        "detuning": (-5.0, target.detuning),
        "local_amplitude": (0.0, target.local_amplitude),
    }
    assert ramp.initial_state == "000"
    np.testing.assert_array_equal(ramp.static["positions"], target.positions)
    np.testing.assert_array_equal(ramp.static["local_weights"], target.local_weights)
    assert ramp.static["phase"] == target.phase
    uniform = dataclasses.replace(target, local_weights=np.zeros(0), local_amplitude=0.0)
    assert set(RYDBERG.ramp(uniform, -5.0).paths) == {"rabi", "detuning"}
    np.testing.assert_array_equal(RYDBERG.ramp(uniform, -5.0).static["local_weights"], np.zeros(3))


@pytest.mark.parametrize("name", ION_PROFILES)
def test_ion_ramp_is_the_recipe_path(name: str) -> None:
    profile = read_profile(name)
    target = _ion_target(profile)
    ramp = ION.ramp(target, 0.3)
    assert ramp.paths == {
        "global_field": (0.3, target.global_field),
        "coupling_scale": (0.0, 1.0),
        "stark_scale": (0.0, 1.0),
    }
    assert ramp.initial_state == "111" and ION.ramp(target, -0.3).initial_state == "000"
    np.testing.assert_array_equal(ramp.static["rabi"], target.rabi)
    np.testing.assert_array_equal(ramp.static["stark_shifts"], target.stark_shifts)
    assert ramp.static["beat_note"] == target.beat_note


def test_every_recipe_names_its_platform_start() -> None:
    for name, platform in (("rydberg-linear", RYDBERG), ("ion-exponential", ION)):
        recipe = load_recipe(name)
        assert platform_of(recipe.platform) is platform
        assert getattr(recipe, platform.recipe_start)


def test_dispatch_tables_cover_every_platform() -> None:
    tables = {
        "schedule._TERMS": schedule._TERMS,
        "schedule._CHECKS": schedule._CHECKS,
        "mapping._TERM_MAPPERS": mapping._TERM_MAPPERS,
        "ramp_duration_scan.PROBE_TARGETS": ramp_duration_scan.PROBE_TARGETS,
        "ramp_duration_scan.CRYSTAL_SETS": ramp_duration_scan.CRYSTAL_SETS,
        "qep_gradient_check.CHECK_COUPLINGS": qep_gradient_check.CHECK_COUPLINGS,
    }
    for where, table in tables.items():
        assert set(table) == set(PLATFORMS.values()), where
    for names in (ramp_duration_scan.RECIPES, ramp_duration_scan.DEFAULT_SCAN, DEFAULT_RECIPES):
        assert set(names) == set(PLATFORMS)  # the gradient check's recipes are the QEP defaults


def test_the_gradient_check_model_per_platform() -> None:
    parameters = qep_gradient_check.GradientCheckParameters()
    model, theta = qep_gradient_check.check_model(read_profile("fresnel-like"), 3, parameters)
    assert model.trainable["J"] == pauli_sum([(1.0, "Z0 Z1"), (1.0, "Z1 Z2")])
    assert model.fixed == pauli_sum((1.0, f"X{i}") for i in range(3))
    assert theta[-1] == parameters.coupling
    ions_parameters = dataclasses.replace(parameters, transverse=0.0)
    model, theta = qep_gradient_check.check_model(read_profile("yb171-chain"), 3, ions_parameters)
    letters = {"".join(letter for _, letter in s.factors) for s in model.trainable["J"]}
    assert letters == {"XX"} and len(model.trainable["J"]) == 3 and not model.fixed
    assert theta[-1] == 1.0


# ---------------------------------------------------------------------------- the layout


def _platform_branches(tree: ast.AST) -> list[tuple[int, str]]:
    """Comparisons with a platform name and isinstance tests on a controls/capabilities class."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            literals = {o.value for o in operands if isinstance(o, ast.Constant)}
            if literals & NAMES:
                found.append((node.lineno, f"compares with {sorted(literals & NAMES)}"))
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"
        ):
            if len(node.args) != 2:
                continue
            classes = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
            for c in classes:
                name = c.id if isinstance(c, ast.Name) else c.attr if isinstance(c, ast.Attribute) else ""
                if name in PLATFORM_CLASSES:
                    found.append((node.lineno, f"isinstance on {name}"))
    return found


def test_only_devices_branches_on_the_platform() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        if relative.startswith("qep_analog/devices/") or relative in ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{relative}:{line}: {what}" for line, what in _platform_branches(tree)]
    assert offenders == []


def test_the_check_finds_a_branch() -> None:
    tree = ast.parse(
        'if profile.platform == "rydberg":\n    pass\n'
        'x = 1 if "ion" != p else 2\n'
        "isinstance(c, rydberg.RydbergControls)\n"
        "isinstance(c, (int, IonCapabilities))\n"
    )
    assert sorted(line for line, _ in _platform_branches(tree)) == [1, 3, 4, 5]


def test_devices_imports_no_higher_package() -> None:
    higher = ("qep_analog.sequences", "qep_analog.calibration", "qep_analog.emulation")
    offenders = []
    for path in sorted((PACKAGE / "devices").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            offenders += [f"{path.name}: {m}" for m in modules if m.startswith(higher)]
    assert offenders == []


def test_platforms_are_the_only_implementations() -> None:
    assert {type(p) for p in PLATFORMS.values()} == set(Platform.__subclasses__())
