"""The ``pasqal-cloud`` backend without the network: a recording connection takes every batch and
answers with counts drawn from the exact ground state of the job. The sequences it receives are
Pulser's abstract JSON of the profile's device and register; the gradient from its counts agrees
with the exact one within error bars; failed, malformed and late results are one-line errors.

pasqal-cloud itself is needed only by the tests of the connection it builds (skipped without it)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any

import numpy as np
import pytest
from pulser import Sequence as PulserSequence

import qep_analog as qa
from qep_analog.backends.estimate import sample_gradients
from qep_analog.backends.jobs import PhaseJob, phase_jobs
from qep_analog.backends.registry import make_backend
from qep_analog.backends.schedules import job_schedules
from qep_analog.devices.pulser_device import to_pulser_device
from qep_analog.errors import ConfigError, MeasurementError
from qep_analog.measurement.estimators import SettingCounts
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel
from qep_analog.sequences.cloud import CREDENTIALS, pasqal_connection
from qep_analog.sequences.recipes import Recipe

N = 4
BETA = 0.1
HAS_PASQAL_CLOUD = find_spec("pasqal_cloud") is not None


def _tiny() -> tuple[QEPModel, qa.DeviceProfile, np.ndarray, Recipe]:
    """A 4-atom chain under a fixed drive whose trainable terms (detuning, staggered detuning map,
    couplings) and output are all diagonal: the cloud's Z readout measures every one."""
    trainable = {
        "delta": pauli_sum((1.0, f"Z{i}") for i in range(N)),
        "s": pauli_sum(((-1.0) ** i, f"Z{i}") for i in range(N)),
        "J": pauli_sum((1.0, f"Z{i} Z{i + 1}") for i in range(N - 1)),
    }
    drive = pauli_sum((4.0, f"X{i}") for i in range(N))
    model = QEPModel(N, trainable, {"m": pauli_sum([(0.5, "Z0"), (0.5, "Z1")])}, drive)
    return (
        model,
        qa.read_profile("fresnel-like"),
        np.array([3.0, 0.5, 1.5]),
        qa.load_recipe("rydberg-smooth"),
    )


@dataclass
class FakeJob:
    id: str
    status: str
    result: dict[str, Any] | None


@dataclass
class FakeBatch:
    id: str
    status: str
    ordered_jobs: list[FakeJob] = field(default_factory=list)


class RecordingCloud:
    """Records every ``create_batch`` call; batch k ends after ``polls`` looks (never with
    ``polls=None``) with ``counts[k]``, in ``batch_status`` with its job in ``job_status``."""

    def __init__(self, counts: list[dict[str, Any]], polls: int | None = 2) -> None:
        self.counts = counts
        self.polls = polls
        self.batch_status = "DONE"
        self.job_status = "DONE"
        self.calls: list[dict[str, Any]] = []
        self.looks: dict[str, int] = {}

    def create_batch(
        self, serialized_sequence: str, jobs: list[dict[str, Any]], **options: Any
    ) -> FakeBatch:
        self.calls.append({"serialized_sequence": serialized_sequence, "jobs": jobs, **options})
        return FakeBatch(f"batch-{len(self.calls)}", "PENDING")

    def get_batch(self, id: str) -> FakeBatch:
        self.looks[id] = self.looks.get(id, 0) + 1
        k = int(id.removeprefix("batch-"))
        if self.polls is None or self.looks[id] < self.polls:
            return FakeBatch(id, "RUNNING", [FakeJob(f"job-{k}", "RUNNING", None)])
        return FakeBatch(id, self.batch_status, [FakeJob(f"job-{k}", self.job_status, self.counts[k - 1])])


def _bitstrings(counts: SettingCounts) -> dict[str, int]:
    return {format(int(o), f"0{N}b"): int(c) for o, c in zip(counts.outcomes, counts.counts, strict=True)}


def _exact_counts(model: QEPModel, profile: qa.DeviceProfile, jobs: list[PhaseJob]) -> list[dict[str, int]]:
    """Counts of the exact ground state of every job and basis (with the profile's readout errors),
    as bitstrings, in the order the backend submits them."""
    batch = make_backend("exact", model, profile, seed=11).run(jobs)
    out = []
    for job, result in zip(jobs, batch.results, strict=True):
        assert result.counts is not None
        out += [_bitstrings(result.counts[basis]) for basis in job.bases]
    return out


def _backend(cloud: RecordingCloud, **options: Any) -> Any:
    model, profile, _, recipe = _tiny()
    options = {"poll_interval_s": 0.0, **options}
    return make_backend("pasqal-cloud", model, profile, recipe, connection=cloud, **options)


def _jobs(shots: int, bases: tuple[str, ...] = ("Z" * N,)) -> list[PhaseJob]:
    _, _, theta, _ = _tiny()
    return phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", list(bases), shots)


def test_each_job_is_one_batch_of_its_pulser_sequence() -> None:
    model, profile, _, recipe = _tiny()
    jobs = _jobs(500)
    cloud = RecordingCloud(_exact_counts(model, profile, jobs))
    backend = _backend(cloud, emulator="EMU_MPS")
    batch = backend.run(jobs)

    assert len(cloud.calls) == 3  # plus, minus, free: one basis each
    schedules = job_schedules(backend.model, profile, recipe, jobs)
    for job, call in zip(jobs, cloud.calls, strict=True):
        assert call["jobs"] == [{"runs": 500}]
        assert call["device_type"] == "EMU_MPS" and call["wait"] is False
        sequence = PulserSequence.from_abstract_repr(call["serialized_sequence"])
        assert sequence.device.name == profile.name and sequence.device == to_pulser_device(profile)
        positions = np.array([q.as_array() for q in sequence.register.qubits.values()])
        np.testing.assert_allclose(positions, schedules[job.key].static["positions"], atol=1e-9)
        assert sequence.is_measured() and sequence.get_measurement_basis() == "ground-rydberg"
        assert sequence.get_duration() == 4000
    assert len({call["serialized_sequence"] for call in cloud.calls}) == 3  # the nudges differ

    for k, (job, result) in enumerate(zip(jobs, batch.results, strict=True)):
        assert result.key == job.key and result.counts is not None
        counts = result.counts["Z" * N]
        assert _bitstrings(counts) == cloud.counts[k] and counts.shots == 500
    metadata = batch.metadata
    assert metadata["backend"] == "pasqal-cloud" and metadata["emulator"] == "EMU_MPS"
    assert [job.key for job in jobs] == ["0/plus", "0/minus", "0/free"]
    assert metadata["batches"] == {job.key: {"ZZZZ": f"batch-{k + 1}"} for k, job in enumerate(jobs)}
    assert metadata["device"]["snapshot_hash"] == profile.snapshot_hash
    per_shot = 4.0 + backend.profile.capabilities.shot_overhead  # µs: the sequence and the overhead
    assert metadata["device_time_s"] == pytest.approx(3 * 500 * per_shot * 1e-6)
    assert cloud.looks == {"batch-1": 2, "batch-2": 2, "batch-3": 2}  # polled until done


def test_cloud_counts_give_the_exact_gradient_within_error_bars() -> None:
    model, profile, theta, _ = _tiny()
    exact = make_backend("exact", model, profile)
    exact_jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", ["Z" * N], None)
    truth = sample_gradients(exact.model, exact_jobs, exact.run(exact_jobs), BETA, "symmetric")[0]
    jobs = _jobs(20_000)
    cloud = RecordingCloud(_exact_counts(model, profile, jobs))
    backend = _backend(cloud)
    readout = qa.ReadoutErrors.from_profile(profile, N)  # the profile's readout errors, mitigated
    g = sample_gradients(backend.model, jobs, backend.run(jobs), BETA, "symmetric", readout)[0]
    assert (g.standard_errors > 0).all() and np.abs(truth.values).min() > 0.05
    assert np.abs(g.values - truth.values).max() < 4 * g.standard_errors.max()
    assert g.outputs is not None and g.output_errors is not None and truth.outputs is not None
    assert np.abs(g.outputs - truth.outputs).max() < 4 * g.output_errors.max()


def _one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (
            {"job_status": "ERROR"},
            r"job '0/plus' in basis ZZZZ \(batch batch-1\): its job job-1 ended ERROR",
        ),
        (
            {"batch_status": "CANCELED"},
            r"job '0/plus' in basis ZZZZ \(batch batch-1\): the batch ended CANCELED",
        ),
        (
            {"counts": {1: {"01": 50}}},
            r"job '0/minus' in basis ZZZZ \(batch batch-2\): bitstring '01' is not 4",
        ),
        ({"counts": {2: {"0000": 49}}}, r"job '0/free' .*: 49 shots, the job asks for 50"),
        ({"counts": {0: None}}, r"job '0/plus' .*: 'counts' must be a non-empty mapping"),
    ],
)
def test_failed_or_malformed_results_are_one_line_errors(spoil: dict[str, Any], message: str) -> None:
    jobs = _jobs(50)
    cloud = RecordingCloud([{"0000": 50}] * 3)
    for k, counts in spoil.pop("counts", {}).items():
        cloud.counts[k] = counts
    for attribute, value in spoil.items():
        setattr(cloud, attribute, value)
    with pytest.raises(MeasurementError, match=message) as error:
        _backend(cloud).run(jobs)
    assert _one_line(error).startswith("Pasqal cloud: ")


def test_a_batch_that_never_ends_times_out() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    cloud = RecordingCloud([{"0000": 50}] * 3, polls=None)
    backend = _backend(cloud, poll_interval_s=30.0, timeout_s=300.0, clock=lambda: now[0], sleep=sleep)
    with pytest.raises(MeasurementError, match=r"job '0/plus' .*: still RUNNING after 300 s") as error:
        backend.run(_jobs(50))
    assert "3 batches unfinished" in _one_line(error)
    assert now[0] == 300.0 and cloud.looks["batch-3"] == 11  # every 30 s from 0 to 300 s


def test_refusals_before_anything_is_submitted() -> None:
    model, profile, _, recipe = _tiny()
    cloud = RecordingCloud([])
    with pytest.raises(
        ConfigError, match=r"device 'fresnel-like \(relaxed\)' is an emulation variant"
    ) as e:
        make_backend("pasqal-cloud", model, profile.relaxed(), recipe, connection=cloud)
    _one_line(e)
    with pytest.raises(ConfigError, match=r"device 'yb171-chain' is not a Rydberg array"):
        make_backend("pasqal-cloud", model, qa.read_profile("yb171-chain"), recipe, connection=cloud)
    with pytest.raises(ConfigError, match=r"emulator 'EMU_X' is unknown \(known: EMU_FREE"):
        _backend(cloud, emulator="EMU_X")
    with pytest.raises(ConfigError, match=r"timeout_s = 0 must be positive"):
        _backend(cloud, timeout_s=0)
    backend = _backend(cloud)
    with pytest.raises(ConfigError, match=r"job '0/plus' asks for basis XXXX; the cloud reads Z only") as e:
        backend.run(_jobs(50, ("Z" * N, "X" * N)))
    _one_line(e)
    with pytest.raises(ConfigError, match=r"a lab returns counts; job '0/plus' asks for exact values"):
        backend.run(phase_jobs(np.zeros((1, 0)), [3.0, 0.5, 1.5], [[1.0]], BETA, "symmetric", [], None))
    assert cloud.calls == []


def test_credentials_come_from_arguments_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    model, profile, _, recipe = _tiny()
    for variable in CREDENTIALS.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PASQAL_PROJECT_ID", "project")
    monkeypatch.setenv("PASQAL_USERNAME", "user")
    with pytest.raises(ConfigError, match=r"no password: pass password=\.\.\. or set PASQAL_PASSWORD") as e:
        make_backend("pasqal-cloud", model, profile, recipe)
    _one_line(e)
    monkeypatch.setenv("PASQAL_PASSWORD", "secret")
    monkeypatch.delenv("PASQAL_PROJECT_ID")
    with pytest.raises(
        ConfigError, match=r"no project_id: pass project_id=\.\.\. or set PASQAL_PROJECT_ID"
    ):
        pasqal_connection()
    monkeypatch.setenv("PASQAL_PROJECT_ID", "project")
    if HAS_PASQAL_CLOUD:
        backend = make_backend("pasqal-cloud", model, profile, recipe)
        assert backend._connection is None  # logs in on its first run, not before
    else:
        with pytest.raises(ConfigError, match=r"needs the package 'pasqal_cloud'.*qep-analog\[cloud\]"):
            make_backend("pasqal-cloud", model, profile, recipe)


def test_the_backend_module_does_not_import_pasqal_cloud() -> None:
    code = "import sys, qep_analog.backends.cloud; print('pasqal_cloud' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.skipif(not HAS_PASQAL_CLOUD, reason="pasqal-cloud (the cloud extra) is not installed")
def test_the_connection_is_pasqal_clouds_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the backend uses of pasqal-cloud exists with the names it uses, and ``pasqal_connection``
    logs in with the credentials (the client's login itself needs the network: it is replaced)."""
    from pasqal_cloud import pasqal_cloud_client
    from pasqal_cloud.batch import Batch
    from pasqal_cloud.job import Job

    client = pasqal_cloud_client.PasqalCloudClient
    assert {"serialized_sequence", "jobs", "device_type", "wait"} <= set(
        inspect.signature(client.create_batch).parameters
    )
    assert "id" in inspect.signature(client.get_batch).parameters
    assert {"id", "status"} <= set(Batch.model_fields) and isinstance(Batch.ordered_jobs, property)
    assert {"id", "status"} <= set(Job.model_fields) and isinstance(Job.result, property)

    logins: list[dict[str, Any]] = []
    monkeypatch.setattr(pasqal_cloud_client, "PasqalCloudClient", lambda **kw: logins.append(kw) or kw)
    monkeypatch.setenv("PASQAL_USERNAME", "user")
    monkeypatch.setenv("PASQAL_PASSWORD", "secret")
    pasqal_connection(project_id="project")
    assert logins == [{"project_id": "project", "username": "user", "password": "secret"}]
