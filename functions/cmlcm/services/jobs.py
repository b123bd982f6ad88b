"""Scheduled-job heartbeats and the health report built from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cmlcm.domain.jobs import JobHeartbeat
from cmlcm.domain.settings import Settings
from cmlcm.ports import JobRepository

COLLECT_JOB = "collect_metrics"
RECONCILE_JOB = "reconcile"


def job_intervals(settings: Settings) -> dict[str, int]:
    """Every scheduled job and its period in seconds, from the live settings."""
    return {
        COLLECT_JOB: settings.collect_interval_minutes * 60,
        RECONCILE_JOB: settings.reconcile_interval_minutes * 60,
    }


def record_start(jobs: JobRepository, job: str, *, interval_seconds: int, now: datetime) -> JobHeartbeat:
    previous = jobs.get(job)
    beat = (previous or JobHeartbeat(job=job, interval_seconds=interval_seconds)).model_copy(
        update={"interval_seconds": interval_seconds, "last_started_at": now, "last_status": "running"}
    )
    jobs.put(beat)
    return beat


def record_finish(
    jobs: JobRepository,
    job: str,
    *,
    interval_seconds: int,
    now: datetime,
    succeeded: bool,
    summary: dict[str, int | float | str],
) -> JobHeartbeat:
    previous = jobs.get(job) or JobHeartbeat(job=job, interval_seconds=interval_seconds)
    beat = previous.model_copy(
        update={
            "interval_seconds": interval_seconds,
            "last_finished_at": now,
            "last_status": "succeeded" if succeeded else "failed",
            "last_summary": summary,
        }
    )
    jobs.put(beat)
    return beat


def health_report(jobs: JobRepository, settings: Settings, *, now: datetime) -> dict[str, Any]:
    """`degraded` when any job is overdue (never ran, or no run finished within 2 periods)
    or its last run failed."""
    report = []
    for job, interval in job_intervals(settings).items():
        beat = jobs.get(job) or JobHeartbeat(job=job, interval_seconds=interval)
        beat = beat.model_copy(update={"interval_seconds": interval})
        report.append(
            {
                **beat.model_dump(mode="json"),
                "overdue": beat.overdue(now),
                "never_ran": beat.last_started_at is None,
            }
        )
    healthy = all(not j["overdue"] and j["last_status"] != "failed" for j in report)
    return {"status": "ok" if healthy else "degraded", "now": now.isoformat(), "jobs": report}
