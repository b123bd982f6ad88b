"""The change broadcaster: DynamoDB stream batches (workers, labs, job heartbeats) → live events.

Each record is parsed by Powertools' batch utility (a record that cannot be parsed is reported in
`batchItemFailures`: the event source mapping retries or bisects it and finally sends it to the
on-failure queue, the rest of the batch is not held back). The parsed changes of the whole batch
are then coalesced per entity and fanned out once: one subscriber Query per affected topic,
concurrent posts, 410 Gone cleaned up; meanwhile the same events go to the custom EventBridge bus
(PutEvents, 10 entries a call, refused entries retried a bounded number of times). A failed post
or a refused bus entry is logged and counted, and never fails the batch.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cmlcm.adapters.stream_images import StreamTables, parse_record
from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.events import Change, DraftEvent, WorkerEventRules, coalesce, job_events, lab_events, worker_events
from cmlcm.handlers.api.models import view_of
from cmlcm.handlers.emf import publish
from cmlcm.ports import RealtimePorts
from cmlcm.services.broadcasts import StreamDelivery, deliver_batch
from cmlcm.services.jobs import health_entry

logger = Logger()
tracer = Tracer()
metrics = Metrics()

get_config()  # fail fast on a broken environment, at cold start


def _lab_view(lab: Any) -> dict[str, Any]:
    from cmlcm.handlers.api.routes_labs import LabView

    return LabView.of(lab).model_dump(mode="json")


def cause_of(worker: Any) -> dict[str, Any]:
    """Who or what made the worker's latest change, as recorded on the worker."""
    last = worker.last_change
    if last is None:  # written before causes were recorded, or by a path that records none
        return {"kind": "unknown", "by": None}
    return {"kind": last.kind, "by": last.by}


def tables() -> StreamTables:
    """Which table is which (from the config of the container in use)."""
    config = current().config
    return StreamTables(config.workers_table, config.labs_table, config.operations_table, config.aws_region)


def ports() -> RealtimePorts:
    """The connection store, the poster and the bus, from the container in use."""
    return current().ports(RealtimePorts)


@dataclass
class _Batch:
    """The parsed changes of one stream batch, by kind, in stream order."""

    changes: dict[str, list[Change[Any]]] = field(default_factory=lambda: {"worker": [], "lab": [], "job": []})

    def add(self, record: DynamoDBRecord) -> None:
        parsed = parse_record(record.raw_event, tables())
        if parsed is not None:
            self.changes[parsed[0]].append(parsed[1])


def drafts_of(changes: dict[str, list[Change[Any]]], *, now: datetime) -> list[DraftEvent]:
    """Coalesce per entity, then apply the event rules with the REST API's views."""
    rules = WorkerEventRules(view=view_of, cause_of=cause_of)
    drafts: list[DraftEvent] = []
    for change in coalesce(changes["worker"]):
        drafts.extend(worker_events(change, rules))
    for change in coalesce(changes["lab"]):
        drafts.extend(lab_events(change, _lab_view))
    for change in coalesce(changes["job"]):
        drafts.extend(job_events(change, lambda beat: health_entry(beat, now=now)))
    return drafts


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started, records = time.perf_counter(), event.get("Records") or []
    processor, batch = BatchProcessor(event_type=EventType.DynamoDBStreams), _Batch()
    with processor(records, batch.add):
        processor.process()
    now = current().now()
    drafts = drafts_of(batch.changes, now=now)
    delivery = deliver_batch(ports(), drafts, records=len(records), now=now, new_id=new_id, started=started)
    _log(delivery)
    publish(metrics, delivery.metrics())
    return cast(dict[str, Any], processor.response())  # Lambda reads the TypedDict as the plain JSON it is


def new_id() -> str:
    return uuid.uuid4().hex


def _log(delivery: StreamDelivery) -> None:
    if delivery.report.failed:
        logger.warning("posts failed", extra={"failed": delivery.failed_posts()})
    if delivery.published.failed:
        logger.error("bus entries failed", extra={"failed": delivery.failed_entries()})
    logger.info("broadcast", extra=delivery.summary())
