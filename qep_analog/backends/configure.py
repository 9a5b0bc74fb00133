"""A backend for a run: the registry name, the model, the profile the run believes in (nominal or with
the calibration in force) and the backend's options, as an experiment file's ``backend:`` section or
the command line give them.

    backend:
      name: qutip              # exact | mps | qutip | pulser | fake-lab | bundle | pasqal-cloud | emu-mps
      recipe: rydberg-smooth   # the schedules that prepare each phase (all but exact and mps;
                               #   default: the platform's quintic-ended recipe, rydberg-gap-quintic
                               #   (rydberg-quintic past 14 atoms) or ion-exponential-smooth)
      method: magnus           # qutip: exact propagation (magnus, default), QuTiP's solvers (qutip)
                               #   or matrix product states by TDVP (mps: long chains, 2D arrays)
      chi_max: 64              # qutip with method mps, emu-mps: the largest bond dimension
      noise: true              # qutip: the profile's noise sources — true: all; or some by name:
                               #   [detuning, dephasing, amplitude_jitter, readout, relaxation,
                               #   depolarizing, laser_waist, detuning_jitter, detuning_map_jitter,
                               #   state_prep] (or "detuning,readout")
      realisations: 16         # qutip with noise: trajectories (qutip method: jitter draws)
      bias_budget: true        # qutip, pulser, fake-lab, pasqal-cloud: each gradient carries its
                               #   ramp's bias estimate (up to 14 qubits; default true)
      preparation: ground      # fake-lab: ground (the final Hamiltonian's ground state: a perfectly
                               #   adiabatic device) or adiabatic (the schedule played, with the lab's
                               #   hidden T2*, amplitude jitter and dephasing, one trajectory per shot)
      blockade_radius_um: auto # qutip (magnus): evolve in the blockade subspace, cutoff in µm or auto
      blockade_tolerance: 0.01 #   (auto: a blockaded pair's doubly excited population at most this)
      blockade_order: 0        #   and configurations with up to this many excited blockaded pairs
      seed: 0                  # shots and noise (default: the training seed)
      emulator: EMU_MPS        # pasqal-cloud: a cloud emulator instead of the QPU (and
      poll_interval_s: 10      #   how often and how long to wait for the batches;
      timeout_s: 3600          #   credentials from PASQAL_PROJECT_ID, PASQAL_USERNAME, PASQAL_PASSWORD)

``fake-lab`` runs the schedules on a fake device made from the profile's *file* (its hidden truth is
the same whatever the history says); the run programs it with the profile it believes in, so the
calibration in force shows in the results. ``preparation: ground`` (the default, and what the
committed runs used) prepares each schedule's final ground state on the true device: the
mis-calibration and the readout errors act, the ramp does not; ``adiabatic`` plays the schedule as a
lab does, with the lab's hidden noise. ``bundle`` writes the jobs under ``RUN/bundles/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qep_analog.backends.registry import BACKENDS, backend_class
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.model.qep_model import QEPModel
from qep_analog.schema import OMIT, Field, seed_field

#: the backends that prepare the model's states directly (no schedules, no recipe)
STATE_BACKENDS = ("exact", "mps")
#: the keys of an experiment file's ``backend:`` section
FIELDS = (
    Field("name", "text", choices=tuple(BACKENDS)),
    Field("recipe", "text", required=False, default=None),
    Field("method", "text", choices=("magnus", "qutip", "mps"), required=False, default=OMIT),
    Field("chi_max", "integer", low=1, high=4096, required=False, default=OMIT),
    Field("noise", "any", required=False, default=OMIT),  # checked by noise_sources
    Field("bias_budget", "flag", required=False, default=OMIT),
    Field("blockade_radius_um", "any", required=False, default=OMIT),  # checked by the emulator
    Field(
        "blockade_tolerance", low=0.0, high=1.0, open_low=True, open_high=True, required=False, default=OMIT
    ),
    Field("blockade_order", "integer", low=0, required=False, default=OMIT),
    Field("realisations", "integer", low=1, required=False, default=OMIT),
    seed_field(required=False, default=OMIT),
    Field("emulator", "text", required=False, default=OMIT),
    Field("preparation", "text", required=False, default=OMIT),  # checked by check_options
    Field("poll_interval_s", low=0.0, required=False, default=OMIT),
    Field("timeout_s", low=0.0, open_low=True, required=False, default=OMIT),
)
#: which options each backend takes
_OPTIONS: dict[str, set[str]] = {
    "qutip": {
        "method",
        "noise",
        "realisations",
        "seed",
        "bias_budget",
        "chi_max",
        "blockade_radius_um",
        "blockade_tolerance",
        "blockade_order",
    },
    "pulser": {"seed", "bias_budget"},
    "exact": {"seed"},
    "mps": {"seed"},
    "pasqal-cloud": {"emulator", "poll_interval_s", "timeout_s", "bias_budget"},
    "fake-lab": {"bias_budget", "preparation"},
    "emu-mps": {"seed", "chi_max"},
}


def backend_for_run(
    name: str,
    model: QEPModel,
    profile: DeviceProfile | None,
    *,
    run_dir: str | Path,
    seed: int,
    recipe: str | None = None,
    options: dict[str, Any] | None = None,
) -> Any:
    """The backend ``name`` for a run in ``run_dir`` (see the module doc)."""
    cls = backend_class(name)
    options = dict(options or {})
    check_options(name, options)
    if "seed" in _OPTIONS.get(name, set()):
        options.setdefault("seed", seed)
    if name in STATE_BACKENDS:
        if recipe is not None:
            raise ConfigError(f"backend {name}: prepares ground states; it takes no recipe ({recipe!r})")
        return cls(model, profile, **options)
    if profile is None:
        raise ConfigError(f"backend {name}: runs schedules on a device; name one (device: or --device)")
    from qep_analog.sequences.recipes import default_recipe, load_recipe

    loaded = load_recipe(recipe if recipe is not None else default_recipe(profile.platform, model.n_qubits))
    if loaded.platform != profile.platform:
        raise ConfigError(
            f"backend {name}: recipe {loaded.name!r} is for {loaded.platform}, device "
            f"{profile.label!r} is {profile.platform}"
        )
    if name == "fake-lab":
        options["lab"] = fake_lab(profile, model.n_qubits, seed, options.pop("preparation", "ground"))
    elif name == "bundle":
        options["directory"] = Path(run_dir) / "bundles"
    return cls(model, profile, loaded, **options)


def check_options(name: str, options: dict[str, Any]) -> None:
    """One-line ConfigErrors for options ``name`` does not take (listing those it does) and for a
    fake lab's unknown preparation; a command that builds no backend from the section (``step``)
    checks it all the same."""
    takes = _OPTIONS.get(name, set())
    unknown = sorted(set(options) - takes)
    if unknown:
        listed = ", ".join(sorted(takes)) or "none"
        raise ConfigError(f"backend {name}: takes no option {unknown[0]!r} (its options: {listed})")
    if "preparation" in options:
        check_preparation(options["preparation"])


def check_preparation(preparation: str) -> None:
    """A fake lab's preparation: one of
    :data:`~qep_analog.calibration.fakes.schedule_lab.PREPARATIONS`."""
    from qep_analog.calibration.fakes.schedule_lab import PREPARATIONS

    if preparation not in PREPARATIONS:
        raise ConfigError(
            f"backend fake-lab: preparation {preparation!r} is not one of {', '.join(PREPARATIONS)}"
        )


def fake_lab(profile: DeviceProfile, n_sites: int, seed: int, preparation: str = "ground") -> Any:
    """The fake device of ``profile``'s platform, mis-calibrated from the profile's file (so the same
    whatever calibration the run believes in), with ``n_sites`` sites, preparing each schedule's
    state as ``preparation`` says (:data:`~qep_analog.calibration.fakes.schedule_lab.PREPARATIONS`)."""
    from qep_analog.calibration.fakes.ion_lab import FakeIonLab
    from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
    from qep_analog.devices.platform import ION, RYDBERG
    from qep_analog.devices.profile import read_profile

    check_preparation(preparation)
    labs: dict[Any, Any] = {RYDBERG: FakeRydbergLab, ION: FakeIonLab}
    nominal = read_profile(profile.source if Path(profile.source).is_file() else profile.name)
    lab = labs[profile.platform_spec].for_profile(nominal, n_sites=n_sites, seed=seed)
    lab.preparation = preparation
    return lab
