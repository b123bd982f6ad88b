"""The fleet probe (what collection and the saga read) against the simulator in-process."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest

from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.errors import CmlBadResponse, CmlNotReady
from cmlcm.adapters.cml.probe import FleetProbe
from cmlcm.config import FunctionConfig
from cmlcm.domain.cml import FULL_READ, ReadPlan
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlsim import SimulatedFleet, build_app

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _worker(instance_id: str) -> Worker:
    return Worker(
        worker_id=f"w-{instance_id}",
        name=instance_id,
        region="us-east-1",
        instance_id=instance_id,
        status=WorkerStatus.RUNNING,
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
    )


@pytest.fixture
def probe_env():  # noqa: ANN201
    fleet = SimulatedFleet(converge_seconds=0)
    settings = FunctionConfig(
        CML_ENDPOINT_MODE="template", CML_ENDPOINT_TEMPLATE="http://sim/controllers/{instance_id}/api/v0"
    )
    transport = httpx.ASGITransport(app=build_app(fleet))
    probe = FleetProbe(settings, lambda: CmlCredentials("admin", fleet.password), transport=transport)  # type: ignore[arg-type]
    return fleet, probe


def _read(probe: FleetProbe, worker: Worker, plan: ReadPlan = FULL_READ):  # noqa: ANN202
    async def go():  # noqa: ANN202
        async with probe.session() as reader:
            return await reader.read(worker, plan)

    return asyncio.run(go())


def test_reading_of_a_busy_worker_skips_the_telemetry_history(probe_env):  # noqa: ANN001
    fleet, probe = probe_env
    fleet.add("i-busy", labs=2, running_labs=1)
    before = fleet.requests
    reading = _read(probe, _worker("i-busy"))
    assert (reading.version, reading.ready, reading.labs_total, reading.labs_running) == ("2.9.0", True, 2, 1)
    assert reading.nodes_running and reading.nodes_running > 0 and reading.cpu_percent is not None
    assert reading.registration_status == "NOT_REGISTERED" and reading.licensed is False
    # A full read: login + information + stats + lab tiles (every lab in one request) +
    # licensing + health; no telemetry.
    assert fleet.requests - before == 6 == reading.requests
    assert [lab.title for lab in reading.labs or ()] and reading.health is not None and reading.licence_detail


def test_reading_of_an_idle_worker_finds_its_last_activity(probe_env):  # noqa: ANN001
    fleet, probe = probe_env
    fleet.add("i-idle", labs=1, running_labs=0)
    reading = _read(probe, _worker("i-idle"))
    assert reading.nodes_running == 0 and reading.last_activity_at is not None


def test_the_managers_own_login_is_not_activity_but_a_persons_is(probe_env):  # noqa: ANN001
    fleet, probe = probe_env
    fleet.add("i-quiet", labs=1, running_labs=0)
    fleet.quiet("i-quiet", 180)  # nobody for 3 hours: labs and events moved back
    first = _read(probe, _worker("i-quiet"))  # the probe logs in now (a user_activity login event)
    again = _read(probe, _worker("i-quiet"))
    assert first.last_activity_at is not None and again.last_activity_at == first.last_activity_at
    assert (datetime.now(UTC) - again.last_activity_at).total_seconds() > 170 * 60
    # a person's login is activity
    fleet.record_event("i-quiet", "user_activity", {"action": "login", "user": "ann"})
    assert (datetime.now(UTC) - _read(probe, _worker("i-quiet")).last_activity_at).total_seconds() < 60


def test_booting_and_unsupported_controllers(probe_env):  # noqa: ANN001
    fleet, probe = probe_env
    fleet.add("i-boot", boot_seconds=60)
    with pytest.raises(CmlNotReady):
        _read(probe, _worker("i-boot"))

    async def ready() -> bool:
        async with probe.session() as reader:
            return await reader.ready(_worker("i-boot"))

    assert asyncio.run(ready()) is False
    fleet.add("i-old")
    import cmlsim.fleet

    original = cmlsim.fleet.CML_VERSION
    try:
        cmlsim.fleet.CML_VERSION = "3.0.0"
        import cmlsim.app

        cmlsim.app.CML_VERSION = "3.0.0"
        with pytest.raises(CmlBadResponse, match="not supported"):
            _read(probe, _worker("i-old"))
    finally:
        cmlsim.fleet.CML_VERSION = original
        cmlsim.app.CML_VERSION = original


class InFlight(httpx.AsyncBaseTransport):
    """Counts the requests in flight at once through the wrapped transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.now, self.peak = inner, 0, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.now -= 1


def test_a_cycle_read_keeps_three_requests_in_flight_and_takes_one_round_trip():
    # Given a controller with two labs answering in half a second
    fleet = SimulatedFleet(converge_seconds=0)
    fleet.add("i-rtt", labs=2, running_labs=1)
    fleet.set_faults("i-rtt", latency=0.5)
    settings = FunctionConfig(
        CML_ENDPOINT_MODE="template", CML_ENDPOINT_TEMPLATE="http://sim/controllers/{instance_id}/api/v0"
    )
    counting = InFlight(httpx.ASGITransport(app=build_app(fleet)))
    probe = FleetProbe(settings, lambda: CmlCredentials("admin", fleet.password), transport=counting)  # type: ignore[arg-type]
    first = _read(probe, _worker("i-rtt"))  # a full read, which also logs in
    # When a cycle reads it with the token of that read, on the licence's turn
    plan = ReadPlan(facts=frozenset({"licence"}), known_version=first.version, known_licensed=False)
    counting.peak = 0
    started = time.perf_counter()
    reading = _read(probe, _worker("i-rtt"), plan)
    took = time.perf_counter() - started
    # Then the read had at most three requests in flight (stats, lab tiles, licence: one per
    # socket of the controller's pool) and took one round trip
    assert reading.labs_total == 2 and reading.requests == 3 and reading.licence_read
    assert reading.health is None  # not its turn: the worker keeps the health it has
    assert counting.peak <= 3
    assert 0.5 <= took < 0.95, took  # two round trips would be 1 s
