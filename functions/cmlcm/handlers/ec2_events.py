"""Target of the EventBridge rule on `EC2 Instance State-change Notification`: one event, one
worker update (see `cmlcm.services.ec2_events`). A fault raises, so EventBridge retries and then
sends the event to the rule target's dead-letter queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.services.ec2_events import apply_ec2_state

logger = Logger()
tracer = Tracer()

get_config()  # fail fast on a broken environment, at cold start

SOURCE = "aws.ec2"
DETAIL_TYPE = "EC2 Instance State-change Notification"


class StateChange(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    instance_id: str = Field(alias="instance-id", pattern=r"^i-[0-9a-f]{8,17}$")
    state: str


class Ec2StateEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: str
    detail_type: str = Field(alias="detail-type")
    time: datetime
    detail: StateChange


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = Ec2StateEvent.model_validate(event)
    if parsed.source != SOURCE or parsed.detail_type != DETAIL_TYPE:
        logger.warning("not an EC2 state-change event", extra={"source": parsed.source})
        return {"applied": False}
    change, c = parsed.detail, current()
    worker = apply_ec2_state(c.workers, change.instance_id, change.state, event_time=parsed.time, now=c.now())
    worker_id = worker.worker_id if worker else None
    logger.info("ec2 state change", extra={**change.model_dump(), "worker": worker_id})
    return {"applied": worker is not None, "worker_id": worker_id}
