"""Lab and licence routes of a worker. Each body: parse (done by the resolver), call one service,
return a view. Viewers read labs from the table; operators act on labs through CML; admins
register and deregister licences. The licence token is accepted here and never shown again."""

from __future__ import annotations

import binascii
import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field, SecretStr, StrictBool, field_validator

from cmlcm.container import current
from cmlcm.domain.cml import LabGroup
from cmlcm.domain.errors import ValidationFailed
from cmlcm.domain.labs import Lab, LabStateChange
from cmlcm.domain.workers import Licence, Worker
from cmlcm.handlers.api import deps
from cmlcm.handlers.api.auth import Role, requires
from cmlcm.handlers.api.models import ApiModel, LicenceView, WorkerView
from cmlcm.ports import LabPorts, LicencePorts
from cmlcm.services import labs as svc
from cmlcm.services import licences, scoping

router = Router()
VIEWER, OPERATOR, ADMIN = requires(Role.VIEWER), requires(Role.OPERATOR), requires(Role.ADMIN)

YAML_CONTENT_TYPE = "application/x-yaml"
#: CML's own rule for registration tokens (`LicensingRegistration.token`).
_TOKEN = re.compile(r"^[a-zA-Z\d+/%=-]{1,256}$")


class LabView(ApiModel):
    """One lab of a worker, as last synced from its CML controller."""

    worker_id: str
    lab_id: str
    title: str
    state: str = Field(description="CML's lab state: DEFINED_ON_CORE, STOPPED or STARTED")
    owner: str | None = Field(description="The owner's username")
    owner_fullname: str | None = Field(default=None, description="The owner's full name")
    description: str = Field(default="", description="CML's lab description")
    notes: str = Field(default="", description="CML's lab notes (Markdown)")
    groups: list[LabGroup] = Field(default_factory=list, description="Groups the lab is shared with")
    node_count: int
    link_count: int
    created: datetime | None
    modified: datetime | None
    state_history: list[LabStateChange] = Field(
        default_factory=list,
        description="The states the product saw, oldest first (at most 20), each with when it was first seen "
        "(a collection or a sync: within one collection interval of the change)",
    )
    synced_at: datetime = Field(description="When this row was last written from CML")

    @classmethod
    def of(cls, lab: Lab) -> LabView:
        return cls(**lab.model_dump())


class LabList(ApiModel):
    worker_id: str
    items: list[LabView]


class LabRefresh(LabList):
    added: int
    changed: int
    unchanged: int
    deleted: int


class LicenceRegistration(ApiModel):
    """The Smart Licensing token is stored as a secret and sent to CML; it is never returned."""

    token: SecretStr = Field(
        description="Smart Licensing registration token",
        json_schema_extra={"pattern": _TOKEN.pattern, "minLength": 1, "maxLength": 256},
    )
    reregister: StrictBool = False

    @field_validator("token")
    @classmethod
    def _token(cls, token: SecretStr) -> SecretStr:
        # The message must not quote the value: it is a credential.
        if not _TOKEN.match(token.get_secret_value()):
            raise ValueError("must be 1-256 characters of letters, digits, '+', '/', '%', '=' or '-'")
        return token


def _licence_view(worker: Worker) -> LicenceView:
    """The worker's licence through the one worker mapping (an unknown licence shows as empty)."""
    known = worker if worker.licence is not None else worker.model_copy(update={"licence": Licence()})
    return WorkerView.of(known).licence  # type: ignore[return-value]  # known has a licence, so the view's is set


def _labs() -> LabPorts:
    """The lab ports as this caller may see them (per-user scoping: out of scope is a 404)."""
    return scoping.scoped(current().ports(LabPorts), deps.scope(router.current_event.raw_event))


def _licences() -> LicencePorts:
    return scoping.scoped(current().ports(LicencePorts), deps.scope(router.current_event.raw_event))


def _raw_body() -> str:
    """The request body as text, whatever its Content-Type (CML's /import takes raw YAML too)."""
    try:
        return router.current_event.decoded_body or ""
    except (UnicodeDecodeError, binascii.Error, ValueError):
        raise ValidationFailed("body is not UTF-8 text", field="body") from None


@router.get("/workers/<worker_id>/labs", middlewares=[VIEWER], summary="List a worker's labs (as last synced)")
def list_labs(worker_id: str) -> LabList:
    worker, labs = svc.list_labs(_labs(), worker_id)
    return LabList(worker_id=worker.worker_id, items=[LabView.of(lab) for lab in labs])


@router.post("/workers/<worker_id>/labs/refresh", middlewares=[OPERATOR], summary="Sync a worker's labs from CML now")
def refresh_labs(worker_id: str) -> LabRefresh:
    """New and changed labs are written, unchanged ones left alone, labs gone from CML removed."""
    worker, result = svc.refresh_labs(_labs(), worker_id, now=current().now())
    return LabRefresh(
        worker_id=worker.worker_id,
        items=[LabView.of(lab) for lab in result.labs],
        added=result.added,
        changed=result.changed,
        unchanged=result.unchanged,
        deleted=result.deleted,
    )


@router.post("/workers/<worker_id>/labs/import", middlewares=[OPERATOR], summary="Import a lab from YAML")
def import_lab(worker_id: str, title: Annotated[str | None, Query(min_length=1, max_length=64)] = None) -> LabView:
    """The request body is the lab's YAML (any Content-Type), at most 1 MiB; bad YAML is a 422
    naming `body` and never reaches CML. `title` overrides the topology's own title."""
    lab = svc.import_lab(_labs(), worker_id, _raw_body(), title=title, now=current().now())
    return LabView.of(lab)


def _act(worker_id: str, lab_id: UUID, action: svc.LabAction) -> LabView:
    return LabView.of(svc.lab_action(_labs(), worker_id, str(lab_id), action, now=current().now()))


@router.put("/workers/<worker_id>/labs/<lab_id>/start", middlewares=[OPERATOR], summary="Start a lab")
def start_lab(worker_id: str, lab_id: UUID) -> LabView:
    return _act(worker_id, lab_id, "start")


@router.put("/workers/<worker_id>/labs/<lab_id>/stop", middlewares=[OPERATOR], summary="Stop a lab")
def stop_lab(worker_id: str, lab_id: UUID) -> LabView:
    return _act(worker_id, lab_id, "stop")


@router.put("/workers/<worker_id>/labs/<lab_id>/wipe", middlewares=[OPERATOR], summary="Wipe a stopped lab")
def wipe_lab(worker_id: str, lab_id: UUID) -> LabView:
    return _act(worker_id, lab_id, "wipe")


@router.delete("/workers/<worker_id>/labs/<lab_id>", middlewares=[OPERATOR], summary="Delete a stopped, wiped lab")
def delete_lab(worker_id: str, lab_id: UUID) -> Response[None]:
    svc.delete_lab(_labs(), worker_id, str(lab_id))
    return Response(status_code=204)


@router.get("/workers/<worker_id>/labs/<lab_id>/download", middlewares=[VIEWER], summary="Download a lab's YAML")
def download_lab(worker_id: str, lab_id: UUID) -> Response[str]:
    text = svc.download_lab(_labs(), worker_id, str(lab_id))
    filename = str(lab_id)
    return Response(
        status_code=200,
        content_type=YAML_CONTENT_TYPE,
        body=text,
        headers={"Content-Disposition": f'attachment; filename="{filename}.yaml"'},
    )


@router.get(
    "/workers/<worker_id>/licence", middlewares=[VIEWER], summary="A worker's licence and registration progress"
)
def get_licence(worker_id: str) -> LicenceView:
    """A pending registration is polled from CML first (completed, failed, or timed out)."""
    return _licence_view(licences.get_licence(_licences(), worker_id, now=current().now()))


@router.post("/workers/<worker_id>/licence", middlewares=[ADMIN], summary="Register the worker's CML licence")
def register_licence(worker_id: str, body: LicenceRegistration) -> Response[WorkerView]:
    """202: registration runs in the background on CML; follow it with GET .../licence."""
    worker = licences.register_licence(
        _licences(), worker_id, body.token.get_secret_value(), reregister=body.reregister, now=current().now()
    )
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=WorkerView.of(worker))


@router.delete("/workers/<worker_id>/licence", middlewares=[ADMIN], summary="Deregister the worker's CML licence")
def deregister_licence(worker_id: str) -> WorkerView:
    """409 when CML has nothing to release; `local_only` when Cisco's side was not told."""
    return WorkerView.of(licences.deregister_licence(_licences(), worker_id, now=current().now()))


__all__ = ["router"]
