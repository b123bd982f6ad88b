"""The function factory: every Lambda of the app is built the same way.

One code asset (the repo's `functions/` directory), one shared dependency layer, Python 3.12,
X-Ray tracing, Powertools settings, a CDK-managed log group with retention, and a role that has
no managed policy: each function gets only the log-group write access plus what its caller grants.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import AssetHashType, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cmlcm_infra.bundling import layer_bundling_options
from cmlcm_infra.nag import acknowledge
from cmlcm_infra.paths import FUNCTIONS_DIR, LAYERS_DIR
from cmlcm_infra.permissions import RESOURCE_WILDCARD_REASON

RUNTIME = lambda_.Runtime.PYTHON_3_12
#: Powertools metrics namespace shared by every function.
METRICS_NAMESPACE = "CmlCloudManager"
#: Default Lambda timeout; API functions pass 29 s (the REST integration limit).
DEFAULT_TIMEOUT = Duration.seconds(30)
#: Never shipped to Lambda: caches, tests, packaging leftovers.
CODE_EXCLUDES = [
    "**/__pycache__",
    "**/*.pyc",
    "**/.pytest_cache",
    "**/tests",
    "**/test_*.py",
    "**/*.egg-info",
    "**/.mypy_cache",
    "**/.ruff_cache",
]


class Functions(Construct):
    """Holds the shared code asset and layer; `add_function` creates one configured Lambda."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Mapping[str, str],
        log_level: str = "INFO",
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        """`environment` is given to every function (table names, secret, fleet settings)."""
        super().__init__(scope, construct_id)
        self._environment = dict(environment)
        self._log_level = log_level
        self._log_retention = log_retention
        self.functions: dict[str, lambda_.Function] = {}

        # One asset for all functions: they share the `cmlcm` package, and one upload is cheaper
        # than one per function.
        self.code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=CODE_EXCLUDES)
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            description="CML Cloud Manager runtime dependencies (layers/requirements.txt)",
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            code=lambda_.Code.from_asset(
                str(LAYERS_DIR),
                exclude=["**", "!requirements.txt"],
                bundling=layer_bundling_options(LAYERS_DIR),
                # Hash the pinned requirements, not pip's output: the layer version (and the
                # template) only change when a pin changes, bundled or not.
                asset_hash_type=AssetHashType.SOURCE,
            ),
        )

    def add_function(
        self,
        construct_id: str,
        *,
        handler: str,
        service_name: str,
        description: str,
        memory_size: int = 512,
        timeout: Duration = DEFAULT_TIMEOUT,
        environment: Mapping[str, str] | None = None,
    ) -> lambda_.Function:
        """Create a Lambda running `handler` (e.g. `cmlcm.handlers.api.app.handler`).

        `service_name` becomes POWERTOOLS_SERVICE_NAME; `environment` is added to the shared one.
        The function starts with no permission beyond writing its own logs and traces: grant
        what it needs afterwards (`table.grant_read_write_data(fn)`, helpers in `permissions`).
        """
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=self._log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {service_name} function",
        )
        # Instead of the AWSLambdaBasicExecutionRole managed policy (logs on every log group).
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,  # the layer's wheels are manylinux x86_64
            code=self.code,
            handler=handler,
            layers=[self.dependencies],
            role=role,
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={
                **self._environment,
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": self._log_level,
                **(environment or {}),
            },
        )
        _acknowledge_function_findings(function, role)
        self.functions[construct_id] = function
        return function


def _acknowledge_function_findings(function: lambda_.Function, role: iam.Role) -> None:
    """cdk-nag findings every factory-made function has, each with its reason."""
    acknowledge(
        function,
        "AwsSolutions-L1",
        "Pinned to Python 3.12 on purpose: the shared layer's binary wheels (pydantic-core, PyYAML) "
        "are built for cp312; the runtime and the layer are upgraded together.",
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5",
        RESOURCE_WILDCARD_REASON,
        findings=["Resource::*"],
    )
