"""Alarms and the alarm topic: every function, state machine, queue and table of the template is
watched, the job heartbeats alarm when they stop, every alarm notifies the encrypted topic."""

from __future__ import annotations

import pytest
from _app import offline_app
from _published import published
from _template import of_type

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def alarms(resources) -> dict[str, dict]:
    """Alarm name → properties."""
    return {
        a["Properties"]["AlarmName"]: a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
    }


def _metrics(alarm: dict) -> list[dict]:
    """The metric stats an alarm reads (one metric, or each metric of its math expression)."""
    if "MetricName" in alarm:
        return [
            {
                "Namespace": alarm["Namespace"],
                "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions", []),
            }
        ]
    return [q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q]


def _watched(alarms: dict, namespace: str, metric_name: str, dimension: str) -> list:
    """Dimension values of every alarm reading `namespace/metric_name`."""
    return [
        d["Value"]
        for alarm in alarms.values()
        for m in _metrics(alarm)
        if m["Namespace"] == namespace and m["MetricName"] == metric_name
        for d in m["Dimensions"]
        if d["Name"] == dimension
    ]


def test_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(resources):
    (topic,) = of_type(resources, "AWS::SNS::Topic").values()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = resources[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_no_subscription_without_the_alarm_email_context(resources):
    assert of_type(resources, "AWS::SNS::Subscription") == {}


def test_every_alarm_notifies_the_topic_on_alarm_and_ok_and_says_what_to_do(resources, alarms):
    (topic_id,) = of_type(resources, "AWS::SNS::Topic")
    assert len(alarms) >= 20
    for name, alarm in alarms.items():
        assert name.startswith("CmlCloudManager-"), name
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name
        assert len(alarm["AlarmDescription"].split()) >= 15 and "Runbook" in alarm["AlarmDescription"], name


def test_every_function_has_an_errors_and_a_throttles_alarm(resources, alarms):
    functions = [{"Ref": logical_id} for logical_id in of_type(resources, "AWS::Lambda::Function")]
    assert len(functions) >= 6
    for metric in ("Errors", "Throttles"):
        watched = _watched(alarms, "AWS/Lambda", metric, "FunctionName")
        assert sorted(map(str, watched)) == sorted(map(str, functions)), metric


def test_every_state_machine_alarms_on_failed_and_timed_out_executions(resources, alarms):
    machines = sorted(str({"Ref": logical_id}) for logical_id in of_type(resources, "AWS::StepFunctions::StateMachine"))
    assert len(machines) == 2
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        assert sorted(map(str, _watched(alarms, "AWS/States", metric, "StateMachineArn"))) == machines


def test_every_queue_alarms_as_soon_as_it_holds_a_message(resources, alarms):
    queues = sorted(
        str({"Fn::GetAtt": [logical_id, "QueueName"]}) for logical_id in of_type(resources, "AWS::SQS::Queue")
    )
    assert sorted(map(str, _watched(alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName"))) == queues
    for alarm in alarms.values():
        if alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_every_table_alarms_on_throttled_reads_and_writes(resources, alarms):
    tables = sorted(str({"Ref": logical_id}) for logical_id in of_type(resources, "AWS::DynamoDB::Table"))
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
        assert sorted(map(str, _watched(alarms, "AWS/DynamoDB", metric, "TableName"))) == tables


@pytest.mark.parametrize(
    ("alarm_name", "metric_name", "period"),
    [("CollectionOverdue", "CollectDuration", 900), ("ReconcilerOverdue", "Reconcile_vanished_instance", 2700)],
)
def test_a_job_without_heartbeat_is_in_alarm(alarms, alarm_name, metric_name, period):
    # No data IS the failure: an overdue job must alarm when nothing arrives.
    alarm = alarms[f"CmlCloudManager-{alarm_name}"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("CmlCloudManager", metric_name)
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("SampleCount", period, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["TreatMissingData"] == "breaching"


def test_a_failed_collection_stays_in_alarm_until_a_run_succeeds(alarms):
    alarm = alarms["CmlCloudManager-CollectionFailed"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == ("CollectRunFailed", "Maximum", 1)
    assert alarm["TreatMissingData"] == "ignore"


def test_saga_zombie_and_api_alarms_exist(alarms):
    names = set(alarms)
    for expected in (
        "SagaCompensated",
        "SagaLeftWorkerFailed",
        "ReconcilerFoundZombies",
        "Api5xx",
        "ApiLatencyP99",
    ):
        assert f"CmlCloudManager-{expected}" in names
    latency = alarms["CmlCloudManager-ApiLatencyP99"]
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("Latency", "p99")
    assert alarms["CmlCloudManager-Api5xx"]["MetricName"] == "5XXError"


def test_every_job_metric_alarmed_on_is_published_by_its_handler(alarms):
    # The alarms read EMF metrics by name: a renamed metric would leave an alarm watching nothing.
    for alarm in alarms.values():
        for metric in _metrics(alarm):
            if metric["Namespace"] != "CmlCloudManager":
                continue
            (service,) = [d["Value"] for d in metric["Dimensions"] if d["Name"] == "service"]
            assert published(metric["MetricName"], service, kind_spelled=True), metric["MetricName"]


def test_monitoring_covers_what_other_constructs_add_and_subscribes_the_alarm_email():
    # Given a stack whose table stream feeds a consumer function (as the live-updates broadcaster
    # does), built before Monitoring, and an alarm e-mail
    import aws_cdk as cdk
    from aws_cdk import aws_apigateway as apigw
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_lambda_event_sources as sources
    from aws_cdk.assertions import Template

    from cmlcm_infra.monitoring import Monitoring

    stack = cdk.Stack(offline_app(), "Probe")
    table = dynamodb.Table(
        stack,
        "Changes",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        stream=dynamodb.StreamViewType.NEW_IMAGE,
    )
    consumer = lambda_.Function(
        stack,
        "Broadcaster",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(e, c): pass"),
    )
    consumer.add_event_source(sources.DynamoEventSource(table, starting_position=lambda_.StartingPosition.LATEST))
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("GET")
    # When Monitoring is built last
    Monitoring(stack, "Monitoring", rest_api=api, alarm_email="ops@example.com")
    resources = Template.from_stack(stack).to_json()["Resources"]
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
    }
    # Then the consumer's iterator age, errors and the table's throttles alarm
    (age,) = [a for a in alarms.values() if a.get("MetricName") == "IteratorAge"]
    (function_id,) = of_type(resources, "AWS::Lambda::Function")
    assert age["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    assert (age["Statistic"], age["Threshold"]) == ("Maximum", 300_000)
    assert _watched(alarms, "AWS/Lambda", "Errors", "FunctionName") == [{"Ref": function_id}]
    assert len(_watched(alarms, "AWS/DynamoDB", "WriteThrottleEvents", "TableName")) == 1
    # And the e-mail is subscribed to the topic
    (subscription,) = of_type(resources, "AWS::SNS::Subscription").values()
    assert (subscription["Properties"]["Protocol"], subscription["Properties"]["Endpoint"]) == (
        "email",
        "ops@example.com",
    )


def test_every_stream_consumer_of_the_template_has_an_iterator_age_alarm(resources, alarms):
    # The broadcaster (DynamoDB streams of workers and labs) and any later stream consumer.
    consumers = sorted(
        {
            str(m["Properties"]["FunctionName"])
            for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
            if "StartingPosition" in m["Properties"]
        }
    )
    assert consumers, "the live-updates broadcaster reads the table streams"
    assert sorted(set(map(str, _watched(alarms, "AWS/Lambda", "IteratorAge", "FunctionName")))) == consumers
