"""Scheduled jobs: heartbeats and run leases, the health report built from them, and the jobs
API's use cases (list, run now, pause, resume).

A job's pause is recorded first (`JobControl`, the truth) and then applied to its EventBridge
schedule (State DISABLED); a scheduled run that still starts (the schedule update failed, or a
deployment put the template's State back) finds the job paused and ends at once, and the next
collection run puts the schedules' State back on the records (`heal_schedule_states`). A manual
run takes the job's lease before it starts, with the run id the run will use, so it never
overlaps a scheduled run: the lease is held (409) or the run is started holding it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cmlcm.domain.errors import Conflict, ExternalServiceError, NotFound
from cmlcm.domain.jobs import (
    COLLECT_JOB,
    JOBS,
    RECONCILE_JOB,
    JobControl,
    JobHeartbeat,
    JobOutcome,
    RunRequest,
    RunTrigger,
    next_run_at,
)
from cmlcm.domain.settings import Settings
from cmlcm.ports import JobRepository, JobSchedules, JobStarter, ScheduleState

__all__ = ["COLLECT_JOB", "JOBS", "RECONCILE_JOB"]


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


def trigger_of(event_input: Any) -> tuple[RunTrigger, str | None]:
    """What started a run, from its input: `{"trigger": "manual", "by": ...}` from the jobs API
    (and the local tools), anything else is its schedule."""
    if isinstance(event_input, dict) and event_input.get("trigger") == "manual":
        by = event_input.get("by")
        return "manual", str(by)[:128] if by is not None else None
    return "schedule", None


def run_of(event: Any, request_id: str) -> RunRequest:
    """The run a Lambda invocation asks for: a manual run keeps the jobs API's run id (its
    payload's), a scheduled one takes the request id. An async invocation retried by Lambda
    keeps both, so a retry reclaims its own lease."""
    trigger, by = trigger_of(event)
    return RunRequest(str(event.get("run_id") or request_id) if trigger == "manual" else request_id, trigger, by)


def check_job(job: str) -> str:
    """`job` if it names a scheduled job, else `NotFound` (404) naming the field."""
    if job not in JOBS:
        raise NotFound(f"no such job; jobs: {', '.join(JOBS)}", field="job")
    return job


def begin_run(
    jobs: JobRepository,
    job: str,
    run_id: str,
    *,
    interval_seconds: int,
    now: datetime,
    trigger: RunTrigger = "schedule",
    by: str | None = None,
) -> JobHeartbeat | None:
    """Start one run of `job` if it may run: take the lease, record the start, return the
    heartbeat. A scheduled run of a paused job, or any run while another holds the lease, ends
    at once: the skip is recorded (with why) and None returned. Two runs of one job at once (a
    run longer than the schedule's interval, a manual run beside a scheduled one) would only
    double the load that made the first one slow."""
    if trigger == "schedule":
        control = jobs.get_control(job)
        if control is not None and control.paused:
            _record_skip(jobs, job, interval_seconds, now, "paused")
            return None
    holder = jobs.claim_lease(job, run_id, now=now, until=now + timedelta(seconds=RUN_LEASE_SECONDS[job]))
    if holder is not None:
        _record_skip(jobs, job, interval_seconds, now, "lease_held")
        return None
    return record_start(jobs, job, interval_seconds=interval_seconds, now=now, trigger=trigger, by=by)


OutcomeT = TypeVar("OutcomeT", bound=JobOutcome)


def run_job(
    jobs: JobRepository,
    job: str,
    run: RunRequest,
    work: Callable[[], OutcomeT],
    *,
    interval_seconds: int,
    clock: Callable[[], datetime],
) -> OutcomeT | None:
    """One run of `job` in one process: begin it (None when it may not run: see `begin_run`), do
    `work`, record its outcome on the heartbeat and give the lease back (also when `work` raises:
    the heartbeat then says running until the next run)."""
    begun = begin_run(
        jobs, job, run.run_id, interval_seconds=interval_seconds, now=clock(), trigger=run.trigger, by=run.by
    )
    if begun is None:
        return None
    try:
        outcome = work()
        record_finish(jobs, job, interval_seconds=interval_seconds, now=clock(), outcome=outcome)
        return outcome
    finally:
        end_run(jobs, job, run.run_id)


def finish_run(
    jobs: JobRepository, job: str, run_id: str | None, outcome: JobOutcome, *, interval_seconds: int, now: datetime
) -> None:
    """The end of a run begun in another process (the collection's summary step): record the
    outcome, then give the lease back."""
    record_finish(jobs, job, interval_seconds=interval_seconds, now=now, outcome=outcome)
    if run_id:
        end_run(jobs, job, run_id)


def _record_skip(jobs: JobRepository, job: str, interval_seconds: int, now: datetime, reason: str) -> None:
    previous = jobs.get(job) or JobHeartbeat(job=job, interval_seconds=interval_seconds)
    jobs.put(
        previous.model_copy(
            update={"skipped_runs": previous.skipped_runs + 1, "last_skipped_at": now, "last_skip_reason": reason}
        )
    )


def end_run(jobs: JobRepository, job: str, run_id: str) -> None:
    """Give the job's lease back (after its heartbeat is recorded)."""
    jobs.release_lease(job, run_id)


def record_start(
    jobs: JobRepository,
    job: str,
    *,
    interval_seconds: int,
    now: datetime,
    trigger: RunTrigger = "schedule",
    by: str | None = None,
) -> JobHeartbeat:
    previous = jobs.get(job)
    update: dict[str, Any] = {
        "interval_seconds": interval_seconds,
        "last_started_at": now,
        "last_status": "running",
        "last_trigger": trigger,
        "last_triggered_by": by,
    }
    if trigger == "schedule":
        update["last_scheduled_at"] = now
    beat = (previous or JobHeartbeat(job=job, interval_seconds=interval_seconds)).model_copy(update=update)
    jobs.put(beat)
    return beat


def record_finish(
    jobs: JobRepository,
    job: str,
    *,
    interval_seconds: int,
    now: datetime,
    outcome: JobOutcome,
) -> JobHeartbeat:
    previous = jobs.get(job) or JobHeartbeat(job=job, interval_seconds=interval_seconds)
    beat = previous.model_copy(
        update={
            "interval_seconds": interval_seconds,
            "last_finished_at": now,
            "last_status": "succeeded" if outcome.succeeded else "failed",
            "last_summary": outcome.summary,
        }
    )
    jobs.put(beat)
    return beat


def _is_paused(jobs: JobRepository, job: str) -> bool:
    control = jobs.get_control(job)
    return bool(control and control.paused)


def health_report(jobs: JobRepository, settings: Settings, *, now: datetime) -> dict[str, Any]:
    """`degraded` when any job is overdue (never ran, or no run finished within 2 periods)
    or its last run failed. A paused job is not overdue: nothing is meant to run it."""
    report = []
    for job, interval in job_intervals(settings).items():
        beat = jobs.get(job) or JobHeartbeat(job=job, interval_seconds=interval)
        report.append(
            health_entry(beat.model_copy(update={"interval_seconds": interval}), now=now, paused=_is_paused(jobs, job))
        )
    healthy = all(not j["overdue"] and j["last_status"] != "failed" for j in report)
    return {"status": "ok" if healthy else "degraded", "now": now.isoformat(), "jobs": report}


def health_entry(beat: JobHeartbeat, *, now: datetime, paused: bool = False) -> dict[str, Any]:
    """One job's entry of the health report (GET /health's `jobs` items, `job.finished` events)."""
    return {
        **beat.model_dump(mode="json"),
        "overdue": not paused and beat.overdue(now),
        "never_ran": beat.last_started_at is None,
        "paused": paused,
    }


# --- the jobs API ---


@dataclass(frozen=True)
class JobStatus:
    """Everything the jobs API says about one job."""

    heartbeat: JobHeartbeat
    control: JobControl
    #: The EventBridge schedule as Scheduler reports it (None: this deployment has none).
    schedule: ScheduleState | None
    overdue: bool
    next_run_at: datetime | None


@dataclass(frozen=True)
class JobRun:
    """A run started by hand: its run id (the lease holder) and when."""

    job: str
    run_id: str
    started_at: datetime


def job_status(
    jobs: JobRepository, schedules: JobSchedules | None, settings: Settings, job: str, *, now: datetime
) -> JobStatus:
    check_job(job)
    interval = job_intervals(settings)[job]
    beat = (jobs.get(job) or JobHeartbeat(job=job, interval_seconds=interval)).model_copy(
        update={"interval_seconds": interval}
    )
    control = jobs.get_control(job) or JobControl(job=job)
    schedule = schedules.describe(job) if schedules is not None else None
    return JobStatus(
        heartbeat=beat,
        control=control,
        schedule=schedule,
        overdue=not control.paused and beat.overdue(now),
        next_run_at=next_run_at(beat, paused=control.paused, now=now),
    )


def list_jobs(
    jobs: JobRepository, schedules: JobSchedules | None, settings: Settings, *, now: datetime
) -> list[JobStatus]:
    """Every scheduled job with its last run, next run, interval, health and pause state."""
    return [job_status(jobs, schedules, settings, job, now=now) for job in JOBS]


def set_paused(
    jobs: JobRepository,
    schedules: JobSchedules | None,
    settings: Settings,
    job: str,
    *,
    paused: bool,
    by: str | None,
    now: datetime,
) -> JobStatus:
    """Pause (or resume) the job's schedule: the decision is recorded, then the schedule's State
    follows it. A fault of Scheduler surfaces (502/503) after the record is written: a paused job
    is paused anyway (its scheduled runs end at once); a resume is retried by calling again."""
    check_job(job)
    jobs.put_control(JobControl(job=job, paused=paused, changed_by=by, changed_at=now))
    if schedules is not None:
        schedules.set_enabled(job, not paused)
    return job_status(jobs, schedules, settings, job, now=now)


def run_job_now(
    jobs: JobRepository, starter: JobStarter, job: str, *, name: str, by: str | None, now: datetime
) -> JobRun:
    """Start a run of `job` now, outside its schedule (a paused job too: pausing stops the
    schedule, not the administrator). The lease is taken first with the run's own id: while
    another run holds it the answer is a 409 naming that run and nothing starts; else the run
    starts holding it, and a scheduled run that fires meanwhile is skipped. If the start fails,
    the lease is given back."""
    check_job(job)
    run_id = starter.run_id(job, name)
    holder = jobs.claim_lease(job, run_id, now=now, until=now + timedelta(seconds=RUN_LEASE_SECONDS[job]))
    if holder is not None:
        raise Conflict(f"a run of {job} is in progress ({holder}); try again when it has finished", field="job")
    try:
        starter.start(job, name, by=by)
    except ExternalServiceError:
        jobs.release_lease(job, run_id)
        raise
    return JobRun(job=job, run_id=run_id, started_at=now)


def heal_schedule_states(schedules: JobSchedules, jobs: JobRepository) -> dict[str, str]:
    """Put every schedule's State back on the recorded pause decisions (a deployment re-enables
    them: CloudFormation owns the schedules). Returns, per job, "ok", "none" (no such schedule
    here) or the fault's code; never raises for a fault (a collection must not fail for it)."""
    outcome: dict[str, str] = {}
    for job in JOBS:
        try:
            outcome[job] = "ok" if schedules.set_enabled(job, not _is_paused(jobs, job)) else "none"
        except ExternalServiceError as exc:
            outcome[job] = exc.code
    return outcome
