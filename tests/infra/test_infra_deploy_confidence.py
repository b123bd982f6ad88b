"""Deploy confidence: the app synthesizes, cdk-nag clean, for two regions and for each CML endpoint
mode (and with the optional WAF and alarm e-mail on), the way `cdk synth` builds it."""

from __future__ import annotations

import pytest
from _app import offline_app
from _dead_letters import async_invocations_without_dead_letter
from _template import API_HANDLER, environment, of_type, product_resources

pytestmark = pytest.mark.infra

#: Each region and each endpoint mode at least once; the last one with every option on.
VARIANTS = [
    pytest.param(("us-east-1", "public", {}), id="us-east-1-public"),
    pytest.param(("eu-west-1", "private", {}), id="eu-west-1-private"),
    pytest.param(
        (
            "eu-west-1",
            "template",
            {"cmlcm:waf": "true", "cmlcm:alarmEmail": "ops@example.com", "cmlcm:collectOverdueMinutes": "30"},
        ),
        id="eu-west-1-template-waf-email",
    ),
]


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request):
    """(region, mode, context, app, resources) of one synthesized variant."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from cmlcm_infra.composition import build

    region, mode, context = request.param
    app = offline_app(**{"cmlcm:cmlEndpointMode": mode, **context})
    stack = build(app, env=cdk.Environment(account="123456789012", region=region))
    return region, mode, context, app, Template.from_stack(stack).to_json()["Resources"]


def test_each_variant_is_cdk_nag_clean(variant):
    from cdk_nag import AwsSolutionsChecks

    *_, app, _ = variant
    report = AwsSolutionsChecks().validate_scope(app)
    assert [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations] == []


def test_each_variant_runs_in_its_region_and_mode(variant):
    region, mode, _, _, resources = variant
    env = environment(resources, API_HANDLER)
    assert (env["SUPPORTED_REGIONS"], env["CML_ENDPOINT_MODE"]) == (region, mode)
    for function in of_type(product_resources(resources), "AWS::Lambda::Function").values():
        assert function["Properties"]["Environment"]["Variables"]["CML_ENDPOINT_MODE"] == mode


def test_each_variant_keeps_its_dead_letters_and_alarms(variant):
    *_, resources = variant
    assert async_invocations_without_dead_letter(resources) == []
    assert len(of_type(resources, "AWS::CloudWatch::Alarm")) >= 20
    assert len(of_type(resources, "AWS::CloudWatch::Dashboard")) == 1


def test_options_from_the_context(variant):
    _, _, context, _, resources = variant
    acls = of_type(resources, "AWS::WAFv2::WebACL")
    subscriptions = of_type(resources, "AWS::SNS::Subscription")
    if "cmlcm:waf" not in context:
        assert acls == {} and subscriptions == {}
        return
    # WAF: the managed common rules and a rate limit per IP, on the API stage
    ((acl_id, acl),) = acls.items()
    rules = {r["Name"]: r for r in acl["Properties"]["Rules"]}
    assert rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
    rate = rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]
    assert (rate["AggregateKeyType"], rules["RateLimitPerIp"]["Action"]) == ("IP", {"Block": {}})
    assert acl["Properties"]["Scope"] == "REGIONAL"
    (association,) = of_type(resources, "AWS::WAFv2::WebACLAssociation").values()
    (stage_id,) = of_type(resources, "AWS::ApiGateway::Stage")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert stage_id in str(association["Properties"]["ResourceArn"])
    # the e-mail subscribes; the overdue window follows the context
    (subscription,) = subscriptions.values()
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    (overdue,) = [
        a["Properties"]
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].endswith("-CollectionOverdue")
    ]
    assert overdue["Period"] == 30 * 60
