"""The metrics table's `put_many` builds each item in DynamoDB's wire form itself (no PynamoDB
model instance per sample): the items it stores must be the ones `MetricSampleItem` would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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
