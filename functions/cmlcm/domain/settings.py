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
    ami_name_pattern: str = Field(default="cml2*", description="AMI name pattern used by bulk import")
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
        description="Workers per collector task: each batch costs one DescribeInstances, one DescribeInstanceStatus "
        "and one GetMetricData per 250 workers; smaller batches spread CML reads over parallel collectors",
    )
    collect_max_concurrency: int = Field(default=10, ge=1, le=40, description="Map state MaxConcurrency")
    reconcile_interval_minutes: int = Field(default=15, ge=5, le=1440)
    refresh_min_interval_seconds: int = Field(default=30, ge=5, le=3600, description="On-demand refresh limit")
    cml_ready_timeout_minutes: int = Field(default=30, ge=1, le=180)
    instance_running_timeout_minutes: int = Field(default=10, ge=1, le=60)
    provision_poll_seconds: int = Field(default=15, ge=1, le=300, description="Saga wait between checks")
    reconcile_policy_unrecorded: Literal["terminate", "adopt", "mark"] = "mark"
    reconcile_policy_failed_live: Literal["terminate", "mark"] = "terminate"
    region_defaults: dict[str, RegionDefaults] = Field(default_factory=dict)
    version: int = 0

    @model_validator(mode="after")
    def _regions_named(self) -> Settings:
        for region in self.region_defaults:
            if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", region):
                raise ValueError("a region_defaults key is not an AWS region name")
        return self

    def defaults_for(self, region: str) -> RegionDefaults:
        return self.region_defaults.get(region, RegionDefaults())
