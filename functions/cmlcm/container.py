"""Composition root: one frozen container of every port, built once per cold start from the
function's environment (`FunctionConfig`).

Each port is a lazily built property: a function builds (and imports) only the adapters it uses,
once. Port bundles (`cmlcm.ports.bundles`) are projections of the container by field name
(`container.ports(WorkerPorts)`), so a new port is a protocol in `cmlcm.ports` and one property
here. Tests and the local mode have one override: `use(container)` installs theirs (usually the
real one with some ports swapped, `Container(config).with_ports(workers=twin)`), `use(None)`
forgets it and the next `current()` builds it again from the environment.

Handlers are the only callers: nothing below them imports this module.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cmlcm.config import FunctionConfig, get_config
from cmlcm.ports import (
    CloudWatchPort,
    CollectRuns,
    ConnectionPoster,
    ConnectionStore,
    Ec2Port,
    EventBus,
    JobRepository,
    JobSchedules,
    JobStarter,
    LabRepository,
    LicenceTokenStore,
    RefreshLimiter,
    Reservations,
    SampleRepository,
    ScheduleRepository,
    SettingsRepository,
    TokenVerifier,
    WorkerRepository,
    WorkflowStarter,
)

if TYPE_CHECKING:
    from cmlcm.adapters.cml.probe import FleetProbe

AdapterT = TypeVar("AdapterT")
BundleT = TypeVar("BundleT")


def utc_now() -> datetime:
    """The edge owns the clock: services get `now` as an argument."""
    return datetime.now(UTC)


class PerRegion(Generic[AdapterT]):
    """One adapter per region (a boto3 client each), made on first use."""

    def __init__(self, factory: Callable[[str], AdapterT]) -> None:
        self._factory = factory
        self._made: dict[str, AdapterT] = {}

    def __call__(self, region: str) -> AdapterT:
        if region not in self._made:
            self._made[region] = self._factory(region)
        return self._made[region]


@dataclasses.dataclass(frozen=True)
class Container:
    """Every port of the product. Frozen: a test swaps ports by making another one (`with_ports`)."""

    config: FunctionConfig
    clock: Callable[[], datetime] = utc_now

    def now(self) -> datetime:
        return self.clock()

    def new_worker_id(self) -> str:
        """Ids are made at the edge, like time: services take them as arguments."""
        return f"w-{uuid.uuid4().hex[:17]}"

    def new_run_name(self) -> str:
        """The name of a run started by hand (execution name, reconciler run id)."""
        return f"manual-{uuid.uuid4().hex}"

    # --- storage (DynamoDB tables, S3, Secrets Manager) ---

    @cached_property
    def workers(self) -> WorkerRepository:
        from cmlcm.adapters.dynamo import DynamoWorkerRepository

        return DynamoWorkerRepository(self.config.workers_table, self.config.aws_region)

    @cached_property
    def settings(self) -> SettingsRepository:
        """The fleet settings document (not the function's config)."""
        from cmlcm.adapters.operations import DynamoSettingsRepository

        return DynamoSettingsRepository(self.config.operations_table, self.config.aws_region)

    @cached_property
    def schedules(self) -> ScheduleRepository:
        from cmlcm.adapters.schedule_store import DynamoScheduleRepository

        return DynamoScheduleRepository(self.config.operations_table, self.config.aws_region)

    @cached_property
    def labs(self) -> LabRepository:
        from cmlcm.adapters.labs_repo import DynamoLabRepository

        return DynamoLabRepository(self.config.labs_table, self.config.aws_region)

    @cached_property
    def samples(self) -> SampleRepository:
        from cmlcm.adapters.samples import DynamoSampleRepository

        ttl = timedelta(hours=self.config.metrics_sample_ttl_hours)
        return DynamoSampleRepository(self.config.metrics_table, self.config.aws_region, ttl=ttl)

    @cached_property
    def jobs(self) -> JobRepository:
        from cmlcm.adapters.operations import DynamoJobRepository

        return DynamoJobRepository(self.config.operations_table, self.config.aws_region)

    @cached_property
    def refresh_limiter(self) -> RefreshLimiter:
        from cmlcm.adapters.operations import DynamoRefreshLimiter

        return DynamoRefreshLimiter(self.config.operations_table, self.config.aws_region)

    @cached_property
    def reservations(self) -> Reservations:
        from cmlcm.adapters.operations import DynamoReservations

        return DynamoReservations(self.config.operations_table, self.config.aws_region)

    @cached_property
    def release_name(self) -> Callable[[str], None] | None:
        """Releases a deleted worker's unique name (what `WorkerPorts` takes of the reservations)."""
        return self.reservations.release_name

    @cached_property
    def tokens(self) -> LicenceTokenStore:
        from cmlcm.adapters.licence_tokens import SecretsManagerTokenStore

        return SecretsManagerTokenStore(self.config.aws_region)

    @cached_property
    def collect_runs(self) -> CollectRuns:
        from cmlcm.adapters.collect_runs import S3CollectRuns

        return S3CollectRuns(self.config.collect_runs_bucket, self.config.aws_region)

    # --- AWS services ---

    @cached_property
    def ec2_for(self) -> Callable[[str], Ec2Port]:
        from cmlcm.adapters.ec2 import Ec2Gateway

        return PerRegion(Ec2Gateway)

    @cached_property
    def cloudwatch_for(self) -> Callable[[str], CloudWatchPort]:
        from cmlcm.adapters.cloudwatch import CloudWatchGateway

        return PerRegion(CloudWatchGateway)

    @cached_property
    def workflow(self) -> WorkflowStarter:
        from cmlcm.adapters.workflows import StepFunctionsStarter

        return StepFunctionsStarter(self.config.provision_state_machine_arn, self.config.aws_region)

    @cached_property
    def job_schedules(self) -> JobSchedules:
        """The jobs' schedules: their state (`JobSchedules`) and their rate (`ScheduleRates`)."""
        from cmlcm.adapters.schedules import EventBridgeSchedules
        from cmlcm.domain.jobs import COLLECT_JOB, RECONCILE_JOB

        names = {COLLECT_JOB: self.config.collect_schedule_name, RECONCILE_JOB: self.config.reconcile_schedule_name}
        return EventBridgeSchedules(self.config.aws_region, names, self.config.schedule_group_name)

    @cached_property
    def job_starter(self) -> JobStarter:
        """Starts a job's run for the jobs API (the collection state machine, the reconciler)."""
        from cmlcm.adapters.job_runs import AwsJobStarter

        return AwsJobStarter(
            collect_state_machine_arn=self.config.collect_state_machine_arn,
            reconcile_function=self.config.reconcile_function_name,
            region=self.config.aws_region,
        )

    # --- CML ---

    @cached_property
    def cml(self) -> FleetProbe:
        """The CML client stack: every use shares its credentials (one GetSecretValue per cold
        start) and token cache. A `CmlProbe` for the collection, `CmlControllers` for the API."""
        from cmlcm.adapters.cml.probe import fleet_probe

        return fleet_probe(self.config)

    @cached_property
    def cml_concurrency(self) -> int:
        """Most CML controllers read at once by one collector."""
        return self.config.cml_concurrency

    # --- live updates ---

    @cached_property
    def connections(self) -> ConnectionStore:
        """Connection and subscription records (WebSocket functions and the broadcaster)."""
        from cmlcm.adapters.subscriptions import DynamoConnectionStore

        config = self.config
        return DynamoConnectionStore(config.connections_table, config.subscriptions_table, config.aws_region)

    @cached_property
    def poster(self) -> ConnectionPoster:
        """The @connections client of the WebSocket stage (keeps its HTTPS pool)."""
        from cmlcm.adapters.connections_api import ApiGatewayConnections

        if not self.config.websocket_callback_url:
            raise RuntimeError("WEBSOCKET_CALLBACK_URL is not set: nowhere to post live updates")
        return ApiGatewayConnections(self.config.websocket_callback_url, self.config.aws_region)

    @cached_property
    def bus(self) -> EventBus:
        """The custom EventBridge bus the broadcaster puts domain events on."""
        from cmlcm.adapters.event_bus import EventBridgeBus

        if not self.config.event_bus_name:
            raise RuntimeError("EVENT_BUS_NAME is not set: nowhere to put domain events")
        return EventBridgeBus(self.config.event_bus_name, self.config.aws_region)

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        """Verifies `$connect` tokens against the user pool's JWKS (keys cached per process)."""
        from cmlcm.adapters.tokens import CognitoTokenVerifier

        return CognitoTokenVerifier(self.config.cognito_issuer, self.config.cognito_client_id)

    # --- bundles and overrides ---

    def ports(self, bundle: type[BundleT], **extra: Any) -> BundleT:
        """The bundle with each field taken from the port of the same name (a field without one
        keeps its default; `extra` gives the rest, e.g. a handler's view functions)."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(bundle) if f.name in PORT_NAMES}  # type: ignore[arg-type]
        return bundle(**{**given, **extra})

    def with_ports(self, *, clock: Callable[[], datetime] | None = None, **ports: object) -> Container:
        """A copy with some ports (or the clock) swapped, for tests; the ports already built are
        shared, the others are built as usual."""
        unknown = set(ports) - PORT_NAMES
        if unknown:
            raise TypeError(f"the container has no port {', '.join(sorted(unknown))}")
        made = dataclasses.replace(self, clock=clock or self.clock)
        made.__dict__.update({name: port for name, port in self.__dict__.items() if name in PORT_NAMES})
        made.__dict__.update(ports)  # where cached_property keeps its value: read back as built
        return made


#: Every port of the container (its lazily built properties; `config` and `clock` are fields).
PORT_NAMES = frozenset(name for name, value in vars(Container).items() if isinstance(value, cached_property))

_current: Container | None = None


def current() -> Container:
    """This process's container, built from the environment on first use."""
    global _current
    if _current is None:
        _current = Container(get_config())
    return _current


def use(container: Container | None) -> None:
    """The one override (tests, local mode): install `container`; None forgets the installed one
    and the config it was built from, so the next `current()` reads the environment again."""
    global _current
    _current = container
    if container is None:
        get_config.cache_clear()
