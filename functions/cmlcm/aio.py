"""The event loop the collector's reads run on: uvloop's, asyncio's where uvloop is missing.

A collection makes a few thousand short HTTP exchanges over as many new connections; on
asyncio's own loop the loop's machinery (handles, selector registrations, transports in Python)
was most of the CML read's CPU. uvloop runs the same protocol and transport callbacks from C:
measured on the shared 2-core host, the 1000-worker unchanged read (2.5 requests a worker, no
moto) took 0.92-1.07 ms of CPU a worker on uvloop against 1.49-1.79 ms on asyncio's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None (asyncio's own loop) where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a runtime dependency; asyncio's loop still works
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop of `loop_factory()`."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


__all__ = ["loop_factory", "run"]
