"""A container of in-memory twins for tests without AWS (tests/unit): every port a twin or a fake
that fails the test when it is reached, never a real adapter. Pass the ports a test looks at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from cmlcm import container
from cmlcm.adapters.connections_api import MemoryConnections
from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.event_bus import MemoryEventBus
from cmlcm.adapters.job_runs import InMemoryJobStarter
from cmlcm.adapters.labs_repo import InMemoryLabRepository
from cmlcm.adapters.licence_tokens import InMemoryTokenStore
from cmlcm.adapters.operations import InMemoryJobRepository, InMemoryRefreshLimiter, InMemorySettingsRepository
from cmlcm.adapters.schedule_store import InMemoryScheduleRepository
from cmlcm.adapters.schedules import InMemoryJobSchedules
from cmlcm.adapters.subscriptions import MemoryConnectionStore
from cmlcm.config import FunctionConfig
from cmlcm.container import PORT_NAMES, Container
from cmlcm.domain.jobs import MetricSample
from cmlcm.ports import BulkResult

from .api import NOW
from .fakes import CloudWatchUnexpected, CmlUnexpected, SamplesUnexpected, unexpected


class Unused:
    """A port the test must not reach: any attribute fails it."""

    def __init__(self, port: str = "port") -> None:
        self._port = port

    def __getattr__(self, name: str):  # noqa: ANN204
        unexpected(self._port, name)


class RecordingEc2:
    """An Ec2Port that succeeds and records every call, so a refused request can prove it made none."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str):  # noqa: ANN204
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return BulkResult(list(args[0]), {}) if name in ("start", "stop", "terminate") else None

        return call


class NoSamples(SamplesUnexpected):
    def recent(self, worker_id: str, *, since: datetime, limit: int = 500) -> list[MetricSample]:
        return []


def twin_container(*, clock: Callable[[], datetime] = lambda: NOW, **ports: object) -> Container:
    """Every port an empty twin (the CML, CloudWatch and EC2 ports fail the test when reached),
    except the `ports` given."""
    twins: dict[str, Any] = {name: Unused(name) for name in PORT_NAMES}
    twins.update(
        workers=InMemoryWorkerRepository(),
        settings=InMemorySettingsRepository(),
        schedules=InMemoryScheduleRepository(),
        labs=InMemoryLabRepository(),
        tokens=InMemoryTokenStore(),
        jobs=InMemoryJobRepository(),
        refresh_limiter=InMemoryRefreshLimiter(),
        job_schedules=InMemoryJobSchedules({}),
        job_starter=InMemoryJobStarter(),
        release_name=None,
        cml_concurrency=100,
        cml=CmlUnexpected(),
        cloudwatch_for=lambda region: CloudWatchUnexpected(),
        connections=MemoryConnectionStore(),
        poster=MemoryConnections(),
        bus=MemoryEventBus(),
    )
    twins.update(ports)
    return Container(FunctionConfig(), clock=clock).with_ports(**twins)


@contextmanager
def using(made: Container) -> Iterator[Container]:
    """`made` is the container of the handlers called inside the block."""
    container.use(made)
    try:
        yield made
    finally:
        container.use(None)
