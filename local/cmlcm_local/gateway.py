"""Local stand-in for API Gateway: HTTP requests become REST proxy events for the real handler.

Like the Cognito authorizer, it refuses calls without a valid token (401) before the Lambda runs,
except on the public paths. Tokens are the dev users' (`Authorization: Bearer dev-admin`).

Each proxied answer carries a `Server-Timing` header (local mode only): `queue` (waiting for the
one API instance), `handler` (the function's wall time) and `cpu` (its thread's CPU time), in ms.
Browsers expose it as `PerformanceResourceTiming.serverTiming`; the dashboard benchmark reads it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmlcm.handlers.api.auth import PUBLIC_PATHS
from cmlcm_local.events import FakeLambdaContext, claims_for_token, rest_event

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_response(result: dict[str, Any]) -> Response:
    """Turn a Lambda proxy result into an HTTP response, as API Gateway does."""
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = dict(result.get("headers") or {})
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(values)
    headers.pop("Content-Length", None)
    return Response(content=raw, status_code=int(result.get("statusCode", 200)), headers=headers)


def build_gateway(
    api_handler: LambdaHandler, stage: str = "local", extra_routes: list[Route] | None = None
) -> Starlette:
    """A Starlette app that proxies every path to `api_handler` (after `extra_routes`, the local
    mode's own `/_local/...` tools)."""
    # A Lambda instance serves one request at a time, and the Powertools resolver keeps the
    # current request in module state: concurrent browser requests would mix their routes up.
    one_at_a_time = threading.Lock()

    def invoke(event: dict[str, Any]) -> tuple[dict[str, Any], str]:
        queued = time.perf_counter()
        with one_at_a_time:
            started, cpu = time.perf_counter(), time.thread_time()
            result = api_handler(event, FakeLambdaContext("api"))
            ended, cpu = time.perf_counter(), time.thread_time() - cpu
        timing = (
            f"queue;dur={(started - queued) * 1000:.1f}, handler;dur={(ended - started) * 1000:.1f}, "
            f"cpu;dur={cpu * 1000:.1f}"
        )
        return result, timing

    async def proxy(request: Request) -> Response:
        path = request.scope["path"]
        claims = claims_for_token(request.headers.get("authorization"))
        if claims is None and path not in PUBLIC_PATHS:
            # The API's one error shape, as API Gateway's UNAUTHORIZED gateway response answers it.
            return Response(
                json.dumps({"error": "Unauthorized", "message": "a valid bearer token is required", "field": None}),
                status_code=401,
                media_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = await request.body()
        event = rest_event(
            request.method,
            path,
            body=body or None,
            query=request.url.query,
            headers={k: v for k, v in request.headers.items()},
            claims=claims,
            stage=stage,
        )
        result, timing = await run_in_threadpool(invoke, event)
        response = lambda_response(result)
        response.headers["Server-Timing"] = timing
        return response

    # Every method reaches the function (as `ANY` does on API Gateway), which answers 405 + Allow.
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    gateway = Starlette(
        routes=[*(extra_routes or []), Route("/{path:path}", proxy, methods=methods)],
        # As the REST API's MinimumCompressionSize (1 KiB) and CloudFront do: gzip for clients that
        # accept it. Level 1: on loopback the bytes matter less than this one process's CPU.
        middleware=[Middleware(GZipMiddleware, minimum_size=1024, compresslevel=1)],
    )

    async def unmatched(scope: Any, receive: Any, send: Any) -> None:
        # Starlette's `{path:path}` does not match a path holding a newline (`%0A`); API
        # Gateway's `{proxy+}` does, so those go to the function too instead of a text/plain 404.
        if scope["type"] != "http":
            return
        response = await proxy(Request(scope, receive))
        await response(scope, receive, send)

    gateway.router.default = unmatched
    return gateway
