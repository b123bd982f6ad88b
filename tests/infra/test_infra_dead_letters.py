"""Dead letters: every asynchronous invocation of the whole template ends in an encrypted,
TLS-only, 14-day queue when its retries are spent (schedules, rules, streams, async functions)."""

from __future__ import annotations

import pytest
from _app import offline_app
from _dead_letters import async_invocations_without_dead_letter
from _template import function_id, of_type, role_statements

pytestmark = pytest.mark.infra

FOURTEEN_DAYS = 14 * 24 * 3600
RECONCILE_HANDLER = "cmlcm.handlers.reconcile.handler"


def test_every_async_invocation_of_the_template_has_a_dead_letter(resources):
    # Given the whole template (every construct, whoever added it)
    # Then no schedule, rule, stream mapping or async-invoked function lacks a dead letter
    assert async_invocations_without_dead_letter(resources) == []


def test_the_check_finds_what_has_no_dead_letter():
    # Given a schedule invoking a function with neither a DLQ nor an on-failure destination
    import aws_cdk as cdk
    from aws_cdk import aws_events as events
    from aws_cdk import aws_events_targets as events_targets
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_scheduler as scheduler
    from aws_cdk import aws_scheduler_targets as targets
    from aws_cdk.assertions import Template

    stack = cdk.Stack(offline_app(), "Probe")
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(e, c): pass"),
    )
    scheduler.Schedule(
        stack,
        "Every",
        schedule=scheduler.ScheduleExpression.rate(cdk.Duration.minutes(5)),
        target=targets.LambdaInvoke(function),
    )
    events.Rule(
        stack,
        "OnEc2",
        event_pattern=events.EventPattern(source=["aws.ec2"]),
        targets=[events_targets.LambdaFunction(function)],
    )
    # When the check runs / Then it names the schedule, the rule and the function
    problems = async_invocations_without_dead_letter(Template.from_stack(stack).to_json()["Resources"])
    assert any(p.startswith("schedule Every") and "DeadLetterConfig" in p for p in problems), problems
    assert any(p.startswith("rule OnEc2") for p in problems), problems
    assert any(p.startswith("function Fn") for p in problems), problems


def test_every_queue_is_encrypted_kept_14_days_and_tls_only(resources):
    queues = of_type(resources, "AWS::SQS::Queue")
    assert queues, "the dead-letter queues are in the template"
    policies = of_type(resources, "AWS::SQS::QueuePolicy")
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        assert props["SqsManagedSseEnabled"] is True or "KmsMasterKeyId" in props, logical_id
        assert props["MessageRetentionPeriod"] == FOURTEEN_DAYS, logical_id
        assert queue["DeletionPolicy"] == "Retain", logical_id
        denies = [
            statement
            for policy in policies.values()
            if {"Ref": logical_id} in policy["Properties"]["Queues"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Deny"
        ]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies), logical_id


def _dlq_of(target: dict) -> str:
    return target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]


def test_each_schedule_has_its_own_dead_letter_queue_and_may_write_only_to_it(resources):
    schedules = of_type(resources, "AWS::Scheduler::Schedule").values()
    queues = {_dlq_of(s["Properties"]["Target"]) for s in schedules}
    assert len(queues) == len(schedules) == 2
    for schedule in schedules:
        target = schedule["Properties"]["Target"]
        sends = [
            s
            for s in role_statements(resources, target["RoleArn"]["Fn::GetAtt"][0])
            if s["Action"] == "sqs:SendMessage"
        ]
        assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": [_dlq_of(target), "Arn"]}]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1


def test_a_failed_reconciler_run_lands_in_its_own_queue(resources):
    # Scheduler hands the event to Lambda (async): a run that raises is retried by Lambda, then
    # its request and error go to the on-failure destination.
    reconcile = function_id(resources, RECONCILE_HANDLER)
    (config,) = [
        c["Properties"]
        for c in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": reconcile}
    ]
    destination = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert resources[destination]["Type"] == "AWS::SQS::Queue"
    assert config["MaximumRetryAttempts"] == 2
    schedule_queues = {
        _dlq_of(s["Properties"]["Target"]) for s in of_type(resources, "AWS::Scheduler::Schedule").values()
    }
    assert destination not in schedule_queues
