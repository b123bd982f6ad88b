"""Alarms and their notification topic: what tells the operator that something broke.

`Monitoring` is built last in the stack and finds what to watch in the stack's construct tree
(every Lambda function, state machine, queue, table and stream event source mapping, whoever added
it), plus the job metrics the functions publish with Powertools (EMF, namespace
`CmlCloudManager`, dimension `service`). Every alarm notifies one encrypted SNS topic, on ALARM and
on OK; an e-mail address subscribes from the context (`cmlcm:alarmEmail`).

Missing data is chosen per alarm: a job heartbeat that stops arriving is the failure itself
(BREACHING); a collection that failed stays in alarm until a run succeeds (IGNORE keeps the last
state); counts of rare events (errors, compensations, dead letters) are quiet when nothing
happens (NOT_BREACHING). Each description says what to do; `infra/README.md` has the runbook.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnResource, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct, IConstruct

from cmlcm_infra.functions import METRICS_NAMESPACE

#: The default periods of the two jobs (schedules.py) and how late a heartbeat may be: three
#: missed runs. Moving an interval in the settings beyond these needs the context keys
#: `cmlcm:collectOverdueMinutes` / `cmlcm:reconcileOverdueMinutes` and a deployment.
COLLECT_OVERDUE = Duration.minutes(15)
RECONCILE_OVERDUE = Duration.minutes(45)
#: API thresholds: a handful of 5xx in five minutes, or a p99 above a third of the 29 s limit.
API_5XX_PER_5_MIN = 5
API_P99_LATENCY_MS = 10_000
#: A stream consumer more than five minutes behind: live updates are late.
ITERATOR_AGE_MS = 5 * 60 * 1000
FIVE_MINUTES = Duration.minutes(5)

RUNBOOK = "Runbook: infra/README.md#runbook."


@dataclass(frozen=True)
class JobMetric:
    """An EMF metric a function publishes (name and `service` dimension)."""

    name: str
    service: str

    def metric(self, statistic: str, period: Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=self.name,
            dimensions_map={"service": self.service},
            statistic=statistic,
            period=period,
        )


#: Published by `cmlcm.handlers.collect.summarize_handler` once per collection run.
COLLECT_DURATION = JobMetric("CollectDuration", "collect")
COLLECT_RUN_FAILED = JobMetric("CollectRunFailed", "collect")
#: Published by `cmlcm.handlers.reconcile` once per reconciler run, one metric per finding kind.
RECONCILE_UNRECORDED = JobMetric("Reconcile_unrecorded_instance", "reconcile")
RECONCILE_FAILED_LIVE = JobMetric("Reconcile_failed_with_live_instance", "reconcile")
RECONCILE_VANISHED = JobMetric("Reconcile_vanished_instance", "reconcile")
#: Published by `cmlcm.handlers.provision` when the saga compensates or gives up on compensating.
SAGA_COMPENSATED = JobMetric("SagaCompensated", "provision")
SAGA_LEFT_FOR_RECONCILER = JobMetric("SagaLeftForReconciler", "provision")
#: Published by `cmlcm.handlers.broadcaster` per stream batch: bus entries given up after retries.
EVENT_BUS_FAILED = JobMetric("EventBusFailedEntries", "broadcaster")


def cfn_resources(scope: IConstruct, resource_type: str) -> list[CfnResource]:
    """Every CloudFormation resource of `resource_type` under `scope` (any construct, any author)."""
    return [
        node
        for node in scope.node.find_all()
        if isinstance(node, CfnResource) and node.cfn_resource_type == resource_type
    ]


def label(resource: CfnResource) -> str:
    """A readable, unique name for an alarm: the construct path below the stack, `Resource` dropped."""
    stack = Stack.of(resource)
    parts = resource.node.path.split("/")[len(stack.node.path.split("/")) :]
    return "-".join(part for part in parts if part not in {"Resource", "Default"})


class Monitoring(Construct):
    """SNS topic + alarms over the whole stack; build it after every other construct."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigw.RestApi,
        alarm_email: str | None = None,
        collect_overdue: Duration = COLLECT_OVERDUE,
        reconcile_overdue: Duration = RECONCILE_OVERDUE,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._prefix = stack.stack_name
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        # A customer managed key: CloudWatch can publish to a topic encrypted with it, which the
        # AWS managed aws/sns key does not allow (its policy cannot name CloudWatch).
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{stack.stack_name}: encrypts the alarm notification topic",
            enable_key_rotation=True,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name=f"{stack.stack_name} alarms", master_key=self.key, enforce_ssl=True
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self._action = cw_actions.SnsAction(self.topic)

        self._job_alarms(collect_overdue, reconcile_overdue)
        self._api_alarms(rest_api)
        # What the stack holds now, whoever added it (the dashboard graphs the same lists).
        self.functions = cfn_resources(stack, "AWS::Lambda::Function")
        self.state_machines = cfn_resources(stack, "AWS::StepFunctions::StateMachine")
        self.queues = cfn_resources(stack, "AWS::SQS::Queue")
        self.tables = cfn_resources(stack, "AWS::DynamoDB::Table")
        for function in self.functions:
            self._function_alarms(function)
        for machine in self.state_machines:
            self._state_machine_alarm(machine)
        for queue in self.queues:
            self._queue_alarm(queue)
        for table in self.tables:
            self._table_alarm(table)
        for mapping in cfn_resources(stack, "AWS::Lambda::EventSourceMapping"):
            self._iterator_age_alarm(mapping)

    # ------------------------------------------------------------------ helpers

    def alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
    ) -> cloudwatch.Alarm:
        """One alarm named `<stack>-<name>`, notifying the topic on ALARM and on OK."""
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_name=f"{self._prefix}-{name}",
            alarm_description=f"{description} {RUNBOOK}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            treat_missing_data=missing,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[name] = alarm
        return alarm

    # ------------------------------------------------------------------ jobs

    def _job_alarms(self, collect_overdue: Duration, reconcile_overdue: Duration) -> None:
        self.alarm(
            "CollectionOverdue",
            COLLECT_DURATION.metric("SampleCount", collect_overdue),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            # No heartbeat is the failure: the schedule, the state machine or the summary is broken.
            missing=cloudwatch.TreatMissingData.BREACHING,
            description=(
                f"No metrics collection finished in {collect_overdue.to_minutes()} minutes: fleet state and "
                "idle pauses are stale. Check the collect-metrics schedule is ENABLED, the CollectMetrics "
                "state machine's recent executions, and the CollectMetricsSchedule dead-letter queue. If the "
                "collect interval was raised in the settings, raise cmlcm:collectOverdueMinutes too."
            ),
        )
        self.alarm(
            "CollectionFailed",
            COLLECT_RUN_FAILED.metric("Maximum", FIVE_MINUTES),
            threshold=1,
            # Stays in alarm until a run succeeds (each run publishes 0 or 1).
            missing=cloudwatch.TreatMissingData.IGNORE,
            description=(
                "The last collection run failed (a batch or the plan failed). Open the CollectMetrics "
                "execution and the collect function logs (errors by class); AWS or CML outages clear by "
                "themselves, the alarm returns to OK on the next successful run."
            ),
        )
        self.alarm(
            "ReconcilerOverdue",
            RECONCILE_VANISHED.metric("SampleCount", reconcile_overdue),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cloudwatch.TreatMissingData.BREACHING,
            description=(
                f"The reconciler has not finished a run in {reconcile_overdue.to_minutes()} minutes: zombie "
                "instances are not being cleaned up. Check the reconcile schedule, the Reconcile function's "
                "errors and the ReconcileSchedule / ReconcileAsyncFailures dead-letter queues. If the reconcile "
                "interval was raised in the settings, raise cmlcm:reconcileOverdueMinutes too."
            ),
        )
        zombies = cloudwatch.MathExpression(
            expression="unrecorded + failedLive",
            using_metrics={
                "unrecorded": RECONCILE_UNRECORDED.metric("Sum", FIVE_MINUTES),
                "failedLive": RECONCILE_FAILED_LIVE.metric("Sum", FIVE_MINUTES),
            },
            label="Zombie instances found",
            period=FIVE_MINUTES,
        )
        self.alarm(
            "ReconcilerFoundZombies",
            zombies,
            threshold=1,
            description=(
                "The reconciler found running instances no live worker owns (unrecorded, or a FAILED worker's "
                "instance still up); they cost money. Read its 'reconciler finding' log events: adopted or "
                "terminated instances need nothing more, a finding repeating every run needs a look at the "
                "instance's tags and the worker record."
            ),
        )
        self.alarm(
            "SagaCompensated",
            SAGA_COMPENSATED.metric("Sum", FIVE_MINUTES),
            threshold=1,
            description=(
                "A worker's provisioning failed and was rolled back (instance terminated, worker FAILED). "
                "The worker's last_error says which step failed: quotas, AMI or subnet settings, or CML not "
                "booting in time. Fix the cause, delete the FAILED worker and create it again."
            ),
        )
        self.alarm(
            "SagaLeftWorkerFailed",
            SAGA_LEFT_FOR_RECONCILER.metric("Sum", FIVE_MINUTES),
            threshold=1,
            description=(
                "A provisioning saga could not compensate: a worker is left FAILED, possibly with a live "
                "instance. The reconciler terminates it on its next run; if ReconcilerFoundZombies does not "
                "clear, terminate the instance tagged with the worker id by hand."
            ),
        )

        self.alarm(
            "EventBusEntriesFailed",
            EVENT_BUS_FAILED.metric("Sum", FIVE_MINUTES),
            threshold=1,
            description=(
                "Domain events were not put on the custom EventBridge bus after bounded retries (WebSocket "
                "clients got them; users' rules did not). Read the Broadcaster's 'bus entries failed' log "
                "events: ThrottlingException means raise the PutEvents quota, AccessDenied a broken grant, "
                "EntryTooLarge an event over 256 KB."
            ),
        )

    # ------------------------------------------------------------------ API

    def _api_alarms(self, api: apigw.RestApi) -> None:
        self.alarm(
            "Api5xx",
            api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            threshold=API_5XX_PER_5_MIN,
            description=(
                f"The REST API answered at least {API_5XX_PER_5_MIN} 5xx in five minutes. Check the Api "
                "function's errors and logs (a 502 names the AWS or CML service that failed) and the stage's "
                "access logs for the routes."
            ),
        )
        self.alarm(
            "ApiLatencyP99",
            api.metric_latency(period=FIVE_MINUTES, statistic="p99"),
            threshold=API_P99_LATENCY_MS,
            evaluation_periods=3,
            description=(
                f"The REST API's p99 latency is above {API_P99_LATENCY_MS} ms for 15 minutes. Check the Api "
                "function's duration and X-Ray traces: slow CML controllers (refresh, labs) or DynamoDB/EC2 "
                "throttling; the function times out at 29 s."
            ),
        )

    # ------------------------------------------------------------------ per resource

    def _function_alarms(self, function: CfnResource) -> None:
        name = label(function)
        dimensions = {"FunctionName": function.ref}
        self.alarm(
            f"{name}-Errors",
            cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions_map=dimensions,
                statistic="Sum",
                period=FIVE_MINUTES,
            ),
            threshold=1,
            description=(
                f"Function {name} raised an unhandled error. Read its log group (Powertools JSON, the "
                "exception and the request id) and its X-Ray trace; a task function's error also shows in its "
                "state machine's execution history."
            ),
        )
        self.alarm(
            f"{name}-Throttles",
            cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="Throttles",
                dimensions_map=dimensions,
                statistic="Sum",
                period=FIVE_MINUTES,
            ),
            threshold=1,
            description=(
                f"Function {name} was throttled: the account's concurrency is exhausted. Check "
                "ConcurrentExecutions on the dashboard, lower collect_max_concurrency in the settings or ask "
                "for a higher Lambda concurrency quota."
            ),
        )

    def _state_machine_alarm(self, machine: CfnResource) -> None:
        name = label(machine)

        def metric(metric_name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/States",
                metric_name=metric_name,
                dimensions_map={"StateMachineArn": machine.ref},
                statistic="Sum",
                period=FIVE_MINUTES,
            )

        self.alarm(
            f"{name}-ExecutionsFailed",
            cloudwatch.MathExpression(
                expression="failed + timedOut",
                using_metrics={"failed": metric("ExecutionsFailed"), "timedOut": metric("ExecutionsTimedOut")},
                label="Executions failed or timed out",
                period=FIVE_MINUTES,
            ),
            threshold=1,
            description=(
                f"An execution of {name} failed or timed out. Open it in the Step Functions console (the "
                "failed state's error and cause); a provisioning failure has already compensated, a collection "
                "failure is retried by the next scheduled run."
            ),
        )

    def _queue_alarm(self, queue: CfnResource) -> None:
        name = label(queue)
        self.alarm(
            f"{name}-NotEmpty",
            cloudwatch.Metric(
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions_map={"QueueName": queue.get_att("QueueName").to_string()},
                statistic="Maximum",
                period=FIVE_MINUTES,
            ),
            threshold=1,
            description=(
                f"Dead-letter queue {name} holds a message: an asynchronous invocation failed after its "
                "retries. Read the message (its source and error), fix the cause, then redrive or delete it "
                "(README 'Redrive')."
            ),
        )

    def _table_alarm(self, table: CfnResource) -> None:
        name = label(table)

        def metric(metric_name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/DynamoDB",
                metric_name=metric_name,
                dimensions_map={"TableName": table.ref},
                statistic="Sum",
                period=FIVE_MINUTES,
            )

        self.alarm(
            f"{name}-Throttled",
            cloudwatch.MathExpression(
                expression="reads + writes",
                using_metrics={"reads": metric("ReadThrottleEvents"), "writes": metric("WriteThrottleEvents")},
                label="Throttled requests",
                period=FIVE_MINUTES,
            ),
            threshold=1,
            description=(
                f"Table {name} throttled requests (on-demand tables throttle above twice their previous peak "
                "or on a hot partition). Writes are retried by the SDK; if it repeats, lower the collection "
                "batch size or concurrency in the settings."
            ),
        )

    def _iterator_age_alarm(self, mapping: CfnResource) -> None:
        function_name = _mapping_function_name(mapping)
        if function_name is None:
            return
        name = label(mapping)
        self.alarm(
            f"{name}-IteratorAge",
            cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="IteratorAge",
                dimensions_map={"FunctionName": function_name},
                statistic="Maximum",
                period=FIVE_MINUTES,
            ),
            threshold=ITERATOR_AGE_MS,
            evaluation_periods=2,
            description=(
                f"The stream consumer {name} is more than five minutes behind: live updates are late. Check "
                "its function's errors (a failing batch is retried until it goes to its on-failure queue) "
                "and duration."
            ),
        )


def _mapping_function_name(mapping: CfnResource) -> str | None:
    """The FunctionName of a stream event source mapping (None for queue sources)."""
    if not isinstance(mapping, lambda_.CfnEventSourceMapping):
        return None
    if mapping.starting_position is None:  # SQS sources have no position, and no iterator age
        return None
    return mapping.function_name
