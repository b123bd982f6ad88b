"""One DynamoDB stream batch delivered (`realtime.deliver`: WebSocket subscribers and the bus),
with what it did as log fields and metrics for the broadcaster to record."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cmlcm.domain.events import DraftEvent
from cmlcm.domain.jobs import Metric
from cmlcm.ports import RealtimePorts
from cmlcm.services.domain_events import PublishReport
from cmlcm.services.realtime import BroadcastReport, deliver

#: Failures named in one log line at most (the counts say how many there were).
LOGGED_FAILURES = 20


@dataclass(frozen=True)
class StreamDelivery:
    """What one stream batch's delivery did."""

    records: int
    report: BroadcastReport
    published: PublishReport
    seconds: float

    def summary(self) -> dict[str, int | float]:
        """The batch's log line."""
        report, published = self.report, self.published
        return {
            "records": self.records,
            "events": report.events,
            "topics": report.topics,
            "messages": report.messages,
            "gone": len(report.gone),
            "failed": len(report.failed),
            "bus_entries": published.published,
            "bus_calls": published.calls,
            "bus_failed": len(published.failed),
            "seconds": self.seconds,
        }

    def failed_posts(self) -> dict[str, str]:
        return dict(list(self.report.failed.items())[:LOGGED_FAILURES])

    def failed_entries(self) -> dict[str, str]:
        """Bus entries given up after bounded retries (or not retryable): logged, the batch goes on."""
        return dict(list(self.published.failed.items())[:LOGGED_FAILURES])

    def metrics(self) -> list[Metric]:
        return [
            Metric("BroadcastMessages", self.report.messages),
            Metric("BroadcastGoneConnections", len(self.report.gone)),
            Metric("BroadcastPostFailures", len(self.report.failed)),
            Metric("EventBusEntries", self.published.published),
            Metric("EventBusFailedEntries", len(self.published.failed)),
        ]


def deliver_batch(
    ports: RealtimePorts,
    drafts: Sequence[DraftEvent],
    *,
    records: int,
    now: datetime,
    new_id: Callable[[], str],
    started: float,
) -> StreamDelivery:
    """Deliver the batch's events; `started` is the batch's `time.perf_counter()` at arrival."""
    report, published = deliver(ports, drafts, now=now, new_id=new_id)
    return StreamDelivery(records, report, published, round(time.perf_counter() - started, 3))
