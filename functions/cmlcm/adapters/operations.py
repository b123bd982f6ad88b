"""Operations-table and metrics-table repositories: job heartbeats, refresh limits, samples.

The operations table is keyed (pk, sk): `JOB/<name>` heartbeats and `REFRESH/<worker id>`
rate-limit markers live beside the settings document, each with a TTL where it is disposable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError
from pynamodb.models import Model

from cmlcm.adapters.dynamo import OperationItem, _is_condition_failure, _plain, bind
from cmlcm.domain.errors import Conflict, RateLimited
from cmlcm.domain.jobs import JobControl, JobHeartbeat, MetricSample

JOB_PK = "JOB"
NAME_PK = "NAME"
IDEMPOTENCY_PK = "IDEMPOTENCY"
RECONCILE_PK = "RECONCILE"
#: How long an Idempotency-Key is remembered.
IDEMPOTENCY_TTL = timedelta(hours=24)
REFRESH_PK = "REFRESH"
#: One run lease per scheduled job (`LEASE/<job>`), apart from the heartbeat: heartbeats are
#: written whole, and must not clobber (or be refused by) the lease.
LEASE_PK = "LEASE"
#: An administrator's pause of a job (`JOBCONTROL/<job>`), apart from the heartbeat for the same reason.
JOB_CONTROL_PK = "JOBCONTROL"


class DynamoJobRepository:
    """Heartbeats of scheduled jobs, so an overdue job is visible on GET /health."""

    def __init__(self, table_name: str, region: str) -> None:
        self._model: type[OperationItem] = bind(OperationItem, table_name, region)

    def get(self, job: str) -> JobHeartbeat | None:
        try:
            item = self._model.get(JOB_PK, job, consistent_read=True)
        except DoesNotExist:
            return None
        return JobHeartbeat.model_validate(_plain(item.data))

    def put(self, heartbeat: JobHeartbeat) -> None:
        item = self._model(JOB_PK, heartbeat.job, data=heartbeat.model_dump(mode="json"))
        item.save(add_version_condition=False)

    def all(self) -> list[JobHeartbeat]:
        return [JobHeartbeat.model_validate(_plain(i.data)) for i in self._model.query(JOB_PK)]

    def claim_lease(self, job: str, run_id: str, *, now: datetime, until: datetime) -> str | None:
        item = self._model(LEASE_PK, job, expires_at=until, data={"run": run_id})
        # TTL deletion is lazy, so an expired lease may still be there: compare, don't just test existence.
        condition = (
            self._model.pk.does_not_exist() | (self._model.expires_at <= now) | (self._model.data["run"] == run_id)
        )
        try:
            item.save(condition=condition, add_version_condition=False)
            return None
        except PutError as exc:
            if not _is_condition_failure(exc):
                raise
        try:
            return str(_plain(self._model.get(LEASE_PK, job, consistent_read=True).data)["run"])
        except DoesNotExist:  # released between the write and the read: say who, not whether
            return "(released just now)"

    def release_lease(self, job: str, run_id: str) -> None:
        try:
            self._model(LEASE_PK, job).delete(condition=self._model.data["run"] == run_id, add_version_condition=False)
        except DeleteError as exc:
            if not _is_condition_failure(exc):
                raise

    def get_control(self, job: str) -> JobControl | None:
        try:
            item = self._model.get(JOB_CONTROL_PK, job, consistent_read=True)
        except DoesNotExist:
            return None
        return JobControl.model_validate(_plain(item.data))

    def put_control(self, control: JobControl) -> None:
        self._model(JOB_CONTROL_PK, control.job, data=control.model_dump(mode="json")).save(add_version_condition=False)


class DynamoRefreshLimiter:
    """At most one on-demand refresh per worker per interval, enforced by a conditional write,
    so it holds across Lambda instances (an in-memory throttle would not)."""

    def __init__(self, table_name: str, region: str) -> None:
        self._model: type[OperationItem] = bind(OperationItem, table_name, region)

    def acquire(self, worker_id: str, *, now: datetime, min_interval: timedelta) -> None:
        not_before = now + min_interval
        item = self._model(REFRESH_PK, worker_id, expires_at=not_before, data={"at": now.isoformat()})
        # TTL deletion is lazy, so an expired marker may still be there: compare, don't just test existence.
        condition = self._model.pk.does_not_exist() | (self._model.expires_at <= now)
        try:
            item.save(condition=condition, add_version_condition=False)
        except PutError as exc:
            if not _is_condition_failure(exc):
                raise
            current = self._model.get(REFRESH_PK, worker_id, consistent_read=True)
            wait = max(1, math.ceil((current.expires_at - now).total_seconds())) if current.expires_at else 1
            raise RateLimited(
                f"worker {worker_id} was refreshed moments ago; try again in {wait} s",
                retry_after_seconds=wait,
            ) from exc


class MetricSampleItem(Model):
    """One point of a worker's short time series (charts); expires by TTL."""

    class Meta:
        table_name = "cmlcm-metrics"
        billing_mode = "PAY_PER_REQUEST"

    worker_id = UnicodeAttribute(hash_key=True)
    ts = NumberAttribute(range_key=True)
    cpu_percent = NumberAttribute(null=True)
    memory_percent = NumberAttribute(null=True)
    labs_running = NumberAttribute(null=True)
    nodes_running = NumberAttribute(null=True)
    expires_at = TTLAttribute()


class DynamoSampleRepository:
    def __init__(self, table_name: str, region: str, *, ttl: timedelta) -> None:
        self._model: type[MetricSampleItem] = bind(MetricSampleItem, table_name, region)
        self._ttl = ttl

    def put_many(self, samples: Sequence[MetricSample]) -> int:
        """BatchWriteItem, 25 items a request (PynamoDB retries unprocessed items)."""
        with self._model.batch_write() as batch:
            for sample in samples:
                batch.save(
                    self._model(
                        sample.worker_id,
                        int(sample.at.timestamp()),
                        cpu_percent=sample.cpu_percent,
                        memory_percent=sample.memory_percent,
                        labs_running=sample.labs_running,
                        nodes_running=sample.nodes_running,
                        expires_at=sample.at + self._ttl,
                    )
                )
        return len(samples)

    def recent(self, worker_id: str, *, since: datetime, limit: int = 500) -> list[MetricSample]:
        items = self._model.query(worker_id, self._model.ts >= int(since.timestamp()), limit=limit)
        return [
            MetricSample(
                worker_id=i.worker_id,
                at=datetime.fromtimestamp(i.ts, UTC),
                cpu_percent=i.cpu_percent,
                memory_percent=i.memory_percent,
                labs_running=int(i.labs_running) if i.labs_running is not None else None,
                nodes_running=int(i.nodes_running) if i.nodes_running is not None else None,
            )
            for i in items
        ]


def create_metrics_table(table_name: str, region: str) -> None:
    bound = bind(MetricSampleItem, table_name, region)
    if not bound.exists():
        bound.create_table(wait=True)


class DynamoReservations:
    """Unique worker names and Idempotency-Keys, claimed with conditional writes."""

    def __init__(self, table_name: str, region: str) -> None:
        self._model: type[OperationItem] = bind(OperationItem, table_name, region)

    def claim_name(self, name: str, worker_id: str) -> None:
        item = self._model(NAME_PK, name.lower(), data={"worker_id": worker_id})
        try:
            item.save(condition=self._model.pk.does_not_exist(), add_version_condition=False)
        except PutError as exc:
            if not _is_condition_failure(exc):
                raise
            raise Conflict(f"a worker named {name!r} already exists", field="name") from exc

    def release_name(self, name: str) -> None:
        self._model(NAME_PK, name.lower()).delete(add_version_condition=False)

    def name_owner(self, name: str) -> str | None:
        try:
            owner: str = _plain(self._model.get(NAME_PK, name.lower(), consistent_read=True).data)["worker_id"]
            return owner
        except DoesNotExist:
            return None

    def claim_idempotency(
        self, key: str, *, request_hash: str, worker_id: str, now: datetime
    ) -> tuple[str, str] | None:
        """Remember `key` → worker; returns the (worker id, request hash) stored earlier under
        the same key instead, if there was one."""
        item = self._model(
            IDEMPOTENCY_PK,
            key,
            data={"worker_id": worker_id, "request_hash": request_hash},
            expires_at=now + IDEMPOTENCY_TTL,
        )
        condition = self._model.pk.does_not_exist() | (self._model.expires_at <= now)
        try:
            item.save(condition=condition, add_version_condition=False)
            return None
        except PutError as exc:
            if not _is_condition_failure(exc):
                raise
        stored = _plain(self._model.get(IDEMPOTENCY_PK, key, consistent_read=True).data)
        return stored["worker_id"], stored["request_hash"]

    def release_idempotency(self, key: str) -> None:
        self._model(IDEMPOTENCY_PK, key).delete(add_version_condition=False)
