"""Stands in for Lambda's DynamoDB event source mapping in local mode: reads the tables' streams
through the real DynamoDB Streams API on moto (DescribeStream, GetShardIterator, GetRecords,
NEW_AND_OLD_IMAGES) and invokes the broadcaster handler with Lambda-shaped stream events: batches
of at most `batch_size` records, gathered for up to `window_seconds` (the mapping's batching
window), with the same filter as the CDK mapping (operations table: job heartbeats only).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cmlcm.adapters.aws import client
from cmlcm.adapters.stream_images import OPERATIONS_NEWS_PK
from cmlcm_local.events import FakeLambdaContext

log = logging.getLogger("cmlcm.local.streams")

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def enable_streams(table_names: list[str], region: str) -> None:
    """Turn on NEW_AND_OLD_IMAGES streams (the CDK tables have them from the start)."""
    dynamodb = client("dynamodb", region)
    for name in table_names:
        spec = dynamodb.describe_table(TableName=name)["Table"].get("StreamSpecification") or {}
        if not spec.get("StreamEnabled"):
            dynamodb.update_table(
                TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
            )


def keep(table: str, record: dict[str, Any], operations_table: str) -> bool:
    """The mapping's filter: every record of the workers and labs tables; of the operations table
    only job heartbeats (settings, idempotency keys, refresh limits are no news)."""
    if table != operations_table:
        return True
    return record["dynamodb"]["Keys"].get("pk", {}).get("S") == OPERATIONS_NEWS_PK


def lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda delivers (eventSourceARN added, times as epoch)."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "eventVersion": "1.1", "awsRegion": region, "eventSourceARN": stream_arn, "dynamodb": stream}


class StreamPump:
    """A daemon thread polling each table's stream and invoking `handler` with record batches."""

    def __init__(
        self,
        handler: LambdaHandler,
        tables: list[str],
        *,
        operations_table: str,
        region: str,
        poll_seconds: float = 0.2,
        batch_size: int = 100,
    ) -> None:
        self._handler = handler
        self._tables = tables
        self._operations = operations_table
        self._region = region
        self._poll = poll_seconds
        self._batch_size = batch_size
        self._iterators: dict[str, tuple[str, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-stream-pump", daemon=True)
        self.batches = 0
        self.failures = 0

    def start(self) -> None:
        streams = client("dynamodbstreams", self._region)
        dynamodb = client("dynamodb", self._region)
        for table in self._tables:
            arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
            shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")
            self._iterators[table] = (arn, iterator["ShardIterator"])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def pump_once(self) -> int:
        """Read every stream once and deliver what came; returns records delivered."""
        streams = client("dynamodbstreams", self._region)
        delivered = 0
        for table, (arn, iterator) in list(self._iterators.items()):
            page = streams.get_records(ShardIterator=iterator, Limit=self._batch_size)
            self._iterators[table] = (arn, page["NextShardIterator"])
            records = [lambda_record(r, arn, self._region) for r in page["Records"] if keep(table, r, self._operations)]
            if records:
                self._deliver(records)
                delivered += len(records)
        return delivered

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        self.batches += 1
        result = self._handler({"Records": records}, FakeLambdaContext("broadcaster")) or {}
        failures = result.get("batchItemFailures") or []
        if failures:
            # On AWS the mapping retries (bisecting) and finally sends them to the on-failure
            # queue; locally they are logged.
            self.failures += len(failures)
            log.warning("broadcaster reported %d failed records", len(failures))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.pump_once()
            except Exception:  # noqa: BLE001 - a failed poll is logged and the loop goes on, like the mapping
                log.exception("stream pump poll failed")
            self._stop.wait(self._poll)
