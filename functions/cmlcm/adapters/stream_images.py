"""DynamoDB stream records (NEW_AND_OLD_IMAGES) → domain changes, through the same PynamoDB item
classes and item → domain mappings the repositories use (one storage mapping, no second parser).

A record of the workers table becomes a `Change[Worker]`, of the labs table a `Change[Lab]`, of
the operations table a `Change[JobHeartbeat]` for job heartbeat items (other operations items are
not news: the event source mapping filters them out, and this parser ignores them too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cmlcm.adapters.dynamo import WorkerItem, item_to_worker
from cmlcm.adapters.labs_repo import LabItem, item_to_lab
from cmlcm.adapters.operations import JOB_PK, OperationItem
from cmlcm.adapters.pynamo import bind, plain
from cmlcm.domain.events import Change
from cmlcm.domain.jobs import JobHeartbeat
from cmlcm.domain.labs import Lab
from cmlcm.domain.workers import Worker

#: The operations items that are news (the CDK event source mapping filters on the same key).
OPERATIONS_NEWS_PK = JOB_PK


class UnknownStreamSource(ValueError):
    """A record from a table this broadcaster does not read (a wiring mistake: the record fails)."""


def table_of(event_source_arn: str) -> str:
    """`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>` → `<name>`."""
    try:
        return event_source_arn.split(":table/", 1)[1].split("/stream/", 1)[0]
    except IndexError:
        raise UnknownStreamSource(f"not a DynamoDB stream ARN: {event_source_arn!r}") from None


@dataclass(frozen=True)
class StreamTables:
    """Which table is which (names from the function's settings)."""

    workers: str
    labs: str
    operations: str
    region: str


def parse_record(record: dict[str, Any], tables: StreamTables) -> tuple[str, Change[Any]] | None:
    """("worker" | "lab" | "job", change) for one raw stream record, or None when it is no news."""
    table = table_of(record.get("eventSourceARN", ""))
    stream = record["dynamodb"]
    old, new = stream.get("OldImage"), stream.get("NewImage")
    if table == tables.workers:
        workers = bind(WorkerItem, table, tables.region)

        def to_worker(image: Any) -> Worker:
            return item_to_worker(workers.from_raw_data(image))

        worker_id = (new or old or stream["Keys"])["worker_id"]["S"]
        return "worker", Change((worker_id,), _maybe(to_worker, old), _maybe(to_worker, new))
    if table == tables.labs:
        labs = bind(LabItem, table, tables.region)

        def to_lab(image: Any) -> Lab:
            return item_to_lab(labs.from_raw_data(image))

        keys = stream["Keys"]
        return "lab", Change((keys["worker_id"]["S"], keys["lab_id"]["S"]), _maybe(to_lab, old), _maybe(to_lab, new))
    if table == tables.operations:
        if stream["Keys"].get("pk", {}).get("S") != OPERATIONS_NEWS_PK:
            return None
        operations = bind(OperationItem, table, tables.region)

        def to_job(image: Any) -> JobHeartbeat:
            return JobHeartbeat.model_validate(plain(operations.from_raw_data(image).data))

        return "job", Change((stream["Keys"]["sk"]["S"],), _maybe(to_job, old), _maybe(to_job, new))
    raise UnknownStreamSource(f"records of table {table!r} are not read here")


def _maybe(convert: Any, image: dict[str, Any] | None) -> Any:
    return None if image is None else convert(image)
