"""POST /workers end to end: the API records PENDING, starts the real saga ASL under moto, and
the worker reaches RUNNING. Idempotency-Key replays never create a second worker or instance."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest

from cmlcm import container
from cmlcm.adapters.aws import client
from cmlcm.adapters.dynamo import DynamoWorkerRepository
from cmlcm.adapters.operations import DynamoSettingsRepository
from cmlcm.adapters.workflows import StepFunctionsStarter
from cmlcm.container import Container
from cmlcm.domain.settings import RegionDefaults, Settings
from cmlcm.handlers import provision
from cmlcm_local.seed import cml_ami, fresh_backend, launch_instances
from tests.support.api import Api

ASL = Path(__file__).resolve().parents[2] / "statemachines" / "provision_worker.asl.json"


class ReadyProbe:
    @contextlib.asynccontextmanager
    async def session(self):  # noqa: ANN201 - a fake reader that is its own session
        yield self

    async def ready(self, worker) -> bool:  # noqa: ANN001
        return True


@pytest.fixture
def api_with_saga(sfn, monkeypatch):  # noqa: ANN001
    s = fresh_backend()
    ami = cml_ami("us-east-1")
    settings = DynamoSettingsRepository(s.operations_table, s.aws_region)
    # Poll every second, 3 checks: bounded waits stay short under moto's real-time Wait.
    settings.save(Settings(provision_poll_seconds=1, region_defaults={"us-east-1": RegionDefaults(ami_id=ami)}))
    repo = DynamoWorkerRepository(s.workers_table, s.aws_region)
    arn = sfn.lambdas.register("provision", provision.handler)
    machine = sfn.machines.create("provision", ASL, {"ProvisionFunctionArn": arn})
    # The real container on moto, but its workflow is this machine and CML is always ready
    container.use(Container(s).with_ports(workflow=StepFunctionsStarter(machine, "us-east-1"), cml=ReadyProbe()))
    yield Api(), sfn, repo, ami
    container.use(None)


def _wait_status(repo, worker_id: str, wanted: str, timeout: float = 60) -> str:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = repo.get(worker_id).status.value
        if status == wanted:
            return status
        time.sleep(0.2)
    return repo.get(worker_id).status.value


def _instances_of(worker_id: str) -> list[str]:
    pages = client("ec2", "us-east-1").describe_instances(Filters=[{"Name": "tag:WorkerId", "Values": [worker_id]}])
    return [i["InstanceId"] for r in pages["Reservations"] for i in r["Instances"]]


def test_create_returns_202_and_the_worker_reaches_running(api_with_saga):
    api, sfn, repo, _ = api_with_saga
    status, body = api.call(
        "POST", "/workers", body={"name": "lab-01", "region": "us-east-1", "tags": {"Course": "ccna"}}
    )
    assert status == 202, body
    assert body["worker"]["status"] == "pending" and body["execution_arn"].endswith(body["worker"]["worker_id"])
    worker_id = body["worker"]["worker_id"]
    assert _wait_status(repo, worker_id, "running") == "running"
    assert len(_instances_of(worker_id)) == 1
    assert api.call("POST", "/workers", body={"name": "LAB-01", "region": "us-east-1"})[0] == 409  # names are unique


def test_double_submit_with_one_key_creates_one_worker_and_one_instance(api_with_saga):
    api, sfn, repo, _ = api_with_saga
    request = {"name": "exam-7", "region": "us-east-1"}
    results: list = []
    barrier = threading.Barrier(2)

    def submit() -> None:
        barrier.wait()
        results.append(api.call("POST", "/workers", body=request, headers={"Idempotency-Key": "key-exam-7-0001"}))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 202], results
    ids = {b["worker"]["worker_id"] for _, b in results}
    assert len(ids) == 1
    worker_id = ids.pop()
    assert _wait_status(repo, worker_id, "running") == "running"
    assert len(_instances_of(worker_id)) == 1
    listed = api.call("GET", "/workers", role="viewer")[1]["items"]
    assert [w["name"] for w in listed] == ["exam-7"]
    # Same key, different request: refused, nothing created.
    status, body = api.call(
        "POST", "/workers", body={**request, "name": "exam-8"}, headers={"Idempotency-Key": "key-exam-7-0001"}
    )
    assert status == 409 and body["field"] == "Idempotency-Key"


def test_create_validates_before_writing(api_with_saga):
    api, _, repo, _ = api_with_saga
    assert api.call("POST", "/workers", body={"name": "x", "region": "mars-1"})[1]["field"] == "region"
    assert (
        api.call("POST", "/workers", body={"name": "x", "region": "us-east-1", "ami_id": "nope"})[1]["field"]
        == "ami_id"
    )
    assert api.call("POST", "/workers", role="operator", body={"name": "x", "region": "us-east-1"})[0] == 403
    assert api.call("GET", "/workers", role="viewer")[1]["items"] == []


def test_import_one_and_all_of_an_ami_name(api_with_saga):
    api, _, repo, ami = api_with_saga
    named = launch_instances("us-east-1", 3, ami_id=ami, tags={"Name": "legacy"})
    status, body = api.call(
        "POST", "/workers/import", body={"region": "us-east-1", "instance_id": named[0]["InstanceId"]}
    )
    assert status == 200 and [w["name"] for w in body["imported"]] == ["legacy"]
    status, body = api.call("POST", "/workers/import", body={"region": "us-east-1", "ami_name_pattern": "cml2-*"})
    assert status == 200
    assert len(body["imported"]) == 2  # the other two; names made unique with the instance id
    assert all(w["name"].startswith("legacy-i-") for w in body["imported"])
    assert [s["instance_id"] for s in body["skipped"]] == [named[0]["InstanceId"]]
    assert "already managed" in body["skipped"][0]["reason"]
    status, body = api.call(
        "POST", "/workers/import", body={"region": "us-east-1", "instance_id": "i-0123456789abcdef0"}
    )
    assert status == 404 and body["field"] == "instance_id"
