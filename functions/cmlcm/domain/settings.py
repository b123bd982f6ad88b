"""Global, operator-editable settings (stored in the operations table, edited via the API).

Unlike `cmlcm.config` (deployment environment, fixed per stack), these change at run time and
every value here is read by the code that it names.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$")
_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")


def check_instance_type(value: str) -> str:
    """Shared rule for instance types (settings and create requests)."""
    if not _INSTANCE_TYPE.match(value):
        raise ValueError("must look like an EC2 instance type, e.g. m5zn.metal")
    return value


def check_ami_id(value: str | None) -> str | None:
    """Shared rule for AMI ids (settings and create requests)."""
    if value is not None and not _AMI_ID.match(value):
        raise ValueError("must be an AMI id like ami-0123456789abcdef0")
    return value


class RegionDefaults(BaseModel):
    """What a new worker in a region is launched with, unless the request says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The patterns are documented (OpenAPI); the validators below enforce them with an example.
    instance_type: str = Field(
        default="c5.metal",
        description="EC2 instance type, e.g. c5.metal",
        json_schema_extra={"pattern": _INSTANCE_TYPE.pattern},
    )
    ami_id: str | None = Field(
        default=None,
        description="AMI id (ami-...) of the CML image",
        json_schema_extra={"anyOf": [{"type": "string", "pattern": _AMI_ID.pattern}, {"type": "null"}]},
    )
    ami_name_pattern: str = Field(
        default="cml2*", description="AMI name pattern used by bulk import and the reconciler's auto-import"
    )
    cml_version_ami_pattern: str = Field(
        default="cml2*-{version}*",
        min_length=1,
        max_length=128,
        description="How a create's cml_version becomes an AMI name pattern ({version} is replaced; EC2 wildcards); "
        "the newest matching image is launched",
    )
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    instance_profile_arn: str | None = None
    key_name: str | None = None
    #: cloud-init/user data for new CML instances (no secrets: CML reads its own from the secret).
    user_data: str | None = Field(default=None, max_length=16384)

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return check_instance_type(value)

    @field_validator("ami_id")
    @classmethod
    def _ami(cls, value: str | None) -> str | None:
        return check_ami_id(value)

    @field_validator("cml_version_ami_pattern")
    @classmethod
    def _version_pattern(cls, value: str) -> str:
        if value.count("{version}") != 1 or value.replace("{version}", "").count("{") + value.count("}") > 1:
            raise ValueError("must hold {version} exactly once and no other braces")
        return value

    def ami_pattern_for_version(self, version: str) -> str:
        """The AMI name pattern of CML `version` in this region."""
        return self.cml_version_ami_pattern.replace("{version}", version)


#: On-demand Linux prices (USD per hour) of the usual CML metal instance types in us-east-1, as
#: listed by AWS; `*` applies to every region the table does not name. A starting point: edit
#: them in the settings (prices differ by region, and discounts by account).
DEFAULT_ON_DEMAND_PRICES: dict[str, dict[str, float]] = {
    "c5.metal": {"*": 4.08},
    "c5n.metal": {"*": 3.888},
    "m5.metal": {"*": 4.608},
    "m5zn.metal": {"*": 3.9641},
    "m7i.metal-24xl": {"*": 4.8384},
    "r5.metal": {"*": 6.048},
    "i3.metal": {"*": 4.992},
}
#: Priced instance types: EC2's names, including sizes such as m7i.metal-24xl.
_PRICED_TYPE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9][a-z0-9-]*$")
_PRICE_REGION = re.compile(r"^(\*|[a-z]{2}(-gov)?-[a-z]+-\d)$")
#: At most this many instance types in the price table (it is part of the settings document).
MAX_PRICED_TYPES = 100


def check_prices(prices: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Instance type → region (or `*`) → USD per hour, each a plausible on-demand price."""
    if len(prices) > MAX_PRICED_TYPES:
        raise ValueError(f"at most {MAX_PRICED_TYPES} instance types")
    for instance_type, regions in prices.items():
        if not _PRICED_TYPE.match(instance_type):
            raise ValueError("a priced instance type must look like an EC2 instance type, e.g. m5zn.metal")
        if not regions:
            raise ValueError("an instance type needs at least one region price (use * for every region)")
        for region, price in regions.items():
            if not _PRICE_REGION.match(region):
                raise ValueError("a price's region must be an AWS region name or *")
            if not 0 <= price <= 1000:
                raise ValueError("a price must be between 0 and 1000 USD per hour")
    return prices


def hourly_price(prices: dict[str, dict[str, float]], instance_type: str | None, region: str) -> float | None:
    """The on-demand price of `instance_type` in `region` from the table, else its `*` price,
    else None (unknown: hours are still counted, money is not)."""
    if instance_type is None:
        return None
    regions = prices.get(instance_type)
    if regions is None:
        return None
    return regions.get(region, regions.get("*"))


class Settings(BaseModel):
    """The fleet-wide settings document; `version` guards concurrent edits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idle_detection_enabled: bool = Field(default=True, description="Global switch for auto-pause")
    idle_timeout_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)
    collect_interval_minutes: int = Field(default=5, ge=1, le=60, description="Metrics schedule period")
    collect_batch_size: int = Field(
        default=1000,
        ge=1,
        le=1000,
        description="Workers per collector task: each batch costs one DescribeInstanceStatus per 100 workers, at most one "
        "DescribeInstances and one GetMetricData per 250 workers; smaller batches spread CML reads over parallel "
        "collectors",
    )
    collect_max_concurrency: int = Field(default=10, ge=1, le=40, description="Map state MaxConcurrency")
    cml_facts_every_cycles: int = Field(
        default=6,
        ge=1,
        le=288,
        description="A running worker's slow-changing CML facts (version, licence detail, system health and "
        "compute table) are read every this many collection cycles (1: every cycle), and at once whenever its "
        "state says they may have changed; the other cycles read usage and labs only. When a region's Elastic "
        "IPs cannot be read, the same round paces DescribeInstances: an instance whose state did not move is "
        "then described (addresses, type) once a round",
    )
    reconcile_interval_minutes: int = Field(default=15, ge=5, le=1440)
    refresh_min_interval_seconds: int = Field(default=30, ge=5, le=3600, description="On-demand refresh limit")
    cml_ready_timeout_minutes: int = Field(default=30, ge=1, le=180)
    instance_running_timeout_minutes: int = Field(default=10, ge=1, le=60)
    provision_poll_seconds: int = Field(default=15, ge=1, le=300, description="Saga wait between checks")
    reconcile_policy_unrecorded: Literal["terminate", "adopt", "mark"] = "mark"
    reconcile_policy_failed_live: Literal["terminate", "mark"] = "terminate"
    auto_import_enabled: bool = Field(
        default=False,
        description="Each reconciler run imports every live instance of an AMI matching its region's "
        "ami_name_pattern that no worker records (idempotent; recorded as auto_imported findings)",
    )
    region_defaults: dict[str, RegionDefaults] = Field(default_factory=dict)
    snooze_after_resume_minutes: int = Field(
        default=60,
        ge=0,
        le=7 * 24 * 60,
        description="After a user resumes or starts a worker, neither the idle policy nor a schedule stops it "
        "for this long (0: no snooze)",
    )
    idle_cpu_busy_percent: int = Field(
        default=0,
        ge=0,
        le=100,
        description="A running worker whose CPU is at least this is busy (the idle policy waits); 0: CPU is not "
        "an activity signal",
    )
    on_demand_prices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_ON_DEMAND_PRICES.items()},
        description="Instance type -> region (or * for any) -> on-demand USD per hour: prices the hours a policy "
        "kept workers stopped",
        json_schema_extra={
            "maxProperties": MAX_PRICED_TYPES,
            "propertyNames": {"pattern": _PRICED_TYPE.pattern},
            "additionalProperties": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": _PRICE_REGION.pattern},
                "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1000},
            },
        },
    )
    worker_scoping: Literal["off", "operators", "operators_and_viewers"] = Field(
        default="off",
        description="Per-user scoping: operators (and viewers) see and act on only the workers they own or "
        "that carry one of their teams (Cognito groups team-<name>) in the team tag; admins see all",
    )
    team_tag_key: str = Field(
        default="Team",
        min_length=1,
        max_length=128,
        description="The tag whose value names a worker's team (for worker_scoping)",
        json_schema_extra={"pattern": r"^(?![aA][wW][sS]:)[\w .:/=+\-@]{1,128}$"},
    )
    version: int = 0

    @field_validator("on_demand_prices")
    @classmethod
    def _prices(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        return check_prices(value)

    @field_validator("team_tag_key")
    @classmethod
    def _team_tag_key(cls, value: str) -> str:
        if not _TAG_KEY.match(value) or value.lower().startswith("aws:"):
            raise ValueError("must be an EC2 tag key (1-128 of letters, digits, space, _ . : / = + - @; no aws:)")
        return value

    @model_validator(mode="after")
    def _regions_named(self) -> Settings:
        for region in self.region_defaults:
            if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", region):
                raise ValueError("a region_defaults key is not an AWS region name")
        return self

    def defaults_for(self, region: str) -> RegionDefaults:
        return self.region_defaults.get(region, RegionDefaults())
