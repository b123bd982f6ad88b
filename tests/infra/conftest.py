"""Fixtures for the CDK template tests: the app is synthesized once per test session.

The stack is built exactly as `infra/app.py` builds it, with cdk.json's feature flags, and with
`cmlcm:skipBundling` so no layer is built (no pip, no Docker, no network).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "infra"))
# jsii prints a banner per process on Node 20; it says nothing about this code.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is an infra test, and needs node for the jsii runtime."""
    no_node = shutil.which("node") is None
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.infra)
            if no_node:
                item.add_marker(pytest.mark.skip(reason="node is not installed (the CDK runs on jsii)"))


from _app import offline_app  # noqa: E402


@pytest.fixture(scope="session")
def app_and_stack():
    """(app, stack) built by `cmlcm_infra.composition.build`."""
    from cmlcm_infra.composition import build

    app = offline_app()
    return app, build(app)


@pytest.fixture(scope="session")
def stack(app_and_stack):
    """The CmlCloudManager stack."""
    return app_and_stack[1]


@pytest.fixture(scope="session")
def template(stack):
    """The synthesized CloudFormation template (assertions.Template)."""
    from aws_cdk.assertions import Template

    return Template.from_stack(stack)


@pytest.fixture(scope="session")
def resources(template) -> dict:
    """Template resources as plain JSON, for checks Template's matchers cannot express."""
    return template.to_json()["Resources"]
