"""Least-privilege grants shared by functions, each with the cdk-nag reason for its wildcards.

A grant and the acknowledgement of what it cannot narrow live together, so a function carries
the written reason for each wildcard it holds and nothing broader. Resource '*' is allowed only
for the actions in `RESOURCE_WILDCARD_ACTIONS` (they have no resource-level permissions); the
infra tests enforce it, and pin each function's action set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager

from cmlcm_infra.nag import acknowledge, arn_finding

#: Read-only EC2 calls; EC2 Describe* actions support no resource-level permissions.
EC2_DESCRIBE_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeImages",
    "ec2:DescribeAddresses",
)
#: What the fleet-control API reads of EC2 (no Elastic IPs: only a scheduled collection reads them).
FLEET_CONTROL_DESCRIBE_ACTIONS = ("ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeImages")
#: Lifecycle and tagging calls on existing instances (workers and imported instances).
EC2_INSTANCE_ACTIONS = (
    "ec2:StartInstances",
    "ec2:StopInstances",
    "ec2:TerminateInstances",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:MonitorInstances",
)
#: Resource types RunInstances authorizes for a launch without a launch template, placement
#: group or capacity reservation (what `Ec2Gateway.launch` sends). Images have no account.
RUN_INSTANCES_RESOURCES = ("instance", "volume", "network-interface", "security-group", "subnet", "key-pair")
#: Worker instance roles the provisioning saga may hand to EC2 (instance profiles' roles).
WORKER_ROLE_NAME_PREFIX = "cml-worker"
#: The only actions that may be granted on Resource '*': none supports resource-level permissions.
RESOURCE_WILDCARD_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        *EC2_DESCRIBE_ACTIONS,
        "cloudwatch:GetMetricData",
        # Added by Lambda's DynamoDB event source mappings (the broadcaster's role).
        "dynamodb:ListStreams",
    }
)
#: Why a function role may hold Resource '*' (acknowledged once per role by the function factory).
RESOURCE_WILDCARD_REASON = (
    "Resource '*' is granted only for actions that support no resource-level permissions: X-Ray "
    "PutTraceSegments/PutTelemetryRecords (Tracing.ACTIVE) and, where a grant adds them, the "
    "read-only ec2:DescribeInstances, ec2:DescribeInstanceStatus, ec2:DescribeImages, ec2:DescribeAddresses, "
    "cloudwatch:GetMetricData "
    "and dynamodb:ListStreams (a stream event source mapping's). "
    "tests/infra checks that no other action is granted on '*'."
)
#: The IAM5 finding of `<type>/*` in this account, any region (see `_ec2_arn`).
_EC2_ACCOUNT_FINDING = "Resource::arn:<AWS::Partition>:ec2:*:<AWS::AccountId>:{kind}/*"
_INDEX_REASON = (
    "Queries on a table's global secondary indexes need '<table arn>/index/*'; the wildcard "
    "only spans the indexes of that one table."
)


def grant_tables_read_write(function: lambda_.IFunction, tables: Iterable[dynamodb.Table]) -> None:
    """Item read/write (no table administration) on `tables` and their indexes."""
    grant_table_data(function, read_write=tables)


def grant_table_data(
    function: lambda_.IFunction,
    *,
    read: Iterable[dynamodb.Table] = (),
    write: Iterable[dynamodb.Table] = (),
    read_write: Iterable[dynamodb.Table] = (),
) -> None:
    """Item-level access per table: `read` (Get/Query/Scan/BatchGet), `write` (Put/Update/Delete/
    BatchWrite) or both; never table administration. Index ARNs come with any grant on a table
    that has indexes, and are acknowledged here."""
    granted: list[dynamodb.Table] = []
    for tables, grant in (
        (read, lambda table, grantee: table.grant_read_data(grantee)),
        (write, lambda table, grantee: table.grant_write_data(grantee)),
        (read_write, lambda table, grantee: table.grant_read_write_data(grantee)),
    ):
        for table in tables:
            grant(table, function)
            granted.append(table)
    indexed = [arn_finding(table, "/index/*") for table in dict.fromkeys(granted) if _has_indexes(table)]
    if indexed:
        acknowledge(function.role, "AwsSolutions-IAM5", _INDEX_REASON, findings=indexed)


def grant_ec2_describe(function: lambda_.IFunction, actions: Sequence[str] = EC2_DESCRIBE_ACTIONS) -> None:
    """Read-only EC2 Describe calls (Resource '*': they have no resource-level permissions)."""
    unknown = set(actions) - set(EC2_DESCRIBE_ACTIONS)
    if unknown:
        raise ValueError(f"not a read-only describe action: {sorted(unknown)}")
    function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=["*"]))


def grant_instance_actions(function: lambda_.IFunction, actions: Sequence[str]) -> None:
    """`actions` (a subset of EC2_INSTANCE_ACTIONS) on EC2 instances of this account, any region."""
    unknown = set(actions) - set(EC2_INSTANCE_ACTIONS)
    if unknown:
        raise ValueError(f"not an instance lifecycle/tag action: {sorted(unknown)}")
    function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=[_ec2_arn(function, "instance")]))
    acknowledge(
        function.role,
        "AwsSolutions-IAM5",
        "Lifecycle and tag actions are limited to EC2 instances of this account (any supported "
        "region). A tag condition (ManagedBy=CmlCloudManager) is not possible: workers imported from "
        "existing instances do not carry the tag until the manager's first CreateTags.",
        findings=[_EC2_ACCOUNT_FINDING.format(kind="instance")],
    )


def grant_fleet_control(function: lambda_.IFunction) -> None:
    """Describe every instance; start/stop/terminate/tag/monitor instances of this account."""
    grant_ec2_describe(function, FLEET_CONTROL_DESCRIBE_ACTIONS)
    grant_instance_actions(function, EC2_INSTANCE_ACTIONS)


def grant_launch(function: lambda_.IFunction, *, worker_role_prefix: str = WORKER_ROLE_NAME_PREFIX) -> None:
    """RunInstances for the provisioning saga: the instance and what it is made of; tags only as
    part of the launch; PassRole only of worker roles (`<prefix>*`) and only to EC2."""
    launched = [_ec2_arn(function, kind) for kind in RUN_INSTANCES_RESOURCES]
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=["ec2:RunInstances"], resources=[*launched, _ec2_arn(function, "image", account="")]
        )
    )
    # TagSpecifications of RunInstances tag the instance only (ManagedBy, WorkerId, user tags).
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=["ec2:CreateTags"],
            resources=[_ec2_arn(function, "instance")],
            conditions={"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        )
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[_role_arn(function, f"{worker_role_prefix}*")],
            conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        )
    )
    acknowledge(
        function.role,
        "AwsSolutions-IAM5",
        "RunInstances authorizes every resource a launch creates or uses (instance, volume, network "
        "interface, security group, subnet, key pair, image); their ids are unknown before the launch "
        "and come from the settings, so each is '<type>/*' of this account (images: any owner, CML AMIs "
        "may be shared). CreateTags on instances is allowed only as part of RunInstances "
        "(ec2:CreateAction condition).",
        findings=[
            "Resource::arn:<AWS::Partition>:ec2:*::image/*",
            *(_EC2_ACCOUNT_FINDING.format(kind=kind) for kind in RUN_INSTANCES_RESOURCES),
        ],
    )
    acknowledge(
        function.role,
        "AwsSolutions-IAM5",
        f"PassRole is limited to roles named {worker_role_prefix}* (the worker instance profiles' roles, "
        "chosen in the settings) and, by condition, to EC2.",
        findings=[f"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{worker_role_prefix}*"],
    )


def grant_metrics_read(function: lambda_.IFunction) -> None:
    """cloudwatch:GetMetricData for the workers' EC2 metrics (read-only, Resource '*')."""
    function.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))


def grant_secret_value(function: lambda_.IFunction, secret: secretsmanager.ISecret) -> None:
    """GetSecretValue on exactly `secret` (not DescribeSecret, which `secret.grant_read` adds)."""
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[secret.secret_arn])
    )


#: Licence registration tokens, one secret per worker (`cmlcm.adapters.licence_tokens`).
LICENCE_SECRET_PREFIX = "cmlcm/licence/"


def grant_licence_token_secrets(function: lambda_.IFunction) -> None:
    """Create/overwrite/tag the per-worker licence token secrets (`cmlcm/licence/*`), and schedule a
    deleted worker's for deletion; never read them."""
    secrets = Stack.of(function).format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=f"{LICENCE_SECRET_PREFIX}*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=[
                "secretsmanager:CreateSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:TagResource",
                "secretsmanager:DeleteSecret",
            ],
            resources=[secrets],
        )
    )
    acknowledge(
        function.role,
        "AwsSolutions-IAM5",
        "Each worker's licence token gets its own secret, created on demand, so the grant names the "
        f"'{LICENCE_SECRET_PREFIX}*' prefix (write only: the API never reads a token back).",
        findings=[
            f"Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:{LICENCE_SECRET_PREFIX}*"
        ],
    )


def grant_pass_role(function: lambda_.IFunction, roles: Iterable[iam.IRole], *, to_service: str) -> None:
    """iam:PassRole of exactly `roles`, and only to `to_service` (e.g. scheduler.amazonaws.com)."""
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[role.role_arn for role in roles],
            conditions={"StringEquals": {"iam:PassedToService": to_service}},
        )
    )


def _ec2_arn(scope: lambda_.IFunction, kind: str, *, account: str | None = None) -> str:
    """`arn:<partition>:ec2:*:<account>:<kind>/*`: the fleet spans the supported regions."""
    return Stack.of(scope).format_arn(service="ec2", region="*", account=account, resource=kind, resource_name="*")


def _role_arn(scope: lambda_.IFunction, name: str) -> str:
    return Stack.of(scope).format_arn(service="iam", region="", resource="role", resource_name=name)


def _has_indexes(table: dynamodb.Table) -> bool:
    """Whether `grant_*_data` adds the `/index/*` resource (indexes exist when the grant is made)."""
    cfn = table.node.default_child
    stack = Stack.of(table)
    return bool(stack.resolve(cfn.global_secondary_indexes) or stack.resolve(cfn.local_secondary_indexes))


def grant_objects(grantee: iam.IGrantable, bucket: s3.IBucket, actions: list[str], key_pattern: str) -> None:
    """Exactly `actions` (no `s3:Abort*`-style wildcards) on the objects of `bucket` matching `key_pattern`."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(key_pattern)])
    )


def grant_list(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    """s3:ListBucket on `bucket`, for keys under `prefix` only."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [prefix]}},
        )
    )
