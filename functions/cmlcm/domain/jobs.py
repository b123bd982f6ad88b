"""Scheduled-job heartbeats and metric samples: small value objects with pure rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

#: The scheduled jobs, by the names the API, heartbeats, leases and schedules use.
COLLECT_JOB = "collect_metrics"
RECONCILE_JOB = "reconcile"
JOBS = (COLLECT_JOB, RECONCILE_JOB)

#: What started a run: its EventBridge schedule (the local scheduler loop locally), or a person
#: (`POST /jobs/{job}/run`, the local mode's tools).
RunTrigger = Literal["schedule", "manual"]


@dataclass(frozen=True)
class RunRequest:
    """One run of a job as it was asked for: its id (the lease's holder), what started it and who."""

    run_id: str
    trigger: RunTrigger = "schedule"
    by: str | None = None


@dataclass(frozen=True)
class Metric:
    """One metric of a run (an EMF metric on AWS: the alarms and the dashboard read them)."""

    name: str
    value: float
    unit: Literal["Count", "Milliseconds"] = "Count"


@dataclass(frozen=True)
class JobOutcome:
    """What one run of a scheduled job did: recorded on its heartbeat, published as metrics."""

    succeeded: bool
    summary: dict[str, int | float | str]
    metrics: tuple[Metric, ...] = field(default=())


class JobHeartbeat(BaseModel):
    """What the last run of a scheduled job did, and when the next run is due."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: str
    interval_seconds: int
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_status: Literal["running", "succeeded", "failed"] | None = None
    last_summary: dict[str, int | float | str] = {}
    #: Runs that found another run of the job still holding its lease and ended at once.
    skipped_runs: int = 0
    last_skipped_at: datetime | None = None
    #: Why the last skipped run ended at once: another run held the lease, or the job is paused.
    last_skip_reason: Literal["lease_held", "paused"] | None = None
    #: What started the last run, and who when a person did.
    last_trigger: RunTrigger | None = None
    last_triggered_by: str | None = None
    #: When the schedule last started a run (the base of `next_run_at`; manual runs do not move it).
    last_scheduled_at: datetime | None = None

    def overdue(self, now: datetime, *, grace: float = 2.0) -> bool:
        """Overdue when no run finished within `grace` intervals (a missed schedule or a
        run that hangs both show); a job that never ran is overdue once an interval passed
        since it was first expected (`last_started_at` is None → overdue)."""
        reference = self.last_finished_at or self.last_started_at
        if reference is None:
            return True
        return now - reference > timedelta(seconds=self.interval_seconds * grace)


def next_run_at(beat: JobHeartbeat, *, paused: bool, now: datetime) -> datetime | None:
    """When the schedule should next start the job: the last scheduled start plus whole
    intervals, the first one not before `now`. EventBridge Scheduler does not say when a rate
    schedule fires next, so this is an estimate from what the runs recorded; None when paused
    (nothing will start it) or when no scheduled run was ever recorded (no base to count from)."""
    if paused:
        return None
    base = beat.last_scheduled_at
    if base is None:
        return None
    period = timedelta(seconds=max(1, beat.interval_seconds))
    if base + period >= now:
        return base + period
    missed = (now - base) // period
    candidate = base + period * missed
    return candidate if candidate >= now else candidate + period


class JobControl(BaseModel):
    """An administrator's decision about a job's schedule: paused or not, by whom, when. Stored
    apart from the heartbeat (runs rewrite the heartbeat; a pause must not be lost in that race)
    and the truth the EventBridge schedule's State is kept on: a scheduled run of a paused job
    ends at once, so a deployment that re-enables the schedule cannot resume it behind the
    administrator's back."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: str
    paused: bool = False
    changed_by: str | None = None
    changed_at: datetime | None = None


class MetricSample(BaseModel):
    """One point of a worker's time series, for charts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str
    at: datetime
    cpu_percent: float | None = None
    memory_percent: float | None = None
    labs_running: int | None = None
    nodes_running: int | None = None
