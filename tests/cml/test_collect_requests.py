"""CML requests per worker per collection cycle, counted by the simulator (each controller counts
what it answered), through the real collect service and CML client: an unchanged cycle costs at
most three requests per running worker; the slow facts take turns and are never staler than one
turn; a change the fast read can see reads them at once; the labs table is synced in the same
cycle and left alone when nothing changed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.probe import FleetProbe
from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.labs_repo import InMemoryLabRepository
from cmlcm.adapters.operations import InMemorySettingsRepository
from cmlcm.config import FunctionConfig
from cmlcm.domain.cml import FACTS
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerStatus
from cmlcm.ports import BulkResult, CollectPorts, ElasticIps, InstanceInfo, InstanceStatus, InstanceUsage
from cmlcm.services.collect import collect
from cmlsim import SimulatedFleet, build_app
from cmlsim.fleet import Controller

START = datetime.now(UTC).replace(microsecond=0)
INTERVAL = timedelta(minutes=5)
EVERY = len(FACTS)  # the smallest cadence with at most one slow fact a cycle


class RunningEc2:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def describe(self, ids):  # noqa: ANN001, ANN201
        return {i: InstanceInfo(i, "running", private_ip="10.0.0.1") for i in ids if i in self.ids}

    def elastic_ips(self):  # noqa: ANN201
        return ElasticIps()

    def statuses(self, ids):  # noqa: ANN001, ANN201
        return {i: InstanceStatus(i, "running", "ok", "ok") for i in ids if i in self.ids}

    def stop(self, ids):  # noqa: ANN001, ANN201
        return BulkResult(list(ids), {})

    start = terminate = stop


class QuietCloudWatch:
    def instance_usage(self, ids, *, now):  # noqa: ANN001, ANN201
        return {i: InstanceUsage(cpu_percent=10.0, memory_percent=30.0) for i in ids}


class Samples:
    def put_many(self, samples):  # noqa: ANN001, ANN201
        return len(samples)


#: Controllers of every shape a cycle plans differently: labs with running nodes, labs without,
#: no labs at all (no tile carries the version), and a registered licence.
SHAPES = {"i-busy": (2, 1), "i-quiet": (1, 0), "i-empty": (0, 0), "i-licensed": (1, 1)}


@pytest.fixture
def env():  # noqa: ANN201
    fleet = SimulatedFleet(converge_seconds=0, licence_seconds=0)
    for cid, (count, running) in SHAPES.items():
        fleet.add(cid, labs=count, running_labs=running)
    fleet.register(controller(fleet, "i-licensed"), "TOKEN")
    settings = FunctionConfig(
        CML_ENDPOINT_MODE="template", CML_ENDPOINT_TEMPLATE="http://sim/controllers/{instance_id}/api/v0"
    )
    transport = httpx.ASGITransport(app=build_app(fleet))
    probe = FleetProbe(settings, lambda: CmlCredentials("admin", fleet.password), transport=transport)  # type: ignore[arg-type]  # a credentials callable, as the secret reader is
    workers = InMemoryWorkerRepository()
    for cid in SHAPES:
        workers.add(
            Worker(
                worker_id=f"w-{cid}",
                name=cid,
                region="us-east-1",
                instance_id=cid,
                status=WorkerStatus.RUNNING,
                created_at=START,
                updated_at=START,
                # Just started: the idle policy leaves the quiet workers alone for an hour.
                status_changed_at=START,
            )
        )
    labs = InMemoryLabRepository()
    ports = CollectPorts(
        workers=workers,
        samples=Samples(),  # type: ignore[arg-type]  # a twin with put_many only
        ec2_for=lambda region: RunningEc2(list(SHAPES)),  # type: ignore[arg-type,return-value]  # describe/status/stop only
        cloudwatch_for=lambda region: QuietCloudWatch(),
        cml=probe,
        settings=InMemorySettingsRepository(Settings(cml_facts_every_cycles=EVERY)),
        labs=labs,
    )
    return fleet, ports, labs


def controller(fleet: SimulatedFleet, cid: str) -> Controller:
    found = fleet.get(cid)
    assert found is not None
    return found


def cycle(fleet: SimulatedFleet, ports: CollectPorts, at: datetime):  # noqa: ANN201
    """One collection of every worker; returns (result, requests per controller)."""
    before = {cid: controller(fleet, cid).requests for cid in SHAPES}
    result = asyncio.run(collect(ports, [f"w-{cid}" for cid in SHAPES], now=at))
    return result, {cid: controller(fleet, cid).requests - before[cid] for cid in SHAPES}


def test_an_unchanged_cycle_costs_at_most_three_requests_per_running_worker(env):  # noqa: ANN001
    fleet, ports, _ = env
    # Given a first cycle (full reads: login, stats, tiles and every slow fact)
    first, _ = cycle(fleet, ports, START)
    assert first.failed == 0 and first.changed == len(SHAPES)
    # When the fleet is collected for two full turns of the slow facts with nothing changing
    per_cycle = []
    for n in range(1, 2 * EVERY + 1):
        result, requests = cycle(fleet, ports, START + n * INTERVAL)
        assert result.failed == 0, result.errors
        per_cycle.append(requests)
        # Then no worker costs more than three requests in any of those cycles
        assert max(requests.values()) <= 3, (n, requests)
        assert result.cml_requests == sum(requests.values())
    # and a worker with labs costs two on the cycles where no slow fact is due
    assert min(r["i-busy"] for r in per_cycle) == 2
    # and every slow fact was read once per turn: 4 slow requests per worker per 4 cycles (the
    # quiet and empty workers' activity history included; running nodes need none)
    for cid in SHAPES:
        slow = sum(r[cid] for r in per_cycle) - 2 * len(per_cycle)
        assert slow == 2 * (EVERY if cid in ("i-quiet", "i-empty") else EVERY - 1), (cid, per_cycle)


def test_the_slow_facts_are_on_the_worker_and_a_licence_change_is_seen_within_one_turn(env):  # noqa: ANN001
    fleet, ports, _ = env
    cycle(fleet, ports, START)
    worker = ports.workers.get("w-i-licensed")
    system = worker.cml_system
    assert system is not None and system.health is not None and system.licence_detail is not None
    assert [c.hostname for c in system.health.computes] == ["cml-controller"]
    assert system.health.computes[0].cpu_count == 96 and system.health.computes[0].admission_state == "READY"
    detail = system.licence_detail
    assert (detail.smart_account, detail.virtual_account) == ("cml-sim-smart-account", "CML-Sim")
    assert detail.udi_hostname == "cml-controller" and [f.name for f in detail.features][0].startswith("CML - ")
    assert worker.metrics.licensed is True
    # Given the quiet worker's controller is registered after its first cycle (its tiles repeat
    # the health's licence flag, so the next cycle sees it at once)
    quiet = controller(fleet, "i-quiet")
    fleet.register(quiet, "TOKEN")
    cycle(fleet, ports, START + INTERVAL)
    assert ports.workers.get("w-i-quiet").metrics.licensed is True
    # And the empty controller (no tile carries the flag) is registered: seen within one turn
    fleet.register(controller(fleet, "i-empty"), "TOKEN")
    seen = None
    for n in range(2, 2 + EVERY):
        cycle(fleet, ports, START + n * INTERVAL)
        if ports.workers.get("w-i-empty").metrics.licensed:
            seen = n - 1
            break
    assert seen is not None and seen <= EVERY, seen


def test_a_version_change_or_a_reboot_reads_everything_at_once(env):  # noqa: ANN001
    fleet, ports, _ = env
    cycle(fleet, ports, START)
    # Given the empty controller reboots (its tokens are gone, it is booting)
    fleet.boot("i-empty", 600)
    result, requests = cycle(fleet, ports, START + INTERVAL)
    empty = ports.workers.get("w-i-empty")
    assert empty.service_status == ServiceStatus.BOOTING and result.failed == 1
    # When it is ready again, the next cycle reads every fact (the worker was not available)
    fleet.boot("i-empty", 0)
    _, requests = cycle(fleet, ports, START + 2 * INTERVAL)
    assert ports.workers.get("w-i-empty").service_status == ServiceStatus.AVAILABLE
    assert requests["i-empty"] >= 6  # login, stats, tiles, information, licence, health (+ activity)


def test_labs_are_synced_by_the_collection_and_an_unchanged_cycle_writes_none(env):  # noqa: ANN001
    fleet, ports, labs = env
    # Given no lab was ever listed through the API, after one collection
    first, _ = cycle(fleet, ports, START)
    # Then every worker's labs are in the labs table, with the details the old UI showed
    rows = labs.list("w-i-busy")
    assert len(rows) == 2 and first.labs_written == sum(n for n, _ in SHAPES.values())
    assert {row.owner_fullname for row in rows} == {"Administrator"} and all(r.description for r in rows)
    assert all(row.state_history and row.state_history[-1].state == row.state for row in rows)
    # When a second cycle finds nothing changed, it writes no lab row (and reads none)
    writes = labs.writes
    second, _ = cycle(fleet, ports, START + INTERVAL)
    assert second.labs_written == 0 and labs.writes == writes
    # And when a lab stops, the next cycle writes that one row, its state history grown
    busy = controller(fleet, "i-busy")
    running = next(lab for lab in busy.labs.values() if lab.state == "STARTED")
    fleet.lab_action(busy, running, "stop")
    third, _ = cycle(fleet, ports, START + 2 * INTERVAL)
    assert third.labs_written == 1
    row = labs.get("w-i-busy", running.id)
    assert [c.state for c in row.state_history] == ["STARTED", "STOPPED"]
    assert row.state_history[-1].seen_at == START + 2 * INTERVAL
