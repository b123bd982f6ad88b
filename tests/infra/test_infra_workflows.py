"""The state machine (ASL file) and schedule helpers, on a throwaway definition in a tmp dir."""

from __future__ import annotations

import json

import pytest
from _app import offline_app
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

pytestmark = pytest.mark.infra

ASL = {
    "Comment": "Throwaway definition for the helper tests",
    "StartAt": "Collect",
    "TimeoutSeconds": 3600,
    "States": {
        "Collect": {
            "Comment": "Invoke the collector",
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${CollectFunctionArn}", "Payload.$": "$"},
            "TimeoutSeconds": 60,
            "End": True,
        }
    },
}


@pytest.fixture(scope="module")
def asl_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("statemachines") / "collect.asl.json"
    path.write_text(json.dumps(ASL))
    return path


@pytest.fixture(scope="module")
def workflow(asl_path):
    """(app, template) of a stack with one factory function, a state machine and a schedule."""
    import aws_cdk as cdk
    from aws_cdk import aws_scheduler as scheduler

    from cmlcm_infra.dead_letters import dead_letter_queue
    from cmlcm_infra.functions import Functions
    from cmlcm_infra.nag import add_aws_solutions_checks
    from cmlcm_infra.schedules import schedule_state_machine
    from cmlcm_infra.stack import BUNDLING_STACKS
    from cmlcm_infra.workflows import state_machine_from_asl

    app = offline_app()
    stack = cdk.Stack(app, "WorkflowProbe")
    stack.node.set_context(BUNDLING_STACKS, [])  # no layer build
    functions = Functions(stack, "Functions", environment={"WORKERS_TABLE": "t"})
    collector = functions.add_function(
        "Collect", handler="cmlcm.handlers.collect.handler", service_name="collect", description="probe"
    )
    machine = state_machine_from_asl(
        stack,
        "CollectMetrics",
        definition_path=asl_path,
        substitutions={"CollectFunctionArn": collector.function_arn},
        invoked_functions=[collector],
    )
    schedule_state_machine(
        stack,
        "EveryMinute",
        state_machine=machine,
        schedule=scheduler.ScheduleExpression.rate(cdk.Duration.minutes(1)),
        description="probe schedule",
        execution_input={"source": "schedule"},
        dead_letter_queue=dead_letter_queue(stack, "EveryMinuteDeadLetters"),
    )
    add_aws_solutions_checks(app)
    return app, Template.from_stack(stack)


def test_state_machine_fills_placeholders_with_function_arns(workflow):
    _, template = workflow
    collector_id = next(iter(template.find_resources("AWS::Lambda::Function")))
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "DefinitionString": Match.string_like_regexp(r"\$\{CollectFunctionArn\}"),
            "DefinitionSubstitutions": {"CollectFunctionArn": {"Fn::GetAtt": [collector_id, "Arn"]}},
            "LoggingConfiguration": {
                "Level": "ALL",
                "IncludeExecutionData": True,
                "Destinations": Match.any_value(),
            },
            "TracingConfiguration": {"Enabled": True},
        },
    )


def test_state_machine_may_invoke_exactly_its_functions(workflow):
    _, template = workflow
    collector_id = next(iter(template.find_resources("AWS::Lambda::Function")))
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "lambda:InvokeFunction",
                            "Effect": "Allow",
                            "Resource": [
                                {"Fn::GetAtt": [collector_id, "Arn"]},
                                {"Fn::Join": ["", [{"Fn::GetAtt": [collector_id, "Arn"]}, ":*"]]},
                            ],
                        }
                    ]
                )
            }
        },
    )


def test_schedule_starts_the_state_machine_with_its_input(workflow):
    _, template = workflow
    machine_id = next(iter(template.find_resources("AWS::StepFunctions::StateMachine")))
    template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "State": "ENABLED",
            "Target": Match.object_like(
                {"Arn": {"Ref": machine_id}, "Input": Match.serialized_json({"source": "schedule"})}
            ),
        },
    )
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": [
                    {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine_id}},
                    # the failed starts' dead-letter queue
                    {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": Match.any_value()},
                ]
            }
        },
    )


def test_helpers_are_cdk_nag_clean(workflow):
    app, _ = workflow
    report = AwsSolutionsChecks().validate_scope(app)
    assert [v.rule_name for v in report.violations] == []


@pytest.mark.parametrize(
    ("substitutions", "message"),
    [
        ({}, r"without a value \['CollectFunctionArn'\]"),
        (
            {"CollectFunctionArn": "arn:aws:lambda:us-east-1:111111111111:function:x", "Renamed": "y"},
            r"without a placeholder \['Renamed'\]",
        ),
    ],
)
def test_placeholders_and_substitutions_must_match(asl_path, substitutions, message):
    import aws_cdk as cdk

    from cmlcm_infra.workflows import state_machine_from_asl

    stack = cdk.Stack(offline_app(), "Mismatch")
    with pytest.raises(ValueError, match=message):
        state_machine_from_asl(
            stack, "Broken", definition_path=asl_path, substitutions=substitutions, invoked_functions=[]
        )


def test_the_expected_timeout_must_be_the_files_timeout_seconds(asl_path):
    # Given an ASL file bounded at 3600 s
    import aws_cdk as cdk

    from cmlcm_infra.workflows import state_machine_from_asl

    stack = cdk.Stack(offline_app(), "Timeout")
    # When the stack expects another bound / Then the synth stops (CDK would not render it)
    with pytest.raises(ValueError, match=r"TimeoutSeconds is 3600, the stack expects 900"):
        state_machine_from_asl(
            stack,
            "Mismatched",
            definition_path=asl_path,
            substitutions={"CollectFunctionArn": "arn:aws:lambda:us-east-1:111111111111:function:x"},
            invoked_functions=[],
            timeout=cdk.Duration.minutes(15),
        )
