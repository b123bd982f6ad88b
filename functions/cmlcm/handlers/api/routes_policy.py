"""Fleet policy routes: schedules (admin writes, all read), a worker's policy status, savings."""

from __future__ import annotations

import re

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from cmlcm.container import current
from cmlcm.domain.errors import NotFound
from cmlcm.domain.policy import WorkerPolicy
from cmlcm.domain.schedules import SCHEDULE_NAME_PATTERN
from cmlcm.handlers.api import deps
from cmlcm.handlers.api.auth import Role, requires
from cmlcm.handlers.api.policy_models import (
    OverrideRequest,
    SavingsView,
    ScheduleCreate,
    ScheduleList,
    ScheduleReplace,
    ScheduleView,
    WorkerSavingsRow,
)
from cmlcm.ports import PolicyPorts, WorkerPorts
from cmlcm.services import policy, schedules, scoping
from cmlcm.services import workers as worker_svc

router = Router()
VIEWER, ADMIN = requires(Role.VIEWER), requires(Role.ADMIN)
_NAME = re.compile(SCHEDULE_NAME_PATTERN)


def _name(name: str) -> str:
    """A name that cannot be a schedule's is simply not one (404, never echoed back)."""
    if not _NAME.match(name):
        raise NotFound("no schedule by that name (names are lower-case letters, digits and -)", field="name")
    return name


def _view(report: schedules.ScheduleReport) -> ScheduleView:
    return ScheduleView.of(report.schedule, report.state, report.worker_ids)


@router.get("/workers/<worker_id>/policy", middlewares=[VIEWER], summary="Why the policies (do not) stop a worker")
def worker_policy(worker_id: str) -> WorkerPolicy:
    """Idle status (eligible or not and why, last activity and its source, pause time, snooze),
    its schedule (what it wants now and next), the next automatic stop, and the hours and money
    the policies saved on it."""
    # Per-user scoping: a worker out of the caller's scope is a 404, as on every worker route.
    scoped = scoping.scoped(current().ports(WorkerPorts), deps.scope(router.current_event.raw_event))
    worker = worker_svc.get_worker(scoped.workers, worker_id)
    return policy.explain_worker(current().ports(PolicyPorts), worker, now=current().now())


@router.get("/savings", middlewares=[VIEWER], summary="Hours and money saved by the policies")
def savings() -> SavingsView:
    """Per worker (most hours first) and for the fleet: hours stopped by the idle policy and by
    schedules, and the on-demand price avoided (settings' on_demand_prices)."""
    report = policy.savings_report(current().ports(PolicyPorts), now=current().now())
    # Per-user scoping: a scoped caller's rows are its own workers (the fleet totals stay whole).
    scope = deps.scope(router.current_event.raw_event)
    rows = [WorkerSavingsRow.of(w, s) for w, s in report.workers if scope.allows(w.owner, w.tags)]
    return SavingsView(fleet=report.fleet, workers=rows)


@router.get("/schedules", middlewares=[VIEWER], summary="List schedules (office hours)")
def list_schedules() -> ScheduleList:
    ports = current().ports(PolicyPorts)
    reports = schedules.list_schedules(current().schedules, ports.workers, now=current().now())
    return ScheduleList(items=[_view(r) for r in reports])


@router.post("/schedules", middlewares=[ADMIN], summary="Create a schedule")
def create_schedule(body: ScheduleCreate) -> Response[ScheduleView]:
    ports = current().ports(PolicyPorts)
    now = current().now()
    created = schedules.create_schedule(current().schedules, body.to_domain(body.name), now=now)
    report = schedules.get_schedule(current().schedules, ports.workers, created.name, now=now)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=_view(report))


@router.get("/schedules/<name>", middlewares=[VIEWER], summary="A schedule, what it wants now and who follows it")
def get_schedule(name: str) -> ScheduleView:
    ports = current().ports(PolicyPorts)
    return _view(schedules.get_schedule(current().schedules, ports.workers, _name(name), now=current().now()))


@router.put("/schedules/<name>", middlewares=[ADMIN], summary="Replace a schedule (version-guarded)")
def replace_schedule(name: str, body: ScheduleReplace) -> ScheduleView:
    ports = current().ports(PolicyPorts)
    now = current().now()
    saved = schedules.replace_schedule(
        current().schedules,
        body.to_domain(_name(name)),
        version=body.version,
        now=now,
    )
    return _view(schedules.get_schedule(current().schedules, ports.workers, saved.name, now=now))


@router.delete("/schedules/<name>", middlewares=[ADMIN], summary="Delete a schedule")
def delete_schedule(name: str) -> Response[None]:
    schedules.delete_schedule(current().schedules, _name(name))
    return Response(status_code=204)


@router.post("/schedules/<name>/overrides", middlewares=[ADMIN], summary="Override a schedule for a while")
def add_override(name: str, body: OverrideRequest) -> ScheduleView:
    """E.g. keep running until 20:00 today: `{"state": "running", "until": "20:00"}` (for some
    workers only with `worker_ids`). Expired overrides are dropped."""
    c = current()
    report = schedules.add_override(
        c.schedules,
        c.workers,
        _name(name),
        state=body.state,
        until=body.until_value(),
        worker_ids=tuple(body.worker_ids),
        note=body.note,
        now=c.now(),
    )
    return _view(report)
