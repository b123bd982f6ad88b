"""Waiting on a condition in tests that drive another process (local mode, a scheduler loop)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.5) -> T:
    """The first truthy value of `predicate`, polled every `interval` seconds; after `timeout` its
    last value, falsy (the caller's assert says what was expected)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
