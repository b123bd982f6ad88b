"""The simulator's own surface: the `/_sim` admin API, fault validation, seeding, scale of the
in-process app, and the HTTP mode (`python -m cmlsim`) driven by the real client."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.session import CmlFleetSession
from cmlcm.adapters.cml.tokens import TokenCache
from cmlsim import Faults, SimulatedFleet, build_app

REPO = Path(__file__).resolve().parents[2]


def test_admin_api_adds_inspects_breaks_and_removes_controllers(sim):  # noqa: ANN001
    async def walk() -> None:
        async with sim.admin() as admin:
            created = await admin.post("/_sim/controllers", json={"id": "i-1", "labs": 2, "running_labs": 1})
            assert created.status_code == 201 and created.json()["labs"] == 2
            assert created.json()["running_labs"] == 1
            lab = await admin.post(
                "/_sim/controllers/i-1/labs", json={"title": "Seeded", "nodes": 5, "state": "STARTED"}
            )
            assert lab.status_code == 201
            faults = await admin.put("/_sim/controllers/i-1/faults", json={"latency": 0.01, "error_rate": 1})
            assert faults.json()["latency"] == 0.01 and faults.json()["error_rate"] == 1.0
            rebooted = await admin.put("/_sim/controllers/i-1/faults?reset=true", json={"boot_seconds": 60})
            assert rebooted.json()["error_rate"] == 0.0
            view = (await admin.get("/_sim/controllers/i-1")).json()
            assert (view["ready"], view["labs"], view["running_labs"]) == (False, 3, 2)
            bulk = await admin.post("/_sim/bulk", json={"ids": ["i-2", "i-3"], "faults": {"latency": 0.01}})
            assert bulk.json() == {"controllers": 3}
            assert [c["id"] for c in (await admin.get("/_sim/controllers")).json()] == ["i-1", "i-2", "i-3"]
            assert (await admin.delete("/_sim/controllers/i-2")).status_code == 204
            assert (await admin.get("/_sim/controllers/i-2")).status_code == 404
            assert (await admin.get("/_sim/stats")).json()["controllers"] == 2

    asyncio.run(walk())
    assert sim.fleet.get("i-1").labs and sim.fleet.get("i-3").faults.latency == 0.01


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/_sim/controllers/i-1/faults", {"latency": "slow"}, 400),
        ("/_sim/controllers/i-1/faults", {"garbage": "false"}, 400),  # a string never turns a fault on
        ("/_sim/controllers/i-1/faults", {"teleport": True}, 400),
        ("/_sim/controllers/i-1/faults", {"error_rate": 2}, 400),
        ("/_sim/controllers/nope/faults", {"latency": 1}, 404),
        ("/_sim/controllers/i-1/labs", {"title": "x", "state": "PAUSED"}, 400),
        ("/_sim/controllers/nope/labs", {"title": "x"}, 404),
    ],
)
def test_admin_api_rejects_bad_requests(sim, path, body, status):  # noqa: ANN001
    sim.fleet.add("i-1")

    async def send() -> int:
        async with sim.admin() as admin:
            method = admin.put if path.endswith("/faults") else admin.post
            return (await method(path, json=body)).status_code

    assert asyncio.run(send()) == status
    assert sim.fleet.get("i-1").faults == Faults()


def test_seeded_events_and_labs_are_served(sim):  # noqa: ANN001
    sim.fleet.add("c1")
    old = sim.clock() - timedelta(days=3)
    sim.fleet.record_event("c1", "start_lab", {"lab_id": "x"}, at=old)
    lab_id = sim.fleet.add_lab("c1", "Seeded", nodes=2, state="STARTED")

    async def walk() -> tuple[list, list]:
        async with sim.session() as session:
            cml = session.client(sim.url("c1"))
            return await cml.telemetry_events(categories={"start_lab"}), await cml.list_labs()

    events, labs = asyncio.run(walk())
    assert [e.timestamp for e in events] == [old]
    assert [(lab.id, lab.state, lab.node_count) for lab in labs] == [(lab_id, "STARTED", 2)]


def test_1000_concurrent_requests_with_200ms_latency_overlap():
    """The injected latency is an asyncio sleep: a thousand requests overlap instead of queueing."""
    fleet = SimulatedFleet()
    for index in range(1000):
        fleet.add(f"c{index}")
        fleet.set_faults(f"c{index}", latency=0.2)

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=build_app(fleet))
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as raw:
            responses = await asyncio.gather(
                *(raw.get(f"/controllers/c{i}/api/v0/system_information") for i in range(1000))
            )
        return [r.status_code for r in responses]

    started = time.perf_counter()
    statuses = asyncio.run(burst())
    elapsed = time.perf_counter() - started
    assert statuses == [200] * 1000
    assert elapsed < 10, f"took {elapsed:.1f} s (sequential would be 200 s)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_http_mode_serves_the_real_client():
    """`python -m cmlsim` over real HTTP: controllers sim-0001.. answer the client."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "local"), str(REPO / "functions")])}
    server = subprocess.Popen(
        [sys.executable, "-m", "cmlsim", "--port", str(port), "--controllers", "2", "--labs", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/_sim/controllers", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else "exited"
            assert time.monotonic() < deadline, "simulator did not start within 20 s"
            time.sleep(0.1)

        async def walk() -> tuple[str, int]:
            credentials = CmlCredentials("admin", "cml-sim-password")
            async with CmlFleetSession(lambda: credentials, timeout=5, token_cache=TokenCache()) as session:
                cml = session.client(f"{base}/controllers/sim-0002/api/v0")
                return (await cml.ensure_ready()).version, len(await cml.list_labs())

        assert asyncio.run(walk()) == ("2.9.0", 1)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout:
            server.stdout.close()
