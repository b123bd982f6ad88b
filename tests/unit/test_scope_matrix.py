"""Per-user scoping, as a matrix: every worker route × every role × a worker the caller owns, one
their team carries, and one of someone else, through the real API handler over twins.

With `worker_scoping` on, a scoped caller gets exactly the answer of a missing worker (404, same
error, field and words) for a worker out of scope, whatever the route; in scope, the route does
its own thing. Admins see everything; with scoping `operators`, viewers read the whole fleet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from test_role_matrix import EXPECTED

from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.operations import InMemorySettingsRepository
from cmlcm.domain.access import Caller, Scope, scope_for, teams_of
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.handlers.api import app as api_app
from cmlcm.handlers.api.auth import Role
from cmlcm.services import collect
from cmlcm.services.workers import get_worker
from cmlcm_local.events import DEV_USERS, FakeLambdaContext, rest_event
from tests.support.twins import NoSamples, RecordingEc2, twin_container, using

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

#: The callers: the dev users, the operator and viewer also in Cognito group team-ccna.
CLAIMS = {
    "admin": DEV_USERS["admin"],
    "operator": {**DEV_USERS["operator"], "cognito:groups": "operator,team-ccna"},
    "viewer": {**DEV_USERS["viewer"], "cognito:groups": "viewer,Team-CCNA"},
}
OWNERS = {"admin": "admin@example.com", "operator": "OPERATOR@example.com", "viewer": "viewer@example.com"}
WORKER_ROUTES = sorted((m, p) for (m, p), role in EXPECTED.items() if "<worker_id>" in p and role is not None)


def _worker(worker_id: str, *, owner: str | None = None, tags: dict[str, str] | None = None) -> Worker:
    return Worker(
        worker_id=worker_id,
        name=worker_id,
        region="us-east-1",
        instance_id=f"i-{abs(hash(worker_id)) % 10**16:016x}",
        owner=owner,
        tags=tags or {},
        # Stopped: lab and licence actions answer 409 (not running) before any CML port.
        status=WorkerStatus.STOPPED,
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
        last_paused_at=NOW,
    )


@pytest.fixture(params=["operators_and_viewers", "operators"])
def world(request, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setattr(collect, "refresh_worker", lambda ports, limiter, key, **kw: get_worker(ports.workers, key))
    workers = InMemoryWorkerRepository()
    for role, owner in OWNERS.items():
        workers.add(_worker(f"w-own-{role}", owner=owner))
    workers.add(_worker("w-team", tags={"Team": "ccna"}))
    workers.add(_worker("w-other", owner="someone@example.com", tags={"Team": "ccnp"}))
    settings = InMemorySettingsRepository(Settings(worker_scoping=request.param))
    ec2 = RecordingEc2()
    # refresh_worker itself is replaced above: only the samples (the metrics route) are read
    made = twin_container(workers=workers, settings=settings, ec2_for=lambda region: ec2, samples=NoSamples())
    with using(made):
        yield SimpleNamespace(workers=workers, ec2=ec2, scoping=request.param)


BODIES = {
    "tags": {"tags": {"Course": "x"}},
    "idle-detection": {"enabled": False},
    "pause": {"reason": "lunch"},
    "owner": {"owner": "x@example.com"},
}


def _call(method: str, path: str, caller: str, worker_id: str) -> tuple[int, Any]:
    concrete = path.replace("<worker_id>", worker_id).replace("<lab_id>", "00000000-0000-4000-8000-000000000001")
    body = BODIES.get(concrete.rsplit("/", 1)[-1])
    event = rest_event(method, concrete, body=body, claims=CLAIMS[caller])
    response = api_app.handler(event, FakeLambdaContext("api"))
    return response["statusCode"], json.loads(response.get("body") or "null")


def _scoped(caller: str, scoping: str) -> bool:
    return caller == "operator" or (caller == "viewer" and scoping == "operators_and_viewers")


CASES = [
    (m, p, caller)
    for (m, p) in WORKER_ROUTES
    for caller in ("viewer", "operator", "admin")
    if Role[caller.upper()] >= EXPECTED[(m, p)]  # type: ignore[operator]
]


@pytest.mark.parametrize(("method", "path", "caller"), CASES, ids=[f"{m} {p} as {c}" for m, p, c in CASES])
def test_out_of_scope_is_a_missing_worker_in_scope_is_the_routes_own_answer(world, method, path, caller):  # noqa: ANN001
    missing = _call(method, path, caller, "w-does-not-exist")
    other = _call(method, path, caller, "w-other")
    if _scoped(caller, world.scoping):
        # Then someone else's worker answers exactly as a worker that does not exist
        assert other[0] == 404 and other[1]["field"] == "worker_id", (other, missing)
        assert other[1]["error"] == missing[1]["error"] == "NotFound"
        assert other[1]["message"] == missing[1]["message"].replace("w-does-not-exist", "w-other")
        assert world.ec2.calls == []
        assert world.workers.get("w-other").version == 1  # nothing written
    else:
        assert not (other[0] == 404 and other[1]["field"] == "worker_id"), other
    # And the caller's own worker and their team's are reached (the route's own answer)
    for target in (f"w-own-{caller}", "w-team"):
        status, body = _call(method, path, caller, target)
        assert not (status == 404 and body["field"] == "worker_id"), (target, status, body)
        assert status < 500, (target, status, body)


@pytest.mark.parametrize("caller", ["viewer", "operator", "admin"])
def test_the_list_holds_only_the_callers_workers(world, caller):  # noqa: ANN001
    status, body = _call("GET", "/workers", caller, "")
    assert status == 200
    listed = {w["worker_id"] for w in body["items"]}
    everything = {"w-own-admin", "w-own-operator", "w-own-viewer", "w-team", "w-other"}
    assert listed == ({f"w-own-{caller}", "w-team"} if _scoped(caller, world.scoping) else everything)


def test_a_scoped_list_pages_through_a_fleet_of_others(world):  # noqa: ANN001
    for i in range(30):
        world.workers.add(_worker(f"w-a{i:02d}", owner="someone@example.com"))
    seen: list[str] = []
    token = None
    for _ in range(40):
        query = {"limit": "2", **({"next_token": token} if token else {})}
        event = rest_event("GET", "/workers", query=query, claims=CLAIMS["operator"])
        body = json.loads(api_app.handler(event, FakeLambdaContext("api"))["body"])
        seen += [w["worker_id"] for w in body["items"]]
        token = body["next_token"]
        if token is None:
            break
    assert sorted(seen) == ["w-own-operator", "w-team"]


def test_admin_sets_and_clears_the_owner_and_scoping_follows(world):  # noqa: ANN001
    event = rest_event("PUT", "/workers/w-other/owner", body={"owner": "operator@example.com"}, claims=CLAIMS["admin"])
    response = api_app.handler(event, FakeLambdaContext("api"))
    assert response["statusCode"] == 200 and json.loads(response["body"])["owner"] == "operator@example.com"
    assert _call("GET", "/workers/<worker_id>", "operator", "w-other")[0] == 200
    event = rest_event("PUT", "/workers/w-other/owner", body={"owner": None}, claims=CLAIMS["admin"])
    assert api_app.handler(event, FakeLambdaContext("api"))["statusCode"] == 200
    assert _call("GET", "/workers/<worker_id>", "operator", "w-other")[0] == 404


@pytest.mark.parametrize("owner", ["", "two words", "x" * 129, 5])
def test_a_bad_owner_is_a_422_naming_it(world, owner):  # noqa: ANN001
    event = rest_event("PUT", "/workers/w-other/owner", body={"owner": owner}, claims=CLAIMS["admin"])
    response = api_app.handler(event, FakeLambdaContext("api"))
    assert response["statusCode"] == 422 and json.loads(response["body"])["field"] == "owner"


# --- the rule itself ---


def test_teams_come_from_team_groups_only():
    assert teams_of(["operator", "team-ccna", "Team-CCNP", "team-", "teams-x"]) == {"ccna", "ccnp"}


@pytest.mark.parametrize(
    ("scoping", "role", "scoped"),
    [
        ("off", "operator", False),
        ("off", "viewer", False),
        ("operators", "operator", True),
        ("operators", "viewer", False),
        ("operators_and_viewers", "viewer", True),
        ("operators_and_viewers", "admin", False),
        ("operators_and_viewers", None, True),
    ],
)
def test_who_is_scoped(scoping, role, scoped):  # noqa: ANN001
    scope = scope_for(Caller.of(role, ["a@x"]), scoping=scoping, team_tag_key="Team")
    assert scope.everything is not scoped


def test_scope_survives_its_encoding_and_a_broken_one_allows_nothing():
    scope = scope_for(Caller.of("operator", ["A@x"], ["ccna"]), scoping="operators", team_tag_key="Course")
    again = Scope.decode(scope.encode())
    assert again == scope and again.allows("a@X", {}) and again.allows(None, {"Course": "CCNA"})
    assert not again.allows(None, {"Team": "ccna"}) and not again.allows("b@x", None)
    assert Scope.decode("not json").allows("a@x", {"Course": "ccna"}) is False
    assert Scope.decode(None).everything


def test_savings_rows_are_the_callers_workers(world):  # noqa: ANN001
    event = rest_event("GET", "/savings", claims=CLAIMS["operator"])
    response = api_app.handler(event, FakeLambdaContext("api"))
    assert response["statusCode"] == 200
    rows = {r["worker_id"] for r in json.loads(response["body"])["workers"]}
    assert rows == {"w-own-operator", "w-team"}
    event = rest_event("GET", "/savings", claims=CLAIMS["admin"])
    admin = json.loads(api_app.handler(event, FakeLambdaContext("api"))["body"])
    assert {r["worker_id"] for r in admin["workers"]} == {
        "w-own-admin", "w-own-operator", "w-own-viewer", "w-team", "w-other"
    }  # fmt: skip
