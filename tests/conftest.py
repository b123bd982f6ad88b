"""The tests' environment, set before any product module is imported.

No fixtures here: the moto-backed ones (`aws`, `dynamo_ports`, `api`) live in tests/support/aws.py
and are imported by the conftests of the folders that use moto, so tests/unit runs without moto
(tests/unit/test_without_moto.py checks it).

The one thing installed here: every botocore session of the test process shares one data loader
(tests/support/botocore_loader.py), so a test's fresh clients do not parse botocore's JSON again."""

from __future__ import annotations

import os

from tests.support import botocore_loader

botocore_loader.install()

os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "cmlcm-tests",
        "POWERTOOLS_METRICS_NAMESPACE": "CmlCloudManager",
        "POWERTOOLS_DEV": "false",
        "LOG_LEVEL": "WARNING",
        "SUPPORTED_REGIONS": "us-east-1,us-west-2",
    }
)
