"""Scheduled-job heartbeats and metric samples: small value objects with pure rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict


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

    def overdue(self, now: datetime, *, grace: float = 2.0) -> bool:
        """Overdue when no run finished within `grace` intervals (a missed schedule or a
        run that hangs both show); a job that never ran is overdue once an interval passed
        since it was first expected (`last_started_at` is None → overdue)."""
        reference = self.last_finished_at or self.last_started_at
        if reference is None:
            return True
        return now - reference > timedelta(seconds=self.interval_seconds * grace)


class MetricSample(BaseModel):
    """One point of a worker's time series, for charts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str
    at: datetime
    cpu_percent: float | None = None
    memory_percent: float | None = None
    labs_running: int | None = None
    nodes_running: int | None = None
