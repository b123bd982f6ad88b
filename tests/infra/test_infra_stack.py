"""Template tests of the CmlCloudManager stack: tables, auth, the API function, the REST API, IAM."""

from __future__ import annotations

import pytest
from _template import product_resources
from aws_cdk.assertions import Match

pytestmark = pytest.mark.infra


def _logical_id(template, resource_type: str, properties: dict) -> str:
    """The one resource of `resource_type` matching `properties`."""
    found = template.find_resources(resource_type, {"Properties": properties})
    assert len(found) == 1, f"expected one {resource_type} matching {properties}, found {list(found)}"
    return next(iter(found))


def _table_id(template, partition_key: str, sort_key: str | None = None) -> str:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return _logical_id(template, "AWS::DynamoDB::Table", {"KeySchema": schema})


def _as_list(value):
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- tables


def test_every_table_is_on_demand_encrypted_recoverable_and_retained(template):
    # Given the synthesized template / Then there are six tables (four data tables, connections and
    # subscriptions) and each one is safe to keep
    tables = template.find_resources("AWS::DynamoDB::Table")
    assert len(tables) == 6
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical_id
        # AWS managed key (aws/dynamodb): SSE on, no customer key (an owned key renders no SSE block).
        assert props["SSESpecification"] == {"SSEEnabled": True}, logical_id
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain", logical_id


def test_workers_table_has_sparse_active_index_instance_index_and_stream(template):
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "worker_id", "KeyType": "HASH"}],
            "AttributeDefinitions": Match.array_with(
                [
                    {"AttributeName": "worker_id", "AttributeType": "S"},
                    {"AttributeName": "active_shard", "AttributeType": "S"},
                    {"AttributeName": "instance_id", "AttributeType": "S"},
                ]
            ),
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "active-index",
                    "KeySchema": [
                        {"AttributeName": "active_shard", "KeyType": "HASH"},
                        {"AttributeName": "worker_id", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "instance-index",
                    "KeySchema": [{"AttributeName": "instance_id", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            "TimeToLiveSpecification": Match.absent(),
        },
    )


def test_labs_table_is_keyed_by_worker_and_lab_with_stream(template):
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "worker_id", "KeyType": "HASH"},
                {"AttributeName": "lab_id", "KeyType": "RANGE"},
            ],
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            "GlobalSecondaryIndexes": Match.absent(),
        },
    )


def test_operations_table_is_generic_pk_sk_with_ttl_and_a_stream_for_job_heartbeats(template):
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
        },
    )


def test_metrics_table_sorts_samples_by_numeric_timestamp_with_ttl(template):
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "worker_id", "KeyType": "HASH"},
                {"AttributeName": "ts", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": Match.array_with([{"AttributeName": "ts", "AttributeType": "N"}]),
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )


# ---------------------------------------------------------------- auth


def test_user_pool_is_admin_managed_with_mfa_and_strong_passwords(template):
    template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "MfaConfiguration": "ON",
            "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
            "Policies": {
                "PasswordPolicy": Match.object_like(
                    {
                        "MinimumLength": 12,
                        "RequireLowercase": True,
                        "RequireUppercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": True,
                    }
                )
            },
            "DeletionProtection": "ACTIVE",
        },
    )
    template.has_resource("AWS::Cognito::UserPool", {"DeletionPolicy": "Retain"})


def test_the_role_groups_exist_with_admin_taking_precedence(template):
    groups = {
        group["Properties"]["GroupName"]: group["Properties"]["Precedence"]
        for group in template.find_resources("AWS::Cognito::UserPoolGroup").values()
    }
    assert groups.keys() == {"admin", "operator", "viewer"}
    assert groups["admin"] < groups["operator"] < groups["viewer"]


def test_web_client_is_public_and_uses_srp_only(template):
    template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "GenerateSecret": False,
            "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            "PreventUserExistenceErrors": "ENABLED",
        },
    )


# ---------------------------------------------------------------- API function


def test_api_function_runs_the_api_handler_with_the_settings_config_reads(template):
    env_names = {
        "WORKERS_TABLE": _table_id(template, "worker_id"),
        "LABS_TABLE": _table_id(template, "worker_id", "lab_id"),
        "OPERATIONS_TABLE": _table_id(template, "pk", "sk"),
        "METRICS_TABLE": _table_id(template, "worker_id", "ts"),
    }
    secret_id = _logical_id(template, "AWS::SecretsManager::Secret", {"Name": "cmlcm/cml-credentials"})
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "cmlcm.handlers.api.app.handler",
            "Runtime": "python3.12",
            "Timeout": 29,
            "TracingConfig": {"Mode": "Active"},
            "Layers": Match.any_value(),
            "LoggingConfig": {"LogGroup": Match.any_value()},
            "Environment": {
                "Variables": {
                    **{name: {"Ref": logical_id} for name, logical_id in env_names.items()},
                    "CML_CREDENTIALS_SECRET": {"Ref": secret_id},
                    "SUPPORTED_REGIONS": {"Ref": "AWS::Region"},  # the stack's region by default
                    "CML_ENDPOINT_MODE": "public",
                    "POWERTOOLS_SERVICE_NAME": "api",
                    "POWERTOOLS_METRICS_NAMESPACE": "CmlCloudManager",
                    "LOG_LEVEL": "INFO",
                }
            },
        },
    )


def test_environment_variable_names_are_the_ones_function_settings_reads(resources):
    from cmlcm.config import FunctionConfig

    known = {field.alias for field in FunctionConfig.model_fields.values()}
    # Powertools reads these itself; everything else must be a FunctionConfig field.
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}
    for logical_id, resource in product_resources(resources).items():
        if resource["Type"] == "AWS::Lambda::Function":
            names = set(resource["Properties"]["Environment"]["Variables"])
            assert names - powertools <= known, f"{logical_id}: unknown variables {names - powertools - known}"


def test_function_logs_have_a_retention(template):
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
    for logical_id, group in template.find_resources("AWS::Logs::LogGroup").items():
        assert "RetentionInDays" in group["Properties"], logical_id


def test_layer_targets_the_function_runtime(template):
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleRuntimes": ["python3.12"], "CompatibleArchitectures": ["x86_64"]},
    )


# ---------------------------------------------------------------- REST API


def _methods(resources) -> dict[tuple[str, str], dict]:
    """API methods keyed by (http method, path part of their resource, '/' for the root)."""
    parts = {
        logical_id: r["Properties"]["PathPart"]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::ApiGateway::Resource"
    }
    methods = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGateway::Method":
            continue
        props = resource["Properties"]
        resource_ref = props["ResourceId"]
        path = parts[resource_ref["Ref"]] if "Ref" in resource_ref else "/"
        methods[(props["HttpMethod"], path)] = props
    return methods


def test_only_health_and_openapi_are_public_every_other_method_uses_cognito(resources, template):
    authorizer_id = _logical_id(template, "AWS::ApiGateway::Authorizer", {"Type": "COGNITO_USER_POOLS"})
    methods = _methods(resources)
    public = {("GET", "health"), ("GET", "openapi.json"), ("OPTIONS", "/"), ("OPTIONS", "{proxy+}")}
    # (the throttled routes' own methods: test_infra_protection)
    assert {("ANY", "/"), ("ANY", "{proxy+}")} | public <= set(methods)
    # Every path answering ANY answers the browsers' CORS preflight (OPTIONS, sent without a token).
    assert {path for verb, path in methods if verb == "ANY"} == {path for verb, path in methods if verb == "OPTIONS"}
    for key, props in methods.items():
        if key in public or key[0] == "OPTIONS":
            assert props["AuthorizationType"] == "NONE", key
            assert "AuthorizerId" not in props, key
        else:
            assert props["AuthorizationType"] == "COGNITO_USER_POOLS", key
            assert props["AuthorizerId"] == {"Ref": authorizer_id}, key


def test_every_method_proxies_to_the_api_function_and_is_validated(resources, template):
    function_id = _logical_id(template, "AWS::Lambda::Function", {"Handler": "cmlcm.handlers.api.app.handler"})
    validator_id = _logical_id(
        template,
        "AWS::ApiGateway::RequestValidator",
        {"ValidateRequestBody": True, "ValidateRequestParameters": True},
    )
    for key, props in _methods(resources).items():
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY", key
        assert function_id in str(integration["Uri"]), key
        assert props["RequestValidatorId"] == {"Ref": validator_id}, key


def test_authorizer_trusts_the_stack_user_pool(template):
    user_pool_id = _logical_id(template, "AWS::Cognito::UserPool", {})
    template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "COGNITO_USER_POOLS",
            "IdentitySource": "method.request.header.Authorization",
            "ProviderARNs": [{"Fn::GetAtt": [user_pool_id, "Arn"]}],
        },
    )


def test_answers_over_a_kibibyte_are_compressed_for_clients_that_accept_it(template):
    # The fleet list (about 1.2 MiB of JSON for 1000 workers) travels gzipped to the dashboard.
    template.has_resource_properties("AWS::ApiGateway::RestApi", {"MinimumCompressionSize": 1024})


def test_stage_has_access_logs_execution_logs_tracing_and_throttling(template):
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "v1",
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("requestId")},
            # The stage-wide setting; the throttled routes' own: test_infra_protection.
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "HttpMethod": "*",
                            "ResourcePath": "/*",
                            "LoggingLevel": "ERROR",
                            "DataTraceEnabled": False,
                            "ThrottlingRateLimit": 50,
                            "ThrottlingBurstLimit": 100,
                        }
                    )
                ]
            ),
        },
    )


def test_outputs_name_the_api_url_user_pool_client_and_tables(template):
    outputs = template.to_json()["Outputs"]
    assert {
        "RestApiUrl",
        "UserPoolId",
        "UserPoolClientId",
        "WorkersTable",
        "LabsTable",
        "OperationsTable",
        "MetricsTable",
    } <= outputs.keys()


# ---------------------------------------------------------------- IAM


def _statements(resources, principal: str | None = None) -> list[tuple[str, dict]]:
    """Policy statements (the product's, not the CDK-owned ones); with `principal`, only those of
    roles that service assumes."""
    resources = product_resources(resources)
    roles = {
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Role" and (principal is None or principal in str(resource["Properties"]))
    }
    return [
        (logical_id, statement)
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Policy"
        and (principal is None or any(r.get("Ref") in roles for r in resource["Properties"].get("Roles", [])))
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_no_policy_grants_a_wildcard_action(resources):
    for logical_id, statement in _statements(resources):
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{logical_id}: wildcard action {action}"


def test_resource_star_is_only_used_by_actions_without_resource_level_permissions(resources):
    """Function roles only; the state machines' log-delivery and X-Ray actions are acknowledged
    on their roles (workflows.py)."""
    from cmlcm_infra.permissions import RESOURCE_WILDCARD_ACTIONS

    for logical_id, statement in _statements(resources, "lambda.amazonaws.com"):
        if "*" in _as_list(statement["Resource"]):
            assert set(_as_list(statement["Action"])) <= RESOURCE_WILDCARD_ACTIONS, logical_id


def test_no_function_role_has_a_managed_policy(resources):
    for logical_id, resource in product_resources(resources).items():
        if resource["Type"] == "AWS::IAM::Role" and "lambda.amazonaws.com" in str(resource["Properties"]):
            assert "ManagedPolicyArns" not in resource["Properties"], logical_id


def test_functions_may_control_only_this_accounts_instances(resources):
    """Instance lifecycle/tag actions (any subset) only ever name this account's instances;
    the API alone holds the full set (tests/infra/test_infra_tasks.py pins each task's subset)."""
    from cmlcm_infra.permissions import EC2_INSTANCE_ACTIONS

    statements = [
        s
        for _, s in _statements(resources)
        if set(_as_list(s["Action"])) & set(EC2_INSTANCE_ACTIONS) and "Condition" not in s
    ]
    assert [s for s in statements if set(_as_list(s["Action"])) == set(EC2_INSTANCE_ACTIONS)], "API grant"
    for statement in statements:
        assert statement["Resource"] == {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ec2:*:", {"Ref": "AWS::AccountId"}, ":instance/*"]]
        }


def test_api_function_reads_only_the_cml_secret_value(resources, template):
    secret_id = _logical_id(template, "AWS::SecretsManager::Secret", {"Name": "cmlcm/cml-credentials"})
    secret_statements = [
        s
        for _, s in _statements(resources)
        if any(a.startswith("secretsmanager:") for a in _as_list(s["Action"]))
        and "cmlcm/licence/" not in str(s["Resource"])
    ]
    # API, collector, provisioning (readiness) and reconciler: the CML credentials, read only.
    assert (
        secret_statements
        == [{"Action": "secretsmanager:GetSecretValue", "Effect": "Allow", "Resource": {"Ref": secret_id}}] * 4
    )


def test_api_function_may_write_only_licence_token_secrets(resources):
    tokens = [s for _, s in _statements(resources) if "cmlcm/licence/" in str(s["Resource"])]
    assert len(tokens) == 1
    assert set(_as_list(tokens[0]["Action"])) == {
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:TagResource",
        "secretsmanager:DeleteSecret",
    }
    assert str(tokens[0]["Resource"]).endswith("secret:cmlcm/licence/*']]}")


def test_api_function_has_item_access_to_the_four_tables_but_no_table_administration(resources):
    dynamo = [s for _, s in _statements(resources) if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))]
    actions = {a for s in dynamo for a in _as_list(s["Action"])}
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= actions
    assert not actions & {"dynamodb:DeleteTable", "dynamodb:CreateTable", "dynamodb:UpdateTable"}
    table_arns = {
        str(r)
        for s in dynamo
        for r in _as_list(s["Resource"])
        if isinstance(r, dict) and "Fn::GetAtt" in r and r["Fn::GetAtt"][1] == "Arn"
    }
    assert len(table_arns) == 6  # the four data tables, connections and subscriptions
