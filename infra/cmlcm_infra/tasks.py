"""Task Lambdas of the jobs: metrics collection (plan, batch, summary), the provisioning saga and
the reconciler, each with only the grants its handler's code paths need.

`COLLECT_TASKS` / `PROVISION_TASKS` map each ASL placeholder to the handler it must invoke; the
local mode (`cmlcm_local.runtime.task_functions`) registers the same handlers under the same
placeholders, and `tests/infra` checks that the three (ASL, stack, local mode) agree.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cmlcm_infra.data import Data
from cmlcm_infra.functions import Functions
from cmlcm_infra.nag import acknowledge, arn_finding
from cmlcm_infra.permissions import (
    grant_ec2_describe,
    grant_instance_actions,
    grant_launch,
    grant_list,
    grant_metrics_read,
    grant_objects,
    grant_secret_value,
    grant_table_data,
)

#: ASL placeholder → handler (statemachines/collect_metrics.asl.json).
COLLECT_TASKS = {
    "CollectPlanFunctionArn": "cmlcm.handlers.collect.plan_handler",
    "CollectBatchFunctionArn": "cmlcm.handlers.collect.collect_batch_handler",
    "CollectSummaryFunctionArn": "cmlcm.handlers.collect.summarize_handler",
}
#: ASL placeholder → handler (statemachines/provision_worker.asl.json).
PROVISION_TASKS = {"ProvisionFunctionArn": "cmlcm.handlers.provision.handler"}
#: Invoked by its schedule, not by a state machine.
RECONCILE_HANDLER = "cmlcm.handlers.reconcile.handler"

#: Step tasks time out in the ASL after 60 s (the batch after 300 s); the Lambda limit is the same,
#: so a slow step fails as Lambda's timeout, which the ASL's Retry/Catch see.
STEP_TIMEOUT = Duration.seconds(60)
BATCH_TIMEOUT = Duration.seconds(300)
RECONCILE_TIMEOUT = Duration.seconds(300)


class TaskFunctions(Construct):
    """The five task functions; `by_placeholder` feeds the state machines' substitutions."""

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
        self.collect_runs = data.collect_runs

        # Plan: the active worker ids (active-index query), the settings (operations table),
        # the job heartbeat's start (operations table).
        self.collect_plan = functions.add_function(
            "CollectPlan",
            handler=COLLECT_TASKS["CollectPlanFunctionArn"],
            service_name="collect",
            description="Collection: list active workers, read the run's settings, heartbeat start",
            timeout=STEP_TIMEOUT,
        )
        grant_table_data(self.collect_plan, read=[data.workers], read_write=[data.operations])
        grant_objects(
            self.collect_plan, data.collect_runs, ["s3:PutObject"], "runs/*/batches.json"
        )  # the run's batches
        acknowledge(
            self.collect_plan.role,
            "AwsSolutions-IAM5",
            "Each collection run writes its own batches object, named after the execution: the key's "
            "run segment cannot be known in advance. Only that object name, in the collect-runs bucket.",
            findings=[arn_finding(data.collect_runs, "/runs/*/batches.json")],
        )

        # Batch: EC2 + CloudWatch + CML per batch, changed workers, labs and samples written; then the
        # fleet policy (services/policy.py): schedules stop and start workers, idle ones are
        # paused, one StopInstances and one StartInstances per region (settings and schedules are
        # read from the operations table).
        self.collect_batch = functions.add_function(
            "CollectBatch",
            handler=COLLECT_TASKS["CollectBatchFunctionArn"],
            service_name="collect",
            description="Collection: one batch of workers (EC2, CloudWatch, CML), changed ones written",
            # One full vCPU (Lambda gives CPU in proportion to memory, 1769 MB = 1 vCPU): a batch of
            # 1000 workers is thousands of CML requests on one event loop.
            memory_size=1769,
            timeout=BATCH_TIMEOUT,
        )
        # The labs table too: each batch syncs its workers' labs from the bulk lab read.
        grant_table_data(
            self.collect_batch, read=[data.operations], write=[data.metrics], read_write=[data.workers, data.labs]
        )
        grant_objects(
            self.collect_batch, data.collect_runs, ["s3:PutObject"], "runs/*/results/*"
        )  # the batch's outcome
        acknowledge(
            self.collect_batch.role,
            "AwsSolutions-IAM5",
            "Each batch writes its outcome under its run's results/ prefix (run and index known only at "
            "run time), in the collect-runs bucket only.",
            findings=[arn_finding(data.collect_runs, "/runs/*/results/*")],
        )
        grant_ec2_describe(
            self.collect_batch, ["ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeAddresses"]
        )
        grant_instance_actions(self.collect_batch, ["ec2:StopInstances", "ec2:StartInstances"])
        grant_metrics_read(self.collect_batch)
        grant_secret_value(self.collect_batch, credentials)

        # Summary: the settings (job interval) and the heartbeat's finish, both in operations.
        self.collect_summary = functions.add_function(
            "CollectSummary",
            handler=COLLECT_TASKS["CollectSummaryFunctionArn"],
            service_name="collect",
            description="Collection: totals, heartbeat, EMF metrics",
            timeout=STEP_TIMEOUT,
        )
        grant_table_data(self.collect_summary, read_write=[data.operations])
        grant_objects(self.collect_summary, data.collect_runs, ["s3:GetObject"], "runs/*")  # batches and outcomes
        grant_list(self.collect_summary, data.collect_runs, "runs/*")
        acknowledge(
            self.collect_summary.role,
            "AwsSolutions-IAM5",
            "The summary reads its run's batches and outcomes (the run is known only at run time), "
            "in the collect-runs bucket only.",
            findings=[arn_finding(data.collect_runs, "/runs/*")],
        )

        # Provisioning saga steps: launch, record, instance state, CML readiness, compensation.
        self.provision = functions.add_function(
            "Provision",
            handler=PROVISION_TASKS["ProvisionFunctionArn"],
            service_name="provision",
            description="Provisioning saga steps (launch, record, wait, compensate)",
            timeout=STEP_TIMEOUT,
        )
        grant_table_data(self.provision, read_write=[data.workers, data.operations])
        grant_ec2_describe(self.provision, ["ec2:DescribeInstances"])  # state, compensation's tag lookup
        grant_instance_actions(self.provision, ["ec2:TerminateInstances"])  # compensation
        grant_launch(self.provision)
        grant_secret_value(self.provision, credentials)  # CML readiness probe

        # Reconciler: managed instances by tag, adopts (imports: image names, tags) or terminates.
        self.reconcile = functions.add_function(
            "Reconcile",
            handler=RECONCILE_HANDLER,
            service_name="reconcile",
            description="Reconciler: unrecorded instances, FAILED workers with live instances, vanished ones",
            timeout=RECONCILE_TIMEOUT,
        )
        grant_table_data(self.reconcile, read_write=[data.workers, data.operations])
        grant_ec2_describe(self.reconcile, ["ec2:DescribeInstances", "ec2:DescribeImages"])
        grant_instance_actions(self.reconcile, ["ec2:TerminateInstances", "ec2:CreateTags"])
        grant_secret_value(self.reconcile, credentials)

    @property
    def collect_substitutions(self) -> dict[str, str]:
        """collect_metrics.asl.json's placeholders → function ARNs."""
        return {
            "CollectPlanFunctionArn": self.collect_plan.function_arn,
            "CollectBatchFunctionArn": self.collect_batch.function_arn,
            "CollectSummaryFunctionArn": self.collect_summary.function_arn,
            "CollectRunsBucketName": self.collect_runs.bucket_name,
        }

    @property
    def provision_substitutions(self) -> dict[str, str]:
        """provision_worker.asl.json's placeholders → function ARNs."""
        return {"ProvisionFunctionArn": self.provision.function_arn}

    @property
    def all(self) -> list[lambda_.Function]:
        return [self.collect_plan, self.collect_batch, self.collect_summary, self.provision, self.reconcile]
