"""Domain events on the custom EventBridge bus, on moto: real writes → moto's DynamoDB Streams →
the real broadcaster handler → the real `PutEvents` adapter → moto's EventBridge, whose rules
deliver to log-group targets (the local mode's bus, see local/cmlcm_local/event_bus.py).

Every event type the code emits is produced here from a real write; each delivered event must
validate against its shipped schema (docs/events/<type>.schema.json), and every schema must have
been seen delivered. The documented example rule (docs/events/rules/worker-failed.json) must
match the failed worker's event and nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from cmlcm import container
from cmlcm.adapters.connections_api import MemoryConnections
from cmlcm.adapters.dynamo import DynamoWorkerRepository
from cmlcm.adapters.event_bus import EventBridgeBus
from cmlcm.adapters.labs_repo import DynamoLabRepository
from cmlcm.adapters.operations import DynamoJobRepository
from cmlcm.adapters.subscriptions import MemoryConnectionStore
from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.bus import BusEntry, entry_of
from cmlcm.domain.events import EVENT_TYPES, DraftEvent
from cmlcm.domain.jobs import JobHeartbeat
from cmlcm.domain.labs import Lab
from cmlcm.domain.workers import ChangeCause, Licence, LicenceOperation, Worker, WorkerStatus
from cmlcm.handlers import event_schemas
from cmlcm.services import realtime
from cmlcm_local.event_bus import ALL_EVENTS_RULE, LocalEventBus, example_pattern
from cmlcm_local.streams import StreamPump, enable_streams
from tests.support.api import NOW

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "docs" / "events"


def _schema(event_type: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())


# --- the shipped schemas are the generated ones, one per type the code emits ---


def test_there_is_one_schema_file_per_event_type_and_each_is_current():
    files = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert files == set(EVENT_TYPES) == set(event_schemas.CATALOG)
    for event_type in EVENT_TYPES:
        assert (SCHEMAS / f"{event_type}.schema.json").read_text() == event_schemas.render(event_type), (
            f"{event_type}: run `python -m cmlcm.handlers.event_schemas docs/events`"
        )
        Draft202012Validator.check_schema(_schema(event_type))


def test_the_event_rules_name_no_type_outside_the_published_list():
    # Every type string in the rules module is a published one (a new type needs its schema).
    source = (REPO / "functions" / "cmlcm" / "domain" / "events.py").read_text()
    named = set(re.findall(r'"((?:worker|lab|job|licence)\.[a-z_]+)"', source))
    assert named == set(EVENT_TYPES)


def test_an_unpublished_type_is_refused_before_it_reaches_the_bus():
    with pytest.raises(ValueError, match="not a published event type"):
        entry_of(DraftEvent("worker.exploded", ("fleet",), {}), event_id="e", now=NOW)


# --- through moto: every type emitted, delivered, valid; the example rule ---


@pytest.fixture
def bus(aws: None) -> Iterator[LocalEventBus]:
    yield LocalEventBus(get_config().aws_region, "cmlcm-test-events").create()


def _worker(worker_id: str, **changes: Any) -> Worker:
    return Worker(
        worker_id=worker_id,
        name=f"lab-{worker_id}",
        region="us-east-1",
        instance_id=f"i-{worker_id[-4:]:0>17}",
        status=WorkerStatus.RUNNING,
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
    ).model_copy(update=changes)


def _stored(lab: Lab | None) -> Lab:
    assert lab is not None, "the lab row is not stored"
    return lab


def _at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def test_every_event_type_reaches_the_bus_valid_against_its_schema_and_the_example_rule_fires_once(
    bus: LocalEventBus,
):
    from cmlcm.handlers import broadcaster

    settings = get_config()
    sources = [settings.workers_table, settings.labs_table, settings.operations_table]
    enable_streams(sources, settings.aws_region)
    publisher = EventBridgeBus(bus.bus_name, settings.aws_region)
    poster, store = MemoryConnections(), MemoryConnectionStore()
    store.subscribe(realtime.connect(store, "c-fleet", user=None, role="viewer", now=NOW), ["fleet"], limit=100)
    container.use(current().with_ports(connections=store, poster=poster, bus=publisher))
    pump = StreamPump(
        broadcaster.handler, sources, operations_table=settings.operations_table, region=settings.aws_region
    )
    pump.start()
    pump.stop()  # driven by hand: one batch per step, so no step coalesces into another
    workers = DynamoWorkerRepository(settings.workers_table, settings.aws_region)
    labs = DynamoLabRepository(settings.labs_table, settings.aws_region)
    jobs = DynamoJobRepository(settings.operations_table, settings.aws_region)
    operator = ChangeCause(kind="user", by="operator@example.com")
    try:
        steps: list[Any] = [
            lambda: workers.add(_worker("w-0001")),  # worker.created
            lambda: workers.add(_worker("w-0002", status=WorkerStatus.PROVISIONING)),
            lambda: workers.save(workers.get("w-0001").touch(_at(1), tags={"team": "a"})),  # worker.changed
            lambda: workers.save(  # worker.status_changed + worker.paused
                workers.get("w-0001")
                .pause(now=_at(2), reason="idle 60 min")
                .model_copy(update={"last_change": ChangeCause(kind="idle_policy")})
            ),
            lambda: workers.save(workers.get("w-0001").observe_ec2_state("stopped", now=_at(3))),
            lambda: workers.save(  # worker.status_changed + worker.resumed
                workers.get("w-0001").resume(now=_at(4)).model_copy(update={"last_change": operator})
            ),
            lambda: workers.save(  # worker.status_changed (saga verdict) + worker.provisioning_step
                workers.get("w-0002")
                .fail(step="wait_cml_ready", kind="Timeout", message="CML not ready", now=_at(5))
                .model_copy(update={"last_change": ChangeCause(kind="saga", by="compensate")})
            ),
            lambda: workers.save(  # licence.progress
                workers.get("w-0001").touch(
                    _at(6),
                    licence=Licence(
                        operation=LicenceOperation.REGISTERING,
                        operation_state="pending",
                        operation_started_at=_at(6),
                        token_secret_ref="cmlcm/licence/w-0001",
                    ),
                    last_change=operator,
                )
            ),
            lambda: labs.write(
                [Lab(worker_id="w-0001", lab_id="l-1", title="demo", state="STOPPED", synced_at=_at(7))], []
            ),
            lambda: labs.write(
                [Lab(worker_id="w-0001", lab_id="l-1", title="demo", state="STARTED", synced_at=_at(8))], []
            ),
            lambda: labs.write([], [_stored(labs.get("w-0001", "l-1"))]),  # lab.deleted
            lambda: jobs.put(JobHeartbeat(job="collect_metrics", interval_seconds=300, last_started_at=_at(9))),
            lambda: jobs.put(  # job.finished
                JobHeartbeat(
                    job="collect_metrics",
                    interval_seconds=300,
                    last_started_at=_at(9),
                    last_finished_at=_at(10),
                    last_status="succeeded",
                    last_summary={"workers": 2},
                )
            ),
            lambda: workers.delete("w-0002"),  # worker.deleted
        ]
        for step in steps:
            step()
            pump.pump_once()
    finally:
        container.use(None)

    delivered = bus.events(ALL_EVENTS_RULE)
    assert {e["detail-type"] for e in delivered} == set(EVENT_TYPES), "every schema has an emitter"
    for event in delivered:
        errors = [e.message for e in Draft202012Validator(_schema(event["detail-type"])).iter_errors(event)]
        assert not errors, (event["detail-type"], errors[:3], event)
    # The same events, with the same ids, as the WebSocket subscriber of `fleet` got.
    socket_ids = {json.loads(m)["id"] for m in poster.sent["c-fleet"]}
    bus_ids = {e["detail"]["id"] for e in delivered}
    worker_bus_ids = {e["detail"]["id"] for e in delivered if e["detail-type"].split(".")[0] in ("worker", "licence")}
    assert worker_bus_ids == socket_ids and worker_bus_ids < bus_ids
    assert publisher.calls >= 1 and publisher.entries == len(delivered)
    # No secret: the licence's secret reference never leaves the domain.
    assert "cmlcm/licence/w-0001" not in json.dumps(delivered)

    (failed,) = bus.events("worker-failed")
    assert failed["detail"]["data"]["worker_id"] == "w-0002" and failed["detail"]["detail"]["new"] == "failed"
    assert failed["detail"]["id"] in bus_ids


def test_the_example_rule_is_the_documented_pattern():
    pattern = example_pattern("worker-failed")
    readme = (SCHEMAS / "README.md").read_text()
    # The README shows the same JSON the local mode installs (and the CDK snippet synthesizes,
    # tests/infra/test_infra_realtime.py).
    assert json.dumps(pattern) in readme


# --- the PutEvents adapter against moto: per-entry errors and whole-call faults ---


def _entry(event_id: str, **changes: Any) -> BusEntry:
    entry = entry_of(
        DraftEvent("worker.changed", ("fleet",), {"worker_id": "w-1"}, {"changed": ["tags"]}),
        event_id=event_id,
        now=NOW,
    )
    return BusEntry(**{**entry.__dict__, **changes})


def test_the_adapter_reports_each_refused_entry_and_accepts_the_others(bus: LocalEventBus):
    publisher = EventBridgeBus(bus.bus_name, get_config().aws_region)
    outcomes = publisher.put([_entry("ok-1"), _entry("bad", detail="not json"), _entry("ok-2")])
    assert outcomes[0] is None and outcomes[2] is None
    assert outcomes[1] is not None and outcomes[1].code == "MalformedDetail" and not outcomes[1].retryable
    assert sorted(e["detail"]["id"] for e in bus.events()) == ["ok-1", "ok-2"]


def test_a_fault_of_the_whole_call_is_every_entrys_error_not_an_exception(aws: None):
    publisher = EventBridgeBus("no-such-bus", get_config().aws_region)
    outcomes = publisher.put([_entry("a"), _entry("b")])
    assert [o.code if o else None for o in outcomes] == ["ResourceNotFoundException"] * 2


def test_publish_through_moto_packs_ten_entries_a_call(bus: LocalEventBus):
    from cmlcm.services.domain_events import publish

    publisher = EventBridgeBus(bus.bus_name, get_config().aws_region)
    report = publish(publisher, [_entry(f"e{i}") for i in range(23)], sleep=lambda s: None)
    assert (report.calls, report.published, report.failed) == (3, 23, {})
    assert publisher.calls == 3 and publisher.entries == 23
    assert sorted(e["detail"]["id"] for e in bus.events()) == sorted(f"e{i}" for i in range(23))
