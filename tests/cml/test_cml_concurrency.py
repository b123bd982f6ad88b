"""A fleet read through one shared pool runs concurrently (a generous bound, not a benchmark:
sequential would take 200 × 2 × 0.2 s = 80 s)."""

from __future__ import annotations

import asyncio
import time

CONTROLLERS = 200
LATENCY = 0.2


def test_200_slow_controllers_are_read_concurrently_through_one_pool(sim):  # noqa: ANN001
    # Given 200 controllers that each take 200 ms per answer
    for index in range(CONTROLLERS):
        sim.fleet.add(f"c{index}", labs=1, running_labs=1)
        sim.fleet.set_faults(f"c{index}", latency=LATENCY)

    async def walk() -> int:
        async with sim.session(timeout=10) as session:

            async def read(cid: str) -> int:
                cml = session.client(sim.url(cid))
                await cml.ensure_ready()
                return (await cml.system_stats()).summary.running_nodes  # login + stats

            return sum(await asyncio.gather(*(read(f"c{i}") for i in range(CONTROLLERS))))

    # When they are read at once through one session
    started = time.perf_counter()
    running = asyncio.run(walk())
    elapsed = time.perf_counter() - started
    # Then every answer arrived, and far sooner than one after the other
    assert running == 3 * CONTROLLERS
    assert elapsed < 10, f"took {elapsed:.1f} s: the reads ran (nearly) sequentially"
    assert sim.recorder.count("/authenticate") == CONTROLLERS
