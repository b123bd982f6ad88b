"""The reconciler's Lambda (EventBridge schedule; the local scheduler loop in local mode)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.handlers.emf import publish
from cmlcm.ports import ProvisionPorts
from cmlcm.services.jobs import run_of
from cmlcm.services.reconcile import reconcile_run

logger = Logger()
tracer = Tracer()
metrics = Metrics()

get_config()  # fail fast on a broken environment, at cold start


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One reconciliation under the job's lease, with heartbeat, EMF metrics and one log event
    per finding; skipped when another run holds the lease or the schedule started a paused job."""
    run = run_of(event, context.aws_request_id)
    c = current()
    outcome = reconcile_run(c.ports(ProvisionPorts), c.jobs, c.config.regions, run, clock=c.clock)
    if outcome is None:
        logger.warning("reconciler skipped: paused, or another run holds the lease", extra={"run": run.run_id})
        return {"skipped": True, "findings": []}
    for finding in outcome.findings:
        logger.warning("reconciler finding", extra={"event": "reconcile.finding", **finding.as_dict()})
    publish(metrics, outcome.metrics)
    return {"skipped": False, "findings": [f.as_dict() for f in outcome.findings]}
