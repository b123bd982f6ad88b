"""Protection of the REST API: per-route throttling of the expensive routes, and an optional WAF.

Throttling: API Gateway throttles per stage method setting, i.e. per (resource path, HTTP
method), and every path reaches the function through `/{proxy+}`. `throttle_routes` gives each
expensive route its own resource and method (same Lambda proxy integration, same Cognito
authorizer, same validator) and a method setting with a lower rate than the stage's. So that no
other path changes behaviour, every explicit resource also answers ANY, and a `{proxy+}` child
catches deeper paths wherever no path variable already does. The limits are for the whole stage
(all callers together), like the stage's own 50 rps.

WAF (`ApiWebAcl`, on with `-c cmlcm:waf=true`): a regional web ACL on the stage with the AWS
managed common rule set (OWASP-style request inspection) and a rate-based rule blocking an IP
above `rate_limit` requests per 5 minutes. Cost (us-east-1 list prices, 2026): $5 per web ACL
+ $1 per rule (2) per month, + $0.60 per million requests; about $7/month for an operator API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct


@dataclass(frozen=True)
class Limit:
    """Requests per second (steady) and burst, for the whole stage."""

    rate: float
    burst: int


#: The expensive routes (`functions/cmlcm/handlers/api`): each one starts a saga, launches or
#: describes instances, or reads a CML controller in-process.
THROTTLED_ROUTES: Mapping[tuple[str, str], Limit] = {
    ("POST", "/workers"): Limit(rate=2, burst=5),  # create: saga, RunInstances
    ("POST", "/workers/import"): Limit(rate=1, burst=2),  # import: describe + adopt instances
    ("POST", "/workers/{worker_id}/refresh"): Limit(rate=5, burst=10),  # EC2 + CloudWatch + CML now
    ("POST", "/workers/{worker_id}/labs/refresh"): Limit(rate=5, burst=10),  # CML lab sync
    ("POST", "/workers/{worker_id}/labs/import"): Limit(rate=2, burst=5),  # CML lab import (YAML)
}


def _encoded(path: str) -> str:
    """A method setting's ResourcePath: `/workers/x` is written `/~1workers~1x`."""
    return "/" + path.replace("/", "~1")


def throttle_routes(
    api: apigw.RestApi,
    *,
    integration: apigw.Integration,
    validator: apigw.IRequestValidator,
    routes: Mapping[tuple[str, str], Limit] = THROTTLED_ROUTES,
) -> list[apigw.Method]:
    """Give each of `routes` its own method and stage throttling; returns the throttled methods."""
    explicit: set[str] = set()
    throttled: list[apigw.Method] = []
    for (http_method, path), _ in routes.items():
        resource = api.root.resource_for_path(path)
        throttled.append(resource.add_method(http_method, integration, request_validator=validator))
        # Every resource on the way now shadows `/{proxy+}` for its own path: answer ANY there too.
        node: apigw.IResource | None = resource
        while node is not None and node is not api.root:
            explicit.add(node.path)
            node = node.parent_resource
    for path in sorted(explicit):
        resource = api.root.resource_for_path(path)
        if resource.node.try_find_child("ANY") is None:
            resource.add_method("ANY", integration, request_validator=validator)
        children = [child for child in resource.node.children if isinstance(child, apigw.Resource)]
        if not any(child.path.rsplit("/", 1)[-1].startswith("{") for child in children):
            resource.add_resource("{proxy+}").add_method("ANY", integration, request_validator=validator)

    stage = api.deployment_stage.node.default_child
    assert isinstance(stage, apigw.CfnStage)
    existing = list(stage.method_settings or [])  # the stage-wide "/*/*" setting stays first
    stage.method_settings = existing + [
        apigw.CfnStage.MethodSettingProperty(
            http_method=http_method,
            resource_path=_encoded(path),
            throttling_rate_limit=limit.rate,
            throttling_burst_limit=limit.burst,
            # A method setting replaces the stage's for that method: repeat logging and metrics.
            logging_level="ERROR",
            data_trace_enabled=False,
            metrics_enabled=True,
        )
        for (http_method, path), limit in routes.items()
    ]
    return throttled


class ApiWebAcl(Construct):
    """A regional WAFv2 web ACL associated with the REST API's stage."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: apigw.Stage, rate_limit: int = 2000) -> None:
        super().__init__(scope, construct_id)
        prefix = Stack.of(self).stack_name

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=f"{prefix}-{name}", sampled_requests_enabled=True
            )

        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("api"),
            description="CML Cloud Manager REST API: AWS managed common rules + rate limit per IP",
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="AWSManagedRulesCommonRuleSet",
                    priority=0,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS",
                            name="AWSManagedRulesCommonRuleSet",
                            # Lab imports POST topology YAML of several hundred KB: the body size
                            # rule (8 KB) would block them, so it only counts.
                            rule_action_overrides=[
                                wafv2.CfnWebACL.RuleActionOverrideProperty(
                                    name="SizeRestrictions_BODY",
                                    action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                                )
                            ],
                        )
                    ),
                    visibility_config=visibility("common-rules"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=1,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP", limit=rate_limit, evaluation_window_sec=300
                        )
                    ),
                    visibility_config=visibility("rate-limit"),
                ),
            ],
        )
        self.association = wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
