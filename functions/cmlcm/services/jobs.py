"""Scheduled-job heartbeats and the health report built from them."""

from __future__ import annotations

from datetime import datetime, timedelta
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


#: How long a run may hold its job's lease: the collection state machine's TimeoutSeconds (a test
#: holds the ASL to it), and the reconciler Lambda's timeout with room to spare. A run that dies
#: without releasing blocks the next runs for at most this long.
RUN_LEASE_SECONDS = {COLLECT_JOB: 900, RECONCILE_JOB: 900}


def begin_run(
    jobs: JobRepository, job: str, run_id: str, *, interval_seconds: int, now: datetime
) -> JobHeartbeat | None:
    """Start one run of `job` if no other run holds its lease: take the lease, record the start,
    return the heartbeat. When another run holds it, record the skip and return None: two runs of
    one job at once (a run longer than the schedule's interval, a manual run beside a scheduled
    one) would only double the load that made the first one slow."""
    holder = jobs.claim_lease(job, run_id, now=now, until=now + timedelta(seconds=RUN_LEASE_SECONDS[job]))
    if holder is not None:
        previous = jobs.get(job) or JobHeartbeat(job=job, interval_seconds=interval_seconds)
        jobs.put(previous.model_copy(update={"skipped_runs": previous.skipped_runs + 1, "last_skipped_at": now}))
        return None
    return record_start(jobs, job, interval_seconds=interval_seconds, now=now)


def end_run(jobs: JobRepository, job: str, run_id: str) -> None:
    """Give the job's lease back (after its heartbeat is recorded)."""
    jobs.release_lease(job, run_id)


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
        report.append(health_entry(beat.model_copy(update={"interval_seconds": interval}), now=now))
    healthy = all(not j["overdue"] and j["last_status"] != "failed" for j in report)
    return {"status": "ok" if healthy else "degraded", "now": now.isoformat(), "jobs": report}


def health_entry(beat: JobHeartbeat, *, now: datetime) -> dict[str, Any]:
    """One job's entry of the health report (GET /health's `jobs` items, `job.finished` events)."""
    return {**beat.model_dump(mode="json"), "overdue": beat.overdue(now), "never_ran": beat.last_started_at is None}
