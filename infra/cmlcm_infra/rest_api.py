"""API Gateway REST API in front of the API Lambda (Powertools `APIGatewayRestResolver`).

Every path is proxied to one function, which routes, validates (pydantic) and documents
(OpenAPI) the API itself. API Gateway adds what must happen before the code runs: Cognito token
validation on every method except the public `GET /health` and `GET /openapi.json`, throttling,
access logs, execution logs and X-Ray.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cmlcm_infra.nag import acknowledge

#: Paths answered without a token (GET only): liveness probes and the API description.
PUBLIC_PATHS = ("health", "openapi.json")

#: What API Gateway answers itself, before the function runs, in the API's one error shape
#: `{error, message, field}` (the function's `ErrorBody`; the local gateway answers 401 alike):
#: response type → (status, error code, field, extra headers). MISSING_AUTHENTICATION_TOKEN is
#: what API Gateway says for a method a resource lacks; with `ANY` on every other resource that
#: is only another method on the public GET paths, so it is the 405 the function would give.
GATEWAY_RESPONSES: dict[str, tuple[str | None, str, str | None, dict[str, str]]] = {
    "UNAUTHORIZED": ("401", "Unauthorized", None, {"WWW-Authenticate": "'Bearer'"}),
    "ACCESS_DENIED": ("403", "Forbidden", None, {}),
    "MISSING_AUTHENTICATION_TOKEN": ("405", "MethodNotAllowed", None, {"Allow": "'GET'"}),
    "REQUEST_TOO_LARGE": ("413", "PayloadTooLarge", "body", {}),
    "THROTTLED": ("429", "Throttled", None, {}),
    "DEFAULT_4XX": (None, "BadRequest", None, {}),
    "DEFAULT_5XX": (None, "GatewayError", None, {}),
}


def error_template(code: str, field: str | None) -> str:
    """The body template of a gateway response: `$context.error.messageString` is already a
    quoted JSON string."""
    field_json = "null" if field is None else f'"{field}"'
    return f'{{"error": "{code}", "message": $context.error.messageString, "field": {field_json}}}'


class RestApi(Construct):
    """REST API: `{proxy+}` (any method, Cognito) plus the public GET paths."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        user_pool: cognito.IUserPool,
        stage_name: str = "v1",
        throttling_rate_limit: int = 50,
        throttling_burst_limit: int = 100,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, construct_id)

        access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self,
            "Authorizer",
            cognito_user_pools=[user_pool],
            results_cache_ttl=Duration.minutes(5),
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            description="CML Cloud Manager REST API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # gzip for clients that accept it (browsers do): a 1000-worker GET /workers is about
            # 1.2 MiB of JSON, a tenth of that compressed.
            min_compression_size=Size.kibibytes(1),
            # Every method is protected unless it explicitly opts out (the public GETs below).
            default_method_options=apigw.MethodOptions(
                authorizer=self.authorizer, authorization_type=apigw.AuthorizationType.COGNITO
            ),
            # Execution logging needs the account-level API Gateway CloudWatch role; the recommended
            # flag disables it by default, so ask for it explicitly (kept on stack deletion because
            # it is shared by every REST API of the account/region).
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                # ERROR, not INFO, and never data tracing: bodies carry tokens and credentials.
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=throttling_rate_limit,
                throttling_burst_limit=throttling_burst_limit,
            ),
        )
        # Parameters and body are checked against the method's (empty) models here; the real
        # validation is pydantic in the function, which owns the schemas and the OpenAPI document.
        validator = self.api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        # Invoke permissions are scoped to each method's ARN; console test-invoke ones are not needed.
        integration = apigw.LambdaIntegration(handler, proxy=True, allow_test_invoke=False)
        # Kept for the routes added later with their own throttling (protection.throttle_routes).
        self.integration, self.validator = integration, validator

        # `/` and `/{proxy+}`, any method: the function's resolver routes and answers 404/405.
        for resource in (self.api.root, self.api.root.add_resource("{proxy+}")):
            resource.add_method("ANY", integration, request_validator=validator)
        # Explicit resources win over `{proxy+}`, so these two GETs skip the authorizer.
        for path in PUBLIC_PATHS:
            method = self.api.root.add_resource(path).add_method(
                "GET",
                integration,
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=validator,
            )
            for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                acknowledge(
                    method,
                    rule,
                    f"GET /{path} is public on purpose: health probes and API clients/doc viewers "
                    "call it without a token; it returns no fleet data and the stage throttling applies.",
                )

        # Answers API Gateway gives itself (no token, too large, throttled, ...): the error shape too.
        #: Each gateway response and its headers (`allow_origin` adds the CORS ones to all of them).
        self._gateway_responses: dict[str, tuple[apigw.GatewayResponse, dict[str, str]]] = {}
        for response_type, (status, code, field, headers) in GATEWAY_RESPONSES.items():
            response = self.api.add_gateway_response(
                f"{response_type.title().replace('_', '')}Response",
                type=apigw.ResponseType.of(response_type),
                status_code=status,
                response_headers=headers or None,
                templates={"application/json": error_template(code, field)},
            )
            self._gateway_responses[response_type] = (response, dict(headers))

        # The stack exports the URL under a stable name (RestApiUrl); drop the hashed duplicate.
        self.api.node.try_remove_child("Endpoint")

        acknowledge(
            self.api.deployment_stage,
            "AwsSolutions-APIG3",
            "No WAFv2 web ACL yet: every data path needs a Cognito token and the stage is throttled. "
            "Associate a web ACL (rate-based + AWS managed rules) when the API is exposed beyond operators.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4",
            "The account-level API Gateway CloudWatch role uses AmazonAPIGatewayPushToCloudWatchLogs, the "
            "policy AWS documents for it: API Gateway writes execution logs to log groups it creates "
            "itself, whose names are not known here.",
            findings=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
        )

    def allow_origin(self, origin: str) -> None:
        """CORS for the dashboard's `origin`: browsers send preflights (OPTIONS) without a token, so
        OPTIONS skips the authorizer and reaches the function, whose resolver answers it for that
        origin only (DASHBOARD_ORIGIN); the gateway's own 4XX/5XX answers (401 from the authorizer,
        throttling) carry the origin too, so the page can read them. Call it after every route is
        added: each resource answering ANY (explicit ones shadow `{proxy+}`) gets its OPTIONS."""
        resources = {m.resource.path: m.resource for m in self.api.methods if m.http_method == "ANY"}
        for _, resource in sorted(resources.items()):
            if resource.node.try_find_child("OPTIONS") is not None:
                continue
            method = resource.add_method(
                "OPTIONS",
                self.integration,
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=self.validator,
            )
            for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                acknowledge(
                    method,
                    rule,
                    "CORS preflight: browsers send OPTIONS without credentials by the Fetch standard; the "
                    "function answers it with the allowed origin, methods and headers only, no data.",
                )
        cors = {
            "Access-Control-Allow-Origin": f"'{origin}'",
            "Access-Control-Allow-Headers": "'Authorization,Content-Type,Idempotency-Key'",
            "Vary": "'Origin'",
        }
        # Onto the existing gateway responses (one per type: a second response of the same type
        # would fail the deployment), keeping their own headers (WWW-Authenticate, Allow).
        for response, headers in self._gateway_responses.values():
            merged = {**headers, **cors}
            cfn = response.node.default_child
            assert isinstance(cfn, apigw.CfnGatewayResponse)
            cfn.response_parameters = {f"gatewayresponse.header.{k}": v for k, v in merged.items()}

    @property
    def url(self) -> str:
        """The invoke URL of the stage (ends with `/`)."""
        return self.api.url
