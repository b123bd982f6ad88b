"""Live-update domain: topics, who may subscribe to what, the message envelope, and the pure rules
that turn a stored change (old image → new image) into the events clients and automation see.

Pure domain code: no AWS, HTTP or DynamoDB. Time and ids come in as arguments; the outward shape
of a worker or a lab comes in as a function (`view`), so the one DTO mapping of the REST API is
the only one (responses, snapshots and events cannot drift apart).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from cmlcm.domain.errors import DomainError

#: Every worker change, for fleet views.
FLEET_TOPIC = "fleet"
#: Job runs (collection, reconciler): their heartbeat entries as GET /health shows them.
JOBS_TOPIC = "jobs"
#: API Gateway closes a WebSocket connection after 2 hours: records live as long, at most.
CONNECTION_LIFETIME_SECONDS = 2 * 60 * 60
#: Topics one connection may hold at once (a dashboard needs a handful; this bounds a fan-out).
MAX_TOPICS_PER_CONNECTION = 100
#: Topics one subscribe/unsubscribe message may name.
MAX_TOPICS_PER_MESSAGE = 100
#: Every event type the change rules below emit (WebSocket `type`, EventBridge `detail-type`);
#: docs/events/ has one JSON schema per type and a test keeps the three in step.
EVENT_TYPES: tuple[str, ...] = (
    "worker.created",
    "worker.changed",
    "worker.deleted",
    "worker.status_changed",
    "worker.paused",
    "worker.resumed",
    "worker.provisioning_step",
    "licence.progress",
    "lab.created",
    "lab.changed",
    "lab.deleted",
    "job.finished",
)

_WORKER_TOPIC = re.compile(r"^workers/(?P<worker_id>[A-Za-z0-9][A-Za-z0-9._-]{0,127})(?P<labs>/labs)?$")

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[str, ...] = ("viewer", "operator", "admin")


class ConnectionGone(Exception):
    """The connection no longer exists (API Gateway's 410 GoneException on a post)."""


class ProtocolError(DomainError):
    """A client message the server cannot act on; answered with an `error` message, the
    connection stays open."""

    http_status = 400
    code = "BadMessage"


class UnknownAction(ProtocolError):
    code = "UnknownAction"


class MalformedMessage(ProtocolError):
    code = "MalformedMessage"


class UnknownTopic(ProtocolError):
    code = "UnknownTopic"


class ForbiddenTopic(ProtocolError):
    http_status = 403
    code = "ForbiddenTopic"


class TooManyTopics(ProtocolError):
    http_status = 429
    code = "TooManyTopics"


def worker_topic(worker_id: str) -> str:
    return f"workers/{worker_id}"


def labs_topic(worker_id: str) -> str:
    return f"workers/{worker_id}/labs"


def check_topic(topic: Any) -> str:
    """The topic if it is one this server knows (`fleet`, `jobs`, `workers/<id>`,
    `workers/<id>/labs`), else `UnknownTopic` naming it."""
    if not isinstance(topic, str) or not (topic in (FLEET_TOPIC, JOBS_TOPIC) or _WORKER_TOPIC.match(topic)):
        shown = topic if isinstance(topic, str) and len(topic) <= 140 else type(topic).__name__
        raise UnknownTopic(
            f"unknown topic {shown!r}; topics: fleet, jobs, workers/<worker_id>, workers/<worker_id>/labs",
            field="topics",
        )
    return topic


def topic_worker_id(topic: str) -> str | None:
    """The worker a `workers/...` topic is about, else None."""
    match = _WORKER_TOPIC.match(topic)
    return match.group("worker_id") if match else None


def may_subscribe(role: str | None, topic: str) -> bool:
    """Who may watch what: every role reads what the REST API lets viewers read; a user with no
    known role (no group) sees only `jobs`, which mirrors the public GET /health."""
    if topic == JOBS_TOPIC:
        return True
    return role in ROLES


def parse_topics(raw: Any, role: str | None) -> list[str]:
    """The topics of a subscribe/unsubscribe message, checked and deduplicated (order kept)."""
    if not isinstance(raw, list) or not raw:
        raise MalformedMessage("topics must be a non-empty list of topic names", field="topics")
    if len(raw) > MAX_TOPICS_PER_MESSAGE:
        raise TooManyTopics(f"at most {MAX_TOPICS_PER_MESSAGE} topics per message", field="topics")
    topics = list(dict.fromkeys(check_topic(t) for t in raw))
    for topic in topics:
        if not may_subscribe(role, topic):
            raise ForbiddenTopic(f"your role may not subscribe to {topic!r}", field="topics")
    return topics


@dataclass(frozen=True)
class Connection:
    """One open WebSocket connection and what it watches."""

    connection_id: str
    user: str | None
    role: str | None
    connected_at: datetime
    expires_at: datetime
    topics: frozenset[str] = frozenset()
    #: The user's teams (Cognito groups `team-<name>`), for per-user scoping of what it receives.
    teams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Event:
    """One server → client message. `data` is the entity's outward view; `detail` (optional)
    says what happened to it beyond its new state."""

    type: str
    topic: str
    id: str
    time: datetime
    data: Any
    detail: Mapping[str, Any] | None = None

    def message(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "topic": self.topic,
            "id": self.id,
            "time": self.time.isoformat(),
            "data": self.data,
        }
        if self.detail is not None:
            body["detail"] = dict(self.detail)
        return body


def error_event(code: str, message: str, *, event_id: str, now: datetime, topic: str | None = None) -> Event:
    return Event("error", topic or "", event_id, now, {"code": code, "message": message})


# --- changes → events -------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Change(Generic[T]):
    """One entity's change: `old` None for a creation, `new` None for a deletion."""

    key: tuple[str, ...]
    old: T | None
    new: T | None


def coalesce(changes: Iterable[Change[T]]) -> list[Change[T]]:
    """Several changes of one entity in a batch become one: its first old image and its last new
    image (clients want the latest state; intermediate ones of the same batch are history).
    Order: by each entity's first appearance. A create then delete in one batch vanishes."""
    merged: dict[tuple[str, ...], Change[T]] = {}
    for change in changes:
        first = merged.get(change.key)
        merged[change.key] = change if first is None else Change(change.key, first.old, change.new)
    return [c for c in merged.values() if c.old is not None or c.new is not None]


#: View fields that change on every write (or say who wrote it) without being news themselves.
_NOISE = frozenset({"updated_at", "version", "synced_at", "last_change"})


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Top-level fields whose value differs between two views (bookkeeping fields ignored)."""
    return sorted(k for k in set(old) | set(new) if k not in _NOISE and old.get(k) != new.get(k))


@dataclass(frozen=True)
class DraftEvent:
    """An event before it is addressed: type, entity view, detail; `topics` it goes to."""

    type: str
    topics: tuple[str, ...]
    data: Any
    detail: Mapping[str, Any] | None = None
    #: What the entity is (`worker`, `lab`, `job`) and its id.
    subject: str = ""
    subject_id: str = ""
    #: Set once the event is numbered (`identify`): the WebSocket message and the bus entry of
    #: one event carry the same id.
    id: str = ""


@dataclass(frozen=True)
class WorkerEventRules:
    """How a worker change becomes events; `view` is the REST API's WorkerView mapping (JSON)."""

    view: Callable[[Any], dict[str, Any]]
    cause_of: Callable[[Any], dict[str, Any]] = field(default=lambda worker: {"kind": "unknown", "by": None})


def worker_events(change: Change[Any], rules: WorkerEventRules) -> list[DraftEvent]:
    """The events of one (coalesced) worker change, most specific first. Every event carries the
    new WorkerView (the old one for a deletion)."""
    old, new = change.old, change.new
    if new is None and old is None:
        return []
    latest = new if new is not None else old
    assert latest is not None  # both None returned above
    worker_id = latest.worker_id
    topics = (FLEET_TOPIC, worker_topic(worker_id))

    def draft(kind: str, data: dict[str, Any], detail: Mapping[str, Any] | None = None) -> DraftEvent:
        return DraftEvent(kind, topics, data, detail, subject="worker", subject_id=worker_id)

    if old is None:
        return [draft("worker.created", rules.view(new))]
    if new is None:
        return [draft("worker.deleted", rules.view(old))]
    old_view, new_view = rules.view(old), rules.view(new)
    fields = changed_fields(old_view, new_view)
    if not fields:
        return []
    events: list[DraftEvent] = []
    if old.status != new.status:
        cause = rules.cause_of(new)
        events.append(
            draft("worker.status_changed", new_view, {"old": str(old.status), "new": str(new.status), "cause": cause})
        )
    if new.pause_count > old.pause_count:
        cause = rules.cause_of(new)
        events.append(
            draft(
                "worker.paused",
                new_view,
                {
                    "reason": new.last_pause_reason,
                    "by": cause.get("by"),
                    # A policy's pause (idle or schedule) records itself as automatic.
                    "auto": bool(getattr(new, "last_pause_auto", None)) or cause.get("kind") == "idle_policy",
                },
            )
        )
    if new.resume_count > old.resume_count:
        cause = rules.cause_of(new)
        events.append(
            draft(
                "worker.resumed",
                new_view,
                {
                    "reason": getattr(new, "last_resume_reason", None) or "resumed",
                    "by": cause.get("by"),
                    "auto": cause.get("kind") != "user",
                    "was_auto_paused": getattr(new, "was_auto_paused", None),
                },
            )
        )
    cause = rules.cause_of(new)
    if cause.get("kind") == "saga" and cause.get("by"):
        # The saga's latest step wrote this change: a create can be watched step by step.
        state = "failed" if str(new.status) == "failed" else "completed"
        events.append(draft("worker.provisioning_step", new_view, {"step": cause.get("by"), "state": state}))
    licence_old = _licence_progress(old)
    licence_new = _licence_progress(new)
    if licence_new is not None and licence_new != licence_old:
        events.append(draft("licence.progress", new_view, licence_new))
    if not events:
        events.append(draft("worker.changed", new_view, {"changed": fields}))
    return events


def _licence_progress(worker: Any) -> dict[str, Any] | None:
    licence = getattr(worker, "licence", None)
    if licence is None or licence.operation_state is None:
        return None
    return {
        "operation": str(licence.operation),
        "state": licence.operation_state,
        "reason": licence.operation_reason,
    }


def lab_events(change: Change[Any], view: Callable[[Any], dict[str, Any]]) -> list[DraftEvent]:
    """lab.created / lab.changed / lab.deleted on `workers/<id>/labs`; a rewrite that changed
    nothing but the sync time is no event."""
    old, new = change.old, change.new
    lab = new or old
    if lab is None:
        return []
    topics = (labs_topic(lab.worker_id),)
    subject_id = f"{lab.worker_id}/{lab.lab_id}"
    if old is None:
        return [DraftEvent("lab.created", topics, view(new), subject="lab", subject_id=subject_id)]
    if new is None:
        return [DraftEvent("lab.deleted", topics, view(old), subject="lab", subject_id=subject_id)]
    fields = changed_fields(view(old), view(new))
    if not fields:
        return []
    return [DraftEvent("lab.changed", topics, view(new), {"changed": fields}, subject="lab", subject_id=subject_id)]


def job_events(change: Change[Any], entry: Callable[[Any], dict[str, Any]]) -> list[DraftEvent]:
    """job.finished on `jobs` when a job's heartbeat records a new finish."""
    old, new = change.old, change.new
    if new is None or new.last_finished_at is None:
        return []
    if old is not None and old.last_finished_at == new.last_finished_at:
        return []
    return [DraftEvent("job.finished", (JOBS_TOPIC,), entry(new), subject="job", subject_id=new.job)]


def identify(drafts: Sequence[DraftEvent], new_id: Callable[[], str]) -> list[DraftEvent]:
    """Give each draft without an id its id (drafts that have one keep it)."""
    return [draft if draft.id else replace(draft, id=new_id()) for draft in drafts]


def address(drafts: Sequence[DraftEvent], *, now: datetime, new_id: Callable[[], str]) -> dict[str, list[Event]]:
    """Events by topic, in draft order (one id per draft: the same event on two topics is one
    event seen twice)."""
    by_topic: dict[str, list[Event]] = {}
    for draft in drafts:
        event_id = draft.id or new_id()
        for topic in draft.topics:
            by_topic.setdefault(topic, []).append(Event(draft.type, topic, event_id, now, draft.data, draft.detail))
    return by_topic
