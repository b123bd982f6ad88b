"""The provisioning saga's ASL, executed under moto with the real step handlers in-process.

Each fault test fails one step and then checks the invariant: no live instance is left without a
RUNNING or reconcilable (FAILED) record, and the worker is FAILED with the step and the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cmlcm import container
from cmlcm.adapters.aws import client
from cmlcm.adapters.dynamo import DynamoWorkerRepository
from cmlcm.adapters.ec2 import Ec2Gateway
from cmlcm.adapters.operations import DynamoReservations, DynamoSettingsRepository
from cmlcm.container import Container
from cmlcm.domain.errors import QuotaExceeded, TransientAwsError
from cmlcm.domain.settings import RegionDefaults, Settings
from cmlcm.domain.workers import WORKER_ID_TAG, WorkerStatus
from cmlcm.handlers import provision
from cmlcm.ports import LaunchSpec, ProvisionPorts
from cmlcm.services import provisioning
from cmlcm.services.reconcile import reconcile
from cmlcm_local.seed import cml_ami, fresh_backend

ASL = Path(__file__).resolve().parents[2] / "statemachines" / "provision_worker.asl.json"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FAST = {"poll_seconds": 0, "max_running_checks": 3, "max_ready_checks": 3}


class DatabaseUnavailable(Exception):
    """Stands in for a DynamoDB outage on one write."""


@dataclass
class FaultyEc2:
    """The real moto-backed gateway with faults injected per test."""

    real: Ec2Gateway
    launch_error: Exception | None = None
    stuck_pending: bool = False
    terminate_failures: int = 0
    terminate_calls: int = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def launch(self, spec):  # noqa: ANN001, ANN201
        if self.launch_error is not None:
            raise self.launch_error
        return self.real.launch(spec)

    def describe(self, ids):  # noqa: ANN001, ANN201
        found = self.real.describe(ids)
        if self.stuck_pending:
            from dataclasses import replace

            found = {k: replace(v, state="pending") if v.state == "running" else v for k, v in found.items()}
        return found

    def terminate(self, ids):  # noqa: ANN001, ANN201
        self.terminate_calls += 1
        if self.terminate_failures:
            self.terminate_failures -= 1
            raise TransientAwsError("TerminateInstances: RequestLimitExceeded")
        return self.real.terminate(ids)


@dataclass
class FlakyRepo:
    """Workers repository whose save fails while the saga records the launched instance."""

    real: DynamoWorkerRepository
    fail_recording_instance: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def save(self, worker):  # noqa: ANN001, ANN201
        if self.fail_recording_instance and worker.instance_id and worker.status == WorkerStatus.PROVISIONING:
            raise DatabaseUnavailable("DynamoDB did not accept the write")
        return self.real.save(worker)


@dataclass
class FakeProbe:
    @contextlib.asynccontextmanager
    async def session(self):  # noqa: ANN201 - a fake reader that is its own session
        yield self

    ready_after: int | None = 0  # None: never ready
    calls: int = 0

    async def ready(self, worker) -> bool:  # noqa: ANN001
        self.calls += 1
        return self.ready_after is not None and self.calls > self.ready_after


class RecordingStarter:
    """Records the start request; the tests run the execution themselves with fast bounds."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []

    def start(self, *, name: str, payload: dict[str, Any]) -> str:
        self.started.append((name, payload))
        return f"arn:aws:states:us-east-1:123456789012:execution:provision:{name}"


@dataclass
class Saga:
    sfn: Any
    ports: ProvisionPorts
    ec2: FaultyEc2
    repo: FlakyRepo
    probe: FakeProbe
    ami: str
    created: list[str] = field(default_factory=list)

    def create(self, name: str) -> str:
        created = provisioning.create_worker(
            self.ports,
            provisioning.CreateWorker(name=name, region="us-east-1"),
            worker_id=f"w-{name}",
            idempotency_key=None,
            now=NOW,
        )
        return created.worker.worker_id

    def run(self, worker_id: str) -> tuple[str, Any]:
        return self.sfn.machines.run("provision", {"worker_id": worker_id, "config": FAST}, timeout_s=60)

    def live_instances(self, worker_id: str) -> list[dict[str, Any]]:
        reservations = client("ec2", "us-east-1").describe_instances(
            Filters=[
                {"Name": f"tag:{WORKER_ID_TAG}", "Values": [worker_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )["Reservations"]
        return [i for r in reservations for i in r["Instances"]]


@pytest.fixture
def saga(sfn) -> Iterator[Saga]:  # noqa: ANN001
    settings = fresh_backend()
    ami = cml_ami("us-east-1")
    settings_repo = DynamoSettingsRepository(settings.operations_table, settings.aws_region)
    settings_repo.save(Settings(region_defaults={"us-east-1": RegionDefaults(instance_type="c5.metal", ami_id=ami)}))
    ec2 = FaultyEc2(Ec2Gateway("us-east-1"))
    repo = FlakyRepo(DynamoWorkerRepository(settings.workers_table, settings.aws_region))
    probe = FakeProbe()
    ports = ProvisionPorts(
        workers=repo,
        settings=settings_repo,
        ec2_for=lambda region: ec2,
        reservations=DynamoReservations(settings.operations_table, settings.aws_region),
        workflow=RecordingStarter(),
        cml=probe,
    )
    # The provisioning Lambda's container: these ports (the others are never reached)
    container.use(Container(settings).with_ports(**vars(ports)))
    arn = sfn.lambdas.register("provision", provision.handler)
    sfn.machines.create("provision", ASL, {"ProvisionFunctionArn": arn})
    yield Saga(sfn, ports, ec2, repo, probe, ami)
    container.use(None)


def _assert_no_zombie(saga: Saga, worker_id: str) -> None:
    worker = saga.repo.get(worker_id)
    live = saga.live_instances(worker_id)
    assert not live or worker.status in (WorkerStatus.RUNNING, WorkerStatus.FAILED), live


def test_happy_path_reaches_running(saga):
    worker_id = saga.create("happy")
    status, output = saga.run(worker_id)
    assert status == "SUCCEEDED", output
    worker = saga.repo.get(worker_id)
    assert worker.status == WorkerStatus.RUNNING and worker.instance_id
    live = saga.live_instances(worker_id)
    assert [i["InstanceId"] for i in live] == [worker.instance_id]
    tags = {t["Key"]: t["Value"] for t in live[0]["Tags"]}
    assert tags["ManagedBy"] == "CmlCloudManager" and tags["WorkerId"] == worker_id and tags["Name"] == "happy"


def test_launch_error_fails_the_worker_with_the_reason(saga):
    saga.ec2.launch_error = QuotaExceeded("RunInstances: VcpuLimitExceeded: no vCPUs left")
    worker_id = saga.create("quota")
    status, _ = saga.run(worker_id)
    assert status == "FAILED"
    worker = saga.repo.get(worker_id)
    assert worker.status == WorkerStatus.FAILED
    assert worker.status_reason.startswith("launch: QuotaExceeded")
    assert saga.live_instances(worker_id) == []


def test_instance_never_running_is_terminated(saga):
    saga.ec2.stuck_pending = True
    worker_id = saga.create("stuck")
    status, _ = saga.run(worker_id)
    assert status == "FAILED"
    worker = saga.repo.get(worker_id)
    assert worker.status == WorkerStatus.FAILED and "InstanceNeverRunning" in worker.status_reason
    assert saga.live_instances(worker_id) == []


def test_cml_never_ready_is_terminated(saga):
    saga.probe.ready_after = None
    worker_id = saga.create("noready")
    status, _ = saga.run(worker_id)
    assert status == "FAILED"
    worker = saga.repo.get(worker_id)
    assert worker.status_reason.startswith("wait_cml_ready: CmlNeverReady")
    assert saga.probe.calls == FAST["max_ready_checks"]
    assert saga.live_instances(worker_id) == []


def test_db_write_failure_after_launch_finds_the_instance_by_tag(saga):
    saga.repo.fail_recording_instance = True
    worker_id = saga.create("dbdown")
    status, _ = saga.run(worker_id)
    assert status == "FAILED"
    saga.repo.fail_recording_instance = False
    worker = saga.repo.get(worker_id)
    assert worker.status == WorkerStatus.FAILED and worker.status_reason.startswith(
        "record_instance: DatabaseUnavailable"
    )
    assert saga.live_instances(worker_id) == []
    assert worker.instance_id  # compensation recorded which instance it terminated


def test_compensation_failing_once_is_retried(saga):
    saga.probe.ready_after = None
    saga.ec2.terminate_failures = 1
    worker_id = saga.create("retry")
    status, _ = saga.run(worker_id)
    assert status == "FAILED"
    assert saga.ec2.terminate_calls == 2
    assert saga.live_instances(worker_id) == []
    assert saga.repo.get(worker_id).status == WorkerStatus.FAILED


def test_compensation_failing_for_good_leaves_a_reconcilable_record(saga):
    saga.probe.ready_after = None
    saga.ec2.terminate_failures = 100
    worker_id = saga.create("stubborn")
    status, _ = saga.run(worker_id)
    assert status == "FAILED"
    worker = saga.repo.get(worker_id)
    assert worker.status == WorkerStatus.FAILED and "reconciler" in worker.last_error.message
    _assert_no_zombie(saga, worker_id)
    # The reconciler's default policy for FAILED workers with a live instance terminates it.
    saga.ec2.terminate_failures = 0
    findings = reconcile(saga.ports, regions=("us-east-1",), now=NOW)
    assert [(f.kind, f.action) for f in findings] == [("failed_with_live_instance", "terminated")]
    assert saga.live_instances(worker_id) == []


def test_a_second_execution_for_the_same_worker_launches_no_second_instance(saga):
    worker_id = saga.create("twice")
    assert saga.run(worker_id)[0] == "SUCCEEDED"
    # Replaying launch: ClientToken = worker id returns the same instance.
    first = saga.repo.get(worker_id).instance_id
    again = saga.ec2.real.launch(
        LaunchSpec(
            client_token=worker_id, ami_id=saga.ami, instance_type="c5.metal", tags=saga.repo.get(worker_id).tags
        )
    )
    assert again.instance_id == first
    assert len(saga.live_instances(worker_id)) == 1
