"""Publishing to the custom bus without AWS: entries packed to PutEvents' limits, refused entries
retried with backoff a bounded number of times and then reported (never raised), the rest of the
batch unaffected; and the broadcaster handler keeping its stream batch whole when the bus refuses."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

import pytest

from cmlcm import container
from cmlcm.adapters.connections_api import MemoryConnections
from cmlcm.adapters.event_bus import MemoryEventBus
from cmlcm.adapters.subscriptions import MemoryConnectionStore
from cmlcm.domain.bus import MAX_CALL_BYTES, BusEntry, backoff_seconds, entry_of, pack
from cmlcm.domain.events import DraftEvent
from cmlcm.services import realtime
from cmlcm.services.domain_events import MAX_ATTEMPTS, publish
from cmlcm_local.events import FakeLambdaContext
from tests.support.streams import lab_insert_record
from tests.support.twins import twin_container

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _entry(event_id: str, size: int = 0) -> BusEntry:
    draft = DraftEvent("worker.changed", ("fleet",), {"worker_id": "w-1", "pad": "x" * size}, {"changed": ["tags"]})
    return entry_of(draft, event_id=event_id, now=T0)


def test_an_entry_is_the_websocket_message_without_its_topic():
    draft = DraftEvent(
        "worker.status_changed", ("fleet", "workers/w-1"), {"worker_id": "w-1"}, {"old": "a", "new": "b"}
    )
    entry = entry_of(draft, event_id="e-1", now=T0)
    assert (entry.source, entry.detail_type, entry.event_id) == ("cmlcm", "worker.status_changed", "e-1")
    assert json.loads(entry.detail) == {
        "id": "e-1",
        "type": "worker.status_changed",
        "time": T0.isoformat(),
        "data": {"worker_id": "w-1"},
        "detail": {"old": "a", "new": "b"},
    }
    # EventBridge's size rule: 14 for Time + Source + DetailType + Detail (UTF-8 bytes).
    assert entry.size == 14 + len("cmlcm") + len("worker.status_changed") + len(entry.detail.encode())


def test_packing_keeps_order_ten_a_call_and_256_kb_a_call():
    small = [_entry(f"s{i}") for i in range(23)]
    calls, too_large = pack(small)
    assert [len(c) for c in calls] == [10, 10, 3] and too_large == []
    assert [e.event_id for c in calls for e in c] == [e.event_id for e in small]
    # Three entries of ~100 KB: two fit a call (≤ 256 KB), the third starts the next.
    big = [_entry(f"b{i}", size=100_000) for i in range(3)]
    calls, _ = pack(big)
    assert [len(c) for c in calls] == [2, 1]
    assert all(sum(e.size for e in c) <= MAX_CALL_BYTES for c in calls)
    # An entry over 256 KB alone cannot be sent; the others still are.
    calls, too_large = pack([_entry("ok"), _entry("huge", size=MAX_CALL_BYTES)])
    assert [e.event_id for e in too_large] == ["huge"] and [e.event_id for c in calls for e in c] == ["ok"]


def test_backoff_grows_and_is_capped():
    assert [backoff_seconds(a) for a in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert backoff_seconds(20) == 2.0


def test_refused_entries_are_retried_alone_with_backoff_and_the_rest_is_published_once():
    bus = MemoryEventBus()
    bus.refuse = {"e3": ["ThrottlingException"], "e7": ["InternalFailure", "ThrottlingException"]}
    waits: list[float] = []
    report = publish(bus, [_entry(f"e{i}") for i in range(12)], sleep=waits.append)
    assert report.failed == {} and report.published == 12 and report.entries == 12
    assert sorted(e.event_id for e in bus.published) == sorted(f"e{i}" for i in range(12))
    assert len({e.event_id for e in bus.published}) == 12  # none twice
    # Calls of 10 and 2; e3 and e7 again (1 call), e7 a third time (1 call).
    assert sorted(bus.call_sizes) == [1, 2, 2, 10] and report.calls == 4 and report.retried == 3
    assert waits == [0.1, 0.2]


def test_an_entry_refused_every_time_is_given_up_after_the_bounded_attempts_and_reported():
    bus = MemoryEventBus()
    bus.refuse = {"e1": ["ThrottlingException"] * 10}
    report = publish(bus, [_entry("e0"), _entry("e1"), _entry("e2")], sleep=lambda s: None)
    assert report.failed == {"e1": "ThrottlingException: refused by the twin"}
    assert [e.event_id for e in bus.published] == ["e0", "e2"]
    assert report.calls == MAX_ATTEMPTS and len(bus.refuse["e1"]) == 10 - MAX_ATTEMPTS


def test_an_error_that_cannot_heal_is_not_retried():
    bus = MemoryEventBus()
    bus.refuse = {"e0": ["AccessDeniedException"], "e1": ["MalformedDetail"]}
    report = publish(bus, [_entry("e0"), _entry("e1"), _entry("e2")], sleep=lambda s: pytest.fail("no wait"))
    assert set(report.failed) == {"e0", "e1"} and report.calls == 1 and report.published == 1


def test_an_entry_over_256_kb_is_reported_not_sent():
    bus = MemoryEventBus()
    report = publish(bus, [_entry("huge", size=MAX_CALL_BYTES), _entry("ok")], sleep=lambda s: None)
    assert report.failed["huge"].startswith("EntryTooLarge") and [e.event_id for e in bus.published] == ["ok"]


# --- the handler: a refused bus entry never fails (nor repeats) the stream batch ---


def _lab_record() -> dict:
    return lab_insert_record(synced_at=T0)


def test_the_broadcaster_keeps_the_batch_whole_when_the_bus_refuses(monkeypatch, capsys):  # noqa: ANN001
    from cmlcm.handlers import broadcaster
    from cmlcm.services import domain_events

    monkeypatch.setattr(domain_events.time, "sleep", lambda seconds: None)
    store, poster, bus = MemoryConnectionStore(), MemoryConnections(), MemoryEventBus()
    store.subscribe(realtime.connect(store, "c", user=None, role="viewer", now=T0), ["workers/w-1/labs"], limit=100)

    class Refusing(MemoryEventBus):
        def put(self, entries):  # noqa: ANN001, ANN202
            for entry in entries:
                self.refuse.setdefault(entry.event_id, ["ThrottlingException"] * 10)
            return super().put(entries)

    bus = Refusing()
    container.use(twin_container(connections=store, poster=poster, bus=bus))
    # The logger's handler holds the stdout of whoever imported the module first: point it here.
    handler = broadcaster.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(sys.stdout)
    try:
        result = broadcaster.handler({"Records": [_lab_record()]}, FakeLambdaContext("broadcaster"))
    finally:
        container.use(None)
        if previous is not None:
            handler.setStream(previous)
    assert result == {"batchItemFailures": []}
    (message,) = [json.loads(m) for m in poster.sent["c"]]
    assert message["type"] == "lab.created"
    assert bus.published == [] and bus.calls == MAX_ATTEMPTS
    logged = capsys.readouterr().out
    assert "bus entries failed" in logged and message["id"] in logged and "ThrottlingException" in logged
    assert '"EventBusFailedEntries":[1.0]' in logged
