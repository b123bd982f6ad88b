"""The provisioning saga's Lambda: one function, one small step per `step` value.

Step Functions passes `{"step": ..., "worker_id": ..., ...}`; each step parses its input, calls one
service function and returns JSON. Exceptions keep their class names (QuotaExceeded,
TransientAwsError, ...) so the ASL's Retry and Catch clauses can match them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.ports import ProvisionPorts
from cmlcm.services import provisioning as saga

logger = Logger()
tracer = Tracer()
metrics = Metrics()

get_config()  # fail fast on a broken environment, at cold start


class StepInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal[
        "launch", "record_instance", "instance_state", "cml_ready", "mark_running", "compensate", "mark_for_reconciler"
    ]
    worker_id: str
    instance_id: str | None = None
    failed_step: str = "unknown"
    error: str = "Unknown"
    cause: str = ""


def _now() -> datetime:
    return datetime.now(UTC)


def _count(name: str) -> None:
    """Publish one saga outcome now (EMF): the alarms and the dashboard count them. Flushed here,
    not by a handler decorator, so the steps that publish nothing log no empty-metrics warning."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


def _launch(ports: ProvisionPorts, step: StepInput) -> dict[str, Any]:
    instance = saga.launch(ports, step.worker_id, now=_now())
    return {"instance_id": instance.instance_id}


def _record(ports: ProvisionPorts, step: StepInput) -> dict[str, Any]:
    saga.record_instance(ports, step.worker_id, step.instance_id or "", now=_now())
    return {"recorded": True}


def _state(ports: ProvisionPorts, step: StepInput) -> dict[str, Any]:
    return {"state": saga.instance_state(ports, step.worker_id, step.instance_id or "", now=_now())}


def _ready(ports: ProvisionPorts, step: StepInput) -> dict[str, Any]:
    return {"ready": saga.cml_ready(ports, step.worker_id)}


def _running(ports: ProvisionPorts, step: StepInput) -> dict[str, Any]:
    status = saga.mark_running(ports, step.worker_id, now=_now()).status.value
    _count("SagaSucceeded")
    return {"status": status}


def _compensate(ports: ProvisionPorts, step: StepInput) -> dict[str, Any]:
    done = saga.compensate(
        ports, step.worker_id, step=step.failed_step, error=step.error, cause=step.cause[:1000], now=_now()
    )
    logger.warning("saga compensated", extra={"worker_id": step.worker_id, "terminated": done.terminated})
    _count("SagaCompensated")
    return {"terminated": done.terminated, "status": done.status.value}


def _reconciler(ports: ProvisionPorts, step: StepInput) -> dict[str, Any]:
    worker = saga.mark_for_reconciler(ports, step.worker_id, step=step.failed_step, error=step.error, now=_now())
    logger.error("compensation failed; worker left to the reconciler", extra={"worker_id": step.worker_id})
    _count("SagaLeftForReconciler")
    return {"status": worker.status.value}


STEPS: dict[str, Callable[[ProvisionPorts, StepInput], dict[str, Any]]] = {
    "launch": _launch,
    "record_instance": _record,
    "instance_state": _state,
    "cml_ready": _ready,
    "mark_running": _running,
    "compensate": _compensate,
    "mark_for_reconciler": _reconciler,
}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = StepInput.model_validate(event)
    logger.append_keys(worker_id=step.worker_id, step=step.step)
    return STEPS[step.step](current().ports(ProvisionPorts), step)
