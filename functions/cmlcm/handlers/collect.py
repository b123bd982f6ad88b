"""Step Functions tasks of `statemachines/collect_metrics.asl.json`: plan, collect a batch, summarise.

Each handler parses its input into a model, calls one service function and returns JSON. Named
errors (the exception class names) reach the state machine's Retry/Catch clauses.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.ports import CollectPorts, OpsPorts, WorkerPorts
from cmlcm.services import collect_runs, jobs
from cmlcm.services.collect import collect
from cmlcm.services.collect_runs import run_name
from cmlcm.services.settings import heal_schedule_rates

logger = Logger()
tracer = Tracer()
metrics = Metrics()

get_config()  # fail fast on a broken environment, at cold start


class BatchInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    worker_ids: list[str] = Field(max_length=1000)
    #: The run and the batch's index in it (the Distributed Map's ItemSelector): where the outcome goes.
    run: str | None = None
    batch: int | None = Field(default=None, ge=0)


class SummaryInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    started_at: datetime
    run: str
    #: The execution whose lease the summary gives back.
    execution: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Take the run's lease (another run still going, or a scheduled run of a paused collection:
    end at once, recorded as skipped), list the active workers (index query, ids only) and the
    settings that shape the run; put the schedules back on the settings' intervals and the jobs'
    pause records (a deployment resets both)."""
    ports = current().ports(WorkerPorts)
    settings = ports.settings.get()
    now = _now()
    run_id = str(event.get("execution") or f"direct-{uuid.uuid4()}")
    interval = jobs.job_intervals(settings)[jobs.COLLECT_JOB]
    trigger, by = jobs.trigger_of(event.get("input"))
    ops = current().ports(OpsPorts)
    # Before the lease: a paused collection's scheduled run (re-enabled by a deployment) disables
    # its schedule again on its way out.
    states = jobs.heal_schedule_states(current().job_schedules, ops.jobs)
    if any(result not in ("ok", "none") for result in states.values()):
        logger.warning("schedule states not put back on the jobs' pause records", extra={"schedules": states})
    begun = jobs.begin_run(
        ops.jobs, jobs.COLLECT_JOB, run_id, interval_seconds=interval, now=now, trigger=trigger, by=by
    )
    if begun is None:
        logger.warning("collection skipped: paused, or another run holds the lease", extra={"execution": run_id})
        return {"skipped": True, "run": "", "batches_key": "", "batches": 0, "workers": 0, "max_concurrency": 1,
                "started_at": now.isoformat()}  # fmt: skip
    try:
        healed = heal_schedule_rates(current().job_schedules, settings)
        worker_ids = ports.workers.active_ids()
        key, batches = collect_runs.plan_run(
            current().collect_runs, run_name(run_id), worker_ids, batch_size=settings.collect_batch_size
        )
    except Exception:
        jobs.end_run(current().jobs, jobs.COLLECT_JOB, run_id)  # the run ends here: the next need not wait
        raise
    if any(result not in ("ok", "none") for result in healed.values()):
        logger.warning("schedule rates not moved to the settings' intervals", extra={"schedules": healed})
    logger.info("collection planned", extra={"workers": len(worker_ids), "batches": batches})
    return {
        "skipped": False,
        "run": run_name(run_id),
        "batches_key": key,
        "batches": batches,
        "workers": len(worker_ids),
        "max_concurrency": settings.collect_max_concurrency,
        "started_at": now.isoformat(),
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def collect_batch_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Collect one batch of workers (the Map iteration)."""
    batch = BatchInput.model_validate(event)
    result = asyncio.run(collect(current().ports(CollectPorts), batch.worker_ids, now=_now()))
    logger.info("batch collected", extra={**result.as_dict(), "phases_ms": result.phases_ms})
    if batch.run is not None and batch.batch is not None:
        current().collect_runs.put_result(batch.run, batch.batch, result.as_dict())
    # The batch's workers by status (and paused): summed over a run's batches by CloudWatch, they
    # are the dashboard's fleet by status and hours saved. Flushed here: an empty batch publishes none.
    for status, count in sorted(result.fleet.items()):
        metrics.add_metric(name=f"Fleet_{status}", unit=MetricUnit.Count, value=count)
    if result.fleet:
        # What the workers a policy keeps stopped would cost running: summed over the batches and
        # integrated over time, the money saved (Fleet_policy_stopped integrated: the hours).
        metrics.add_metric(
            name="PolicySavingsUsdPerHour", unit=MetricUnit.Count, value=result.policy_savings_usd_per_hour
        )
        metrics.flush_metrics()
    return result.as_dict()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def summarize_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Sum the batches, record the heartbeat and publish EMF metrics for the run."""
    run = SummaryInput.model_validate(event)
    now = _now()
    summary = collect_runs.summarize(
        collect_runs.outcomes(current().collect_runs, run.run), started_at=run.started_at, now=now
    )
    succeeded = summary.succeeded
    settings = current().settings.get()
    jobs.record_finish(
        current().jobs,
        jobs.COLLECT_JOB,
        interval_seconds=jobs.job_intervals(settings)[jobs.COLLECT_JOB],
        now=now,
        succeeded=succeeded,
        summary=summary.as_summary(),
    )
    if run.execution:
        jobs.end_run(current().jobs, jobs.COLLECT_JOB, run.execution)
    metrics.add_metric(name="CollectDuration", unit=MetricUnit.Milliseconds, value=summary.duration_ms)
    metrics.add_metric(name="WorkersCollected", unit=MetricUnit.Count, value=summary.workers)
    metrics.add_metric(name="WorkersChanged", unit=MetricUnit.Count, value=summary.changed)
    metrics.add_metric(name="WorkersFailed", unit=MetricUnit.Count, value=summary.failed)
    metrics.add_metric(name="BatchesFailed", unit=MetricUnit.Count, value=summary.batches_failed)
    metrics.add_metric(name="WorkersPausedIdle", unit=MetricUnit.Count, value=summary.paused)
    metrics.add_metric(name="WorkersStoppedBySchedule", unit=MetricUnit.Count, value=summary.schedule_stopped)
    metrics.add_metric(name="WorkersStartedBySchedule", unit=MetricUnit.Count, value=summary.schedule_started)
    # 0 or 1 per run: the CollectionFailed alarm stays red until a run succeeds.
    metrics.add_metric(name="CollectRunFailed", unit=MetricUnit.Count, value=0 if succeeded else 1)
    # One metric per error class (AWS or CML code): the dashboard's SEARCH graphs them all.
    for kind, count in sorted(summary.errors.items()):
        metrics.add_metric(name=f"CollectErrors_{kind}", unit=MetricUnit.Count, value=count)
    logger.info("collection finished", extra=summary.as_summary())
    return {**summary.as_summary(), "succeeded": succeeded}
