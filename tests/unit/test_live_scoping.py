"""Per-user scoping of live updates: a scoped operator cannot subscribe to an out-of-scope
worker's topics (answered as a worker that does not exist), its fleet snapshot holds only its
workers, and the fan-out gives it no message about a worker out of its scope."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from cmlcm.adapters.connections_api import MemoryConnections
from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.operations import InMemoryJobRepository, InMemorySettingsRepository
from cmlcm.adapters.subscriptions import MemoryConnectionStore
from cmlcm.domain.events import Change, WorkerEventRules, worker_events
from cmlcm.domain.labs import Lab
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.handlers.api.models import summary_view_of, view_of
from cmlcm.ports import RealtimePorts, SnapshotPorts
from cmlcm.services import realtime
from cmlcm.services.jobs import health_report
from tests.support.fakes import unexpected

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULES = WorkerEventRules(view=view_of, cause_of=lambda w: {"kind": "unknown", "by": None})


def _worker(worker_id: str, *, owner: str | None = None, tags: dict[str, str] | None = None) -> Worker:
    return Worker(
        worker_id=worker_id,
        name=worker_id,
        region="us-east-1",
        instance_id="i-0000000000000001",
        owner=owner,
        tags=tags or {},
        status=WorkerStatus.RUNNING,
        created_at=T0,
        updated_at=T0,
        status_changed_at=T0,
    )


class _NoLabs:
    """A lab store with no labs; the snapshots read it and never write."""

    def list(self, worker_id: str) -> list[Lab]:
        return []

    def get(self, worker_id: str, lab_id: str) -> Lab | None:
        return None

    def write(self, puts: Sequence[Lab], deletes: Sequence[Lab]) -> int:
        unexpected("labs", "write")


def _ids():  # noqa: ANN202
    counter = itertools.count()
    return lambda: f"e{next(counter)}"


@pytest.fixture
def world():  # noqa: ANN201
    store, poster, workers = MemoryConnectionStore(), MemoryConnections(), InMemoryWorkerRepository()
    for worker in (
        _worker("w-mine", owner="operator@example.com"),
        _worker("w-team", tags={"Team": "ccna"}),
        _worker("w-other", owner="someone@example.com"),
    ):
        workers.add(worker)
    ports = RealtimePorts(
        connections=store,
        poster=poster,
        snapshots=SnapshotPorts(
            workers=workers,
            labs=_NoLabs(),
            jobs=InMemoryJobRepository(),
            settings=InMemorySettingsRepository(Settings(worker_scoping="operators")),
            worker_view=view_of,
            summary_view=summary_view_of,
            lab_view=lambda lab: lab.model_dump(mode="json"),
            health=lambda jobs, settings, now: health_report(jobs, settings, now=now),
        ),
        post_concurrency=2,
    )
    realtime.connect(store, "op", user="operator@example.com", role="operator", now=T0, teams=frozenset({"ccna"}))
    realtime.connect(store, "adm", user="admin@example.com", role="admin", now=T0)
    return ports, store, poster, workers


def _sent(poster: MemoryConnections, connection_id: str) -> list[dict]:
    return [json.loads(m) for m in poster.sent.get(connection_id, [])]


def _subscribe(ports, connection_id: str, topics: list[str]) -> None:  # noqa: ANN001
    realtime.receive(ports, connection_id, json.dumps({"action": "subscribe", "topics": topics}), now=T0, new_id=_ids())


def test_a_scoped_operator_cannot_subscribe_to_an_out_of_scope_worker(world):  # noqa: ANN001
    ports, store, poster, _ = world
    _subscribe(ports, "op", ["workers/w-other", "workers/w-other/labs", "workers/w-nope", "workers/w-mine", "fleet"])
    replies = _sent(poster, "op")
    errors = {m["topic"]: m["data"] for m in replies if m["type"] == "error"}
    # Out of scope reads exactly as missing.
    assert errors["workers/w-other"] == {"code": "UnknownTopic", "message": "no worker 'w-other'"}
    assert errors["workers/w-other/labs"]["code"] == "UnknownTopic"
    assert errors["workers/w-nope"] == {"code": "UnknownTopic", "message": "no worker 'w-nope'"}
    assert store.get("op").topics == {"workers/w-mine", "fleet"}
    assert "workers/w-other" not in store.subscriptions and "workers/w-other/labs" not in store.subscriptions
    (fleet,) = [m for m in replies if m["type"] == "snapshot" and m["topic"] == "fleet"]
    assert sorted(w["worker_id"] for w in fleet["data"]["workers"]) == ["w-mine", "w-team"]


def test_a_scoped_operator_gets_no_message_for_an_out_of_scope_worker(world):  # noqa: ANN001
    ports, _, poster, workers = world
    _subscribe(ports, "op", ["fleet"])
    _subscribe(ports, "adm", ["fleet", "workers/w-other"])
    poster.sent.clear()
    drafts = []
    for worker_id in ("w-other", "w-team", "w-mine"):
        old = workers.get(worker_id)
        drafts += worker_events(Change((worker_id,), old, old.transition(WorkerStatus.STOPPING, now=T0)), RULES)
    realtime.broadcast(ports, drafts, now=T0, new_id=_ids())
    seen_by_operator = {m["data"]["worker_id"] for m in _sent(poster, "op")}
    assert seen_by_operator == {"w-team", "w-mine"}
    seen_by_admin = [(m["topic"], m["data"]["worker_id"]) for m in _sent(poster, "adm")]
    assert ("fleet", "w-other") in seen_by_admin and ("workers/w-other", "w-other") in seen_by_admin
    assert {w for t, w in seen_by_admin if t == "fleet"} == {"w-other", "w-team", "w-mine"}


def test_a_worker_leaving_the_scope_stops_reaching_the_subscriber(world):  # noqa: ANN001
    ports, _, poster, workers = world
    _subscribe(ports, "op", ["workers/w-mine"])
    poster.sent.clear()
    old = workers.get("w-mine")
    given_away = old.touch(T0, owner="someone@example.com")
    realtime.broadcast(ports, worker_events(Change(("w-mine",), old, given_away), RULES), now=T0, new_id=_ids())
    assert _sent(poster, "op") == []


def test_unscoped_when_the_setting_is_off(world):  # noqa: ANN001
    ports, store, poster, _ = world
    ports.snapshots.settings.save(Settings(version=ports.snapshots.settings.get().version))
    _subscribe(ports, "op", ["workers/w-other"])
    assert store.get("op").topics == {"workers/w-other"}
    assert store.scopes[("workers/w-other", "op")] is None
