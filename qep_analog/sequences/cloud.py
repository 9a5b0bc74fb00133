"""Submission of Rydberg schedules to Pasqal's cloud through pulser-pasqal (optional extra ``cloud``).

    pip install -e ".[cloud]"
    connection = pasqal_connection(project_id="...", username="...")   # password asked by pasqal-cloud
    submit_schedules(schedules, profile, connection, shots=500)

Each schedule is compiled to a Pulser sequence (validated by Pulser for the profile's device) and
submitted as one batch with ``job_params=[{"runs": shots}]``. The connection is any object with
pulser-pasqal's ``PasqalCloud.submit(sequence, job_params=..., wait=...)``; tests pass a recording one.
"""

from __future__ import annotations

from typing import Any, Protocol

from qep_analog.devices.profile import DeviceProfile
from qep_analog.errors import ConfigError
from qep_analog.sequences.pulser_export import to_pulser_sequence
from qep_analog.sequences.schedule import Schedule


class Connection(Protocol):
    def submit(self, sequence: Any, **kwargs: Any) -> Any: ...


def pasqal_connection(project_id: str, username: str, password: str | None = None) -> Connection:
    """A ``pulser_pasqal.PasqalCloud`` connection (needs the ``cloud`` extra and an account)."""
    try:
        from pulser_pasqal import PasqalCloud
    except ImportError:
        raise ConfigError(
            'Pasqal cloud: pulser-pasqal is not installed (pip install -e ".[cloud]")'
        ) from None
    return PasqalCloud(username=username, password=password, project_id=project_id)


def submit_schedules(
    schedules: list[Schedule],
    profile: DeviceProfile,
    connection: Connection,
    shots: int,
    wait: bool = False,
) -> list[Any]:
    """Compile, validate and submit every schedule; returns the connection's batch handles."""
    if shots < 1:
        raise ConfigError(f"Pasqal cloud: shots = {shots} must be positive")
    if not profile.strict:
        raise ConfigError(
            f"Pasqal cloud: device {profile.label!r} is an emulation variant; use the strict one"
        )
    sequences = [to_pulser_sequence(schedule, profile) for schedule in schedules]
    return [connection.submit(sequence, job_params=[{"runs": shots}], wait=wait) for sequence in sequences]
