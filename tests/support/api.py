"""The real API handler called as API Gateway calls it, as a given role, with every answer checked
against the OpenAPI document (no moto here: the ports behind the handler are the caller's)."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from typing import Any

from jsonschema import Draft202012Validator

from cmlcm_local.events import DEV_USERS, FakeLambdaContext, rest_event

#: The tests' "now" (a handler's clock is overridden with it).
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

_DOCUMENT: dict[str, Any] = {}
#: The document is generated on first use; Powertools' generator is not thread-safe, and a test's
#: first call may come from two threads at once (the double-submit tests: a KeyError in pydantic's
#: field mapping when that test ran first in its process).
_DOCUMENT_LOCK = threading.Lock()


def check_against_the_document(method: str, path: str, response: dict[str, Any]) -> None:
    """Every answer the integration tests get must be one the OpenAPI document promises: a
    documented status of the operation (405 for another method) and a JSON body valid against
    its schema (the same check schemathesis makes, for the responses the tests provoke)."""
    from cmlcm.handlers.api import app as api_app

    with _DOCUMENT_LOCK:
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
