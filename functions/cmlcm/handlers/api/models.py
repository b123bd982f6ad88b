"""API request and response models (the API's own; mapped explicitly from the domain)."""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model, field_validator, model_validator
from pydantic_core import PydanticUndefined

from cmlcm.domain.cml import CmlSystem
from cmlcm.domain.jobs import MetricSample
from cmlcm.domain.settings import RegionDefaults, Settings, check_ami_id, check_instance_type
from cmlcm.domain.workers import (
    RESERVED_TAGS,
    ChangeCause,
    LicenceSummary,
    MetricsSummary,
    ScheduleMark,
    ServiceStatus,
    Worker,
    WorkerError,
    WorkerMetrics,
    WorkerStatus,
    WorkerSummary,
)
from cmlcm.services.provisioning import Created, CreateWorker
from cmlcm.services.workers import Deletion

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
_CML_VERSION = re.compile(r"^\d{1,3}(\.\d{1,3}){0,3}$")
_AMI_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_*?]{1,128}$")

#: The tag rules of `check_tags` as JSON Schema, so the document says what is accepted (the
#: lookahead refuses the `aws:` prefix, any case).
#: Tag maps with or without null values (a null removes the tag in a merge).
TagsT = TypeVar("TagsT", dict[str, str], dict[str, str | None])

TAG_KEYS_SCHEMA = {"pattern": r"^(?![aA][wW][sS]:)[\w .:/=+\-@]{1,128}$"}


def _tags_schema(*, reserved_refused: bool) -> dict[str, Any]:
    keys: dict[str, Any] = dict(TAG_KEYS_SCHEMA)
    if reserved_refused:
        keys["not"] = {"enum": sorted(RESERVED_TAGS)}
    return {"propertyNames": keys, "maxProperties": 40}


def check_tags(tags: TagsT) -> TagsT:
    """EC2's tag rules, checked before anything is sent."""
    if len(tags) > 40:
        raise ValueError("at most 40 tags per request")
    for key, value in tags.items():
        if not _TAG_KEY.match(key) or key.lower().startswith("aws:"):
            raise ValueError(
                "a tag key is not a valid EC2 tag key (1-128 of letters, digits, space, _ . : / = + - @; no aws:)"
            )
        if value is not None and len(value) > 256:
            raise ValueError("a tag value is longer than 256 characters")
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
    ami_description: str | None = None
    ami_created_at: datetime | None = None
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
    pause_count: int = Field(description="Every pause: auto + manual + those made before they were told apart")
    resume_count: int
    auto_pause_count: int = Field(description="Pauses by a policy (idle or a schedule)")
    manual_pause_count: int = Field(description="Pauses by a user")
    auto_resume_count: int
    manual_resume_count: int
    last_pause_reason: str | None
    last_paused_at: datetime | None
    last_paused_by: str | None = Field(description="A user, 'idle policy' or 'schedule:<name>'")
    last_pause_auto: bool | None
    last_resumed_at: datetime | None
    last_resume_reason: str | None
    last_resumed_by: str | None
    last_resume_auto: bool | None
    was_auto_paused: bool | None = Field(description="On the last resume: whether the pause it undid was automatic")
    snoozed_until: datetime | None = Field(description="A user resumed or started it: no policy stops it before")
    policy_stopped_at: datetime | None = Field(description="Stopped by a policy since (null: not now)")
    policy_stopped_by: Literal["idle", "schedule"] | None
    idle_stopped_hours: float = Field(description="Hours the idle policy kept it stopped (ended stops)")
    schedule_stopped_hours: float = Field(description="Hours schedules kept it stopped (ended stops)")
    schedule_mark: ScheduleMark | None = Field(description="What its schedule last wanted and acted on")
    metrics: WorkerMetrics | None
    licence: LicenceView | None
    cml_system: CmlSystem | None = Field(
        default=None,
        description="The CML controller's slow-changing facts, read on their own cadence: system health with "
        "the compute table (health flags and capacity per compute host) and the licence detail (Smart and "
        "virtual account, UDI, product licence, features); null until first read",
    )
    last_error: WorkerError | None
    last_change: ChangeCause | None = Field(
        default=None, description="Who or what made the latest change: kind (user, saga, collector, ...) and by"
    )
    version: int

    @classmethod
    def of(cls, worker: Worker) -> WorkerView:
        """Explicit mapping: the licence token's secret reference never leaves the domain."""
        data = worker.model_dump(exclude={"licence"})
        licence = None
        if worker.licence is not None:
            licence = LicenceView(**worker.licence.model_dump(exclude={"token_secret_ref", "operation_deadline"}))
        return cls(**data, licence=licence)


def view_of(worker: Worker) -> dict[str, Any]:
    """JSON-ready dict of `WorkerView.of(worker)`."""
    return WorkerView.of(worker).model_dump(mode="json")


class WorkerSummaryView(ApiModel):
    """A worker as the fleet list shows it (the `fleet` topic's snapshot): a subset of
    `WorkerView`, each field with its name, type and value there, so a client may hold either
    and keep the newer by `version`."""

    worker_id: str
    name: str
    region: str
    instance_id: str | None
    instance_type: str | None
    owner: str | None
    tags: dict[str, str]
    status: WorkerStatus
    service_status: ServiceStatus
    status_changed_at: datetime
    idle_detection_enabled: bool
    snoozed_until: datetime | None
    policy_stopped_by: Literal["idle", "schedule"] | None
    metrics: MetricsSummary | None = Field(description="The readings the list shows (WorkerView.metrics' subset)")
    licence: LicenceSummary | None = Field(
        description="Registration or operation in flight (WorkerView.licence's subset)"
    )
    version: int

    @classmethod
    def of(cls, summary: WorkerSummary) -> WorkerSummaryView:
        return cls(**summary.model_dump())


def summary_view_of(summary: WorkerSummary) -> dict[str, Any]:
    """JSON-ready dict of `WorkerSummaryView.of(summary)`."""
    return WorkerSummaryView.of(summary).model_dump(mode="json")


class WorkerPage(ApiModel):
    items: list[WorkerView]
    next_token: str | None = Field(description="Pass back as next_token for the next page; null on the last")


class WorkerDeleted(ApiModel):
    """DELETE /workers/{id}: the record is gone; what became of the instance, and the record as
    it was just before."""

    worker_id: str
    record: Literal["deleted"]
    instance: Literal["terminating", "released", "gone", "none"] = Field(
        description="terminating: EC2 is terminating it; released: tags removed, left running; "
        "gone: EC2 no longer knew it; none: there was no live instance"
    )
    worker: WorkerView

    @classmethod
    def of(cls, deletion: Deletion) -> WorkerDeleted:
        return cls(
            worker_id=deletion.worker_id,
            record="deleted",
            instance=deletion.instance,
            worker=WorkerView.of(deletion.worker),
        )


class ErrorBody(ApiModel):
    """The one error shape: a code, a message for people, and the field at fault (or null)."""

    error: str
    message: str
    field: str | None = None


class TagsUpdate(ApiModel):
    """`merge`: the given keys are set, keys given as null are removed, others kept.
    `replace`: the worker's user tags become exactly the given ones (nulls ignored).
    The reserved tags ManagedBy and WorkerId are never changed."""

    tags: dict[str, Annotated[str, Field(max_length=256)] | None] = Field(
        description="Tag key → value (null removes, with merge)", json_schema_extra=_tags_schema(reserved_refused=True)
    )
    mode: Literal["merge", "replace"] = "merge"

    @field_validator("tags")
    @classmethod
    def _keys(cls, tags: dict[str, str | None]) -> dict[str, str | None]:
        return check_tags(tags)


class IdleDetectionUpdate(ApiModel):
    enabled: StrictBool


class OwnerUpdate(ApiModel):
    """Who owns the worker (an e-mail or user name, as tokens carry it); null clears it."""

    owner: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")] | None = Field(
        description="The owner's e-mail or user name (no spaces), or null"
    )


class PauseRequest(ApiModel):
    reason: str = Field(default="paused by operator", min_length=1, max_length=200)


class ResumeRequest(ApiModel):
    reason: str = Field(default="resumed", min_length=1, max_length=200)


class CreateWorkerRequest(ApiModel):
    name: str = Field(description="Unique worker name: letters, digits, . _ -, at most 63", pattern=_NAME.pattern)
    region: str
    instance_type: str | None = Field(
        default=None,
        description="Defaults to the region's setting",
        json_schema_extra={
            "anyOf": [{"type": "string", "pattern": r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$"}, {"type": "null"}]
        },
    )
    ami_id: str | None = Field(
        default=None,
        description="Defaults to the region's setting",
        json_schema_extra={"anyOf": [{"type": "string", "pattern": r"^ami-[0-9a-f]{8,17}$"}, {"type": "null"}]},
    )
    ami_name: str | None = Field(
        default=None,
        description="Instead of ami_id: launch the newest AMI whose name matches (EC2 wildcards * and ?); "
        "none or several with the same newest creation date: 422 naming ami_name",
        json_schema_extra={"anyOf": [{"type": "string", "pattern": _AMI_NAME.pattern}, {"type": "null"}]},
    )
    cml_version: str | None = Field(
        default=None,
        description="Instead of ami_id: launch the newest AMI of this CML version (e.g. 2.9 or 2.9.0), found by the "
        "region's cml_version_ami_pattern setting; none or ambiguous: 422 naming cml_version",
        json_schema_extra={"anyOf": [{"type": "string", "pattern": r"^\d{1,3}(\.\d{1,3}){0,3}$"}, {"type": "null"}]},
    )
    owner: str | None = Field(default=None, max_length=128)
    tags: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict,
        description="User tags (ManagedBy and WorkerId are set by the product)",
        json_schema_extra=_tags_schema(reserved_refused=False),
    )

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

    @field_validator("cml_version")
    @classmethod
    def _cml_version(cls, value: str | None) -> str | None:
        if value is not None and not _CML_VERSION.match(value):
            raise ValueError("must be a CML version like 2.9 or 2.9.0")
        return value

    @field_validator("ami_name")
    @classmethod
    def _ami_name(cls, value: str | None) -> str | None:
        # EC2 image names: letters, digits and ( ) [ ] space . / - ' @ _, plus the * ? wildcards.
        if value is not None and not _AMI_NAME.match(value):
            raise ValueError("must be an AMI name (letters, digits, ( ) [ ] . / - ' @ _ and spaces; * ? wildcards)")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        return check_tags(tags)

    def command(self, *, default_owner: str | None) -> CreateWorker:
        """The service's command; the owner defaults to the caller."""
        return CreateWorker(
            name=self.name,
            region=self.region,
            instance_type=self.instance_type,
            ami_id=self.ami_id,
            owner=self.owner or default_owner,
            tags=self.tags,
            ami_name=self.ami_name,
            cml_version=self.cml_version,
        )


class ImportWorkersRequest(ApiModel):
    """Exactly one of `instance_id` (one instance) or `ami_name_pattern` (every match)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["instance_id"],
                    "properties": {"instance_id": {"type": "string"}, "ami_name_pattern": {"type": "null"}},
                },
                {
                    "required": ["ami_name_pattern"],
                    "properties": {"ami_name_pattern": {"type": "string"}, "instance_id": {"type": "null"}},
                },
            ]
        },
    )

    region: str
    instance_id: str | None = Field(default=None, pattern=r"^i-[0-9a-f]{8,17}$")
    ami_name_pattern: str | None = Field(default=None, min_length=1, max_length=128)
    name: str | None = Field(
        default=None,
        description="With instance_id: the worker's name (else the instance's Name tag); a taken name is a 409",
        json_schema_extra={"anyOf": [{"type": "string", "pattern": _NAME.pattern}, {"type": "null"}]},
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ImportWorkersRequest:
        if (self.instance_id is None) == (self.ami_name_pattern is None):
            raise ValueError("give exactly one of instance_id or ami_name_pattern")
        return self


class CreatedWorker(ApiModel):
    worker: WorkerView
    execution_arn: str | None = Field(description="The provisioning saga's execution (null on a replay)")
    replayed: bool = Field(description="True when this answers a repeated Idempotency-Key")

    @classmethod
    def of(cls, created: Created) -> CreatedWorker:
        return cls(worker=WorkerView.of(created.worker), execution_arn=created.execution_arn, replayed=created.replayed)


class ImportResult(ApiModel):
    imported: list[WorkerView]
    skipped: list[dict[str, str]] = Field(description="instance_id and reason for each instance not imported")


class MetricSeries(ApiModel):
    worker_id: str
    samples: list[MetricSample]


def _required(field: Any) -> Any:
    """A copy of a settings field without its default: the PUT document must name it."""
    required = copy.copy(field)
    required.default = PydanticUndefined
    required.default_factory = None
    return required


#: PUT /settings body: the whole document, every field required (a partial document would reset
#: the fields it leaves out, the per-region launch defaults among them); `version` (from GET)
#: guards against lost edits, omit it to overwrite whatever is stored. PATCH takes a partial one.
SettingsBody = create_model(  # type: ignore[call-overload]  # fields built at import time: no overload can describe them
    "SettingsBody",
    __base__=Settings,
    __doc__="The whole settings document (PUT); `version` from GET guards against lost edits.",
    **{
        name: ((StrictBool if field.annotation is bool else field.annotation), _required(field))
        for name, field in Settings.model_fields.items()
        if name != "version"
    },
    version=(int | None, None),
)


def _optional(field: Any) -> Any:
    optional = copy.copy(field)
    optional.default = None
    optional.default_factory = None
    return optional


#: One region's launch defaults in a merge patch: given keys set, null ones back to the default.
RegionDefaultsPatch = create_model(  # type: ignore[call-overload]  # fields built at import time: no overload can describe them
    "RegionDefaultsPatch",
    __config__=ConfigDict(extra="forbid"),
    **{
        name: (cast(Any, field.annotation) | None, _optional(field))
        for name, field in RegionDefaults.model_fields.items()
    },
)

_PATCHED = {
    name: (cast(Any, StrictBool if field.annotation is bool else field.annotation) | None, _optional(field))
    for name, field in Settings.model_fields.items()
    if name not in ("version", "region_defaults", "on_demand_prices")
}

#: PATCH /settings body: a JSON merge patch (RFC 7396) of the settings document. Fields left out
#: are kept; a field given as null goes back to its default; a region given as null is removed.
SettingsPatch = create_model(  # type: ignore[call-overload]  # fields built at import time: no overload can describe them
    "SettingsPatch",
    __config__=ConfigDict(extra="forbid"),
    __doc__="A JSON merge patch of the settings; `version` (from GET) is required: 409 when stale.",
    **_PATCHED,
    region_defaults=(dict[str, RegionDefaultsPatch | None] | None, None),  # type: ignore[valid-type]
    # Merged like region_defaults: an instance type (or one region's price) given as null is removed.
    on_demand_prices=(
        dict[str, dict[str, float | None] | None] | None,
        Field(default=None, description="Instance type -> region (or *) -> USD per hour; null removes"),
    ),
    version=(int, Field(description="The version this patch was made against (GET /settings)")),
)
