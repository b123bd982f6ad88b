"""The metrics table: each worker's short time series of collected samples (expiring by TTL)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from cmlcm.adapters.pynamo import bind
from cmlcm.domain.jobs import MetricSample


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


class DynamoSampleRepository:
    def __init__(self, table_name: str, region: str, *, ttl: timedelta) -> None:
        self._model: type[MetricSampleItem] = bind(MetricSampleItem, table_name, region)
        self._ttl = ttl

    def put_many(self, samples: Sequence[MetricSample]) -> int:
        """BatchWriteItem, 25 items a request (PynamoDB retries unprocessed items)."""
        with self._model.batch_write() as batch:
            for sample in samples:
                batch.save(
                    self._model(
                        sample.worker_id,
                        int(sample.at.timestamp()),
                        cpu_percent=sample.cpu_percent,
                        memory_percent=sample.memory_percent,
                        labs_running=sample.labs_running,
                        nodes_running=sample.nodes_running,
                        expires_at=sample.at + self._ttl,
                    )
                )
        return len(samples)

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
