"""Runs the product's real Step Functions ASL under moto, with Lambda tasks served in-process.

Local mode and the statemachine tests enter `mock_aws(config=MOTO_CONFIG)` (the Step Functions
executor on, no Lambda docker), then:

    lambdas = LocalLambdas()
    plan_arn = lambdas.register("collect-plan", collect.plan_handler)
    machines = LocalStateMachines()
    machines.create("collect-metrics", "statemachines/collect_metrics.asl.json",
                    {"CollectPlanFunctionArn": plan_arn, ...})
    status, output = machines.run("collect-metrics", {"trigger": "schedule"}, timeout_s=30)

`LocalLambdas.register` creates a real moto Lambda function (so ARNs, `GetFunction` and the
Step Functions parser's `lambda.invoke` calls work unchanged) and routes its invocations to the
Python handler through `moto_glue.lambda_dispatch` (an override of `invoke` on moto's
Lambda backend: `LambdaSimpleBackend.invoke` under `use_docker: False`, `LambdaBackend.invoke`
otherwise). A handler runs like under the AWS Python runtime: the event is the
decoded JSON payload, the return value is JSON-serialised (a non-JSON value such as a datetime
fails the invocation with `Runtime.MarshalError`), and an exception of class `X` is reported as
`errorType` `X`, `errorMessage` `str(exc)`, so ASL `Retry`/`Catch` on `"X"` match and the state's
`Cause` is the runtime's JSON error document, as on AWS. Handler exceptions never reach moto's
executor threads.

Threads: moto runs each execution in a daemon thread, and each Task state (and each Map
iteration / Parallel branch) in further threads, so handlers run concurrently and off the
caller's thread. Both classes here are safe to use from several threads (gateway request
threads, the scheduler loop). Handlers must be thread-safe themselves.

What moto's executor supports (moto 5.2.5, JSONPath)
-----------------------------------------------------
Checked by tests/statemachines/test_moto_sfn_features.py (fixtures in tests/statemachines/
fixtures/) unless marked "source" (read in moto's code, not exercised) or "probe" (tried once).

Works as on AWS:
- Lambda Task, both forms. `arn:aws:states:::lambda:invoke` + Parameters.FunctionName/Payload:
  result is the invoke response (data under `$.Payload`). Plain function ARN as Resource: result
  is the payload. A handler exception of class X -> state error "X", Cause = the runtime's JSON
  error document ({"errorMessage","errorType","requestId","stackTrace"}), for both forms.
  Lambda API errors -> "Lambda.<Code>" (e.g. Lambda.ResourceNotFoundException). AWS's transient
  Lambda.ServiceException / Lambda.TooManyRequestsException etc. never occur locally (keep them in
  Retry anyway); an exception class named ServiceException yields "ServiceException".
- Choice (And/Or/Not, IsPresent, numeric/string ops, Default), Pass, Succeed, Fail (Error/Cause
  and ErrorPath/CausePath).
- Parallel (branches in threads, output = list of branch outputs).
- Map, inline, both spellings (ItemProcessor+ItemSelector, Iterator+Parameters): ItemsPath,
  $$.Map.Item.Value/Index, MaxConcurrency and MaxConcurrencyPath honoured (bounded worker pool;
  observed peak <= limit, and > 1 so items really overlap; 0 = unlimited, probe), results in item
  order. A failing item fails the Map with that item's error name (catchable on the Map).
  ToleratedFailurePercentage/Count are rejected by the parser on an INLINE Map (as on AWS they are
  Distributed-only); Distributed Map/ItemReader/ResultWriter: source only.
- Wait: Seconds, SecondsPath, Timestamp, TimestampPath. Sleeps the REAL time. SecondsPath must
  be an integer >= 0 (0.5 -> States.Runtime, as on AWS). So ASL should use SecondsPath (e.g. from
  settings) and local mode passes 0 or 1.
- Retry: ErrorEquals (named errors, States.ALL, States.Timeout...), MaxAttempts, IntervalSeconds,
  BackoffRate (interval * rate^n), MaxDelaySeconds, JitterStrategy (source) all honoured, with
  REAL sleeps (IntervalSeconds >= 1, so >= 1 s per retry). $$.State.RetryCount is exposed.
  `moto_glue.set_retry_interval_scale(0.01)` shrinks the sleeps for tests/local mode.
- Catch: ErrorEquals, ResultPath ({"Error","Cause"} merged into the input), Next.
- Task TimeoutSeconds: real time; an overrunning task fails with States.Timeout (its handler
  thread keeps running to completion, like a Lambda that is not stopped). Machine-level
  TimeoutSeconds: the execution ends TIMED_OUT.
- InputPath, Parameters, ResultSelector, ResultPath, OutputPath; context object ($$.Execution.Id,
  $$.State.RetryCount, $$.Map.Item.*, $$.Task.Token).
- Intrinsics (exercised): States.ArrayPartition, ArrayGetItem, ArrayLength, ArrayContains,
  ArrayRange, Format, JsonMerge, MathAdd, StringToJson, JsonToString, StringSplit, UUID; (probe)
  Hash, Base64Encode, ArrayUnique, MathRandom. Usable in Parameters, ResultSelector and Payload.
- `arn:aws:states:::dynamodb:updateItem` / `getItem` (putItem/deleteItem: source): run against
  moto's own DynamoDB in the same account/region, AWS result shape (Attributes/Item).
- `arn:aws:states:::aws-sdk:ec2:describeInstances` (any aws-sdk:<service>:<action>): boto3 call
  against moto's own backend, so it sees moto's instances; PascalCase result keys.
- `lambda:invoke.waitForTaskToken`: the task waits for SendTaskSuccess/Failure on $$.Task.Token.

Diverges from AWS (ASL must not depend on these):
- A wildcard path whose single match lies below the array element (`$.a[0].b[*].c.d` with one
  match) yields the bare value under moto, a 1-item list on AWS. (`$.r[*].id` stays a list.)
- aws-sdk error names: EC2 errors come out as "ec2.ec2Exception" (no name binding; AWS prefixes
  "Ec2."), and the Cause holds only the message, not the EC2 error code. Catch aws-sdk errors with
  States.TaskFailed/States.ALL, or do the call in a Lambda (the product's design anyway).
- DescribeExecution returns a string result raw (`high`, not `"high"`) and omits a null one;
  `LocalStateMachines.wait` decodes both.
- moto 5.2.1 could not start a state machine twice, nor any machine after another one ran
  (getmoto/moto#10077, fixed in 5.2.3 by PR #10093; the pin is past it and
  tests/statemachines/test_moto_lambda_glue.py checks it).
- Nested executions (`arn:aws:states:::states:startExecution[.sync[:2]]`) fail with
  States.Runtime "'StateMachineArn'" (probe): don't nest machines.
- moto logs every failed state at ERROR with a large object dump (logger
  `moto.stepfunctions.parser`); raise that logger's level in local mode if it is too noisy.
- JSONata and Variables/Assign: in the parser, out of scope (the product's ASL is JSONPath).
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3

from cmlcm_local import moto_glue
from cmlcm_local.events import FakeLambdaContext
from cmlcm_local.moto_glue import MOTO_CONFIG as MOTO_CONFIG  # what callers enter `mock_aws` with

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class AslPlaceholderError(ValueError):
    """An ASL file has `${Placeholders}` that the substitutions do not fill."""


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _ensure_role(iam: Any, name: str, service: str) -> str:
    """The ARN of moto IAM role `name`, created (assumable by `service`) on first use."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        pass
    try:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:  # another thread created it meanwhile
        return iam.get_role(RoleName=name)["Role"]["Arn"]


def _dummy_zip() -> bytes:
    # moto stores the code but never runs it: invocations are dispatched to the registered handler.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    raise RuntimeError('served in-process')\n")
    return buffer.getvalue()


class LocalLambdaContext(FakeLambdaContext):
    """The Lambda context of one in-process invocation of a moto function."""

    def __init__(self, function: Any) -> None:
        super().__init__(function.function_name)
        self.invoked_function_arn = function.function_arn
        self.memory_limit_in_mb = int(function.memory_size or 128)
        self._deadline = time.monotonic() + float(function.timeout or 3)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalLambdas:
    """Lambda functions whose invocations run Python handlers in-process (inside `mock_aws`)."""

    def __init__(self, *, region: str | None = None, role_name: str = "cmlcm-local-lambda") -> None:
        moto_glue.install()
        self.region = region or _region()
        self._lambda = boto3.client("lambda", region_name=self.region)
        self._iam = boto3.client("iam", region_name=self.region)
        self._role_name = role_name
        self._lock = threading.Lock()
        self._arns: dict[str, str] = {}
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}

    def register(
        self, name: str, handler: Callable[[Any, Any], Any], *, timeout_s: int = 60, memory_mb: int = 512
    ) -> str:
        """Create (or re-point) moto function `name` served by `handler`; returns its ARN."""
        with self._lock:
            if name not in self._arns:
                role_arn = _ensure_role(self._iam, self._role_name, "lambda.amazonaws.com")
                created = self._lambda.create_function(
                    FunctionName=name,
                    Runtime="python3.12",
                    Role=role_arn,
                    Handler="handler.handler",
                    Code={"ZipFile": _dummy_zip()},
                    Timeout=timeout_s,
                    MemorySize=memory_mb,
                )
                self._arns[name] = created["FunctionArn"]
            arn = self._arns[name]
            self._handlers[name] = handler
            account_id = arn.split(":")[4]
            moto_glue.register_lambda_handler(account_id, self.region, name, handler, LocalLambdaContext)
            return arn

    def arn(self, name: str) -> str:
        """The ARN of registered function `name`."""
        with self._lock:
            return self._arns[name]

    def handler(self, name: str) -> Callable[[Any, Any], Any]:
        """The handler registered for `name`."""
        with self._lock:
            return self._handlers[name]

    def names(self) -> list[str]:
        """Registered function names."""
        with self._lock:
            return sorted(self._arns)

    def close(self) -> None:
        """Stop routing this registry's functions (the moto functions stay)."""
        with self._lock:
            for name, arn in self._arns.items():
                moto_glue.unregister_lambda_handler(arn.split(":")[4], self.region, name)
            self._handlers.clear()


def load_asl(path: str | Path, substitutions: Mapping[str, str]) -> str:
    """The ASL at `path` with every `${Name}` replaced by `substitutions[Name]`, validated as JSON.

    Mirrors CDK's DefinitionSubstitutions (plain text replacement); extra substitutions are fine
    (one map can serve several machines), an unfilled placeholder raises `AslPlaceholderError`.
    """
    path = Path(path)
    text = path.read_text()
    missing = sorted({name for name in _PLACEHOLDER.findall(text) if name not in substitutions})
    if missing:
        raise AslPlaceholderError(f"{path}: no substitution for placeholder(s) {', '.join(missing)}")
    for name, value in substitutions.items():
        if not isinstance(value, str):
            raise TypeError(f"substitution {name!r} must be a str, got {type(value).__name__}")
    definition = _PLACEHOLDER.sub(lambda match: substitutions[match.group(1)], text)
    try:
        json.loads(definition)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON after substitution: {exc}") from exc
    return definition


def _decode_output(output: str | None) -> Any:
    # moto 5.2 (5.2.5 too) returns a string result raw (`high`, not `"high"` as AWS does), and omits a null one.
    if output is None:
        return None
    try:
        return json.loads(output)
    except json.JSONDecodeError:
        return output


class LocalStateMachines:
    """State machines created from ASL files and executed by moto's executor (inside `mock_aws`)."""

    def __init__(self, *, region: str | None = None, role_name: str = "cmlcm-local-states") -> None:
        self.region = region or _region()
        self._sfn = boto3.client("stepfunctions", region_name=self.region)
        self._iam = boto3.client("iam", region_name=self.region)
        self._role_name = role_name
        self._lock = threading.Lock()
        self._arns: dict[str, str] = {}

    def create(self, name: str, asl_path: str | Path, substitutions: Mapping[str, str] | None = None) -> str:
        """Create state machine `name` from an ASL file; returns its ARN."""
        return self.create_from_definition(name, load_asl(asl_path, substitutions or {}))

    def create_from_definition(self, name: str, definition: str) -> str:
        """Create (or update) state machine `name` from ASL text; returns its ARN."""
        with self._lock:
            role_arn = _ensure_role(self._iam, self._role_name, "states.amazonaws.com")
            if name in self._arns:
                self._sfn.update_state_machine(stateMachineArn=self._arns[name], definition=definition)
            else:
                created = self._sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn)
                self._arns[name] = created["stateMachineArn"]
            return self._arns[name]

    def arn(self, name: str) -> str:
        """The ARN of state machine `name`."""
        with self._lock:
            return self._arns[name]

    def start(self, name: str, input: Any = None, *, execution_name: str | None = None) -> str:
        """Start an execution with `input` (any JSON-able value, serialised here); returns its ARN."""
        started = self._sfn.start_execution(
            stateMachineArn=self.arn(name),
            name=execution_name or str(uuid.uuid4()),
            input=json.dumps({} if input is None else input),
        )
        return started["executionArn"]

    def describe(self, execution_arn: str) -> dict[str, Any]:
        """DescribeExecution, as boto3 returns it."""
        return self._sfn.describe_execution(executionArn=execution_arn)

    def wait(self, execution_arn: str, timeout_s: float = 30.0) -> tuple[str, Any]:
        """Poll until the execution ends: (status, output) or (status, {"error", "cause"}).

        Raises TimeoutError (with the last history events) if it is still running after timeout_s.
        """
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        while True:
            described = self.describe(execution_arn)
            status = described["status"]
            if status in _TERMINAL:
                break
            if time.monotonic() >= deadline:
                tail = [event["type"] for event in self.history(execution_arn)[-5:]]
                raise TimeoutError(f"{execution_arn} still {status} after {timeout_s}s; last events {tail}")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        if status == "SUCCEEDED":
            return status, _decode_output(described.get("output"))
        return status, {"error": described.get("error"), "cause": described.get("cause")}

    def run(self, name: str, input: Any = None, timeout_s: float = 30.0) -> tuple[str, Any]:
        """Start an execution and wait for it: see `start` and `wait`."""
        return self.wait(self.start(name, input), timeout_s)

    def list_executions(self, name: str, status: str | None = None) -> list[dict[str, Any]]:
        """Executions of state machine `name` (all pages), newest first as AWS lists them."""
        kwargs: dict[str, Any] = {"stateMachineArn": self.arn(name)}
        if status:
            kwargs["statusFilter"] = status
        paginator = self._sfn.get_paginator("list_executions")
        return [execution for page in paginator.paginate(**kwargs) for execution in page["executions"]]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's history events (all pages), oldest first."""
        paginator = self._sfn.get_paginator("get_execution_history")
        return [event for page in paginator.paginate(executionArn=execution_arn) for event in page["events"]]
