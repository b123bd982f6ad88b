"""moto-backed fixtures: a fresh moto account with the product's tables and bucket, the worker
ports on it, and the API handler over them. Importing this module installs the moto glue; the
conftests of the folders that use moto import these fixtures (tests/unit never imports moto).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from cmlcm.adapters.aws import reset_clients
from cmlcm.adapters.dynamo import DynamoSettingsRepository, DynamoWorkerRepository
from cmlcm.adapters.ec2 import Ec2Gateway
from cmlcm.adapters.operations import DynamoReservations
from cmlcm.config import get_settings
from cmlcm.services.workers import WorkerPorts
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
def dynamo_ports(aws: None) -> WorkerPorts:
    settings = get_settings()
    return WorkerPorts(
        workers=DynamoWorkerRepository(settings.workers_table, settings.aws_region),
        settings=DynamoSettingsRepository(settings.operations_table, settings.aws_region),
        ec2_for=Ec2Gateway,
        release_name=DynamoReservations(settings.operations_table, settings.aws_region).release_name,
    )


@pytest.fixture
def api(dynamo_ports: WorkerPorts) -> Iterator[Api]:
    from cmlcm.handlers.api import deps

    deps.override(dynamo_ports, clock=lambda: NOW)
    yield Api()
    deps.override(None)
