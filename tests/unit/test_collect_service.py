"""The collect service over in-memory twins and fakes: batching, change detection, fault isolation."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.operations import InMemorySettingsRepository
from cmlcm.domain.cml import CmlReading
from cmlcm.domain.errors import ExternalServiceError, TransientAwsError
from cmlcm.domain.jobs import MetricSample
from cmlcm.domain.observation import Observation, observe
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerError, WorkerStatus
from cmlcm.ports import BulkResult, CollectPorts, InstanceInfo, InstanceUsage
from cmlcm.services.collect import COLLECT_GC_THRESHOLD, collect
from tests.support.fakes import Ec2Unexpected, SamplesUnexpected

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class FakeEc2(Ec2Unexpected):
    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.describe_calls = 0
        self.status_calls = 0
        self.fail_describe = False

    def describe(self, instance_ids: Iterable[str]) -> dict[str, InstanceInfo]:
        self.describe_calls += 1
        if self.fail_describe:
            raise TransientAwsError("DescribeInstances: Throttling")
        return {i: InstanceInfo(i, self.states[i], private_ip="10.0.0.1") for i in instance_ids if i in self.states}

    def status_checks(self, instance_ids: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        self.status_calls += 1
        return {i: ("ok", "ok") for i in instance_ids if i in self.states}

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
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def read(self, worker: Worker, plan: object = None) -> CmlReading:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if worker.worker_id in self.broken:
                raise CmlDown(f"CML on {worker.worker_id} did not answer in time")
            return CmlReading(version="2.9.0", ready=True, labs_total=2, labs_running=1, nodes_running=5)
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
