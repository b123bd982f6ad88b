"""Domain events on the custom EventBridge bus: what an entry is, how big EventBridge counts it,
how entries are packed into `PutEvents` calls, and which failures are worth retrying.

Pure domain code (no AWS): the adapter sends what these functions build, the service retries what
they say is retryable. One event, one shape: an entry's `detail` is the WebSocket message without
its `topic` (`{"id", "type", "time", "data", "detail"?}`), its `detail-type` is the event's type,
its `source` is `cmlcm`. See docs/events/ for the schema of each type.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cmlcm.domain.events import EVENT_TYPES, DraftEvent

#: Every entry's `source` (rules match on it; an `aws.` prefix is reserved for AWS).
EVENT_SOURCE = "cmlcm"
#: PutEvents takes at most 10 entries a call...
MAX_ENTRIES_PER_CALL = 10
#: ...and at most 256 KB a call, each entry counted as `entry_size` says (so one entry too).
MAX_CALL_BYTES = 256 * 1024
#: Per-entry error codes worth another try: EventBridge's own transient faults and throttling.
#: Anything else (InvalidArgument, MalformedDetail, AccessDenied...) fails the same way again.
RETRYABLE_ERRORS = frozenset(
    {"InternalFailure", "InternalException", "ThrottlingException", "Throttling", "ServiceUnavailable"}
)


@dataclass(frozen=True)
class BusEntry:
    """One `PutEvents` entry (the bus name is the adapter's)."""

    event_id: str
    detail_type: str
    detail: str
    time: datetime
    source: str = EVENT_SOURCE
    resources: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """EventBridge's count: 14 bytes for Time, then the UTF-8 bytes of Source, DetailType,
        Detail and each Resource ("Calculating PutEvents event entry size")."""
        return (
            14
            + len(self.source.encode())
            + len(self.detail_type.encode())
            + len(self.detail.encode())
            + sum(len(r.encode()) for r in self.resources)
        )


@dataclass(frozen=True)
class EntryError:
    """Why EventBridge refused one entry (`ErrorCode`, `ErrorMessage`), or why it was not sent."""

    code: str
    message: str = ""

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_ERRORS


def entry_of(draft: DraftEvent, *, event_id: str, now: datetime) -> BusEntry:
    """The bus entry of one event: `detail` = the WebSocket message minus `topic` (same id)."""
    if draft.type not in EVENT_TYPES:
        raise ValueError(f"{draft.type!r} is not a published event type; add it to EVENT_TYPES and docs/events")
    body: dict[str, object] = {"id": event_id, "type": draft.type, "time": now.isoformat(), "data": draft.data}
    if draft.detail is not None:
        body["detail"] = dict(draft.detail)
    detail = json.dumps(body, separators=(",", ":"), default=str)
    return BusEntry(event_id=event_id, detail_type=draft.type, detail=detail, time=now)


def pack(entries: Sequence[BusEntry]) -> tuple[list[list[BusEntry]], list[BusEntry]]:
    """(calls, too_large): entries in order, packed into calls of at most MAX_ENTRIES_PER_CALL
    entries and MAX_CALL_BYTES; entries that alone exceed MAX_CALL_BYTES cannot be sent at all."""
    calls: list[list[BusEntry]] = []
    too_large: list[BusEntry] = []
    size = 0
    for entry in entries:
        if entry.size > MAX_CALL_BYTES:
            too_large.append(entry)
            continue
        if not calls or len(calls[-1]) == MAX_ENTRIES_PER_CALL or size + entry.size > MAX_CALL_BYTES:
            calls.append([])
            size = 0
        calls[-1].append(entry)
        size += entry.size
    return calls, too_large


def backoff_seconds(attempt: int, *, base: float = 0.1, cap: float = 2.0) -> float:
    """Wait before retry `attempt` (1, 2, ...): exponential, capped (0.1 s, 0.2 s, 0.4 s, ...)."""
    return float(min(cap, base * 2 ** (attempt - 1)))
