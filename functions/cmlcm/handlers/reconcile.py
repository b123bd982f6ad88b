"""The reconciler's Lambda (EventBridge schedule; the local scheduler loop in local mode)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.jobs import RunTrigger
from cmlcm.ports import OpsPorts, ProvisionPorts
from cmlcm.services import jobs
from cmlcm.services.reconcile import Finding, reconcile

logger = Logger()
tracer = Tracer()
metrics = Metrics()

get_config()  # fail fast on a broken environment, at cold start


def run_reconciler(
    now: datetime, run_id: str, *, trigger: RunTrigger = "schedule", by: str | None = None
) -> list[Finding] | None:
    """One reconciliation with heartbeat, EMF metrics and one log event per finding; None when
    another run holds the job's lease, or when the schedule started a paused job (recorded as
    skipped)."""
    ports = current().ports(ProvisionPorts)
    interval = jobs.job_intervals(ports.settings.get())[jobs.RECONCILE_JOB]
    ops = current().ports(OpsPorts)
    begun = jobs.begin_run(
        ops.jobs, jobs.RECONCILE_JOB, run_id, interval_seconds=interval, now=now, trigger=trigger, by=by
    )
    if begun is None:
        logger.warning("reconciler skipped: paused, or another run holds the lease", extra={"run": run_id})
        return None
    try:
        return _reconcile_run(ports, ops, interval, now)
    finally:
        jobs.end_run(ops.jobs, jobs.RECONCILE_JOB, run_id)


def _reconcile_run(ports: ProvisionPorts, ops: OpsPorts, interval: int, now: datetime) -> list[Finding]:
    findings = reconcile(ports, regions=get_config().regions, now=now)
    counts = Counter(f.kind for f in findings)
    for finding in findings:
        logger.warning("reconciler finding", extra={"event": "reconcile.finding", **finding.as_dict()})
    for kind in ("unrecorded_instance", "failed_with_live_instance", "vanished_instance", "auto_imported"):
        metrics.add_metric(name=f"Reconcile_{kind}", unit=MetricUnit.Count, value=counts.get(kind, 0))
    summary: dict[str, int | float | str] = {kind: n for kind, n in counts.items()}
    summary["findings"] = len(findings)
    summary["auto_imported_workers"] = sum(1 for f in findings if f.kind == "auto_imported" and f.action == "imported")
    jobs.record_finish(
        ops.jobs,
        jobs.RECONCILE_JOB,
        interval_seconds=interval,
        now=datetime.now(UTC),
        succeeded=not any(f.action == "failed" for f in findings),
        summary=summary,
    )
    return findings


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # An async invocation retried by Lambda keeps its request id (and its payload's run_id, the
    # jobs API's run), so a retry reclaims its own lease.
    trigger, by = jobs.trigger_of(event)
    run_id = str(event.get("run_id") or context.aws_request_id) if trigger == "manual" else context.aws_request_id
    findings = run_reconciler(datetime.now(UTC), run_id=run_id, trigger=trigger, by=by)
    if findings is None:
        return {"skipped": True, "findings": []}
    return {"skipped": False, "findings": [f.as_dict() for f in findings]}
