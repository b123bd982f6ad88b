"""Lambda invocations dispatched to in-process Python handlers.

Why `invoke` of moto's Lambda backend: every path that runs a Lambda under moto ends there. With
`{"lambda": {"use_docker": False}}` the backend is `LambdaSimpleBackend` (moto/awslambda_simple),
whose `invoke` echoes the payload; with docker it is `LambdaBackend`. Both are wrapped. The Step
Functions executor (plain-ARN Task resources via `StateTaskLambda`, and the
`arn:aws:states:::lambda:invoke` integration via `StateTaskServiceLambda`) calls
`boto3.client("lambda").invoke(...)` through moto's stubber (see
moto/stepfunctions/parser/asl/component/state/exec/state_task/lambda_eval_utils.py), and so does
any product code that invokes a function. Overriding this one backend method keeps moto's own
function lookup (name, ARN, partial ARN, qualifier; `ResourceNotFoundException` for unknown
functions), its response headers and its Step Functions error mapping (`FunctionError` ->
the payload's `errorType` becomes the state's error name), so Catch/Retry behave as on AWS.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend

from cmlcm_local.moto_glue._patch import patch

#: A Lambda handler as the Python runtime calls it: `handler(event, context)`.
LambdaHandler = Callable[[Any, Any], Any]
#: Builds the context object a handler receives, from the invoked moto function.
ContextFactory = Callable[[Any], Any]
#: The backends whose `invoke` is wrapped (with and without docker).
BACKENDS = (LambdaBackend, LambdaSimpleBackend)

_LOG = logging.getLogger("cmlcm_local.lambda")
_handlers: dict[tuple[str, str, str], tuple[LambdaHandler, ContextFactory]] = {}
_handlers_lock = threading.Lock()


def register_lambda_handler(
    account_id: str, region: str, function_name: str, handler: LambdaHandler, context_factory: ContextFactory
) -> None:
    """Route invocations of moto function `function_name` (in that account/region) to `handler`."""
    with _handlers_lock:
        _handlers[(account_id, region, function_name)] = (handler, context_factory)


def unregister_lambda_handler(account_id: str, region: str, function_name: str) -> None:
    """Stop routing a function; moto's own (docker or canned) invoke applies again."""
    with _handlers_lock:
        _handlers.pop((account_id, region, function_name), None)


def _error_payload(error_type: str, message: str, request_id: str, stack: list[str]) -> bytes:
    # The shape the AWS Python runtime writes for an unhandled exception.
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack}
    ).encode()


def _run_handler(fn: Any, handler: LambdaHandler, context_factory: ContextFactory, body: Any) -> tuple[bytes, bool]:
    """Runs one invocation the way the Lambda Python runtime does; returns (payload, errored)."""
    raw = body.decode() if isinstance(body, bytes) else body
    event = json.loads(raw) if raw else {}
    context = context_factory(fn)
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    try:
        result = handler(event, context)
    except Exception as exc:  # noqa: BLE001 - reported to the caller exactly as the Lambda runtime does
        _LOG.warning("Lambda %s raised %s: %s", fn.function_name, type(exc).__name__, exc, exc_info=True)
        stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])  # minus this frame
        return _error_payload(type(exc).__name__, str(exc), request_id, stack), True
    try:
        return json.dumps(result).encode(), False
    except (TypeError, ValueError) as exc:
        # A handler must return JSON-able data (no datetimes, sets, models): AWS fails the same way.
        message = f"Unable to marshal response: {exc}"
        _LOG.error("Lambda %s returned a non-JSON result (%s): %r", fn.function_name, exc, result)
        return _error_payload("Runtime.MarshalError", message, request_id, []), True


def _dispatch_or(original: Any) -> Any:
    """Wraps a backend's `invoke`: registered functions run their handler, others `original`."""

    def invoke(
        self: LambdaBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> str | bytes | None:
        fn = self.get_function(function_name, qualifier)  # name, ARN or partial ARN, as AWS
        with _handlers_lock:
            route = _handlers.get((fn.account_id, fn.region, fn.function_name))
        if route is None:
            return original(self, function_name, qualifier, body, headers, response_headers)
        handler, context_factory = route
        invocation_type = {str(k).lower(): v for k, v in dict(headers or {}).items()}.get(
            "x-amz-invocation-type", "RequestResponse"
        )
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            # Asynchronous invoke: AWS queues it and answers 202 at once.
            threading.Thread(
                target=_run_handler,
                args=(fn, handler, context_factory, body),
                daemon=True,
                name=f"lambda-event-{fn.function_name}",
            ).start()
            return b""
        payload, errored = _run_handler(fn, handler, context_factory, body)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["x-amz-log-result"] = base64.b64encode(b"").decode()
        response_headers["Content-Length"] = str(len(payload))
        return payload

    return invoke


def install() -> None:
    for backend in BACKENDS:
        # Each backend's own `invoke` (LambdaSimpleBackend overrides LambdaBackend's).
        patch(backend, "invoke", _dispatch_or(backend.__dict__["invoke"]))
