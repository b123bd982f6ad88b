"""Publishing domain events to the custom EventBridge bus, for automation ("EventBridge-triggered
automation": users write rules on the bus).

Entries are packed into `PutEvents` calls (10 entries, 256 KB), the calls run concurrently
(bounded), and the entries a call refused with a transient error (`FailedEntryCount` > 0,
per-entry `ErrorCode` such as ThrottlingException or InternalFailure) are sent again, alone, after
a backoff, a bounded number of times. What still fails is returned in the report (the caller logs
it and counts it in a metric), never raised: a stream batch is never retried, nor its WebSocket
fan-out repeated, because the bus refused one event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

from cmlcm.domain.bus import BusEntry, backoff_seconds, pack
from cmlcm.ports import EventBus

#: Tries per entry (the first one included) before it is given up and reported.
MAX_ATTEMPTS = 3
#: PutEvents calls in flight at once.
PUT_CONCURRENCY = 4


@dataclass
class PublishReport:
    """What publishing one batch of events did (logged and emitted as metrics)."""

    entries: int = 0
    calls: int = 0
    published: int = 0
    retried: int = 0
    #: event id → "<ErrorCode>: <message>" of the entries given up (after MAX_ATTEMPTS, at once
    #: when the error is not transient, or `EntryTooLarge` when over 256 KB).
    failed: dict[str, str] = field(default_factory=dict)


def publish(
    bus: EventBus,
    entries: Sequence[BusEntry],
    *,
    max_attempts: int = MAX_ATTEMPTS,
    concurrency: int = PUT_CONCURRENCY,
    sleep: Callable[[float], None] = time.sleep,
    pool: Executor | None = None,
) -> PublishReport:
    """Put `entries` on the bus; never raises for a refused entry. The calls run on `pool` (a
    long-lived one, see cmlcm/pools.py) or on threads of their own."""
    report = PublishReport(entries=len(entries))
    calls, too_large = pack(entries)
    for entry in too_large:
        report.failed[entry.event_id] = f"EntryTooLarge: {entry.size} bytes, EventBridge takes at most 256 KB"
    if not calls:
        return report

    def send(call: list[BusEntry]) -> tuple[int, int, int, dict[str, str]]:
        """(calls made, published, retried, failed) for one packed call and its retries."""
        pending, made, published, retried = call, 0, 0, 0
        failed: dict[str, str] = {}
        for attempt in range(1, max_attempts + 1):
            if attempt > 1:
                sleep(backoff_seconds(attempt - 1))
                retried += len(pending)
            outcomes = bus.put(pending)
            made += 1
            again: list[BusEntry] = []
            for entry, error in zip(pending, outcomes, strict=True):
                if error is None:
                    published += 1
                elif error.retryable and attempt < max_attempts:
                    again.append(entry)
                else:
                    failed[entry.event_id] = f"{error.code}: {error.message}"[:300]
            if not again:
                break
            pending = again
        return made, published, retried, failed

    if len(calls) == 1:
        results = [send(calls[0])]
    elif pool is not None:
        results = list(pool.map(send, calls))
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(calls)), thread_name_prefix="put-events") as pool:
            results = list(pool.map(send, calls))
    for made, published, retried, failed in results:
        report.calls += made
        report.published += published
        report.retried += retried
        report.failed.update(failed)
    return report
