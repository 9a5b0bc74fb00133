"""The ``pasqal-cloud`` backend: each job runs on Pasqal's cloud (a QPU, or one of its emulators).

Every job's schedule (the recipe's adiabatic ramp to the job's controls, through the profile) is
compiled to a Pulser sequence on the profile's device, measured in Z and submitted as one batch of
one job with ``runs`` = the job's shots (:mod:`qep_analog.sequences.cloud`). The run waits for all of
them — polling every ``poll_interval_s`` seconds, at most ``timeout_s`` — and reads each job's
counts (bitstring -> shots), checked against the job: n characters, the shots asked for. A batch or
job that fails, is cancelled or is not done in time is a one-line :class:`MeasurementError` naming
the phase job and the batch.

The cloud reads Z only: a job with an X or Y basis is refused before anything is submitted. The
profile must be the strict one (the device the sequences are validated for). Without a
``connection`` the backend logs in with pasqal-cloud (the ``cloud`` extra) on its first run, with the
credentials given or ``PASQAL_PROJECT_ID``, ``PASQAL_USERNAME`` and ``PASQAL_PASSWORD``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from typing import Any

from qep_analog.backends.jobs import (
    BatchResult,
    JobResult,
    PhaseJob,
    batch_metadata,
    bitstring_counts,
    require_counts,
)
from qep_analog.backends.schedules import RampBiasBudget, device_time
from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError, MeasurementError
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.cloud import (
    RUNNING,
    CloudBatch,
    CloudConnection,
    cloud_credentials,
    emulator_name,
    pasqal_connection,
    require_cloud_profile,
    serialized_sequence,
    status_name,
    submit_sequence,
)
from qep_analog.sequences.phases import realised_model
from qep_analog.sequences.recipes import Recipe


class PasqalCloudBackend(RampBiasBudget):
    """Schedules of ``recipe`` on ``profile`` run on Pasqal's cloud through ``connection`` (anything
    with pasqal-cloud's ``create_batch`` and ``get_batch``; by default a pasqal-cloud client logged
    in with the credentials given or in the environment). ``emulator``: one of the cloud's
    emulators (``"EMU_MPS"``, ...) instead of the QPU. ``clock`` and ``sleep`` (seconds) time the
    polling. With ``bias_budget`` (the default) :meth:`preparation_bias` gives each sample's
    gradient the bias estimate of the ramp its schedules play (up to 14 qubits)."""

    name = "pasqal-cloud"
    #: a lab returns counts only: training needs its shots
    counts_only = True

    def __init__(
        self,
        model: QEPModel,
        profile: DeviceProfile,
        recipe: Recipe,
        *,
        connection: CloudConnection | None = None,
        project_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        emulator: Any = None,
        poll_interval_s: float = 5.0,
        timeout_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        bias_budget: bool = True,
    ) -> None:
        require_cloud_profile(profile)
        if not poll_interval_s >= 0:
            raise ConfigError(f"backend {self.name}: poll_interval_s = {poll_interval_s} must be ≥ 0")
        if not timeout_s > 0:
            raise ConfigError(f"backend {self.name}: timeout_s = {timeout_s} must be positive")
        self.emulator = emulator_name(emulator)
        self._credentials: dict[str, str] = {}
        if connection is None:
            self._credentials = cloud_credentials(project_id, username, password)
            if find_spec("pasqal_cloud") is None:
                from qep_analog.backends.registry import missing_package

                raise missing_package(self.name)
        self.model = realised_model(model, profile)
        self.profile = profile
        self.recipe = recipe
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self._connection = connection
        self._clock = clock
        self._sleep = sleep
        #: whether a step's gradients carry the bias estimate of their preparations
        self.bias_budget = bias_budget

    @property
    def connection(self) -> CloudConnection:
        """The connection given, or a pasqal-cloud client logged in on first use."""
        if self._connection is None:
            self._connection = pasqal_connection(**self._credentials)
        return self._connection

    def run(self, jobs: Sequence[PhaseJob]) -> BatchResult:
        started = time.perf_counter()
        require_counts(self.name, jobs)
        for job in jobs:
            for basis in job.bases:
                if set(basis) != {"Z"}:
                    raise ConfigError(
                        f"backend {self.name}: job {job.key!r} asks for basis {basis}; the cloud reads "
                        "Z only (an X or Y readout is a rotation under interactions: export it to see "
                        "its bias)"
                    )
        schedules = self.job_schedules(jobs)
        # every sequence compiled and validated before the first is submitted
        texts = {
            (job.key, basis): serialized_sequence(
                dataclasses.replace(schedules[job.key], readout=basis), self.profile
            )
            for job in jobs
            for basis in job.bases
        }
        submitted: dict[str, tuple[PhaseJob, str]] = {}
        batch_ids: dict[str, dict[str, str]] = {}
        for job in jobs:
            assert job.shots is not None
            batch_ids[job.key] = {}
            for basis in job.bases:
                text = texts[job.key, basis]
                batch = submit_sequence(self.connection, text, job.shots, device_type=self.emulator)
                submitted[batch.id] = (job, basis)
                batch_ids[job.key][basis] = batch.id
        finished = self._wait(submitted)
        results = []
        for job in jobs:
            counts = {
                basis: self._counts(finished[batch_ids[job.key][basis]], job, basis) for basis in job.bases
            }
            results.append(JobResult(job.key, counts=counts))
        metadata = batch_metadata(
            self.name,
            self.profile,
            recipe=self.recipe.name,
            emulator=self.emulator,
            batches=batch_ids,
            wall_time_s=time.perf_counter() - started,
            device_time_s=device_time(schedules, jobs, self.profile),
        )
        return BatchResult(tuple(results), metadata)

    def _wait(self, submitted: dict[str, tuple[PhaseJob, str]]) -> dict[str, CloudBatch]:
        """Every submitted batch once it has ended, by batch id; one that ended other than ``DONE``,
        or is still running after ``timeout_s``, is a one-line error."""
        pending = dict(submitted)
        finished: dict[str, CloudBatch] = {}
        deadline = self._clock() + self.timeout_s
        while True:
            statuses = {}
            for batch_id, (job, basis) in list(pending.items()):
                batch = self.connection.get_batch(batch_id)
                status = status_name(batch.status)
                if status in RUNNING:
                    statuses[batch_id] = status
                    continue
                if status != "DONE":
                    raise MeasurementError(f"{self._where(job, basis, batch_id)}: the batch ended {status}")
                finished[batch_id] = batch
                del pending[batch_id]
            if not pending:
                return finished
            if self._clock() >= deadline:
                batch_id, status = next(iter(statuses.items()))
                job, basis = pending[batch_id]
                raise MeasurementError(
                    f"{self._where(job, basis, batch_id)}: still {status} after {self.timeout_s:g} s "
                    f"(timeout_s; {len(pending)} batches unfinished, left on the cloud)"
                )
            self._sleep(self.poll_interval_s)

    def _counts(self, batch: CloudBatch, job: PhaseJob, basis: str) -> SettingCounts:
        where = self._where(job, basis, batch.id)
        cloud_jobs = list(batch.ordered_jobs)
        if len(cloud_jobs) != 1:
            raise MeasurementError(f"{where}: {len(cloud_jobs)} jobs in the batch, not 1")
        (cloud_job,) = cloud_jobs
        status = status_name(cloud_job.status)
        if status != "DONE":
            raise MeasurementError(f"{where}: its job {cloud_job.id} ended {status}")
        counts = bitstring_counts(basis, cloud_job.result, self.model.n_qubits, where)
        if counts.shots != job.shots:
            raise MeasurementError(f"{where}: {counts.shots} shots, the job asks for {job.shots}")
        return counts

    @staticmethod
    def _where(job: PhaseJob, basis: str, batch_id: str) -> str:
        return f"Pasqal cloud: job {job.key!r} in basis {basis} (batch {batch_id})"
