"""Builds real API Gateway event shapes, for the local gateway and for tests.

The REST shape is what API Gateway sends a Lambda proxy integration behind a Cognito user pool
authorizer: the verified claims sit in `requestContext.authorizer.claims`.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

#: The development users of the local mode, one per role (token = "dev-<role>").
DEV_USERS: dict[str, dict[str, str]] = {
    role: {
        "sub": f"00000000-0000-0000-0000-00000000000{i}",
        "email": f"{role}@example.com",
        "cognito:username": f"dev-{role}",
        "cognito:groups": role,
    }
    for i, role in enumerate(("admin", "operator", "viewer"), start=1)
}


def claims_for_token(authorization: str | None) -> dict[str, str] | None:
    """Claims of a dev token (`Bearer dev-admin`), or None when the token is not a dev user's."""
    if not authorization:
        return None
    token = authorization.removeprefix("Bearer ").strip()
    role = token.removeprefix("dev-")
    if token.startswith("dev-") and role in DEV_USERS:
        return dict(DEV_USERS[role])
    return None


def rest_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: str | dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    claims: dict[str, str] | None = None,
    stage: str = "local",
) -> dict[str, Any]:
    """An API Gateway REST proxy event (`{proxy+}` resource) for `method path`."""
    if isinstance(query, str):
        pairs = parse_qsl(query, keep_blank_values=True)
    else:
        pairs = list((query or {}).items())
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    headers = dict(headers or {})
    if not any(key.lower() == "content-type" for key in headers):
        headers["Content-Type"] = "application/json"
    is_base64 = False
    if body is None or isinstance(body, str):
        raw_body = body
    elif isinstance(body, bytes):
        try:
            raw_body = body.decode()
        except UnicodeDecodeError:
            raw_body, is_base64 = base64.b64encode(body).decode(), True
    else:
        raw_body = json.dumps(body)
    request_id = str(uuid.uuid4())
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "local",
        "httpMethod": method,
        "path": f"/{stage}{path}",
        "resourcePath": "/{proxy+}",
        "resourceId": "local",
        "requestId": request_id,
        "requestTimeEpoch": int(time.time() * 1000),
        "stage": stage,
        "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "local")},
        "protocol": "HTTP/1.1",
    }
    if claims is not None:
        context["authorizer"] = {"claims": claims}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": single or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": context,
        "body": raw_body,
        "isBase64Encoded": is_base64,
    }


class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context object."""

    def __init__(self, function_name: str = "local") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000
