"""The ``bundle`` backend: the offline lab path. A batch of jobs is written as a job bundle — one file
per sequence in the profile's export format (``Platform.exporter_for``: Pulser's abstract JSON for a
Rydberg array, a Braket AHS program for one with a positive detuning map such as Aquila, our ion
schedule JSON for an ion chain) and a manifest saying what each is for, which file holds it and how
many shots it needs — and the run stops
(:class:`BundlePending`). The lab plays the sequences with its own control system and drops one
counts file per sequence into the bundle's ``counts/`` folder; run again, and the counts are checked
against the manifest and returned.

    BUNDLE/
      counts-format.md              what the lab writes and how it is checked (docs/counts-format.md)
      manifest.json                 qep-bundle/1: device, recipe, export format, and per job its
                                    phase, (x, θ, ν), bases, shots and the sequence file of each basis;
                                    for Pulser files read in X or Y, the rotation pulse each plays and
                                    its bias under the interactions (``readout_rotations``)
      sequences/S-PHASE-BASES.pulser.json  (or .ahs.json, .ion.json)
      counts/S-PHASE-BASES.json     qep-bundle-counts/1, written by the lab:
                                    {"schema": "qep-bundle-counts/1", "job": "S/PHASE", "bases": BASES,
                                     "counts": {"0101": 12, ...}}   (qubit 0 the leftmost character)

The lab's side, with an example, is in docs/counts-format.md ("Bundle counts"), which every bundle
carries as ``counts-format.md`` for the lab's computer.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qep_analog.backends.jobs import (
    BatchResult,
    JobResult,
    PhaseJob,
    batch_metadata,
    bitstring_counts,
    require_counts,
)
from qep_analog.backends.schedules import device_time, job_schedules, ramp_bias
from qep_analog.devices.profile import DeviceProfile
from qep_analog.emulation.readout_bias import readout_bias
from qep_analog.errors import BundlePending, ConfigError, MeasurementError, StorageError
from qep_analog.library import shipped_document
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.measurement.readout import ReadoutErrors
from qep_analog.model.qep_model import QEPModel
from qep_analog.schema import shown
from qep_analog.sequences.export import (
    READOUT_LIMITS,
    export_schedule,
    exporter_of,
    unsupported_readout,
)
from qep_analog.sequences.phases import realised_model
from qep_analog.sequences.recipes import Recipe
from qep_analog.storage import atomic_write_text, read_json, remove_stale_temporaries, write_json

BUNDLE_SCHEMA = "qep-bundle/1"
COUNTS_SCHEMA = "qep-bundle-counts/1"
#: the document a bundle carries for the lab: the counts format (docs/counts-format.md)
COUNTS_FORMAT = "counts-format.md"


def file_stem(job: PhaseJob, basis: str) -> str:
    """``S-PHASE-BASES``: the name of a job's sequence and counts files for one basis."""
    return f"{job.sample}-{job.phase}-{basis}"


def job_document(job: PhaseJob) -> dict[str, Any]:
    return {
        "key": job.key,
        "sample": job.sample,
        "phase": job.phase,
        "x": list(job.x),
        "theta": list(job.theta),
        "nu": list(job.nu),
        "bases": list(job.bases),
        "shots": job.shots,
    }


class BundleBackend:
    """Writes the jobs as a bundle in ``directory`` and, once the lab's counts are there, reads them."""

    name = "bundle"
    #: a lab returns counts only: training needs its shots
    counts_only = True

    def __init__(
        self, model: QEPModel, profile: DeviceProfile, recipe: Recipe, *, directory: str | Path
    ) -> None:
        self.model = realised_model(model, profile)
        self.profile = profile
        self.recipe = recipe
        self.directory = Path(directory)
        #: the readout errors the profile believes in, inverted by the estimates
        self.mitigation = ReadoutErrors.from_profile(profile, self.model.n_qubits)

    def preparation_bias(
        self, free_jobs: Sequence[PhaseJob], beta: float, error_signals: NDArray
    ) -> NDArray | None:
        """The bias estimate of the lab's ramps per sample and parameter
        (:func:`~qep_analog.backends.schedules.ramp_bias`)."""
        return ramp_bias(self.model, self.profile, self.recipe, free_jobs, beta, error_signals)

    def for_round(self, name: str) -> BundleBackend:
        """The same backend writing into the sub-folder ``name`` (one per round of a run)."""
        moved = copy.copy(self)
        moved.directory = self.directory / name
        return moved

    @property
    def manifest_path(self) -> Path:
        return self.directory / "manifest.json"

    def run(self, jobs: Sequence[PhaseJob]) -> BatchResult:
        started = time.perf_counter()
        require_counts(self.name, jobs)
        if not self.manifest_path.exists():
            self.write(jobs)
            raise BundlePending(
                f"bundle {self.directory}: {sum(len(j.bases) for j in jobs)} sequences written; play them "
                f"and drop one counts file per sequence into {self.directory / 'counts'} "
                f"(qep-bundle-counts/1: {COUNTS_FORMAT} in the bundle says how), then run again"
            )
        manifest = read_json(self.manifest_path, BUNDLE_SCHEMA)
        if not isinstance(manifest.get("metadata"), dict):
            raise MeasurementError(
                f"{self.manifest_path}: metadata = {shown(manifest.get('metadata'))} is not the batch's "
                "metadata (a mapping)"
            )
        if manifest.get("jobs") != [job_document(job) for job in jobs]:
            raise MeasurementError(
                f"bundle {self.directory}: its manifest holds other jobs than this step's "
                "(another step, point or configuration): use a fresh bundle folder"
            )
        results = tuple(JobResult(job.key, counts=self._read_counts(job)) for job in jobs)
        self._refuse_strays(jobs)
        metadata = {
            **manifest["metadata"],
            "wall_time_s": time.perf_counter() - started,
            "bundle": str(self.directory),
        }
        return BatchResult(results, metadata)

    def write(self, jobs: Sequence[PhaseJob]) -> None:
        """The sequence files and the manifest (last, atomically: a bundle with a manifest is whole)."""
        exporter = exporter_of(self.profile)
        refused = [(job.key, b) for job in jobs for b in job.bases if unsupported_readout(exporter, b)]
        if refused:
            key, basis = refused[0]
            raise ConfigError(
                f"bundle {self.directory}: job {key!r} reads in basis {basis}, which {exporter} files "
                f"cannot express ({self.profile.label!r} exports {exporter}: {READOUT_LIMITS[exporter]})"
            )
        # the temporary files of a run killed while it wrote this bundle (its manifest is not there)
        for folder in (self.directory, self.directory / "sequences"):
            remove_stale_temporaries(folder)
        schedules = job_schedules(self.model, self.profile, self.recipe, jobs)
        files: dict[str, dict[str, str]] = {}
        rotations: dict[str, dict[str, Any]] = {}
        for job in jobs:
            files[job.key] = {}
            for basis in job.bases:
                schedule = dataclasses.replace(schedules[job.key], readout=basis)
                files[job.key][basis] = self._export(schedule, file_stem(job, basis), exporter)
                bias = readout_bias(schedule, self.profile) if exporter == "pulser" else None
                if bias is not None:
                    rotations.setdefault(job.key, {})[basis] = bias.to_document()
        (self.directory / "counts").mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            self.directory / COUNTS_FORMAT, shipped_document(COUNTS_FORMAT).read_text("utf-8")
        )
        metadata = batch_metadata(
            self.name,
            self.profile,
            recipe=self.recipe.name,
            written=dt.datetime.now(dt.UTC).isoformat(),
            device_time_s=device_time(schedules, jobs, self.profile),
        )
        manifest = {
            "metadata": metadata,
            "jobs": [job_document(job) for job in jobs],
            "format": exporter,
            "files": files,
        }
        if rotations:  # per job and basis: the rotation pulse an X or Y file plays, and its bias
            manifest["readout_rotations"] = rotations
        write_json(self.manifest_path, manifest, BUNDLE_SCHEMA)

    def _export(self, schedule: Any, stem: str, exporter: str) -> str:
        folder = self.directory / "sequences"
        folder.mkdir(parents=True, exist_ok=True)
        path = export_schedule(schedule, self.profile, folder / stem, exporter)
        return f"sequences/{path.name}"

    def _read_counts(self, job: PhaseJob) -> dict[str, SettingCounts]:
        out = {}
        n = self.model.n_qubits
        for basis in job.bases:
            path = self.directory / "counts" / f"{file_stem(job, basis)}.json"
            where = f"bundle {self.directory}: counts of job {job.key!r} in basis {basis}"
            if not path.exists():
                raise BundlePending(f"{where}: no file {path.name} in counts/ yet")
            try:
                document = read_json(path, COUNTS_SCHEMA)
            except StorageError as exc:
                raise MeasurementError(f"{where}: {exc}") from None
            if document.get("job") != job.key or document.get("bases") != basis:
                said = f"job {document.get('job')!r}, bases {document.get('bases')!r}"
                raise MeasurementError(f"{where}: {path.name} says {said}")
            counts = bitstring_counts(basis, document.get("counts"), n, where)
            if counts.shots != job.shots:
                raise MeasurementError(f"{where}: {counts.shots} shots, the manifest asks for {job.shots}")
            out[basis] = counts
        return out

    def _refuse_strays(self, jobs: Sequence[PhaseJob]) -> None:
        expected = {f"{file_stem(job, basis)}.json" for job in jobs for basis in job.bases}
        strays = sorted(
            p.name for p in (self.directory / "counts").glob("*.json") if p.name not in expected
        )
        if strays:
            raise MeasurementError(
                f"bundle {self.directory}: counts file {strays[0]} is for no job of the manifest"
            )


def write_counts_file(path: str | Path, job: PhaseJob, basis: str, counts: dict[str, int]) -> None:
    """What a lab writes for one sequence (used by tests and lab scripts)."""
    write_json(path, {"job": job.key, "bases": basis, "counts": counts}, COUNTS_SCHEMA)


def dense_to_bitstrings(dense: Any, n: int) -> dict[str, int]:
    """Counts indexed by basis index (2^n,) as bitstring → count, qubit 0 the leftmost character."""
    return {format(i, f"0{n}b"): int(c) for i, c in enumerate(np.asarray(dense)) if c}
