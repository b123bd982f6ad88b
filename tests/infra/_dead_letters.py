"""Finds asynchronous invocations without a dead letter in a synthesized template (plain JSON).

An invocation is asynchronous when nobody waits for its answer: a Scheduler target, an
EventBridge rule target, a stream or queue event source mapping, and a Lambda function invoked by
a schedule, a rule or another AWS service (its async invoke config). Each must end somewhere
readable when its retries are spent.
"""

from __future__ import annotations

from typing import Any

#: Services that invoke a Lambda function asynchronously (through a resource policy).
ASYNC_PRINCIPALS = {
    "events.amazonaws.com",
    "scheduler.amazonaws.com",
    "sns.amazonaws.com",
    "s3.amazonaws.com",
    "logs.amazonaws.com",
    "iot.amazonaws.com",
    "cloudwatch.amazonaws.com",
}


def _of_type(resources: dict, kind: str) -> dict[str, dict]:
    return {logical_id: r for logical_id, r in resources.items() if r["Type"] == kind}


def _function_ids(resources: dict, value: Any) -> set[str]:
    """Logical ids of the Lambda functions `value` (an ARN or name expression) names."""
    functions = _of_type(resources, "AWS::Lambda::Function")
    if isinstance(value, dict):
        if "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in functions:
            return {value["Fn::GetAtt"][0]}
        if "Ref" in value and value["Ref"] in functions:
            return {value["Ref"]}
        return set().union(set(), *(_function_ids(resources, v) for v in value.values()))
    if isinstance(value, list):
        return set().union(set(), *(_function_ids(resources, v) for v in value))
    return set()


def _is_stream(resources: dict, source_arn: Any) -> bool:
    """A DynamoDB or Kinesis stream (retried until its records expire), not an SQS queue."""
    text = str(source_arn)
    return (
        "StreamArn" in text
        or ":kinesis:" in text
        or "AWS::Kinesis::Stream" in str([resources.get(v, {}).get("Type") for v in _refs(source_arn)])
    )


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        if "Ref" in value:
            return [value["Ref"]]
        if "Fn::GetAtt" in value:
            return [value["Fn::GetAtt"][0]]
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def async_invocations_without_dead_letter(resources: dict) -> list[str]:
    """One line per asynchronous invocation that has no dead letter (empty: all covered)."""
    problems: list[str] = []
    async_functions: set[str] = set()

    for logical_id, schedule in _of_type(resources, "AWS::Scheduler::Schedule").items():
        target = schedule["Properties"]["Target"]
        if "Arn" not in target.get("DeadLetterConfig", {}):
            problems.append(f"schedule {logical_id}: target has no DeadLetterConfig")
        if "RetryPolicy" not in target:
            problems.append(f"schedule {logical_id}: target has no RetryPolicy")
        async_functions |= _function_ids(resources, target["Arn"])

    for logical_id, rule in _of_type(resources, "AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            if "Arn" not in target.get("DeadLetterConfig", {}):
                problems.append(f"rule {logical_id}: target {target.get('Id')} has no DeadLetterConfig")
            async_functions |= _function_ids(resources, target["Arn"])

    for permission in _of_type(resources, "AWS::Lambda::Permission").values():
        if permission["Properties"].get("Principal") in ASYNC_PRINCIPALS:
            async_functions |= _function_ids(resources, permission["Properties"]["FunctionName"])

    for logical_id, mapping in _of_type(resources, "AWS::Lambda::EventSourceMapping").items():
        props = mapping["Properties"]
        if "EventSourceArn" not in props:
            continue
        if _is_stream(resources, props["EventSourceArn"]):
            if "Destination" not in props.get("DestinationConfig", {}).get("OnFailure", {}):
                problems.append(f"stream mapping {logical_id}: no on-failure destination")
        else:  # an SQS source: its own redrive policy is the dead letter
            for queue_id in _refs(props["EventSourceArn"]):
                queue = resources.get(queue_id, {})
                if queue.get("Type") == "AWS::SQS::Queue" and "RedrivePolicy" not in queue["Properties"]:
                    problems.append(f"queue mapping {logical_id}: source queue {queue_id} has no RedrivePolicy")

    configs = _of_type(resources, "AWS::Lambda::EventInvokeConfig")
    for function in sorted(async_functions):
        has_dlq = "TargetArn" in resources[function]["Properties"].get("DeadLetterConfig", {})
        has_destination = any(
            _function_ids(resources, c["Properties"]["FunctionName"]) == {function}
            and "Destination" in c["Properties"].get("DestinationConfig", {}).get("OnFailure", {})
            for c in configs.values()
        )
        if not (has_dlq or has_destination):
            problems.append(f"function {function}: invoked asynchronously, no on-failure destination or DLQ")
    return problems
