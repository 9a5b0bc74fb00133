"""qep-analog: train and calibrate analog quantum simulators with Quantum Equilibrium Propagation.

The public API. Every name below is imported on first use, so ``import qep_analog`` stays light (the
command line starts without Pulser, QuTiP, Dask or Numba); docs/api.md lists each name with an example.

    import qep_analog as qa

    model = qa.load_model("examples/models/rydberg_chain.yaml")
    profile = qa.load_profile("fresnel-like")      # with the calibration in force
    print(qa.map_model(model, profile).to_document()["readout"])
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("qep-analog")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from qep_analog.backends.configure import backend_for_run
    from qep_analog.backends.estimate import sample_gradients
    from qep_analog.backends.hardware_step import HardwareStep, plan_hardware_step, run_hardware_step
    from qep_analog.backends.jobs import PhaseJob, phase_jobs
    from qep_analog.backends.registry import BACKENDS, make_backend
    from qep_analog.backends.sampled import measure_phases
    from qep_analog.calibration.drift import (
        CHANGE_THRESHOLD,
        false_alarm_rate,
        history_series,
        series_changes,
    )
    from qep_analog.calibration.drift_plot import plot_history
    from qep_analog.calibration.fakes.ion_lab import FakeIonLab
    from qep_analog.calibration.fakes.random_walk import RandomWalk
    from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab
    from qep_analog.calibration.history import CalibrationHistory, history_directory
    from qep_analog.calibration.in_force import calibration_report, history_records, load_profile
    from qep_analog.calibration.lab_units import profile_units, shown_in, unit_label
    from qep_analog.calibration.plots import plot_run
    from qep_analog.calibration.records import FIELDS, CalibrationRecord, RecordId
    from qep_analog.calibration.resolve import latest_values, records_in_force, resolve
    from qep_analog.calibration.runcard import load_runcard
    from qep_analog.calibration.runner import (
        StepBudget,
        planned_budgets,
        read_budgets,
        read_results,
        read_run,
        read_run_records,
        run_runcard,
        run_state,
        shown_units,
    )
    from qep_analog.calibration.twin import noise_listing, twin_parameters
    from qep_analog.devices.ions import IonControls, coupling_summary
    from qep_analog.devices.mapping import map_model, mapping_table
    from qep_analog.devices.noise_sources import NOISE_SOURCES, noise_sources
    from qep_analog.devices.platform import Platform, platform_of, realize, translate
    from qep_analog.devices.profile import DeviceProfile, list_profiles, read_profile
    from qep_analog.devices.pulser_device import to_pulser_device
    from qep_analog.devices.pulser_noise import noise_model_from_pulser, noise_model_to_pulser
    from qep_analog.emulation.diagnostics import (
        MAX_DIAGNOSED_QUBITS,
        adiabaticity,
        path_spectrum,
        recommended_duration,
    )
    from qep_analog.emulation.mps_evolution import MPSEmulator, MPSEvolutionOptions
    from qep_analog.emulation.noise_routing import emulate_noise_model
    from qep_analog.emulation.preparation_bias import (
        GradientBias,
        PathBudget,
        duration_for_bias,
        gradient_bias,
        path_budget,
    )
    from qep_analog.emulation.pulser_backend import run_pulser
    from qep_analog.emulation.qutip_emulator import MAX_TRAJECTORIES, QutipEmulator
    from qep_analog.emulation.readout_bias import readout_bias
    from qep_analog.errors import (
        BundlePending,
        CalibrationError,
        ConfigError,
        ConstraintError,
        DamagedLogWarning,
        LevelCrossingWarning,
        MeasurementError,
        ModelFileError,
        PreconditionError,
        ProfileError,
        QEPError,
        QEPWarning,
        RoundOffWarning,
        SmallGapWarning,
        SolverError,
        StorageError,
    )
    from qep_analog.execution.executors import make_executor
    from qep_analog.execution.preparation import EquilibriumSpec, ExecutedEquilibrium
    from qep_analog.library import library_entries, locate_file
    from qep_analog.measurement.counts_file import counts_run_from_phases, read_counts_run, write_counts_run
    from qep_analog.measurement.gradient import gradient_from_counts
    from qep_analog.measurement.readout import ReadoutErrors
    from qep_analog.measurement.settings import measurement_plan
    from qep_analog.model.model_file import load_model, save_model
    from qep_analog.model.pauli import PauliSum, pauli_sum
    from qep_analog.model.qep_model import QEPModel
    from qep_analog.model.standard import phase_sensor
    from qep_analog.progress import LazyProgress, StageProgress
    from qep_analog.qep.gradients import (
        exact_gradient,
        finite_difference_gradient,
        qep_gradient,
        reciprocity_check,
    )
    from qep_analog.qep.names import ESTIMATORS, SCHEMES
    from qep_analog.qep.trainer import Trainer, TrainingConfig
    from qep_analog.sequences.braket_export import export_ahs_json
    from qep_analog.sequences.export import (
        READOUT_LIMITS,
        HardwareFile,
        export_schedule,
        exporter_of,
        hardware_file,
        unsupported_readout,
    )
    from qep_analog.sequences.ion_export import export_ion_json
    from qep_analog.sequences.phases import qep_phase_schedules, realised_model
    from qep_analog.sequences.plots import plot_schedules
    from qep_analog.sequences.pulser_export import export_abstract_json
    from qep_analog.sequences.recipes import (
        DurationChoice,
        build_schedule,
        choose_duration,
        default_recipe,
        duration_metadata,
        load_recipe,
        schedule_duration,
        stretched_recipe,
    )
    from qep_analog.sequences.schedule import (
        Schedule,
        check_schedule,
        load_schedules,
        save_schedules,
        stretch_schedule,
    )
    from qep_analog.sequences.switch_on import check_switch_on
    from qep_analog.solvers.equilibrium import Equilibrium
    from qep_analog.solvers.mps import MPSOptions
    from qep_analog.tasks.experiment import load_experiment
    from qep_analog.tasks.explore_config import load_explore_config, run_exploration
    from qep_analog.tasks.phase_sensor import PhaseSensorTask
    from qep_analog.tasks.plots import plot_training_curve
    from qep_analog.tasks.reporting import (
        ExploreProgress,
        TrainingProgress,
        write_report,
        write_sensor_report,
    )
    from qep_analog.units import with_unit

#: public name -> the module that defines it
_HOMES: dict[str, str] = {
    # Models
    "QEPModel": "qep_analog.model.qep_model",
    "load_model": "qep_analog.model.model_file",
    "save_model": "qep_analog.model.model_file",
    "PauliSum": "qep_analog.model.pauli",
    "pauli_sum": "qep_analog.model.pauli",
    "phase_sensor": "qep_analog.model.standard",
    # States
    "Equilibrium": "qep_analog.solvers.equilibrium",
    "MPSOptions": "qep_analog.solvers.mps",
    # Gradients and training
    "SCHEMES": "qep_analog.qep.names",
    "ESTIMATORS": "qep_analog.qep.names",
    "qep_gradient": "qep_analog.qep.gradients",
    "exact_gradient": "qep_analog.qep.gradients",
    "finite_difference_gradient": "qep_analog.qep.gradients",
    "reciprocity_check": "qep_analog.qep.gradients",
    "Trainer": "qep_analog.qep.trainer",
    "TrainingConfig": "qep_analog.qep.trainer",
    # Executors
    "make_executor": "qep_analog.execution.executors",
    "EquilibriumSpec": "qep_analog.execution.preparation",
    "ExecutedEquilibrium": "qep_analog.execution.preparation",
    # Device profiles
    "load_profile": "qep_analog.calibration.in_force",
    "calibration_report": "qep_analog.calibration.in_force",
    "history_records": "qep_analog.calibration.in_force",
    "DeviceProfile": "qep_analog.devices.profile",
    "read_profile": "qep_analog.devices.profile",
    "noise_sources": "qep_analog.devices.noise_sources",
    "NOISE_SOURCES": "qep_analog.devices.noise_sources",
    "list_profiles": "qep_analog.devices.profile",
    "library_entries": "qep_analog.library",
    "locate_file": "qep_analog.library",
    "platform_of": "qep_analog.devices.platform",
    "Platform": "qep_analog.devices.platform",
    "translate": "qep_analog.devices.platform",
    "realize": "qep_analog.devices.platform",
    "IonControls": "qep_analog.devices.ions",
    "coupling_summary": "qep_analog.devices.ions",
    "map_model": "qep_analog.devices.mapping",
    "mapping_table": "qep_analog.devices.mapping",
    "with_unit": "qep_analog.units",
    # Sequences
    "load_recipe": "qep_analog.sequences.recipes",
    "build_schedule": "qep_analog.sequences.recipes",
    "qep_phase_schedules": "qep_analog.sequences.phases",
    "realised_model": "qep_analog.sequences.phases",
    "Schedule": "qep_analog.sequences.schedule",
    "save_schedules": "qep_analog.sequences.schedule",
    "load_schedules": "qep_analog.sequences.schedule",
    "export_abstract_json": "qep_analog.sequences.pulser_export",
    "export_ion_json": "qep_analog.sequences.ion_export",
    "export_ahs_json": "qep_analog.sequences.braket_export",
    "export_schedule": "qep_analog.sequences.export",
    "hardware_file": "qep_analog.sequences.export",
    "HardwareFile": "qep_analog.sequences.export",
    "exporter_of": "qep_analog.sequences.export",
    "unsupported_readout": "qep_analog.sequences.export",
    "READOUT_LIMITS": "qep_analog.sequences.export",
    "plot_schedules": "qep_analog.sequences.plots",
    "stretch_schedule": "qep_analog.sequences.schedule",
    "check_schedule": "qep_analog.sequences.schedule",
    "DurationChoice": "qep_analog.sequences.recipes",
    "choose_duration": "qep_analog.sequences.recipes",
    "duration_metadata": "qep_analog.sequences.recipes",
    "schedule_duration": "qep_analog.sequences.recipes",
    "stretched_recipe": "qep_analog.sequences.recipes",
    "default_recipe": "qep_analog.sequences.recipes",
    "check_switch_on": "qep_analog.sequences.switch_on",
    # Emulation
    "QutipEmulator": "qep_analog.emulation.qutip_emulator",
    "MAX_TRAJECTORIES": "qep_analog.emulation.qutip_emulator",
    "MPSEmulator": "qep_analog.emulation.mps_evolution",
    "MPSEvolutionOptions": "qep_analog.emulation.mps_evolution",
    "run_pulser": "qep_analog.emulation.pulser_backend",
    "noise_model_to_pulser": "qep_analog.devices.pulser_noise",
    "noise_model_from_pulser": "qep_analog.devices.pulser_noise",
    "emulate_noise_model": "qep_analog.emulation.noise_routing",
    "to_pulser_device": "qep_analog.devices.pulser_device",
    "readout_bias": "qep_analog.emulation.readout_bias",
    "adiabaticity": "qep_analog.emulation.diagnostics",
    "MAX_DIAGNOSED_QUBITS": "qep_analog.emulation.diagnostics",
    "recommended_duration": "qep_analog.emulation.diagnostics",
    "path_spectrum": "qep_analog.emulation.diagnostics",
    "PathBudget": "qep_analog.emulation.preparation_bias",
    "path_budget": "qep_analog.emulation.preparation_bias",
    "duration_for_bias": "qep_analog.emulation.preparation_bias",
    "GradientBias": "qep_analog.emulation.preparation_bias",
    "gradient_bias": "qep_analog.emulation.preparation_bias",
    # Measurement
    "measurement_plan": "qep_analog.measurement.settings",
    "ReadoutErrors": "qep_analog.measurement.readout",
    "gradient_from_counts": "qep_analog.measurement.gradient",
    "measure_phases": "qep_analog.backends.sampled",
    "read_counts_run": "qep_analog.measurement.counts_file",
    "write_counts_run": "qep_analog.measurement.counts_file",
    "counts_run_from_phases": "qep_analog.measurement.counts_file",
    # Backends
    "BACKENDS": "qep_analog.backends.registry",
    "make_backend": "qep_analog.backends.registry",
    "PhaseJob": "qep_analog.backends.jobs",
    "phase_jobs": "qep_analog.backends.jobs",
    "sample_gradients": "qep_analog.backends.estimate",
    "BundlePending": "qep_analog.errors",
    "backend_for_run": "qep_analog.backends.configure",
    "HardwareStep": "qep_analog.backends.hardware_step",
    "plan_hardware_step": "qep_analog.backends.hardware_step",
    "run_hardware_step": "qep_analog.backends.hardware_step",
    # Calibration
    "CalibrationRecord": "qep_analog.calibration.records",
    "FIELDS": "qep_analog.calibration.records",
    "CalibrationHistory": "qep_analog.calibration.history",
    "history_directory": "qep_analog.calibration.history",
    "resolve": "qep_analog.calibration.resolve",
    "latest_values": "qep_analog.calibration.resolve",
    "records_in_force": "qep_analog.calibration.resolve",
    "load_runcard": "qep_analog.calibration.runcard",
    "run_runcard": "qep_analog.calibration.runner",
    "read_run": "qep_analog.calibration.runner",
    "run_state": "qep_analog.calibration.runner",
    "read_results": "qep_analog.calibration.runner",
    "shown_units": "qep_analog.calibration.runner",
    "StepBudget": "qep_analog.calibration.runner",
    "planned_budgets": "qep_analog.calibration.runner",
    "read_budgets": "qep_analog.calibration.runner",
    "read_run_records": "qep_analog.calibration.runner",
    "RecordId": "qep_analog.calibration.records",
    "profile_units": "qep_analog.calibration.lab_units",
    "shown_in": "qep_analog.calibration.lab_units",
    "unit_label": "qep_analog.calibration.lab_units",
    "plot_run": "qep_analog.calibration.plots",
    "FakeRydbergLab": "qep_analog.calibration.fakes.rydberg_lab",
    "FakeIonLab": "qep_analog.calibration.fakes.ion_lab",
    "RandomWalk": "qep_analog.calibration.fakes.random_walk",
    "history_series": "qep_analog.calibration.drift",
    "series_changes": "qep_analog.calibration.drift",
    "false_alarm_rate": "qep_analog.calibration.drift",
    "CHANGE_THRESHOLD": "qep_analog.calibration.drift",
    "plot_history": "qep_analog.calibration.drift_plot",
    "twin_parameters": "qep_analog.calibration.twin",
    "noise_listing": "qep_analog.calibration.twin",
    # Tasks
    "load_experiment": "qep_analog.tasks.experiment",
    "PhaseSensorTask": "qep_analog.tasks.phase_sensor",
    "load_explore_config": "qep_analog.tasks.explore_config",
    "run_exploration": "qep_analog.tasks.explore_config",
    "TrainingProgress": "qep_analog.tasks.reporting",
    "ExploreProgress": "qep_analog.tasks.reporting",
    "write_report": "qep_analog.tasks.reporting",
    "write_sensor_report": "qep_analog.tasks.reporting",
    "plot_training_curve": "qep_analog.tasks.plots",
    "LazyProgress": "qep_analog.progress",
    "StageProgress": "qep_analog.progress",
    # Errors
    "QEPError": "qep_analog.errors",
    "ConfigError": "qep_analog.errors",
    "ModelFileError": "qep_analog.errors",
    "ProfileError": "qep_analog.errors",
    "ConstraintError": "qep_analog.errors",
    "MeasurementError": "qep_analog.errors",
    "CalibrationError": "qep_analog.errors",
    "StorageError": "qep_analog.errors",
    "PreconditionError": "qep_analog.errors",
    "SolverError": "qep_analog.errors",
    "QEPWarning": "qep_analog.errors",
    "SmallGapWarning": "qep_analog.errors",
    "DamagedLogWarning": "qep_analog.errors",
    "LevelCrossingWarning": "qep_analog.errors",
    "RoundOffWarning": "qep_analog.errors",
}

__all__ = ["__version__", *_HOMES]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qep_analog' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
