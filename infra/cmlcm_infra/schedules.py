"""EventBridge Scheduler schedules that start state machines (e.g. metrics collection).

The `Schedules` construct will be built on `schedule_state_machine`, e.g.::

    schedule_state_machine(
        self, "CollectMetricsEveryMinute",
        state_machine=workflows.collect_metrics,
        schedule=scheduler.ScheduleExpression.rate(Duration.minutes(1)),
        description="Collect EC2, CloudWatch and CML metrics of the active workers",
    )
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


def schedule_state_machine(
    scope: Construct,
    construct_id: str,
    *,
    state_machine: sfn.IStateMachine,
    schedule: scheduler.ScheduleExpression,
    description: str,
    execution_input: Mapping[str, Any] | None = None,
) -> scheduler.Schedule:
    """A schedule starting `state_machine` with `execution_input`; its role may only start it.

    Retries are few and short: a missed run is covered by the next one, and the job heartbeat
    shows an overdue job.
    """
    target = targets.StepFunctionsStartExecution(
        state_machine,
        input=scheduler.ScheduleTargetInput.from_object(dict(execution_input or {})),
        retry_attempts=2,
        max_event_age=Duration.minutes(5),
    )
    return scheduler.Schedule(
        scope, construct_id, schedule=schedule, target=target, description=description
    )
