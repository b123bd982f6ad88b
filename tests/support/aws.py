"""moto-backed fixtures: a fresh moto account with the product's tables and bucket, the worker
ports on it, and the API handler over them. Importing this module installs the moto glue; the
conftests of the folders that use moto import these fixtures (tests/unit never imports moto).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from cmlcm import container
from cmlcm.adapters.aws import reset_clients
from cmlcm.config import get_config
from cmlcm.container import Container
from cmlcm.ports import WorkerPorts
from cmlcm_local import moto_glue
from cmlcm_local.seed import fresh_backend

from .api import NOW, Api

moto_glue.install()


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto account with the product's tables and bucket."""
    with mock_aws():
        fresh_backend()  # the same tables (and the collect-runs bucket) as local mode
        yield
    reset_clients()


@pytest.fixture
def moto_container(aws: None) -> Iterator[Container]:
    """The real container on the moto account, its clock stopped at NOW, in use for the test."""
    made = Container(get_config(), clock=lambda: NOW)
    container.use(made)
    yield made
    container.use(None)


@pytest.fixture
def dynamo_ports(moto_container: Container) -> WorkerPorts:
    return moto_container.ports(WorkerPorts)


@pytest.fixture
def api(moto_container: Container) -> Iterator[Api]:
    yield Api()
