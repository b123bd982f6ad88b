"""Idle detection: the pure policy, and the collector pausing idle workers in one StopInstances."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from test_collect_service import FakeCloudWatch, FakeEc2, Samples

from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.operations import InMemorySettingsRepository
from cmlcm.domain.cml import CmlReading
from cmlcm.domain.idle import decide_idle
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerMetrics, WorkerStatus
from cmlcm.ports import BulkResult, CollectPorts
from cmlcm.services.collect import collect

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(hours=3)


def _worker(
    i: int,
    *,
    nodes: int = 0,
    activity: datetime | None = None,
    enabled: bool = True,
    status: WorkerStatus = WorkerStatus.RUNNING,
    changed: datetime = LONG_AGO,
) -> Worker:
    return Worker(
        worker_id=f"w-{i}",
        name=f"w{i}",
        region="us-east-1",
        instance_id=f"i-{i:017x}",
        status=status,
        service_status=ServiceStatus.AVAILABLE,
        idle_detection_enabled=enabled,
        metrics=WorkerMetrics(collected_at=NOW, nodes_running=nodes, last_activity_at=activity),
        created_at=LONG_AGO,
        updated_at=LONG_AGO,
        status_changed_at=changed,
    )


@pytest.mark.parametrize(
    ("worker", "idle"),
    [
        (_worker(1), True),
        (_worker(2, nodes=3), False),  # running nodes are use
        (_worker(3, activity=NOW - timedelta(minutes=10)), False),  # someone was here
        (_worker(4, enabled=False), False),  # opted out
        (_worker(5, status=WorkerStatus.STOPPED), False),
        (_worker(6, changed=NOW - timedelta(minutes=5)), False),  # just started: full timeout first
        (_worker(7, activity=NOW - timedelta(minutes=61)), True),
    ],
)
def test_policy(worker, idle):  # noqa: ANN001
    decisions = decide_idle([worker], Settings(idle_timeout_minutes=60), now=NOW)
    assert bool(decisions) is idle
    if idle:
        assert "timeout 60 min" in decisions[0].reason


def test_global_switch_turns_it_off():
    assert decide_idle([_worker(1)], Settings(idle_detection_enabled=False), now=NOW) == []


class IdleCml:
    @__import__("contextlib").asynccontextmanager
    async def session(self):  # noqa: ANN201
        yield self

    async def read(self, worker, plan=None) -> CmlReading:  # noqa: ANN001
        busy = worker.worker_id == "w-0"
        return CmlReading(
            version="2.9.0", ready=True, nodes_running=4 if busy else 0, labs_total=1, labs_running=int(busy)
        )


class CountingStops(FakeEc2):
    def __init__(self, states: dict[str, str]) -> None:
        super().__init__(states)
        self.stop_calls: list[list[str]] = []

    def stop(self, instance_ids: Sequence[str]) -> BulkResult:
        self.stop_calls.append(list(instance_ids))
        return super().stop(instance_ids)


def test_collector_pauses_idle_workers_with_one_stop_call():
    repo = InMemoryWorkerRepository()
    states: dict[str, str] = {}
    for i in range(5):
        worker = _worker(i).model_copy(update={"worker_id": f"w-{i}", "metrics": None})
        repo.add(worker)
        assert worker.instance_id is not None
        states[worker.instance_id] = "running"
    ec2 = CountingStops(states)
    ports = CollectPorts(
        workers=repo,
        samples=Samples(),
        ec2_for=lambda r: ec2,
        cloudwatch_for=lambda r: FakeCloudWatch(),
        cml=IdleCml(),
        settings=InMemorySettingsRepository(Settings(idle_timeout_minutes=60)),
    )
    result = asyncio.run(collect(ports, [f"w-{i}" for i in range(5)], now=NOW))
    assert result.paused == 4
    assert len(ec2.stop_calls) == 1 and len(ec2.stop_calls[0]) == 4
    paused = repo.get("w-1")
    assert paused.status == WorkerStatus.STOPPING and paused.pause_count == 1
    assert paused.last_pause_reason is not None and paused.last_pause_reason.startswith("idle: no running nodes")
    assert repo.get("w-0").status == WorkerStatus.RUNNING  # the busy one
