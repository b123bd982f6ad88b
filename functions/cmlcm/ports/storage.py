"""Storage ports: the tables and stores the services read and write (DynamoDB, S3, Secrets
Manager in `cmlcm.adapters`; in-memory twins beside them)."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from cmlcm.domain.jobs import MetricSample
from cmlcm.domain.labs import Lab
from cmlcm.domain.schedules import Schedule
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import Worker, WorkerStatus, WorkerSummary

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

    def iter_active_summaries(self) -> Iterator[WorkerSummary]:
        """`iter_active()` as fleet-list summaries: a projection of the stored items (the fleet
        snapshot reads only what the list shows)."""


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


class SampleRepository(Protocol):
    def put_many(self, samples: Sequence[MetricSample]) -> int: ...

    def recent(self, worker_id: str, *, since: datetime, limit: int = 500) -> list[MetricSample]:
        """The worker's samples since `since`, oldest first."""


class RefreshLimiter(Protocol):
    def acquire(self, worker_id: str, *, now: datetime, min_interval: timedelta) -> None:
        """Return if a refresh may run now, else raise `RateLimited` with the wait."""


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


class Reservations(Protocol):
    """Unique worker names and Idempotency-Keys (conditional writes in the operations table)."""

    def claim_name(self, name: str, worker_id: str) -> None: ...

    def release_name(self, name: str) -> None: ...

    def name_owner(self, name: str) -> str | None: ...

    def claim_idempotency(
        self, key: str, *, request_hash: str, worker_id: str, now: datetime
    ) -> tuple[str, str] | None: ...

    def release_idempotency(self, key: str) -> None: ...
