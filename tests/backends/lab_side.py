"""A lab's side of a job bundle, for the tests: every bundle under a folder still without counts is
played on a lab object (a fake lab) as the ``fake-lab`` backend would in process, and its counts
files are dropped in."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pulser import Sequence as PulserSequence

from qep_analog.backends.bundle import dense_to_bitstrings, file_stem, write_counts_file
from qep_analog.backends.jobs import PhaseJob
from qep_analog.backends.schedules import job_schedules
from qep_analog.devices.profile import DeviceProfile
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.recipes import Recipe


def play_bundles(
    folder: Path, lab: Any, model: QEPModel, profile: DeviceProfile, recipe: Recipe, seed: int | None = None
) -> int:
    """Play the bundles under ``folder`` that have no counts yet; the number played. With ``seed``
    each training round ``step-NNNNN/free|nudged`` draws its shots from (seed, step, round), as the
    trainer reseeds an in-process backend. Each Pulser sequence file is loaded with Pulser first."""
    played = 0
    for manifest_path in sorted(folder.rglob("manifest.json")):
        bundle = manifest_path.parent
        if any(bundle.glob("counts/*.json")):
            continue
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if seed is not None:
            step = int(bundle.parent.name.split("-")[1])
            lab.reseed((seed, step, 0 if bundle.name == "free" else 1))
        jobs = [
            PhaseJob(
                j["sample"],
                j["phase"],
                tuple(j["x"]),
                tuple(j["theta"]),
                tuple(j["nu"]),
                tuple(j["bases"]),
                j["shots"],
            )
            for j in manifest["jobs"]
        ]
        schedules = job_schedules(model, profile, recipe, jobs)
        for job in jobs:
            sequence_file = bundle / manifest["files"][job.key][job.bases[0]]
            if sequence_file.name.endswith(".pulser.json"):
                sequence = PulserSequence.from_abstract_repr(sequence_file.read_text(encoding="utf-8"))
                assert len(sequence.register.qubits) == model.n_qubits
            read = [dataclasses.replace(schedules[job.key], readout=b) for b in job.bases]
            for basis, dense in zip(job.bases, lab.run_schedules(read, job.shots), strict=True):
                counts = dense_to_bitstrings(dense, model.n_qubits)
                write_counts_file(bundle / "counts" / f"{file_stem(job, basis)}.json", job, basis, counts)
        played += 1
    return played
