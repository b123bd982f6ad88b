"""`map_all`: one item on the calling thread, more on the named shared pool, results in order."""

from __future__ import annotations

import threading

import pytest

from cmlcm.pools import map_all, shared_pool


def _where(n: int) -> tuple[int, str]:
    return n * n, threading.current_thread().name


def test_one_item_runs_on_the_calling_thread():
    assert map_all("test-pool", 3, _where, [4]) == [(16, threading.current_thread().name)]
    assert map_all("test-pool", 3, _where, []) == []


def test_more_items_run_on_the_shared_pool_in_order():
    answers = map_all("test-pool", 3, _where, list(range(10)))
    assert [value for value, _ in answers] == [n * n for n in range(10)]
    assert {name.split("_")[0] for _, name in answers} == {"test-pool"}
    assert shared_pool("test-pool", 3) is shared_pool("test-pool", 3)  # the threads are kept


def test_the_first_exception_is_raised():
    def fail_on_three(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        return n

    with pytest.raises(ValueError, match="three"):
        map_all("test-pool", 3, fail_on_three, [1, 2, 3, 4])
