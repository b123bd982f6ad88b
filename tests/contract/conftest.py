"""The local mode in its own process, shared by the contract suites: the fuzzer and the
hostile-input and secret tests speak HTTP to it as a client would, and read its log. It starts
with the first test that asks for it and stops after this folder's last test."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from tests.support.aws import api, aws, dynamo_ports, moto_container  # noqa: F401 - fixtures by name (the request log suite)
from tests.support.local_mode import LocalMode, SharedLocalMode

#: Everything the product logs is read by the secret tests, per-request lines included.
_LOCAL = SharedLocalMode(Path(__file__).parent, workers=4, env={"LOG_LEVEL": "DEBUG"})


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> LocalMode:
    return _LOCAL.get(tmp_path_factory)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    yield
    _LOCAL.release_after(item, nextitem)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _LOCAL.stop()
