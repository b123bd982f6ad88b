"""What every request passes before Powertools validates it: the role, the route, the body.

Powertools' request validation parses the body by Content-Type and lets some inputs escape as
exceptions (a multipart type without a boundary raises ValueError, a body that is not UTF-8
raises UnicodeDecodeError, JSON nested past Python's recursion limit raises RecursionError):
each would be a 500. It also parses form bodies, whose values then come back in 422 messages
(a licence token sent as a form is a credential echoed). So the guard reads the body first,
once, and turns every way it can be unreadable into a clear 4xx in the API's error shape:
400 (not UTF-8, not JSON, invalid Unicode, nested too deep), 413 (too large), 415 (not JSON).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from cmlcm.domain.errors import BadRequest, DomainError, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from cmlcm.handlers.api.auth import RoleRequirement, authorize

#: JSON request bodies above this are refused (413) before parsing. The largest real document,
#: the settings with per-region user data (16 KiB each), stays far below; API Gateway's own
#: limit (10 MB) would otherwise let a caller make the function parse megabytes of JSON.
MAX_JSON_BODY_BYTES = 256 * 1024

#: Nesting deeper than this is no document of this API (the deepest, settings, is 3 levels).
MAX_JSON_DEPTH = 32

JSON_MEDIA_TYPE = "application/json"


class MethodNotAllowed(DomainError):
    """The path exists, with other methods (405, `Allow` lists them)."""

    http_status = 405
    code = "MethodNotAllowed"

    def __init__(self, message: str, *, allow: list[str]) -> None:
        super().__init__(message)
        self.allow = allow


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` → `application/json` (case-insensitive, as HTTP says)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _check_charset(content_type: str) -> None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("JSON bodies must be UTF-8", field="Content-Type")


def _depth_and_text_ok(document: Any) -> None:
    """Walk the parsed JSON without recursion: too deep is 400, a lone surrogate (`"\\ud800"`,
    valid JSON but no Unicode text) is 400 before it reaches DynamoDB or EC2, which cannot
    encode it."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"the request body is nested deeper than {MAX_JSON_DEPTH} levels", field="body")
        if isinstance(value, str):
            _text_ok(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _text_ok(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def _text_ok(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the request body holds a string that is not valid Unicode", field="body") from None


def check_json_body(event: Any) -> None:
    """Refuse a body the route's JSON model could not be read from (400/413/415); an empty body
    is left to the model (required or not)."""
    raw = event.get("body")
    if raw is None or raw == "":
        return
    if len(raw) > MAX_JSON_BODY_BYTES * (4 / 3 if event.get("isBase64Encoded") else 1):
        raise PayloadTooLarge(f"the request body is larger than {MAX_JSON_BODY_BYTES} bytes", field="body")
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = str(headers.get("content-type") or "")
    if media_type(content_type) not in ("", JSON_MEDIA_TYPE):
        raise UnsupportedMediaType(
            f"this route takes {JSON_MEDIA_TYPE}, not {media_type(content_type)!r}", field="Content-Type"
        )
    _check_charset(content_type)
    try:
        text = event.decoded_body
    except (UnicodeDecodeError, ValueError):  # binascii.Error is a ValueError
        raise BadRequest("the request body is not UTF-8 text", field="body") from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_JSON_BODY_BYTES:
        raise PayloadTooLarge(f"the request body is larger than {MAX_JSON_BODY_BYTES} bytes", field="body")
    try:
        document = json.loads(text)
    except RecursionError:
        raise BadRequest("the request body is nested too deeply", field="body") from None
    except ValueError:  # JSONDecodeError
        raise BadRequest("the request body is not valid JSON", field="body") from None
    _depth_and_text_ok(document)
    if document is not None and not isinstance(document, dict):
        # Every JSON body of this API is an object; Powertools would read `[null, null]` as an
        # absent optional body and act on it.
        raise ValidationFailed("the request body must be a JSON object", field="body")


def allowed_methods(app: Any, path: str) -> list[str]:
    """The methods of the resource `path` is, as the OpenAPI document reads it: of the route
    templates matching it, the most specific (fewest parameters) win, so `/workers/import` is
    its own resource (POST) and not `/workers/{worker_id}` (GET, DELETE)."""
    matching = [r for r in [*app._static_routes, *app._dynamic_routes] if r.rule.match(path)]
    if not matching:
        return []
    fewest = min(r.path.count("<") for r in matching)
    return sorted({r.method.upper() for r in matching if r.path.count("<") == fewest})


class RequestGuard:
    """Wraps the resolver's request-validation middleware (which Powertools always runs first):
    the caller's role is checked before any body or query is looked at (a viewer must not learn
    the validation rules from 422s), then the route itself, then the body."""

    def __init__(self, validation: Callable[[Any, NextMiddleware], Response[Any]]) -> None:
        self._validation = validation
        self.__name__ = "request_guard"  # Powertools logs middleware names

    def __call__(self, app: Any, next_middleware: NextMiddleware) -> Response[Any]:
        route = app.context.get("_route")
        event = app.current_event
        for middleware in getattr(route, "middlewares", None) or []:
            if isinstance(middleware, RoleRequirement):
                authorize(event.raw_event, middleware.minimum)
        if route is not None and route in app._dynamic_routes:
            # A template also matches paths of more specific resources (`DELETE
            # /workers/{id}/labs/refresh` would reach the lab `refresh`): those answer 405.
            path = app.context.get("_path") or event.path
            allow = allowed_methods(app, path)
            if event.http_method.upper() not in allow:
                raise MethodNotAllowed(f"{path} takes {', '.join(allow)}", allow=allow)
        dependant = getattr(route, "dependant", None) if route is not None else None
        if dependant is not None and dependant.body_params:
            check_json_body(event)
        return self._validation(app, next_middleware)


def install(app: Any) -> None:
    """Put the guard in front of the validation of a resolver built with enable_validation=True.

    Why a private attribute: Powertools (3.37.0, the newest release) has no supported hook that
    runs before request validation. Each route's stack is built (`Route._build_middleware_stack`)
    as the resolver's `_request_validation_middleware`, then `app.use()` and route middlewares,
    then response validation; that order is the documented design since the validation split of
    aws-powertools/powertools-lambda-python#7050. The one supported place before validation is
    the Lambda handler ahead of `resolve()`, but the guard needs the route the resolver matched
    (its role requirement, its body parameters, the 405 rule), and route matching is private
    too. So the resolver's own validation middleware is wrapped, and this fails at import (cold
    start) if a Powertools upgrade moves it, instead of silently validating before the role
    check; tests/unit/test_role_matrix.py proves 403 comes before 422 on every route.
    """
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware

    validation = getattr(app, "_request_validation_middleware", None)
    if not isinstance(validation, OpenAPIRequestValidationMiddleware):
        raise RuntimeError(
            "Powertools no longer keeps its request validation middleware in "
            "`_request_validation_middleware`: the request guard cannot run before validation"
        )
    app._request_validation_middleware = RequestGuard(validation)
