"""Step Functions state machines loaded from `statemachines/*.asl.json`.

ASL lives only in those files (JSONPath, `${Placeholders}`), where the local mode and the
statemachine tests execute it too. CDK fills the placeholders (Lambda ARNs, table names) and
grants the state machine exactly the functions it invokes.

The `Workflows` construct (provisioning saga, metrics collection) will be built on
`state_machine_from_asl`, e.g.::

    provision = state_machine_from_asl(
        self, "ProvisionWorker",
        definition_path=STATEMACHINES_DIR / "provision_worker.asl.json",
        substitutions={"LaunchInstanceFunctionArn": launch.function_arn, ...},
        invoked_functions=[launch, ...],
    )
    provision.grant_start_execution(api_function)
    api_function.add_environment("PROVISION_STATE_MACHINE_ARN", provision.state_machine_arn)
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cmlcm_infra.nag import acknowledge, arn_finding

#: `${Name}` as CloudFormation's DefinitionSubstitutions understands it.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
#: Upper bound of one execution (STANDARD state machines otherwise run up to a year).
DEFAULT_TIMEOUT = Duration.hours(1)


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

    `substitutions` must name exactly the file's placeholders: a missing one would reach
    CloudFormation as a literal `${...}`, an extra one usually means a renamed state. Each of
    `invoked_functions` is granted lambda:InvokeFunction to the state machine, nothing more.
    """
    text = Path(definition_path).read_text(encoding="utf-8")
    json.loads(text)  # malformed ASL fails the synth here, not the deployment
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
        timeout=timeout,
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
