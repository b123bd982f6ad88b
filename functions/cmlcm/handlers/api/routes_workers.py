"""Worker routes. Each body: parse (done by the resolver), call one service, return a view."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Query

from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.errors import ValidationFailed
from cmlcm.domain.workers import ChangeCause, WorkerStatus
from cmlcm.handlers.api import deps
from cmlcm.handlers.api.auth import Role, caller_name, requires, user_cause
from cmlcm.handlers.api.models import (
    CreatedWorker,
    CreateWorkerRequest,
    IdleDetectionUpdate,
    ImportResult,
    ImportWorkersRequest,
    MetricSeries,
    OwnerUpdate,
    PauseRequest,
    ResumeRequest,
    TagsUpdate,
    WorkerDeleted,
    WorkerPage,
    WorkerView,
    view_of,
)
from cmlcm.ports import CollectPorts, ProvisionPorts, WorkerPorts, WorkerQuery
from cmlcm.services import collect, provisioning, scoping
from cmlcm.services import workers as svc

router = Router()
PortsT = TypeVar("PortsT")
logger = Logger(child=True)
VIEWER, OPERATOR, ADMIN = requires(Role.VIEWER), requires(Role.OPERATOR), requires(Role.ADMIN)

#: Largest page of GET /workers: a 1000-worker fleet in one request (the dashboard's fleet view).
#: DynamoDB still reads it in 1 MB pages; 1000 views are about 1.2 MB of JSON (6 MB is Lambda's limit).
MAX_PAGE = 1000

#: Query booleans are exactly `true` or `false`: `1`, `yes` or `on` are refused (422), not guessed.
QueryBool = Literal["true", "false"]

#: Metric samples expire after this (the deployment's METRICS_SAMPLE_TTL_HOURS): asking for
#: more hours than are kept is a 422, not a silently shorter series.
RETENTION_HOURS = get_config().metrics_sample_ttl_hours


def _check_region(region: str | None) -> None:
    if region is not None and region not in get_config().regions:
        raise ValidationFailed(f"region is not supported; use one of {', '.join(get_config().regions)}", field="region")


def _scoped(bundle: type[PortsT]) -> PortsT:
    """The ports as this caller may see them (per-user scoping, enforced by the services'
    repository view: an out-of-scope worker is a 404)."""
    return scoping.scoped(current().ports(bundle), deps.scope(router.current_event.raw_event))


def _ports() -> WorkerPorts:
    return _scoped(WorkerPorts)


def _cause() -> ChangeCause:
    """This request's caller, recorded on the worker it changes (live events show who did it)."""
    return user_cause(router.current_event.raw_event)


@router.get("/workers", middlewares=[VIEWER], summary="List workers (paginated)")
def list_workers(
    status: Annotated[WorkerStatus | None, Query()] = None,
    region: Annotated[str | None, Query()] = None,
    include_terminated: Annotated[QueryBool, Query()] = "false",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> WorkerPage:
    _check_region(region)
    query = WorkerQuery(status, region, include_terminated == "true", limit, next_token)
    page = svc.list_workers(_ports().workers, query)
    return WorkerPage(items=[WorkerView.of(w) for w in page.items], next_token=page.next_token)


@router.get("/workers/<worker_id>", middlewares=[VIEWER], summary="Get a worker by id or instance id")
def get_worker(worker_id: str) -> WorkerView:
    return WorkerView.of(svc.get_worker(_ports().workers, worker_id))


@router.post("/workers", middlewares=[ADMIN], summary="Create a worker (starts the provisioning saga)")
def create_worker(
    body: CreateWorkerRequest,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=8, max_length=128)] = None,
) -> Response[CreatedWorker]:
    """202 with the PENDING worker and the saga's execution; a replay of the same
    Idempotency-Key returns the same worker (200) and never creates a second one."""
    _check_region(body.region)
    request = body.command(default_owner=caller_name(router.current_event.raw_event))
    c = current()
    created = provisioning.create_worker(
        c.ports(ProvisionPorts), request, worker_id=c.new_worker_id(), idempotency_key=idempotency_key, now=c.now()
    )
    status = 200 if created.replayed else 202
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=CreatedWorker.of(created))


@router.post("/workers/import", middlewares=[ADMIN], summary="Import existing instances")
def import_workers(body: ImportWorkersRequest) -> ImportResult:
    """One instance by id, or every live instance of AMIs matching a name pattern."""
    _check_region(body.region)
    report = provisioning.import_instances(
        current().ports(ProvisionPorts),
        region=body.region,
        instance_id=body.instance_id,
        ami_name_pattern=body.ami_name_pattern,
        now=current().now(),
        name=body.name,
        owner=caller_name(router.current_event.raw_event),
    )
    return ImportResult(imported=[WorkerView.of(w) for w in report.imported], skipped=report.skipped)


@router.post("/workers/<worker_id>/start", middlewares=[OPERATOR], summary="Start a stopped worker")
def start_worker(worker_id: str) -> WorkerView:
    return WorkerView.of(svc.start_worker(_ports(), worker_id, current().now(), _cause()))


@router.post("/workers/<worker_id>/stop", middlewares=[OPERATOR], summary="Stop a running worker")
def stop_worker(worker_id: str) -> WorkerView:
    return WorkerView.of(svc.stop_worker(_ports(), worker_id, current().now(), _cause()))


@router.post("/workers/<worker_id>/pause", middlewares=[OPERATOR], summary="Pause (stop, counted, with reason)")
def pause_worker(worker_id: str, body: PauseRequest | None = None) -> WorkerView:
    reason = (body or PauseRequest()).reason
    return WorkerView.of(svc.pause_worker(_ports(), worker_id, current().now(), reason, _cause()))


@router.post("/workers/<worker_id>/resume", middlewares=[OPERATOR], summary="Resume a paused worker")
def resume_worker(worker_id: str, body: ResumeRequest | None = None) -> WorkerView:
    """Counted as a manual resume (with `was_auto_paused`); the policies are snoozed for the
    settings' `snooze_after_resume_minutes`."""
    reason = (body or ResumeRequest()).reason
    return WorkerView.of(svc.resume_worker(_ports(), worker_id, current().now(), _cause(), reason))


@router.post("/workers/<worker_id>/terminate", middlewares=[ADMIN], summary="Terminate the instance")
def terminate_worker(worker_id: str) -> WorkerView:
    return WorkerView.of(svc.terminate_worker(_ports(), worker_id, current().now(), _cause()))


@router.delete("/workers/<worker_id>", middlewares=[ADMIN], summary="Delete the record")
def delete_worker(worker_id: str, terminate_instance: Annotated[QueryBool, Query()] = "true") -> WorkerDeleted:
    """`terminate_instance=true` (default) terminates the instance first; `false` releases it
    (removes the ManagedBy/WorkerId tags) and keeps it running outside the product; the worker's
    lab rows and licence token secret are forgotten. The answer says what happened to the
    instance, with the record as it was."""
    deletion = svc.delete_worker(
        _ports(), worker_id, terminate_instance=terminate_instance == "true", now=current().now()
    )
    if deletion.left:
        logger.warning(
            "worker deleted; some of its data was left behind", worker_id=deletion.worker_id, left=deletion.left
        )
    return WorkerDeleted.of(deletion)


@router.post("/workers/<worker_id>/refresh", middlewares=[OPERATOR], summary="Collect this worker now")
def refresh_worker(worker_id: str) -> WorkerView:
    """Same collection as the schedule, for one worker; 429 with Retry-After when repeated
    within the settings' refresh_min_interval_seconds."""
    refreshed = collect.refresh_worker(_scoped(CollectPorts), current().refresh_limiter, worker_id, now=current().now())
    return WorkerView.of(refreshed)


@router.get("/workers/<worker_id>/metrics", middlewares=[VIEWER], summary="The worker's recent time series")
def worker_metrics(
    worker_id: str, hours: Annotated[int, Query(ge=1, le=RETENTION_HOURS)] = min(6, RETENTION_HOURS)
) -> MetricSeries:
    """CPU, memory, running labs and nodes per collection, kept for METRICS_SAMPLE_TTL_HOURS
    (more `hours` than that is a 422 naming `hours`)."""
    worker, samples = svc.worker_samples(_ports(), worker_id, since=current().now() - timedelta(hours=hours))
    return MetricSeries(worker_id=worker.worker_id, samples=samples)


@router.put("/workers/<worker_id>/tags", middlewares=[ADMIN], summary="Edit tags (merge or replace)")
def update_tags(worker_id: str, body: TagsUpdate) -> WorkerView:
    return WorkerView.of(svc.update_tags(_ports(), worker_id, body.tags, body.mode, current().now(), _cause()))


@router.put("/workers/<worker_id>/idle-detection", middlewares=[ADMIN], summary="Toggle idle detection")
def set_idle_detection(worker_id: str, body: IdleDetectionUpdate) -> WorkerView:
    return WorkerView.of(svc.set_idle_detection(_ports(), worker_id, body.enabled, current().now(), _cause()))


@router.put("/workers/<worker_id>/owner", middlewares=[ADMIN], summary="Set or clear the worker's owner")
def set_owner(worker_id: str, body: OwnerUpdate) -> WorkerView:
    """`{"owner": "<e-mail or user name>"}`, or null to clear it (per-user scoping reads it)."""
    return WorkerView.of(svc.set_owner(_ports(), worker_id, body.owner, current().now(), _cause()))


@router.post("/workers/<worker_id>/monitoring", middlewares=[ADMIN], summary="Enable detailed monitoring")
def enable_monitoring(worker_id: str) -> WorkerView:
    return WorkerView.of(svc.enable_detailed_monitoring(_ports(), worker_id, current().now(), _cause()))


__all__ = ["router", "view_of"]
