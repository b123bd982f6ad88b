"""The custom EventBridge bus (`PutEvents`), and its in-memory twin.

`EventBridgeBus.put` is one call of at most 10 entries; per entry it answers None (accepted) or
the `ErrorCode`/`ErrorMessage` EventBridge gave (`FailedEntryCount` > 0). A fault of the whole
call, once botocore's own retries are spent, becomes that error for every entry of the call: the
publishing service decides what to retry, and nothing here raises into the stream batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cmlcm.domain.bus import MAX_ENTRIES_PER_CALL, BusEntry, EntryError

#: Short deadlines: the broadcaster's batch waits for the bus; botocore retries a whole-call
#: throttle or 5xx once, the service retries refused entries on top.
BUS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5, max_pool_connections=10
)


class EventBridgeBus:
    """`EventBus` on one EventBridge bus (name or ARN)."""

    def __init__(self, bus_name: str, region: str) -> None:
        self.bus_name = bus_name
        self._region = region
        self._client: Any = None
        self._lock = threading.Lock()
        self.calls = 0
        self.entries = 0

    def _events(self) -> Any:  # a boto3 client (untyped); made once, shared by the put threads
        with self._lock:
            if self._client is None:
                self._client = boto3.session.Session().client("events", region_name=self._region, config=BUS_CONFIG)
            return self._client

    def put(self, entries: Sequence[BusEntry]) -> list[EntryError | None]:
        events = self._events()
        with self._lock:
            self.calls += 1
            self.entries += len(entries)
        request = [
            {
                "Time": entry.time,
                "Source": entry.source,
                "DetailType": entry.detail_type,
                "Detail": entry.detail,
                "Resources": list(entry.resources),
                "EventBusName": self.bus_name,
            }
            for entry in entries
        ]
        try:
            answer = events.put_events(Entries=request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            whole = EntryError(str(error.get("Code", "Unknown")), str(error.get("Message", ""))[:200])
            return [whole] * len(entries)
        except BotoCoreError as exc:  # connection or timeout after botocore's retries
            return [EntryError("InternalFailure", f"{type(exc).__name__}: {exc}"[:200])] * len(entries)
        results = answer.get("Entries") or []
        return [
            None
            if result.get("EventId")
            else EntryError(result.get("ErrorCode", "Unknown"), result.get("ErrorMessage", ""))
            for result in results
        ]


class MemoryEventBus:
    """In-memory twin: keeps every accepted entry; `refuse[event_id]` lists the error codes its
    next puts answer (one per put, then it is accepted); a call over `MAX_ENTRIES_PER_CALL` is refused
    whole, as the adapter reports EventBridge's ValidationException."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published: list[BusEntry] = []
        self.refuse: dict[str, list[str]] = {}
        self.calls = 0
        self.call_sizes: list[int] = []

    def put(self, entries: Sequence[BusEntry]) -> list[EntryError | None]:
        if len(entries) > MAX_ENTRIES_PER_CALL:  # the real call's ValidationException, given to every entry
            return [EntryError("ValidationException", f"at most {MAX_ENTRIES_PER_CALL} entries a call")] * len(entries)
        with self._lock:
            self.calls += 1
            self.call_sizes.append(len(entries))
            outcomes: list[EntryError | None] = []
            for entry in entries:
                codes = self.refuse.get(entry.event_id)
                if codes:
                    outcomes.append(EntryError(codes.pop(0), "refused by the twin"))
                    continue
                self.published.append(entry)
                outcomes.append(None)
            return outcomes
