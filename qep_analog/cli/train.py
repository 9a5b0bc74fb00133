"""``qep-analog train``: train a model from an experiment file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qep_analog import BACKENDS, ESTIMATORS, NOISE_SOURCES
from qep_analog.cli.common import add_calibration_options, positive_int, result_file, seed


def register(commands: Any) -> None:
    train = commands.add_parser("train", help="train a model from an experiment file")
    train.add_argument("config", help="experiment file (qep-experiment/1), e.g. examples/phase_sensor.yaml")
    train.add_argument("--steps", type=int, help="override training.steps")
    train.add_argument("--seed", type=seed, help="override training.seed, in [0, 2**32)")
    train.add_argument("--estimator", choices=ESTIMATORS, help="override training.estimator")
    train.add_argument("--shots", help="shots per expectation value, or 'exact'")
    train.add_argument("--output", help="run folder (default: the file's output, or runs/NAME)")
    train.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    train.add_argument(
        "--overwrite", action="store_true", help="replace the run the folder holds (default: refuse)"
    )
    train.add_argument("--init", help="start from a finished run's result.json (overrides model.init)")
    train.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    train.add_argument("--json", action="store_true", help="print the final report as JSON")
    train.add_argument(
        "--executor",
        help="where preparations run: serial | processes[:N] | dask-local[:N] | dask://HOST:PORT "
        "(overrides execution.executor; default: in this process)",
    )
    train.add_argument(
        "--backend",
        choices=BACKENDS,
        help="where each step runs (overrides backend.name): exact | mps | qutip | pulser | fake-lab "
        "| bundle | pasqal-cloud; without a device, exact and mps set execution.backend",
    )
    train.add_argument("--device", help="device profile the run uses (overrides device:)")
    train.add_argument(
        "--noise", nargs="?", const=True, default=None, metavar="SOURCES",
        help="qutip backend: the profile's noise, all sources or those named (comma-separated: "
        f"{', '.join(NOISE_SOURCES)}; sets backend.noise)",
    )  # fmt: skip
    train.add_argument(
        "--recipe",
        help="schedules of each phase for a device backend (overrides backend.recipe; default: the "
        "platform's quintic-ended recipe, rydberg-gap-quintic (rydberg-quintic past 14 atoms) or "
        "ion-exponential-smooth)",
    )
    add_calibration_options(train)
    train.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from qep_analog import ConfigError, Trainer, backend_for_run, load_experiment

    overrides: dict[str, Any] = {}
    for key in ("steps", "seed", "estimator"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.shots is not None:
        overrides["shots"] = None if args.shots == "exact" else positive_int(args.shots, "--shots")
    experiment = load_experiment(
        args.config,
        overrides,
        nominal=args.nominal,
        history=args.history,
        device_name=args.device,
        init=result_file(args.init, "--init"),
        output=args.output,
    )
    output = experiment.output
    execution = dict(experiment.execution)
    backend = dict(experiment.backend or {})
    for key in ("backend", "recipe"):
        value = getattr(args, key)
        if value is not None:
            backend["name" if key == "backend" else key] = value
    if args.noise is not None:
        from qep_analog import noise_sources

        backend["noise"] = sorted(noise_sources(args.noise, "--noise"))
    lab_loop = (
        experiment.backend is not None
        or experiment.profile is not None
        or (backend.get("name") not in (None, "exact", "mps"))
    )
    if not lab_loop and args.backend is not None:
        execution["backend"] = backend.pop("name")
    if args.executor is not None:
        execution["executor"] = args.executor
    executor = None
    run_backend = None
    if lab_loop and backend:
        if "name" not in backend:
            raise ConfigError("train: --recipe needs a backend (backend.name or --backend)")
        if execution:
            raise ConfigError(
                "train: execution: runs the model's states; a backend runs the steps, not both"
            )
        run_backend = backend_for_run(
            backend.pop("name"),
            experiment.task.model,
            experiment.profile,
            run_dir=output,
            seed=experiment.training.seed,
            recipe=backend.pop("recipe", None),
            options=backend,
        )
    if execution:
        trainer, executor = executed_trainer(experiment, execution, output)
    else:
        trainer = Trainer(
            experiment.task,
            experiment.training,
            output,
            penalty=experiment.penalty,
            device=experiment.device,
            backend=run_backend,
        )
    try:
        return _train(args, experiment, trainer, output)
    finally:
        if executor is not None:
            executor.close()


def executed_trainer(experiment: Any, execution: dict[str, Any], output: Path) -> tuple[Any, Any]:
    """A trainer whose preparations run on the executor and backend of ``execution``."""
    from qep_analog import (
        ConfigError,
        EquilibriumSpec,
        ExecutedEquilibrium,
        MPSOptions,
        Trainer,
        make_executor,
    )

    config = experiment.training
    backend = str(execution.get("backend", "exact"))
    mps = MPSOptions.from_mapping(execution.get("mps") or {}, "execution.mps")
    if backend == "mps" and config.check_gap:
        raise ConfigError(
            "execution: backend mps needs training.check_gap: false (small-gap checks use states)"
        )
    spec = EquilibriumSpec(
        experiment.task.model,
        backend=backend,
        temperature=config.temperature,
        tol=config.solver_tol,
        mps=mps,
    )
    chunks = execution.get("chunks_per_worker", 1)
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1:
        raise ConfigError(f"execution: chunks_per_worker = {chunks!r} must be a positive integer")
    executor = make_executor(execution.get("executor"), chunks_per_worker=chunks)
    try:
        equilibrium = ExecutedEquilibrium(spec, executor)
    except Exception:
        executor.close()
        raise
    trainer = Trainer(
        experiment.task,
        config,
        output,
        equilibrium=equilibrium,
        penalty=experiment.penalty,
        device=experiment.device,
    )
    return trainer, executor


def _train(args: argparse.Namespace, experiment: Any, trainer: Any, output: Path) -> int:
    from qep_analog import TrainingProgress, write_report

    show = not (args.quiet or args.json)
    with TrainingProgress(experiment.training.steps, enabled=show) as progress:
        result = trainer.run(resume=args.resume, overwrite=args.overwrite, progress=progress.update)
    if hasattr(experiment.task, "phase_points"):
        from qep_analog import write_sensor_report

        report = write_sensor_report(trainer, result)
    elif (
        getattr(trainer.equilibrium, "spec", None) is not None and trainer.equilibrium.spec.backend == "mps"
    ):
        # the 210-point grid would be 210 more DMRG runs: only the training curve
        from qep_analog import plot_training_curve

        plot_training_curve(trainer.read_metrics(), trainer.run_dir / "training_curve.png")
        report = {**result, "execution": trainer.equilibrium.executor.describe()}
    else:
        report = write_report(trainer, result)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.quiet:
        final = result["final"]
        print(
            f"{experiment.name}: step {final['step']}  test max-choice accuracy "
            f"{final['max_choice_accuracy']:.4f}  single-shot {final['single_shot_accuracy']:.4f}"
            + (f"  grid max-choice {report['grid']['max_choice_accuracy']:.4f}" if "grid" in report else "")
        )
        usage = result.get("device_usage")
        if usage is not None:
            seconds = usage["device_time_s"]
            print(
                f"backend {result['backend']}: {usage['shots']} shots"
                + ("" if seconds is None else f", device time {seconds:.4g} s")
                + f"; {usage['clipped_steps']} step{'' if usage['clipped_steps'] == 1 else 's'} clipped "
                "to the device's limits"
            )
        gaps = result["gaps"]
        if gaps["samples_checked"]:
            print(
                f"gaps: minimum {gaps['min_gap']:.3g} over {gaps['samples_checked']} training "
                f"samples; {gaps['degenerate']} degenerate; {gaps['small_gap']} with a nudge not "
                "small against the gap (biased QEP estimates)"
            )
        print(f"results in {output}/ (metrics.jsonl, result.json, *.png)")
    return 0
