"""Which instances a collection cycle describes (`needs_description`, pure): every reason to
describe beyond the status, and the turns that spread the rest over the fleet so that each worker
is described exactly once in any `every` consecutive cycles."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from cmlcm.domain.cml import facts_turn
from cmlcm.domain.collection import Cadence
from cmlcm.domain.ec2 import ElasticIps, InstanceStatus
from cmlcm.domain.observation import ELASTIC_IP_TURN_ROUNDS, describe_turn, instance_from_status, needs_description
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerError, WorkerMetrics, WorkerStatus

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DEFAULTS = Settings()
CADENCE = Cadence(every=DEFAULTS.cml_facts_every_cycles, interval_minutes=DEFAULTS.collect_interval_minutes)
INTERVAL = timedelta(minutes=CADENCE.interval_minutes)


def collected(worker_id: str = "w-0001", *, state: str = "running", **changes: object) -> Worker:
    """A worker collected before: its instance running, CML available, no fault."""
    worker = Worker(
        worker_id=worker_id,
        name=worker_id,
        region="us-east-1",
        instance_id="i-00000000000000001",
        instance_type="m5.2xlarge",
        ami_id="ami-0123",
        public_ip="203.0.113.7",
        private_ip="10.0.0.7",
        status=WorkerStatus.RUNNING,
        service_status=ServiceStatus.AVAILABLE,
        metrics=WorkerMetrics(collected_at=NOW - INTERVAL, ec2_state=state),
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
    )
    return worker.model_copy(update=changes)


def status(state: str = "running") -> InstanceStatus:
    return InstanceStatus("i-00000000000000001", state, "ok", "ok")


def off_turn(worker: Worker) -> datetime:
    """A cycle that is not the worker's describe turn."""
    for n in range(CADENCE.every):
        at = NOW + n * INTERVAL
        if not describe_turn(worker.worker_id, now=at, every=CADENCE.every, interval_minutes=CADENCE.interval_minutes):
            return at
    raise AssertionError("every cycle is the worker's turn")


def test_an_unchanged_worker_off_its_turn_is_not_described():
    worker = collected()
    assert needs_description(worker, status(), CADENCE, now=off_turn(worker)) is None


@pytest.mark.parametrize(
    ("worker", "seen", "cadence", "reason"),
    [
        (collected(), status(), Cadence(every=6, interval_minutes=5, full=True), "full"),
        (collected(), None, CADENCE, "missing"),
        (collected(metrics=None), status(), CADENCE, "never_collected"),
        (collected(state="stopped"), status("running"), CADENCE, "state_changed"),
        (collected(), status("stopping"), CADENCE, "state_changed"),
        (collected(metrics=WorkerMetrics(collected_at=NOW)), status(), CADENCE, "state_changed"),
        (collected(service_status=ServiceStatus.UNREACHABLE), status(), CADENCE, "unreachable"),
        (
            collected(last_error=WorkerError(source="ec2", kind="Throttling", message="slow down", at=NOW)),
            status(),
            CADENCE,
            "ec2_fault",
        ),
    ],
    ids=[
        "full",
        "missing",
        "never_collected",
        "stopped_to_running",
        "running_to_stopping",
        "no_state",
        "unreachable",
        "ec2_fault",
    ],
)
def test_each_reason_to_describe(worker: Worker, seen: InstanceStatus | None, cadence: Cadence, reason: str):
    # Given a cycle that is not the worker's turn, when its status is as given, then it is described for the reason
    assert needs_description(worker, seen, cadence, now=off_turn(collected())) == reason


def test_a_cml_fault_alone_is_no_reason_to_describe():
    # Given a worker whose controller answered garbage (CML still seen booting, say)
    worker = collected(
        service_status=ServiceStatus.BOOTING,
        last_error=WorkerError(source="cml", kind="bad_response", message="garbage", at=NOW),
    )
    assert needs_description(worker, status(), CADENCE, now=off_turn(worker)) is None


@pytest.mark.parametrize("every", [1, 2, 4, 6, 12])
def test_over_every_cycles_each_worker_is_described_exactly_once(every: int):
    # Given a fleet of unchanged workers and a cadence of `every` cycles
    fleet = [collected(f"w-{i:04d}") for i in range(600)]
    cadence = Cadence(every=every, interval_minutes=5)
    start = datetime(2026, 11, 22, 0, 3, tzinfo=UTC)  # mid-interval: cycles are numbered by `now`
    # When `every` consecutive cycles run (from any starting cycle)
    for offset in (0, 7):
        described: Counter[str] = Counter()
        per_cycle = []
        for n in range(offset, offset + every):
            at = start + n * timedelta(minutes=5)
            turn = [w.worker_id for w in fleet if needs_description(w, status(), cadence, now=at) == "turn"]
            described.update(turn)
            per_cycle.append(len(turn))
        # Then each worker was described exactly once, and each cycle described about its share
        assert set(described) == {w.worker_id for w in fleet} and set(described.values()) == {1}
        share = len(fleet) / every
        assert all(abs(count - share) <= 0.3 * share + 5 for count in per_cycle), per_cycle


def test_the_turn_falls_on_a_cycle_without_a_slow_cml_fact_at_the_default_cadence():
    # The describe turn and the slow facts' turns are spread by the same hash; at the default
    # cadence (6 cycles, 4 facts) a worker's describe comes on a cycle that reads no slow fact.
    for i in range(200):
        worker_id = f"w-{i:04d}"
        for n in range(CADENCE.every):
            at = NOW + n * INTERVAL
            if describe_turn(worker_id, now=at, every=CADENCE.every, interval_minutes=CADENCE.interval_minutes):
                assert not facts_turn(worker_id, now=at, every=CADENCE.every, interval_minutes=CADENCE.interval_minutes)


def test_an_undescribed_instance_is_its_status_with_the_records_addresses():
    worker = collected()
    info = instance_from_status(worker, status("stopping"))
    assert (info.instance_id, info.state) == ("i-00000000000000001", "stopping")
    assert (info.public_ip, info.private_ip, info.instance_type, info.image_id) == (
        "203.0.113.7",
        "10.0.0.7",
        "m5.2xlarge",
        "ami-0123",
    )


# --- Elastic IPs: read every cycle, they replace the turns -----------------------------------

INSTANCE = "i-00000000000000001"


@pytest.mark.parametrize(
    ("case", "pairs", "moved"),
    [
        ("no Elastic IP anywhere", [], False),
        ("the recorded address is the instance's Elastic IP", [("203.0.113.7", INSTANCE)], False),
        ("an Elastic IP now on the instance", [("198.51.100.1", INSTANCE)], True),
        ("the recorded Elastic IP now unassociated", [("203.0.113.7", None)], True),
        ("the recorded Elastic IP now on another instance", [("203.0.113.7", "i-0999")], True),
        ("other instances' Elastic IPs only", [("198.51.100.2", "i-0999"), ("198.51.100.3", None)], False),
    ],
)
def test_an_elastic_ip_moved_outside_the_product_is_described_on_any_cycle(case, pairs, moved):  # noqa: ANN001
    worker = collected()
    eips = ElasticIps.of(pairs)
    # On every cycle of a round, the Elastic IPs decide (unless it is the worker's rare safety turn)
    rare = CADENCE.every * ELASTIC_IP_TURN_ROUNDS
    for n in range(CADENCE.every):
        at = NOW + n * INTERVAL
        reason = needs_description(worker, status(), CADENCE, now=at, elastic_ips=eips)
        safety = describe_turn(worker.worker_id, now=at, every=rare, interval_minutes=CADENCE.interval_minutes)
        assert reason == ("elastic_ip" if moved else ("turn" if safety else None)), case


def test_with_the_elastic_ips_read_each_worker_is_still_described_once_in_12_rounds():
    # Given workers whose Elastic IPs did not move (a released one would leave no trace)
    eips = ElasticIps.of([])
    workers = [collected(f"w-{i:04d}") for i in range(50)]
    rare = CADENCE.every * ELASTIC_IP_TURN_ROUNDS
    # Over 12 rounds (72 cycles, 6 hours at the defaults) each is described exactly once, on its turn
    counts: Counter[str] = Counter()
    for n in range(rare):
        at = NOW + n * INTERVAL
        for worker in workers:
            if needs_description(worker, status(), CADENCE, now=at, elastic_ips=eips) == "turn":
                counts[worker.worker_id] += 1
    assert counts == {w.worker_id: 1 for w in workers}


def test_with_the_elastic_ips_read_the_other_reasons_still_come_first():
    eips = ElasticIps.of([])
    assert needs_description(collected(), status("stopped"), CADENCE, now=NOW, elastic_ips=eips) == "state_changed"
    assert needs_description(collected(), None, CADENCE, now=NOW, elastic_ips=eips) == "missing"
    unreachable = collected(service_status=ServiceStatus.UNREACHABLE)
    assert needs_description(unreachable, status(), CADENCE, now=NOW, elastic_ips=eips) == "unreachable"
    full = Cadence(every=CADENCE.every, interval_minutes=CADENCE.interval_minutes, full=True)
    assert needs_description(collected(), status(), full, now=NOW, elastic_ips=eips) == "full"
