"""Which ASL features moto 5.2.x's executor runs, and how (see cmlcm_local.stepfunctions' docstring).

These pin the behaviour the product's ASL relies on, so a moto upgrade that changes it fails here.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from sfn_harness import Sfn

from cmlcm_local import moto_glue


class ItemRejected(Exception):
    """Raised by one Map item."""


class ServiceException(Exception):
    """Same short name as Lambda's own service error, to show the names do not collide."""


class CmlNotReady(Exception):
    """A named error raised behind a plain-ARN resource."""


def test_legacy_map_with_max_concurrency_path_runs_items_concurrently(sfn: Sfn) -> None:
    # Given the legacy Map spelling with MaxConcurrencyPath 3 and a slow item handler
    lock = threading.Lock()
    running, peak = [0], [0]

    def item(event: dict, context: Any) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return event["value"] * 10

    sfn.create("map-legacy", "map_legacy.asl.json", {"ItemFunctionArn": sfn.lambdas.register("item", item)})

    # When it maps 9 items
    status, output = sfn.machines.run("map-legacy", {"items": list(range(9)), "max_concurrency": 3}, 20)

    # Then results are in order and between 2 and 3 ran at once
    assert status == "SUCCEEDED"
    assert output["results"] == [v * 10 for v in range(9)]
    assert 2 <= peak[0] <= 3


def test_a_failing_map_item_fails_the_map_with_its_error(sfn: Sfn) -> None:
    # Given an item handler that rejects one item
    def item(event: dict, context: Any) -> int:
        if event["value"] == 2:
            raise ItemRejected("item 2")
        return event["value"]

    sfn.create("map-legacy", "map_legacy.asl.json", {"ItemFunctionArn": sfn.lambdas.register("item", item)})

    # When it runs / Then the Catch on the Map state sees the item's named error
    status, output = sfn.machines.run("map-legacy", {"items": [1, 2, 3], "max_concurrency": 1}, 20)
    assert status == "SUCCEEDED"
    assert output["failure"]["Error"] == "ItemRejected"
    assert "results" not in output


def test_parallel_choice_result_selector_output_path(sfn: Sfn) -> None:
    # Given two branches (a Lambda and a Pass) and a Choice on their combined results
    left = sfn.lambdas.register("left", lambda event, context: {"side": "left", "score": event["score"]})
    sfn.create("parallel", "parallel_choice.asl.json", {"LeftFunctionArn": left})

    # When run with a high and a low score / Then And/IsPresent/Default choose, OutputPath trims
    assert sfn.machines.run("parallel", {"score": 7}, 10) == ("SUCCEEDED", "high")
    assert sfn.machines.run("parallel", {"score": 1}, 10) == ("SUCCEEDED", "low")


def test_wait_forms_and_real_time_seconds(sfn: Sfn) -> None:
    # Given Waits: SecondsPath 0, past Timestamp, past TimestampPath, then Seconds 1
    sfn.create("wait", "wait.asl.json")
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # When it runs
    started = time.monotonic()
    status, _ = sfn.machines.run("wait", {"wait_seconds": 0, "until": past}, 10)
    elapsed = time.monotonic() - started

    # Then only the fixed 1 s was waited, in real time
    assert status == "SUCCEEDED"
    assert elapsed >= 1.0


def test_wait_seconds_path_must_be_an_integer(sfn: Sfn) -> None:
    # Given a fractional SecondsPath (what local mode might be tempted to pass)
    sfn.create("wait", "wait.asl.json")

    # When it runs / Then it fails as on AWS: SecondsPath takes whole seconds only
    status, failure = sfn.machines.run("wait", {"wait_seconds": 0.5, "until": "2020-01-01T00:00:00Z"}, 10)
    assert (status, failure["error"]) == ("FAILED", "States.Runtime")
    assert "cannot be parsed as a long value" in failure["cause"]


def test_task_timeout_seconds_raises_states_timeout(sfn: Sfn) -> None:
    # Given a task with TimeoutSeconds 1 whose handler blocks until released
    release = threading.Event()
    sfn.create(
        "timeout",
        "task_timeout.asl.json",
        {"SlowFunctionArn": sfn.lambdas.register("slow", lambda e, c: release.wait(10))},
    )

    # When it runs
    try:
        status, output = sfn.machines.run("timeout", {}, 10)
    finally:
        release.set()

    # Then States.Timeout was caught
    assert status == "SUCCEEDED"
    assert output["failure"]["Error"] == "States.Timeout"


def test_retry_honours_interval_and_backoff(sfn: Sfn) -> None:
    # Given Retry IntervalSeconds 1, BackoffRate 2 and a handler failing twice, sleeps scaled by 0.1
    moto_glue.set_retry_interval_scale(0.1)
    calls: list[float] = []

    class TransientAwsError(Exception):
        pass

    def flaky(event: dict, context: Any) -> str:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise TransientAwsError("again")
        return "ok"

    sfn.create("retry", "retry.asl.json", {"FlakyFunctionArn": sfn.lambdas.register("flaky", flaky)})

    # When it runs
    status, output = sfn.machines.run("retry", {"fail_times": 2, "error": "TransientAwsError"}, 10)

    # Then the gaps were (at least) 1 s then 2 s, scaled: 0.1 s then 0.2 s
    assert (status, output) == ("SUCCEEDED", "ok")
    assert moto_glue.retry_interval_scale() == 0.1
    assert calls[1] - calls[0] >= 0.1
    assert calls[2] - calls[1] >= 0.2


def test_sdk_and_dynamodb_integrations_use_motos_own_backends(sfn: Sfn) -> None:
    # Given an EC2 instance and a DynamoDB item in the same moto account
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance_ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image_id, MinCount=2, MaxCount=2)["Instances"]]
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="items",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "w-1"}, "status": {"S": "PENDING"}})
    sfn.create("sdk", "sdk_integrations.asl.json")

    # When it runs
    status, output = sfn.machines.run("sdk", {"instance_ids": instance_ids, "table": "items", "key": "w-1"}, 10)
    _, single = sfn.machines.run("sdk", {"instance_ids": instance_ids[:1], "table": "items", "key": "w-1"}, 10)

    # Then EC2 and DynamoDB answered from moto, and the SDK error has a moto-specific name
    assert status == "SUCCEEDED"
    assert output["ec2"] == {"states": ["running", "running"]}
    # moto divergence: a wildcard path with ONE match yields the bare value (AWS: a 1-item list)
    assert single["ec2"] == {"states": "running"}
    assert output["update"] == {"status": "RUNNING"}
    assert output["get"] == {"status": "RUNNING"}
    assert dynamodb.get_item(TableName="items", Key={"pk": {"S": "w-1"}})["Item"]["status"] == {"S": "RUNNING"}
    # moto: "ec2.ec2Exception" (no name binding for EC2); AWS prefixes "Ec2.": Catch these by
    # States.TaskFailed / States.ALL, never by name. Only the message is in the Cause.
    assert output["sdk_error"]["Error"] == "ec2.ec2Exception"
    assert "does not exist" in output["sdk_error"]["Cause"]


def test_wait_for_task_token_resumes_on_send_task_success(sfn: Sfn) -> None:
    # Given a task that hands its token to a handler and waits
    tokens: list[str] = []
    sfn.create(
        "token",
        "task_token.asl.json",
        {"AskFunctionArn": sfn.lambdas.register("ask", lambda e, c: tokens.append(e["token"]))},
    )
    execution_arn = sfn.machines.start("token", {})

    # When someone answers with the token
    deadline = time.monotonic() + 5
    while not tokens and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tokens, "the task never received its token"
    boto3.client("stepfunctions", region_name="us-east-1").send_task_success(
        taskToken=tokens[0], output=json.dumps({"approved": True})
    )

    # Then the execution ends with that output
    assert sfn.machines.wait(execution_arn, 10) == ("SUCCEEDED", {"approved": True})


def test_lambda_integration_error_names(sfn: Sfn) -> None:
    # Given a function raising an exception named like a Lambda service error, and no such function
    def handler(event: dict, context: Any) -> None:
        raise ServiceException("domain, not Lambda")

    sfn.lambdas.register("raiser", handler)
    sfn.create("errors", "lambda_errors.asl.json")

    # When each is invoked through lambda:invoke
    raised = sfn.machines.run("errors", {"function": "raiser"}, 10)
    missing = sfn.machines.run("errors", {"function": "does-not-exist"}, 10)

    # Then a function error keeps its own name; an API error is Lambda.<Code>
    assert raised[0] == "FAILED" and raised[1]["error"] == "ServiceException"
    assert missing[0] == "FAILED" and missing[1]["error"] == "Lambda.ResourceNotFoundException"


def test_plain_arn_resource_error_names_and_history(sfn: Sfn) -> None:
    # Given a plain-ARN task whose handler raises CmlNotReady
    def handler(event: dict, context: Any) -> None:
        raise CmlNotReady("controller 10.0.0.1 answers 503")

    sfn.create("plain", "plain_arn_error.asl.json", {"FailingFunctionArn": sfn.lambdas.register("failing", handler)})

    # When it runs
    execution_arn = sfn.machines.start("plain", {})
    status, failure = sfn.machines.wait(execution_arn, 10)

    # Then the error is the class name, the cause the runtime's error document, as on AWS
    assert (status, failure["error"]) == ("FAILED", "CmlNotReady")
    assert json.loads(failure["cause"])["errorMessage"] == "controller 10.0.0.1 answers 503"
    types = [event["type"] for event in sfn.machines.history(execution_arn)]
    assert "LambdaFunctionFailed" in types and types[-1] == "ExecutionFailed"


def test_machine_timeout_seconds_times_the_execution_out(sfn: Sfn) -> None:
    # Given a machine with TimeoutSeconds 1 waiting 30 s
    sfn.create("machine-timeout", "machine_timeout.asl.json")

    # When it runs / Then it ends TIMED_OUT after about a second
    started = time.monotonic()
    status, failure = sfn.machines.run("machine-timeout", {}, 10)
    assert status == "TIMED_OUT"
    assert time.monotonic() - started < 10
