"""Live-update rules without AWS: topic checks and authorization, image diff → events, coalescing
per entity, and the fan-out over the in-memory twins (only subscribers, in order, 410 Gone
cleaned up, other failures counted and never raised)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from cmlcm.adapters.connections_api import MemoryConnections
from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.operations import InMemoryJobRepository, InMemorySettingsRepository
from cmlcm.adapters.subscriptions import MemoryConnectionStore
from cmlcm.domain.events import (
    MAX_TOPICS_PER_CONNECTION,
    Change,
    Connection,
    ForbiddenTopic,
    MalformedMessage,
    TooManyTopics,
    UnknownTopic,
    WorkerEventRules,
    changed_fields,
    check_topic,
    coalesce,
    job_events,
    lab_events,
    may_subscribe,
    parse_topics,
    worker_events,
)
from cmlcm.domain.jobs import JobHeartbeat
from cmlcm.domain.labs import Lab
from cmlcm.domain.workers import Licence, LicenceOperation, Worker, WorkerMetrics, WorkerStatus, WorkerSummary
from cmlcm.handlers.api.models import summary_view_of, view_of
from cmlcm.ports import RealtimePorts, SnapshotPorts
from cmlcm.services import realtime
from cmlcm.services.jobs import health_report
from tests.support.fakes import unexpected

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULES = WorkerEventRules(view=view_of)


def _worker(worker_id: str = "w-1", **changes) -> Worker:  # noqa: ANN003
    base = Worker(
        worker_id=worker_id,
        name=f"lab-{worker_id}",
        region="us-east-1",
        instance_id="i-0000000000000001",
        status=WorkerStatus.RUNNING,
        created_at=T0,
        updated_at=T0,
        status_changed_at=T0,
        version=3,
    )
    return base.model_copy(update=changes)


def _lab(lab_id: str = "l-1", **changes) -> Lab:  # noqa: ANN003
    return Lab(worker_id="w-1", lab_id=lab_id, title="demo", state="STOPPED", synced_at=T0).model_copy(update=changes)


# --- topics ---


@pytest.mark.parametrize("topic", ["fleet", "jobs", "workers/w-1", "workers/w-1/labs", "workers/i-0abc"])
def test_known_topics_pass(topic):  # noqa: ANN001
    assert check_topic(topic) == topic


@pytest.mark.parametrize("topic", ["", "weather", "workers/", "workers/w-1/labs/x", "workers/../x", 7, None, "x" * 500])
def test_unknown_topics_are_named_and_refused(topic):  # noqa: ANN001
    with pytest.raises(UnknownTopic) as refused:
        check_topic(topic)
    assert refused.value.field == "topics"
    assert len(refused.value.message) < 300  # a huge topic is not echoed back


def test_every_role_reads_every_topic_and_a_user_without_a_role_only_jobs():
    for role in ("viewer", "operator", "admin"):
        assert all(may_subscribe(role, t) for t in ("fleet", "jobs", "workers/w-1", "workers/w-1/labs"))
    assert may_subscribe(None, "jobs")
    assert not may_subscribe(None, "fleet") and not may_subscribe(None, "workers/w-1")
    with pytest.raises(ForbiddenTopic):
        parse_topics(["jobs", "fleet"], None)


def test_parse_topics_dedupes_and_checks_the_shape():
    assert parse_topics(["fleet", "fleet", "jobs"], "viewer") == ["fleet", "jobs"]
    bad_topics: tuple[object, ...] = (None, "fleet", [], {"a": 1})
    for bad in bad_topics:
        with pytest.raises(MalformedMessage):
            parse_topics(bad, "viewer")
    with pytest.raises(TooManyTopics):
        parse_topics([f"workers/w-{i}" for i in range(101)], "viewer")


# --- diff → events ---


def test_a_status_change_is_one_status_event_with_old_new_and_the_view():
    old = _worker()
    new = old.transition(WorkerStatus.STOPPING, now=T0 + timedelta(seconds=1), reason="stop requested")
    (event,) = worker_events(Change(("w-1",), old, new), RULES)
    assert event.type == "worker.status_changed"
    assert event.topics == ("fleet", "workers/w-1")
    assert event.detail is not None and (event.detail["old"], event.detail["new"]) == ("running", "stopping")
    assert event.data == view_of(new)  # exactly the REST API's WorkerView


def test_created_deleted_and_changed_fields():
    worker = _worker()
    assert [e.type for e in worker_events(Change(("w-1",), None, worker), RULES)] == ["worker.created"]
    (deleted,) = worker_events(Change(("w-1",), worker, None), RULES)
    assert deleted.type == "worker.deleted" and deleted.data == view_of(worker)
    tagged = worker.touch(T0 + timedelta(minutes=1), tags={"team": "a"}).model_copy(update={"version": 4})
    (changed,) = worker_events(Change(("w-1",), worker, tagged), RULES)
    assert changed.type == "worker.changed" and changed.detail == {"changed": ["tags"]}


def test_a_rewrite_that_changes_only_bookkeeping_is_no_event():
    worker = _worker()
    rewritten = worker.model_copy(update={"updated_at": T0 + timedelta(minutes=5), "version": 9})
    assert changed_fields(view_of(worker), view_of(rewritten)) == []
    assert worker_events(Change(("w-1",), worker, rewritten), RULES) == []


def test_pause_and_resume_events_carry_reason_and_status():
    running = _worker()
    paused = running.pause(now=T0 + timedelta(minutes=1), reason="idle for 60 min")
    types = [e.type for e in worker_events(Change(("w-1",), running, paused), RULES)]
    assert types == ["worker.status_changed", "worker.paused"]
    pause_event = worker_events(Change(("w-1",), running, paused), RULES)[1]
    assert pause_event.detail is not None and pause_event.detail["reason"] == "idle for 60 min"
    stopped = paused.model_copy(update={"status": WorkerStatus.STOPPED})
    resumed = stopped.resume(now=T0 + timedelta(minutes=2))
    assert [e.type for e in worker_events(Change(("w-1",), stopped, resumed), RULES)] == [
        "worker.status_changed",
        "worker.resumed",
    ]


def test_lab_events_ignore_sync_time_only_rewrites():
    lab = _lab()
    view = lambda l: l.model_dump(mode="json")  # noqa: E731
    assert [e.type for e in lab_events(Change(("w-1", "l-1"), None, lab), view)] == ["lab.created"]
    assert lab_events(Change(("w-1", "l-1"), lab, lab.model_copy(update={"synced_at": T0 + timedelta(1)})), view) == []
    (started,) = lab_events(Change(("w-1", "l-1"), lab, lab.model_copy(update={"state": "STARTED"})), view)
    assert started.type == "lab.changed" and started.topics == ("workers/w-1/labs",)
    assert started.detail == {"changed": ["state"]}
    assert lab_events(Change(("w-1", "l-1"), lab, None), view)[0].type == "lab.deleted"


def test_job_finished_only_when_a_new_finish_is_recorded():
    running = JobHeartbeat(job="collect_metrics", interval_seconds=60, last_started_at=T0, last_status="running")
    done = running.model_copy(update={"last_finished_at": T0 + timedelta(seconds=5), "last_status": "succeeded"})
    entry = lambda beat: {"job": beat.job, "last_status": beat.last_status}  # noqa: E731
    assert job_events(Change(("collect_metrics",), None, running), entry) == []
    (finished,) = job_events(Change(("collect_metrics",), running, done), entry)
    assert (
        finished.type == "job.finished" and finished.topics == ("jobs",) and finished.data["last_status"] == "succeeded"
    )
    assert (
        job_events(Change(("collect_metrics",), done, done.model_copy(update={"last_summary": {"a": 1}})), entry) == []
    )


def test_coalescing_keeps_the_first_old_and_the_last_new_image_per_entity():
    a0, a1, a2 = (
        _worker("w-a"),
        _worker("w-a", status=WorkerStatus.STOPPING),
        _worker("w-a", status=WorkerStatus.STOPPED),
    )
    b0, b1 = _worker("w-b"), _worker("w-b", tags={"x": "y"})
    merged = coalesce([Change(("w-a",), a0, a1), Change(("w-b",), b0, b1), Change(("w-a",), a1, a2)])
    assert [(c.key, c.old, c.new) for c in merged] == [(("w-a",), a0, a2), (("w-b",), b0, b1)]
    # Created and deleted within one batch: nothing to tell anyone.
    assert coalesce([Change(("w-c",), None, a0), Change(("w-c",), a0, None)]) == []


# --- service: subscribe and fan-out over the twins ---


def _ports(store: MemoryConnectionStore, poster: MemoryConnections, workers: InMemoryWorkerRepository | None = None):  # noqa: ANN202
    snapshots = None
    if workers is not None:
        snapshots = SnapshotPorts(
            workers=workers,
            labs=_NoLabs(),
            jobs=InMemoryJobRepository(),
            settings=InMemorySettingsRepository(),
            worker_view=view_of,
            summary_view=summary_view_of,
            lab_view=lambda lab: lab.model_dump(mode="json"),
            health=lambda jobs, settings, now: health_report(jobs, settings, now=now),
        )
    return RealtimePorts(connections=store, poster=poster, snapshots=snapshots, post_concurrency=4)


class _NoLabs:
    """A lab store with no labs; the snapshots read it and never write."""

    def list(self, worker_id: str) -> list[Lab]:
        return []

    def get(self, worker_id: str, lab_id: str) -> Lab | None:
        return None

    def write(self, puts: Sequence[Lab], deletes: Sequence[Lab]) -> int:
        unexpected("labs", "write")


def _connection(store: MemoryConnectionStore, connection_id: str) -> Connection:
    connection = store.get(connection_id)
    assert connection is not None, f"connection {connection_id} is not stored"
    return connection


def _ids():  # noqa: ANN202
    counter = itertools.count()
    return lambda: f"e{next(counter)}"


def _sent(poster: MemoryConnections, connection_id: str) -> list[dict]:
    return [json.loads(m) for m in poster.sent.get(connection_id, [])]


def test_subscribe_sends_a_snapshot_to_the_subscriber_only():
    store, poster, workers = MemoryConnectionStore(), MemoryConnections(), InMemoryWorkerRepository()
    workers.add(_worker("w-1"))
    ports = _ports(store, poster, workers)
    for cid in ("c1", "c2"):
        realtime.connect(store, cid, user="u", role="viewer", now=T0)
    realtime.receive(
        ports, "c1", json.dumps({"action": "subscribe", "topics": ["workers/w-1", "fleet"]}), now=T0, new_id=_ids()
    )
    snapshot_w, snapshot_fleet = _sent(poster, "c1")
    assert snapshot_w["type"] == "snapshot" and snapshot_w["data"] == view_of(workers.get("w-1"))
    assert snapshot_fleet["topic"] == "fleet" and [w["worker_id"] for w in snapshot_fleet["data"]["workers"]] == ["w-1"]
    # The fleet's rows are summaries: WorkerView's fields the list shows, with the same values.
    (row,) = snapshot_fleet["data"]["workers"]
    full = view_of(workers.get("w-1"))
    assert set(row) < set(full) and "cml_system" not in row
    assert all(row[k] == full[k] for k in row if k not in ("metrics", "licence"))
    assert _sent(poster, "c2") == []
    connection = _connection(store, "c1")
    assert connection.topics == {"workers/w-1", "fleet"} and connection.expires_at == T0 + timedelta(hours=2)


def test_a_fleet_row_is_the_full_view_with_fewer_fields():
    # Given a worker with metrics and a licence operation in flight
    worker = _worker(
        metrics=WorkerMetrics(collected_at=T0, cpu_percent=41.5, labs_running=2, labs_digest="d", cml_version="2.9"),
        licence=Licence(
            registration_status="REGISTERED",
            operation=LicenceOperation.REGISTERING,
            operation_state="pending",
            token_secret_ref="cmlcm/w-1",
        ),
        owner="ann@example.com",
        tags={"Course": "ccna"},
    )
    # When it is shown as a fleet row and as the full view
    row, full = summary_view_of(WorkerSummary.of(worker)), view_of(worker)
    # Then every field of the row has the full view's value (nested ones too), and the row is smaller
    for key, value in row.items():
        if isinstance(value, dict) and key != "tags":
            assert value == {k: full[key][k] for k in value}, key
        else:
            assert value == full[key], key
    assert row["metrics"]["cpu_percent"] == 41.5 and "labs_digest" not in row["metrics"]
    assert row["licence"]["operation_state"] == "pending" and "token_secret_ref" not in row["licence"]
    assert len(json.dumps(row)) < len(json.dumps(full)) / 2


def test_the_topic_limit_is_per_connection_and_the_error_keeps_the_connection():
    store, poster = MemoryConnectionStore(), MemoryConnections()
    ports = _ports(store, poster, InMemoryWorkerRepository())
    realtime.connect(store, "c1", user="u", role="viewer", now=T0)
    workers = InMemoryWorkerRepository()
    for i in range(MAX_TOPICS_PER_CONNECTION + 1):
        workers.add(_worker(f"w-{i}"))
    ports = _ports(store, poster, workers)
    first = [f"workers/w-{i}" for i in range(MAX_TOPICS_PER_CONNECTION)]
    realtime.receive(ports, "c1", json.dumps({"action": "subscribe", "topics": first}), now=T0, new_id=_ids())
    (reply,) = realtime.receive(
        ports,
        "c1",
        json.dumps({"action": "subscribe", "topics": [f"workers/w-{MAX_TOPICS_PER_CONNECTION}"]}),
        now=T0,
        new_id=_ids(),
    )
    assert reply.type == "error" and reply.data["code"] == "TooManyTopics"
    assert len(_connection(store, "c1").topics) == MAX_TOPICS_PER_CONNECTION


def test_fanout_reaches_subscribers_only_with_one_query_per_topic():
    store, poster = MemoryConnectionStore(), MemoryConnections()
    for cid, topics in {"ca": ["workers/w-a"], "cb": ["workers/w-b"], "cf": ["fleet"], "cx": []}.items():
        connection = realtime.connect(store, cid, user="u", role="viewer", now=T0)
        if topics:
            store.subscribe(connection, topics, limit=100)
    old = _worker("w-a")
    new = old.transition(WorkerStatus.STOPPING, now=T0, reason="stop requested")
    drafts = worker_events(Change(("w-a",), old, new), RULES)
    report = realtime.broadcast(_ports(store, poster), drafts, now=T0, new_id=_ids())
    assert [m["topic"] for m in _sent(poster, "ca")] == ["workers/w-a"]
    assert [m["topic"] for m in _sent(poster, "cf")] == ["fleet"]
    assert _sent(poster, "cb") == [] and _sent(poster, "cx") == []
    assert store.queries == 2 and report.queries == 2 and report.messages == 2
    # The same event seen on two topics is one event (one id).
    assert _sent(poster, "ca")[0]["id"] == _sent(poster, "cf")[0]["id"]


def test_a_gone_connection_is_deleted_and_a_failing_one_only_counted():
    store, poster = MemoryConnectionStore(), MemoryConnections()
    for cid in ("ok", "gone", "flaky"):
        store.subscribe(
            realtime.connect(store, cid, user="u", role="viewer", now=T0), ["fleet", "workers/w-a"], limit=100
        )
    poster.gone.add("gone")
    poster.failing.add("flaky")
    old = _worker("w-a")
    drafts = worker_events(Change(("w-a",), old, old.touch(T0, tags={"a": "b"})), RULES)
    report = realtime.broadcast(_ports(store, poster), drafts, now=T0, new_id=_ids())
    assert report.gone == ["gone"] and set(report.failed) == {"flaky"}
    assert store.get("gone") is None and "gone" not in store.subscribers("fleet")
    assert store.get("flaky") is not None  # a throttled post is no reason to drop a client
    assert [m["topic"] for m in _sent(poster, "ok")] == ["fleet", "workers/w-a"]


def test_each_connection_gets_its_messages_in_event_order():
    store, poster = MemoryConnectionStore(), MemoryConnections()
    store.subscribe(realtime.connect(store, "c", user="u", role="viewer", now=T0), ["workers/w-a"], limit=100)
    running = _worker("w-a")
    paused = running.pause(now=T0, reason="idle")
    realtime.broadcast(
        _ports(store, poster), worker_events(Change(("w-a",), running, paused), RULES), now=T0, new_id=_ids()
    )
    assert [m["type"] for m in _sent(poster, "c")] == ["worker.status_changed", "worker.paused"]
