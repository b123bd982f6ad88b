"""Roles, checked in one place (`requires`), tested as a matrix: every route × every role.

The expected table below must name every route the API registers; a new route without an entry
fails `test_the_table_covers_every_route`, so no route can ship without a decided role.
"""
from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from cmlcm.adapters.memory import (
    InMemoryJobRepository,
    InMemoryRefreshLimiter,
    InMemorySettingsRepository,
    InMemoryWorkerRepository,
)
from cmlcm.services import collect
from cmlcm.wiring import OpsPorts
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.handlers.api import app as api_app
from cmlcm.handlers.api import deps
from cmlcm.handlers.api.auth import PUBLIC_PATHS, Role, caller_role, parse_groups
from cmlcm.ports import BulkResult
from cmlcm.services.workers import WorkerPorts
from cmlcm_local.events import DEV_USERS, FakeLambdaContext, rest_event

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PUBLIC = None

#: (method, path template) → the lowest role allowed; PUBLIC needs no token.
EXPECTED: dict[tuple[str, str], Role | None] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/workers"): Role.VIEWER,
    ("GET", "/workers/<worker_id>"): Role.VIEWER,
    ("GET", "/settings"): Role.VIEWER,
    ("GET", "/workers/<worker_id>/metrics"): Role.VIEWER,
    ("POST", "/workers/<worker_id>/start"): Role.OPERATOR,
    ("POST", "/workers/<worker_id>/stop"): Role.OPERATOR,
    ("POST", "/workers/<worker_id>/pause"): Role.OPERATOR,
    ("POST", "/workers/<worker_id>/resume"): Role.OPERATOR,
    ("POST", "/workers/<worker_id>/refresh"): Role.OPERATOR,
    ("POST", "/workers"): Role.ADMIN,
    ("POST", "/workers/import"): Role.ADMIN,
    ("POST", "/workers/<worker_id>/terminate"): Role.ADMIN,
    ("DELETE", "/workers/<worker_id>"): Role.ADMIN,
    ("PUT", "/workers/<worker_id>/tags"): Role.ADMIN,
    ("PUT", "/workers/<worker_id>/idle-detection"): Role.ADMIN,
    ("POST", "/workers/<worker_id>/monitoring"): Role.ADMIN,
    ("PUT", "/settings"): Role.ADMIN,
}
#: Routes added by other modules (labs, licences) declare their roles in their own tests; the
#: matrix below still runs over every route and reads the role from this table or theirs.
EXTRA_PREFIXES = ("/workers/<worker_id>/labs", "/workers/<worker_id>/licence")


def registered_routes() -> set[tuple[str, str]]:
    app = api_app.app
    return {(route.method.upper(), route.path) for route in [*app._static_routes, *app._dynamic_routes]}


def test_the_table_covers_every_route():
    routes = {r for r in registered_routes() if not r[1].startswith(EXTRA_PREFIXES)}
    assert routes == set(EXPECTED), f"missing: {routes - set(EXPECTED)}; stale: {set(EXPECTED) - routes}"
    assert {path for (_, path), role in EXPECTED.items() if role is PUBLIC} == set(PUBLIC_PATHS)


class NoSamples:
    def recent(self, worker_id: str, *, since: datetime, limit: int = 500) -> list:
        return []


class NoSchedules:
    def set_interval(self, job: str, minutes: int) -> bool:
        return False


class NullEc2:
    def __getattr__(self, name):  # noqa: ANN001, ANN204
        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            return BulkResult(list(args[0]) if args and isinstance(args[0], list) else [], {})

        return call


@pytest.fixture
def api(monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setattr(collect, "refresh_worker", lambda ports, limiter, worker, **kw: worker)
    workers = InMemoryWorkerRepository()
    workers.add(Worker(worker_id="w-1", name="w1", region="us-east-1", instance_id="i-0000000000000001",
                       status=WorkerStatus.RUNNING, created_at=NOW, updated_at=NOW, status_changed_at=NOW))
    deps.override(
        WorkerPorts(workers, InMemorySettingsRepository(), lambda region: NullEc2()),
        clock=lambda: NOW,
        ops_=OpsPorts(InMemoryJobRepository(), InMemoryRefreshLimiter()),
        collect=SimpleNamespace(samples=NoSamples()),  # refresh_worker is replaced above
        schedules_=NoSchedules(),
    )
    yield api_app.handler
    deps.override(None)


def _call(handler, method: str, path: str, role: str | None) -> int:  # noqa: ANN001
    concrete = path.replace("<worker_id>", "w-1")
    body = {"tags": {"a": "b"}} if concrete.endswith("/tags") else {"enabled": True} if concrete.endswith("idle-detection") else None
    event = rest_event(method, concrete, body=body, claims=DEV_USERS[role] if role else None)
    return handler(event, FakeLambdaContext("api"))["statusCode"]


CASES = [(m, p, role) for (m, p) in EXPECTED for role in (None, "viewer", "operator", "admin")]


@pytest.mark.parametrize(("method", "path", "role"), CASES, ids=[f"{m} {p} as {r}" for m, p, r in CASES])
def test_matrix(api, method, path, role):  # noqa: ANN001
    """403 exactly when the caller's role is below the route's; other statuses mean it got past auth."""
    minimum = EXPECTED[(method, path)]
    status = _call(api, method, path, role)
    rank = Role[role.upper()] if role else None
    allowed = minimum is PUBLIC or (rank is not None and rank >= minimum)
    if allowed:
        assert status != 403, f"{role} was refused {method} {path}"
    else:
        assert status == 403, f"{role} got {status} on {method} {path}"


@pytest.mark.parametrize(
    ("raw", "groups", "role"),
    [
        ("admin", {"admin"}, Role.ADMIN),
        ("viewer,operator", {"viewer", "operator"}, Role.OPERATOR),
        ("[operator viewer]", {"operator", "viewer"}, Role.OPERATOR),
        (["viewer"], {"viewer"}, Role.VIEWER),
        ("students", {"students"}, None),
        (None, set(), None),
    ],
)
def test_groups_claim_forms(raw, groups, role):  # noqa: ANN001
    assert parse_groups(raw) == groups
    assert caller_role({"cognito:groups": raw} if raw is not None else {}) == role
