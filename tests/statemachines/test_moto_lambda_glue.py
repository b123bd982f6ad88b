"""moto_glue's Lambda dispatch and Retry scaling, and moto's own restart fix, exercised directly
through boto3."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import boto3
import moto
import pytest
from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend
from sfn_harness import Sfn

from cmlcm_local import moto_glue
from cmlcm_local.moto_glue._patch import MARKER


class IllegalTransition(Exception):
    """A named domain error."""


def test_registered_function_runs_its_handler_by_name_and_by_arn(sfn: Sfn) -> None:
    # Given a registered handler
    seen: list[tuple[dict, str, int]] = []

    def handler(event: dict, context: Any) -> dict:
        seen.append((event, context.invoked_function_arn, context.get_remaining_time_in_millis()))
        return {"echo": event}

    arn = sfn.lambdas.register("echo", handler, timeout_s=30)
    client = boto3.client("lambda", region_name="us-east-1")

    # When it is invoked by name and by ARN
    by_name = client.invoke(FunctionName="echo", Payload=json.dumps({"n": 1}))
    by_arn = client.invoke(FunctionName=arn, Payload=json.dumps({"n": 2}), LogType="Tail")

    # Then the handler ran with the decoded event and a context naming the function
    assert json.loads(by_name["Payload"].read()) == {"echo": {"n": 1}}
    assert json.loads(by_arn["Payload"].read()) == {"echo": {"n": 2}}
    assert "FunctionError" not in by_name
    assert base64.b64decode(by_arn["LogResult"]) == b""
    assert [(e, a) for e, a, _ in seen] == [({"n": 1}, arn), ({"n": 2}, arn)]
    assert 0 < seen[0][2] <= 30_000


def test_handler_exception_is_reported_like_the_python_runtime(sfn: Sfn) -> None:
    # Given a handler raising a named error
    def handler(event: dict, context: Any) -> None:
        raise IllegalTransition("STOPPED -> PAUSED")

    sfn.lambdas.register("raiser", handler)

    # When invoked
    response = boto3.client("lambda", region_name="us-east-1").invoke(FunctionName="raiser", Payload=b"{}")

    # Then FunctionError is Unhandled and the payload has errorType/errorMessage/stackTrace
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "IllegalTransition"
    assert error["errorMessage"] == "STOPPED -> PAUSED"
    assert any("raise IllegalTransition" in line for line in error["stackTrace"])


def test_event_invocation_runs_the_handler_in_the_background(sfn: Sfn) -> None:
    # Given a handler that signals when it runs
    done = threading.Event()
    sfn.lambdas.register("async", lambda event, context: done.set())

    # When invoked asynchronously / Then AWS's 202 comes back and the handler runs
    response = boto3.client("lambda", region_name="us-east-1").invoke(
        FunctionName="async", InvocationType="Event", Payload=b"{}"
    )
    assert response["StatusCode"] == 202
    assert done.wait(5)


def test_unregistered_functions_keep_motos_behaviour(sfn: Sfn) -> None:
    # Given a function created without a handler, and a registry that was closed
    client = boto3.client("lambda", region_name="us-east-1")
    sfn.lambdas.register("closed", lambda event, context: "handled")
    role = client.get_function(FunctionName="closed")["Configuration"]["Role"]
    client.create_function(
        FunctionName="plain",
        Runtime="python3.12",
        Role=role,
        Handler="h.h",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    sfn.lambdas.close()

    # When invoked / Then moto's simple backend echoes the payload, unknown names are 404s
    assert client.invoke(FunctionName="plain", Payload=b'{"a": 1}')["Payload"].read() == b'{"a": 1}'
    assert client.invoke(FunctionName="closed", Payload=b'{"b": 2}')["Payload"].read() == b'{"b": 2}'
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="nope", Payload=b"{}")


def test_install_is_idempotent_and_wraps_both_backends() -> None:
    # Given the glue installed twice
    moto_glue.install()
    once = (LambdaBackend.__dict__["invoke"], LambdaSimpleBackend.__dict__["invoke"])
    moto_glue.install()

    # Then both backends are wrapped exactly once, each over its own moto `invoke`
    assert (LambdaBackend.__dict__["invoke"], LambdaSimpleBackend.__dict__["invoke"]) == once
    assert all(hasattr(invoke, MARKER) for invoke in once)
    assert not hasattr(getattr(once[1], MARKER), MARKER)
    assert getattr(once[0], MARKER) is not getattr(once[1], MARKER)


@pytest.mark.parametrize(
    "install",
    [moto_glue.install, lambda: moto_glue.set_retry_interval_scale(0.5)],
    ids=["install", "set_retry_interval_scale"],
)
def test_glue_refuses_an_unpinned_moto(monkeypatch: pytest.MonkeyPatch, install: Any) -> None:
    # Given a moto version other than the pinned minor / Then the glue refuses to patch it
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(RuntimeError, match="pinned"):
        install()


def test_retry_scale_round_trips() -> None:
    # Given a scale set and reset / Then the retrier sees it, and 1.0 restores the real `time`
    moto_glue.set_retry_interval_scale(0.25)
    assert moto_glue.retry_interval_scale() == 0.25
    moto_glue.set_retry_interval_scale(1.0)
    assert moto_glue.retry_interval_scale() == 1.0
    with pytest.raises(ValueError):
        moto_glue.set_retry_interval_scale(-1)


def test_a_state_machine_can_be_started_many_times(sfn: Sfn) -> None:
    # Given a machine that already ran (moto 5.2.1 bug #10077 broke every later start; fixed
    # upstream in 5.2.3, so no glue: this checks the pinned moto keeps the fix)
    sfn.create("wait", "wait.asl.json")
    payload = {"wait_seconds": 0, "until": "2020-01-01T00:00:00Z"}
    first = sfn.machines.start("wait", payload)

    # When it is started again while and after the first runs / Then each start is accepted
    second = sfn.machines.start("wait", payload)
    assert sfn.machines.wait(first, 10)[0] == "SUCCEEDED"
    assert sfn.machines.wait(second, 10)[0] == "SUCCEEDED"
    assert sfn.machines.run("wait", payload, 10)[0] == "SUCCEEDED"
    assert len(sfn.machines.list_executions("wait")) == 3

    # And a different machine in the same account starts after those ran (the copy reached them too)
    sfn.create("other", "machine_timeout.asl.json")
    assert sfn.machines.run("other", {}, 10)[0] == "TIMED_OUT"
