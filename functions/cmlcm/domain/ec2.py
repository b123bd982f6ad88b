"""What EC2 and CloudWatch say about instances and images, reduced to what the product uses."""

from __future__ import annotations

from collections.abc import Iterable
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
class ElasticIps:
    """A region's Elastic IP addresses (DescribeAddresses): each address, and the instance it is
    associated with. On a running instance, only an Elastic IP moves the public address without a
    state change (a stop and start gives a new one; the private address never moves)."""

    by_instance: dict[str, str] = field(default_factory=dict)
    addresses: frozenset[str] = frozenset()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str | None]]) -> ElasticIps:
        """From (public address, associated instance id or None) pairs."""
        pairs = list(pairs)
        return cls(
            by_instance={instance: ip for ip, instance in pairs if instance},
            addresses=frozenset(ip for ip, _ in pairs),
        )

    def moved(self, instance_id: str, recorded_public_ip: str | None) -> bool:
        """Whether the instance's public address differs from the one recorded because of an
        Elastic IP: one is associated with it now and is not the recorded one, or the recorded one
        is an Elastic IP no longer associated with it."""
        now = self.by_instance.get(instance_id)
        if now is not None:
            return now != recorded_public_ip
        return recorded_public_ip is not None and recorded_public_ip in self.addresses


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
