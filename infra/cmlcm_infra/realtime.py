"""Live updates: the WebSocket API, its connection/subscription tables, and the stream broadcaster.

- WebSocket API (`aws-apigatewayv2`): routes `$connect`, `$disconnect`, `subscribe`,
  `unsubscribe`, `$default`, selected on `$request.body.action`, all on one function
  (`cmlcm.handlers.ws.handler`). `$connect` has no API Gateway authorizer: the function verifies
  the Cognito token given as `?token=` against the user pool's JWKS (browsers cannot set headers
  on a WebSocket) and answers 401. One stage with throttling and JSON access logs.
- Tables: connections (`connection_id`) and subscriptions (`topic` + `connection_id`, so a
  fan-out is one Query per topic), both with TTL `expires_at` (API Gateway's 2-hour limit).
- Broadcaster (`cmlcm.handlers.broadcaster.handler`): one event source mapping per source table's
  stream (workers, labs, operations filtered to job heartbeats): batching window, bisect on error,
  bounded retries, partial batch responses, an SQS on-failure destination.
- Grants: `execute-api:ManageConnections` on this API's stage `@connections` only; table access
  per function (the broadcaster reads no source table: the images come in the records).
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from cmlcm.adapters.stream_images import OPERATIONS_NEWS_PK
from cmlcm.handlers.ws import MESSAGE_ROUTES, ROUTE_SELECTION_EXPRESSION
from cmlcm_infra.data import TTL_ATTRIBUTE, Data, _table
from cmlcm_infra.dead_letters import DeadLetters
from cmlcm_infra.functions import Functions
from cmlcm_infra.nag import acknowledge
from cmlcm_infra.permissions import grant_table_data

WS_HANDLER = "cmlcm.handlers.ws.handler"
EC2_EVENTS_HANDLER = "cmlcm.handlers.ec2_events.handler"
BROADCASTER_HANDLER = "cmlcm.handlers.broadcaster.handler"
#: Records per broadcaster invocation, and how long the mapping gathers them (latency vs. batching).
STREAM_BATCH_SIZE = 100
STREAM_BATCHING_WINDOW = Duration.seconds(1)
#: Retries of a failing batch (bisected each time) before its records go to the on-failure queue.
STREAM_RETRY_ATTEMPTS = 3


#: One JSON line per WebSocket request (no message bodies: they may carry tokens).
ACCESS_LOG_FORMAT = apigw.AccessLogFormat.custom(
    json.dumps(
        {
            "requestId": "$context.requestId",
            "connectionId": "$context.connectionId",
            "routeKey": "$context.routeKey",
            "eventType": "$context.eventType",
            "status": "$context.status",
            "ip": "$context.identity.sourceIp",
            "requestTime": "$context.requestTime",
            "integrationLatency": "$context.integrationLatency",
            "error": "$context.error.message",
        }
    )
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """A stage's access log destination and format (`IAccessLogSettings` has no concrete class)."""

    def __init__(self, destination: apigwv2.IAccessLogDestination, log_format: apigw.AccessLogFormat) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


class Realtime(Construct):
    """WebSocket API + connection/subscription tables + ws function + stream broadcaster."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        data: Data,
        user_pool: cognito.IUserPool,
        user_pool_client: cognito.IUserPoolClient,
        dead_letters: DeadLetters,
        stage_name: str = "v1",
        throttling_rate_limit: int = 50,
        throttling_burst_limit: int = 100,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.connections = _table(
            self, "Connections", partition_key="connection_id", time_to_live_attribute=TTL_ATTRIBUTE
        )
        self.subscriptions = _table(
            self,
            "Subscriptions",
            partition_key="topic",
            sort_key=("connection_id", dynamodb.AttributeType.STRING),
            time_to_live_attribute=TTL_ATTRIBUTE,
        )
        tables = {
            "CONNECTIONS_TABLE": self.connections.table_name,
            "SUBSCRIPTIONS_TABLE": self.subscriptions.table_name,
        }

        self.ws_function = functions.add_function(
            "WebSocket",
            handler=WS_HANDLER,
            service_name="websocket",
            description="WebSocket routes: $connect (Cognito token check), $disconnect, subscribe, unsubscribe, $default",
            memory_size=512,
            timeout=Duration.seconds(29),  # API Gateway's integration limit
            environment={
                **tables,
                "COGNITO_ISSUER": f"https://cognito-idp.{stack.region}.{stack.url_suffix}/{user_pool.user_pool_id}",
                "COGNITO_CLIENT_ID": user_pool_client.user_pool_client_id,
            },
        )
        integration = integrations.WebSocketLambdaIntegration("Routes", self.ws_function)
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            description="CML Cloud Manager live updates",
            route_selection_expression=ROUTE_SELECTION_EXPRESSION,
            connect_route_options=apigwv2.WebSocketRouteOptions(integration=integration),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(integration=integration),
            default_route_options=apigwv2.WebSocketRouteOptions(integration=integration),
        )
        for route in MESSAGE_ROUTES:
            self.api.add_route(route, integration=integration)

        access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttling_rate_limit, burst_limit=throttling_burst_limit),
            access_log_settings=_AccessLogSettings(apigwv2.LogGroupLogDestination(access_logs), ACCESS_LOG_FORMAT),
        )

        # Stream batches that failed every retry: their positions go to a dead-letter queue.
        self.failure_queue = dead_letters.queue("BroadcasterStreamFailures")
        self.broadcaster = functions.add_function(
            "Broadcaster",
            handler=BROADCASTER_HANDLER,
            service_name="broadcaster",
            description="Fans table stream changes out to WebSocket subscribers",
            memory_size=1024,  # more CPU for the concurrent posts of a 100-record batch
            timeout=Duration.seconds(60),
            environment={**tables, "WEBSOCKET_CALLBACK_URL": self.stage.callback_url},
        )
        self.event_sources: list[sources.DynamoEventSource] = []
        for table, filters in (
            (data.workers, None),
            (data.labs, None),
            # Only job heartbeats of the operations table are news (not settings, names, keys).
            (
                data.operations,
                [
                    lambda_.FilterCriteria.filter(
                        {"dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.is_equal(OPERATIONS_NEWS_PK)}}}}
                    )
                ],
            ),
        ):
            source = sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=STREAM_BATCH_SIZE,
                max_batching_window=STREAM_BATCHING_WINDOW,
                bisect_batch_on_error=True,
                retry_attempts=STREAM_RETRY_ATTEMPTS,
                max_record_age=Duration.hours(1),  # a live update older than this is no longer live
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.failure_queue),
                filters=filters,
            )
            self.broadcaster.add_event_source(source)
            self.event_sources.append(source)

        # Connections: the ws function writes them; the broadcaster reads subscribers and deletes
        # gone connections. Snapshots read the workers, labs and operations (settings, jobs) tables.
        grant_table_data(self.ws_function, read_write=[self.connections, self.subscriptions])
        grant_table_data(self.ws_function, read=[data.workers, data.labs, data.operations])
        grant_table_data(self.broadcaster, read_write=[self.connections, self.subscriptions])
        # POST only: both functions send messages; neither reads or closes connections.
        post_to_connections = stack.format_arn(
            service="execute-api", resource=self.api.api_id, resource_name=f"{stage_name}/POST/@connections/*"
        )
        for function in (self.ws_function, self.broadcaster):
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["execute-api:ManageConnections"], resources=[post_to_connections])
            )
            acknowledge(
                function.role,
                "AwsSolutions-IAM5",
                "execute-api:ManageConnections is granted for POST on this WebSocket API's stage only "
                "('<api>/<stage>/POST/@connections/*'): connection ids are made per client at runtime.",
                findings=[
                    "Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                    f"<{stack.get_logical_id(self.api.node.default_child)}>/{stage_name}/POST/@connections/*"
                ],
            )
        # EC2 state changes update workers within seconds (stop → stopped, start → running,
        # console actions), instead of at the next collection.
        self.ec2_events = functions.add_function(
            "Ec2StateChanges",
            handler=EC2_EVENTS_HANDLER,
            service_name="ec2-events",
            description="Applies EC2 Instance State-change Notifications to the workers",
            timeout=Duration.seconds(30),
        )
        grant_table_data(self.ec2_events, read_write=[data.workers])
        self.ec2_rule_failures = dead_letters.queue("Ec2StateRuleFailures")
        self.ec2_rule = events.Rule(
            self,
            "Ec2StateChangeRule",
            description="EC2 instance state changes → CML Cloud Manager workers",
            event_pattern=events.EventPattern(
                source=["aws.ec2"], detail_type=["EC2 Instance State-change Notification"]
            ),
        )
        self.ec2_rule.add_target(
            targets.LambdaFunction(
                self.ec2_events,
                dead_letter_queue=self.ec2_rule_failures,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            )
        )
        dead_letters.protect_async_invocations(self.ec2_events)

        acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            "$connect has no API Gateway authorizer on purpose: the route's function verifies the Cognito "
            "token (query parameter, browsers cannot set WebSocket headers) against the user pool's JWKS "
            "and refuses the connection with 401; message routes only exist on authorized connections.",
        )

    @property
    def url(self) -> str:
        """`wss://<api>.execute-api.<region>.amazonaws.com/<stage>`."""
        return self.stage.url

    @property
    def origin(self) -> str:
        """`wss://<api>.execute-api.<region>.<suffix>` (for the dashboard's Content-Security-Policy)."""
        return Fn.join("", ["wss://", self.api.api_id, ".execute-api.", Aws.REGION, ".", Aws.URL_SUFFIX])
