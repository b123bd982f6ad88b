"""The collector's event loop (`cmlcm.aio`): uvloop's, a runtime dependency."""

from __future__ import annotations

import asyncio

import uvloop

from cmlcm import aio


async def _loop() -> asyncio.AbstractEventLoop:
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


def test_run_runs_on_uvloop_and_returns_the_result():
    # When a coroutine runs through aio.run, then it ran on uvloop's loop, now closed
    loop = aio.run(_loop())
    assert isinstance(loop, uvloop.Loop) and loop.is_closed()


def test_run_raises_what_the_coroutine_raises():
    async def fails() -> None:
        raise LookupError("nope")

    try:
        aio.run(fails())
    except LookupError as exc:
        assert str(exc) == "nope"
    else:
        raise AssertionError("aio.run swallowed the error")
