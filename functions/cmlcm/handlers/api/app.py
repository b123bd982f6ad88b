"""The REST API Lambda: one Powertools resolver, validation from pydantic, errors mapped once."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cmlcm.config import get_settings
from cmlcm.domain.errors import DomainError, RateLimited
from cmlcm.handlers.api import deps, routes_labs, routes_settings, routes_workers
from cmlcm.handlers.api.auth import authorize_before_validation
from cmlcm.services.jobs import health_report

logger = Logger()
tracer = Tracer()

get_settings()  # fail fast on a broken environment, at cold start

app = APIGatewayRestResolver(enable_validation=True)
authorize_before_validation(app)
app.include_router(routes_workers.router)
app.include_router(routes_settings.router)
app.include_router(routes_labs.router)

OPENAPI_TITLE = "CML Cloud Manager API"


def _error(status: int, code: str, message: str, field: str | None = None, headers: dict | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": code, "message": message, "field": field},
        headers=headers,
    )


@app.exception_handler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    if exc.http_status >= 500:
        logger.warning("upstream fault", extra={"error": exc.code, "detail": exc.message})
    headers = {"Retry-After": str(exc.retry_after_seconds)} if isinstance(exc, RateLimited) else None
    return _error(exc.http_status, exc.code, exc.message, exc.field, headers)


def _field_of(error: dict[str, Any]) -> str:
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
    return ".".join(location) or str(error.get("loc", ("body",))[0])


@app.exception_handler(RequestValidationError)
def _validation_error(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return _error(400, "BadRequest", "the request body is not valid JSON", "body")
    first = errors[0] if errors else {}
    field = _field_of(first)
    details = "; ".join(f"{_field_of(e)}: {e.get('msg', 'invalid')}" for e in errors)
    return _error(422, "ValidationFailed", details or "invalid request", field)


@app.get("/health", summary="Liveness and scheduled-job health (public)")
def health() -> dict[str, Any]:
    """Always 200 when the API answers; `status` is `degraded` when a job is overdue or failed."""
    return health_report(deps.ops().jobs, deps.ports().settings.get(), now=deps.now())


@app.get("/openapi.json", summary="This API's OpenAPI 3.1 document (public)")
def openapi() -> dict[str, Any]:
    return json.loads(app.get_openapi_json_schema(title=OPENAPI_TITLE, version="1.0.0"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
