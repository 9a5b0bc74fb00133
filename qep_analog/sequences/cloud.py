"""Rydberg schedules on Pasqal's cloud through pasqal-cloud (optional extra ``cloud``).

    pip install -e ".[cloud]"
    connection = pasqal_connection()    # PASQAL_PROJECT_ID, PASQAL_USERNAME, PASQAL_PASSWORD
    batches = submit_schedules(schedules, profile, connection, shots=500)

Each schedule is compiled to a Pulser sequence (validated by Pulser for the profile's device),
measured in the ground-rydberg basis, serialized with Pulser's abstract representation and submitted
as one batch of one job: ``create_batch(serialized_sequence=..., jobs=[{"runs": shots}])``. The
cloud reads every atom in Z (1: Rydberg, qubit 0 the leftmost character, as our bitstrings); an X or
Y readout, which the Pulser export plays as a rotation under interactions (biased), is refused here.
The connection is anything
with pasqal-cloud's ``create_batch`` and ``get_batch`` (:class:`CloudConnection`); pasqal-cloud is
imported only when :func:`pasqal_connection` builds the real one, its ``PasqalCloudClient``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.sequences.pulser_export import EXPORTER, readout_sequence
from qep_analog.sequences.schedule import Schedule

#: keyword of :func:`pasqal_connection` -> the environment variable it falls back to
CREDENTIALS = {
    "project_id": "PASQAL_PROJECT_ID",
    "username": "PASQAL_USERNAME",
    "password": "PASQAL_PASSWORD",
}
#: the cloud's emulators (pasqal-cloud's ``DeviceTypeName``); ``None`` runs on the QPU of the sequence
EMULATORS = ("EMU_FREE", "EMU_MPS", "EMU_SV", "EMU_FRESNEL")
#: batch and job statuses of pasqal-cloud that are not final yet
RUNNING = frozenset({"PENDING", "RUNNING", "PAUSED"})


class CloudJob(Protocol):
    """One job of a batch: its ``status`` and, once ``DONE``, its counts (bitstring -> shots)."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> Any: ...

    @property
    def result(self) -> Mapping[str, Any] | None: ...


class CloudBatch(Protocol):
    """A submitted batch: its ``id``, ``status`` and jobs in the order they were given."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> Any: ...

    @property
    def ordered_jobs(self) -> Sequence[CloudJob]: ...


class CloudConnection(Protocol):
    """What the cloud path uses of pasqal-cloud's ``PasqalCloudClient``."""

    def create_batch(
        self, serialized_sequence: str, jobs: list[dict[str, Any]], *, device_type: Any, wait: bool
    ) -> CloudBatch: ...

    def get_batch(self, id: str) -> CloudBatch: ...


def status_name(status: Any) -> str:
    """A status as its name (pasqal-cloud gives strings; some versions enums)."""
    return str(getattr(status, "value", status))


def cloud_credentials(
    project_id: str | None = None, username: str | None = None, password: str | None = None
) -> dict[str, str]:
    """The account to log in with: each value given, or its environment variable; a missing one is
    a one-line error naming the variable."""
    given = {"project_id": project_id, "username": username, "password": password}
    out = {}
    for keyword, variable in CREDENTIALS.items():
        value = given[keyword] or os.environ.get(variable, "")
        if not value:
            raise ConfigError(f"Pasqal cloud: no {keyword}: pass {keyword}=... or set {variable}")
        out[keyword] = value
    return out


def pasqal_connection(
    project_id: str | None = None, username: str | None = None, password: str | None = None
) -> CloudConnection:
    """A logged-in ``pasqal_cloud`` client (needs the ``cloud`` extra and an account; credentials
    from the arguments or ``PASQAL_PROJECT_ID``, ``PASQAL_USERNAME``, ``PASQAL_PASSWORD``)."""
    credentials = cloud_credentials(project_id, username, password)
    try:
        from pasqal_cloud.pasqal_cloud_client import PasqalCloudClient
    except ImportError:
        raise ConfigError(
            "Pasqal cloud: needs the package 'pasqal_cloud', not installed: pip install 'qep-analog[cloud]'"
        ) from None
    client: Any = PasqalCloudClient(
        username=credentials["username"],
        password=credentials["password"],
        project_id=credentials["project_id"],
    )
    return client


def require_cloud_profile(profile: DeviceProfile) -> None:
    """The cloud runs the strict profile of a Rydberg array; anything else is a one-line error."""
    if profile.platform_spec.exporter != EXPORTER:
        raise ConfigError(f"Pasqal cloud: device {profile.label!r} is not a Rydberg array")
    if not profile.strict:
        raise ConfigError(
            f"Pasqal cloud: device {profile.label!r} is an emulation variant; use the strict one"
        )


def emulator_name(emulator: Any) -> str | None:
    """The cloud emulator's name (``None``: the QPU); an unknown one is a one-line error."""
    if emulator is None:
        return None
    name = status_name(emulator)
    if name not in EMULATORS:
        raise ConfigError(f"Pasqal cloud: emulator {name!r} is unknown (known: {', '.join(EMULATORS)})")
    return name


def serialized_sequence(schedule: Schedule, profile: DeviceProfile) -> str:
    """The schedule as the cloud takes it: a Pulser sequence on the profile's device, measured in the
    ground-rydberg basis, in Pulser's abstract JSON."""
    if set(schedule.readout) != {"Z"}:
        raise ConfigError(
            f"Pasqal cloud: schedule {schedule.label!r} reads in {schedule.readout}; the cloud reads Z "
            "only (an X or Y readout is a rotation under interactions: export it to see its bias)"
        )
    text: str = readout_sequence(schedule, profile).to_abstract_repr()
    return text


def submit_sequence(
    connection: CloudConnection, text: str, shots: int, *, device_type: str | None, wait: bool = False
) -> CloudBatch:
    """One serialized sequence as a batch of one job of ``shots`` runs (on the QPU of the sequence,
    or the emulator ``device_type``)."""
    return connection.create_batch(
        serialized_sequence=text, jobs=[{"runs": shots}], device_type=device_type, wait=wait
    )


def submit_schedules(
    schedules: Sequence[Schedule],
    profile: DeviceProfile,
    connection: CloudConnection,
    shots: int,
    *,
    emulator: Any = None,
    wait: bool = False,
) -> list[CloudBatch]:
    """Compile and validate every schedule, then submit each as a batch of one job of ``shots``
    runs, on the QPU or on ``emulator`` (one of :data:`EMULATORS`); returns the batches."""
    if isinstance(shots, bool) or shots < 1:
        raise ConfigError(f"Pasqal cloud: shots = {shots} must be positive")
    require_cloud_profile(profile)
    device_type = emulator_name(emulator)
    texts = [serialized_sequence(schedule, profile) for schedule in schedules]
    return [submit_sequence(connection, text, shots, device_type=device_type, wait=wait) for text in texts]
