"""AWS ports: EC2, CloudWatch and the provisioning state machine, reduced to what the product
uses (the value objects they answer with are the domain's: `cmlcm.domain.ec2`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cmlcm.domain.ec2 import ElasticIps, ImageInfo, InstanceInfo, InstanceStatus, InstanceUsage
from cmlcm.domain.errors import ExternalServiceError


@dataclass(frozen=True)
class LaunchSpec:
    """Everything RunInstances needs for one worker."""

    client_token: str
    ami_id: str
    instance_type: str
    tags: dict[str, str]
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    instance_profile_arn: str | None = None
    key_name: str | None = None
    user_data: str | None = None


@dataclass(frozen=True)
class BulkResult:
    """Outcome of a batched EC2 mutation: ids that succeeded and per-id errors."""

    succeeded: list[str]
    failed: dict[str, ExternalServiceError]


class Ec2Port(Protocol):
    def describe(self, instance_ids: Iterable[str]) -> dict[str, InstanceInfo]:
        """Known instances by id; ids EC2 does not know are simply absent."""

    def start(self, instance_ids: Sequence[str]) -> BulkResult: ...

    def stop(self, instance_ids: Sequence[str]) -> BulkResult: ...

    def terminate(self, instance_ids: Sequence[str]) -> BulkResult: ...

    def set_tags(self, instance_id: str, *, add: dict[str, str], remove: Iterable[str]) -> None: ...

    def enable_detailed_monitoring(self, instance_id: str) -> None: ...

    def statuses(self, instance_ids: Iterable[str]) -> dict[str, InstanceStatus]:
        """State and status checks of the known instances by id (DescribeInstanceStatus with
        every state included); ids EC2 does not know are simply absent."""

    def elastic_ips(self) -> ElasticIps:
        """The region's Elastic IP addresses and the instances they are associated with
        (DescribeAddresses)."""

    def launch(self, spec: LaunchSpec) -> InstanceInfo: ...

    def find_by_tag(self, key: str, value: str, *, include_terminated: bool = False) -> list[InstanceInfo]: ...

    def find_by_ami_name(self, pattern: str) -> list[InstanceInfo]: ...

    def image_names(self, image_ids: Iterable[str]) -> dict[str, str]: ...

    def images(self, image_ids: Iterable[str]) -> dict[str, ImageInfo]:
        """The known images among `image_ids` (unknown ids are simply absent)."""

    def find_images(self, name_pattern: str) -> list[ImageInfo]:
        """Images whose name matches `name_pattern` (EC2 wildcards `*` and `?`)."""


class CloudWatchPort(Protocol):
    def instance_usage(self, instance_ids: Iterable[str], *, now: datetime) -> dict[str, InstanceUsage]: ...


class WorkflowStarter(Protocol):
    def start(self, *, name: str, payload: dict[str, Any]) -> str:
        """Start the provisioning state machine (execution name = worker id, so a repeat start
        of the same worker is the same execution); returns the execution ARN."""


__all__ = [
    "BulkResult",
    "CloudWatchPort",
    "Ec2Port",
    "ImageInfo",
    "InstanceInfo",
    "ElasticIps",
    "InstanceStatus",
    "InstanceUsage",
    "LaunchSpec",
    "WorkflowStarter",
]
