"""The operations table and its records: the fleet settings document, job heartbeats, leases and
pause records, refresh limits, unique names and Idempotency-Keys (the schedules are in
`schedule_store.py`), with the in-memory twins of these repositories at the end.

The table is keyed (pk, sk): `JOB/<name>` heartbeats and `REFRESH/<worker id>` rate-limit
markers live beside the settings document, each with a TTL where it is disposable.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import MapAttribute, TTLAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError
from pynamodb.models import Model

from cmlcm.adapters.pynamo import bind, is_condition_failure, plain
from cmlcm.domain.errors import ConcurrentModification, Conflict, RateLimited
from cmlcm.domain.jobs import JobControl, JobHeartbeat
from cmlcm.domain.settings import Settings


class OperationItem(Model):
    """Generic item of the operations table: settings, job heartbeats, idempotency keys, limits."""

    class Meta:
        table_name = "cmlcm-operations"
        billing_mode = "PAY_PER_REQUEST"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data: MapAttribute[str, Any] = MapAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    version = VersionAttribute()


SETTINGS_PK = "SETTINGS"
SETTINGS_SK = "GLOBAL"


class DynamoSettingsRepository:
    """The settings document, one item in the operations table."""

    def __init__(self, table_name: str, region: str) -> None:
        self._model: type[OperationItem] = bind(OperationItem, table_name, region)

    def get(self) -> Settings:
        try:
            item = self._model.get(SETTINGS_PK, SETTINGS_SK, consistent_read=True)
        except DoesNotExist:
            return Settings()
        return Settings.model_validate({**plain(item.data), "version": item.version or 0})

    def save(self, settings: Settings) -> Settings:
        item = self._model(SETTINGS_PK, SETTINGS_SK, data=settings.model_dump(mode="json", exclude={"version"}))
        if settings.version:
            item.version = settings.version
        try:
            item.save()
        except PutError as exc:
            if is_condition_failure(exc):
                raise ConcurrentModification("settings were changed by someone else", field="version") from exc
            raise
        return settings.model_copy(update={"version": item.version})


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
        return JobHeartbeat.model_validate(plain(item.data))

    def put(self, heartbeat: JobHeartbeat) -> None:
        item = self._model(JOB_PK, heartbeat.job, data=heartbeat.model_dump(mode="json"))
        item.save(add_version_condition=False)

    def all(self) -> list[JobHeartbeat]:
        return [JobHeartbeat.model_validate(plain(i.data)) for i in self._model.query(JOB_PK)]

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
            if not is_condition_failure(exc):
                raise
        try:
            return str(plain(self._model.get(LEASE_PK, job, consistent_read=True).data)["run"])
        except DoesNotExist:  # released between the write and the read: say who, not whether
            return "(released just now)"

    def release_lease(self, job: str, run_id: str) -> None:
        try:
            self._model(LEASE_PK, job).delete(condition=self._model.data["run"] == run_id, add_version_condition=False)
        except DeleteError as exc:
            if not is_condition_failure(exc):
                raise

    def get_control(self, job: str) -> JobControl | None:
        try:
            item = self._model.get(JOB_CONTROL_PK, job, consistent_read=True)
        except DoesNotExist:
            return None
        return JobControl.model_validate(plain(item.data))

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
            if not is_condition_failure(exc):
                raise
            current = self._model.get(REFRESH_PK, worker_id, consistent_read=True)
            wait = max(1, math.ceil((current.expires_at - now).total_seconds())) if current.expires_at else 1
            raise RateLimited(
                f"worker {worker_id} was refreshed moments ago; try again in {wait} s",
                retry_after_seconds=wait,
            ) from exc


class DynamoReservations:
    """Unique worker names and Idempotency-Keys, claimed with conditional writes."""

    def __init__(self, table_name: str, region: str) -> None:
        self._model: type[OperationItem] = bind(OperationItem, table_name, region)

    def claim_name(self, name: str, worker_id: str) -> None:
        item = self._model(NAME_PK, name.lower(), data={"worker_id": worker_id})
        try:
            item.save(condition=self._model.pk.does_not_exist(), add_version_condition=False)
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            raise Conflict(f"a worker named {name!r} already exists", field="name") from exc

    def release_name(self, name: str) -> None:
        self._model(NAME_PK, name.lower()).delete(add_version_condition=False)

    def name_owner(self, name: str) -> str | None:
        try:
            owner: str = plain(self._model.get(NAME_PK, name.lower(), consistent_read=True).data)["worker_id"]
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
            if not is_condition_failure(exc):
                raise
        stored = plain(self._model.get(IDEMPOTENCY_PK, key, consistent_read=True).data)
        return stored["worker_id"], stored["request_hash"]

    def release_idempotency(self, key: str) -> None:
        self._model(IDEMPOTENCY_PK, key).delete(add_version_condition=False)


# --- in-memory twins (the same rules; tests/integration runs both against one contract) ---


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
