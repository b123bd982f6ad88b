"""The CML Cloud Manager stack: a thin composition of one construct per concern.

Data (tables) → Auth (Cognito) → CmlCredentials (secret) → Functions (factory) → the API
function → TaskFunctions (collection, saga, reconciler) → Workflows (state machines from
`statemachines/*.asl.json`) → Schedules (EventBridge Scheduler) → RestApi.
→ Realtime (WebSocket API, connection/subscription tables, $connect token check, the
stream-fed broadcaster) → DomainEvents (the custom EventBridge bus the broadcaster puts events on).
"""

from __future__ import annotations

from typing import Any, Literal

from aws_cdk import CfnOutput, Duration, Stack
from constructs import Construct

from cmlcm_infra.auth import Auth
from cmlcm_infra.credentials import CmlCredentials
from cmlcm_infra.dashboard import OpsDashboard
from cmlcm_infra.data import Data
from cmlcm_infra.dead_letters import DeadLetters
from cmlcm_infra.domain_events import DomainEvents
from cmlcm_infra.functions import Functions
from cmlcm_infra.hosting import Hosting
from cmlcm_infra.monitoring import COLLECT_OVERDUE, RECONCILE_OVERDUE, Monitoring
from cmlcm_infra.permissions import (
    grant_fleet_control,
    grant_licence_token_secrets,
    grant_metrics_read,
    grant_secret_value,
    grant_tables_read_write,
)
from cmlcm_infra.protection import ApiWebAcl, throttle_routes
from cmlcm_infra.realtime import Realtime
from cmlcm_infra.rest_api import RestApi
from cmlcm_infra.schedules import Schedules
from cmlcm_infra.tasks import TaskFunctions
from cmlcm_infra.workflows import Workflows

API_HANDLER = "cmlcm.handlers.api.app.handler"
#: Context key (cx-api BUNDLING_STACKS) listing the stacks whose assets are bundled.
BUNDLING_STACKS = "aws:cdk:bundling-stacks"


class CmlCloudManagerStack(Stack):
    """Everything CML Cloud Manager runs on, in one stack."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        supported_regions: str | None = None,
        cml_endpoint_mode: Literal["public", "private", "template"] = "public",
        log_level: str = "INFO",
        skip_bundling: bool = False,
        alarm_email: str | None = None,
        collect_overdue: Duration = COLLECT_OVERDUE,
        reconcile_overdue: Duration = RECONCILE_OVERDUE,
        waf: bool = False,
        **kwargs: Any,
    ) -> None:
        """`supported_regions` (comma-separated) defaults to the stack's own region.
        `skip_bundling` stages the layer unbuilt (offline synth, tests): never deploy that.
        `alarm_email` subscribes to the alarm topic; the overdue windows bound the job heartbeats.
        `waf` associates a WAF web ACL with the API stage (about $7/month, see protection.py)."""
        super().__init__(scope, construct_id, **kwargs)
        if skip_bundling:
            # Read by every asset of this stack (Stack.bundlingRequired); the CLI sets the same
            # key on the app, so it has to be set here, below the CLI's value, before any asset.
            self.node.set_context(BUNDLING_STACKS, [])

        data = Data(self, "Data")
        auth = Auth(self, "Auth")
        credentials = CmlCredentials(self, "CmlCredentials")
        functions = Functions(
            self,
            "Functions",
            log_level=log_level,
            environment={
                **data.environment,
                "CML_CREDENTIALS_SECRET": credentials.secret.secret_arn,
                "SUPPORTED_REGIONS": supported_regions or self.region,
                "CML_ENDPOINT_MODE": cml_endpoint_mode,
            },
        )

        self.api_function = functions.add_function(
            "Api",
            handler=API_HANDLER,
            service_name="api",
            description="CML Cloud Manager REST API (Powertools APIGatewayRestResolver)",
            memory_size=1024,  # more memory = more CPU: faster cold starts (pydantic, boto3)
            timeout=Duration.seconds(29),  # the REST API integration limit
        )
        grant_tables_read_write(self.api_function, data)
        grant_fleet_control(self.api_function)
        grant_metrics_read(self.api_function)
        grant_secret_value(self.api_function, credentials.secret)
        grant_licence_token_secrets(self.api_function)

        self.tasks = TaskFunctions(self, "Tasks", functions=functions, data=data, credentials=credentials.secret)
        self.workflows = Workflows(self, "Workflows", tasks=self.tasks)
        # Every asynchronous invocation ends in a dead-letter queue when its retries are spent.
        self.dead_letters = DeadLetters(self, "DeadLetters")
        self.dead_letters.protect_async_invocations(self.tasks.reconcile)  # Scheduler invokes it async
        self.schedules = Schedules(
            self,
            "Schedules",
            collect_metrics=self.workflows.collect_metrics,
            reconcile=self.tasks.reconcile,
            dead_letters=self.dead_letters,
        )
        # The API starts the saga, runs refreshes and imports in-process (the grants above),
        # and moves the schedules' rates when the settings change.
        for variable, value in {**self.workflows.environment, **self.schedules.environment}.items():
            self.api_function.add_environment(variable, value)
        self.workflows.provision_worker.grant_start_execution(self.api_function)
        self.schedules.grant_update(self.api_function)
        # The jobs API (admin): run a job now, as its schedule would.
        self.schedules.grant_run_now(self.api_function)
        # Each collection run puts the rates back on the settings' intervals: a deployment
        # resets them to the template's (CloudFormation owns the schedules).
        for variable, value in self.schedules.environment.items():
            self.tasks.collect_plan.add_environment(variable, value)
        self.schedules.grant_update(self.tasks.collect_plan)

        rest_api = RestApi(self, "RestApi", handler=self.api_function, user_pool=auth.user_pool)
        # The expensive routes (create, import, refresh) get their own, lower stage throttling.
        throttle_routes(rest_api.api, integration=rest_api.integration, validator=rest_api.validator)
        if waf:
            self.web_acl = ApiWebAcl(self, "WebAcl", stage=rest_api.api.deployment_stage)
        self.realtime = Realtime(
            self,
            "Realtime",
            functions=functions,
            data=data,
            user_pool=auth.user_pool,
            user_pool_client=auth.client,
            dead_letters=self.dead_letters,
        )
        # The same events on a custom EventBridge bus, for users' rules (automation).
        self.domain_events = DomainEvents(self, "DomainEvents", publisher=self.realtime.broadcaster)

        # The dashboard: S3 + CloudFront, its config.json, Cognito hosted UI; CORS for its origin.
        self.hosting = Hosting(
            self,
            "Hosting",
            user_pool=auth.user_pool,
            client=auth.client,
            rest_api=rest_api.api,
            rest_api_url=rest_api.url,
            websocket_url=self.realtime.url,
            websocket_origin=self.realtime.origin,
        )
        rest_api.allow_origin(self.hosting.origin)
        self.api_function.add_environment("DASHBOARD_ORIGIN", self.hosting.origin)

        # Keep Monitoring LAST: it alarms on every function, state machine, queue, table and
        # stream consumer already in the stack, whoever added them.
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            rest_api=rest_api.api,
            alarm_email=alarm_email,
            collect_overdue=collect_overdue,
            reconcile_overdue=reconcile_overdue,
        )
        self.dashboard = OpsDashboard(
            self,
            "Dashboard",
            rest_api=rest_api.api,
            functions=self.monitoring.functions,
            state_machines=self.monitoring.state_machines,
            queues=self.monitoring.queues,
            tables=self.monitoring.tables,
            alarms=list(self.monitoring.alarms.values()),
        )

        CfnOutput(self, "RestApiUrl", value=rest_api.url, description="REST API base URL (stage included)")
        CfnOutput(
            self, "WebSocketUrl", value=self.realtime.url, description="WebSocket URL (add ?token=<Cognito token>)"
        )
        CfnOutput(
            self,
            "EventBusName",
            value=self.domain_events.bus.event_bus_name,
            description="Custom EventBridge bus of the domain events (source cmlcm): attach your rules to it",
        )
        CfnOutput(self, "EventBusArn", value=self.domain_events.bus.event_bus_arn)
        CfnOutput(self, "UserPoolId", value=auth.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=auth.client.user_pool_client_id)
        CfnOutput(self, "CmlCredentialsSecretArn", value=credentials.secret.secret_arn)
        CfnOutput(self, "DashboardUrl", value=self.hosting.url, description="The web dashboard (CloudFront)")
        CfnOutput(self, "DashboardClientId", value=self.hosting.client.user_pool_client_id)
        CfnOutput(self, "HostedUiUrl", value=self.hosting.cognito_url, description="Cognito hosted UI")
        CfnOutput(self, "DashboardName", value=self.dashboard.dashboard.dashboard_name)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn, description="Subscribe to alarms")
        for variable, table in data.tables.items():
            CfnOutput(self, variable.title().replace("_", ""), value=table.table_name, description=variable)
