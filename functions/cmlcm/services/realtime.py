"""Live updates: WebSocket connections and subscriptions, and the fan-out of stored changes.

`connect` / `disconnect` / `receive` serve the WebSocket routes; `broadcast` serves the stream
broadcaster: events by topic → one subscriber Query per affected topic → concurrent, bounded posts
(each connection's messages in order) → connections that answer 410 Gone are deleted with their
subscriptions; any other failure of one connection is counted, never raised. Nobody calls
`broadcast` after a write: the tables' streams are its only source. `deliver` does both halves
of a stream batch: the WebSocket fan-out and, at the same time, the same events (same ids) on the
custom EventBridge bus for automation.

Per-user scoping (settings `worker_scoping`): a scoped subscriber cannot subscribe to an
out-of-scope worker's topics (`UnknownTopic`, as for a worker that does not exist), its `fleet`
snapshot holds only its workers, and each subscription keeps the subscriber's scope so the
fan-out drops worker events of workers out of it (`_in_scope`). The scope is the one of the
settings when the topic was subscribed: a change of the settings reaches existing subscriptions
when they subscribe again (the dashboard does on every reconnect; connections last 2 h at most).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cmlcm.domain.access import EVERYTHING, Caller, Scope, scope_for
from cmlcm.domain.bus import entry_of
from cmlcm.domain.errors import DomainError, ExternalServiceError, NotFound
from cmlcm.domain.events import (
    CONNECTION_LIFETIME_SECONDS,
    FLEET_TOPIC,
    JOBS_TOPIC,
    MAX_TOPICS_PER_CONNECTION,
    Connection,
    ConnectionGone,
    DraftEvent,
    Event,
    MalformedMessage,
    UnknownAction,
    UnknownTopic,
    address,
    error_event,
    identify,
    parse_topics,
    topic_worker_id,
)
from cmlcm.pools import shared_pool
from cmlcm.ports import (
    ConnectionStore,
    RealtimePorts,
    SnapshotPorts,
)
from cmlcm.services.domain_events import PUT_CONCURRENCY, PublishReport, publish

#: API Gateway's WebSocket message limit is 128 KB; a snapshot part stays well under it.
MAX_MESSAGE_BYTES = 96 * 1024
#: Subscriber Queries in flight at once in one fan-out.
QUERY_CONCURRENCY = 16


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode()


# --- WebSocket routes --------------------------------------------------------------------------


def connect(
    connections: ConnectionStore,
    connection_id: str,
    *,
    user: str | None,
    role: str | None,
    now: datetime,
    teams: frozenset[str] = frozenset(),
) -> Connection:
    """Record a verified connection; its records expire with API Gateway's 2-hour limit."""
    connection = Connection(
        connection_id=connection_id,
        user=user,
        role=role,
        connected_at=now,
        expires_at=now + timedelta(seconds=CONNECTION_LIFETIME_SECONDS),
        teams=teams,
    )
    connections.add(connection)
    return connection


def disconnect(connections: ConnectionStore, connection_id: str) -> int:
    """Delete the connection and its subscriptions; returns subscriptions deleted."""
    return connections.remove(connection_id)


def receive(
    ports: RealtimePorts, connection_id: str, body: str | None, *, now: datetime, new_id: Callable[[], str]
) -> list[Event]:
    """Act on one client message and post the replies (pong, snapshots, errors) to that
    connection only; returns them. A bad message gets an `error` reply, never an exception."""
    connection = ports.connections.get(connection_id)
    if connection is None:  # disconnected meanwhile, or its records expired
        return []
    try:
        replies = _act(ports, connection, body, now=now, new_id=new_id)
    except DomainError as exc:
        code = exc.code if exc.http_status < 500 else "Unavailable"
        replies = [error_event(code, exc.message, event_id=new_id(), now=now)]
    _post_replies(ports, connection_id, replies)
    return replies


def _act(
    ports: RealtimePorts, connection: Connection, body: str | None, *, now: datetime, new_id: Callable[[], str]
) -> list[Event]:
    try:
        message = json.loads(body or "")
    except (ValueError, TypeError):
        raise MalformedMessage('the message is not JSON; send {"action": ..., ...}', field="body") from None
    if not isinstance(message, dict):
        raise MalformedMessage("the message must be a JSON object with an action", field="body")
    action = message.get("action")
    if action == "ping":
        return [Event("pong", "", new_id(), now, {})]
    if action == "subscribe":
        return _subscribe(ports, connection, parse_topics(message.get("topics"), connection.role), now, new_id)
    if action == "unsubscribe":
        topics = parse_topics(message.get("topics"), connection.role)
        ports.connections.unsubscribe(connection, topics)
        return [Event("unsubscribed", "", new_id(), now, {"topics": topics})]
    shown = action if isinstance(action, str) and len(action) <= 40 else "(missing)"
    raise UnknownAction(f"unknown action {shown!r}; actions: subscribe, unsubscribe, ping", field="action")


def _subscribe(
    ports: RealtimePorts, connection: Connection, topics: list[str], now: datetime, new_id: Callable[[], str]
) -> list[Event]:
    """Subscribe first, then read each snapshot: a change written in between reaches the client
    as an event too (clients keep the higher `version`), none is lost. A scoped subscriber's
    out-of-scope worker topics are refused before anything is subscribed."""
    scope = _scope_of(ports, connection)
    replies: list[Event] = []
    if not scope.everything and ports.snapshots is not None:
        hidden = [t for t in topics if not _worker_topic_in_scope(ports.snapshots, t, scope)]
        for topic in hidden:
            replies.append(_unknown_worker(topic, new_id, now))
        topics = [t for t in topics if t not in hidden]
    ports.connections.subscribe(connection, topics, limit=MAX_TOPICS_PER_CONNECTION, scope=scope.encode())
    unknown: list[str] = []
    for topic in topics:
        try:
            parts = snapshot(ports.snapshots, topic, now=now, scope=scope) if ports.snapshots else []
        except NotFound:
            unknown.append(topic)
            replies.append(_unknown_worker(topic, new_id, now))
            continue
        event_id = new_id()
        for index, data in enumerate(parts, start=1):
            detail = {"part": index, "parts": len(parts)} if len(parts) > 1 else None
            replies.append(Event("snapshot", topic, event_id, now, data, detail))
    if unknown:
        ports.connections.unsubscribe(
            Connection(
                connection.connection_id,
                connection.user,
                connection.role,
                connection.connected_at,
                connection.expires_at,
                frozenset(unknown),
            ),
            unknown,
        )
    return replies


def _unknown_worker(topic: str, new_id: Callable[[], str], now: datetime) -> Event:
    """The answer to a worker topic of a worker that does not exist (or is out of scope: the
    same words, so a scoped user cannot tell the two apart)."""
    return error_event(
        UnknownTopic.code, f"no worker {topic_worker_id(topic)!r}", event_id=new_id(), now=now, topic=topic
    )


def _scope_of(ports: RealtimePorts, connection: Connection) -> Scope:
    """The connection's per-user scope under the current settings (everything without them)."""
    if ports.snapshots is None:
        return EVERYTHING
    settings = ports.snapshots.settings.get()
    caller = Caller.of(connection.role, [connection.user], connection.teams)
    return scope_for(caller, scoping=settings.worker_scoping, team_tag_key=settings.team_tag_key)


def _worker_topic_in_scope(ports: SnapshotPorts, topic: str, scope: Scope) -> bool:
    """Whether a topic may be watched within `scope`: fleet and jobs always (the fleet is
    filtered), a worker topic when its worker exists and is in scope."""
    worker_id = topic_worker_id(topic)
    if worker_id is None:
        return True
    try:
        worker = ports.workers.get(worker_id)
    except NotFound:
        return False
    return scope.allows(worker.owner, worker.tags)


def snapshot(ports: SnapshotPorts, topic: str, *, now: datetime, scope: Scope = EVERYTHING) -> list[Any]:
    """A topic's current state as snapshot `data`, in parts that fit one WebSocket message
    (only the fleet of a large deployment needs more than one). `NotFound` for a worker topic
    of a worker that does not exist or is out of `scope`; the fleet holds only workers in it."""
    if topic == FLEET_TOPIC:
        # Summaries, not full views: a first render of a large fleet waits for this read (a
        # projection of each item), and later events bring each worker's full view.
        views = [ports.summary_view(w) for w in ports.workers.iter_active_summaries() if scope.allows(w.owner, w.tags)]
        return [{"workers": part} for part in _fit(views)]
    if topic == JOBS_TOPIC:
        return [ports.health(ports.jobs, ports.settings.get(), now)]
    worker_id = topic_worker_id(topic)
    if worker_id is None:
        raise UnknownTopic(f"unknown topic {topic!r}", field="topics")
    worker = ports.workers.get(worker_id)
    if not scope.allows(worker.owner, worker.tags):
        raise NotFound(f"worker {worker_id} not found", field="worker_id")
    if topic.endswith("/labs"):
        labs = [ports.lab_view(lab) for lab in ports.labs.list(worker.worker_id)]
        return [{"labs": part} for part in _fit(labs)]
    return [ports.worker_view(worker)]


def _fit(items: list[Any]) -> list[list[Any]]:
    """Split `items` into lists whose JSON stays under MAX_MESSAGE_BYTES (at least one list)."""
    parts: list[list[Any]] = [[]]
    size = 0
    for item in items:
        item_size = len(encode(item)) + 1
        if parts[-1] and size + item_size > MAX_MESSAGE_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += item_size
    return parts


def _post_replies(ports: RealtimePorts, connection_id: str, replies: list[Event]) -> None:
    for reply in replies:
        try:
            ports.poster.post(connection_id, encode(reply.message()))
        except ConnectionGone:
            ports.connections.remove(connection_id)
            return


# --- fan-out -----------------------------------------------------------------------------------


@dataclass
class BroadcastReport:
    """What one fan-out did (logged and emitted as metrics by the broadcaster)."""

    events: int = 0
    topics: int = 0
    queries: int = 0
    messages: int = 0
    posts: int = 0
    connections: int = 0
    gone: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _in_scope(topic: str, events: list[Event], encoded: list[bytes], scope: str | None) -> list[bytes]:
    """The messages of `topic` a subscriber with `scope` may receive: all of them without a
    scope; else worker events (on `fleet` and `workers/<id>`, whose data is the WorkerView) only
    for workers in it. Lab topics were checked when subscribed; `jobs` is everyone's."""
    if scope is None or topic == JOBS_TOPIC or topic.endswith("/labs"):
        return encoded
    allowed = Scope.decode(scope)
    return [
        data
        for event, data in zip(events, encoded, strict=True)
        if isinstance(event.data, dict) and allowed.allows_view(event.data)
    ]


def broadcast(
    ports: RealtimePorts, drafts: Sequence[DraftEvent], *, now: datetime, new_id: Callable[[], str]
) -> BroadcastReport:
    """Deliver `drafts` to the subscribers of their topics, and only to them."""
    by_topic = address(drafts, now=now, new_id=new_id)
    report = BroadcastReport(events=len(drafts), topics=len(by_topic))
    if not by_topic:
        return report
    topics = list(by_topic)
    queries = shared_pool("subscriber-query", QUERY_CONCURRENCY)
    subscribers = dict(zip(topics, queries.map(ports.connections.subscriptions_of, topics), strict=True))
    report.queries = len(topics)
    # Each connection's messages in topic then event order, posted one after another (a client
    # sees a worker's events in the order they happened); connections are served concurrently.
    outbox: dict[str, list[bytes]] = {}
    for topic, events in by_topic.items():
        if not subscribers[topic]:
            continue
        encoded = [encode(event.message()) for event in events]
        for connection_id, scope in subscribers[topic]:
            outbox.setdefault(connection_id, []).extend(_in_scope(topic, events, encoded, scope))
    report.connections = len(outbox)
    report.messages = sum(len(m) for m in outbox.values())

    def post_messages(item: tuple[str, list[bytes]]) -> tuple[str, int, str | None]:
        connection_id, messages = item
        posted = 0
        for data in messages:
            try:
                posted += 1
                ports.poster.post(connection_id, data)
            except ConnectionGone:
                return connection_id, posted, "gone"
            except ExternalServiceError as exc:
                return connection_id, posted, exc.message[:200]
        return connection_id, posted, None

    posts = shared_pool("post-to-connection", ports.post_concurrency)
    for connection_id, posted, problem in posts.map(post_messages, outbox.items()):
        report.posts += posted
        if problem == "gone":
            report.gone.append(connection_id)
        elif problem is not None:
            report.failed[connection_id] = problem
    for connection_id in report.gone:
        try:
            ports.connections.remove(connection_id)
        except ExternalServiceError as exc:  # its TTL removes it anyway
            report.failed[connection_id] = f"cleanup: {exc.message[:180]}"
    return report


def deliver(
    ports: RealtimePorts, drafts: Sequence[DraftEvent], *, now: datetime, new_id: Callable[[], str]
) -> tuple[BroadcastReport, PublishReport]:
    """One stream batch's events to their WebSocket subscribers and, meanwhile, to the bus (when
    there is one): the same events with the same ids. Neither half raises for a refused
    delivery; each reports it."""
    drafts = identify(drafts, new_id)
    if ports.bus is None or not drafts:
        return broadcast(ports, drafts, now=now, new_id=new_id), PublishReport()
    entries = [entry_of(draft, event_id=draft.id, now=now) for draft in drafts]
    bus = ports.bus
    publishing = shared_pool("publish", 1).submit(
        publish, bus, entries, concurrency=PUT_CONCURRENCY, pool=shared_pool("put-events", PUT_CONCURRENCY)
    )
    report = broadcast(ports, drafts, now=now, new_id=new_id)
    return report, publishing.result()
