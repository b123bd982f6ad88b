"""Jobs routes (admin): the scheduled jobs with their last and next runs, run one now, pause or
resume its schedule. Each body: one service call, then the API's view."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from cmlcm.container import current
from cmlcm.domain.jobs import JobHeartbeat
from cmlcm.handlers.api.auth import Role, caller_name, requires
from cmlcm.handlers.api.models import ApiModel
from cmlcm.services import jobs as svc

router = Router()
ADMIN = requires(Role.ADMIN)


class JobView(ApiModel):
    """One scheduled job: its schedule, its last run, the next one, and whether it is paused."""

    job: str = Field(description="collect_metrics or reconcile")
    interval_seconds: int = Field(description="The schedule's period, from the settings")
    paused: bool = Field(description="An administrator paused the schedule (POST /jobs/{job}/pause)")
    paused_by: str | None = Field(description="Who paused or last resumed it")
    paused_changed_at: datetime | None
    schedule_state: Literal["ENABLED", "DISABLED"] | None = Field(
        description="The EventBridge schedule's State as Scheduler reports it; null: no schedule in this deployment"
    )
    schedule_expression: str | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: Literal["running", "succeeded", "failed"] | None
    last_trigger: Literal["schedule", "manual"] | None
    last_triggered_by: str | None
    last_summary: dict[str, int | float | str]
    skipped_runs: int
    last_skipped_at: datetime | None
    last_skip_reason: Literal["lease_held", "paused"] | None
    overdue: bool = Field(description="No run finished within two intervals (never for a paused job)")
    next_run_at: datetime | None = Field(
        description="Estimated: the last scheduled start plus whole intervals; null when paused or never scheduled yet"
    )

    @classmethod
    def of(cls, status: svc.JobStatus) -> JobView:
        beat: JobHeartbeat = status.heartbeat
        schedule = status.schedule
        return cls(
            job=beat.job,
            interval_seconds=beat.interval_seconds,
            paused=status.control.paused,
            paused_by=status.control.changed_by,
            paused_changed_at=status.control.changed_at,
            schedule_state=None if schedule is None else ("ENABLED" if schedule.enabled else "DISABLED"),
            schedule_expression=None if schedule is None else schedule.expression,
            last_started_at=beat.last_started_at,
            last_finished_at=beat.last_finished_at,
            last_status=beat.last_status,
            last_trigger=beat.last_trigger,
            last_triggered_by=beat.last_triggered_by,
            last_summary=beat.last_summary,
            skipped_runs=beat.skipped_runs,
            last_skipped_at=beat.last_skipped_at,
            last_skip_reason=beat.last_skip_reason,
            overdue=status.overdue,
            next_run_at=status.next_run_at,
        )


class JobList(ApiModel):
    items: list[JobView]


class JobRunStarted(ApiModel):
    """A run started by hand; follow it on GET /jobs/{job} (or the `jobs` live topic)."""

    job: str
    run_id: str = Field(description="The run's id: the collection's execution ARN, or the reconciler run's name")
    started_at: datetime


def _caller() -> str | None:
    return caller_name(router.current_event.raw_event)


@router.get("/jobs", middlewares=[ADMIN], summary="List the scheduled jobs (last run, next run, paused)")
def list_jobs() -> JobList:
    statuses = svc.list_jobs(current().jobs, current().job_schedules, current().settings.get(), now=current().now())
    return JobList(items=[JobView.of(s) for s in statuses])


@router.get("/jobs/<job>", middlewares=[ADMIN], summary="One scheduled job")
def get_job(job: str) -> JobView:
    settings = current().settings.get()
    return JobView.of(svc.job_status(current().jobs, current().job_schedules, settings, job, now=current().now()))


@router.post("/jobs/<job>/run", middlewares=[ADMIN], summary="Run a job now (never beside another run of it)")
def run_job(job: str) -> Response[JobRunStarted]:
    """202: the run started (it holds the job's lease); 409 while another run holds it."""
    run = svc.run_job_now(
        current().jobs, current().job_starter, job, name=current().new_run_name(), by=_caller(), now=current().now()
    )
    body = JobRunStarted(job=run.job, run_id=run.run_id, started_at=run.started_at)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=body)


@router.post("/jobs/<job>/pause", middlewares=[ADMIN], summary="Pause a job's schedule")
def pause_job(job: str) -> JobView:
    return _set_paused(job, paused=True)


@router.post("/jobs/<job>/resume", middlewares=[ADMIN], summary="Resume a job's schedule")
def resume_job(job: str) -> JobView:
    return _set_paused(job, paused=False)


def _set_paused(job: str, *, paused: bool) -> JobView:
    settings = current().settings.get()
    status = svc.set_paused(
        current().jobs, current().job_schedules, settings, job, paused=paused, by=_caller(), now=current().now()
    )
    return JobView.of(status)


__all__ = ["router"]
