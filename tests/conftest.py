"""The tests' environment, set before any product module is imported.

No fixtures here: the moto-backed ones (`aws`, `dynamo_ports`, `api`) live in tests/support/aws.py
and are imported by the conftests of the folders that use moto, so tests/unit runs without moto
(tests/unit/test_without_moto.py checks it).

Installed here: every botocore session of the test process shares one data loader
(tests/support/botocore_loader.py), so a test's fresh clients do not parse botocore's JSON again.
And each test gets its `xdist_group` (`make test` runs pytest-xdist with `--dist loadgroup`):
see `pytest_collection_modifyitems`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
        # moto's own list of default public AMIs (moto/ec2/resources/amis.json.gz of the pinned
        # 5.2.5, 44 images, the amzn2 base of the fake CML image among them), without the ~1250
        # "latest" and ECS-optimized images per region it adds when this is unset: each EC2
        # backend built them at every moto start and stop (0.11 s of CPU each time, in every test
        # once a test had used EC2), and moto filters them all for each instance it launches.
        # The local mode processes the tests start inherit it.
        "MOTO_AMIS_PATH": str(Path(__file__).parent / "support" / "moto_amis.json"),
    }
)


TESTS = Path(__file__).parent
#: Folders whose files share one thing per process: the browser and contract suites one local mode
#: (tests/support/local_mode.SharedLocalMode, stopped after the folder's last test), the infra suite
#: one synthesized app (session fixtures, ~1 min of CPU). Each runs whole, in order, on one worker.
WHOLE_FOLDERS = frozenset({"browser", "contract", "infra"})


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which turns the marks into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `--dist loadgroup` (make test), the tests of one group run on one worker, in file
    order: a folder of WHOLE_FOLDERS is one group, and every other file is its own group, so a
    module-scoped fixture (a local mode, a seeded runtime) is set up once and its tests keep their
    order, as in a serial run. Groups are spread over the workers; without xdist this does nothing."""
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue
        relative = item.path.relative_to(TESTS)
        group = relative.parts[0] if relative.parts[0] in WHOLE_FOLDERS else relative.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))
