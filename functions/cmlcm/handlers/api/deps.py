"""Composition root of the API function: real adapters built once per cold start.

Tests call `override()` to run the same handler over in-memory twins.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from cmlcm.adapters.dynamo import DynamoSettingsRepository, DynamoWorkerRepository
from cmlcm.adapters.ec2 import Ec2Gateway
from cmlcm.config import get_settings
from cmlcm.services.workers import WorkerPorts

_override: WorkerPorts | None = None
_clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731 - the edge owns the clock


@lru_cache(maxsize=1)
def _real_ports() -> WorkerPorts:
    settings = get_settings()
    gateways: dict[str, Ec2Gateway] = {}

    def ec2_for(region: str) -> Ec2Gateway:
        if region not in gateways:
            gateways[region] = Ec2Gateway(region)
        return gateways[region]

    return WorkerPorts(
        workers=DynamoWorkerRepository(settings.workers_table, settings.aws_region),
        settings=DynamoSettingsRepository(settings.operations_table, settings.aws_region),
        ec2_for=ec2_for,
    )


def ports() -> WorkerPorts:
    return _override or _real_ports()


def now() -> datetime:
    return _clock()


def override(ports_: WorkerPorts | None, clock: Callable[[], datetime] | None = None) -> None:
    """Swap the adapters (tests); `override(None)` goes back to the real ones."""
    global _override, _clock
    _override = ports_
    _clock = clock or (lambda: datetime.now(UTC))
    _real_ports.cache_clear()
