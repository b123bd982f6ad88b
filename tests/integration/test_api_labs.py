"""Lab routes over moto and the CML simulator in-process: what an operator does with curl.

The API's CML access is the production stack (FleetProbe → CmlFleetSession → CmlClient, the
credentials read from a moto secret), pointed at the simulator through `httpx.ASGITransport`
with the template endpoint mode, so each worker's instance id is its simulated controller.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from cmlcm import container
from cmlcm.adapters.aws import client
from cmlcm.adapters.cloudwatch import CloudWatchGateway
from cmlcm.adapters.cml.probe import FleetProbe
from cmlcm.adapters.ec2 import Ec2Gateway
from cmlcm.adapters.labs_repo import DynamoLabRepository
from cmlcm.config import get_config
from cmlcm.container import Container
from cmlcm.domain.jobs import MetricSample
from cmlcm.domain.labs import MAX_LAB_YAML_BYTES
from cmlcm.domain.workers import Worker
from cmlcm.ports import CollectPorts
from cmlcm.services.collect import collect
from cmlcm_local.events import DEV_USERS, FakeLambdaContext, rest_event
from cmlcm_local.seed import seed_fleet
from cmlsim import SimulatedFleet, build_app, sample_topology
from tests.support.api import NOW


class Clock:
    """One hand-moved clock for the API (the container's clock) and the simulator."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def instance_of(worker: Worker) -> str:
    """The worker's instance id (every seeded worker has one)."""
    assert worker.instance_id is not None, f"{worker.worker_id} has no instance"
    return worker.instance_id


@dataclass
class CmlWorld:
    fleet: SimulatedFleet
    clock: Clock
    workers: list[Worker]
    labs: DynamoLabRepository
    probe: FleetProbe
    #: (puts, deletes) of every labs-table write, by row count.
    writes: list[tuple[int, int]] = field(default_factory=list)

    @property
    def running(self) -> Worker:
        return self.workers[0]

    @property
    def stopped(self) -> Worker:
        return self.workers[-1]

    def cml_labs(self, worker: Worker) -> dict[str, Any]:
        controller = self.fleet.get(instance_of(worker))
        assert controller is not None, f"no simulated controller for {worker.worker_id}"
        return controller.labs

    def lab_in_state(self, worker: Worker, state: str) -> str:
        return next(lab.id for lab in self.cml_labs(worker).values() if lab.state == state)


@pytest.fixture
def cml(api, dynamo_ports) -> Iterator[CmlWorld]:
    """Three seeded workers (two running, one stopped), each with a simulated controller
    holding two labs, one of them started; the API's lab and licence ports reach them."""
    clock = Clock(NOW)
    fleet = SimulatedFleet(clock=clock, converge_seconds=5, licence_seconds=10)
    workers = seed_fleet(dynamo_ports.workers, region="us-east-1", count=3, now=NOW, stopped=1)
    for worker in workers:
        fleet.add(instance_of(worker), labs=2, running_labs=1)
    base = get_config()
    client("secretsmanager", base.aws_region).create_secret(
        Name=base.cml_credentials_secret, SecretString=json.dumps({"username": "admin", "password": fleet.password})
    )
    settings = base.model_copy(
        update={"cml_endpoint_mode": "template", "cml_endpoint_template": "http://sim/controllers/{instance_id}/api/v0"}
    )
    probe = FleetProbe(settings, transport=httpx.ASGITransport(app=build_app(fleet)))
    labs = DynamoLabRepository(settings.labs_table, settings.aws_region)
    world = CmlWorld(fleet, clock, workers, labs, probe)
    real_write = labs.write

    def counted_write(puts, deletes):  # noqa: ANN001, ANN202 - the repository's signature
        world.writes.append((len(puts), len(deletes)))
        return real_write(puts, deletes)

    labs.write = counted_write  # type: ignore[method-assign]
    # The API's container on this moto account, with the simulated controllers and this clock
    # (the `api` fixture puts the real one back afterwards).
    container.use(Container(settings, clock=clock).with_ports(labs=labs, cml=probe))
    yield world


def raw_call(
    method: str,
    path: str,
    *,
    role: str = "admin",
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The handler's raw answer (status, headers and the body as text)."""
    from cmlcm.handlers.api import app as api_app

    event = rest_event(method, path, body=body, headers=headers, query=query, claims=DEV_USERS[role])
    return api_app.handler(event, FakeLambdaContext("api"))


def labs_path(worker: Worker, suffix: str = "") -> str:
    return f"/workers/{worker.worker_id}/labs{suffix}"


# --- list and refresh ---


class _Samples:
    """A samples twin: the collection writes samples; nothing here reads them back."""

    def put_many(self, samples: Sequence[MetricSample]) -> int:
        return len(samples)

    def recent(self, worker_id: str, *, since: datetime, limit: int = 500) -> list[MetricSample]:
        return []


def test_a_collection_fills_the_listing_and_the_worker_with_what_the_old_ui_showed(api, cml, dynamo_ports):
    # Given nobody ever refreshed the labs, when the scheduled collection runs once
    worker = cml.running
    ports = CollectPorts(
        workers=dynamo_ports.workers,
        samples=_Samples(),
        ec2_for=Ec2Gateway,
        cloudwatch_for=CloudWatchGateway,
        cml=cml.probe,
        settings=dynamo_ports.settings,
        labs=cml.labs,
    )
    result = asyncio.run(collect(ports, [w.worker_id for w in cml.workers], now=NOW))
    assert result.failed == 0 and result.labs_written == 4  # two running workers, two labs each
    # Then the listing is filled, with description, notes, groups, owner full name, state history
    status, body = api.call("GET", labs_path(worker), role="viewer")
    assert status == 200 and len(body["items"]) == 2
    started = next(lab for lab in body["items"] if lab["state"] == "STARTED")
    assert started["owner_fullname"] == "Administrator" and started["description"] == "simulated"
    assert started["notes"] == "" and started["groups"] == []
    assert [(c["state"], c["seen_at"]) for c in started["state_history"]] == [("STARTED", "2026-11-22T12:00:00Z")]
    # And the worker shows its controller's health, compute table and licence detail
    status, shown = api.call("GET", f"/workers/{worker.worker_id}", role="viewer")
    system = shown["cml_system"]
    assert status == 200 and system["health"]["valid"] is True
    assert [c["hostname"] for c in system["health"]["computes"]] == ["cml-controller"]
    assert system["licence_detail"]["udi_hostname"] == "cml-controller"
    # And a second cycle with nothing changed writes no lab row
    writes = len(cml.writes)
    again = asyncio.run(collect(ports, [w.worker_id for w in cml.workers], now=NOW + timedelta(minutes=5)))
    assert again.labs_written == 0 and len(cml.writes) == writes


def test_list_is_served_from_the_table_and_refresh_fills_it(api, cml):
    worker = cml.running
    status, body = api.call("GET", labs_path(worker), role="viewer")
    assert status == 200 and body == {"worker_id": worker.worker_id, "items": []}

    status, body = api.call("POST", labs_path(worker, "/refresh"), role="operator")
    assert status == 200
    assert (body["added"], body["changed"], body["unchanged"], body["deleted"]) == (2, 0, 0, 0)
    assert [(lab["title"], lab["state"]) for lab in body["items"]] == [
        ("Lab 1", "STARTED"),
        ("Lab 2", "DEFINED_ON_CORE"),
    ]
    assert {lab["lab_id"] for lab in body["items"]} == set(cml.cml_labs(worker))

    status, listed = api.call("GET", labs_path(worker), role="viewer")
    assert status == 200 and listed["items"] == body["items"]
    first = listed["items"][0]
    assert first["owner"] == "admin" and first["node_count"] == 3 and first["link_count"] == 2
    # Another worker's labs are its own.
    assert api.call("GET", labs_path(cml.workers[1]), role="viewer")[1]["items"] == []


def test_refresh_removes_orphans_and_leaves_unchanged_labs_unwritten(api, cml):
    worker = cml.running
    api.call("POST", labs_path(worker, "/refresh"), role="operator")
    assert cml.writes == [(2, 0)]
    kept, gone = sorted(cml.cml_labs(worker))
    first_sync = {lab.lab_id: lab.synced_at for lab in cml.labs.list(worker.worker_id)}

    # Behind our back: one lab deleted on CML, one added.
    cml.fleet.get(worker.instance_id).labs.pop(gone)
    added = cml.fleet.add_lab(worker.instance_id, "Added by hand", nodes=2)
    cml.clock.advance(60)
    status, body = api.call("POST", labs_path(worker, "/refresh"), role="operator")

    assert status == 200
    assert (body["added"], body["changed"], body["unchanged"], body["deleted"]) == (1, 0, 1, 1)
    assert cml.writes[-1] == (1, 1)  # the new lab put, the orphan deleted, the unchanged one untouched
    stored = {lab.lab_id: lab for lab in cml.labs.list(worker.worker_id)}
    assert set(stored) == {kept, added}
    assert stored[kept].synced_at == first_sync[kept]
    assert stored[added].synced_at == NOW + timedelta(seconds=60)

    # Nothing changed on CML: a refresh writes nothing at all.
    cml.clock.advance(60)
    status, body = api.call("POST", labs_path(worker, "/refresh"), role="operator")
    assert status == 200 and body["unchanged"] == 2 and cml.writes[-1] == (0, 0)
    assert {lab.lab_id: lab.synced_at for lab in cml.labs.list(worker.worker_id)} == {
        kept: first_sync[kept],
        added: NOW + timedelta(seconds=60),
    }


def test_a_changed_lab_is_rewritten(api, cml):
    worker = cml.running
    api.call("POST", labs_path(worker, "/refresh"), role="operator")
    lab_id = cml.lab_in_state(worker, "DEFINED_ON_CORE")
    cml.clock.advance(30)
    cml.fleet.lab_action(cml.fleet.get(worker.instance_id), cml.cml_labs(worker)[lab_id], "start")
    status, body = api.call("POST", labs_path(worker, "/refresh"), role="operator")
    assert status == 200 and (body["changed"], body["unchanged"]) == (1, 1)
    assert cml.writes[-1] == (1, 0)
    assert cml.labs.get(worker.worker_id, lab_id).state == "STARTED"


# --- lab actions ---


def test_start_stop_wipe_then_delete(api, cml):
    worker = cml.running
    api.call("POST", labs_path(worker, "/refresh"), role="operator")
    lab_id = cml.lab_in_state(worker, "DEFINED_ON_CORE")

    status, body = api.call("PUT", labs_path(worker, f"/{lab_id}/start"), role="operator")
    assert status == 200 and body["state"] == "STARTED" and body["lab_id"] == lab_id
    assert cml.cml_labs(worker)[lab_id].state == "STARTED"
    assert cml.labs.get(worker.worker_id, lab_id).state == "STARTED"

    # CML refuses to delete a running lab: the request is at fault (422), nothing changes.
    status, body = api.call("DELETE", labs_path(worker, f"/{lab_id}"), role="operator")
    assert status == 422 and body["error"] == "CmlRejected"
    assert lab_id in cml.cml_labs(worker) and cml.labs.get(worker.worker_id, lab_id) is not None

    cml.clock.advance(10)
    status, body = api.call("PUT", labs_path(worker, f"/{lab_id}/stop"), role="operator")
    assert status == 200 and body["state"] == "STOPPED"
    status, body = api.call("PUT", labs_path(worker, f"/{lab_id}/wipe"), role="operator")
    assert status == 200 and body["state"] == "DEFINED_ON_CORE"

    status, body = api.call("DELETE", labs_path(worker, f"/{lab_id}"), role="operator")
    assert status == 204 and body is None
    assert lab_id not in cml.cml_labs(worker)
    assert cml.labs.get(worker.worker_id, lab_id) is None
    assert [lab["lab_id"] for lab in api.call("GET", labs_path(worker), role="viewer")[1]["items"]] != [lab_id]


def test_wiping_a_started_lab_is_refused(api, cml):
    worker = cml.running
    lab_id = cml.lab_in_state(worker, "STARTED")
    status, body = api.call("PUT", labs_path(worker, f"/{lab_id}/wipe"), role="operator")
    assert status == 422 and body["error"] == "CmlRejected" and "stopped" in body["message"]


def test_download_returns_the_yaml(api, cml):
    worker = cml.running
    lab_id = cml.lab_in_state(worker, "STARTED")
    response = raw_call("GET", labs_path(worker, f"/{lab_id}/download"), role="viewer")
    assert response["statusCode"] == 200
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    multi = {k.lower(): v for k, v in (response.get("multiValueHeaders") or {}).items()}
    content_type = headers.get("content-type") or multi["content-type"][0]
    assert content_type == "application/x-yaml"
    topology = yaml.safe_load(response["body"])
    assert topology["lab"]["title"] == "Lab 1" and len(topology["nodes"]) == 3


@pytest.mark.parametrize("content_type", ["application/x-yaml", "text/plain", "application/json", None])
def test_import_accepts_yaml_whatever_the_content_type(api, cml, content_type):
    worker = cml.running
    text = yaml.safe_dump(sample_topology("Imported lab", nodes=2), sort_keys=False)
    headers = {"Content-Type": content_type} if content_type else None
    status, body = api.call("POST", labs_path(worker, "/import"), role="operator", body=text, headers=headers)
    assert status == 200, body
    assert body["title"] == "Imported lab" and body["node_count"] == 2 and body["state"] == "DEFINED_ON_CORE"
    assert body["lab_id"] in cml.cml_labs(worker)
    assert cml.labs.get(worker.worker_id, body["lab_id"]) is not None


def test_import_title_overrides_the_topology(api, cml):
    worker = cml.running
    text = yaml.safe_dump(sample_topology("From file"))
    status, body = api.call(
        "POST",
        labs_path(worker, "/import"),
        role="operator",
        body=text,
        headers={"Content-Type": "application/x-yaml"},
        query={"title": "Course day 1"},
    )
    assert status == 200 and body["title"] == "Course day 1"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("lab: {title: [unclosed\nnodes: []\n", "not valid YAML"),
        ("just a sentence", "not a CML lab topology"),
        ("- a\n- list\n", "not a CML lab topology"),
        ("lab: {title: x}\nnodes: 3\n", "'nodes' must be a list"),
        ("   \n", "empty"),
    ],
)
def test_bad_yaml_is_422_naming_body_and_never_reaches_cml(api, cml, text, says):
    worker = cml.running
    before_requests, before_labs = cml.fleet.requests, set(cml.cml_labs(worker))
    status, body = api.call(
        "POST", labs_path(worker, "/import"), role="operator", body=text, headers={"Content-Type": "application/x-yaml"}
    )
    assert status == 422 and body["field"] == "body" and says in body["message"]
    assert cml.fleet.requests == before_requests
    assert set(cml.cml_labs(worker)) == before_labs


def test_oversized_import_is_413_naming_body_and_never_reaches_cml(api, cml):
    worker = cml.running
    before = cml.fleet.requests
    text = "lab: {title: big}\nnodes: []\n# " + "x" * MAX_LAB_YAML_BYTES + "\n"
    status, body = api.call(
        "POST", labs_path(worker, "/import"), role="operator", body=text, headers={"Content-Type": "text/plain"}
    )
    assert status == 413 and body["field"] == "body" and "1 MiB" in body["message"]
    assert cml.fleet.requests == before


# --- not found, not running, roles, faults ---


def test_a_lab_id_that_is_not_a_uuid_is_422_before_cml(api, cml):
    # Given a running worker, when a lab route is called with an id that is no CML lab id
    before = cml.fleet.requests
    for method, suffix in [("PUT", "/x' OR 1=1/start"), ("GET", "/..%2f..%2fetc/download"), ("DELETE", "/12345")]:
        status, body = api.call(method, labs_path(cml.running, suffix), role="operator")
        # Then it is a 422 naming lab_id, and CML was never asked
        assert (status, body["field"]) == (422, "lab_id"), (method, suffix, body)
    assert cml.fleet.requests == before


def test_labs_of_an_unknown_worker_are_404(api, cml):
    for method, suffix, role in [
        ("GET", "", "viewer"),
        ("POST", "/refresh", "operator"),
        ("PUT", "/0b9d6c2e-5f1a-4c3b-9e8d-7a6f5e4d3c2b/start", "operator"),
        ("GET", "/0b9d6c2e-5f1a-4c3b-9e8d-7a6f5e4d3c2b/download", "viewer"),
        ("DELETE", "/0b9d6c2e-5f1a-4c3b-9e8d-7a6f5e4d3c2b", "operator"),
    ]:
        status, body = api.call(method, f"/workers/w-nope/labs{suffix}", role=role)
        assert (status, body["field"]) == (404, "worker_id"), (method, suffix)
    status, body = api.call("POST", "/workers/w-nope/labs/import", role="operator", body="lab: {title: x}\nnodes: []\n")
    assert status == 404 and body["field"] == "worker_id"


def test_an_unknown_lab_is_404_naming_lab_id(api, cml):
    worker = cml.running
    missing = "00000000-0000-4000-8000-000000000000"
    for method, suffix, role in [
        ("PUT", f"/{missing}/start", "operator"),
        ("PUT", f"/{missing}/stop", "operator"),
        ("GET", f"/{missing}/download", "viewer"),
        ("DELETE", f"/{missing}", "operator"),
    ]:
        status, body = api.call(method, labs_path(worker, suffix), role=role)
        assert (status, body["field"]) == (404, "lab_id"), (method, suffix, body)
        assert missing in body["message"]


def test_a_lab_gone_from_cml_loses_its_row_when_acted_on(api, cml):
    worker = cml.running
    api.call("POST", labs_path(worker, "/refresh"), role="operator")
    lab_id = cml.lab_in_state(worker, "DEFINED_ON_CORE")
    cml.fleet.get(worker.instance_id).labs.pop(lab_id)
    status, _ = api.call("PUT", labs_path(worker, f"/{lab_id}/start"), role="operator")
    assert status == 404
    assert cml.labs.get(worker.worker_id, lab_id) is None


def test_a_worker_that_is_not_running_is_409_naming_status(api, cml):
    worker = cml.stopped
    for method, suffix in [
        ("POST", "/refresh"),
        ("PUT", "/0b9d6c2e-5f1a-4c3b-9e8d-7a6f5e4d3c2b/start"),
        ("GET", "/0b9d6c2e-5f1a-4c3b-9e8d-7a6f5e4d3c2b/download"),
        ("DELETE", "/0b9d6c2e-5f1a-4c3b-9e8d-7a6f5e4d3c2b"),
    ]:
        status, body = api.call(method, labs_path(worker, suffix), role="operator")
        assert (status, body["field"]) == (409, "status"), (method, suffix)
        assert "stopped" in body["message"]
    # Reading the table needs no CML.
    assert api.call("GET", labs_path(worker), role="viewer")[0] == 200


def test_viewer_reads_but_cannot_operate(api, cml):
    worker = cml.running
    api.call("POST", labs_path(worker, "/refresh"), role="operator")
    lab_id = cml.lab_in_state(worker, "DEFINED_ON_CORE")
    assert api.call("GET", labs_path(worker), role="viewer")[0] == 200
    assert raw_call("GET", labs_path(worker, f"/{lab_id}/download"), role="viewer")["statusCode"] == 200
    for method, suffix in [
        ("PUT", f"/{lab_id}/start"),
        ("PUT", f"/{lab_id}/stop"),
        ("PUT", f"/{lab_id}/wipe"),
        ("DELETE", f"/{lab_id}"),
        ("POST", "/refresh"),
        ("POST", "/import"),
    ]:
        status, body = api.call(method, labs_path(worker, suffix), role="viewer")
        assert status == 403 and body["error"] == "Forbidden", (method, suffix)
    assert cml.cml_labs(worker)[lab_id].state == "DEFINED_ON_CORE"


def test_a_cml_fault_maps_to_its_status_and_writes_nothing(api, cml):
    worker = cml.running
    api.call("POST", labs_path(worker, "/refresh"), role="operator")
    before = cml.labs.list(worker.worker_id)
    cml.fleet.set_faults(worker.instance_id, error_rate=1.0, error_status=500)
    status, body = api.call("POST", labs_path(worker, "/refresh"), role="operator")
    assert status == 502 and body["error"] == "CmlBadResponse"
    cml.fleet.set_faults(worker.instance_id, error_rate=1.0, error_status=503)
    assert api.call("POST", labs_path(worker, "/refresh"), role="operator")[1]["error"] == "CmlNotReady"
    assert cml.labs.list(worker.worker_id) == before
    # Only that worker: its neighbour still answers.
    assert api.call("POST", labs_path(cml.workers[1], "/refresh"), role="operator")[0] == 200


def test_lab_routes_are_in_the_openapi_document(api):
    status, doc = api.call("GET", "/openapi.json", role=None)
    assert status == 200
    for path in (
        "/workers/{worker_id}/labs",
        "/workers/{worker_id}/labs/{lab_id}/start",
        "/workers/{worker_id}/labs/import",
        "/workers/{worker_id}/licence",
    ):
        assert path in doc["paths"]
