"""cmlcm_local.stepfunctions: ASL files executed by moto with Lambda tasks run in-process."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sfn_harness import FIXTURES, Sfn

from cmlcm_local.stepfunctions import AslPlaceholderError, load_asl

REPO = Path(__file__).resolve().parents[2]


class IllegalTransition(Exception):
    """A domain error a service raises; ASL catches it by this class name."""


class TransientAwsError(Exception):
    """A retryable domain error."""


class ItemRejected(Exception):
    """Raised by one Map item."""


def test_two_lambda_tasks_pass_data_along(sfn: Sfn) -> None:
    # Given a plan task (lambda:invoke integration) feeding a summary task (plain ARN resource)
    seen: dict[str, Any] = {}

    def plan(event: dict, context: Any) -> dict:
        seen["plan_context"] = (context.function_name, context.invoked_function_arn)
        return {"count": len(event["worker_ids"]), "ids": sorted(event["worker_ids"]), "execution": event["execution"]}

    def summarise(event: dict, context: Any) -> dict:
        seen["summary_event"] = event
        return {"summary": f"{event['count']} workers", "first": event["ids"][0]}

    plan_arn = sfn.lambdas.register("plan", plan)
    sfn.create(
        "two-tasks",
        "two_tasks.asl.json",
        {"PlanFunctionArn": plan_arn, "SummariseFunctionArn": sfn.lambdas.register("summarise", summarise)},
    )

    # When it runs
    execution_arn = sfn.machines.start("two-tasks", {"worker_ids": ["w-2", "w-1"]})
    status, output = sfn.machines.wait(execution_arn, timeout_s=10)

    # Then the second task got the first one's selected result, and the output is its result
    assert (status, output) == ("SUCCEEDED", {"summary": "2 workers", "first": "w-1"})
    assert seen["summary_event"] == {"count": 2, "ids": ["w-1", "w-2"], "execution": execution_arn}
    assert seen["plan_context"] == ("plan", plan_arn)


def test_map_calls_the_lambda_per_item_within_max_concurrency(sfn: Sfn) -> None:
    # Given a Map (MaxConcurrency 2) over 8 items whose handler records how many run at once
    lock = threading.Lock()
    running, peak = [0], [0]

    def item(event: dict, context: Any) -> dict:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return {"label": f"{event['prefix']}-{event['value']}", "index": event["index"]}

    sfn.create("map", "map_items.asl.json", {"ItemFunctionArn": sfn.lambdas.register("item", item)})

    # When it runs
    status, output = sfn.machines.run("map", {"items": list("abcdefgh"), "prefix": "p"}, timeout_s=20)

    # Then every item was processed, results are in item order, and at most 2 ran at once
    assert status == "SUCCEEDED"
    assert output["results"] == [{"label": f"p-{v}", "index": i} for i, v in enumerate("abcdefgh")]
    assert 1 <= peak[0] <= 2


def test_named_error_is_caught_compensated_and_surfaced_by_fail(sfn: Sfn) -> None:
    # Given a launch that raises IllegalTransition and a compensation task
    compensations: list[dict] = []

    def launch(event: dict, context: Any) -> dict:
        raise IllegalTransition(f"worker {event['worker_id']} is STOPPING")

    def compensate(event: dict, context: Any) -> dict:
        compensations.append(event)
        return {"terminated": event["worker_id"]}

    sfn.create(
        "saga",
        "saga_catch.asl.json",
        {
            "LaunchFunctionArn": sfn.lambdas.register("launch", launch),
            "CompensateFunctionArn": sfn.lambdas.register("compensate", compensate),
        },
    )

    # When it runs
    execution_arn = sfn.machines.start("saga", {"worker_id": "w-1"})
    status, failure = sfn.machines.wait(execution_arn, timeout_s=10)

    # Then the Catch on "IllegalTransition" matched, compensation saw the error, and Fail surfaced it
    assert status == "FAILED"
    assert failure["error"] == "IllegalTransition"
    cause = json.loads(failure["cause"])
    assert cause["errorType"] == "IllegalTransition"
    assert cause["errorMessage"] == "worker w-1 is STOPPING"
    assert len(compensations) == 1
    assert compensations[0]["failure"]["Error"] == "IllegalTransition"
    states = [
        e["stateEnteredEventDetails"]["name"]
        for e in sfn.machines.history(execution_arn)
        if "stateEnteredEventDetails" in e
    ]
    assert states == ["Launch", "Compensate", "LaunchFailed"]


def test_retry_on_named_error_succeeds_on_second_attempt(sfn: Sfn) -> None:
    # Given a handler that fails once with TransientAwsError
    calls: list[dict] = []

    def flaky(event: dict, context: Any) -> dict:
        calls.append(event)
        if len(calls) <= event["fail_times"]:
            raise getattr_error(event["error"])("throttled")
        return {"attempts": len(calls), "retry_count": event["retry_count"]}

    sfn.create("retry", "retry.asl.json", {"FlakyFunctionArn": sfn.lambdas.register("flaky", flaky)})

    # When it runs
    status, output = sfn.machines.run("retry", {"fail_times": 1, "error": "TransientAwsError"}, timeout_s=10)

    # Then the second attempt succeeded, and $$.State.RetryCount counted the retry
    assert (status, output) == ("SUCCEEDED", {"attempts": 2, "retry_count": 1})
    assert [c["retry_count"] for c in calls] == [0, 1]


def test_retry_gives_up_after_max_attempts_and_ignores_other_errors(sfn: Sfn) -> None:
    # Given the same machine with a handler that always fails
    calls: list[str] = []

    def flaky(event: dict, context: Any) -> dict:
        calls.append(event["error"])
        raise getattr_error(event["error"])("still failing")

    sfn.create("retry", "retry.asl.json", {"FlakyFunctionArn": sfn.lambdas.register("flaky", flaky)})

    # When it fails with the retryable error, then with a different one
    retried = sfn.machines.run("retry", {"fail_times": 99, "error": "TransientAwsError"}, timeout_s=10)
    not_retried = sfn.machines.run("retry", {"fail_times": 99, "error": "IllegalTransition"}, timeout_s=10)

    # Then 1 + MaxAttempts(3) calls were made for the first, exactly one for the second
    assert retried[0] == "FAILED" and retried[1]["error"] == "TransientAwsError"
    assert not_retried[0] == "FAILED" and not_retried[1]["error"] == "IllegalTransition"
    assert calls == ["TransientAwsError"] * 4 + ["IllegalTransition"]


def getattr_error(name: str) -> type[Exception]:
    return {"TransientAwsError": TransientAwsError, "IllegalTransition": IllegalTransition}[name]


def test_unfilled_placeholder_raises(tmp_path: Path) -> None:
    # Given an ASL with two placeholders, one filled
    # When it is loaded / Then it fails naming the missing one
    with pytest.raises(AslPlaceholderError, match="MissingFunctionArn"):
        load_asl(FIXTURES / "unfilled.asl.json", {"FilledFunctionArn": "arn:aws:lambda:us-east-1:1:function:x"})


def test_load_asl_substitutes_and_validates(tmp_path: Path) -> None:
    # Given all placeholders filled, then a non-str value, then text that is not JSON once filled
    arns = {"FilledFunctionArn": "arn:a", "MissingFunctionArn": "arn:b", "Unused": "x"}
    definition = json.loads(load_asl(FIXTURES / "unfilled.asl.json", arns))
    assert [s["Resource"] for s in definition["States"].values()] == ["arn:a", "arn:b"]

    with pytest.raises(TypeError, match="FilledFunctionArn"):
        load_asl(FIXTURES / "unfilled.asl.json", {**arns, "FilledFunctionArn": 3})  # type: ignore[dict-item]

    broken = tmp_path / "broken.asl.json"
    broken.write_text('{"StartAt": ${Value}}')
    with pytest.raises(ValueError, match="not valid JSON"):
        load_asl(broken, {"Value": "not-json"})


def test_intrinsics_in_parameters(sfn: Sfn) -> None:
    # Given a Pass state computing every intrinsic we use and a Lambda payload using them too
    echo_arn = sfn.lambdas.register("echo", lambda event, context: event)
    sfn.create("intrinsics", "intrinsics.asl.json", {"EchoFunctionArn": echo_arn})

    # When it runs
    status, output = sfn.machines.run(
        "intrinsics",
        {
            "ids": ["a", "b", "c", "d", "e"],
            "batch_size": 2,
            "name": "w-1",
            "region": "us-east-1",
            "defaults": {"x": 1, "y": 2},
            "overrides": {"y": 3},
            "attempt": 4,
            "raw": '{"k": [1, 2]}',
            "csv": "a,b,c",
        },
        timeout_s=10,
    )

    # Then each evaluated as on AWS
    assert status == "SUCCEEDED"
    computed = output["computed"]
    assert computed["batches"] == [["a", "b"], ["c", "d"], ["e"]]
    assert computed["first"] == "a"
    assert computed["count"] == 5
    assert computed["label"] == "worker w-1 of us-east-1"
    assert computed["merged"] == {"x": 1, "y": 3}
    assert computed["next"] == 5
    assert computed["parsed"] == {"k": [1, 2]}
    assert json.loads(computed["text"]) == {"x": 1, "y": 2}
    assert computed["has_b"] is True
    assert computed["range"] == [1, 3, 5]
    assert computed["parts"] == ["a", "b", "c"]
    assert len(computed["id"]) == 36
    assert output["task"]["echo"] == {
        "batches": [["a", "b"], ["c", "d"], ["e"]],
        "greeting": "hello w-1",
        "second_batch": ["c", "d"],
    }


def test_non_json_result_fails_the_task_with_marshal_error(sfn: Sfn) -> None:
    # Given a handler that returns a datetime (not JSON)
    arn = sfn.lambdas.register("leaky", lambda event, context: {"at": datetime(2026, 1, 1, tzinfo=UTC)})
    sfn.create("leaky", "plain_arn_error.asl.json", {"FailingFunctionArn": arn})

    # When it runs / Then the task fails like the AWS runtime's marshalling failure, naming the type
    status, failure = sfn.machines.run("leaky", {}, timeout_s=10)
    assert status == "FAILED"
    assert failure["error"] == "Runtime.MarshalError"
    assert "datetime is not JSON serializable" in json.loads(failure["cause"])["errorMessage"]


def test_concurrent_executions_from_several_threads(sfn: Sfn) -> None:
    # Given a two-task machine
    sfn.create(
        "two-tasks",
        "two_tasks.asl.json",
        {
            "PlanFunctionArn": sfn.lambdas.register(
                "plan",
                lambda e, c: {"count": len(e["worker_ids"]), "ids": e["worker_ids"], "execution": e["execution"]},
            ),
            "SummariseFunctionArn": sfn.lambdas.register("summarise", lambda e, c: {"n": e["count"]}),
        },
    )

    # When 12 executions are started and awaited from 6 threads at once
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda n: sfn.machines.run("two-tasks", {"worker_ids": ["w"] * n}, 20), range(12)))

    # Then all succeed with their own data, and all are listed
    assert results == [("SUCCEEDED", {"n": n}) for n in range(12)]
    assert len(sfn.machines.list_executions("two-tasks", status="SUCCEEDED")) == 12


def test_run_times_out_with_the_last_events() -> None:
    # Given an execution that waits for a task token nobody sends (covered in the features tests)
    # this only checks that `wait` gives up loudly rather than hanging.
    from moto import mock_aws

    from cmlcm_local.stepfunctions import MOTO_CONFIG, LocalStateMachines

    with mock_aws(config=MOTO_CONFIG):
        machines = LocalStateMachines()
        machines.create_from_definition(
            "sleepy", json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}})
        )
        with pytest.raises(TimeoutError, match="WaitStateEntered"):
            machines.run("sleepy", {}, timeout_s=0.3)


@pytest.mark.parametrize("asl", sorted((REPO / "statemachines").glob("*.asl.json")), ids=lambda p: p.name)
def test_product_asl_is_accepted_by_moto(sfn: Sfn, asl: Path) -> None:
    # Given each product ASL with a dummy function ARN for every placeholder
    import re

    names = set(re.findall(r"\$\{([^}]*)\}", asl.read_text()))
    substitutions = {name: sfn.lambdas.register(f"dummy-{i}", lambda e, c: e) for i, name in enumerate(sorted(names))}

    # When moto parses it (create_state_machine validates the definition) / Then it is accepted
    assert sfn.machines.create(asl.stem, asl, substitutions).startswith("arn:aws:states:")
