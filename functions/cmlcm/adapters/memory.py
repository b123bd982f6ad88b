"""In-memory twins of the repositories, with the same semantics (locking, paging, errors).

Used by unit tests and benchmarks that isolate the service from DynamoDB. A contract test runs
the same cases against these and the DynamoDB adapters, so the twins cannot drift.
"""

from __future__ import annotations

import builtins
import math
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from cmlcm.adapters.dynamo import decode_token, encode_token
from cmlcm.domain.errors import ConcurrentModification, Conflict, NotFound, RateLimited
from cmlcm.domain.jobs import JobControl, JobHeartbeat
from cmlcm.domain.schedules import Schedule
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import Worker, WorkerStatus, WorkerSummary
from cmlcm.ports import Page, ScheduleState, WorkerQuery


class InMemoryWorkerRepository:
    def __init__(self) -> None:
        self._items: dict[str, Worker] = {}
        self._lock = threading.Lock()
        #: Write requests made, for tests and benchmarks that count writes.
        self.writes = 0

    def get(self, worker_id: str) -> Worker:
        try:
            return self._items[worker_id]
        except KeyError:
            raise NotFound(f"worker {worker_id} not found", field="worker_id") from None

    def find_by_instance_id(self, instance_id: str) -> Worker | None:
        return next((w for w in self._items.values() if w.instance_id == instance_id), None)

    def get_many(self, worker_ids: Sequence[str]) -> list[Worker]:
        return [self._items[k] for k in dict.fromkeys(worker_ids) if k in self._items]

    def add(self, worker: Worker) -> Worker:
        with self._lock:
            if worker.worker_id in self._items:
                raise Conflict(f"worker {worker.worker_id} already exists", field="worker_id")
            stored = worker.model_copy(update={"version": 1})
            self._items[worker.worker_id] = stored
            self.writes += 1
            return stored

    def save(self, worker: Worker) -> Worker:
        if worker.version < 1:
            raise ValueError("save() takes a stored worker; use add() for a new one")
        with self._lock:
            current = self._items.get(worker.worker_id)
            if current is None or current.version != worker.version:
                raise ConcurrentModification(f"worker {worker.worker_id} was changed by someone else", field="version")
            stored = worker.model_copy(update={"version": worker.version + 1})
            self._items[worker.worker_id] = stored
            self.writes += 1
            return stored

    def save_many(self, workers: Sequence[Worker]) -> tuple[list[Worker], list[tuple[Worker, Exception]]]:
        saved: list[Worker] = []
        failed: list[tuple[Worker, Exception]] = []
        for worker in workers:
            try:
                saved.append(self.save(worker))
            except ConcurrentModification as exc:
                failed.append((worker, exc))
        return saved, failed

    def delete(self, worker_id: str) -> None:
        with self._lock:
            if self._items.pop(worker_id, None) is None:
                raise NotFound(f"worker {worker_id} not found", field="worker_id")
            self.writes += 1

    def list(self, query: WorkerQuery) -> Page[Worker]:
        start = decode_token(query.next_token)
        after = start["worker_id"]["S"] if start and "worker_id" in start else ""
        include_terminated = query.include_terminated or query.status == WorkerStatus.TERMINATED
        matching = [
            w
            for _, w in sorted(self._items.items())
            if w.worker_id > after
            and (include_terminated or w.is_active)
            and (query.status is None or w.status == query.status)
            and (query.region is None or w.region == query.region)
        ]
        page = matching[: query.limit]
        more = len(matching) > query.limit
        token = encode_token({"worker_id": {"S": page[-1].worker_id}}) if more and page else None
        return Page(items=page, next_token=token)

    def iter_active(self) -> Iterator[Worker]:
        yield from (w for _, w in sorted(self._items.items()) if w.is_active)

    def active_ids(self) -> builtins.list[str]:  # `list` is the method above here
        return [w.worker_id for w in self.iter_active()]

    def iter_active_summaries(self) -> Iterator[WorkerSummary]:
        yield from (WorkerSummary.of(w) for w in self.iter_active())


class InMemorySettingsRepository:
    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings or Settings()

    def get(self) -> Settings:
        return self._settings

    def save(self, settings: Settings) -> Settings:
        if settings.version != self._settings.version:
            raise ConcurrentModification("settings were changed by someone else", field="version")
        self._settings = settings.model_copy(update={"version": settings.version + 1})
        return self._settings


class InMemoryScheduleRepository:
    """Same rules as `DynamoScheduleRepository`: unique names, version-guarded saves."""

    def __init__(self, schedules: Sequence[Schedule] = ()) -> None:
        self._items: dict[str, Schedule] = {}
        for schedule in schedules:
            self.add(schedule)

    def list(self) -> builtins.list[Schedule]:
        return [self._items[name] for name in sorted(self._items)]

    def get(self, name: str) -> Schedule:
        try:
            return self._items[name]
        except KeyError:
            raise NotFound(f"no schedule named {name!r}", field="name") from None

    def add(self, schedule: Schedule) -> Schedule:
        if schedule.name in self._items:
            raise Conflict(f"a schedule named {schedule.name!r} already exists", field="name")
        stored = schedule.model_copy(update={"version": 1})
        self._items[schedule.name] = stored
        return stored

    def save(self, schedule: Schedule) -> Schedule:
        current = self._items.get(schedule.name)
        if current is None:
            raise NotFound(f"no schedule named {schedule.name!r}", field="name")
        if current.version != schedule.version:
            raise ConcurrentModification(f"schedule {schedule.name!r} was changed by someone else", field="version")
        stored = schedule.model_copy(update={"version": schedule.version + 1})
        self._items[schedule.name] = stored
        return stored

    def delete(self, name: str) -> None:
        if self._items.pop(name, None) is None:
            raise NotFound(f"no schedule named {name!r}", field="name")


class InMemoryJobRepository:
    def __init__(self) -> None:
        self._beats: dict[str, JobHeartbeat] = {}
        #: job → (run id, lease end)
        self._leases: dict[str, tuple[str, datetime]] = {}
        self._controls: dict[str, JobControl] = {}

    def get(self, job: str) -> JobHeartbeat | None:
        return self._beats.get(job)

    def put(self, heartbeat: JobHeartbeat) -> None:
        self._beats[heartbeat.job] = heartbeat

    def claim_lease(self, job: str, run_id: str, *, now: datetime, until: datetime) -> str | None:
        held = self._leases.get(job)
        if held is not None and held[1] > now and held[0] != run_id:
            return held[0]
        self._leases[job] = (run_id, until)
        return None

    def release_lease(self, job: str, run_id: str) -> None:
        if self._leases.get(job, ("", None))[0] == run_id:
            del self._leases[job]

    def get_control(self, job: str) -> JobControl | None:
        return self._controls.get(job)

    def put_control(self, control: JobControl) -> None:
        self._controls[control.job] = control


class InMemoryRefreshLimiter:
    """Same rule as the DynamoDB limiter: one refresh per worker per interval."""

    def __init__(self) -> None:
        self._not_before: dict[str, datetime] = {}

    def acquire(self, worker_id: str, *, now: datetime, min_interval: timedelta) -> None:
        not_before = self._not_before.get(worker_id)
        if not_before is not None and now < not_before:
            wait = max(1, math.ceil((not_before - now).total_seconds()))
            raise RateLimited(
                f"worker {worker_id} was refreshed moments ago; try again in {wait} s", retry_after_seconds=wait
            )
        self._not_before[worker_id] = now + min_interval


class InMemoryJobSchedules:
    """Twin of `EventBridgeSchedules` for the jobs API: named schedules with a State and a rate;
    jobs without a schedule answer None/False as a deployment without them does."""

    def __init__(self, names: dict[str, str], *, minutes: dict[str, int] | None = None) -> None:
        self.names = dict(names)
        self.enabled = {job: True for job in names}
        self.minutes = dict(minutes or {})
        #: UpdateSchedule calls made (a call that would change nothing is not made).
        self.updates = 0

    def describe(self, job: str) -> ScheduleState | None:
        if job not in self.names:
            return None
        minutes = self.minutes.get(job)
        expression = None if minutes is None else f"rate({minutes} minute{'s' if minutes != 1 else ''})"
        return ScheduleState(name=self.names[job], enabled=self.enabled[job], expression=expression)

    def set_enabled(self, job: str, enabled: bool) -> bool:
        if job not in self.names:
            return False
        if self.enabled[job] != enabled:
            self.enabled[job] = enabled
            self.updates += 1
        return True

    def set_interval(self, job: str, minutes: int) -> bool:
        if job not in self.names:
            return False
        self.minutes[job] = minutes
        return True


class InMemoryJobStarter:
    """Twin of `AwsJobStarter`: records the runs it starts (a run id like the real one), or
    fails with `failure` as StartExecution/Invoke would."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.started: list[tuple[str, str, str | None]] = []
        self.failure = failure

    def run_id(self, job: str, name: str) -> str:
        return f"{job}:{name}"

    def start(self, job: str, name: str, *, by: str | None) -> str:
        if self.failure is not None:
            raise self.failure
        self.started.append((job, name, by))
        return self.run_id(job, name)
