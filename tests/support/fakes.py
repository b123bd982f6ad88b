"""Typed bases for the hand-written fakes of the unit tests.

A fake implements the whole port it stands in for, so mypy checks it against the port's protocol
like any adapter. The methods a test does not expect to be called fail that test: a fake of EC2
for the stop command that is asked to launch an instance is a finding, not a silent `None`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import NoReturn

from cmlcm.domain.jobs import MetricSample
from cmlcm.ports import (
    BulkResult,
    CmlReader,
    ElasticIps,
    ImageInfo,
    InstanceInfo,
    InstanceStatus,
    InstanceUsage,
    LaunchSpec,
)


def unexpected(port: str, method: str) -> NoReturn:
    """Fail the test: the code under test made a call its fake does not serve."""
    raise AssertionError(f"unexpected call {port}.{method}: this test's fake does not serve it")


class Ec2Unexpected:
    """Every `Ec2Port` method, each failing the test; a fake overrides the ones it serves."""

    def describe(self, instance_ids: Iterable[str]) -> dict[str, InstanceInfo]:
        unexpected("ec2", "describe")

    def start(self, instance_ids: Sequence[str]) -> BulkResult:
        unexpected("ec2", "start")

    def stop(self, instance_ids: Sequence[str]) -> BulkResult:
        unexpected("ec2", "stop")

    def terminate(self, instance_ids: Sequence[str]) -> BulkResult:
        unexpected("ec2", "terminate")

    def set_tags(self, instance_id: str, *, add: dict[str, str], remove: Iterable[str]) -> None:
        unexpected("ec2", "set_tags")

    def enable_detailed_monitoring(self, instance_id: str) -> None:
        unexpected("ec2", "enable_detailed_monitoring")

    def statuses(self, instance_ids: Iterable[str]) -> dict[str, InstanceStatus]:
        unexpected("ec2", "statuses")

    def elastic_ips(self) -> ElasticIps:
        unexpected("ec2", "elastic_ips")

    def launch(self, spec: LaunchSpec) -> InstanceInfo:
        unexpected("ec2", "launch")

    def find_by_tag(self, key: str, value: str, *, include_terminated: bool = False) -> list[InstanceInfo]:
        unexpected("ec2", "find_by_tag")

    def find_by_ami_name(self, pattern: str) -> list[InstanceInfo]:
        unexpected("ec2", "find_by_ami_name")

    def image_names(self, image_ids: Iterable[str]) -> dict[str, str]:
        unexpected("ec2", "image_names")

    def images(self, image_ids: Iterable[str]) -> dict[str, ImageInfo]:
        unexpected("ec2", "images")

    def find_images(self, name_pattern: str) -> list[ImageInfo]:
        unexpected("ec2", "find_images")


class SamplesUnexpected:
    """Every `SampleRepository` method, each failing the test."""

    def put_many(self, samples: Sequence[MetricSample]) -> int:
        unexpected("samples", "put_many")

    def recent(self, worker_id: str, *, since: datetime, limit: int = 500) -> list[MetricSample]:
        unexpected("samples", "recent")


class CloudWatchUnexpected:
    """Every `CloudWatchPort` method, each failing the test."""

    def instance_usage(self, instance_ids: Iterable[str], *, now: datetime) -> dict[str, InstanceUsage]:
        unexpected("cloudwatch", "instance_usage")


class CmlUnexpected:
    """A `CmlProbe` that fails the test when a session is opened."""

    def session(self) -> AbstractAsyncContextManager[CmlReader]:
        unexpected("cml", "session")
