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
  * ``cmlcm:alarmEmail``: an e-mail address subscribed to the alarm topic (none if absent).
  * ``cmlcm:collectOverdueMinutes`` / ``cmlcm:reconcileOverdueMinutes``: how long without a job
    heartbeat before its overdue alarm fires (15 / 45: three default periods). Raise them when the
    settings move the collect / reconcile interval above 5 / 15 minutes.
  * ``cmlcm:waf=true``: a WAF web ACL (AWS managed common rules + rate limit per IP) on the API
    stage; off by default (about $7/month, see ``cmlcm_infra.protection``).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Duration

from cmlcm_infra.monitoring import COLLECT_OVERDUE, RECONCILE_OVERDUE
from cmlcm_infra.nag import add_aws_solutions_checks
from cmlcm_infra.stack import CmlCloudManagerStack

DEFAULT_STACK_NAME = "CmlCloudManager"


def _flag(value: object) -> bool:
    """Context from `-c` arrives as a string, from cdk.json or tests as JSON."""
    return value is True or str(value).lower() in {"1", "true", "yes"}


def _minutes(value: object, default: Duration) -> Duration:
    """A positive whole number of minutes from the context, or `default` when absent."""
    if value is None or value == "":
        return default
    minutes = int(str(value))
    if minutes < 1:
        raise ValueError(f"expected a positive number of minutes, got {value!r}")
    return Duration.minutes(minutes)


def build(app: cdk.App, *, env: cdk.Environment | None = None) -> CmlCloudManagerStack:
    """Add the stack to `app` and register cdk-nag AwsSolutions on the whole app.

    `env` pins account and region (the deploy-confidence tests synthesize for several regions);
    without it the stack is environment-agnostic."""
    context = app.node.try_get_context
    stack = CmlCloudManagerStack(
        app,
        context("cmlcm:stackName") or DEFAULT_STACK_NAME,
        description="CML Cloud Manager: serverless control plane for Cisco Modeling Labs workers",
        supported_regions=context("cmlcm:supportedRegions") or None,  # None: the stack's region
        cml_endpoint_mode=context("cmlcm:cmlEndpointMode") or "public",
        log_level=context("cmlcm:logLevel") or "INFO",
        skip_bundling=_flag(context("cmlcm:skipBundling")),
        alarm_email=context("cmlcm:alarmEmail") or None,
        collect_overdue=_minutes(context("cmlcm:collectOverdueMinutes"), COLLECT_OVERDUE),
        reconcile_overdue=_minutes(context("cmlcm:reconcileOverdueMinutes"), RECONCILE_OVERDUE),
        waf=_flag(context("cmlcm:waf")),
        # No env by default: account and region come from the deploying credentials.
        env=env,
    )
    add_aws_solutions_checks(app)
    return stack
