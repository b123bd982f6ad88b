"""The dashboard's hosting: web/ in a private S3 bucket behind CloudFront, and its sign-in.

- Bucket: private (all public access blocked), TLS only, S3-managed encryption, access logs;
  CloudFront reads it through an origin access control (no OAI, no bucket website).
- Distribution: HTTPS only (HTTP redirects), a response-headers policy with a
  Content-Security-Policy that allows this origin's scripts and styles and connections only to
  the REST API, the WebSocket API and the Cognito domain, plus HSTS, nosniff, DENY framing and
  no referrer; standard logs to the logs bucket.
- `config.json`, generated at deploy time next to the assets: REST URL, WebSocket URL, Cognito
  hosted-UI domain and client id (the page reads it before anything else).
- Cognito: a hosted-UI domain on the user pool; the pool's web client (auth.py) gets the
  hosted-UI settings (authorization code + PKCE, callback and sign-out URLs on the distribution).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from cmlcm_infra.nag import acknowledge, arn_finding
from cmlcm_infra.paths import REPO_ROOT

#: The dashboard's static files (web/assets/vendor is filled by `make web` before a deploy).
WEB_DIR = REPO_ROOT / "web"


def content_security_policy(connect_sources: list[str]) -> str:
    """Same shape as the local mode's (local/cmlcm_local/web.py): only 'self' for code and styles."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "connect-src 'self' " + " ".join(connect_sources),
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )


class Hosting(Construct):
    """S3 + CloudFront for web/, its config.json, and the Cognito hosted UI it signs in with."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        user_pool: cognito.IUserPool,
        client: cognito.UserPoolClient,
        rest_api: apigw.RestApi,
        rest_api_url: str,
        websocket_url: str | None = None,
        websocket_origin: str | None = None,
        domain_prefix: str | None = None,
        web_dir: Path = WEB_DIR,
    ) -> None:
        """`client` is the user pool's web client (its tokens are the ones REST and WebSocket accept);
        `websocket_url` (wss://…/stage) and `websocket_origin` (wss://host) come from the Realtime
        construct; `domain_prefix` (globally unique per region) defaults to `<stack name>-<account>`."""
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.logs = s3.Bucket(
            self,
            "Logs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            # CloudFront standard logs are delivered with ACLs: the bucket has to accept them.
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.logs,
            "AwsSolutions-S1",
            "This is the access-log bucket of the dashboard bucket and distribution; logging it into "
            "itself would loop. It is private, TLS only, encrypted and expires objects after 90 days.",
        )
        self.bucket = s3.Bucket(
            self,
            "Site",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="s3/",
            # Kept (as the logs) when the stack is deleted: emptying it would need another
            # CDK-owned function; it only ever holds copies of web/.
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.domain = user_pool.add_domain(
            "HostedUi",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=domain_prefix or Fn.join("-", [stack.stack_name.lower(), Aws.ACCOUNT_ID])
            ),
        )
        self.cognito_url = Fn.join(
            "", ["https://", self.domain.domain_name, ".auth.", Aws.REGION, ".amazoncognito.com"]
        )
        # The API's origin from its id only: the stage URL would make the distribution wait for
        # the API's deployment, which (with CORS for this distribution) waits for the distribution.
        api_origin = Fn.join("", ["https://", rest_api.rest_api_id, ".execute-api.", Aws.REGION, ".", Aws.URL_SUFFIX])
        connect = [api_origin, self.cognito_url]
        if websocket_origin:
            connect.append(websocket_origin)

        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="CML Cloud Manager dashboard: CSP (API, WebSocket and Cognito only), HSTS, no framing",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(connect), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True, override=True
                ),
            ),
        )
        origin = origins.S3BucketOrigin.with_origin_access_control(self.bucket)
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="CML Cloud Manager dashboard",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
            ),
            additional_behaviors={
                # Read at every page load: a new deployment's URLs apply at once.
                "/config.json": cloudfront.BehaviorOptions(
                    origin=origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    response_headers_policy=headers,
                ),
            },
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        self.origin = Fn.join("", ["https://", self.distribution.distribution_domain_name])
        self.url = Fn.join("", [self.origin, "/"])

        # The web client of the Auth construct is the dashboard's (the WebSocket $connect accepts
        # its tokens only): it gets the hosted-UI settings here, once the distribution's domain
        # exists. Public client (no secret), authorization code grant; Cognito requires PKCE of
        # public clients using the code grant with S256 when the request carries a challenge.
        self.client = client
        cfn_client = client.node.default_child
        assert isinstance(cfn_client, cognito.CfnUserPoolClient)
        cfn_client.allowed_o_auth_flows = ["code"]
        cfn_client.allowed_o_auth_flows_user_pool_client = True
        cfn_client.allowed_o_auth_scopes = ["openid", "email", "profile"]
        cfn_client.callback_ur_ls = [self.url]
        cfn_client.logout_ur_ls = [self.url]
        cfn_client.supported_identity_providers = ["COGNITO"]

        config = {
            "mode": "aws",
            "apiUrl": rest_api_url,
            "wsUrl": websocket_url,
            "cognito": {
                "domain": self.cognito_url,
                "clientId": self.client.user_pool_client_id,
                "redirectUri": self.url,
                "signOutUrl": self.url,
            },
        }
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=[
                s3deploy.Source.asset(str(web_dir), exclude=["**/.copied-stamp"]),
                s3deploy.Source.json_data("config.json", config),
            ],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
        )

        for rule, reason in {
            "AwsSolutions-CFR1": "The dashboard is for the operators of this fleet wherever they are; every "
            "API call needs a Cognito token, so a geo restriction adds nothing but lock-outs.",
            "AwsSolutions-CFR2": "The distribution serves only static files from a private bucket; no WAF web "
            "ACL yet. Associate one (AWS managed rules, rate limit) with the REST API's when it is exposed widely.",
            "AwsSolutions-CFR4": "The distribution uses the default *.cloudfront.net certificate, for which "
            "CloudFront cannot enforce TLSv1.2_2021; with a custom domain and ACM certificate it applies "
            "(set minimum_protocol_version to TLS_V1_2_2021 with it).",
        }.items():
            acknowledge(self.distribution, rule, reason)
        self._acknowledge_cdk_custom_resources(stack)

    def _acknowledge_cdk_custom_resources(self, stack: Stack) -> None:
        """BucketDeployment's function is a CDK-owned singleton at the stack
        root; their findings are acknowledged there, one by one."""
        qualifier = stack.node.try_get_context("@aws-cdk/core:bootstrapQualifier") or "hnb659fds"
        basic_role = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        wildcards = [
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            "Action::s3:DeleteObject*",
            "Action::s3:Abort*",
            f"Resource::arn:<AWS::Partition>:s3:::cdk-{qualifier}-assets-<AWS::AccountId>-<AWS::Region>/*",
            arn_finding(self.bucket, "/*"),
            # cloudfront:CreateInvalidation has no resource-level permissions.
            "Resource::*",
        ]
        for child in stack.node.children:
            name = child.node.id
            if not name.startswith("Custom::CDKBucketDeployment"):
                continue
            acknowledge(
                child,
                "AwsSolutions-IAM4",
                "CDK-owned custom resource for the dashboard bucket (BucketDeployment): it "
                "runs with AWSLambdaBasicExecutionRole (CloudWatch Logs only), the policy AWS documents for it.",
                findings=[basic_role],
            )
            acknowledge(
                child,
                "AwsSolutions-IAM5",
                "BucketDeployment copies the staged web/ asset from the CDK asset bucket into the dashboard "
                "bucket (object wildcards on those two buckets, as the CDK grants them) and invalidates the "
                "distribution (CreateInvalidation has no resource-level permissions).",
                findings=wildcards,
            )
            acknowledge(
                child,
                "AwsSolutions-L1",
                "The runtime of the CDK's BucketDeployment custom-resource function is chosen by "
                "the aws-cdk-lib version pinned in pyproject.toml; it moves with CDK upgrades.",
            )
