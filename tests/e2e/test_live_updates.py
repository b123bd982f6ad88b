"""Live updates end to end in local mode, with a real WebSocket client: the local gateway's
WebSocket and @connections, the real handlers, RS256 tokens verified against the local JWKS, and
the broadcaster fed from moto's DynamoDB Streams by the stream pump.

The runtime runs in this process (so the test can look at the subscription records); the fixture
puts the environment and every cached adapter back afterwards.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from cmlcm.adapters.connections_api import ApiGatewayConnections, MemoryConnections
from cmlcm.config import get_config
from cmlcm.domain.events import ConnectionGone
from cmlcm_local.runtime import LocalRuntime
from tests.support.local_mode import in_process_runtime

VIEWER = {"Authorization": "Bearer dev-viewer"}
OPERATOR = {"Authorization": "Bearer dev-operator"}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalRuntime]:
    with in_process_runtime(workers=4, stopped_workers=1) as runtime:
        yield runtime


def _ws(local: LocalRuntime, token: str | None = "dev-viewer") -> ClientConnection:
    url = local.base_url.replace("http://", "ws://") + "/ws" + (f"?token={token}" if token is not None else "")
    return connect(url, open_timeout=10)


def _recv(client: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(client.recv(timeout=timeout))


def _until(client: ClientConnection, predicate, timeout: float = 15.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # noqa: ANN001
    """The first message matching `predicate`, and every message seen before it."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"no matching message within {timeout} s; saw {[(m['type'], m['topic']) for m in seen]}"
            )
        message = _recv(client, timeout=left)
        if predicate(message):
            return message, seen
        seen.append(message)


def _drain(client: ClientConnection, quiet: float = 0.5) -> list[dict[str, Any]]:
    messages = []
    while True:
        try:
            messages.append(_recv(client, timeout=quiet))
        except TimeoutError:
            return messages


def _subscribe(client: ClientConnection, *topics: str) -> list[dict[str, Any]]:
    client.send(json.dumps({"action": "subscribe", "topics": list(topics)}))
    return [_until(client, lambda m, t=topic: m["type"] == "snapshot" and m["topic"] == t)[0] for topic in topics]


def _workers(local: LocalRuntime) -> list[dict[str, Any]]:
    return httpx.get(f"{local.base_url}/workers", headers=VIEWER, timeout=30).json()["items"]


def _connection_ids(local: LocalRuntime) -> set[str]:
    listing = httpx.get(f"{local.base_url}/_local/connections", timeout=10).json()["connections"]
    return {c["connection_id"] for c in listing}


@pytest.mark.parametrize("poster_kind", ["memory", "connections_api"])
def test_the_posts_twin_answers_as_the_connections_api(local: LocalRuntime, poster_kind: str):
    """The contract of `MemoryConnections`: run against it and against `ApiGatewayConnections`
    on the local gateway's @connections (moto's never answers 410 Gone)."""
    before = _connection_ids(local)
    with _ws(local) as client:
        (connection_id,) = _connection_ids(local) - before
        poster: Any
        if poster_kind == "memory":
            poster = MemoryConnections()
        else:
            poster = ApiGatewayConnections(local.base_url, get_config().aws_region)
        # A post reaches its connection, as sent
        poster.post(connection_id, b'{"type": "contract"}')
        if poster_kind == "memory":
            assert poster.sent[connection_id] == [b'{"type": "contract"}']
        else:
            assert _recv(client) == {"type": "contract"}
        # A connection closed from the server side is gone: a post to it is ConnectionGone
        poster.close(connection_id)
        with pytest.raises(ConnectionGone):
            poster.post(connection_id, b'{"type": "late"}')
        # and closing it again is not an error
        poster.close(connection_id)


def test_no_token_or_a_bad_token_is_refused_with_401(local: LocalRuntime):
    for token in (None, "", "dev-nobody", "not.a.jwt"):
        with pytest.raises(InvalidStatus) as refused:
            _ws(local, token)
        assert refused.value.response.status_code == 401, token
    expired = local.issuer.mint("viewer", lifetime_seconds=-60)
    other_client = local.issuer.mint("viewer", aud="someone-elses-client")
    refresh_like = local.issuer.mint("viewer", token_use="refresh")
    for token in (expired, other_client, refresh_like):
        with pytest.raises(InvalidStatus) as refused:
            _ws(local, token)
        assert refused.value.response.status_code == 401
    # A real token of the local issuer (not the dev shortcut) is accepted: the same verifier.
    with _ws(local, local.issuer.mint("viewer", token_use="access")) as client:
        client.send(json.dumps({"action": "ping"}))
        assert _recv(client)["type"] == "pong"


def test_a_bad_message_gets_an_error_and_the_connection_stays_open(local: LocalRuntime):
    with _ws(local) as client:
        for raw, code in (
            ("not json", "MalformedMessage"),
            (json.dumps({"action": "dance"}), "UnknownAction"),
            (json.dumps({"action": "subscribe", "topics": ["weather"]}), "UnknownTopic"),
            (json.dumps({"action": "subscribe", "topics": "fleet"}), "MalformedMessage"),
            (json.dumps({"action": "subscribe", "topics": ["workers/w-does-not-exist"]}), "UnknownTopic"),
        ):
            client.send(raw)
            reply = _recv(client)
            assert reply["type"] == "error" and reply["data"]["code"] == code, (raw, reply)
        client.send(json.dumps({"action": "ping"}))
        assert _recv(client)["type"] == "pong"


def test_a_subscriber_sees_its_worker_stop_and_others_see_nothing_of_it(local: LocalRuntime):
    running = [w for w in _workers(local) if w["status"] == "running"]
    a, b = running[0], running[1]
    with _ws(local) as watcher_a, _ws(local) as watcher_b:
        (snapshot_a,) = _subscribe(watcher_a, f"workers/{a['worker_id']}")
        assert snapshot_a["data"] == httpx.get(f"{local.base_url}/workers/{a['worker_id']}", headers=VIEWER).json()
        _subscribe(watcher_b, f"workers/{b['worker_id']}")
        assert httpx.post(f"{local.base_url}/workers/{a['worker_id']}/stop", headers=OPERATOR).status_code == 200

        first, _ = _until(watcher_a, lambda m: m["type"] == "worker.status_changed", timeout=10)
        assert first["topic"] == f"workers/{a['worker_id']}" and first["data"]["worker_id"] == a["worker_id"]
        assert first["detail"]["old"] == "running" and first["detail"]["new"] in ("stopping", "stopped")
        if first["detail"]["new"] == "stopping":
            assert first["data"]["status"] == "stopping"
            assert first["detail"]["cause"] == {"kind": "user", "by": "operator@example.com"}
            # EC2 reports the instance stopped: its state-change event updates the worker within
            # seconds (no collection runs here: the scheduler loop is off).
            stopped, _ = _until(
                watcher_a,
                lambda m: m["type"] == "worker.status_changed" and m["detail"]["new"] == "stopped",
                timeout=15,
            )
            assert stopped["detail"]["old"] == "stopping"
        else:
            # moto stops at once: the user's write and EC2's event can reach one stream batch, whose
            # newest image per worker is what the fan-out sends (running → stopped).
            stopped = first
        assert stopped["data"]["status"] == "stopped" and stopped["detail"]["cause"]["kind"] == "ec2_event"

        about_a = [m for m in _drain(watcher_b) if a["worker_id"] in json.dumps(m)]
        assert about_a == []


def test_a_client_whose_disconnect_was_lost_is_cleaned_up_on_the_next_fanout(local: LocalRuntime):
    from cmlcm.adapters.subscriptions import DynamoConnectionStore

    settings = get_config()
    store = DynamoConnectionStore(settings.connections_table, settings.subscriptions_table, settings.aws_region)
    worker = next(w for w in _workers(local) if w["status"] in ("running", "stopped"))
    topic = f"workers/{worker['worker_id']}"
    with _ws(local) as survivor:
        before = _connection_ids(local)
        with _ws(local) as lost:
            (lost_id,) = _connection_ids(local) - before
            _subscribe(lost, topic)
            _subscribe(survivor, topic)
            assert lost_id in store.subscribers(topic)
            # The socket goes away without $disconnect (API Gateway does not guarantee it).
            assert httpx.post(f"{local.base_url}/_local/connections/{lost_id}/drop").status_code == 204
        assert lost_id in store.subscribers(topic)

        tags = httpx.put(
            f"{local.base_url}/workers/{worker['worker_id']}/tags",
            headers={"Authorization": "Bearer dev-admin"},
            json={"tags": {"live": "yes"}},
        )
        assert tags.status_code == 200
        changed, _ = _until(survivor, lambda m: m["type"] == "worker.changed")
        assert changed["detail"]["changed"] == ["tags"]
        deadline = time.monotonic() + 10
        while lost_id in store.subscribers(topic) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lost_id not in store.subscribers(topic)
        assert store.get(lost_id) is None


def test_a_create_is_watched_live_from_pending_to_running_through_its_steps(local: LocalRuntime):
    admin = {"Authorization": "Bearer dev-admin"}
    # The scheduler loop is off here: give the new instance its simulated CML as its tick would.
    done = threading.Event()

    def simulate_fleet() -> None:
        while not done.wait(0.5):
            local.sync_simulated_fleet(boot_seconds=1)

    threading.Thread(target=simulate_fleet, daemon=True).start()
    try:
        with _ws(local) as fleet_watcher:
            _subscribe(fleet_watcher, "fleet")
            created = httpx.post(
                f"{local.base_url}/workers",
                headers={**admin, "Idempotency-Key": "live-create-0001"},
                json={"name": "live-lab", "region": "us-east-1"},
                timeout=30,
            )
            assert created.status_code == 202, created.text
            worker_id = created.json()["worker"]["worker_id"]
            mine = lambda m: m.get("data", {}).get("worker_id") == worker_id  # noqa: E731
            first, _ = _until(fleet_watcher, lambda m: mine(m) and m["type"] == "worker.created", timeout=15)
            # Its data is the worker's newest image in the stream batch: the saga's first write
            # may share the batch (the transitions themselves are checked from the details below).
            assert first["data"]["status"] in ("pending", "provisioning")
            running, seen = _until(
                fleet_watcher,
                lambda m: mine(m) and m["type"] == "worker.status_changed" and m["detail"]["new"] == "running",
                timeout=90,
            )
            assert running["detail"]["cause"] == {"kind": "saga", "by": "mark_running"}
            ours = [m for m in seen if mine(m)]
            statuses = [(m["detail"]["old"], m["detail"]["new"]) for m in ours if m["type"] == "worker.status_changed"]
            # From the created worker's status to running, each transition starts where the one
            # before it ended: none is lost, whatever the stream batches merged.
            current = first["data"]["status"]
            for old, new in [*statuses, (running["detail"]["old"], "running")]:
                assert old == current, (statuses, first["data"]["status"])
                current = new
            assert ("pending", "provisioning") in statuses or first["data"]["status"] == "provisioning"
            steps = [m["detail"]["step"] for m in ours if m["type"] == "worker.provisioning_step"]
            # Writes of one stream batch coalesce (a busy machine merges neighbouring steps), so the
            # steps seen are some of the saga's, in its order, each completed.
            order = ["launch", "record_instance", "wait_running", "mark_running"]
            assert steps and steps == sorted(steps, key=order.index)
            assert all(m["detail"]["state"] == "completed" for m in ours if m["type"] == "worker.provisioning_step")
    finally:
        done.set()


def _bus_events(local: LocalRuntime, rule: str = "local-all-events") -> list[dict[str, Any]]:
    answer = httpx.get(f"{local.base_url}/_local/events/{rule}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


def _until_on_bus(local: LocalRuntime, predicate, rule: str = "local-all-events", timeout: float = 20.0) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in _bus_events(local, rule) if predicate(e)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching event on rule {rule} within {timeout} s")
        time.sleep(0.3)


def test_domain_events_reach_rule_targets_on_the_local_bus(local: LocalRuntime, monkeypatch: pytest.MonkeyPatch):
    # A stop watched on the WebSocket reaches the bus's catch-all rule as the same event (same id).
    worker = next(w for w in _workers(local) if w["status"] == "running")
    with _ws(local) as watcher:
        _subscribe(watcher, f"workers/{worker['worker_id']}")
        assert httpx.post(f"{local.base_url}/workers/{worker['worker_id']}/stop", headers=OPERATOR).status_code == 200
        stopping, _ = _until(watcher, lambda m: m["type"] == "worker.status_changed", timeout=10)
    on_bus = _until_on_bus(local, lambda e: e["detail"]["id"] == stopping["id"])
    assert on_bus["source"] == "cmlcm" and on_bus["detail-type"] == "worker.status_changed"
    assert on_bus["detail"]["data"] == stopping["data"] and on_bus["detail"]["detail"] == stopping["detail"]
    assert all(e["detail"]["detail"]["new"] == "failed" for e in _bus_events(local, "worker-failed"))

    # A create whose launch fails (EC2 does not know the AMI): the saga compensates, the worker
    # goes FAILED, and the documented example rule delivers that event to its target.
    import moto.settings

    monkeypatch.setattr(moto.settings, "ENABLE_AMI_VALIDATION", True)
    created = httpx.post(
        f"{local.base_url}/workers",
        headers={"Authorization": "Bearer dev-admin", "Idempotency-Key": "bus-failed-create-01"},
        json={"name": "doomed-lab", "region": "us-east-1", "ami_id": "ami-0badbadbadbadbad0"},
        timeout=30,
    )
    assert created.status_code == 202, created.text
    worker_id = created.json()["worker"]["worker_id"]
    failed = _until_on_bus(
        local, lambda e: e["detail"]["data"]["worker_id"] == worker_id, rule="worker-failed", timeout=60
    )
    assert failed["detail-type"] == "worker.status_changed" and failed["detail"]["detail"]["new"] == "failed"
    assert failed["detail"]["data"]["status"] == "failed"
    # Only FAILED workers reach that rule's target; the catch-all saw the create too.
    assert {e["detail"]["detail"]["new"] for e in _bus_events(local, "worker-failed")} == {"failed"}
    assert any(
        e["detail-type"] == "worker.created" and e["detail"]["data"]["worker_id"] == worker_id
        for e in _bus_events(local)
    )
