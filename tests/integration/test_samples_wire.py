"""The metrics table's `put_many` builds each item in DynamoDB's wire form itself (no PynamoDB
model instance per sample): the items it stores must be the ones `MetricSampleItem` would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pynamodb.exceptions import PutError

from cmlcm.adapters.aws import client
from cmlcm.adapters.samples import DynamoSampleRepository, MetricSampleItem
from cmlcm.config import get_config
from cmlcm.domain.jobs import MetricSample

NOW = datetime(2026, 12, 2, 12, 0, 30, 750000, tzinfo=UTC)
TTL = timedelta(hours=24)


@pytest.fixture
def repo(aws: None) -> DynamoSampleRepository:  # noqa: ARG001 - the moto account
    config = get_config()
    return DynamoSampleRepository(config.metrics_table, config.aws_region, ttl=TTL)


SAMPLES = [
    MetricSample(worker_id="w-1", at=NOW, cpu_percent=12.5, memory_percent=40.0, labs_running=2, nodes_running=7),
    MetricSample(worker_id="w-2", at=NOW, cpu_percent=0.1, memory_percent=None, labs_running=0, nodes_running=None),
    MetricSample(worker_id="w-3", at=NOW + timedelta(seconds=1)),
    MetricSample(worker_id="w-4", at=NOW, cpu_percent=100.0, memory_percent=3.0, labs_running=None, nodes_running=0),
]


def _stored(worker_id: str) -> dict[str, object]:
    config = get_config()
    raw = client("dynamodb", config.aws_region)
    (item,) = raw.query(
        TableName=config.metrics_table,
        KeyConditionExpression="worker_id = :w",
        ExpressionAttributeValues={":w": {"S": worker_id}},
    )["Items"]
    return item


def test_each_stored_sample_is_what_the_pynamodb_model_would_store(repo: DynamoSampleRepository) -> None:
    # Given samples with every kind of value (fractions, whole floats, counts, missing values)
    assert repo.put_many(SAMPLES) == 4
    # Then each stored item equals the model's serialization of the same sample
    for sample in SAMPLES:
        model = MetricSampleItem(
            sample.worker_id,
            int(sample.at.timestamp()),
            cpu_percent=sample.cpu_percent,
            memory_percent=sample.memory_percent,
            labs_running=sample.labs_running,
            nodes_running=sample.nodes_running,
            expires_at=sample.at + TTL,
        )
        assert _stored(sample.worker_id) == model.serialize(), sample.worker_id


def test_many_pages_are_all_written_and_read_back(repo: DynamoSampleRepository) -> None:
    # Given 130 samples (6 BatchWriteItem pages of at most 25, written a few at a time)
    samples = [
        MetricSample(worker_id=f"w-{i % 7}", at=NOW + timedelta(minutes=i), cpu_percent=float(i), labs_running=i)
        for i in range(130)
    ]
    assert repo.put_many(samples) == 130
    # Then every one is there, per worker, oldest first
    for w in range(7):
        mine = [s for s in samples if s.worker_id == f"w-{w}"]
        back = repo.recent(f"w-{w}", since=NOW)
        assert [(s.at, s.cpu_percent, s.labs_running) for s in back] == [
            (s.at.replace(microsecond=0), s.cpu_percent, s.labs_running) for s in mine
        ]
    assert repo.put_many([]) == 0


class _Throttled:
    """A connection whose BatchWriteItem leaves the last `left` items of each request unprocessed
    (as DynamoDB does under throttling), `times` times."""

    def __init__(self, table: str, left: int, times: int) -> None:
        self.table, self.left, self.times = table, left, times
        self.sent: list[list[str]] = []

    def batch_write_item(self, put_items: list[dict[str, Any]]) -> dict[str, Any]:
        self.sent.append([item["worker_id"]["S"] for item in put_items])
        if self.times == 0:
            return {"UnprocessedItems": {}}
        self.times -= 1
        kept = put_items[-self.left :]
        return {"UnprocessedItems": {self.table: [{"PutRequest": {"Item": item}} for item in kept]}}


class _ThrottledRepository(DynamoSampleRepository):
    def __init__(self, connection: _Throttled) -> None:
        config = get_config()
        super().__init__(config.metrics_table, config.aws_region, ttl=TTL)
        self.throttled = connection

    def _connection(self) -> Any:
        return self.throttled


def test_unprocessed_items_are_sent_again_until_none_are_left() -> None:
    # Given DynamoDB leaving 2 of 4 items unprocessed, twice
    connection = _Throttled(get_config().metrics_table, left=2, times=2)
    repo = _ThrottledRepository(connection)
    # When 4 samples are written, then the leftovers alone are sent again until all are in
    assert repo.put_many(SAMPLES) == 4
    assert connection.sent == [["w-1", "w-2", "w-3", "w-4"], ["w-3", "w-4"], ["w-3", "w-4"]]


def test_items_still_unprocessed_after_the_retries_fail_the_write() -> None:
    # Given DynamoDB leaving items unprocessed every time
    connection = _Throttled(get_config().metrics_table, left=1, times=99)
    repo = _ThrottledRepository(connection)
    # When written, then after PynamoDB's retry count (3 requests) the write fails, naming how many
    with pytest.raises(PutError, match="1 unprocessed"):
        repo.put_many(SAMPLES)
    assert len(connection.sent) == 3
