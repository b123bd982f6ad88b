"""The few places where moto (pinned 5.2.x) needs help to stand in for AWS in local mode/tests.

Each patch is small, idempotent, and covered by tests/integration/test_moto_glue.py, so a moto
upgrade that changes the patched method fails loudly instead of silently. `install()` also makes
the paths that grow with the account cost what AWS's do (see `moto_scale_glue`).
"""

from __future__ import annotations

from typing import Any

import moto
from moto.core.responses import ActionResult
from moto.ec2.responses.monitoring import Monitoring

from cmlcm_local import moto_scale_glue

SUPPORTED_MOTO = "5.2."


def _set_monitoring(response: Any, state: str) -> ActionResult:
    ids = response._get_param("InstanceIds", [])
    instances = response.ec2_backend.get_multi_instances_by_id(ids)
    for instance in instances:
        instance.monitoring_state = state
    return ActionResult(
        {"InstanceMonitorings": [{"InstanceId": i.id, "Monitoring": {"State": state}} for i in instances]}
    )


def _monitor_instances(self: Monitoring) -> ActionResult:
    self.error_on_dryrun()
    return _set_monitoring(self, "enabled")


def _unmonitor_instances(self: Monitoring) -> ActionResult:
    self.error_on_dryrun()
    return _set_monitoring(self, "disabled")


# --- DynamoDB conditional writes made atomic -----------------------------------------------------
#
# moto evaluates a ConditionExpression and then writes, with no lock between the two: two threads
# saving the same worker at version N can both pass `version = N` and one update is silently lost
# (seen in CI as a lost tag under eight concurrent PUT /tags). DynamoDB itself applies each
# conditional write atomically, and optimistic locking depends on it, so every item write of
# moto's DynamoDB backend runs under one lock here.

import functools as _functools  # noqa: E402
import threading as _threading  # noqa: E402

from moto.dynamodb.models import DynamoDBBackend  # noqa: E402

DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_dynamodb_write_lock = _threading.RLock()
_SERIALIZED = "_cmlcm_serialized"


def _serialized(method: Any) -> Any:
    if getattr(method, _SERIALIZED, False):
        return method

    @_functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _dynamodb_write_lock:
            return method(*args, **kwargs)

    setattr(locked, _SERIALIZED, True)
    return locked


def install() -> None:
    """Apply the patches (safe to call more than once)."""
    if not moto.__version__.startswith(SUPPORTED_MOTO):
        raise RuntimeError(f"moto {moto.__version__} is not the pinned {SUPPORTED_MOTO}x this glue was written for")
    # Monkeypatches of moto's handlers (method-assign); ours return moto's ActionResult where
    # moto's annotation still says str (assignment).
    Monitoring.monitor_instances = _monitor_instances  # type: ignore[method-assign, assignment]
    Monitoring.unmonitor_instances = _unmonitor_instances  # type: ignore[method-assign, assignment]
    for name in DYNAMODB_WRITES:
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))
    moto_scale_glue.install()


# --- Lambda invocations dispatched to in-process Python handlers -------------------------------
#
# Why `invoke` of moto's Lambda backend: every path that runs a Lambda under moto ends there. With
# `{"lambda": {"use_docker": False}}` the backend is `LambdaSimpleBackend` (moto/awslambda_simple),
# whose `invoke` echoes the payload; with docker it is `LambdaBackend`. Both are wrapped. The Step
# Functions executor (plain-ARN Task resources via `StateTaskLambda`, and the
# `arn:aws:states:::lambda:invoke` integration via `StateTaskServiceLambda`) calls
# `boto3.client("lambda").invoke(...)` through moto's stubber (see
# moto/stepfunctions/parser/asl/component/state/exec/state_task/lambda_eval_utils.py), and so does
# any product code that invokes a function. Overriding this one backend method keeps moto's own
# function lookup (name, ARN, partial ARN, qualifier; `ResourceNotFoundException` for unknown
# functions), its response headers and its Step Functions error mapping (`FunctionError` ->
# the payload's `errorType` becomes the state's error name), so Catch/Retry behave as on AWS.

import base64 as _base64  # noqa: E402
import json as _json  # noqa: E402
import logging as _logging  # noqa: E402
import traceback as _traceback  # noqa: E402
import uuid as _uuid  # noqa: E402
from collections.abc import Callable as _Callable  # noqa: E402

from moto.awslambda.models import LambdaBackend  # noqa: E402
from moto.awslambda_simple.models import LambdaSimpleBackend  # noqa: E402

#: A Lambda handler as the Python runtime calls it: `handler(event, context)`.
LambdaHandler = _Callable[[Any, Any], Any]
#: Builds the context object a handler receives, from the invoked moto function.
ContextFactory = _Callable[[Any], Any]

_LOG = _logging.getLogger("cmlcm_local.lambda")
_lambda_handlers: dict[tuple[str, str, str], tuple[LambdaHandler, ContextFactory]] = {}
_lambda_handlers_lock = _threading.Lock()
_ORIGINAL_INVOKE = "_cmlcm_original_invoke"


def register_lambda_handler(
    account_id: str, region: str, function_name: str, handler: LambdaHandler, context_factory: ContextFactory
) -> None:
    """Route invocations of moto function `function_name` (in that account/region) to `handler`."""
    with _lambda_handlers_lock:
        _lambda_handlers[(account_id, region, function_name)] = (handler, context_factory)


def unregister_lambda_handler(account_id: str, region: str, function_name: str) -> None:
    """Stop routing a function; moto's own (docker or canned) invoke applies again."""
    with _lambda_handlers_lock:
        _lambda_handlers.pop((account_id, region, function_name), None)


def _error_payload(error_type: str, message: str, request_id: str, stack: list[str]) -> bytes:
    # The shape the AWS Python runtime writes for an unhandled exception.
    return _json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack}
    ).encode()


def _run_handler(fn: Any, handler: LambdaHandler, context_factory: ContextFactory, body: Any) -> tuple[bytes, bool]:
    """Runs one invocation the way the Lambda Python runtime does; returns (payload, errored)."""
    raw = body.decode() if isinstance(body, bytes) else body
    event = _json.loads(raw) if raw else {}
    context = context_factory(fn)
    request_id = getattr(context, "aws_request_id", None) or str(_uuid.uuid4())
    try:
        result = handler(event, context)
    except Exception as exc:  # noqa: BLE001 - reported to the caller exactly as the Lambda runtime does
        _LOG.warning("Lambda %s raised %s: %s", fn.function_name, type(exc).__name__, exc, exc_info=True)
        stack = _traceback.format_list(_traceback.extract_tb(exc.__traceback__)[1:])  # minus this frame
        return _error_payload(type(exc).__name__, str(exc), request_id, stack), True
    try:
        return _json.dumps(result).encode(), False
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
        with _lambda_handlers_lock:
            route = _lambda_handlers.get((fn.account_id, fn.region, fn.function_name))
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
            _threading.Thread(
                target=_run_handler,
                args=(fn, handler, context_factory, body),
                daemon=True,
                name=f"lambda-event-{fn.function_name}",
            ).start()
            return b""
        payload, errored = _run_handler(fn, handler, context_factory, body)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["x-amz-log-result"] = _base64.b64encode(b"").decode()
        response_headers["Content-Length"] = str(len(payload))
        return payload

    setattr(invoke, _ORIGINAL_INVOKE, original)
    return invoke


def install_lambda_dispatch() -> None:
    """Route invocations of registered functions to in-process handlers (idempotent)."""
    if not moto.__version__.startswith(SUPPORTED_MOTO):
        raise RuntimeError(f"moto {moto.__version__} is not the pinned {SUPPORTED_MOTO}x this glue was written for")
    for backend in (LambdaBackend, LambdaSimpleBackend):
        current = backend.__dict__["invoke"]
        if not hasattr(current, _ORIGINAL_INVOKE):
            backend.invoke = _dispatch_or(current)  # type: ignore[method-assign]  # monkeypatch of moto


# --- Step Functions Retry intervals, scaled for tests and local mode ----------------------------
#
# moto's executor really sleeps `IntervalSeconds * BackoffRate^n` between attempts
# (moto/stepfunctions/parser/asl/component/common/retry/retrier_decl.py calls `time.sleep`), and
# ASL requires IntervalSeconds >= 1, so each retry costs seconds. The product's ASL keeps its real
# intervals; local mode and tests shrink the sleeps instead.

import time as _time  # noqa: E402


class _ScaledSleep:
    """Stands in for the `time` module inside moto's retrier: only `sleep` is scaled."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def sleep(self, seconds: float) -> None:
        _time.sleep(seconds * self.scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


def set_retry_interval_scale(scale: float) -> None:
    """Make Step Functions Retry sleeps `scale` times their ASL value (1.0 restores real time)."""
    if not moto.__version__.startswith(SUPPORTED_MOTO):
        raise RuntimeError(f"moto {moto.__version__} is not the pinned {SUPPORTED_MOTO}x this glue was written for")
    if scale < 0:
        raise ValueError("scale must be >= 0")
    # Imported here: the Step Functions parser (antlr) is heavy and most users never need it.
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl as _retrier_decl

    _retrier_decl.time = _time if scale == 1.0 else _ScaledSleep(scale)  # type: ignore[assignment]  # monkeypatch: a scaled clock


def retry_interval_scale() -> float:
    """The current Retry sleep scale (1.0 = real time)."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl as _retrier_decl

    current = _retrier_decl.time
    return current.scale if isinstance(current, _ScaledSleep) else 1.0


# --- Step Functions: a state machine can be started more than once -------------------------------
#
# moto 5.2.1 bug getmoto/moto#10077 (fixed upstream by PR #10093, not in 5.2.1): with the executor
# on, `StepFunctionsParserBackend.start_execution` snapshots the machine with
# `copy.deepcopy(state_machine)`, which walks `state_machine.executions` into the previous
# executions' live threads and locks, so every StartExecution after the first fails with
# "TypeError: cannot pickle '_thread.RLock' object". The machine's `backend` attribute drags every
# other machine (and its executions) into the copy too, so once any machine has run, starting a
# different one fails the same way. As upstream does, the snapshot gets empty execution lists, and
# it shares the backend instead of copying it: `copy` in moto's parser models module is replaced
# by a shim whose `deepcopy` pre-seeds the memo.

import copy as _copy  # noqa: E402


class _SnapshotCopy:
    """Stands in for the `copy` module inside moto.stepfunctions.parser.models."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        memo = dict(memo or {})
        instances = [value, *getattr(value, "versions", {}).values()] if hasattr(value, "executions") else []
        for instance in instances:
            executions = getattr(instance, "executions", None)
            if isinstance(executions, list):
                memo[id(executions)] = []
        backend = getattr(value, "backend", None) if instances else None
        if backend is not None:
            memo[id(backend)] = backend
        return _copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(_copy, name)


def install_sfn_restart_fix() -> None:
    """Let a state machine be started again under the executor (idempotent)."""
    if not moto.__version__.startswith(SUPPORTED_MOTO):
        raise RuntimeError(f"moto {moto.__version__} is not the pinned {SUPPORTED_MOTO}x this glue was written for")
    from moto.stepfunctions.parser import models as _parser_models

    _parser_models.copy = _SnapshotCopy()  # type: ignore[assignment]  # monkeypatch of moto's copy
