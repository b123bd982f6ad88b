"""The REST API Lambda: one Powertools resolver, validation from pydantic, errors mapped once.

Every answer that is not a success is `{"error", "message", "field"}` (`ErrorBody`): domain
errors, validation, unknown routes (404), known paths with another method (405 + `Allow`),
and anything unexpected (500, logged with its stack). Each request is logged once, as one
structured line: route, method, user, role, status, latency, correlation id; never a body or a
query value.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.errors import DomainError, RateLimited
from cmlcm.handlers.api import (
    openapi_doc,
    request_guard,
    routes_jobs,
    routes_labs,
    routes_policy,
    routes_settings,
    routes_workers,
)
from cmlcm.handlers.api.auth import caller_claims, caller_name, caller_role
from cmlcm.handlers.api.request_guard import MethodNotAllowed, allowed_methods
from cmlcm.services.jobs import health_report

logger = Logger()
tracer = Tracer()

_settings = get_config()  # fail fast on a broken environment, at cold start


def cors_config(origin: str) -> CORSConfig | None:
    """CORS for the dashboard's origin only (preflights reach this function unauthenticated)."""
    if not origin:
        return None
    return CORSConfig(
        allow_origin=origin,
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=["Retry-After"],
        max_age=600,
    )


app = APIGatewayRestResolver(enable_validation=True, cors=cors_config(_settings.dashboard_origin))
request_guard.install(app)
app.include_router(routes_workers.router)
app.include_router(routes_settings.router)
app.include_router(routes_labs.router)
app.include_router(routes_policy.router)
app.include_router(routes_jobs.router)

OPENAPI_TITLE = "CML Cloud Manager API"


def _error(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": code, "message": message, "field": field},
        headers=headers,
    )


@app.exception_handler(DomainError)
def _domain_error(exc: DomainError) -> Response[Any]:
    if exc.http_status >= 500:
        logger.warning("upstream fault", extra={"error": exc.code, "detail": exc.message})
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    elif isinstance(exc, MethodNotAllowed):
        headers = {"Allow": ", ".join(exc.allow)}
    return _error(exc.http_status, exc.code, exc.message, exc.field, headers)


def _field_of(error: dict[str, Any]) -> str:
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
    return ".".join(location) or str(error.get("loc", ("body",))[0])


@app.exception_handler(RequestValidationError)
def _validation_error(exc: RequestValidationError) -> Response[Any]:
    # Only pydantic's `msg` and the location are used: `input` (the value sent) is never echoed,
    # whatever field it was sent in.
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return _error(400, "BadRequest", "the request body is not valid JSON", "body")
    first = errors[0] if errors else {}
    field = _field_of(first)
    details = "; ".join(f"{_field_of(e)}: {e.get('msg', 'invalid')}" for e in errors)
    return _error(422, "ValidationFailed", details or "invalid request", field)


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    return _error(415, "UnsupportedMediaType", "this route takes application/json", "Content-Type")


@app.not_found
def _not_found(_: NotFoundError) -> Response[Any]:
    event = app.current_event
    allow = allowed_methods(app, event.path)
    if allow:
        return _error(
            405, "MethodNotAllowed", f"{event.path} takes {', '.join(allow)}", None, {"Allow": ", ".join(allow)}
        )
    return _error(404, "NotFound", f"no route {event.http_method} {event.path}", None)


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[Any]:
    # Not hidden: logged with its stack, and the 5xx alarm counts it. The body says nothing
    # about the failure (it may hold request values).
    logger.exception("unhandled error", extra={"error": type(exc).__name__})
    return _error(500, "InternalError", "the request failed; it is logged under its request id", None)


@app.get("/health", summary="Liveness and scheduled-job health (public)")
def health() -> dict[str, Any]:
    """Always 200 when the API answers; `status` is `degraded` when a job is overdue or failed."""
    return health_report(current().jobs, current().settings.get(), now=current().now())


@app.get("/openapi.json", summary="This API's OpenAPI 3.1 document (public)")
def openapi() -> dict[str, Any]:
    """The document clients and the fuzz suite read (see `openapi_doc`)."""
    return openapi_document()


def openapi_document() -> dict[str, Any]:
    """The API's exact OpenAPI document (generated by Powertools, completed by `openapi_doc`)."""
    generated = json.loads(app.get_openapi_json_schema(title=OPENAPI_TITLE, version="1.0.0"))
    return openapi_doc.document(generated, regions=get_config().regions)


def route_of(method: str, path: str) -> str:
    """The route template a request went to (`/workers/<worker_id>`), or `-` for none; logs name
    the route, not the path, so ids typed into URLs are not what an operator searches by."""
    for route in [*app._static_routes, *app._dynamic_routes]:
        if route.method.upper() == method.upper() and route.rule.match(path):
            return route.path
    return "-"


def log_request(event: dict[str, Any], status: int, started: float) -> None:
    """One structured line per request: who did what, with what result and how fast."""
    claims = caller_claims(event)
    role = caller_role(claims)
    context = event.get("requestContext") or {}
    method = str(event.get("httpMethod") or "")
    logger.info(
        "request",
        extra={
            "route": route_of(method, str(event.get("path") or "")),
            "method": method,
            "user": caller_name(event),
            "role": role.name.lower() if role else None,
            "status": status,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "request_id": context.get("requestId"),
        },
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    result = app.resolve(event, context)
    log_request(event, int(result.get("statusCode", 0)), started)
    return result
