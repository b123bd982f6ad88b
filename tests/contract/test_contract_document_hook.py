"""The integration tests' harness checks every answer against the OpenAPI document: the hook
itself refuses an undocumented status and a body that breaks its schema."""

from __future__ import annotations

import json

import pytest

from tests.support.api import check_against_the_document


def test_the_hook_refuses_what_the_document_does_not_promise():
    # An undocumented status, a body that breaks its schema, an error not in the error shape
    for method, path, status, body in [
        ("GET", "/workers", 418, {}),
        ("GET", "/workers", 200, {"items": "not a list"}),
        ("POST", "/workers/w-1/stop", 409, {"error": "Conflict"}),
        ("GET", "/nowhere", 404, {"statusCode": 404, "message": "Not found"}),
    ]:
        with pytest.raises(AssertionError):
            check_against_the_document(method, path, {"statusCode": status, "body": json.dumps(body)})
    # and lets the documented answers through
    ok = {"error": "NotFound", "message": "worker w-1 not found", "field": "worker_id"}
    check_against_the_document("GET", "/workers/w-1", {"statusCode": 404, "body": json.dumps(ok)})
    check_against_the_document(
        "GET", "/workers", {"statusCode": 200, "body": json.dumps({"items": [], "next_token": None})}
    )
