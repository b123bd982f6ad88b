"""Jobs: the collection and provisioning state machines from `statemachines/*.asl.json`, their
task Lambdas, the reconciler, and the EventBridge Scheduler schedules that start them.

The same handlers and the same ASL files run in local mode (`cmlcm_local.runtime`), where a
scheduler loop stands in for the schedules; `tests/infra` checks that each placeholder resolves
to the function whose handler the local mode registers under it.
"""
from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cmlcm_infra.data import Data
from cmlcm_infra.functions import Functions
from cmlcm_infra.nag import acknowledge
from cmlcm_infra.permissions import (
    grant_fleet_control,
    grant_metrics_read,
    grant_secret_value,
    grant_tables_read_write,
)
from cmlcm_infra.workflows import state_machine_from_asl

STATEMACHINES = Path(__file__).resolve().parents[2] / "statemachines"

#: ASL placeholder → handler, the single table the stack and the local mode share.
COLLECT_TASKS = {
    "CollectPlanFunctionArn": "cmlcm.handlers.collect.plan_handler",
    "CollectBatchFunctionArn": "cmlcm.handlers.collect.collect_batch_handler",
    "CollectSummaryFunctionArn": "cmlcm.handlers.collect.summarize_handler",
}
PROVISION_TASKS = {"ProvisionFunctionArn": "cmlcm.handlers.provision.handler"}
RECONCILE_HANDLER = "cmlcm.handlers.reconcile.handler"

#: The default periods; `PUT /settings` moves the schedules to the settings' intervals.
COLLECT_EVERY = Duration.minutes(5)
RECONCILE_EVERY = Duration.minutes(15)


class Jobs(Construct):
    """Task functions, state machines and schedules of the scheduled and long-running work."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        data: Data,
        credentials: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        tables = list(data.tables.values())

        plan = functions.add_function(
            "CollectPlan", handler=COLLECT_TASKS["CollectPlanFunctionArn"], service_name="collect",
            description="Collection: list active workers, read the run's settings, heartbeat start",
        )
        batch = functions.add_function(
            "CollectBatch", handler=COLLECT_TASKS["CollectBatchFunctionArn"], service_name="collect",
            description="Collection: one batch of workers (EC2, CloudWatch, CML), changed ones written",
            memory_size=1024, timeout=Duration.seconds(300),
        )
        summary = functions.add_function(
            "CollectSummary", handler=COLLECT_TASKS["CollectSummaryFunctionArn"], service_name="collect",
            description="Collection: totals, heartbeat, EMF metrics",
        )
        self.provision_function = functions.add_function(
            "Provision", handler=PROVISION_TASKS["ProvisionFunctionArn"], service_name="provision",
            description="Provisioning saga steps (launch, record, wait, compensate)", timeout=Duration.seconds(60),
        )
        self.reconcile_function = functions.add_function(
            "Reconcile", handler=RECONCILE_HANDLER, service_name="reconcile",
            description="Reconciler: unrecorded instances, FAILED workers with live instances, vanished ones",
            timeout=Duration.seconds(300),
        )
        for function in (plan, batch, summary, self.provision_function, self.reconcile_function):
            grant_tables_read_write(function, tables)
        for function in (batch, self.provision_function, self.reconcile_function):
            grant_fleet_control(function)  # describe; stop (idle pause), terminate, tag
            grant_secret_value(function, credentials)  # CML probes (collection, readiness)
        grant_metrics_read(batch)
        _grant_launch(self.provision_function)

        self.collect_machine = state_machine_from_asl(
            self, "CollectMetrics", definition_path=STATEMACHINES / "collect_metrics.asl.json",
            substitutions={"CollectPlanFunctionArn": plan.function_arn, "CollectBatchFunctionArn": batch.function_arn,
                           "CollectSummaryFunctionArn": summary.function_arn},
            invoked_functions=[plan, batch, summary], timeout=Duration.minutes(15),
        )
        self.provision_machine = state_machine_from_asl(
            self, "ProvisionWorker", definition_path=STATEMACHINES / "provision_worker.asl.json",
            substitutions={"ProvisionFunctionArn": self.provision_function.function_arn},
            invoked_functions=[self.provision_function], timeout=Duration.hours(2),
        )

        # Deterministic names: the API updates the rates by name when the settings change.
        self.collect_schedule_name = f"{stack.stack_name}-collect-metrics"
        self.reconcile_schedule_name = f"{stack.stack_name}-reconcile"
        self.schedule_role = iam.Role(
            self, "SchedulesRole", assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="EventBridge Scheduler: start the collection, invoke the reconciler",
        )
        self.collect_schedule = scheduler.Schedule(
            self, "CollectSchedule", schedule_name=self.collect_schedule_name,
            schedule=scheduler.ScheduleExpression.rate(COLLECT_EVERY),
            description="Fleet metrics collection (rate follows collect_interval_minutes)",
            target=targets.StepFunctionsStartExecution(
                self.collect_machine, role=self.schedule_role, retry_attempts=2, max_event_age=Duration.minutes(5),
                input=scheduler.ScheduleTargetInput.from_object({"trigger": "schedule"}),
            ),
        )
        self.reconcile_schedule = scheduler.Schedule(
            self, "ReconcileSchedule", schedule_name=self.reconcile_schedule_name,
            schedule=scheduler.ScheduleExpression.rate(RECONCILE_EVERY),
            description="Reconciler (rate follows reconcile_interval_minutes)",
            target=targets.LambdaInvoke(
                self.reconcile_function, role=self.schedule_role, retry_attempts=1, max_event_age=Duration.minutes(10),
            ),
        )
        acknowledge(
            self.schedule_role, "AwsSolutions-IAM5",
            "'<function arn>:*' lets the schedule invoke versions/aliases of the reconciler only.",
            findings=[f"Resource::<{stack.resolve(stack.get_logical_id(self.reconcile_function.node.default_child))}.Arn>:*"],
        )

    def environment(self) -> dict[str, str]:
        """What the API function needs to start the saga and move the schedules."""
        return {
            "PROVISION_STATE_MACHINE_ARN": self.provision_machine.state_machine_arn,
            "COLLECT_STATE_MACHINE_ARN": self.collect_machine.state_machine_arn,
            "COLLECT_SCHEDULE_NAME": self.collect_schedule_name,
            "RECONCILE_SCHEDULE_NAME": self.reconcile_schedule_name,
            "SCHEDULE_GROUP_NAME": "default",
        }

    def grant_api(self, api: lambda_.Function) -> None:
        """Start the saga, move the two schedules (Get/UpdateSchedule + PassRole of their role)."""
        self.provision_machine.grant_start_execution(api)
        stack = Stack.of(self)
        schedule_arns = [
            stack.format_arn(service="scheduler", resource="schedule", resource_name=f"default/{name}")
            for name in (self.collect_schedule_name, self.reconcile_schedule_name)
        ]
        api.add_to_role_policy(iam.PolicyStatement(actions=["scheduler:GetSchedule", "scheduler:UpdateSchedule"],
                                                   resources=schedule_arns))
        api.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.schedule_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        ))


def _grant_launch(function: lambda_.IFunction) -> None:
    """RunInstances for the saga: the instance and what it is made of, tags only at launch,
    and PassRole only of worker instance roles (named cml-worker*) to EC2."""
    stack = Stack.of(function)

    def arn(resource: str, account: str | None = None) -> str:
        return stack.format_arn(service="ec2", region="*", account=account, resource=resource, resource_name="*")

    launched = [arn(r) for r in ("instance", "volume", "network-interface", "security-group", "subnet", "key-pair")]
    function.add_to_role_policy(iam.PolicyStatement(
        actions=["ec2:RunInstances"], resources=[*launched, arn("image", account="")],
    ))
    function.add_to_role_policy(iam.PolicyStatement(
        actions=["ec2:CreateTags"], resources=[arn("instance"), arn("volume"), arn("network-interface")],
        conditions={"StringEquals": {"ec2:CreateAction": "RunInstances"}},
    ))
    function.add_to_role_policy(iam.PolicyStatement(
        actions=["iam:PassRole"],
        resources=[stack.format_arn(service="iam", region="", resource="role", resource_name="cml-worker*")],
        conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
    ))
    acknowledge(
        function.role,
        "AwsSolutions-IAM5",
        "RunInstances authorizes every resource a launch creates or uses (instance, volume, network "
        "interface, security group, subnet, key pair, image); their ids are unknown before the launch, "
        "so each is '<type>/*' of this account (images: any owner, CML AMIs are shared). Tags are allowed "
        "only as part of RunInstances (ec2:CreateAction condition). PassRole is limited to roles named "
        "cml-worker* and to EC2.",
        findings=[
            "Resource::arn:<AWS::Partition>:ec2:*::image/*",
            *(f"Resource::arn:<AWS::Partition>:ec2:*:<AWS::AccountId>:{kind}/*"
              for kind in ("network-interface", "security-group", "subnet", "volume", "key-pair")),
            "Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cml-worker*",
        ],
    )
