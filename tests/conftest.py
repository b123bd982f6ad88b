"""Shared fixtures. The environment is set before any product module is imported."""

from __future__ import annotations

import os

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

import json  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from cmlcm.adapters.aws import reset_clients  # noqa: E402
from cmlcm.adapters.dynamo import DynamoSettingsRepository, DynamoWorkerRepository  # noqa: E402
from cmlcm.adapters.ec2 import Ec2Gateway  # noqa: E402
from cmlcm.adapters.operations import DynamoReservations  # noqa: E402
from cmlcm.config import get_settings  # noqa: E402
from cmlcm.services.workers import WorkerPorts  # noqa: E402
from cmlcm_local import moto_ec2_glue, moto_glue  # noqa: E402
from cmlcm_local.events import DEV_USERS, FakeLambdaContext, rest_event  # noqa: E402
from cmlcm_local.seed import fresh_backend  # noqa: E402

moto_glue.install()
moto_ec2_glue.install()

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


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


_DOCUMENT: dict[str, Any] = {}


def check_against_the_document(method: str, path: str, response: dict[str, Any]) -> None:
    """Every answer the integration tests get must be one the OpenAPI document promises: a
    documented status of the operation (405 for another method) and a JSON body valid against
    its schema (the same check schemathesis makes, for the responses the tests provoke)."""
    import re

    from jsonschema import Draft202012Validator

    from cmlcm.handlers.api import app as api_app

    if not _DOCUMENT:
        _DOCUMENT.update(api_app.openapi_document())
    status = str(response["statusCode"])
    operation = None
    for template, operations in _DOCUMENT["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            operation = operations[method.lower()]
            if "{" not in template:
                break
    body = response.get("body") or ""
    if operation is None or status not in operation["responses"]:
        # no such operation: the API's 404/405 in the error shape
        assert status in ("404", "405") or operation is not None, f"{method} {path}: {status} is not documented"
        assert status in ("404", "405"), f"{method} {path}: {status} is not documented"
        schema: dict[str, Any] = {"$ref": "#/components/schemas/Error"}
    else:
        content = operation["responses"][status].get("content") or {}
        if "application/json" not in content:
            return
        schema = content["application/json"]["schema"]
    if not body:
        return
    validator = Draft202012Validator({**schema, "components": _DOCUMENT["components"]})
    errors = [e.message for e in validator.iter_errors(json.loads(body))]
    assert not errors, f"{method} {path} {status}: the body breaks the document: {errors[:3]}"


class Api:
    """Calls the real API handler with API Gateway events, as a given role; every answer is
    checked against the OpenAPI document."""

    def __init__(self) -> None:
        from cmlcm.handlers.api import app as api_app

        self._handler = api_app.handler

    def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "admin",
        body: Any = None,
        query: dict[str, str] | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        claims = DEV_USERS[role] if role else None
        event = rest_event(method, path, body=body, query=query, headers=headers, claims=claims)
        response = self._handler(event, FakeLambdaContext("api"))
        check_against_the_document(method, path, response)
        payload = response.get("body")
        try:
            payload = json.loads(payload) if payload else None
        except json.JSONDecodeError:
            pass
        return response["statusCode"], payload


@pytest.fixture
def api(dynamo_ports: WorkerPorts) -> Iterator[Api]:
    from cmlcm.handlers.api import deps

    deps.override(dynamo_ports, clock=lambda: NOW)
    yield Api()
    deps.override(None)
