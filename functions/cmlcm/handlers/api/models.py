"""API request and response models (the API's own; mapped explicitly from the domain)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cmlcm.domain.jobs import MetricSample
from cmlcm.domain.settings import Settings, check_ami_id, check_instance_type
from cmlcm.domain.workers import (
    ServiceStatus,
    Worker,
    WorkerError,
    WorkerMetrics,
    WorkerStatus,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")


def check_tags(tags: dict[str, str | None]) -> dict[str, str | None]:
    """EC2's tag rules, checked before anything is sent."""
    if len(tags) > 40:
        raise ValueError("at most 40 tags per request")
    for key, value in tags.items():
        if not _TAG_KEY.match(key) or key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r} is not a valid EC2 tag key")
        if value is not None and len(value) > 256:
            raise ValueError(f"tag {key!r}: value longer than 256 characters")
    return tags


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LicenceView(ApiModel):
    registration_status: str | None
    authorization_status: str | None
    expires: str | None
    operation: str
    operation_state: str | None
    operation_reason: str | None
    operation_started_at: datetime | None


class WorkerView(ApiModel):
    """The one outward shape of a worker: API responses, dashboard snapshots and events."""

    worker_id: str
    name: str
    region: str
    instance_id: str | None
    instance_type: str | None
    ami_id: str | None
    ami_name: str | None
    owner: str | None
    tags: dict[str, str]
    status: WorkerStatus
    status_reason: str | None
    service_status: ServiceStatus
    ec2_state: str | None
    public_ip: str | None
    private_ip: str | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    idle_detection_enabled: bool
    detailed_monitoring: bool
    pause_count: int
    resume_count: int
    last_pause_reason: str | None
    last_paused_at: datetime | None
    last_resumed_at: datetime | None
    metrics: WorkerMetrics | None
    licence: LicenceView | None
    last_error: WorkerError | None
    version: int

    @classmethod
    def of(cls, worker: Worker) -> WorkerView:
        """Explicit mapping: the licence token's secret reference never leaves the domain."""
        data = worker.model_dump(exclude={"licence"})
        licence = None
        if worker.licence is not None:
            licence = LicenceView(**worker.licence.model_dump(exclude={"token_secret_ref", "operation_deadline"}))
        return cls(**data, licence=licence)


def view_of(worker: Worker) -> dict:
    """JSON-ready dict of `WorkerView.of(worker)`."""
    return WorkerView.of(worker).model_dump(mode="json")


class WorkerPage(ApiModel):
    items: list[WorkerView]
    next_token: str | None = Field(description="Pass back as next_token for the next page; null on the last")


class ErrorBody(ApiModel):
    error: str
    message: str
    field: str | None = None


class TagsUpdate(ApiModel):
    """`merge`: the given keys are set, keys given as null are removed, others kept.
    `replace`: the worker's user tags become exactly the given ones (nulls ignored).
    The reserved tags ManagedBy and WorkerId are never changed."""

    tags: dict[str, str | None] = Field(description="Tag key → value (null removes, with merge)")
    mode: Literal["merge", "replace"] = "merge"

    @field_validator("tags")
    @classmethod
    def _keys(cls, tags: dict[str, str | None]) -> dict[str, str | None]:
        return check_tags(tags)


class IdleDetectionUpdate(ApiModel):
    enabled: bool


class PauseRequest(ApiModel):
    reason: str = Field(default="paused by operator", min_length=1, max_length=200)


class CreateWorkerRequest(ApiModel):
    name: str = Field(description="Unique worker name: letters, digits, . _ -, at most 63")
    region: str
    instance_type: str | None = Field(default=None, description="Defaults to the region's setting")
    ami_id: str | None = Field(default=None, description="Defaults to the region's setting")
    owner: str | None = Field(default=None, max_length=128)
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str | None) -> str | None:
        return value if value is None else check_instance_type(value)

    @field_validator("ami_id")
    @classmethod
    def _ami(cls, value: str | None) -> str | None:
        return check_ami_id(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        return check_tags(tags)  # type: ignore[return-value]


class ImportWorkersRequest(ApiModel):
    """Exactly one of `instance_id` (one instance) or `ami_name_pattern` (every match)."""

    region: str
    instance_id: str | None = Field(default=None, pattern=r"^i-[0-9a-f]{8,17}$")
    ami_name_pattern: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _one_of(self) -> ImportWorkersRequest:
        if (self.instance_id is None) == (self.ami_name_pattern is None):
            raise ValueError("give exactly one of instance_id or ami_name_pattern")
        return self


class CreatedWorker(ApiModel):
    worker: WorkerView
    execution_arn: str | None = Field(description="The provisioning saga's execution (null on a replay)")
    replayed: bool = Field(description="True when this answers a repeated Idempotency-Key")


class ImportResult(ApiModel):
    imported: list[WorkerView]
    skipped: list[dict[str, str]] = Field(description="instance_id and reason for each instance not imported")


class MetricSeries(ApiModel):
    worker_id: str
    samples: list[MetricSample]


class SettingsBody(Settings):
    """PUT /settings body: the whole document. `version` (from GET) guards against lost edits;
    omit it to overwrite whatever is stored."""

    version: int | None = None  # type: ignore[assignment]
