"""Builds the app's stack from context; shared by `infra/app.py` and the infra tests.

Context keys (``cdk synth -c key=value`` or cdk.json):
  * ``cmlcm:skipBundling=true``: stage the dependency layer unbuilt (offline synth, tests).
    The CLI always overwrites ``aws:cdk:bundling-stacks`` itself, hence this app-level key.
  * ``cmlcm:supportedRegions``: SUPPORTED_REGIONS of the functions (comma-separated); the
    stack's own region by default.
  * ``cmlcm:cmlEndpointMode``: CML_ENDPOINT_MODE, ``public`` by default because the functions
    are not attached to a VPC yet (``private`` needs VPC access to the workers).
  * ``cmlcm:logLevel``: LOG_LEVEL of the functions.
  * ``cmlcm:stackName``: stack name (default ``CmlCloudManager``).
"""

from __future__ import annotations

import aws_cdk as cdk

from cmlcm_infra.nag import add_aws_solutions_checks
from cmlcm_infra.stack import CmlCloudManagerStack

DEFAULT_STACK_NAME = "CmlCloudManager"


def _flag(value: object) -> bool:
    """Context from `-c` arrives as a string, from cdk.json or tests as JSON."""
    return value is True or str(value).lower() in {"1", "true", "yes"}


def build(app: cdk.App) -> CmlCloudManagerStack:
    """Add the stack to `app` and register cdk-nag AwsSolutions on the whole app."""
    context = app.node.try_get_context
    stack = CmlCloudManagerStack(
        app,
        context("cmlcm:stackName") or DEFAULT_STACK_NAME,
        description="CML Cloud Manager: serverless control plane for Cisco Modeling Labs workers",
        supported_regions=context("cmlcm:supportedRegions") or None,  # None: the stack's region
        cml_endpoint_mode=context("cmlcm:cmlEndpointMode") or "public",
        log_level=context("cmlcm:logLevel") or "INFO",
        skip_bundling=_flag(context("cmlcm:skipBundling")),
        # No env: account and region come from the deploying credentials (environment-agnostic).
    )
    add_aws_solutions_checks(app)
    return stack
