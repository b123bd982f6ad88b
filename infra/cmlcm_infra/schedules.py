"""EventBridge Scheduler: the periodic jobs (metrics collection, reconciler).

`Schedules` gives both schedules deterministic names (`<stack>-collect-metrics`,
`<stack>-reconcile`, in the `default` group) and a role each, so the API can move their rates by
name when `PUT /settings` changes an interval, and enable or disable them (the jobs API's pause
and resume) (`grant_update`); `grant_run_now` lets the jobs API start a run of either job as its
schedule would. Both schedules send `{"trigger": "schedule"}`, so a run knows it was scheduled
(a scheduled run of a paused job ends at once). `schedule_state_machine` and
`schedule_function` are the generic helpers.

Note: CloudFormation owns the schedules, so a deployment puts the rates back to the defaults here;
the collection plan task (also granted `grant_update`) puts them back on the settings' intervals
on every run, so the first run after a deployment restores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cmlcm_infra.dead_letters import DeadLetters
from cmlcm_infra.nag import acknowledge, arn_finding
from cmlcm_infra.permissions import grant_pass_role

#: Schedules live in the account's default group (no group resource to own).
SCHEDULE_GROUP_NAME = "default"
#: Default periods; the settings' collect/reconcile intervals move them at run time.
COLLECT_EVERY = Duration.minutes(5)
RECONCILE_EVERY = Duration.minutes(15)


def schedule_state_machine(
    scope: Construct,
    construct_id: str,
    *,
    state_machine: sfn.IStateMachine,
    schedule: scheduler.ScheduleExpression,
    description: str,
    execution_input: Mapping[str, Any] | None = None,
    schedule_name: str | None = None,
    role: iam.IRole | None = None,
    dead_letter_queue: sqs.IQueue,
) -> scheduler.Schedule:
    """A schedule starting `state_machine` with `execution_input`; its role may only start it.

    Retries are few and short: a missed run is covered by the next one, and the job heartbeat
    shows an overdue job. A start that still fails (throttled, state machine gone, role broken)
    lands in `dead_letter_queue` (the role is granted SendMessage on it).
    """
    target = targets.StepFunctionsStartExecution(
        state_machine,
        input=scheduler.ScheduleTargetInput.from_object(dict(execution_input or {})),
        role=role,
        retry_attempts=2,
        max_event_age=Duration.minutes(5),
        dead_letter_queue=dead_letter_queue,
    )
    return scheduler.Schedule(
        scope, construct_id, schedule=schedule, target=target, description=description, schedule_name=schedule_name
    )


def schedule_function(
    scope: Construct,
    construct_id: str,
    *,
    function: lambda_.IFunction,
    schedule: scheduler.ScheduleExpression,
    description: str,
    schedule_name: str | None = None,
    role: iam.IRole | None = None,
    dead_letter_queue: sqs.IQueue,
    payload: Mapping[str, Any] | None = None,
) -> scheduler.Schedule:
    """A schedule invoking `function` (asynchronously) with `payload`; its role may only invoke it.

    Like the state machine schedules: one retry, a short event age, the next run catches up.
    An invocation Scheduler cannot hand to Lambda lands in `dead_letter_queue`; a run that fails
    inside the function is Lambda's async retry and on-failure destination's business
    (`DeadLetters.protect_async_invocations`).
    """
    target = targets.LambdaInvoke(
        function,
        input=scheduler.ScheduleTargetInput.from_object(dict(payload or {})),
        role=role,
        retry_attempts=1,
        max_event_age=Duration.minutes(10),
        dead_letter_queue=dead_letter_queue,
    )
    return scheduler.Schedule(
        scope, construct_id, schedule=schedule, target=target, description=description, schedule_name=schedule_name
    )


class Schedules(Construct):
    """Collection every 5 minutes (starts the state machine), reconciler every 15 (invokes it)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        collect_metrics: sfn.IStateMachine,
        reconcile: lambda_.IFunction,
        dead_letters: DeadLetters,
    ) -> None:
        super().__init__(scope, construct_id)
        stack_name = Stack.of(self).stack_name
        self.collect_schedule_name = f"{stack_name}-collect-metrics"
        self.reconcile_schedule_name = f"{stack_name}-reconcile"

        # One role per schedule: each may reach its own target and nothing else.
        self.collect_role = iam.Role(
            self,
            "CollectMetricsRole",
            assumed_by=_scheduler_principal(self),
            description="EventBridge Scheduler: start the metrics collection state machine",
        )
        self.reconcile_role = iam.Role(
            self,
            "ReconcileRole",
            assumed_by=_scheduler_principal(self),
            description="EventBridge Scheduler: invoke the reconciler function",
        )
        self.collect_metrics = schedule_state_machine(
            self,
            "CollectMetrics",
            state_machine=collect_metrics,
            schedule=scheduler.ScheduleExpression.rate(COLLECT_EVERY),
            description="Fleet metrics collection (rate follows the collect_interval_minutes setting)",
            execution_input={"trigger": "schedule"},
            schedule_name=self.collect_schedule_name,
            role=self.collect_role,
            dead_letter_queue=dead_letters.queue("CollectMetricsSchedule"),
        )
        self.reconcile = schedule_function(
            self,
            "Reconcile",
            function=reconcile,
            schedule=scheduler.ScheduleExpression.rate(RECONCILE_EVERY),
            description="Reconciler (rate follows the reconcile_interval_minutes setting)",
            schedule_name=self.reconcile_schedule_name,
            role=self.reconcile_role,
            dead_letter_queue=dead_letters.queue("ReconcileSchedule"),
            payload={"trigger": "schedule"},
        )
        self._collect_state_machine = collect_metrics
        self._reconcile_function = reconcile
        acknowledge(
            self.reconcile_role,
            "AwsSolutions-IAM5",
            "'<function arn>:*' (added by the Lambda target) covers versions and aliases of the "
            "reconciler function only; the schedule invokes nothing else.",
            findings=[arn_finding(reconcile, ":*")],
        )

    @property
    def roles(self) -> list[iam.IRole]:
        return [self.collect_role, self.reconcile_role]

    @property
    def environment(self) -> dict[str, str]:
        """What the API function needs to move the rates (`cmlcm.adapters.schedules`)."""
        return {
            "COLLECT_SCHEDULE_NAME": self.collect_schedule_name,
            "RECONCILE_SCHEDULE_NAME": self.reconcile_schedule_name,
            "SCHEDULE_GROUP_NAME": SCHEDULE_GROUP_NAME,
        }

    def grant_run_now(self, function: lambda_.IFunction) -> None:
        """The jobs API's "run now": StartExecution of the collection state machine and Invoke of
        the reconciler function (its exact ARN: no version or alias), nothing else; and where to
        find them (`COLLECT_STATE_MACHINE_ARN` is set by the workflows' environment)."""
        self._collect_state_machine.grant_start_execution(function)
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self._reconcile_function.function_arn])
        )
        function.add_environment("RECONCILE_FUNCTION_NAME", self._reconcile_function.function_name)

    def grant_update(self, function: lambda_.IFunction) -> None:
        """Get/UpdateSchedule on these two schedules (rates, and State for pause and resume), and
        PassRole of their roles to Scheduler (UpdateSchedule resends the target, role included)."""
        stack = Stack.of(self)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["scheduler:GetSchedule", "scheduler:UpdateSchedule"],
                resources=[
                    stack.format_arn(
                        service="scheduler", resource="schedule", resource_name=f"{SCHEDULE_GROUP_NAME}/{name}"
                    )
                    for name in (self.collect_schedule_name, self.reconcile_schedule_name)
                ],
            )
        )
        grant_pass_role(function, self.roles, to_service="scheduler.amazonaws.com")


def _scheduler_principal(scope: Construct) -> iam.IPrincipal:
    """Scheduler, only on behalf of schedules of this account (confused-deputy guard)."""
    return iam.ServicePrincipal("scheduler.amazonaws.com").with_conditions(
        {"StringEquals": {"aws:SourceAccount": Stack.of(scope).account}}
    )
