"""Contracts of the in-memory twins that had none: each test runs against the twin and against
the adapter it stands in for (under moto), so a unit test over the twin means what the adapter does.

Twins with their own contract suites: the workers and settings repositories
(test_repository_contract.py), the schedule store (test_schedule_store.py), the job repository
(test_job_leases.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmlcm.adapters.labs_repo import DynamoLabRepository, InMemoryLabRepository
from cmlcm.adapters.licence_tokens import InMemoryTokenStore, SecretsManagerTokenStore
from cmlcm.adapters.operations import DynamoRefreshLimiter, InMemoryRefreshLimiter
from cmlcm.adapters.samples import DynamoSampleRepository, InMemorySampleRepository
from cmlcm.adapters.subscriptions import DynamoConnectionStore, MemoryConnectionStore, create_realtime_tables
from cmlcm.config import get_config
from cmlcm.domain.errors import RateLimited
from cmlcm.domain.jobs import MetricSample
from cmlcm.domain.labs import Lab
from cmlcm.services import realtime

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _twin_or_adapter(request: pytest.FixtureRequest, twin: Any, adapter: Any) -> Any:
    if request.param == "memory":
        return twin()
    request.getfixturevalue("aws")
    return adapter(get_config())


@pytest.fixture(params=["memory", "dynamo"])
def limiter(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(
        request, InMemoryRefreshLimiter, lambda c: DynamoRefreshLimiter(c.operations_table, c.aws_region)
    )


@pytest.fixture(params=["memory", "dynamo"])
def labs(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(request, InMemoryLabRepository, lambda c: DynamoLabRepository(c.labs_table, c.aws_region))


@pytest.fixture(params=["memory", "secretsmanager"])
def tokens(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(request, InMemoryTokenStore, lambda c: SecretsManagerTokenStore(c.aws_region))


def _dynamo_connections(config: Any) -> DynamoConnectionStore:
    create_realtime_tables(config.connections_table, config.subscriptions_table, config.aws_region)
    return DynamoConnectionStore(config.connections_table, config.subscriptions_table, config.aws_region)


@pytest.fixture(params=["memory", "dynamo"])
def samples(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(
        request,
        InMemorySampleRepository,
        lambda c: DynamoSampleRepository(c.metrics_table, c.aws_region, ttl=timedelta(hours=1)),
    )


@pytest.fixture(params=["memory", "dynamo"])
def connections(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(request, MemoryConnectionStore, _dynamo_connections)


# --- refresh limiter ---


def test_one_refresh_per_worker_per_interval_with_the_wait_in_whole_seconds(limiter):  # noqa: ANN001
    interval = timedelta(seconds=30)
    limiter.acquire("w-1", now=NOW, min_interval=interval)
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("w-1", now=NOW + timedelta(seconds=10, milliseconds=500), min_interval=interval)
    assert refused.value.retry_after_seconds == 20
    limiter.acquire("w-2", now=NOW, min_interval=interval)  # another worker is not held back
    limiter.acquire("w-1", now=NOW + interval, min_interval=interval)  # the interval is over


# --- labs ---


def _lab(worker_id: str, lab_id: str, state: str = "STOPPED") -> Lab:
    return Lab(worker_id=worker_id, lab_id=lab_id, title=f"lab {lab_id}", state=state, synced_at=NOW)


def test_labs_are_written_listed_by_worker_and_deleted(labs):  # noqa: ANN001
    assert labs.write([_lab("w-1", "l-2"), _lab("w-1", "l-1"), _lab("w-2", "l-1")], []) == 3
    assert [lab.lab_id for lab in labs.list("w-1")] == ["l-1", "l-2"]
    assert labs.get("w-2", "l-1") == _lab("w-2", "l-1") and labs.get("w-2", "l-9") is None
    assert labs.write([_lab("w-1", "l-1", state="STARTED")], [_lab("w-1", "l-2")]) == 2
    assert [(lab.lab_id, lab.state) for lab in labs.list("w-1")] == [("l-1", "STARTED")]
    assert labs.list("w-3") == []


# --- metric samples ---


def test_samples_come_back_per_worker_oldest_first_from_since_at_whole_seconds(samples):  # noqa: ANN001
    at = [NOW + timedelta(minutes=m, milliseconds=250) for m in range(4)]
    written = [MetricSample(worker_id="w-1", at=t, cpu_percent=float(i), labs_running=i) for i, t in enumerate(at)]
    assert samples.put_many([*reversed(written), MetricSample(worker_id="w-2", at=NOW)]) == 5
    recent = samples.recent("w-1", since=at[1] - timedelta(milliseconds=250))
    assert [(s.at, s.cpu_percent, s.labs_running) for s in recent] == [
        (t.replace(microsecond=0), float(i), i) for i, t in list(enumerate(at))[1:]
    ]
    assert len(samples.recent("w-1", since=NOW, limit=2)) == 2 and samples.recent("w-3", since=NOW) == []


# --- licence token secrets ---


def test_a_token_is_kept_under_the_workers_secret_name_and_forgotten_once(tokens):  # noqa: ANN001
    name = tokens.store("w-1", "token-1")
    assert name == tokens.store("w-1", "token-2")  # stored again: the same secret, updated
    assert "token" not in name
    assert tokens.forget("w-1") is True
    assert tokens.forget("w-9") is False


# --- WebSocket connections and subscriptions ---


def test_subscriptions_are_recorded_per_topic_and_leave_with_their_connection(connections):  # noqa: ANN001
    first = realtime.connect(connections, "c-1", user="a@example.com", role="viewer", now=NOW)
    second = realtime.connect(connections, "c-2", user=None, role="admin", now=NOW)
    assert connections.get("c-1") is not None and connections.get("c-9") is None
    assert connections.subscribe(first, ["fleet", "workers/w-1"], limit=10, scope="own") == ["fleet", "workers/w-1"]
    connections.subscribe(second, ["fleet"], limit=10)
    assert sorted(connections.subscribers("fleet")) == ["c-1", "c-2"]
    assert sorted(connections.subscriptions_of("fleet")) == [("c-1", "own"), ("c-2", None)]
    refreshed = connections.get("c-1")
    assert connections.unsubscribe(refreshed, ["workers/w-1"]) == ["workers/w-1"]
    assert connections.subscribers("workers/w-1") == []
    assert connections.remove("c-1") == 1  # the topics it held
    assert connections.get("c-1") is None and connections.subscribers("fleet") == ["c-2"]
