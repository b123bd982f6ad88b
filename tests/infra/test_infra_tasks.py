"""Task functions (collection, provisioning saga, reconciler) and the API function: each runs its
handler, gets the shared environment, and holds exactly the actions and table access its code
paths need."""

from __future__ import annotations

import json

import pytest
from _template import (
    API_HANDLER,
    BASELINE_ACTIONS,
    TABLE_VARIABLES,
    actions,
    as_list,
    environment,
    function_id,
    function_statements,
    of_type,
    role_statements,
    table_access,
)

pytestmark = pytest.mark.infra

PLAN = "cmlcm.handlers.collect.plan_handler"
BATCH = "cmlcm.handlers.collect.collect_batch_handler"
SUMMARY = "cmlcm.handlers.collect.summarize_handler"
PROVISION = "cmlcm.handlers.provision.handler"
RECONCILE = "cmlcm.handlers.reconcile.handler"
ALL_HANDLERS = (API_HANDLER, PLAN, BATCH, SUMMARY, PROVISION, RECONCILE)

SECRET_READ = {"secretsmanager:GetSecretValue"}
#: Handler → every action its role holds beyond the baseline (DynamoDB is checked per table below).
EXPECTED_ACTIONS = {
    # Puts the schedules back on the settings' intervals after a deployment reset them.
    # Writes the run's batches to the collect-runs bucket (the Distributed Map reads them there).
    PLAN: {"scheduler:GetSchedule", "scheduler:UpdateSchedule", "iam:PassRole", "s3:PutObject"},
    # Stops (idle, schedules) and starts (schedules) workers after collecting them.
    BATCH: {
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeAddresses",  # Elastic IPs moved outside the product, each cycle
        "ec2:StopInstances",
        "ec2:StartInstances",
        "cloudwatch:GetMetricData",
    }
    | SECRET_READ
    | {"s3:PutObject"},  # its outcome
    SUMMARY: {"s3:GetObject", "s3:ListBucket"},  # the run's batches and outcomes
    PROVISION: {
        "ec2:DescribeInstances",
        "ec2:RunInstances",
        "ec2:CreateTags",
        "ec2:TerminateInstances",
        "iam:PassRole",
    }
    | SECRET_READ,
    RECONCILE: {"ec2:DescribeInstances", "ec2:DescribeImages", "ec2:TerminateInstances", "ec2:CreateTags"}
    | SECRET_READ
    # Lambda's on-failure destination (the reconciler's async-failures queue) sends as the function.
    | {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
    API_HANDLER: {
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeImages",
        "ec2:StartInstances",
        "ec2:StopInstances",
        "ec2:TerminateInstances",
        "ec2:CreateTags",
        "ec2:DeleteTags",
        "ec2:MonitorInstances",
        "cloudwatch:GetMetricData",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:TagResource",
        "secretsmanager:DeleteSecret",
        "states:StartExecution",
        "scheduler:GetSchedule",
        "scheduler:UpdateSchedule",
        "iam:PassRole",
        # The jobs API's "run now" of the reconciler (async Invoke, on its ARN only).
        "lambda:InvokeFunction",
    }
    | SECRET_READ,
}
#: Handler → table access (a table not listed is not reachable at all).
EXPECTED_TABLES = {
    PLAN: {"WORKERS_TABLE": "read", "OPERATIONS_TABLE": "read_write"},
    BATCH: {
        "WORKERS_TABLE": "read_write",
        "OPERATIONS_TABLE": "read",
        "METRICS_TABLE": "write",
        "LABS_TABLE": "read_write",
    },
    SUMMARY: {"OPERATIONS_TABLE": "read_write"},
    PROVISION: {"WORKERS_TABLE": "read_write", "OPERATIONS_TABLE": "read_write"},
    RECONCILE: {"WORKERS_TABLE": "read_write", "OPERATIONS_TABLE": "read_write"},
    API_HANDLER: {name: "read_write" for name in TABLE_VARIABLES},
}


def _ec2(kind: str) -> dict:
    """`arn:<partition>:ec2:*:<account>:<kind>/*` as the template renders it."""
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ec2:*:", {"Ref": "AWS::AccountId"}, f":{kind}/*"]]}


INSTANCES = _ec2("instance")


#: Images belong to their owner (any account: CML AMIs may be shared), so no account in the ARN.
ANY_IMAGE = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ec2:*::image/*"]]}


def test_each_task_runs_once_with_its_memory_and_timeout(resources):
    # Given the template / Then every handler has one function, sized for its work
    expected = {PLAN: (512, 60), BATCH: (1769, 300), SUMMARY: (512, 60), PROVISION: (512, 60), RECONCILE: (512, 300)}
    for handler, (memory, timeout) in expected.items():
        props = resources[function_id(resources, handler)]["Properties"]
        assert (props["MemorySize"], props["Timeout"]) == (memory, timeout), handler
        assert props["Runtime"] == "python3.12" and props["TracingConfig"] == {"Mode": "Active"}, handler


@pytest.mark.parametrize("handler", ALL_HANDLERS)
def test_every_function_gets_the_tables_secret_endpoint_mode_and_regions(resources, template, handler):
    env = environment(resources, handler)
    keys = {
        "WORKERS_TABLE": ["worker_id"],
        "LABS_TABLE": ["worker_id", "lab_id"],
        "OPERATIONS_TABLE": ["pk", "sk"],
        "METRICS_TABLE": ["worker_id", "ts"],
    }
    tables = {
        name: logical_id
        for logical_id, table in of_type(resources, "AWS::DynamoDB::Table").items()
        for name, key in keys.items()
        if [k["AttributeName"] for k in table["Properties"]["KeySchema"]] == key
    }
    assert {name: env[name] for name in TABLE_VARIABLES} == {name: {"Ref": tables[name]} for name in TABLE_VARIABLES}
    secret_id = next(iter(template.find_resources("AWS::SecretsManager::Secret")))
    assert env["CML_CREDENTIALS_SECRET"] == {"Ref": secret_id}
    assert env["CML_ENDPOINT_MODE"] == "public"
    assert env["SUPPORTED_REGIONS"] == {"Ref": "AWS::Region"}  # the stack's region by default


@pytest.mark.parametrize("handler", ALL_HANDLERS)
def test_each_function_holds_exactly_its_actions(resources, handler):
    # Given the function's role / Then nothing beyond logs, traces and what its code calls
    held = actions(function_statements(resources, handler))
    assert {a for a in held if not a.startswith("dynamodb:")} == BASELINE_ACTIONS | EXPECTED_ACTIONS[handler]


@pytest.mark.parametrize("handler", ALL_HANDLERS)
def test_each_function_reaches_exactly_its_tables(resources, handler):
    assert table_access(resources, handler) == EXPECTED_TABLES[handler]
    table_admin = {"dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:UpdateTimeToLive"}
    assert not actions(function_statements(resources, handler)) & table_admin


def test_provision_role_runs_instances_only_from_what_a_launch_uses(resources):
    statements = function_statements(resources, PROVISION)
    run = [s for s in statements if "ec2:RunInstances" in as_list(s["Action"])]
    assert len(run) == 1 and as_list(run[0]["Action"]) == ["ec2:RunInstances"]
    kinds = ("instance", "volume", "network-interface", "security-group", "subnet", "key-pair")
    expected = [_ec2(kind) for kind in kinds] + [ANY_IMAGE]
    assert sorted(map(json.dumps, as_list(run[0]["Resource"]))) == sorted(map(json.dumps, expected))


def test_provision_role_tags_only_at_launch_and_terminates_instances(resources):
    statements = function_statements(resources, PROVISION)
    tagging = [s for s in statements if "ec2:CreateTags" in as_list(s["Action"])]
    assert tagging == [
        {
            "Action": "ec2:CreateTags",
            "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
            "Effect": "Allow",
            "Resource": INSTANCES,
        }
    ]
    terminate = [s for s in statements if "ec2:TerminateInstances" in as_list(s["Action"])]
    assert terminate == [{"Action": "ec2:TerminateInstances", "Effect": "Allow", "Resource": INSTANCES}]


def test_provision_role_passes_only_worker_roles_and_only_to_ec2(resources):
    pass_role = [s for s in function_statements(resources, PROVISION) if "iam:PassRole" in as_list(s["Action"])]
    assert pass_role == [
        {
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            "Effect": "Allow",
            "Resource": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":role/cml-worker*"],
                ]
            },
        }
    ]


def test_only_the_saga_may_launch_and_every_pass_role_names_its_service(resources):
    for role_id in of_type(resources, "AWS::IAM::Role"):
        for statement in role_statements(resources, role_id):
            granted = set(as_list(statement["Action"]))
            if "ec2:RunInstances" in granted:
                assert role_id == resources[function_id(resources, PROVISION)]["Properties"]["Role"]["Fn::GetAtt"][0]
            if "iam:PassRole" in granted:
                assert "iam:PassedToService" in statement.get("Condition", {}).get("StringEquals", {}), role_id
                assert "*" not in as_list(statement["Resource"]), role_id


def test_every_unconditioned_tag_grant_names_instances_only(resources):
    for role_id in of_type(resources, "AWS::IAM::Role"):
        for statement in role_statements(resources, role_id):
            if "ec2:CreateTags" in as_list(statement["Action"]) and "Condition" not in statement:
                assert statement["Resource"] == INSTANCES, role_id


def test_context_moves_regions_endpoint_mode_and_schedule_names():
    # Given an app built with other context values
    from _app import offline_app
    from aws_cdk.assertions import Template

    from cmlcm_infra.composition import build

    app = offline_app(
        **{
            "cmlcm:supportedRegions": "eu-west-1,eu-central-1",
            "cmlcm:cmlEndpointMode": "private",
            "cmlcm:stackName": "CmlcmStaging",
        }
    )
    resources = Template.from_stack(build(app)).to_json()["Resources"]
    # Then every function follows them, and the schedules are named after the stack
    for handler in ALL_HANDLERS:
        env = environment(resources, handler)
        assert (env["SUPPORTED_REGIONS"], env["CML_ENDPOINT_MODE"]) == ("eu-west-1,eu-central-1", "private")
    names = sorted(s["Properties"]["Name"] for s in of_type(resources, "AWS::Scheduler::Schedule").values())
    assert names == ["CmlcmStaging-collect-metrics", "CmlcmStaging-reconcile"]
    assert environment(resources, API_HANDLER)["COLLECT_SCHEDULE_NAME"] == "CmlcmStaging-collect-metrics"


#: Handler → (actions, the key pattern) it holds on the collect-runs bucket: each only its own objects.
COLLECT_RUNS_ACCESS = {
    PLAN: [(["s3:PutObject"], "/runs/*/batches.json")],
    BATCH: [(["s3:PutObject"], "/runs/*/results/*")],
    SUMMARY: [(["s3:GetObject"], "/runs/*"), (["s3:ListBucket"], "")],
}


@pytest.mark.parametrize("handler", sorted(COLLECT_RUNS_ACCESS))
def test_collection_functions_reach_only_their_objects_of_the_collect_runs_bucket(resources, handler):
    bucket = next(k for k, r in of_type(resources, "AWS::S3::Bucket").items() if "CollectRuns" in k)
    held = []
    for statement in function_statements(resources, handler):
        if not any(str(a).startswith("s3:") for a in _list(statement["Action"])):
            continue
        resource = statement["Resource"]
        if "Fn::Join" in resource:
            parts = resource["Fn::Join"][1]
            assert parts[0] == {"Fn::GetAtt": [bucket, "Arn"]}
            suffix = "".join(parts[1:])
        else:
            assert resource == {"Fn::GetAtt": [bucket, "Arn"]}
            suffix = ""
            assert statement["Condition"] == {"StringLike": {"s3:prefix": ["runs/*"]}}
        held.append((_list(statement["Action"]), suffix))
    assert sorted(held) == sorted(COLLECT_RUNS_ACCESS[handler])


def _list(value):  # noqa: ANN001, ANN202
    return value if isinstance(value, list) else [value]
