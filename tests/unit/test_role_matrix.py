"""Roles, tested as a matrix: every route the API registers × every kind of caller.

The table below is the decision of who may do what. It must name every registered route exactly:
a new route without an entry (or an entry whose route is gone) fails
`test_the_table_names_every_registered_route`, so no route ships without a decided role. The
matrix then calls the real Lambda handler with API Gateway events over in-memory twins and checks
that a caller gets 403 exactly when their role is below the route's, and that a refused call
changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.job_runs import InMemoryJobStarter
from cmlcm.adapters.operations import InMemorySettingsRepository
from cmlcm.adapters.schedules import InMemoryJobSchedules
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.handlers.api import app as api_app
from cmlcm.handlers.api.auth import PUBLIC_PATHS, Role, RoleRequirement, caller_role, parse_groups
from cmlcm.ports import CollectPorts
from cmlcm.services import collect
from cmlcm.services.workers import get_worker
from cmlcm_local.events import DEV_USERS, FakeLambdaContext, rest_event
from tests.support.twins import NoSamples, RecordingEc2, twin_container, using

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PUBLIC = None
V, O, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN

#: (method, path template) → the lowest role allowed; PUBLIC needs no token at all.
EXPECTED: dict[tuple[str, str], Role | None] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    # workers: everyone reads, operators run them, admins create, destroy and reconfigure them
    ("GET", "/workers"): V,
    ("GET", "/workers/<worker_id>"): V,
    ("GET", "/workers/<worker_id>/metrics"): V,
    ("POST", "/workers/<worker_id>/start"): O,
    ("POST", "/workers/<worker_id>/stop"): O,
    ("POST", "/workers/<worker_id>/pause"): O,
    ("POST", "/workers/<worker_id>/resume"): O,
    ("POST", "/workers/<worker_id>/refresh"): O,
    ("POST", "/workers"): A,
    ("POST", "/workers/import"): A,
    ("POST", "/workers/<worker_id>/terminate"): A,
    ("DELETE", "/workers/<worker_id>"): A,
    ("PUT", "/workers/<worker_id>/tags"): A,
    ("PUT", "/workers/<worker_id>/idle-detection"): A,
    ("POST", "/workers/<worker_id>/monitoring"): A,
    ("PUT", "/workers/<worker_id>/owner"): A,
    # settings: everyone reads, admins write
    ("GET", "/settings"): V,
    ("PUT", "/settings"): A,
    ("PATCH", "/settings"): A,
    # labs: viewers read, operators act on labs through CML
    ("GET", "/workers/<worker_id>/labs"): V,
    ("GET", "/workers/<worker_id>/labs/<lab_id>/download"): V,
    ("POST", "/workers/<worker_id>/labs/refresh"): O,
    ("POST", "/workers/<worker_id>/labs/import"): O,
    ("PUT", "/workers/<worker_id>/labs/<lab_id>/start"): O,
    ("PUT", "/workers/<worker_id>/labs/<lab_id>/stop"): O,
    ("PUT", "/workers/<worker_id>/labs/<lab_id>/wipe"): O,
    ("DELETE", "/workers/<worker_id>/labs/<lab_id>"): O,
    # licences: viewers read, admins register and deregister
    ("GET", "/workers/<worker_id>/licence"): V,
    ("POST", "/workers/<worker_id>/licence"): A,
    ("DELETE", "/workers/<worker_id>/licence"): A,
    # fleet policy: everyone reads why a worker is (not) stopped and what was saved; admins write schedules
    ("GET", "/workers/<worker_id>/policy"): V,
    ("GET", "/savings"): V,
    ("GET", "/schedules"): V,
    ("GET", "/schedules/<name>"): V,
    ("POST", "/schedules"): A,
    ("PUT", "/schedules/<name>"): A,
    ("DELETE", "/schedules/<name>"): A,
    ("POST", "/schedules/<name>/overrides"): A,
    # jobs: admins only (what runs the fleet, and when)
    ("GET", "/jobs"): A,
    ("GET", "/jobs/<job>"): A,
    ("POST", "/jobs/<job>/run"): A,
    ("POST", "/jobs/<job>/pause"): A,
    ("POST", "/jobs/<job>/resume"): A,
}
CALLERS = (None, "viewer", "operator", "admin")


def _resolver_routes() -> dict[tuple[str, str], Any]:
    app = api_app.app
    return {(route.method.upper(), route.path): route for route in [*app._static_routes, *app._dynamic_routes]}


def _openapi_routes() -> set[tuple[str, str]]:
    doc = json.loads(api_app.app.get_openapi_json_schema())
    return {
        (method.upper(), path.replace("{", "<").replace("}", ">"))
        for path, operations in doc["paths"].items()
        for method in operations
    }


def test_the_table_names_every_registered_route():
    # Given the routes on the resolver, when compared with the table, then they are the same set
    routes = set(_resolver_routes())
    assert routes == set(EXPECTED), f"no role decided for: {routes - set(EXPECTED)}; stale: {set(EXPECTED) - routes}"
    # And the OpenAPI document (what clients see) lists exactly the same operations
    assert _openapi_routes() == routes
    # And the public routes are exactly the ones API Gateway serves without the authorizer
    assert {path for (_, path), role in EXPECTED.items() if role is PUBLIC} == set(PUBLIC_PATHS)


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED), ids=lambda v: v)
def test_each_route_declares_the_role_of_the_table(method, path):
    route = _resolver_routes()[(method, path)]
    declared = [m.minimum for m in route.middlewares or [] if isinstance(m, RoleRequirement)]
    assert declared == ([] if EXPECTED[(method, path)] is PUBLIC else [EXPECTED[(method, path)]])


# --- the matrix, through the real handler ----------------------------------------------------


@pytest.fixture
def world(monkeypatch):  # noqa: ANN001, ANN201
    refreshed: list[str] = []

    def refresh_worker(ports: CollectPorts, limiter: Any, key: str, **kw: Any) -> Worker:
        worker = get_worker(ports.workers, key)
        refreshed.append(worker.worker_id)
        return worker

    monkeypatch.setattr(collect, "refresh_worker", refresh_worker)
    workers = InMemoryWorkerRepository()
    workers.add(
        Worker(
            worker_id="w-1",
            name="w1",
            region="us-east-1",
            instance_id="i-0000000000000001",
            status=WorkerStatus.RUNNING,
            created_at=NOW,
            updated_at=NOW,
            status_changed_at=NOW,
        )
    )
    settings = InMemorySettingsRepository()
    ec2 = RecordingEc2()
    job_schedules, starter = InMemoryJobSchedules({"reconcile": "s-reconcile"}), InMemoryJobStarter()
    # refresh_worker itself is replaced above: only the samples (the metrics route) are read.
    # Deleting a worker also forgets its lab rows and token secret: those are the container's twins.
    made = twin_container(
        workers=workers,
        settings=settings,
        ec2_for=lambda region: ec2,
        samples=NoSamples(),
        job_schedules=job_schedules,
        job_starter=starter,
    )
    with using(made):
        yield SimpleNamespace(
            workers=workers,
            settings=settings,
            ec2=ec2,
            refreshed=refreshed,
            job_schedules=job_schedules,
            starter=starter,
        )


def _concrete(path: str) -> str:
    # Lab and licence routes go to a worker that does not exist: the service stops at 404
    # before any CML or Secrets Manager port, so the matrix needs no CML.
    worker_id = "w-missing" if "/labs" in path or "/licence" in path else "w-1"
    return (
        path.replace("<worker_id>", worker_id)
        .replace("<lab_id>", "00000000-0000-4000-8000-000000000001")
        .replace("<name>", "office-hours")
        .replace("<job>", "reconcile")
    )


BODIES = {
    "tags": {"tags": {"Course": "ccna"}},
    "idle-detection": {"enabled": False},
    "pause": {"reason": "lunch"},
    "owner": {"owner": "someone@example.com"},
}


def _call(method: str, path: str, caller: str | None) -> tuple[int, Any]:
    concrete = _concrete(path)
    event = rest_event(
        method, concrete, body=BODIES.get(concrete.rsplit("/", 1)[-1]), claims=DEV_USERS[caller] if caller else None
    )
    response = api_app.handler(event, FakeLambdaContext("api"))
    try:
        body = json.loads(response.get("body") or "null")
    except json.JSONDecodeError:
        body = response.get("body")
    return response["statusCode"], body


CASES = [(m, p, caller) for (m, p) in sorted(EXPECTED) for caller in CALLERS]


@pytest.mark.parametrize(("method", "path", "caller"), CASES, ids=[f"{m} {p} as {c}" for m, p, c in CASES])
def test_403_exactly_when_the_role_is_below_the_route(world, method, path, caller):  # noqa: ANN001
    # Given a route's minimum role and a caller (None: no claims at all)
    minimum = EXPECTED[(method, path)]
    rank = Role[caller.upper()] if caller else None
    allowed = minimum is PUBLIC or (rank is not None and rank >= minimum)
    stored_before, writes_before = world.workers.get("w-1"), world.workers.writes
    # When the caller calls it
    status, body = _call(method, path, caller)
    # Then a caller below the route's role gets 403 and nothing happened
    if not allowed:
        assert minimum is not None  # a public route allows every caller
        assert status == 403, f"{caller} got {status} on {method} {path}"
        assert body["error"] == "Forbidden" and f"needs the {minimum.name.lower()} role" in body["message"]
        assert world.workers.writes == writes_before and world.workers.get("w-1") == stored_before
        assert world.ec2.calls == [] and world.refreshed == [] and world.settings.get().version == 0
        assert world.starter.started == [] and world.job_schedules.updates == 0
    # And anyone else gets past authorization (a 404/409/422 is the route's own answer, not a fault)
    else:
        assert status != 403, f"{caller} was refused {method} {path}: {body}"
        assert status < 500, f"{caller} on {method} {path} got {status}: {body}"


def test_the_matrix_reaches_the_service_for_an_allowed_caller(world):
    # Given an operator, when they stop the running worker, then EC2 is called and the record moves
    status, body = _call("POST", "/workers/<worker_id>/stop", "operator")
    assert status == 200 and body["status"] == "stopping" and world.ec2.calls == ["stop"]


# --- reading the groups claim -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "groups", "role"),
    [
        ("admin", {"admin"}, A),
        ("viewer,operator", {"viewer", "operator"}, O),
        ("[operator viewer]", {"operator", "viewer"}, O),
        ("[admin, viewer]", {"admin", "viewer"}, A),
        (" viewer ", {"viewer"}, V),
        (["viewer", "admin"], {"viewer", "admin"}, A),
        (["operator", " ", ""], {"operator"}, O),
        ("ADMIN", {"ADMIN"}, A),
        ("students", {"students"}, None),
        ("students,viewer", {"students", "viewer"}, V),
        ("[]", set(), None),
        ("", set(), None),
        ([], set(), None),
        (None, set(), None),
    ],
)
def test_groups_claim_forms_and_the_highest_role(raw, groups, role):  # noqa: ANN001
    assert parse_groups(raw) == groups
    assert caller_role({"cognito:groups": raw}) == role


def test_no_claims_or_no_groups_claim_is_no_role():
    assert caller_role(None) is None and caller_role({}) is None
    assert caller_role({"email": "admin@example.com"}) is None


@pytest.mark.parametrize("role", ["admin", "operator", "viewer"])
def test_each_dev_user_has_the_role_of_its_name(role):
    assert caller_role(DEV_USERS[role]) == Role[role.upper()]
