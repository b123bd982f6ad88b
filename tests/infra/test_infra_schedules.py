"""EventBridge Scheduler: collection every 5 minutes (state machine), reconciler every 15 minutes
(function), each with its own role; the API and the collection plan may move exactly these two
schedules."""

from __future__ import annotations

import json

import pytest
from _template import API_HANDLER, as_list, environment, function_id, function_statements, of_type, role_statements

pytestmark = pytest.mark.infra

COLLECT = "CmlCloudManager-collect-metrics"
RECONCILE = "CmlCloudManager-reconcile"


@pytest.fixture(scope="module")
def schedules(resources) -> dict[str, dict]:
    return {s["Properties"]["Name"]: s["Properties"] for s in of_type(resources, "AWS::Scheduler::Schedule").values()}


def _machine_id(resources: dict, placeholder: str) -> str:
    """The state machine whose definition has `placeholder` filled."""
    (found,) = [
        logical_id
        for logical_id, m in of_type(resources, "AWS::StepFunctions::StateMachine").items()
        if placeholder in m["Properties"]["DefinitionSubstitutions"]
    ]
    return found


def _without_dead_letters(statements: list[dict]) -> list[dict]:
    """The target statements; the dead-letter grant is checked in test_infra_dead_letters."""
    return [s for s in statements if s["Action"] != "sqs:SendMessage"]


def test_exactly_two_schedules_with_deterministic_names_in_the_default_group(schedules):
    assert sorted(schedules) == [COLLECT, RECONCILE]
    for schedule in schedules.values():
        assert "GroupName" not in schedule  # the account's default group
        assert schedule["State"] == "ENABLED"


def test_collection_starts_the_collect_state_machine_every_5_minutes(resources, schedules):
    collect = schedules[COLLECT]
    assert collect["ScheduleExpression"] == "rate(5 minutes)"
    assert collect["Target"]["Arn"] == {"Ref": _machine_id(resources, "CollectBatchFunctionArn")}
    role_id = collect["Target"]["RoleArn"]["Fn::GetAtt"][0]
    assert _without_dead_letters(role_statements(resources, role_id)) == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": collect["Target"]["Arn"]}
    ]


def test_reconciler_is_invoked_every_15_minutes(resources, schedules):
    reconcile = schedules[RECONCILE]
    assert reconcile["ScheduleExpression"] == "rate(15 minutes)"
    function = function_id(resources, "cmlcm.handlers.reconcile.handler")
    assert reconcile["Target"]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    role_id = reconcile["Target"]["RoleArn"]["Fn::GetAtt"][0]
    arn = {"Fn::GetAtt": [function, "Arn"]}
    assert _without_dead_letters(role_statements(resources, role_id)) == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": [arn, {"Fn::Join": ["", [arn, ":*"]]}]}
    ]


def test_each_schedule_has_its_own_role_trusting_only_scheduler_of_this_account(resources, schedules):
    roles = {s["Target"]["RoleArn"]["Fn::GetAtt"][0] for s in schedules.values()}
    assert len(roles) == 2
    for role_id in roles:
        assert resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
            }
        ]


PLAN_HANDLER = "cmlcm.handlers.collect.plan_handler"


def test_the_collect_plan_knows_the_schedules_to_put_back_on_the_settings(resources):
    # Each collection run restores the settings' rates a deployment reset (services.settings).
    env = environment(resources, PLAN_HANDLER)
    assert (env["COLLECT_SCHEDULE_NAME"], env["RECONCILE_SCHEDULE_NAME"], env["SCHEDULE_GROUP_NAME"]) == (
        COLLECT,
        RECONCILE,
        "default",
    )


def test_api_knows_the_state_machines_and_the_schedules(resources):
    env = environment(resources, API_HANDLER)
    assert env["PROVISION_STATE_MACHINE_ARN"] == {"Ref": _machine_id(resources, "ProvisionFunctionArn")}
    assert env["COLLECT_STATE_MACHINE_ARN"] == {"Ref": _machine_id(resources, "CollectBatchFunctionArn")}
    assert (env["COLLECT_SCHEDULE_NAME"], env["RECONCILE_SCHEDULE_NAME"], env["SCHEDULE_GROUP_NAME"]) == (
        COLLECT,
        RECONCILE,
        "default",
    )


def test_api_starts_only_the_provisioning_saga_and_the_collection(resources):
    # The saga for POST /workers, the collection for POST /jobs/collect_metrics/run.
    starts = [s for s in function_statements(resources, API_HANDLER) if "states:StartExecution" in as_list(s["Action"])]
    machines = [r["Ref"] for s in starts for r in as_list(s["Resource"])]
    assert sorted(machines) == sorted(
        [_machine_id(resources, "ProvisionFunctionArn"), _machine_id(resources, "CollectBatchFunctionArn")]
    )
    assert all(s["Action"] == "states:StartExecution" and "Condition" not in s for s in starts)


def test_api_invokes_only_the_reconciler_by_its_exact_arn(resources):
    # POST /jobs/reconcile/run: no version or alias wildcard, no other function.
    invokes = [
        s for s in function_statements(resources, API_HANDLER) if "lambda:InvokeFunction" in as_list(s["Action"])
    ]
    function = function_id(resources, "cmlcm.handlers.reconcile.handler")
    assert invokes == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": {"Fn::GetAtt": [function, "Arn"]}}
    ]
    assert environment(resources, API_HANDLER)["RECONCILE_FUNCTION_NAME"] == {"Ref": function}


def test_both_schedules_say_they_are_the_schedule(schedules):
    # A scheduled run of a paused job ends at once: the run must know it was scheduled.
    for schedule in schedules.values():
        assert json.loads(schedule["Target"]["Input"]) == {"trigger": "schedule"}


@pytest.mark.parametrize("handler", [API_HANDLER, PLAN_HANDLER])
def test_may_update_exactly_the_two_schedules_and_pass_only_their_roles_to_scheduler(resources, schedules, handler):
    statements = function_statements(resources, handler)
    (update,) = [s for s in statements if "scheduler:UpdateSchedule" in as_list(s["Action"])]
    assert sorted(as_list(update["Action"])) == ["scheduler:GetSchedule", "scheduler:UpdateSchedule"]
    arns = [r["Fn::Join"][1] for r in update["Resource"]]
    assert [parts[-1] for parts in arns] == [f":schedule/default/{COLLECT}", f":schedule/default/{RECONCILE}"]
    assert all(parts[2] == ":scheduler:" for parts in arns)
    (pass_role,) = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    assert sorted(r["Fn::GetAtt"][0] for r in pass_role["Resource"]) == sorted(
        s["Target"]["RoleArn"]["Fn::GetAtt"][0] for s in schedules.values()
    )
