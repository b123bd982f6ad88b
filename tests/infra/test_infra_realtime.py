"""Live updates in the template: the WebSocket API and its stage, the connection/subscription
tables, the ws function and the stream broadcaster with their mappings and exact grants."""

from __future__ import annotations

import pytest
from _template import (
    actions,
    as_list,
    environment,
    function_id,
    function_statements,
    get_att_ids,
    of_type,
    product_resources,
)

from cmlcm.handlers.ws import MESSAGE_ROUTES, ROUTE_SELECTION_EXPRESSION

pytestmark = pytest.mark.infra

WS = "cmlcm.handlers.ws.handler"
BROADCASTER = "cmlcm.handlers.broadcaster.handler"
BASELINE = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def _one(resources: dict, kind: str) -> tuple[str, dict]:
    (found,) = of_type(resources, kind).items()
    return found


def _table_id(resources: dict, *keys: str) -> str:
    for logical_id, table in of_type(resources, "AWS::DynamoDB::Table").items():
        if [k["AttributeName"] for k in table["Properties"]["KeySchema"]] == list(keys):
            return logical_id
    raise AssertionError(f"no table keyed {keys}")


def test_websocket_api_routes_select_on_the_body_action_and_all_go_to_the_ws_function(resources):
    _, api = _one(resources, "AWS::ApiGatewayV2::Api")
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    assert api["Properties"]["RouteSelectionExpression"] == ROUTE_SELECTION_EXPRESSION == "$request.body.action"
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"] for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()
    }
    assert set(routes) == {"$connect", "$disconnect", "$default", *MESSAGE_ROUTES}
    ws_id = function_id(resources, WS)
    for integration in of_type(resources, "AWS::ApiGatewayV2::Integration").values():
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert ws_id in str(integration["Properties"]["IntegrationUri"])


def test_stage_is_throttled_with_json_access_logs_and_its_url_is_an_output(template, resources):
    _, stage = _one(resources, "AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    assert props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    assert "$context.connectionId" in props["AccessLogSettings"]["Format"]
    assert "DestinationArn" in props["AccessLogSettings"]
    outputs = template.to_json()["Outputs"]
    assert "wss://" in str(outputs["WebSocketUrl"]["Value"])


def test_connection_and_subscription_tables_have_ttl_and_query_by_topic(resources):
    connections = resources[_table_id(resources, "connection_id")]["Properties"]
    subscriptions = resources[_table_id(resources, "topic", "connection_id")]["Properties"]
    for table in (connections, subscriptions):
        assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_broadcaster_reads_the_three_streams_with_batching_bisect_retries_and_a_failure_queue(resources):
    broadcaster = function_id(resources, BROADCASTER)
    mappings = [
        m["Properties"]
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": broadcaster}
    ]
    sources = {get_att_ids(m["EventSourceArn"]).pop(): m for m in mappings}
    assert set(sources) == {
        _table_id(resources, "worker_id"),
        _table_id(resources, "worker_id", "lab_id"),
        _table_id(resources, "pk", "sk"),
    }
    (queue_id,) = get_att_ids(mappings[0]["DestinationConfig"])
    assert resources[queue_id]["Type"] == "AWS::SQS::Queue"
    for mapping in mappings:
        assert mapping["BatchSize"] == 100 and mapping["MaximumBatchingWindowInSeconds"] == 1
        assert mapping["BisectBatchOnFunctionError"] is True and mapping["MaximumRetryAttempts"] == 3
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["StartingPosition"] == "LATEST"
        assert get_att_ids(mapping["DestinationConfig"]) == {queue_id}
    operations = sources[_table_id(resources, "pk", "sk")]
    assert operations["FilterCriteria"]["Filters"] == [{"Pattern": '{"dynamodb":{"Keys":{"pk":{"S":["JOB"]}}}}'}]
    assert all("FilterCriteria" not in m for key, m in sources.items() if key != _table_id(resources, "pk", "sk"))


def _manage_connections(resources: dict, handler: str) -> list[dict]:
    return [
        s for s in function_statements(resources, handler) if "execute-api:ManageConnections" in as_list(s["Action"])
    ]


def test_only_the_two_realtime_functions_post_and_only_to_this_apis_connections(resources):
    (api_id, _), (_, stage) = _one(resources, "AWS::ApiGatewayV2::Api"), _one(resources, "AWS::ApiGatewayV2::Stage")
    for handler in (WS, BROADCASTER):
        (statement,) = _manage_connections(resources, handler)
        (resource,) = as_list(statement["Resource"])
        rendered = str(resource)
        assert api_id in rendered and f"/{stage['Properties']['StageName']}/POST/@connections/*" in rendered
    others = [h for h in _handlers(resources) if h not in (WS, BROADCASTER)]
    assert others and all(not _manage_connections(resources, h) for h in others)


def _handlers(resources: dict) -> list[str]:
    return [f["Properties"]["Handler"] for f in of_type(product_resources(resources), "AWS::Lambda::Function").values()]


def test_ws_function_verifies_tokens_of_this_pool_and_client_and_reads_what_snapshots_need(resources):
    env = environment(resources, WS)
    pool = next(iter(of_type(resources, "AWS::Cognito::UserPool")))
    client = next(iter(of_type(resources, "AWS::Cognito::UserPoolClient")))
    assert pool in str(env["COGNITO_ISSUER"]) and "cognito-idp." in str(env["COGNITO_ISSUER"])
    assert env["COGNITO_CLIENT_ID"] == {"Ref": client}
    assert actions(function_statements(resources, WS)) - BASELINE == {
        "execute-api:ManageConnections",
        *_dynamo_read,
        *_dynamo_write,
    }
    writes = _written_tables(resources, WS)
    assert writes == {_table_id(resources, "connection_id"), _table_id(resources, "topic", "connection_id")}


def test_broadcaster_reads_streams_and_only_writes_connection_records(resources):
    env = environment(resources, BROADCASTER)
    assert "WEBSOCKET_CALLBACK_URL" in env and "https://" in str(env["WEBSOCKET_CALLBACK_URL"])
    assert _written_tables(resources, BROADCASTER) == {
        _table_id(resources, "connection_id"),
        _table_id(resources, "topic", "connection_id"),
    }
    granted = actions(function_statements(resources, BROADCASTER))
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream"} <= granted
    assert "sqs:SendMessage" in granted  # the on-failure destination
    assert "events:PutEvents" in granted  # the domain events bus (checked below)


_dynamo_read = {
    "dynamodb:BatchGetItem",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:Query",
    "dynamodb:GetItem",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
}
_dynamo_write = {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def _written_tables(resources: dict, handler: str) -> set[str]:
    return {
        table
        for s in function_statements(resources, handler)
        if "dynamodb:PutItem" in as_list(s["Action"])
        for table in get_att_ids(s["Resource"])
    }


EC2_EVENTS = "cmlcm.handlers.ec2_events.handler"


def test_ec2_state_changes_reach_their_handler_with_a_dead_letter_queue(resources):
    rules = [
        r["Properties"]
        for r in of_type(resources, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.ec2"]
    ]
    (rule,) = rules
    assert rule["EventPattern"]["detail-type"] == ["EC2 Instance State-change Notification"]
    (target,) = rule["Targets"]
    assert get_att_ids(target["Arn"]) == {function_id(resources, EC2_EVENTS)}
    (queue,) = get_att_ids(target["DeadLetterConfig"])
    assert resources[queue]["Type"] == "AWS::SQS::Queue"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 3
    # It writes the workers table only (find by instance, conditional save).
    assert _written_tables(resources, EC2_EVENTS) == {_table_id(resources, "worker_id")}


# --- domain events on the custom bus ---


def test_the_custom_event_bus_exists_and_its_name_and_arn_are_outputs(template, resources):
    (bus_id, bus) = _one(resources, "AWS::Events::EventBus")
    assert "cmlcm" in bus["Properties"]["Description"]
    outputs = template.to_json()["Outputs"]
    assert outputs["EventBusName"]["Value"] == {"Ref": bus_id}
    assert get_att_ids(outputs["EventBusArn"]["Value"]) == {bus_id}
    # The broadcaster is told which bus to put on.
    assert environment(resources, BROADCASTER)["EVENT_BUS_NAME"] == {"Ref": bus_id}


def test_only_the_broadcaster_may_put_events_and_only_on_this_bus(resources):
    (bus_id, _) = _one(resources, "AWS::Events::EventBus")
    (statement,) = [
        s for s in function_statements(resources, BROADCASTER) if "events:PutEvents" in as_list(s["Action"])
    ]
    assert as_list(statement["Action"]) == ["events:PutEvents"] and statement["Effect"] == "Allow"
    (resource,) = as_list(statement["Resource"])
    assert get_att_ids(resource) == {bus_id} and "Condition" not in statement
    others = [h for h in _handlers(resources) if h != BROADCASTER]
    assert others and all(
        "events:PutEvents" not in actions(function_statements(resources, handler)) for handler in others
    )
    # No other policy of the template (state machines, CDK helpers) may put on it either.
    for policy_id, policy in of_type(resources, "AWS::IAM::Policy").items():
        for other in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "events:PutEvents" in as_list(other["Action"]):
                assert other == statement, policy_id


def test_the_documented_cdk_example_rule_synthesizes_with_the_documented_pattern():
    # Given the README's CDK snippet (docs/events/rules/worker_failed_cdk.py) in a user's stack
    import importlib.util
    import json
    from pathlib import Path

    import aws_cdk as cdk
    from aws_cdk import aws_sns as sns
    from aws_cdk.assertions import Template

    rules = Path(__file__).resolve().parents[2] / "docs" / "events" / "rules"
    spec = importlib.util.spec_from_file_location("worker_failed_cdk", rules / "worker_failed_cdk.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stack = cdk.Stack(cdk.App(), "Automation")
    # When it adds the rule on the product's bus
    module.worker_failed_rule(stack, event_bus_name="CmlCloudManagerBus", topic=sns.Topic(stack, "Ops"))
    # Then the rule's pattern is the JSON pattern the docs show and the local mode installs
    resources = Template.from_stack(stack).to_json()["Resources"]
    (_, rule) = _one(resources, "AWS::Events::Rule")
    assert rule["Properties"]["EventPattern"] == json.loads((rules / "worker-failed.json").read_text())
    assert rule["Properties"]["EventBusName"] == "CmlCloudManagerBus"
    (target,) = rule["Properties"]["Targets"]
    assert "$.detail.data.name" in json.dumps(target["InputTransformer"])
    # and EventBridge may publish to the topic
    assert "events.amazonaws.com" in json.dumps(of_type(resources, "AWS::SNS::TopicPolicy"))
