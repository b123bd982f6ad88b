"""Thread pools that outlive one invocation: a warm Lambda container (or the local mode's
process) reuses their threads instead of starting new ones for every stream batch. Starting
threads is not free: under load each start waits for the interpreter lock, and a fan-out that
started 48 threads a batch spent over a second just starting them (profiled, see README).

Each purpose has its own pool, so a task of one pool may wait on another's without deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_pools: dict[tuple[str, int], ThreadPoolExecutor] = {}
_lock = threading.Lock()


def shared_pool(name: str, size: int) -> ThreadPoolExecutor:
    """The process's pool for `name` with at most `size` threads (made on first use)."""
    with _lock:
        pool = _pools.get((name, size))
        if pool is None:
            pool = _pools[(name, size)] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        return pool


def map_all(name: str, size: int, call: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`call` over `items`, in order: on this thread for one item, else on the shared pool `name`
    (at most `size` at a time). The first exception raised is raised here."""
    if len(items) <= 1:
        return [call(item) for item in items]
    return list(shared_pool(name, size).map(call, items))
