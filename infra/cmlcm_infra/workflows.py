"""Step Functions state machines loaded from `statemachines/*.asl.json`.

ASL lives only in those files (JSONPath, `${Placeholders}`), where the local mode and the
statemachine tests execute it too. CDK fills the placeholders (Lambda ARNs) and grants each state
machine exactly the functions it invokes.

`Workflows` builds the two of the app: the metrics collection (plan → Map of batch collectors →
summary, 15 min bound) and the provisioning saga (2 h bound). `state_machine_from_asl` is the
generic helper both are built on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cmlcm_infra.nag import acknowledge, arn_finding
from cmlcm_infra.paths import STATEMACHINES_DIR
from cmlcm_infra.permissions import grant_objects
from cmlcm_infra.tasks import TaskFunctions

#: `${Name}` as CloudFormation's DefinitionSubstitutions understands it.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
#: Upper bound of one execution (STANDARD state machines otherwise run up to a year).
DEFAULT_TIMEOUT = Duration.hours(1)
#: The ASL files of the app's two state machines.
COLLECT_METRICS_ASL = STATEMACHINES_DIR / "collect_metrics.asl.json"
PROVISION_WORKER_ASL = STATEMACHINES_DIR / "provision_worker.asl.json"
#: A collection run must end well before the next one starts (every 5 min by default); the ASL
#: says 900 s too. The saga waits for EC2 and CML boot (bounded by the settings), 2 h at most.
COLLECT_TIMEOUT = Duration.minutes(15)
PROVISION_TIMEOUT = Duration.hours(2)


def state_machine_from_asl(
    scope: Construct,
    construct_id: str,
    *,
    definition_path: Path,
    substitutions: Mapping[str, str],
    invoked_functions: Sequence[lambda_.IFunction],
    timeout: Duration = DEFAULT_TIMEOUT,
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
) -> sfn.StateMachine:
    """A STANDARD state machine from an ASL file, with logging (ALL) and X-Ray tracing.

    `timeout` is checked against the file's top-level TimeoutSeconds (the bound that applies).

    `substitutions` must name exactly the file's placeholders: a missing one would reach
    CloudFormation as a literal `${...}`, an extra one usually means a renamed state. Each of
    `invoked_functions` is granted lambda:InvokeFunction to the state machine, nothing more.
    """
    text = Path(definition_path).read_text(encoding="utf-8")
    definition = json.loads(text)  # malformed ASL fails the synth here, not the deployment
    # CDK renders `timeout` only for definitions it builds itself, never for a string: the bound
    # that applies is the file's top-level TimeoutSeconds, so it must say what the stack expects.
    if definition.get("TimeoutSeconds") != timeout.to_seconds():
        raise ValueError(
            f"{Path(definition_path).name}: top-level TimeoutSeconds is {definition.get('TimeoutSeconds')}, "
            f"the stack expects {int(timeout.to_seconds())}"
        )
    used = set(PLACEHOLDER.findall(text))
    missing, unused = used - substitutions.keys(), substitutions.keys() - used
    if missing or unused:
        raise ValueError(
            f"{Path(definition_path).name}: placeholders without a value {sorted(missing)}, "
            f"values without a placeholder {sorted(unused)}"
        )

    log_group = logs.LogGroup(
        scope, f"{construct_id}Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
    )
    state_machine = sfn.StateMachine(
        scope,
        construct_id,
        # Inline (DefinitionString) rather than from_file's S3 asset: the template is
        # self-contained and `cdk diff` shows ASL changes.
        definition_body=sfn.DefinitionBody.from_string(text),
        definition_substitutions=dict(substitutions),
        state_machine_type=sfn.StateMachineType.STANDARD,
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
    )
    for function in invoked_functions:
        function.grant_invoke(state_machine)

    acknowledge(
        state_machine.role,
        "AwsSolutions-IAM5",
        "CloudWatch Logs delivery (logs:*LogDelivery, PutResourcePolicy, DescribeResourcePolicies, "
        "DescribeLogGroups) and X-Ray actions, added by the logging and tracing settings, support "
        "no resource-level permissions.",
        findings=["Resource::*"],
    )
    acknowledge(
        state_machine.role,
        "AwsSolutions-IAM5",
        "'<function arn>:*' lets the state machine invoke versions and aliases of the functions it "
        "was granted, and no other function.",
        findings=[arn_finding(function, ":*") for function in invoked_functions],
    )
    return state_machine


class Workflows(Construct):
    """The collection and provisioning state machines, wired to the task functions."""

    def __init__(self, scope: Construct, construct_id: str, *, tasks: TaskFunctions) -> None:
        super().__init__(scope, construct_id)
        self.collect_metrics = state_machine_from_asl(
            self,
            "CollectMetrics",
            definition_path=COLLECT_METRICS_ASL,
            substitutions=tasks.collect_substitutions,
            invoked_functions=[tasks.collect_plan, tasks.collect_batch, tasks.collect_summary],
            timeout=COLLECT_TIMEOUT,
        )
        self._allow_distributed_map(self.collect_metrics, tasks)
        self.provision_worker = state_machine_from_asl(
            self,
            "ProvisionWorker",
            definition_path=PROVISION_WORKER_ASL,
            substitutions=tasks.provision_substitutions,
            invoked_functions=[tasks.provision],
            timeout=PROVISION_TIMEOUT,
        )

    def _allow_distributed_map(self, machine: sfn.StateMachine, tasks: TaskFunctions) -> None:
        """The collection's Distributed Map reads the run's batches (ItemReader) and runs one child
        execution per batch: the state machine starts, watches and stops executions of itself.
        A Policy of its own, not the role's default policy: the state machine depends on that one,
        and this one names the state machine (a cycle otherwise)."""
        grant_objects(machine, tasks.collect_runs, ["s3:GetObject"], "runs/*/batches.json")
        children = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{machine.state_machine_name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        policy = iam.Policy(
            self,
            "CollectMetricsChildExecutions",
            roles=[machine.role],
            statements=[
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine.state_machine_arn]),
                iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"], resources=[children]),
            ],
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "A Distributed Map's child executions are named by Step Functions at run time "
            "(<state machine>/<map run>:<child>): only executions of this state machine.",
            findings=[
                f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{Stack.of(self).resolve(Stack.of(self).get_logical_id(machine.node.default_child))}.Name>/*"
            ],
        )
        acknowledge(
            machine.role,
            "AwsSolutions-IAM5",
            "The ItemReader reads the run's batches object (named after the execution) and nothing else.",
            findings=[arn_finding(tasks.collect_runs, "/runs/*/batches.json")],
        )

    @property
    def environment(self) -> dict[str, str]:
        """What the API function needs: the saga it starts, the collection it may start."""
        return {
            "PROVISION_STATE_MACHINE_ARN": self.provision_worker.state_machine_arn,
            "COLLECT_STATE_MACHINE_ARN": self.collect_metrics.state_machine_arn,
        }
