"""Least-privilege grants shared by functions, each with the cdk-nag reason for its wildcards.

A grant and the acknowledgement of what it cannot narrow live together, so a function carries
the written reason for each wildcard it holds and nothing broader. Resource '*' is allowed only
for the actions in `RESOURCE_WILDCARD_ACTIONS` (they have no resource-level permissions); the
infra tests enforce it.
"""
from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager

from cmlcm_infra.nag import acknowledge, arn_finding

#: Read-only EC2 calls; EC2 Describe* actions support no resource-level permissions.
EC2_DESCRIBE_ACTIONS = ("ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeImages")
#: Lifecycle and tagging calls on existing instances (workers and imported instances).
EC2_INSTANCE_ACTIONS = (
    "ec2:StartInstances",
    "ec2:StopInstances",
    "ec2:TerminateInstances",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:MonitorInstances",
)
#: The only actions that may be granted on Resource '*': none supports resource-level permissions.
RESOURCE_WILDCARD_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        *EC2_DESCRIBE_ACTIONS,
        "cloudwatch:GetMetricData",
    }
)
#: Why a function role may hold Resource '*' (acknowledged once per role by the function factory).
RESOURCE_WILDCARD_REASON = (
    "Resource '*' is granted only for actions that support no resource-level permissions: X-Ray "
    "PutTraceSegments/PutTelemetryRecords (Tracing.ACTIVE) and, where a grant adds them, the "
    "read-only ec2:DescribeInstances, ec2:DescribeInstanceStatus, ec2:DescribeImages and cloudwatch:GetMetricData. "
    "tests/infra checks that no other action is granted on '*'."
)


def grant_tables_read_write(function: lambda_.IFunction, tables: Iterable[dynamodb.Table]) -> None:
    """Item read/write (no table administration) on `tables` and their indexes."""
    tables = list(tables)
    for table in tables:
        table.grant_read_write_data(function)
    indexed = [arn_finding(table, "/index/*") for table in tables if _has_indexes(table)]
    if indexed:
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "Queries on a table's global secondary indexes need '<table arn>/index/*'; the wildcard "
            "only spans the indexes of that one table.",
            findings=indexed,
        )


def grant_fleet_control(function: lambda_.IFunction) -> None:
    """Describe every instance; start/stop/terminate/tag/monitor instances of this account."""
    function.add_to_role_policy(iam.PolicyStatement(actions=list(EC2_DESCRIBE_ACTIONS), resources=["*"]))
    instances = Stack.of(function).format_arn(service="ec2", region="*", resource="instance", resource_name="*")
    function.add_to_role_policy(iam.PolicyStatement(actions=list(EC2_INSTANCE_ACTIONS), resources=[instances]))
    acknowledge(
        function.role,
        "AwsSolutions-IAM5",
        "Lifecycle and tag actions are limited to EC2 instances of this account (any supported "
        "region). A tag condition (ManagedBy=CmlCloudManager) is not possible: workers imported from "
        "existing instances do not carry the tag until the manager's first CreateTags.",
        findings=["Resource::arn:<AWS::Partition>:ec2:*:<AWS::AccountId>:instance/*"],
    )


def grant_metrics_read(function: lambda_.IFunction) -> None:
    """cloudwatch:GetMetricData for the workers' EC2 metrics (read-only, Resource '*')."""
    function.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))


def grant_secret_value(function: lambda_.IFunction, secret: secretsmanager.ISecret) -> None:
    """GetSecretValue on exactly `secret` (not DescribeSecret, which `secret.grant_read` adds)."""
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[secret.secret_arn])
    )


def _has_indexes(table: dynamodb.Table) -> bool:
    """Whether `grant_*_data` adds the `/index/*` resource (indexes exist when the grant is made)."""
    cfn = table.node.default_child
    stack = Stack.of(table)
    return bool(stack.resolve(cfn.global_secondary_indexes) or stack.resolve(cfn.local_secondary_indexes))
