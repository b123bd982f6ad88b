"""Every function's environment as one pydantic model (`FunctionConfig`), read once per cold start.

"Config" is the deployment's environment (tables, ARNs, CML endpoint mode); "settings" is only the
fleet settings document administrators edit (`cmlcm.domain.settings.Settings`).

Missing or malformed variables fail fast at import of the handler, not on the first request.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FunctionConfig(BaseSettings):
    """Environment shared by all Lambda functions (CDK sets each variable; local mode too)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    aws_region: str = Field(default="us-east-1", alias="AWS_REGION")
    workers_table: str = Field(default="cmlcm-workers", alias="WORKERS_TABLE")
    labs_table: str = Field(default="cmlcm-labs", alias="LABS_TABLE")
    operations_table: str = Field(default="cmlcm-operations", alias="OPERATIONS_TABLE")
    metrics_table: str = Field(default="cmlcm-metrics", alias="METRICS_TABLE")
    #: A collection run's batches and outcomes (the Distributed Map reads the batches from here).
    collect_runs_bucket: str = Field(default="cmlcm-collect-runs", alias="COLLECT_RUNS_BUCKET")
    #: Regions the fleet may live in; requests naming another region are rejected (422).
    supported_regions: str = Field(default="us-east-1,us-west-2,eu-west-1", alias="SUPPORTED_REGIONS")
    #: Secrets Manager secret (JSON {"username","password"}) with the CML admin credentials.
    cml_credentials_secret: str = Field(default="cmlcm/cml-credentials", alias="CML_CREDENTIALS_SECRET")
    #: How a worker's CML base URL is built: its public IP, private IP, or a template (local mode).
    cml_endpoint_mode: Literal["public", "private", "template"] = Field(default="private", alias="CML_ENDPOINT_MODE")
    #: With mode "template": e.g. http://127.0.0.1:8701/controllers/{instance_id}/api/v0
    cml_endpoint_template: str = Field(default="", alias="CML_ENDPOINT_TEMPLATE")
    #: "true" verifies with the system CAs, "false" disables verification (explicit only),
    #: anything else is a path to a CA bundle (CML ships a self-signed certificate).
    cml_tls_verify: str = Field(default="true", alias="CML_TLS_VERIFY")
    cml_timeout_seconds: float = Field(default=10.0, alias="CML_TIMEOUT_SECONDS", gt=0)
    #: CML controllers read at once by one collector; each holds at most 3 sockets while it is
    #: read, so 250 keeps a collector under Lambda's 1024 open files (see adapters/cml/probe.py).
    cml_concurrency: int = Field(default=250, alias="CML_CONCURRENCY", ge=1, le=250)
    provision_state_machine_arn: str = Field(default="", alias="PROVISION_STATE_MACHINE_ARN")
    collect_state_machine_arn: str = Field(default="", alias="COLLECT_STATE_MACHINE_ARN")
    #: The reconciler function the jobs API invokes for "run now" (empty: not available here).
    reconcile_function_name: str = Field(default="", alias="RECONCILE_FUNCTION_NAME")
    #: EventBridge Scheduler schedules whose rate follows the settings (empty: not managed here).
    collect_schedule_name: str = Field(default="", alias="COLLECT_SCHEDULE_NAME")
    reconcile_schedule_name: str = Field(default="", alias="RECONCILE_SCHEDULE_NAME")
    schedule_group_name: str = Field(default="default", alias="SCHEDULE_GROUP_NAME")
    #: The dashboard's origin (https://<distribution>.cloudfront.net): the only one CORS allows;
    #: empty (local mode: same origin) turns CORS off.
    dashboard_origin: str = Field(default="", alias="DASHBOARD_ORIGIN")
    metrics_sample_ttl_hours: int = Field(default=24, alias="METRICS_SAMPLE_TTL_HOURS", ge=1)
    # --- live updates (WebSocket functions and the stream broadcaster) ---
    connections_table: str = Field(default="cmlcm-connections", alias="CONNECTIONS_TABLE")
    subscriptions_table: str = Field(default="cmlcm-subscriptions", alias="SUBSCRIPTIONS_TABLE")
    #: The WebSocket stage's @connections endpoint (https://<api>.execute-api.<region>.amazonaws.com/<stage>).
    websocket_callback_url: str = Field(default="", alias="WEBSOCKET_CALLBACK_URL")
    #: The custom EventBridge bus (name or ARN) the broadcaster puts domain events on.
    event_bus_name: str = Field(default="", alias="EVENT_BUS_NAME")
    #: The Cognito user pool's issuer (https://cognito-idp.<region>.amazonaws.com/<pool id>) and app client.
    cognito_issuer: str = Field(default="", alias="COGNITO_ISSUER")
    cognito_client_id: str = Field(default="", alias="COGNITO_CLIENT_ID")

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(r.strip() for r in self.supported_regions.split(",") if r.strip())


@lru_cache(maxsize=1)
def get_config() -> FunctionConfig:
    """The config of this process, read once (tests call `get_config.cache_clear()`)."""
    return FunctionConfig()
