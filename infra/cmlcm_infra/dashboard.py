"""The operations dashboard (CloudWatch): `<stack>-operations`.

Top to bottom: alarm states; the fleet (workers by status, paused workers, worker-hours saved
by pauses); the fleet policy (workers kept stopped by the idle policy or a schedule, hours and
on-demand USD saved, schedule stops and starts); the collection job (duration, workers collected/failed, failed batches, CML and AWS
error classes); the API (requests, 4xx/5xx, latency percentiles); the provisioning saga
(outcomes) and the reconciler (findings); the machinery (Lambda duration, concurrency, errors,
throttles; state machine executions; dead letters; DynamoDB capacity and throttles).

The fleet graphs come from the collector's per-batch `Fleet_<status>` metrics: CloudWatch sums
the batches of each run, and dividing by the number of runs in the period (SampleCount of
`CollectDuration`) gives the fleet per run whatever the collect interval is. Hours saved is the
average number of paused workers times the length of the period. Money saved is, the same way,
the average of `PolicySavingsUsdPerHour` (the on-demand price per hour of the workers a policy
keeps stopped, priced from the settings' table) times the length of the period.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnResource, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from cmlcm_infra.functions import METRICS_NAMESPACE
from cmlcm_infra.monitoring import COLLECT_DURATION, JobMetric, label

#: `cmlcm.domain.workers.WorkerStatus` values (tests/infra checks they agree), then `paused`.
WORKER_STATUSES = (
    "pending",
    "provisioning",
    "running",
    "stopping",
    "stopped",
    "starting",
    "terminating",
    "terminated",
    "failed",
    "unknown",
)
FIVE_MINUTES = Duration.minutes(5)
HOUR = Duration.hours(1)
WIDE, HALF, THIRD = 24, 12, 8
HEIGHT = 6


def _graph(**options: Any) -> cloudwatch.GraphWidget:
    """A graph of the dashboard's row height."""
    return cloudwatch.GraphWidget(height=HEIGHT, **options)


def _single(**options: Any) -> cloudwatch.SingleValueWidget:
    """A single-value widget of the dashboard's row height."""
    return cloudwatch.SingleValueWidget(height=HEIGHT, **options)


def _section(title: str) -> cloudwatch.TextWidget:
    """A section's heading row."""
    return cloudwatch.TextWidget(markdown=f"## {title}", width=WIDE, height=1)


def _job(
    name: str, service: str, statistic: str = "Sum", period: Duration = FIVE_MINUTES, label_: str = ""
) -> cloudwatch.Metric:
    return JobMetric(name, service).metric(statistic, period).with_(label=label_ or name)


def _aws(
    namespace: str, name: str, dimensions: dict[str, str], statistic: str, label_: str, period: Duration = FIVE_MINUTES
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period,
        label=label_,
    )


def _per_run(
    metric_name: str, label_: str, runs: cloudwatch.Metric, period: Duration = FIVE_MINUTES
) -> cloudwatch.MathExpression:
    """A per-batch count summed over the period, divided by the runs in the period."""
    metric_id = "m" + re.sub(r"[^A-Za-z0-9]", "", metric_name)  # unique per metric within a widget
    return cloudwatch.MathExpression(
        expression=f"FILL({metric_id}, 0) / IF(runs > 0, runs, 1)",
        using_metrics={metric_id: _job(metric_name, "collect", period=period), "runs": runs},
        label=label_,
        period=period,
    )


class OpsDashboard(Construct):
    """The operations dashboard over the stack's job metrics and its AWS resources."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigw.RestApi,
        functions: Sequence[CfnResource],
        state_machines: Sequence[CfnResource],
        queues: Sequence[CfnResource],
        tables: Sequence[CfnResource],
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        runs = COLLECT_DURATION.metric("SampleCount", FIVE_MINUTES).with_(label="runs")
        hourly_runs = COLLECT_DURATION.metric("SampleCount", HOUR).with_(label="runs")
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{stack.stack_name}-operations",
            default_interval=Duration.days(1),
            period_override=cloudwatch.PeriodOverride.AUTO,
        )
        add = self.dashboard.add_widgets

        add(
            cloudwatch.TextWidget(
                markdown=(
                    f"# {stack.stack_name} operations\n"
                    "Alarms notify the AlarmTopic; each alarm's description says what to do "
                    "(runbook and redrive: `infra/README.md`). Fleet graphs are per collection run."
                ),
                width=WIDE,
                height=2,
            )
        )
        add(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=WIDE, height=4))

        # ---------------------------------------------------------------- fleet
        add(_section("Fleet"))
        add(
            _graph(
                title="Workers by status (per collection run)",
                left=[_per_run(f"Fleet_{status}", status, runs) for status in WORKER_STATUSES],
                stacked=True,
                width=HALF,
            ),
            _single(
                title="Now: running, stopped, paused, failed",
                metrics=[_per_run(f"Fleet_{s}", s, runs) for s in ("running", "stopped", "paused", "failed")],
                width=THIRD,
            ),
            _single(
                title="Worker-hours saved by pauses (time range)",
                metrics=[
                    cloudwatch.MathExpression(
                        expression="FILL(paused, 0) / IF(runs > 0, runs, 1) * PERIOD(paused) / 3600",
                        using_metrics={"paused": _job("Fleet_paused", "collect", period=HOUR), "runs": hourly_runs},
                        label="worker-hours",
                        period=HOUR,
                    )
                ],
                set_period_to_time_range=True,
                width=4,
            ),
        )
        add(
            _graph(
                title="Idle pauses and worker-hours saved (per hour)",
                left=[_job("WorkersPausedIdle", "collect", period=HOUR, label_="idle pauses")],
                right=[
                    cloudwatch.MathExpression(
                        expression="FILL(paused, 0) / IF(runs > 0, runs, 1)",
                        using_metrics={"paused": _job("Fleet_paused", "collect", period=HOUR), "runs": hourly_runs},
                        label="worker-hours saved",
                        period=HOUR,
                    )
                ],
                width=HALF,
            ),
            _graph(
                title="Reconciler findings",
                left=[
                    _job(f"Reconcile_{kind}", "reconcile", period=Duration.minutes(15), label_=kind)
                    for kind in ("unrecorded_instance", "failed_with_live_instance", "vanished_instance")
                ],
                width=HALF,
            ),
        )

        # ---------------------------------------------------------------- fleet policy
        add(_section("Fleet policy: idle pauses and schedules"))

        def saved(metric_name: str, label_: str) -> cloudwatch.MathExpression:
            """Per-run average over the period x the period in hours: worker-hours, or USD."""
            metric_id = "s" + re.sub(r"[^A-Za-z0-9]", "", metric_name)  # unique within the widget
            return cloudwatch.MathExpression(
                expression=f"FILL({metric_id}, 0) / IF(runs > 0, runs, 1) * PERIOD({metric_id}) / 3600",
                using_metrics={metric_id: _job(metric_name, "collect", period=HOUR), "runs": hourly_runs},
                label=label_,
                period=HOUR,
            )

        add(
            _single(
                title="Saved by the policies (time range): worker-hours and on-demand USD",
                metrics=[
                    saved("Fleet_policy_stopped", "worker-hours stopped by policy"),
                    saved("PolicySavingsUsdPerHour", "USD avoided"),
                ],
                set_period_to_time_range=True,
                width=THIRD,
            ),
            _graph(
                title="Kept stopped by a policy (per run) and USD saved per hour",
                left=[_per_run("Fleet_policy_stopped", "workers stopped by policy", runs)],
                right=[_per_run("PolicySavingsUsdPerHour", "USD per hour saved", runs)],
                width=THIRD,
            ),
            _graph(
                title="Policy actions (per hour): idle pauses, schedule stops and starts",
                left=[
                    _job("WorkersPausedIdle", "collect", period=HOUR, label_="idle pauses"),
                    _job("WorkersStoppedBySchedule", "collect", period=HOUR, label_="schedule stops"),
                    _job("WorkersStartedBySchedule", "collect", period=HOUR, label_="schedule starts"),
                ],
                view=cloudwatch.GraphWidgetView.BAR,
                width=THIRD,
            ),
        )

        # ---------------------------------------------------------------- collection
        add(_section("Collection"))
        add(
            _graph(
                title="Collection run duration (ms)",
                left=[
                    _job("CollectDuration", "collect", "Average", label_="average"),
                    _job("CollectDuration", "collect", "Maximum", label_="maximum"),
                ],
                width=THIRD,
            ),
            _graph(
                title="Workers per run: collected, changed, failed",
                left=[
                    _per_run(name, label_, runs)
                    for name, label_ in (("WorkersCollected", "collected"), ("WorkersChanged", "changed"))
                ],
                right=[
                    _per_run("WorkersFailed", "failed", runs),
                    _job("BatchesFailed", "collect", label_="batches failed"),
                ],
                width=THIRD,
            ),
            _graph(
                title="CML / AWS error classes",
                left=[
                    cloudwatch.MathExpression(
                        # Every CollectErrors_<class> the summary published, one line each.
                        expression=f"SEARCH('{{{METRICS_NAMESPACE},service}} service=\"collect\" CollectErrors', 'Sum', 300)",
                        label="",
                        period=FIVE_MINUTES,
                    )
                ],
                width=THIRD,
            ),
        )

        # ---------------------------------------------------------------- API
        add(_section("REST API"))
        add(
            _graph(
                title="Requests and errors",
                left=[rest_api.metric_count(period=FIVE_MINUTES, label="requests")],
                right=[
                    rest_api.metric_client_error(period=FIVE_MINUTES, label="4xx"),
                    rest_api.metric_server_error(period=FIVE_MINUTES, label="5xx"),
                ],
                width=HALF,
            ),
            _graph(
                title="Latency (ms)",
                left=[
                    rest_api.metric_latency(period=FIVE_MINUTES, statistic=p, label=f"latency {p}")
                    for p in ("p50", "p90", "p99")
                ]
                + [rest_api.metric_integration_latency(period=FIVE_MINUTES, statistic="p99", label="integration p99")],
                width=HALF,
            ),
        )

        # ---------------------------------------------------------------- saga
        add(_section("Provisioning saga"))
        add(
            _graph(
                title="Saga outcomes (per hour)",
                left=[
                    _job("SagaSucceeded", "provision", period=HOUR, label_="provisioned"),
                    _job("SagaCompensated", "provision", period=HOUR, label_="compensated"),
                    _job("SagaLeftForReconciler", "provision", period=HOUR, label_="left FAILED for the reconciler"),
                ],
                view=cloudwatch.GraphWidgetView.BAR,
                width=HALF,
            ),
            _graph(
                title="State machine executions",
                left=[
                    _aws("AWS/States", metric, {"StateMachineArn": machine.ref}, "Sum", f"{label(machine)} {metric}")
                    for machine in state_machines
                    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut")
                ],
                width=HALF,
            ),
        )

        # ---------------------------------------------------------------- machinery
        add(_section("Functions, queues, tables"))

        def per_function(metric: str, statistic: str) -> list[cloudwatch.IMetric]:
            return [
                _aws("AWS/Lambda", metric, {"FunctionName": function.ref}, statistic, label(function))
                for function in functions
            ]

        add(
            _graph(title="Lambda duration p99 (ms)", left=per_function("Duration", "p99"), width=HALF),
            _graph(
                title="Lambda concurrency",
                left=per_function("ConcurrentExecutions", "Maximum"),
                right=[_aws("AWS/Lambda", "ConcurrentExecutions", {}, "Maximum", "account (region)")],
                width=HALF,
            ),
        )
        add(
            _graph(title="Lambda errors", left=per_function("Errors", "Sum"), width=THIRD),
            _graph(title="Lambda throttles", left=per_function("Throttles", "Sum"), width=THIRD),
            _graph(
                title="Dead letters waiting",
                left=[
                    _aws(
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        {"QueueName": queue.get_att("QueueName").to_string()},
                        "Maximum",
                        label(queue),
                    )
                    for queue in queues
                ],
                width=THIRD,
            ),
        )
        add(
            _graph(
                title="DynamoDB consumed capacity (per 5 min)",
                left=[
                    _aws("AWS/DynamoDB", metric, {"TableName": table.ref}, "Sum", f"{label(table)} {kind}")
                    for table in tables
                    for metric, kind in (("ConsumedReadCapacityUnits", "RCU"), ("ConsumedWriteCapacityUnits", "WCU"))
                ],
                width=HALF,
            ),
            _graph(
                title="DynamoDB throttle events",
                left=[
                    _aws("AWS/DynamoDB", metric, {"TableName": table.ref}, "Sum", f"{label(table)} {kind}")
                    for table in tables
                    for metric, kind in (("ReadThrottleEvents", "reads"), ("WriteThrottleEvents", "writes"))
                ],
                width=HALF,
            ),
        )
