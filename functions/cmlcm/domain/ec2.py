"""What EC2 and CloudWatch say about instances and images, reduced to what the product uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class InstanceInfo:
    """What EC2 says about one instance, reduced to what the product uses."""

    instance_id: str
    state: str
    instance_type: str | None = None
    image_id: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    launch_time: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    monitoring: str | None = None


@dataclass(frozen=True)
class InstanceStatus:
    """What DescribeInstanceStatus says about one instance: its state (`InstanceState.Name`) and
    its two status checks (None where EC2 reports none). A collection reads it every cycle: it is
    a fraction of DescribeInstances' answer to render and parse."""

    instance_id: str
    state: str
    system_status: str | None = None
    instance_status: str | None = None


@dataclass(frozen=True)
class ImageInfo:
    """What EC2 says about one AMI, reduced to what a worker records of it."""

    image_id: str
    name: str | None = None
    description: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class InstanceUsage:
    """CloudWatch usage of one instance (None where no datapoint exists)."""

    cpu_percent: float | None = None
    memory_percent: float | None = None
