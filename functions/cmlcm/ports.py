"""Ports: what services need from storage and the outside world. Adapters implement them with
PynamoDB/boto3/httpx; tests pass the in-memory twins in `cmlcm.adapters.memory`."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from cmlcm.domain.cml import CmlReading, LabGroup, ReadPlan
from cmlcm.domain.errors import ExternalServiceError
from cmlcm.domain.jobs import JobControl, JobHeartbeat, MetricSample
from cmlcm.domain.labs import Lab
from cmlcm.domain.schedules import Schedule
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import Worker, WorkerStatus

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; `next_token` is opaque to callers (None on the last page)."""

    items: list[T]
    next_token: str | None = None


@dataclass(frozen=True)
class WorkerQuery:
    status: WorkerStatus | None = None
    region: str | None = None
    include_terminated: bool = False
    limit: int = 50
    next_token: str | None = None


class WorkerRepository(Protocol):
    def get(self, worker_id: str) -> Worker:
        """The worker, or `NotFound`."""

    def find_by_instance_id(self, instance_id: str) -> Worker | None: ...

    def get_many(self, worker_ids: Sequence[str]) -> list[Worker]:
        """The workers that exist among `worker_ids` (BatchGetItem, 100 keys a request)."""

    def add(self, worker: Worker) -> Worker:
        """Store a new worker (version 0 → 1); `Conflict` if the id exists."""

    def save(self, worker: Worker) -> Worker:
        """Store a changed worker if nobody wrote it since it was read (`ConcurrentModification`
        otherwise); returns it with the new version."""

    def save_many(self, workers: Sequence[Worker]) -> tuple[list[Worker], list[tuple[Worker, Exception]]]:
        """Save several workers with the same locking as `save`; returns (saved, failed)."""

    def delete(self, worker_id: str) -> None: ...

    def list(self, query: WorkerQuery) -> Page[Worker]: ...

    def iter_active(self) -> Iterator[Worker]:
        """Every non-terminated worker, read from the sparse active index (never a scan)."""

    def active_ids(self) -> builtins.list[str]:  # `list` is the method above here
        """Just the ids of `iter_active()` (what the collection plan needs)."""


class SettingsRepository(Protocol):
    def get(self) -> Settings: ...

    def save(self, settings: Settings) -> Settings:
        """Optimistically locked like workers (`ConcurrentModification` on a lost race)."""


class ScheduleRepository(Protocol):
    """Named schedules (office hours), optimistically locked like the settings."""

    def list(self) -> builtins.list[Schedule]:
        """Every schedule, by name."""

    def get(self, name: str) -> Schedule:
        """The schedule, or `NotFound`."""

    def add(self, schedule: Schedule) -> Schedule:
        """Store a new schedule (version 0 -> 1); `Conflict` if the name is taken."""

    def save(self, schedule: Schedule) -> Schedule:
        """Store a changed schedule if nobody wrote it since (`ConcurrentModification` otherwise)."""

    def delete(self, name: str) -> None:
        """Remove it, or `NotFound`."""


@dataclass(frozen=True)
class InstanceInfo:
    """What EC2 says about one instance, reduced to what the product uses."""

    instance_id: str
    state: str
    instance_type: str | None = None
    image_id: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    launch_time: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    monitoring: str | None = None


@dataclass(frozen=True)
class ImageInfo:
    """What EC2 says about one AMI, reduced to what a worker records of it."""

    image_id: str
    name: str | None = None
    description: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class InstanceUsage:
    """CloudWatch usage of one instance (None where no datapoint exists)."""

    cpu_percent: float | None = None
    memory_percent: float | None = None


@dataclass(frozen=True)
class LaunchSpec:
    """Everything RunInstances needs for one worker."""

    client_token: str
    ami_id: str
    instance_type: str
    tags: dict[str, str]
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    instance_profile_arn: str | None = None
    key_name: str | None = None
    user_data: str | None = None


@dataclass(frozen=True)
class BulkResult:
    """Outcome of a batched EC2 mutation: ids that succeeded and per-id errors."""

    succeeded: list[str]
    failed: dict[str, ExternalServiceError]


class Ec2Port(Protocol):
    def describe(self, instance_ids: Iterable[str]) -> dict[str, InstanceInfo]:
        """Known instances by id; ids EC2 does not know are simply absent."""

    def start(self, instance_ids: Sequence[str]) -> BulkResult: ...

    def stop(self, instance_ids: Sequence[str]) -> BulkResult: ...

    def terminate(self, instance_ids: Sequence[str]) -> BulkResult: ...

    def set_tags(self, instance_id: str, *, add: dict[str, str], remove: Iterable[str]) -> None: ...

    def enable_detailed_monitoring(self, instance_id: str) -> None: ...

    def status_checks(self, instance_ids: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        """(system status, instance status) per id."""

    def launch(self, spec: LaunchSpec) -> InstanceInfo: ...

    def find_by_tag(self, key: str, value: str, *, include_terminated: bool = False) -> list[InstanceInfo]: ...

    def find_by_ami_name(self, pattern: str) -> list[InstanceInfo]: ...

    def image_names(self, image_ids: Iterable[str]) -> dict[str, str]: ...

    def images(self, image_ids: Iterable[str]) -> dict[str, ImageInfo]:
        """The known images among `image_ids` (unknown ids are simply absent)."""

    def find_images(self, name_pattern: str) -> list[ImageInfo]:
        """Images whose name matches `name_pattern` (EC2 wildcards `*` and `?`)."""


class CmlReader(Protocol):
    """Reads workers' CML controllers within one session; raises a `CmlError` (an
    ExternalServiceError) on a fault of that worker."""

    async def read(self, worker: Worker, plan: ReadPlan = ...) -> CmlReading:
        """What `plan` asks for (by default everything: `FULL_READ`)."""

    async def ready(self, worker: Worker) -> bool:
        """Whether CML reports `ready` (unauthenticated system_information)."""


class CmlProbe(Protocol):
    def session(self) -> AbstractAsyncContextManager[CmlReader]:
        """One connection pool for many workers, closed on exit (one per event loop)."""


class CloudWatchPort(Protocol):
    def instance_usage(self, instance_ids: Iterable[str], *, now: datetime) -> dict[str, InstanceUsage]: ...


class SampleRepository(Protocol):
    def put_many(self, samples: Sequence[MetricSample]) -> int: ...

    def recent(self, worker_id: str, *, since: datetime, limit: int = 500) -> list[MetricSample]:
        """The worker's samples since `since`, oldest first."""


class RefreshLimiter(Protocol):
    def acquire(self, worker_id: str, *, now: datetime, min_interval: timedelta) -> None:
        """Return if a refresh may run now, else raise `RateLimited` with the wait."""


class JobRepository(Protocol):
    def get(self, job: str) -> JobHeartbeat | None: ...

    def put(self, heartbeat: JobHeartbeat) -> None: ...

    def claim_lease(self, job: str, run_id: str, *, now: datetime, until: datetime) -> str | None:
        """Take the job's run lease for `run_id` until `until`, atomically (a conditional write):
        granted when nobody holds it, when it expired, or when `run_id` already holds it (a retried
        task). Returns None when granted, else the run id that holds it."""

    def release_lease(self, job: str, run_id: str) -> None:
        """Give the lease back if `run_id` still holds it (a later run's lease is left alone)."""

    def get_control(self, job: str) -> JobControl | None:
        """The administrator's pause decision for `job` (None: never paused or resumed)."""

    def put_control(self, control: JobControl) -> None: ...


@dataclass(frozen=True)
class ScheduleState:
    """A job's EventBridge schedule as Scheduler reports it."""

    name: str
    enabled: bool
    expression: str | None = None


class JobSchedules(Protocol):
    """The jobs' schedules (EventBridge Scheduler on AWS, moto's Scheduler locally)."""

    def describe(self, job: str) -> ScheduleState | None:
        """The job's schedule, or None when this deployment has no schedule for it."""

    def set_enabled(self, job: str, enabled: bool) -> bool:
        """Set the schedule's State (ENABLED/DISABLED), keeping the rest; False when none."""


class JobStarter(Protocol):
    """Starts one run of a job outside its schedule (the collection state machine, the
    reconciler function), as its schedule would, marked manual."""

    def run_id(self, job: str, name: str) -> str:
        """The run id the run named `name` will take its lease with (known before it starts)."""

    def start(self, job: str, name: str, *, by: str | None) -> str:
        """Start it (asynchronously); returns the run id."""


class CollectRuns(Protocol):
    """Where a collection run keeps its batches and their outcomes (not in the state's payload)."""

    def put_batches(self, run: str, batches: Sequence[Sequence[str]]) -> str:
        """Store the run's batches of worker ids; returns the key the Map's ItemReader reads."""

    def batches(self, run: str) -> list[list[str]]: ...

    def put_result(self, run: str, index: int, outcome: dict[str, Any]) -> None:
        """Store batch `index`'s outcome (a retried batch overwrites its own)."""

    def results(self, run: str) -> dict[int, dict[str, Any]]:
        """Every stored outcome of the run, by batch index."""


# --- labs and licences (one worker's CML controller, driven from the API) ---


class LabRepository(Protocol):
    def list(self, worker_id: str) -> list[Lab]:
        """Every stored lab of the worker (all pages)."""

    def get(self, worker_id: str, lab_id: str) -> Lab | None: ...

    def write(self, puts: Sequence[Lab], deletes: Sequence[Lab]) -> int:
        """Put and delete rows in BatchWriteItem requests (25 a request); returns rows written."""


class LicenceTokenStore(Protocol):
    def store(self, worker_id: str, token: str) -> str:
        """Keep a worker's registration token as a secret (created or updated); returns the
        secret's name: the only thing about the token the product records."""

    def forget(self, worker_id: str) -> bool:
        """Schedule the worker's token secret for deletion; False when there was none."""


class CmlLabDetails(Protocol):
    """One lab as CML reports it (the CML adapter's `LabSummary` has this shape)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def owner_fullname(self) -> str | None: ...
    @property
    def description(self) -> str: ...
    @property
    def notes(self) -> str: ...
    @property
    def groups(self) -> Sequence[LabGroup]: ...
    @property
    def node_count(self) -> int: ...
    @property
    def link_count(self) -> int: ...
    @property
    def created(self) -> datetime | None: ...
    @property
    def modified(self) -> datetime | None: ...


class CmlLicensingDetails(Protocol):
    """`GET /licensing` as the CML adapter flattens it."""

    @property
    def registration_status(self) -> str | None: ...
    @property
    def registration_expires(self) -> str | None: ...
    @property
    def authorization_status(self) -> str | None: ...


class CmlController(Protocol):
    """One worker's CML controller (the adapter's `CmlClient`); faults raise a `CmlError`."""

    async def list_labs(self) -> Sequence[CmlLabDetails]: ...
    async def get_lab(self, lab_id: str) -> CmlLabDetails: ...
    async def start_lab(self, lab_id: str) -> None: ...
    async def stop_lab(self, lab_id: str) -> None: ...
    async def wipe_lab(self, lab_id: str) -> None: ...
    async def delete_lab(self, lab_id: str) -> None: ...
    async def download_lab(self, lab_id: str) -> str: ...
    async def import_lab(self, yaml_text: str, title: str | None = None) -> str: ...
    async def licensing_status(self) -> CmlLicensingDetails: ...
    async def register_licence(self, token: str, reregister: bool = False) -> None: ...

    async def deregister_licence(self) -> str:
        """ "completed", "local_only" or "already_deregistered"."""


class CmlControllerSession(Protocol):
    def client_for(self, worker: Worker) -> CmlController: ...


class CmlControllers(Protocol):
    """The fleet probe seen as a way to reach single controllers (`FleetProbe` fits)."""

    def session(self) -> AbstractAsyncContextManager[CmlControllerSession]: ...
