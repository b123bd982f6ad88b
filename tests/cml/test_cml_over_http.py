"""The fleet session over real sockets: the simulator in its own process on loopback, as CML runs
on its own hosts. In-process transports have no connection pool, so only this shows what the pool
does under a fleet's load."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.errors import CmlError
from cmlcm.adapters.cml.probe import CONNECTIONS_PER_CONTROLLER, FleetProbe
from cmlcm.adapters.cml.session import CmlFleetSession
from cmlcm.adapters.cml.tls import shared_tls
from cmlcm.adapters.cml.tokens import TokenCache
from cmlcm.config import FunctionConfig
from cmlsim.process import SimulatorProcess

CONTROLLERS = 150
LATENCY = 0.2
#: The collector's per-call deadline in the benchmark; one big shared pool missed it for 98 of
#: 100 controllers here (httpcore rescans every connection per queued request).
DEADLINE = 3.0


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess() as process:
        yield process


def test_a_fleet_read_at_once_over_sockets_meets_every_deadline(sim):  # noqa: ANN001
    # Given 150 controllers answering in 200 ms each, behind real sockets
    ids = [f"i-http{n:013d}" for n in range(CONTROLLERS)]
    sim.add(ids, latency=LATENCY)
    credentials = CmlCredentials("admin", "cml-sim-password")  # the simulator's default

    async def read_all() -> tuple[list[object], int]:
        async with CmlFleetSession(lambda: credentials, timeout=DEADLINE, token_cache=TokenCache()) as session:

            async def read(cid: str) -> object:
                cml = session.client(sim.controller_url(cid))
                try:
                    await cml.ensure_ready()  # login, then four reads in flight at once
                    return await asyncio.gather(
                        cml.system_health(), cml.system_stats(), cml.list_lab_ids(), cml.licensing_status()
                    )
                except CmlError as exc:
                    return exc

            results = await asyncio.gather(*(read(cid) for cid in ids))
            return results, session.pools

    # When every controller is read at once, each through its own small pool
    for _ in range(2):  # cold (logins, new sockets) and warm (cached tokens, kept-alive sockets)
        results, pools = asyncio.run(read_all())
        # Then no call missed its deadline, and each controller had one pool
        failures = [r for r in results if isinstance(r, CmlError)]
        assert not failures, f"{len(failures)} of {CONTROLLERS} failed, e.g. {failures[0]}"
        assert pools == CONTROLLERS


def test_one_tls_context_serves_every_controller():
    # httpx would build (and load a CA bundle into) a context per client given `True`.
    context = shared_tls(True)
    assert isinstance(context, ssl.SSLContext) and context.verify_mode.name == "CERT_REQUIRED"
    assert shared_tls(False) is False and shared_tls(context) is context


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # the directory listing's own descriptor, closed by now
            pass
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets through /proc")
def test_a_fleet_read_holds_sockets_only_for_the_controllers_being_read(sim):  # noqa: ANN001
    # Given 80 controllers, read through the collector's probe ten at a time
    ids = [f"i-lease{n:012d}" for n in range(80)]
    sim.add(ids, latency=0.05)
    settings = FunctionConfig(
        CML_ENDPOINT_MODE="template",
        CML_ENDPOINT_TEMPLATE=sim.base + "/controllers/{instance_id}/api/v0",
        CML_TLS_VERIFY="true",
    )
    probe = FleetProbe(settings, lambda: CmlCredentials("admin", "cml-sim-password"))  # type: ignore[arg-type]
    in_flight = 10

    async def read_all() -> tuple[list[object], int, int]:
        before = open_sockets()  # the event loop's own included
        peak = 0
        gate = asyncio.Semaphore(in_flight)

        async def sample() -> None:  # the open sockets, every few milliseconds while reading
            nonlocal peak
            while True:
                peak = max(peak, open_sockets() - before)
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        async with probe.session() as reader:

            async def read(cid: str) -> object:
                async with gate:
                    worker = SimpleNamespace(instance_id=cid, public_ip=None, private_ip=None)
                    try:
                        return await reader.read(worker)  # type: ignore[arg-type]
                    except CmlError as exc:
                        return exc

            results = await asyncio.gather(*(read(cid) for cid in ids))
        sampler.cancel()
        return results, peak, open_sockets() - before

    # When the whole fleet is read
    results, peak, left_open = asyncio.run(read_all())
    # Then every read succeeded, a controller's sockets closed when its read was done (never more
    # than the controllers in flight times the per-controller pool), and none is left open
    assert not [r for r in results if isinstance(r, CmlError)]
    assert 0 < peak <= in_flight * CONNECTIONS_PER_CONTROLLER, peak
    assert left_open <= 0, left_open


def test_a_lease_never_closes_a_controller_handed_out_without_one():
    credentials = CmlCredentials("admin", "pw")

    async def go() -> tuple[bool, bool, int]:
        async with CmlFleetSession(lambda: credentials, token_cache=TokenCache()) as session:
            pinned = session.client("https://10.0.0.1/api/v0")  # e.g. a lab action's client
            async with session.controller("https://10.0.0.1/api/v0") as same:
                assert same is pinned
            async with session.controller("https://10.0.0.2/api/v0") as leased:
                pass
            return pinned._http.is_closed, leased._http.is_closed, session.pools

    pinned_closed, leased_closed, pools = asyncio.run(go())
    # The pool handed out by client() stays open; the leased one closed when its lease ended
    assert (pinned_closed, leased_closed, pools) == (False, True, 1)
