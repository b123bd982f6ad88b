"""The collect service over in-memory twins and fakes: batching, change detection, fault isolation."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.operations import InMemorySettingsRepository
from cmlcm.domain.cml import CmlReading
from cmlcm.domain.errors import ExternalServiceError, TransientAwsError
from cmlcm.domain.jobs import MetricSample
from cmlcm.domain.observation import ELASTIC_IP_TURN_ROUNDS, Observation, describe_turn, observe
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerError, WorkerStatus
from cmlcm.ports import BulkResult, CollectPorts, ElasticIps, InstanceInfo, InstanceStatus, InstanceUsage
from cmlcm.services.collect import COLLECT_GC_THRESHOLD, collect
from tests.support.fakes import Ec2Unexpected, SamplesUnexpected

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class FakeEc2(Ec2Unexpected):
    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.describe_calls = 0
        self.status_calls = 0
        #: The ids of each describe call, in order.
        self.described: list[list[str]] = []
        self.fail_describe = False
        self.fail_statuses = False
        #: Private addresses EC2 reports (10.0.0.1 unless set): an Elastic IP moved, say.
        self.addresses: dict[str, str] = {}
        #: Ids the status answer leaves out (an instance too new for it) while describe knows them.
        self.hidden: set[str] = set()
        #: The region's Elastic IPs: (address, associated instance or None); None: DescribeAddresses fails.
        self.elastic: list[tuple[str, str | None]] | None = []

    def describe(self, instance_ids: Iterable[str]) -> dict[str, InstanceInfo]:
        ids = list(instance_ids)
        self.describe_calls += 1
        self.described.append(ids)
        if self.fail_describe:
            raise TransientAwsError("DescribeInstances: Throttling")
        associated = {instance: ip for ip, instance in self.elastic or [] if instance}
        return {
            i: InstanceInfo(
                i, self.states[i], private_ip=self.addresses.get(i, "10.0.0.1"), public_ip=associated.get(i)
            )
            for i in ids
            if i in self.states
        }

    def elastic_ips(self) -> ElasticIps:
        if self.elastic is None:
            raise TransientAwsError("DescribeAddresses: RequestLimitExceeded")
        return ElasticIps.of(self.elastic)

    def statuses(self, instance_ids: Iterable[str]) -> dict[str, InstanceStatus]:
        self.status_calls += 1
        if self.fail_statuses:
            raise TransientAwsError("DescribeInstanceStatus: RequestLimitExceeded")
        return {
            i: InstanceStatus(i, self.states[i], "ok", "ok")
            for i in instance_ids
            if i in self.states and i not in self.hidden
        }

    def last_described(self) -> set[str]:
        """The ids of the last cycle's describe (none if it made none)."""
        return set(self.described[-1]) if self.described else set()

    def start(self, instance_ids: Sequence[str]) -> BulkResult:
        return BulkResult(list(instance_ids), {})

    stop = terminate = start


class FakeCloudWatch:
    def __init__(self) -> None:
        self.calls = 0

    def instance_usage(self, ids, *, now):
        self.calls += 1
        return {i: InstanceUsage(cpu_percent=12.5, memory_percent=40.0) for i in ids}


class CmlDown(ExternalServiceError):
    code = "CmlError"
    kind = "timeout"


class FakeCml:
    @contextlib.asynccontextmanager
    async def session(self):  # noqa: ANN201 - a fake reader that is its own session
        yield self

    def __init__(self, broken: set[str] | None = None) -> None:
        self.broken = broken or set()
        #: Reads begun / answered (a read cancelled before its answer is begun, not answered).
        self.calls = 0
        self.answered = 0
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        #: Controllers that answer only after this many seconds (a stopped instance's address, say).
        self.slow: dict[str, float] = {}
        #: Set when the first read begins.
        self.began = threading.Event()

    async def read(self, worker: Worker, plan: object = None) -> CmlReading:
        self.calls += 1
        self.began.set()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.slow.get(worker.worker_id, 0.01))
            if worker.worker_id in self.broken:
                raise CmlDown(f"CML on {worker.worker_id} did not answer in time")
            self.answered += 1
            return CmlReading(version="2.9.0", ready=True, labs_total=2, labs_running=1, nodes_running=5)
        except asyncio.CancelledError:
            self.cancelled.append(worker.worker_id)
            raise
        finally:
            self.in_flight -= 1


class Samples(SamplesUnexpected):
    def __init__(self) -> None:
        self.written = 0

    def put_many(self, samples: Sequence[MetricSample]) -> int:
        self.written += len(samples)
        return len(samples)


def _fleet(n: int, *, state: str = "running") -> tuple[InMemoryWorkerRepository, FakeEc2]:
    repo = InMemoryWorkerRepository()
    states = {}
    for i in range(n):
        iid = f"i-{i:017x}"
        states[iid] = state
        repo.add(
            Worker(
                worker_id=f"w-{i:04d}",
                name=f"cml-{i}",
                region="us-east-1",
                instance_id=iid,
                status=WorkerStatus.RUNNING,
                created_at=NOW,
                updated_at=NOW,
                status_changed_at=NOW,
            )
        )
    return repo, FakeEc2(states)


def _instance_id(worker: Worker) -> str:
    assert worker.instance_id is not None, f"{worker.worker_id} has no instance"
    return worker.instance_id


def _ports(repo, ec2, cml, samples=None, cw=None, concurrency=50) -> CollectPorts:
    return CollectPorts(
        workers=repo,
        samples=samples or Samples(),
        ec2_for=lambda r: ec2,
        cloudwatch_for=lambda r: cw or FakeCloudWatch(),
        cml=cml,
        settings=InMemorySettingsRepository(),
        cml_concurrency=concurrency,
    )


#: These tests are about the collection itself: no policies after it (test_idle and
#: test_policy_service cover those).
_collect = partial(collect, policies=False)


def test_one_describe_per_batch_and_bounded_cml_concurrency():
    repo, ec2 = _fleet(300)
    cml = FakeCml()
    result = asyncio.run(_collect(_ports(repo, ec2, cml, concurrency=20), [f"w-{i:04d}" for i in range(300)], now=NOW))
    assert (ec2.describe_calls, ec2.status_calls) == (1, 1)
    assert cml.calls == 300 and cml.max_in_flight == 20
    assert result.workers == 300 and result.changed == 300 and result.failed == 0
    collected = repo.get("w-0001")
    assert collected.metrics is not None and collected.metrics.labs_running == 1
    assert collected.service_status == ServiceStatus.AVAILABLE


def test_the_cml_concurrency_bound_holds_across_regions():
    # Given a batch whose workers are in two regions (each region is read at the same time)
    repo, ec2 = _fleet(120)
    for i in range(0, 120, 2):
        worker = repo.get(f"w-{i:04d}")
        repo.save(worker.model_copy(update={"region": "us-west-2"}))
    cml = FakeCml()
    # When it is collected with a bound of 20 controllers at once
    result = asyncio.run(_collect(_ports(repo, ec2, cml, concurrency=20), [f"w-{i:04d}" for i in range(120)], now=NOW))
    # Then never more than 20 in flight in all, not 20 per region
    assert result.workers == 120 and cml.calls == 120
    assert cml.max_in_flight == 20


def test_second_cycle_with_nothing_changed_writes_no_worker():
    repo, ec2 = _fleet(50)
    ports = _ports(repo, ec2, FakeCml())
    ids = [f"w-{i:04d}" for i in range(50)]
    asyncio.run(_collect(ports, ids, now=NOW))
    writes_before = repo.writes
    result = asyncio.run(_collect(ports, ids, now=NOW + timedelta(minutes=5)))
    assert result.changed == 0 and result.written == 0
    assert repo.writes == writes_before
    assert result.samples == 50  # the time series still gets its point


def test_faulty_controllers_are_recorded_only_on_their_workers():
    repo, ec2 = _fleet(20)
    broken = {f"w-{i:04d}" for i in range(0, 20, 10)}
    result = asyncio.run(_collect(_ports(repo, ec2, FakeCml(broken)), [f"w-{i:04d}" for i in range(20)], now=NOW))
    assert result.failed == 2 and result.errors == {"timeout": 2}
    for i in range(20):
        worker = repo.get(f"w-{i:04d}")
        if worker.worker_id in broken:
            assert worker.last_error is not None and worker.last_error.kind == "timeout"
            assert worker.service_status == ServiceStatus.UNREACHABLE
        else:
            assert worker.last_error is None and worker.metrics is not None and worker.metrics.cml_version == "2.9.0"


def test_ec2_failure_is_recorded_on_each_worker_of_the_region():
    repo, ec2 = _fleet(3)
    ec2.fail_describe = True
    result = asyncio.run(_collect(_ports(repo, ec2, FakeCml()), ["w-0000", "w-0001", "w-0002"], now=NOW))
    assert result.failed == 3
    recorded = repo.get("w-0000").last_error
    assert recorded is not None and recorded.source == "ec2"


def test_stopped_instances_are_not_probed_and_status_follows_ec2():
    repo, ec2 = _fleet(4, state="stopped")
    cml = FakeCml()
    asyncio.run(_collect(_ports(repo, ec2, cml), [f"w-{i:04d}" for i in range(4)], now=NOW))
    assert cml.calls == 0
    assert repo.get("w-0000").status == WorkerStatus.STOPPED


def test_observe_is_pure_and_returns_the_same_worker_when_nothing_changed():
    repo, _ = _fleet(1)
    worker = repo.get("w-0000")
    observation = Observation(
        instance=InstanceInfo(_instance_id(worker), "running"), reading=CmlReading(version="2.9.0", ready=False)
    )
    once = observe(worker, observation, now=NOW)
    assert once.service_status == ServiceStatus.BOOTING and once.updated_at == NOW
    again = observe(once, observation, now=NOW + timedelta(minutes=5))
    assert again is once


def test_a_clean_reading_keeps_a_compensated_workers_fault_and_clears_its_own():
    # Given a worker the saga compensated (FAILED, the saga's fault in last_error)
    repo, _ = _fleet(1)
    failed = repo.get("w-0000").fail(step="wait_cml_ready", kind="Timeout", message="CML never came up", now=NOW)
    clean = Observation(
        instance=InstanceInfo(_instance_id(failed), "running"), reading=CmlReading(version="2.9.0", ready=True)
    )
    # When the next collection reads it cleanly, then the saga's fault is still what the record says
    after = observe(failed, clean, now=NOW + timedelta(minutes=5))
    assert after.last_error == failed.last_error and after.last_error is not None
    assert after.last_error.source == "provisioning"
    # But a fault collection recorded itself is cleared by a clean reading
    cml_fault = WorkerError(source="cml", kind="unreachable", message="no answer", at=NOW)
    running = repo.get("w-0000").record_error(cml_fault)
    assert observe(running, clean, now=NOW + timedelta(minutes=5)).last_error is None


def test_missing_instance_is_an_error_not_a_status_change():
    repo, ec2 = _fleet(1)
    ec2.states.clear()
    asyncio.run(_collect(_ports(repo, ec2, FakeCml()), ["w-0000"], now=NOW))
    worker = repo.get("w-0000")
    assert worker.status == WorkerStatus.RUNNING
    assert worker.last_error is not None and worker.last_error.kind == "InstanceNotFound"


@pytest.mark.parametrize("unknown", [["w-nope"], []])
def test_unknown_ids_are_ignored(unknown):
    repo, ec2 = _fleet(1)
    result = asyncio.run(_collect(_ports(repo, ec2, FakeCml()), unknown, now=NOW))
    assert result.workers == 0


def test_each_step_reports_its_wall_time():
    # Given a fleet whose controllers answer slowly
    repo, ec2 = _fleet(10)
    cml = FakeCml()
    real_read = cml.read

    async def slow_read(worker, plan=None):  # noqa: ANN001, ANN202
        await asyncio.sleep(0.05)
        return await real_read(worker)

    cml.read = slow_read  # type: ignore[method-assign]
    result = asyncio.run(_collect(_ports(repo, ec2, cml), [f"w-{i:04d}" for i in range(10)], now=NOW))
    # Then every step is timed, and the slow one shows where the time went
    assert {"records", "ec2_describe", "ec2_status", "cml", "write"} <= set(result.phases_ms)
    assert result.phases_ms["cml"] >= 50 and result.phases_ms["cml"] <= result.duration_ms
    assert "phases_ms" not in result.as_dict()  # the Map's summary sums counters only


def test_the_batch_reports_its_workers_by_status_and_the_paused_ones():
    # Given four workers whose instances are stopped, one of them paused (and not resumed since)
    repo, ec2 = _fleet(4, state="stopped")
    paused = repo.get("w-0001")
    repo.save(paused.model_copy(update={"last_paused_at": NOW - timedelta(hours=1), "last_pause_reason": "idle"}))
    resumed = repo.get("w-0002")
    repo.save(
        resumed.model_copy(
            update={"last_paused_at": NOW - timedelta(hours=2), "last_resumed_at": NOW - timedelta(hours=1)}
        )
    )
    # When the batch is collected
    result = asyncio.run(_collect(_ports(repo, ec2, FakeCml()), [f"w-{i:04d}" for i in range(4)], now=NOW))
    # Then the fleet counts are by status after the cycle, and only the still-paused one is paused
    assert result.fleet == {"stopped": 4, "paused": 1}


class ThresholdSpyCml(FakeCml):
    """Records the young-generation GC threshold each read sees."""

    def __init__(self) -> None:
        super().__init__()
        self.thresholds: list[int] = []

    async def read(self, worker: Worker, plan: object = None) -> CmlReading:
        self.thresholds.append(gc.get_threshold()[0])
        return await super().read(worker, plan)


def test_collections_run_with_fewer_young_gc_passes_and_restore_the_thresholds_after_the_last():
    # Given a process with its own GC thresholds, and two batches collected at once on one loop
    before = gc.get_threshold()
    gc.set_threshold(900, 11, 12)
    try:
        repo, ec2 = _fleet(4)
        cml = ThresholdSpyCml()
        ports = _ports(repo, ec2, cml)
        ids = [w.worker_id for w in repo.iter_active()]

        async def both() -> None:
            await asyncio.gather(_collect(ports, ids[:2], now=NOW), _collect(ports, ids[2:], now=NOW))

        # When they run
        asyncio.run(both())
        # Then every read ran under the relaxed threshold, and the process's own are back after both
        assert cml.thresholds == [COLLECT_GC_THRESHOLD] * 4
        assert gc.get_threshold() == (900, 11, 12)
    finally:
        gc.set_threshold(*before)


# --- statuses every cycle, descriptions on change or turn ------------------------------------

#: The default cadence's round (the settings' `cml_facts_every_cycles`): each worker is described
#: once in it when nothing changes.
EVERY = InMemorySettingsRepository().get().cml_facts_every_cycles
CYCLE = timedelta(minutes=InMemorySettingsRepository().get().collect_interval_minutes)


def _collected(n: int, **fleet: str) -> tuple[InMemoryWorkerRepository, FakeEc2, FakeCml, CollectPorts, list[str]]:
    """A fleet after its first cycle (every instance described then: never collected)."""
    repo, ec2 = _fleet(n, **fleet)
    cml = FakeCml()
    ports = _ports(repo, ec2, cml)
    ids = [f"w-{i:04d}" for i in range(n)]
    first = asyncio.run(_collect(ports, ids, now=NOW))
    assert ec2.last_described() == set(ec2.states) and first.described == {"never_collected": n}
    return repo, ec2, cml, ports, ids


def _turns(ids: list[str], at: datetime) -> set[str]:
    """The instance ids whose describe turn `at` is (`describe_turn`, as the collector uses it)."""
    return {
        f"i-{int(worker_id[2:]):017x}"
        for worker_id in ids
        if describe_turn(worker_id, now=at, every=EVERY, interval_minutes=CYCLE.seconds // 60)
    }


def _off_turn(worker_id: str, start: datetime) -> datetime:
    for n in range(1, EVERY + 1):
        at = start + n * CYCLE
        if not describe_turn(worker_id, now=at, every=EVERY, interval_minutes=CYCLE.seconds // 60):
            return at
    raise AssertionError("every cycle is its turn")


def _rare_turns(ids: list[str], at: datetime) -> set[str]:
    """The instance ids whose safety turn `at` is, with the Elastic IPs read."""
    every = EVERY * ELASTIC_IP_TURN_ROUNDS
    return {
        f"i-{int(worker_id[2:]):017x}"
        for worker_id in ids
        if describe_turn(worker_id, now=at, every=every, interval_minutes=CYCLE.seconds // 60)
    }


def test_an_unchanged_cycle_with_the_elastic_ips_read_describes_only_the_rare_safety_turns():
    # Given 60 workers collected once, none with an Elastic IP moved
    repo, ec2, cml, ports, ids = _collected(60)
    # When a round of unchanged cycles runs, then each reads every status and describes only the
    # workers whose rare turn it is (once in 12 rounds: about one worker of 60 a cycle)
    for n in range(1, EVERY + 1):
        at = NOW + n * CYCLE
        ec2.described.clear()
        result = asyncio.run(_collect(ports, ids, now=at))
        rare = _rare_turns(ids, at)
        assert ec2.last_described() == rare and len(rare) < 5
        assert result.described == ({"turn": len(rare)} if rare else {})
        assert result.changed == 0 and result.failed == 0
    assert ec2.status_calls == 1 + EVERY and cml.calls == 60 * (1 + EVERY)


def test_an_elastic_ip_moved_outside_the_product_shows_on_the_next_cycle():
    # Given a collected worker, then an Elastic IP associated with its instance outside the product
    repo, ec2, _, ports, ids = _collected(2)
    instance_id = _instance_id(repo.get("w-0001"))
    ec2.elastic = [("3.3.3.3", instance_id), ("4.4.4.4", None)]
    # When the next cycle runs, then that instance alone is described, and the address recorded
    result = asyncio.run(_collect(ports, ids, now=NOW + CYCLE))
    assert ec2.last_described() - _rare_turns(ids, NOW + CYCLE) == {instance_id}
    assert result.described.get("elastic_ip") == 1
    assert repo.get("w-0001").public_ip == "3.3.3.3" and repo.get("w-0000").public_ip is None
    # And once recorded, it is not described again (but on a rare safety turn)
    ec2.described.clear()
    result = asyncio.run(_collect(ports, ids, now=NOW + 2 * CYCLE))
    assert ec2.last_described() == _rare_turns(ids, NOW + 2 * CYCLE) and "elastic_ip" not in result.described
    # And when the Elastic IP leaves it (still allocated, now unassociated), it is described again
    ec2.elastic = [("3.3.3.3", None)]
    result = asyncio.run(_collect(ports, ids, now=NOW + 3 * CYCLE))
    assert ec2.last_described() - _rare_turns(ids, NOW + 3 * CYCLE) == {instance_id}
    assert result.described.get("elastic_ip") == 1
    assert repo.get("w-0001").public_ip is None


def test_without_the_elastic_ips_an_unchanged_cycle_describes_the_turns_share_and_each_once_a_round():
    # Given 60 workers collected once, and DescribeAddresses failing from now on
    repo, ec2, cml, ports, ids = _collected(60)
    ec2.elastic = None
    # When a round of unchanged cycles runs
    described: list[str] = []
    for n in range(1, EVERY + 1):
        at = NOW + n * CYCLE
        ec2.described.clear()
        result = asyncio.run(_collect(ports, ids, now=at))
        # Then each cycle reads every status but describes only the workers whose turn it is
        assert ec2.last_described() == _turns(ids, at) and len(ec2.last_described()) < 60
        turns = {"turn": len(_turns(ids, at))} if _turns(ids, at) else {}
        assert result.described == {**turns, "elastic_ips_unread": 1}
        assert result.changed == 0 and result.failed == 0
        described += ec2.last_described()
    # And over the round every worker was described exactly once, every one read by CML each cycle
    assert sorted(described) == sorted(ec2.states)
    assert ec2.status_calls == 1 + EVERY and cml.calls == 60 * (1 + EVERY)


def test_a_moved_state_a_missing_instance_and_an_unreachable_worker_are_described():
    # Given three workers collected once, one of them with a controller that does not answer
    repo, ec2, cml, ports, ids = _collected(3)
    cml.broken = {"w-0002"}
    asyncio.run(_collect(ports, ids, now=_off_turn("w-0002", NOW) - CYCLE))
    cml.broken = set()
    assert repo.get("w-0002").service_status == ServiceStatus.UNREACHABLE
    # When one instance was stopped and another is gone from EC2, on a cycle that is nobody's turn
    moved, gone, unreachable = (_instance_id(repo.get(w)) for w in ids)
    ec2.states[moved] = "stopped"
    del ec2.states[gone]
    at = next(t for t in (NOW + n * CYCLE for n in range(2, 40)) if not _turns(ids, t))
    result = asyncio.run(_collect(ports, ids, now=at))
    # Then exactly those three are described, each for its reason
    assert ec2.last_described() == {moved, gone, unreachable}
    assert result.described == {"state_changed": 1, "missing": 1, "unreachable": 1}
    assert repo.get("w-0000").status == WorkerStatus.STOPPED
    gone_error = repo.get("w-0001").last_error
    assert gone_error is not None and gone_error.kind == "InstanceNotFound"
    assert repo.get("w-0002").service_status == ServiceStatus.AVAILABLE


def test_without_the_elastic_ips_an_address_changed_outside_the_product_shows_on_the_workers_turn():
    # Given a collected worker whose address moves with no state change, and DescribeAddresses failing
    repo, ec2, _, ports, ids = _collected(1)
    ec2.elastic = None
    instance_id = _instance_id(repo.get("w-0000"))
    ec2.addresses[instance_id] = "10.9.9.9"
    # When cycles run until its turn
    for n in range(1, EVERY + 1):
        at = NOW + n * CYCLE
        asyncio.run(_collect(ports, ids, now=at))
        turn = bool(_turns(ids, at))
        # Then the record keeps the old address until that turn, and has the new one from it on
        assert repo.get("w-0000").private_ip == ("10.9.9.9" if turn else "10.0.0.1")
        if turn:
            return
    raise AssertionError(f"no describe turn in {EVERY} cycles")


def test_when_statuses_fail_every_instance_is_described_first_as_before():
    # Given a collected fleet, then DescribeInstanceStatus failing, one instance stopped meanwhile
    repo, ec2, cml, ports, ids = _collected(4)
    ec2.fail_statuses = True
    ec2.states[_instance_id(repo.get("w-0003"))] = "stopped"
    answered = cml.answered
    result = asyncio.run(_collect(ports, ids, now=NOW + CYCLE))
    # Then every instance is described, states follow the description, the running ones are read
    # (the stopped one's read, begun on its record, is cancelled), and the statuses' fault is
    # recorded on each worker
    assert ec2.last_described() == set(ec2.states) and result.described == {"statuses_failed": 4}
    assert cml.answered - answered == 3 and repo.get("w-0003").status == WorkerStatus.STOPPED
    assert result.failed == 4 and result.errors == {"TransientAwsError": 4}
    recorded = repo.get("w-0000").last_error
    assert recorded is not None and recorded.source == "ec2" and "DescribeInstanceStatus" in recorded.message


def test_when_statuses_and_describe_both_fail_nothing_is_known_and_each_worker_has_the_fault():
    repo, ec2, cml, ports, ids = _collected(2)
    ec2.fail_statuses = ec2.fail_describe = True
    answered = cml.answered
    result = asyncio.run(_collect(ports, ids, now=NOW + CYCLE))
    # (the reads begun on the records are cancelled: nothing is known of the instances)
    assert result.failed == 2 and cml.answered == answered
    worker = repo.get("w-0000")
    assert worker.last_error is not None and "DescribeInstances" in worker.last_error.message
    assert worker.metrics is not None and worker.metrics.ec2_state is None


def test_a_failed_describe_keeps_the_state_from_the_statuses_and_records_the_fault():
    # Given a collected fleet in which one instance was stopped, and DescribeInstances failing
    repo, ec2, _, ports, ids = _collected(3)
    stopped = _instance_id(repo.get("w-0001"))
    ec2.states[stopped] = "stopped"
    ec2.fail_describe = True
    at = next(t for t in (NOW + n * CYCLE for n in range(1, 40)) if not _turns(ids, t))
    result = asyncio.run(_collect(ports, ids, now=at))
    # Then the stopped one was asked for, and keeps the state the statuses gave with its recorded
    # address, with the describe fault recorded on it alone
    assert ec2.last_described() == {stopped}
    worker = repo.get("w-0001")
    assert worker.status == WorkerStatus.STOPPED and worker.metrics is not None
    assert worker.metrics.ec2_state == "stopped" and worker.private_ip == "10.0.0.1"
    assert worker.last_error is not None and worker.last_error.source == "ec2"
    assert "DescribeInstances" in worker.last_error.message
    assert result.failed == 1 and repo.get("w-0000").last_error is None
    # And the next cycle describes it again (its last EC2 read failed)
    ec2.fail_describe = False
    later = next(t for t in (at + n * CYCLE for n in range(1, 40)) if not _turns(ids, t))
    asyncio.run(_collect(ports, ids, now=later))
    assert ec2.last_described() == {stopped} and repo.get("w-0001").last_error is None


def test_an_on_demand_refresh_describes_every_instance():
    repo, ec2, _, ports, ids = _collected(5)
    result = asyncio.run(collect(ports, ids, now=NOW + CYCLE, full=True, policies=False))
    assert ec2.last_described() == set(ec2.states) and result.described == {"full": 5}


def test_an_instance_the_statuses_leave_out_but_describe_finds_running_is_still_read():
    # Given a collected worker whose instance the status answer leaves out this cycle
    repo, ec2, cml, ports, ids = _collected(2)
    hidden = _instance_id(repo.get("w-0001"))
    ec2.hidden = {hidden}
    calls = cml.calls
    # When a cycle runs
    result = asyncio.run(_collect(ports, ids, now=NOW + CYCLE))
    # Then describe found it running, its controller's read (begun on its record) went on, and
    # nothing is amiss
    assert hidden in ec2.last_described() and cml.calls - calls == 2 and not cml.cancelled
    assert "cml_late" in result.phases_ms and result.failed == 0
    worker = repo.get("w-0001")
    assert worker.service_status == ServiceStatus.AVAILABLE and worker.last_error is None


def test_reads_of_workers_recorded_running_begin_before_the_statuses_are_in():
    # Given a collected fleet, and statuses that answer only once a controller read has begun
    repo, ec2, cml, ports, ids = _collected(3)
    cml.began.clear()
    seen: list[bool] = []
    answer = ec2.statuses

    def statuses_after_a_read(instance_ids: Iterable[str]) -> dict[str, InstanceStatus]:
        seen.append(cml.began.wait(timeout=5))
        return answer(instance_ids)

    ec2.statuses = statuses_after_a_read  # type: ignore[method-assign]
    # When a cycle runs, then the reads had begun while the statuses were asked, and all answered
    calls, answered = cml.calls, cml.answered
    result = asyncio.run(_collect(ports, ids, now=NOW + CYCLE))
    assert seen == [True] and cml.calls - calls == 3 and cml.answered - answered == 3
    assert result.failed == 0 and not cml.cancelled


def test_a_read_begun_on_the_record_of_a_worker_now_stopped_is_cancelled_not_waited_for():
    # Given a collected fleet in which one instance was stopped outside the product, whose old
    # address would hold a read for 30 s
    repo, ec2, cml, ports, ids = _collected(3)
    stopped = _instance_id(repo.get("w-0002"))
    ec2.states[stopped] = "stopped"
    cml.slow["w-0002"] = 30
    # When a cycle runs
    started = time.perf_counter()
    result = asyncio.run(_collect(ports, ids, now=NOW + CYCLE))
    # Then its read was cancelled once the statuses showed it stopped, the cycle did not wait for
    # it, and the worker is stopped with no CML fault recorded
    assert cml.cancelled == ["w-0002"] and time.perf_counter() - started < 10
    worker = repo.get("w-0002")
    assert worker.status == WorkerStatus.STOPPED and worker.last_error is None and result.failed == 0
    assert repo.get("w-0000").service_status == ServiceStatus.AVAILABLE


def test_a_worker_newly_running_is_read_once_the_statuses_show_it():
    # Given a collected fleet with one instance recorded stopped, then started outside the product
    repo, ec2, cml, ports, ids = _collected(3)
    instance = _instance_id(repo.get("w-0001"))
    ec2.states[instance] = "stopped"
    asyncio.run(_collect(ports, ids, now=NOW + CYCLE))
    assert repo.get("w-0001").status == WorkerStatus.STOPPED and cml.cancelled == ["w-0001"]
    ec2.states[instance] = "running"
    calls = cml.calls
    cml.cancelled.clear()
    # When a cycle runs, then it is read too (not on its record, which said stopped)
    result = asyncio.run(_collect(ports, ids, now=NOW + 2 * CYCLE))
    assert cml.calls - calls == 3 and result.failed == 0 and not cml.cancelled
    assert repo.get("w-0001").service_status == ServiceStatus.AVAILABLE
