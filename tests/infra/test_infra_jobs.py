"""Jobs in the template, and agreement of the stack, the ASL files, the local mode and the models:
the same placeholders, the same handlers, the same table keys."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def _of_type(resources: dict, kind: str) -> dict:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def _handler_of(resources: dict, substitution: dict) -> str:
    logical_id = substitution["Fn::GetAtt"][0]
    return resources[logical_id]["Properties"]["Handler"]


@pytest.mark.parametrize("asl", ["collect_metrics.asl.json", "provision_worker.asl.json"])
def test_each_state_machine_fills_exactly_its_placeholders_with_the_local_modes_handlers(resources, asl):  # noqa: ANN001
    from cmlcm_local.runtime import task_functions

    text = (REPO / "statemachines" / asl).read_text()
    wanted = set(PLACEHOLDER.findall(text))
    machines = [m for m in _of_type(resources, "AWS::StepFunctions::StateMachine").values()
                if set(m["Properties"]["DefinitionSubstitutions"]) == wanted]
    assert len(machines) == 1, f"no state machine fills exactly {sorted(wanted)}"
    local = task_functions()
    for placeholder, substitution in machines[0]["Properties"]["DefinitionSubstitutions"].items():
        _, handler, _ = local[placeholder]
        assert _handler_of(resources, substitution) == f"{handler.__module__}.{handler.__name__}"


def test_schedules_start_collection_and_the_reconciler(resources):  # noqa: ANN001
    schedules = {s["Properties"]["Name"]["Fn::Join"][1][-1] if isinstance(s["Properties"]["Name"], dict) else s["Properties"]["Name"]: s
                 for s in _of_type(resources, "AWS::Scheduler::Schedule").values()}
    names = sorted(schedules)
    assert names == ["CmlCloudManager-collect-metrics", "CmlCloudManager-reconcile"]
    collect, reconcile = schedules["CmlCloudManager-collect-metrics"], schedules["CmlCloudManager-reconcile"]
    assert collect["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert reconcile["Properties"]["ScheduleExpression"] == "rate(15 minutes)"
    machine = collect["Properties"]["Target"]["Arn"]["Ref"]
    assert resources[machine]["Type"] == "AWS::StepFunctions::StateMachine"
    assert "CollectBatchFunctionArn" in resources[machine]["Properties"]["DefinitionSubstitutions"]
    target = reconcile["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
    assert resources[target]["Properties"]["Handler"] == "cmlcm.handlers.reconcile.handler"


def test_api_knows_the_saga_and_the_schedules(resources):  # noqa: ANN001
    api = next(r for r in _of_type(resources, "AWS::Lambda::Function").values()
               if r["Properties"]["Handler"] == "cmlcm.handlers.api.app.handler")
    env = api["Properties"]["Environment"]["Variables"]
    assert {"PROVISION_STATE_MACHINE_ARN", "COLLECT_STATE_MACHINE_ARN", "COLLECT_SCHEDULE_NAME",
            "RECONCILE_SCHEDULE_NAME"} <= set(env)
    statements = [s for p in _of_type(resources, "AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert any("states:StartExecution" in json.dumps(s["Action"]) for s in statements)
    assert any("scheduler:UpdateSchedule" in json.dumps(s["Action"]) for s in statements)


def test_launch_rights_are_conditioned(resources):  # noqa: ANN001
    statements = [s for p in _of_type(resources, "AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    tags_at_launch = [s for s in statements if s["Action"] == "ec2:CreateTags" and "Condition" in s]
    assert tags_at_launch and tags_at_launch[0]["Condition"] == {"StringEquals": {"ec2:CreateAction": "RunInstances"}}
    pass_role = [s for s in statements if s["Action"] == "iam:PassRole" and "ec2.amazonaws.com" in json.dumps(s)]
    assert pass_role and "cml-worker*" in json.dumps(pass_role[0]["Resource"])


@pytest.mark.parametrize(
    ("model_path", "env_var"),
    [("cmlcm.adapters.dynamo:WorkerItem", "WORKERS_TABLE"), ("cmlcm.adapters.dynamo:OperationItem", "OPERATIONS_TABLE"),
     ("cmlcm.adapters.operations:MetricSampleItem", "METRICS_TABLE")],
)
def test_pynamodb_models_match_the_tables(resources, model_path, env_var):  # noqa: ANN001
    """The local mode creates tables from the models; AWS gets them from CDK: same keys, types, indexes."""
    import importlib

    module, name = model_path.split(":")
    model = getattr(importlib.import_module(module), name)
    schema = model._get_schema()
    api = next(r for r in _of_type(resources, "AWS::Lambda::Function").values()
               if r["Properties"]["Handler"] == "cmlcm.handlers.api.app.handler")
    table_ref = api["Properties"]["Environment"]["Variables"][env_var]["Ref"]
    table = resources[table_ref]["Properties"]

    def keys(key_schema: list) -> list:
        return sorted((k["AttributeName"], k["KeyType"]) for k in key_schema)

    assert keys(table["KeySchema"]) == keys(schema["key_schema"])
    defined = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert defined == {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    cdk_indexes = {i["IndexName"]: keys(i["KeySchema"]) for i in table.get("GlobalSecondaryIndexes", [])}
    model_indexes = {i["index_name"]: keys(i["key_schema"]) for i in schema.get("global_secondary_indexes", [])}
    assert cdk_indexes == model_indexes
