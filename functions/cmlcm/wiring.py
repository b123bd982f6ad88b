"""Composition root: real adapters built from the function's environment, once per cold start.

Handlers (API and Step Functions tasks) get their ports from here; tests and the local mode
swap them with `override_*`. Nothing below the handlers imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Generic, TypeVar

from cmlcm.adapters.cloudwatch import CloudWatchGateway
from cmlcm.adapters.collect_runs import S3CollectRuns
from cmlcm.adapters.dynamo import DynamoSettingsRepository, DynamoWorkerRepository
from cmlcm.adapters.ec2 import Ec2Gateway
from cmlcm.adapters.job_runs import AwsJobStarter
from cmlcm.adapters.operations import (
    DynamoJobRepository,
    DynamoRefreshLimiter,
    DynamoReservations,
    DynamoSampleRepository,
)
from cmlcm.adapters.schedule_store import DynamoScheduleRepository
from cmlcm.adapters.schedules import EventBridgeSchedules
from cmlcm.adapters.workflows import StepFunctionsStarter
from cmlcm.config import get_settings
from cmlcm.ports import JobRepository, RefreshLimiter
from cmlcm.services.collect import CollectPorts
from cmlcm.services.jobs import COLLECT_JOB, RECONCILE_JOB
from cmlcm.services.labs import LabPorts
from cmlcm.services.licences import LicencePorts
from cmlcm.services.policy import PolicyPorts
from cmlcm.services.provisioning import ProvisionPorts
from cmlcm.services.workers import WorkerPorts

if TYPE_CHECKING:
    from cmlcm.adapters.cml.probe import FleetProbe
    from cmlcm.adapters.connections_api import ApiGatewayConnections
    from cmlcm.adapters.event_bus import EventBridgeBus
    from cmlcm.adapters.subscriptions import DynamoConnectionStore
    from cmlcm.adapters.tokens import CognitoTokenVerifier


@dataclass(frozen=True)
class OpsPorts:
    jobs: JobRepository
    refresh_limiter: RefreshLimiter


AdapterT = TypeVar("AdapterT")


class _PerRegion(Generic[AdapterT]):
    """Caches one adapter per region (a boto3 client each)."""

    def __init__(self, factory: Callable[[str], AdapterT]) -> None:
        self._factory = factory
        self._made: dict[str, AdapterT] = {}

    def __call__(self, region: str) -> AdapterT:
        if region not in self._made:
            self._made[region] = self._factory(region)
        return self._made[region]


@lru_cache(maxsize=1)
def ec2_for() -> _PerRegion[Ec2Gateway]:
    return _PerRegion(Ec2Gateway)


@lru_cache(maxsize=1)
def worker_ports() -> WorkerPorts:
    settings = get_settings()
    return WorkerPorts(
        workers=DynamoWorkerRepository(settings.workers_table, settings.aws_region),
        settings=DynamoSettingsRepository(settings.operations_table, settings.aws_region),
        ec2_for=ec2_for(),
        release_name=DynamoReservations(settings.operations_table, settings.aws_region).release_name,
    )


@lru_cache(maxsize=1)
def ops_ports() -> OpsPorts:
    settings = get_settings()
    return OpsPorts(
        jobs=DynamoJobRepository(settings.operations_table, settings.aws_region),
        refresh_limiter=DynamoRefreshLimiter(settings.operations_table, settings.aws_region),
    )


@lru_cache(maxsize=1)
def cml_probe() -> FleetProbe:
    """The CML client stack, built once per process: every port set shares its credentials
    (one GetSecretValue per cold start) and token cache."""
    from cmlcm.adapters.cml.probe import fleet_probe

    return fleet_probe(get_settings())


@lru_cache(maxsize=1)
def collect_ports() -> CollectPorts:
    settings = get_settings()
    return CollectPorts(
        workers=worker_ports().workers,
        samples=DynamoSampleRepository(
            settings.metrics_table, settings.aws_region, ttl=timedelta(hours=settings.metrics_sample_ttl_hours)
        ),
        ec2_for=ec2_for(),
        cloudwatch_for=_PerRegion(CloudWatchGateway),
        cml=cml_probe(),
        cml_concurrency=settings.cml_concurrency,
        settings=worker_ports().settings,
        schedules=policy_ports().schedules,
        labs=lab_ports().labs,
    )


@lru_cache(maxsize=1)
def policy_ports() -> PolicyPorts:
    """Schedules and the idle policy (API reads; the collection applies them)."""
    settings = get_settings()
    return PolicyPorts(
        workers=worker_ports().workers,
        settings=worker_ports().settings,
        ec2_for=ec2_for(),
        schedules=DynamoScheduleRepository(settings.operations_table, settings.aws_region),
    )


@lru_cache(maxsize=1)
def provision_ports() -> ProvisionPorts:
    settings = get_settings()
    return ProvisionPorts(
        workers=worker_ports().workers,
        settings=worker_ports().settings,
        ec2_for=ec2_for(),
        reservations=DynamoReservations(settings.operations_table, settings.aws_region),
        workflow=StepFunctionsStarter(settings.provision_state_machine_arn, settings.aws_region),
        cml=cml_probe(),
    )


@lru_cache(maxsize=1)
def lab_ports() -> LabPorts:
    from cmlcm.adapters.labs_repo import DynamoLabRepository

    settings = get_settings()
    return LabPorts(
        workers=worker_ports().workers,
        labs=DynamoLabRepository(settings.labs_table, settings.aws_region),
        cml=cml_probe(),
    )


@lru_cache(maxsize=1)
def licence_ports() -> LicencePorts:
    from cmlcm.adapters.licence_tokens import SecretsManagerTokenStore

    settings = get_settings()
    return LicencePorts(
        workers=worker_ports().workers, tokens=SecretsManagerTokenStore(settings.aws_region), cml=cml_probe()
    )


@lru_cache(maxsize=1)
def collect_runs() -> S3CollectRuns:
    settings = get_settings()
    return S3CollectRuns(settings.collect_runs_bucket, settings.aws_region)


@lru_cache(maxsize=1)
def schedules() -> EventBridgeSchedules:
    settings = get_settings()
    names = {COLLECT_JOB: settings.collect_schedule_name, RECONCILE_JOB: settings.reconcile_schedule_name}
    return EventBridgeSchedules(settings.aws_region, names, settings.schedule_group_name)


@lru_cache(maxsize=1)
def job_starter() -> AwsJobStarter:
    """Starts a job's run for the jobs API (the collection state machine, the reconciler)."""
    settings = get_settings()
    return AwsJobStarter(
        collect_state_machine_arn=settings.collect_state_machine_arn,
        reconcile_function=settings.reconcile_function_name,
        region=settings.aws_region,
    )


@lru_cache(maxsize=1)
def connection_store() -> DynamoConnectionStore:
    """Connection and subscription records (WebSocket functions and the broadcaster)."""
    from cmlcm.adapters.subscriptions import DynamoConnectionStore

    settings = get_settings()
    return DynamoConnectionStore(settings.connections_table, settings.subscriptions_table, settings.aws_region)


@lru_cache(maxsize=1)
def connection_poster() -> ApiGatewayConnections:
    """The @connections client of the WebSocket stage (one per process: keeps its HTTPS pool)."""
    from cmlcm.adapters.connections_api import ApiGatewayConnections

    settings = get_settings()
    if not settings.websocket_callback_url:
        raise RuntimeError("WEBSOCKET_CALLBACK_URL is not set: nowhere to post live updates")
    return ApiGatewayConnections(settings.websocket_callback_url, settings.aws_region)


@lru_cache(maxsize=1)
def event_bus() -> EventBridgeBus:
    """The custom EventBridge bus the broadcaster puts domain events on (one client per process)."""
    from cmlcm.adapters.event_bus import EventBridgeBus

    settings = get_settings()
    if not settings.event_bus_name:
        raise RuntimeError("EVENT_BUS_NAME is not set: nowhere to put domain events")
    return EventBridgeBus(settings.event_bus_name, settings.aws_region)


@lru_cache(maxsize=1)
def token_verifier() -> CognitoTokenVerifier:
    """Verifies `$connect` tokens against the user pool's JWKS (keys cached per process)."""
    from cmlcm.adapters.tokens import CognitoTokenVerifier

    settings = get_settings()
    return CognitoTokenVerifier(settings.cognito_issuer, settings.cognito_client_id)


def reset() -> None:
    """Forget every built adapter (tests that change the environment or the moto backend)."""
    for cached in (
        ec2_for,
        cml_probe,
        worker_ports,
        ops_ports,
        collect_ports,
        policy_ports,
        provision_ports,
        schedules,
        job_starter,
        collect_runs,
        lab_ports,
        licence_ports,
        connection_store,
        connection_poster,
        event_bus,
        token_verifier,
    ):
        # A test may have replaced one of these with a plain function.
        getattr(cached, "cache_clear", lambda: None)()
