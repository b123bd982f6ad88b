"""The metrics table: each worker's short time series of collected samples (expiring by TTL)."""

from __future__ import annotations

import calendar
import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.constants import BATCH_WRITE_PAGE_LIMIT
from pynamodb.exceptions import PutError
from pynamodb.models import Model
from pynamodb.settings import get_settings_value

from cmlcm.adapters.pynamo import bind
from cmlcm.domain.jobs import MetricSample
from cmlcm.pools import map_all


class MetricSampleItem(Model):
    """One point of a worker's short time series (charts); expires by TTL."""

    class Meta:
        table_name = "cmlcm-metrics"
        billing_mode = "PAY_PER_REQUEST"

    worker_id = UnicodeAttribute(hash_key=True)
    ts = NumberAttribute(range_key=True)
    cpu_percent = NumberAttribute(null=True)
    memory_percent = NumberAttribute(null=True)
    labs_running = NumberAttribute(null=True)
    nodes_running = NumberAttribute(null=True)
    expires_at = TTLAttribute()


#: BatchWriteItem requests of one `put_many` in flight at once.
_WRITE_THREADS = 4
#: The first wait before unprocessed items are sent again (doubled each time).
_RESEND_BACKOFF_SECONDS = 0.05


class DynamoSampleRepository:
    def __init__(self, table_name: str, region: str, *, ttl: timedelta) -> None:
        self._model: type[MetricSampleItem] = bind(MetricSampleItem, table_name, region)
        self._ttl = ttl

    def put_many(self, samples: Sequence[MetricSample]) -> int:
        """BatchWriteItem, 25 items a request, a few requests at a time (a collection writes one
        sample per running worker: 40 requests per 1000); unprocessed items are sent again, up to
        PynamoDB's retry count, after a short backoff. Items are built in DynamoDB's wire form,
        as `MetricSampleItem` serializes them (tested against it), without a model instance each."""
        items = [self._wire(sample) for sample in samples]
        pages = [items[i : i + BATCH_WRITE_PAGE_LIMIT] for i in range(0, len(items), BATCH_WRITE_PAGE_LIMIT)]
        map_all("sample-writes", _WRITE_THREADS, self._write_page, pages)
        return len(samples)

    def _connection(self) -> Any:
        """PynamoDB's connection to the table (its client, retries and settings)."""
        return self._model._get_connection()

    def _wire(self, sample: MetricSample) -> dict[str, Any]:
        item: dict[str, Any] = {
            "worker_id": {"S": sample.worker_id},
            "ts": {"N": str(int(sample.at.timestamp()))},
            "expires_at": {"N": str(calendar.timegm((sample.at + self._ttl).utctimetuple()))},  # as TTLAttribute
        }
        for name in ("cpu_percent", "memory_percent", "labs_running", "nodes_running"):
            value = getattr(sample, name)
            if value is not None:
                item[name] = {"N": json.dumps(value)}  # PynamoDB's NumberAttribute encoding
        return item

    def _write_page(self, page: list[dict[str, Any]]) -> None:
        connection = self._connection()
        table = self._model.Meta.table_name
        pending: list[dict[str, Any]] = page
        for attempt in range(get_settings_value("max_retry_attempts")):
            if attempt:
                time.sleep(_RESEND_BACKOFF_SECONDS * 2 ** (attempt - 1))  # throttled: back off, as AWS advises
            data = connection.batch_write_item(put_items=pending)
            unprocessed = data.get("UnprocessedItems", {}).get(table, [])
            if not unprocessed:
                return
            pending = [entry["PutRequest"]["Item"] for entry in unprocessed]
        raise PutError(f"Failed to batch write items: {len(pending)} unprocessed after retries")

    def recent(self, worker_id: str, *, since: datetime, limit: int = 500) -> list[MetricSample]:
        items = self._model.query(worker_id, self._model.ts >= int(since.timestamp()), limit=limit)
        return [
            MetricSample(
                worker_id=i.worker_id,
                at=datetime.fromtimestamp(i.ts, UTC),
                cpu_percent=i.cpu_percent,
                memory_percent=i.memory_percent,
                labs_running=int(i.labs_running) if i.labs_running is not None else None,
                nodes_running=int(i.nodes_running) if i.nodes_running is not None else None,
            )
            for i in items
        ]


def create_metrics_table(table_name: str, region: str) -> None:
    bound = bind(MetricSampleItem, table_name, region)
    if not bound.exists():
        bound.create_table(wait=True)


class InMemorySampleRepository:
    """Twin of `DynamoSampleRepository`: samples by worker, at whole seconds (the table's sort key)."""

    def __init__(self) -> None:
        self._samples: dict[tuple[str, int], MetricSample] = {}
        self._lock = threading.Lock()

    def put_many(self, samples: Sequence[MetricSample]) -> int:
        with self._lock:
            for sample in samples:
                at = int(sample.at.timestamp())
                self._samples[(sample.worker_id, at)] = sample.model_copy(
                    update={"at": datetime.fromtimestamp(at, UTC)}
                )
        return len(samples)

    def recent(self, worker_id: str, *, since: datetime, limit: int = 500) -> list[MetricSample]:
        start = int(since.timestamp())
        with self._lock:
            keys = sorted(k for k in self._samples if k[0] == worker_id and k[1] >= start)
            return [self._samples[k] for k in keys[:limit]]
