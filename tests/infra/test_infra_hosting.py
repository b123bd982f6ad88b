"""The dashboard's hosting (hosting.py): private bucket behind CloudFront with origin access
control, HTTPS only, the CSP naming only the API, WebSocket and Cognito origins, config.json
deployed with the assets, the Cognito hosted UI client, and CORS for the dashboard's origin."""

from __future__ import annotations

import json

import pytest
from _template import environment, of_type

pytestmark = pytest.mark.infra


def _one(resources: dict, kind: str) -> tuple[str, dict]:
    found = of_type(resources, kind)
    assert len(found) == 1, f"{kind}: {sorted(found)}"
    return next(iter(found.items()))


def _dashboard_client(resources: dict) -> tuple[str, dict]:
    """The app client whose callback is the distribution (the Auth construct has its own)."""
    distribution_id, _ = _one(resources, "AWS::CloudFront::Distribution")
    found = {
        k: v
        for k, v in of_type(resources, "AWS::Cognito::UserPoolClient").items()
        if distribution_id in json.dumps(v["Properties"].get("CallbackURLs", []))
    }
    assert len(found) == 1, sorted(found)
    return next(iter(found.items()))


def _site_bucket(resources: dict) -> tuple[str, dict]:
    buckets = {
        k: v for k, v in of_type(resources, "AWS::S3::Bucket").items() if "LoggingConfiguration" in v["Properties"]
    }
    assert len(buckets) == 1, sorted(buckets)
    return next(iter(buckets.items()))


def test_the_site_bucket_is_private_tls_only_and_read_by_cloudfront_only(resources):
    bucket_id, bucket = _site_bucket(resources)
    block = bucket["Properties"]["PublicAccessBlockConfiguration"]
    assert all(block[k] for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    assert "WebsiteConfiguration" not in bucket["Properties"]
    policy = next(
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in of_type(resources, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    )
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)
    readers = [s for s in policy if s["Effect"] == "Allow"]
    assert readers and all(s["Principal"] == {"Service": "cloudfront.amazonaws.com"} for s in readers)
    distribution_id, _ = _one(resources, "AWS::CloudFront::Distribution")
    assert all(distribution_id in json.dumps(s["Condition"]) for s in readers)  # this distribution only


def test_the_distribution_is_https_only_with_origin_access_control_and_logs(resources):
    _, distribution = _one(resources, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    origin = config["Origins"][0]
    assert "OriginAccessControlId" in origin and origin["S3OriginConfig"].get("OriginAccessIdentity", "") == ""
    behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    assert {b["ViewerProtocolPolicy"] for b in behaviours} <= {"redirect-to-https", "https-only"}
    assert all("ResponseHeadersPolicyId" in b for b in behaviours)
    config_json = next(b for b in config["CacheBehaviors"] if b["PathPattern"] == "/config.json")
    assert config_json["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert "Logging" in config
    _, oac = _one(resources, "AWS::CloudFront::OriginAccessControl")
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"


def test_the_csp_allows_only_the_api_websocket_and_cognito_origins(resources):
    _, policy = _one(resources, "AWS::CloudFront::ResponseHeadersPolicy")
    security = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = json.dumps(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    directives = {d.split()[0]: d for d in csp.split("; ")}
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and " * " not in csp and "https:;" not in csp
    assert "execute-api." in csp and ".amazoncognito.com" in csp
    rest_api_id, _ = _one(resources, "AWS::ApiGateway::RestApi")
    websocket_api_id, _ = _one(resources, "AWS::ApiGatewayV2::Api")
    assert rest_api_id in csp and websocket_api_id in csp and "wss://" in csp
    assert any(key.endswith("connect-src") for key in directives)
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ContentTypeOptions"]["Override"] is True


def test_assets_and_a_generated_config_json_are_deployed_and_the_cache_invalidated(resources):
    _, deployment = _one(resources, "Custom::CDKBucketDeployment")
    props = deployment["Properties"]
    site_id, _ = _site_bucket(resources)
    distribution_id, _ = _one(resources, "AWS::CloudFront::Distribution")
    assert props["DestinationBucketName"] == {"Ref": site_id}
    assert props["DistributionId"] == {"Ref": distribution_id}
    assert len(props["SourceObjectKeys"]) == 2  # web/ and config.json
    markers = json.dumps(props.get("SourceMarkers", []))
    # config.json's values are filled at deploy time: REST URL, Cognito domain and client id.
    client_id, _ = _dashboard_client(resources)
    domain_id, _ = _one(resources, "AWS::Cognito::UserPoolDomain")
    websocket_api_id, _ = _one(resources, "AWS::ApiGatewayV2::Api")
    assert client_id in markers and domain_id in markers and "RestApi" in markers and websocket_api_id in markers


def test_the_dashboard_client_uses_authorization_code_with_pkce_on_the_distribution(resources):
    client = _dashboard_client(resources)[1]["Properties"]
    assert client["AllowedOAuthFlows"] == ["code"] and client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["GenerateSecret"] is False  # public client: PKCE, no secret in a browser
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email", "profile"}
    distribution_id, _ = _one(resources, "AWS::CloudFront::Distribution")
    for urls in (client["CallbackURLs"], client["LogoutURLs"]):
        assert len(urls) == 1 and distribution_id in json.dumps(urls[0])
    assert client["SupportedIdentityProviders"] == ["COGNITO"]


def test_cors_for_the_dashboard_origin_on_the_function_and_the_gateways_own_answers(resources):
    distribution_id, _ = _one(resources, "AWS::CloudFront::Distribution")
    origin = environment(resources, "cmlcm.handlers.api.app.handler")["DASHBOARD_ORIGIN"]
    assert distribution_id in json.dumps(origin)
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in of_type(resources, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        response = responses[kind]
        allowed = response["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert distribution_id in json.dumps(allowed) and "*" not in json.dumps(allowed)


def test_stack_outputs_name_the_dashboard(template):
    outputs = template.to_json()["Outputs"]
    assert {"DashboardUrl", "DashboardClientId", "HostedUiUrl"} <= set(outputs)
