"""Fixtures for executing ASL under moto with Lambda tasks served by in-process handlers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws
from sfn_harness import Sfn

from cmlcm_local import moto_glue
from cmlcm_local.stepfunctions import MOTO_CONFIG, LocalLambdas, LocalStateMachines

moto_glue.install()  # the saga relies on RunInstances idempotency and atomic conditional writes


@pytest.fixture
def sfn() -> Iterator[Sfn]:
    """moto with the executor on and Lambda dispatch installed; Retry sleeps shrunk 100x."""
    with mock_aws(config=MOTO_CONFIG):
        lambdas = LocalLambdas()
        moto_glue.set_retry_interval_scale(0.01)
        try:
            yield Sfn(lambdas, LocalStateMachines())
        finally:
            moto_glue.set_retry_interval_scale(1.0)
            lambdas.close()
