"""Connection and subscription records on moto's DynamoDB, and the broadcaster handler fed with
real stream records (moto's DynamoDB Streams, NEW_AND_OLD_IMAGES) as Lambda delivers them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from cmlcm import container
from cmlcm.adapters.aws import client
from cmlcm.adapters.connections_api import MemoryConnections
from cmlcm.adapters.dynamo import DynamoWorkerRepository
from cmlcm.adapters.event_bus import EventBridgeBus
from cmlcm.adapters.subscriptions import DynamoConnectionStore, create_realtime_tables
from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.events import TooManyTopics
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.ports import RealtimePorts
from cmlcm.services import realtime
from cmlcm_local.event_bus import LocalEventBus
from cmlcm_local.events import FakeLambdaContext
from cmlcm_local.streams import StreamPump, enable_streams
from tests.support.api import NOW
from tests.support.streams import lab_insert_record


@pytest.fixture
def bus(aws: None) -> Iterator[LocalEventBus]:
    """The custom bus in moto, the bus of the container in use (the broadcaster's real ports)."""
    local = LocalEventBus(get_config().aws_region, "cmlcm-test-events").create()
    container.use(current().with_ports(bus=EventBridgeBus(local.bus_name, local.region)))
    yield local
    container.use(None)


@pytest.fixture
def store(aws: None) -> DynamoConnectionStore:
    settings = get_config()
    create_realtime_tables(settings.connections_table, settings.subscriptions_table, settings.aws_region)
    return DynamoConnectionStore(settings.connections_table, settings.subscriptions_table, settings.aws_region)


def _count_queries() -> dict[str, int]:
    """Counts PynamoDB's DynamoDB calls by operation until `_count_queries.restore()`."""
    counts: dict[str, int] = {}
    from pynamodb.connection.base import Connection

    original = Connection.dispatch

    def dispatch(self, operation_name, operation_kwargs):  # noqa: ANN001, ANN202
        counts[operation_name] = counts.get(operation_name, 0) + 1
        return original(self, operation_name, operation_kwargs)

    Connection.dispatch = dispatch  # type: ignore[method-assign]
    _count_queries.restore = lambda: setattr(Connection, "dispatch", original)  # type: ignore[attr-defined]
    return counts


def test_connection_lifecycle_with_ttl_and_one_item_per_topic(store: DynamoConnectionStore):
    connection = realtime.connect(store, "c-1", user="viewer@example.com", role="viewer", now=NOW)
    assert store.subscribe(connection, ["fleet", "workers/w-1"], limit=100) == ["fleet", "workers/w-1"]
    settings = get_config()
    dynamodb = client("dynamodb", settings.aws_region)
    item = dynamodb.get_item(TableName=settings.connections_table, Key={"connection_id": {"S": "c-1"}})["Item"]
    assert item["role"]["S"] == "viewer" and item["user"]["S"] == "viewer@example.com"
    assert int(item["expires_at"]["N"]) == int((NOW + timedelta(hours=2)).timestamp())
    subscriptions = dynamodb.scan(TableName=settings.subscriptions_table)["Items"]
    assert sorted((s["topic"]["S"], s["connection_id"]["S"]) for s in subscriptions) == [
        ("fleet", "c-1"),
        ("workers/w-1", "c-1"),
    ]
    assert all(int(s["expires_at"]["N"]) == int(item["expires_at"]["N"]) for s in subscriptions)
    assert store.subscribers("fleet") == ["c-1"]
    stored = store.get("c-1")
    assert stored is not None and stored.topics == {"fleet", "workers/w-1"}
    assert store.unsubscribe(stored, ["fleet", "jobs"]) == ["fleet"]
    assert store.subscribers("fleet") == []
    assert realtime.disconnect(store, "c-1") == 1
    assert store.get("c-1") is None
    assert dynamodb.scan(TableName=settings.subscriptions_table)["Items"] == []


def test_the_topic_limit_holds_in_the_table(store: DynamoConnectionStore):
    connection = realtime.connect(store, "c-1", user=None, role="viewer", now=NOW)
    store.subscribe(connection, [f"workers/w-{i}" for i in range(3)], limit=4)
    with pytest.raises(TooManyTopics):
        # A stale view of the connection (0 topics) cannot get past the stored set's size.
        store.subscribe(connection, ["workers/w-7", "workers/w-8"], limit=4)
    stored = store.get("c-1")
    assert stored is not None and len(stored.topics) == 3
    assert store.subscribe(stored, ["workers/w-0", "workers/w-9"], limit=4) == ["workers/w-9"]


def test_fanout_is_one_query_per_topic_and_gone_cleans_up(store: DynamoConnectionStore):
    for i in range(30):
        connection = realtime.connect(store, f"c-{i}", user=None, role="viewer", now=NOW)
        store.subscribe(connection, [f"workers/w-{i % 3}"], limit=100)
    from cmlcm.domain.events import DraftEvent

    drafts = [
        DraftEvent("worker.changed", (f"workers/w-{i}",), {"worker_id": f"w-{i}"}, {"changed": ["tags"]})
        for i in range(2)
    ]
    poster = MemoryConnections()
    poster.gone.update({"c-0", "c-3"})
    counts = _count_queries()
    try:
        report = realtime.broadcast(
            RealtimePorts(connections=store, poster=poster), drafts, now=NOW, new_id=lambda: "e"
        )
    finally:
        _count_queries.restore()  # type: ignore[attr-defined]
    assert counts.get("Query") == 2 and "Scan" not in counts
    assert report.messages == 20 and sorted(report.gone) == ["c-0", "c-3"]
    assert store.get("c-0") is None and "c-3" not in store.subscribers("workers/w-0")
    assert len(store.subscribers("workers/w-0")) == 8


def _worker(worker_id: str) -> Worker:
    return Worker(
        worker_id=worker_id,
        name=worker_id,
        region="us-east-1",
        instance_id="i-00000000000000aa",
        status=WorkerStatus.RUNNING,
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
    )


def test_the_broadcaster_turns_real_stream_records_into_events(store: DynamoConnectionStore, bus, monkeypatch):  # noqa: ANN001
    from cmlcm.handlers import broadcaster

    settings = get_config()
    enable_streams([settings.workers_table, settings.labs_table, settings.operations_table], settings.aws_region)
    poster = MemoryConnections()
    container.use(current().with_ports(poster=poster))
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return broadcaster.handler(event, context)

    watcher = realtime.connect(store, "c-w", user=None, role="viewer", now=NOW)
    store.subscribe(watcher, ["workers/w-1"], limit=100)
    pump = StreamPump(
        handler,
        [settings.workers_table, settings.operations_table],
        operations_table=settings.operations_table,
        region=settings.aws_region,
    )
    pump.start()
    pump.stop()  # the test drives it with pump_once
    repo = DynamoWorkerRepository(settings.workers_table, settings.aws_region)
    stored = repo.add(_worker("w-1"))
    repo.add(_worker("w-2"))
    stopping = repo.save(stored.transition(WorkerStatus.STOPPING, now=NOW, reason="stop requested"))
    repo.save(stopping.observe_ec2_state("stopped", now=NOW + timedelta(seconds=20)))
    # An idempotency key is no news: filtered out like the CDK mapping's filter does.
    client("dynamodb", settings.aws_region).put_item(
        TableName=settings.operations_table, Item={"pk": {"S": "IDEMPOTENCY"}, "sk": {"S": "k"}}
    )
    assert pump.pump_once() == 4
    (event,) = seen
    assert {r["eventName"] for r in event["Records"]} == {"INSERT", "MODIFY"}
    assert all(r["eventSourceARN"].split("/")[1] == settings.workers_table for r in event["Records"])
    messages = [json.loads(m) for m in poster.sent["c-w"]]
    # Four writes of w-1 in one batch coalesce: created (its first image was none).
    assert [m["type"] for m in messages] == ["worker.created"]
    assert messages[0]["data"]["status"] == "stopped"

    repo.save(repo.get("w-1").touch(NOW + timedelta(minutes=1), tags={"a": "b"}))
    pump.pump_once()
    last = json.loads(poster.sent["c-w"][-1])
    assert last["type"] == "worker.changed" and last["detail"] == {"changed": ["tags"]}
    # The same events, same ids, on the custom bus (w-2's creation too: nobody watches it
    # on the WebSocket, automation sees everything).
    on_bus = [(e["detail-type"], e["detail"]["id"], e["detail"]["data"]["worker_id"]) for e in bus.events()]
    assert ("worker.created", messages[0]["id"], "w-1") in on_bus
    assert ("worker.changed", last["id"], "w-1") in on_bus
    assert [t for t, _, w in on_bus if w == "w-2"] == ["worker.created"]


def test_a_record_that_cannot_be_parsed_is_a_partial_batch_failure(store: DynamoConnectionStore, bus, monkeypatch):  # noqa: ANN001
    from cmlcm.handlers import broadcaster

    poster = MemoryConnections()
    container.use(current().with_ports(poster=poster))
    good = lab_insert_record(synced_at=NOW)
    bad = {
        **good,
        "eventID": "2",
        "dynamodb": {**good["dynamodb"], "SequenceNumber": "101", "NewImage": {"worker_id": {"S": "w-1"}}},
    }
    foreign = {**good, "eventID": "3", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/other/stream/x"}
    foreign["dynamodb"] = {**good["dynamodb"], "SequenceNumber": "102"}
    store.subscribe(realtime.connect(store, "c-l", user=None, role="viewer", now=NOW), ["workers/w-1/labs"], limit=100)
    result = broadcaster.handler({"Records": [good, bad, foreign]}, FakeLambdaContext("broadcaster"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "101"}, {"itemIdentifier": "102"}]}
    (message,) = [json.loads(m) for m in poster.sent["c-l"]]
    assert message["type"] == "lab.created" and message["data"]["state"] == "STARTED"
    assert [e["detail"]["id"] for e in bus.events()] == [message["id"]]


def test_a_subscription_keeps_its_subscribers_scope_and_the_connection_its_teams(store: DynamoConnectionStore):
    # Per-user scoping: the fan-out reads each subscriber's scope from the same Query.
    connection = realtime.connect(
        store, "c-s", user="operator@example.com", role="operator", now=NOW, teams=frozenset({"ccna"})
    )
    assert store.get("c-s").teams == {"ccna"}  # type: ignore[union-attr]
    scope = '{"names":["operator@example.com"],"teams":["ccna"],"tag":"Team"}'
    store.subscribe(connection, ["fleet"], limit=100, scope=scope)
    admin = realtime.connect(store, "c-a", user="admin@example.com", role="admin", now=NOW)
    store.subscribe(admin, ["fleet"], limit=100)
    assert sorted(store.subscriptions_of("fleet")) == [("c-a", None), ("c-s", scope)]
