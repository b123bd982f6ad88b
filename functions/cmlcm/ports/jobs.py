"""Job ports: heartbeats, leases and pause records, the jobs' schedules, manual runs and a
collection run's batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cmlcm.domain.jobs import JobControl, JobHeartbeat


class JobRepository(Protocol):
    def get(self, job: str) -> JobHeartbeat | None: ...

    def put(self, heartbeat: JobHeartbeat) -> None: ...

    def claim_lease(self, job: str, run_id: str, *, now: datetime, until: datetime) -> str | None:
        """Take the job's run lease for `run_id` until `until`, atomically (a conditional write):
        granted when nobody holds it, when it expired, or when `run_id` already holds it (a retried
        task). Returns None when granted, else the run id that holds it."""

    def release_lease(self, job: str, run_id: str) -> None:
        """Give the lease back if `run_id` still holds it (a later run's lease is left alone)."""

    def get_control(self, job: str) -> JobControl | None:
        """The administrator's pause decision for `job` (None: never paused or resumed)."""

    def put_control(self, control: JobControl) -> None: ...


@dataclass(frozen=True)
class ScheduleState:
    """A job's EventBridge schedule as Scheduler reports it."""

    name: str
    enabled: bool
    expression: str | None = None


class ScheduleRates(Protocol):
    """Moves a job's schedule to the settings' interval (the settings API needs only this)."""

    def set_interval(self, job: str, minutes: int) -> bool: ...


class JobSchedules(ScheduleRates, Protocol):
    """The jobs' schedules (EventBridge Scheduler on AWS, moto's Scheduler locally)."""

    def describe(self, job: str) -> ScheduleState | None:
        """The job's schedule, or None when this deployment has no schedule for it."""

    def set_enabled(self, job: str, enabled: bool) -> bool:
        """Set the schedule's State (ENABLED/DISABLED), keeping the rest; False when none."""


class JobStarter(Protocol):
    """Starts one run of a job outside its schedule (the collection state machine, the
    reconciler function), as its schedule would, marked manual."""

    def run_id(self, job: str, name: str) -> str:
        """The run id the run named `name` will take its lease with (known before it starts)."""

    def start(self, job: str, name: str, *, by: str | None) -> str:
        """Start it (asynchronously); returns the run id."""


class CollectRuns(Protocol):
    """Where a collection run keeps its batches and their outcomes (not in the state's payload)."""

    def put_batches(self, run: str, batches: Sequence[Sequence[str]]) -> str:
        """Store the run's batches of worker ids; returns the key the Map's ItemReader reads."""

    def batches(self, run: str) -> list[list[str]]: ...

    def put_result(self, run: str, index: int, outcome: dict[str, Any]) -> None:
        """Store batch `index`'s outcome (a retried batch overwrites its own)."""

    def results(self, run: str) -> dict[int, dict[str, Any]]:
        """Every stored outcome of the run, by batch index."""
