"""Step Functions tasks of `statemachines/collect_metrics.asl.json`: plan, collect a batch, summarise.

Each handler parses its input into a model, calls one service function and returns JSON. Named
errors (the exception class names) reach the state machine's Retry/Catch clauses.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.jobs import RunRequest
from cmlcm.handlers.emf import publish
from cmlcm.ports import CollectionRunPorts, CollectPorts
from cmlcm.services.collect import collect_batch
from cmlcm.services.collect_runs import finish_collection, plan_collection
from cmlcm.services.jobs import trigger_of

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


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Plan the run (`plan_collection`): its lease, its batches, the schedules put back."""
    run = RunRequest(str(event.get("execution") or f"direct-{uuid.uuid4()}"), *trigger_of(event.get("input")))
    plan = plan_collection(current().ports(CollectionRunPorts), run, now=current().now())
    for what, problems in plan.unhealed.items():
        if problems:  # states: the jobs' pause records; rates: the settings' intervals
            logger.warning(f"schedule {what} not put back", extra={"schedules": problems})
    log = logger.warning if plan.skipped else logger.info
    log("collection skipped: paused, or another run holds the lease" if plan.skipped else "collection planned",
        extra={"execution": run.run_id, "workers": plan.workers, "batches": plan.batches})  # fmt: skip
    return plan.as_state()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def collect_batch_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Collect one batch of workers (the Map iteration); its fleet metrics are flushed here (an
    empty batch publishes none)."""
    batch = BatchInput.model_validate(event)
    c = current()
    result = collect_batch(c.ports(CollectPorts), batch.worker_ids, run=batch.run, batch=batch.batch, now=c.now())
    logger.info(
        "batch collected",
        extra={**result.as_dict(), "phases_ms": result.phases_ms, "described": result.described},
    )
    publish(metrics, result.metrics(), flush=True)
    return result.as_dict()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def summarize_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Sum the batches, record the heartbeat and publish EMF metrics for the run."""
    run = SummaryInput.model_validate(event)
    c = current()
    summary = finish_collection(
        c.ports(CollectionRunPorts), run.run, execution=run.execution, started_at=run.started_at, now=c.now()
    )
    publish(metrics, summary.outcome().metrics)
    logger.info("collection finished", extra=summary.as_summary())
    return {**summary.as_summary(), "succeeded": summary.succeeded}
