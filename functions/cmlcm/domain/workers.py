"""The worker aggregate: identity, status with an explicit transition table, and value objects.

Pure domain code: no AWS, HTTP or DynamoDB. Time comes in as an argument; every change returns
a new immutable `Worker`, so services can compare before/after and write only what changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cmlcm.domain.cml import CmlSystem
from cmlcm.domain.errors import IllegalTransition, ValidationFailed

#: Tags the product owns on every instance it manages; users cannot edit or remove them.
MANAGED_BY_TAG = "ManagedBy"
MANAGED_BY_VALUE = "CmlCloudManager"
WORKER_ID_TAG = "WorkerId"
RESERVED_TAGS = frozenset({MANAGED_BY_TAG, WORKER_ID_TAG})


class WorkerStatus(StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    STARTING = "starting"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"
    UNKNOWN = "unknown"


#: Transitions a request (user, saga, idle policy) may make. Observations of EC2 reality are
#: handled by `Worker.observe_ec2_state`, because reality is never "illegal", only recorded.
ALLOWED_TRANSITIONS: dict[WorkerStatus, frozenset[WorkerStatus]] = {
    WorkerStatus.PENDING: frozenset({WorkerStatus.PROVISIONING, WorkerStatus.FAILED, WorkerStatus.TERMINATING}),
    WorkerStatus.PROVISIONING: frozenset({WorkerStatus.RUNNING, WorkerStatus.FAILED, WorkerStatus.TERMINATING}),
    WorkerStatus.RUNNING: frozenset({WorkerStatus.STOPPING, WorkerStatus.TERMINATING, WorkerStatus.FAILED}),
    WorkerStatus.STOPPING: frozenset({WorkerStatus.STOPPED, WorkerStatus.TERMINATING}),
    WorkerStatus.STOPPED: frozenset({WorkerStatus.STARTING, WorkerStatus.TERMINATING}),
    WorkerStatus.STARTING: frozenset({WorkerStatus.RUNNING, WorkerStatus.STOPPING, WorkerStatus.TERMINATING}),
    WorkerStatus.TERMINATING: frozenset({WorkerStatus.TERMINATED, WorkerStatus.FAILED}),
    WorkerStatus.TERMINATED: frozenset(),
    WorkerStatus.FAILED: frozenset({WorkerStatus.TERMINATING, WorkerStatus.TERMINATED}),
    WorkerStatus.UNKNOWN: frozenset(
        {WorkerStatus.STARTING, WorkerStatus.STOPPING, WorkerStatus.TERMINATING, WorkerStatus.FAILED}
    ),
}

#: Statuses that still may own a live instance: the active-workers index holds exactly these.
ACTIVE_STATUSES = frozenset(set(WorkerStatus) - {WorkerStatus.TERMINATED})

_EC2_TO_WORKER = {
    "pending": WorkerStatus.STARTING,
    "running": WorkerStatus.RUNNING,
    "stopping": WorkerStatus.STOPPING,
    "stopped": WorkerStatus.STOPPED,
    "shutting-down": WorkerStatus.TERMINATING,
    "terminated": WorkerStatus.TERMINATED,
}


def worker_status_from_ec2(ec2_state: str | None) -> WorkerStatus:
    """The one mapping from an EC2 instance state name to a worker status."""
    if ec2_state is None:
        return WorkerStatus.UNKNOWN
    return _EC2_TO_WORKER.get(ec2_state, WorkerStatus.UNKNOWN)


class ServiceStatus(StrEnum):
    """State of the CML service on the worker, as its REST API reports it."""

    AVAILABLE = "available"
    BOOTING = "booting"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkerError(_Value):
    """The last fault seen on this worker (AWS or CML), recorded instead of raised."""

    source: Literal["ec2", "cloudwatch", "cml", "provisioning", "reconciler", "licence"]
    kind: str
    message: str
    at: datetime


def keep_first_seen(previous: WorkerError | None, error: WorkerError | None) -> WorkerError | None:
    """`error`, or `previous` when `error` is the same fault seen again (same source, kind and
    message): a fault keeps the time it was first seen, so seeing it again rewrites nothing."""
    if (
        error is not None
        and previous is not None
        and previous.model_dump(exclude={"at"}) == error.model_dump(exclude={"at"})
    ):
        return previous
    return error


CauseKind = Literal["user", "saga", "collector", "idle_policy", "ec2_event", "reconciler", "schedule"]


class ChangeCause(_Value):
    """Who or what made a worker's latest change: a user (`by` = their name), a saga step (`by` =
    the step), the collector, the idle policy, an EC2 state-change event, the reconciler. Live
    events and the API show it (e.g. who stopped a worker)."""

    kind: CauseKind
    by: str | None = None


def saga_step(step: str) -> ChangeCause:
    """The cause recorded on a worker by a provisioning saga step (live `worker.provisioning_step` events)."""
    return ChangeCause(kind="saga", by=step)


class WorkerMetrics(_Value):
    """One collected snapshot of a worker's health and usage."""

    collected_at: datetime
    ec2_state: str | None = None
    system_status: str | None = None
    instance_status: str | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    cml_version: str | None = None
    cml_ready: bool | None = None
    cml_cpu_percent: float | None = None
    cml_memory_percent: float | None = None
    cml_disk_percent: float | None = None
    labs_total: int | None = None
    labs_running: int | None = None
    nodes_total: int | None = None
    nodes_running: int | None = None
    licensed: bool | None = None
    last_activity_at: datetime | None = None
    #: Fingerprint of the labs last written to the labs table (`cml.labs_digest`): a cycle whose
    #: labs hash the same neither reads nor writes that table.
    labs_digest: str | None = None

    def same_reading(self, other: WorkerMetrics | None) -> bool:
        """True when nothing but the collection time differs (so no write is needed)."""
        if other is None:
            return False
        mine, theirs = self.__dict__, other.__dict__
        return all(mine[name] == theirs[name] for name in _READING_FIELDS)


#: What a metrics snapshot read: every field but the time it was read at.
_READING_FIELDS = tuple(name for name in WorkerMetrics.model_fields if name != "collected_at")


#: What stopped a worker on the fleet's behalf (counted in the hours and money saved).
PolicySource = Literal["idle", "schedule"]


class ScheduleMark(_Value):
    """The state a schedule last wanted for this worker and acted on (or found already so). A
    schedule acts only when what it wants changes, so a user's start or stop in between stands
    (Instance Scheduler's rule), unless the schedule is `enforced`."""

    schedule: str
    desired: Literal["running", "stopped"]
    at: datetime


class LicenceOperation(StrEnum):
    NONE = "none"
    REGISTERING = "registering"
    DEREGISTERING = "deregistering"


class Licence(_Value):
    """A worker's CML licence as last seen, plus the progress of the operation in flight."""

    registration_status: str | None = None
    authorization_status: str | None = None
    expires: str | None = None
    operation: LicenceOperation = LicenceOperation.NONE
    #: "local_only": a deregistration CML did on the controller only (Cisco's side not told).
    operation_state: Literal["pending", "completed", "failed", "local_only"] | None = None
    operation_reason: str | None = None
    operation_started_at: datetime | None = None
    operation_deadline: datetime | None = None
    #: Name/ARN of the secret holding the registration token: the token itself is never stored.
    token_secret_ref: str | None = None


class Worker(BaseModel):
    """A CML worker: one EC2 instance running a CML controller, managed by this product."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str
    name: str
    region: str
    instance_id: str | None = None
    instance_type: str | None = None
    ami_id: str | None = None
    ami_name: str | None = None
    #: The AMI's description and creation date (filled on create and import, and by the reconciler).
    ami_description: str | None = None
    ami_created_at: datetime | None = None
    owner: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    status: WorkerStatus = WorkerStatus.PENDING
    service_status: ServiceStatus = ServiceStatus.UNKNOWN
    ec2_state: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    status_reason: str | None = None
    idle_detection_enabled: bool = True
    detailed_monitoring: bool = False
    #: Every pause and resume; `auto_*` + `manual_*` count those made since they were told apart,
    #: so `pause_count - auto_pause_count - manual_pause_count` were made before (records of the
    #: single-counter era keep their totals; nothing is attributed by guess).
    pause_count: int = 0
    resume_count: int = 0
    auto_pause_count: int = 0
    manual_pause_count: int = 0
    auto_resume_count: int = 0
    manual_resume_count: int = 0
    last_pause_reason: str | None = None
    last_paused_at: datetime | None = None
    #: Who paused it last: a user's name, "idle policy" or "schedule:<name>".
    last_paused_by: str | None = None
    last_pause_auto: bool | None = None
    last_resumed_at: datetime | None = None
    last_resume_reason: str | None = None
    last_resumed_by: str | None = None
    last_resume_auto: bool | None = None
    #: On the last resume: whether the pause it undid was automatic (idle policy or schedule).
    was_auto_paused: bool | None = None
    #: A user resumed or started it: the idle policy and schedules leave it running until then.
    snoozed_until: datetime | None = None
    #: Set while a policy (idle or schedule) keeps it stopped: since when, and which one.
    policy_stopped_at: datetime | None = None
    policy_stopped_by: PolicySource | None = None
    #: Hours stopped by each policy, over the stops that have ended (the current one is added on read).
    idle_stopped_hours: float = 0.0
    schedule_stopped_hours: float = 0.0
    schedule_mark: ScheduleMark | None = None
    metrics: WorkerMetrics | None = None
    licence: Licence | None = None
    #: The controller's slow-changing facts (system health with the compute table, licence
    #: detail), read on their own cadence by the collection.
    cml_system: CmlSystem | None = None
    last_error: WorkerError | None = None
    #: Who or what made the latest change recorded with a cause (see `ChangeCause`).
    last_change: ChangeCause | None = None
    #: Optimistic-locking version; 0 means "never stored".
    version: int = 0

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def transition(self, to: WorkerStatus, *, now: datetime, reason: str | None = None) -> Worker:
        """Move to `to` if the table allows it, else raise `IllegalTransition` (HTTP 409)."""
        if to == self.status:
            raise IllegalTransition(f"worker {self.worker_id} is already {self.status.value}", field="status")
        if to not in ALLOWED_TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"worker {self.worker_id} cannot go from {self.status.value} to {to.value}",
                field="status",
            )
        moved = self.model_copy(
            update={"status": to, "status_changed_at": now, "updated_at": now, "status_reason": reason}
        )
        return moved._settle_policy_stop(now)

    @property
    def is_paused(self) -> bool:
        """Paused and not resumed since (whatever EC2 did meanwhile)."""
        return self.last_paused_at is not None and (
            self.last_resumed_at is None or self.last_resumed_at < self.last_paused_at
        )

    def policy_stopped_hours(self, now: datetime) -> dict[str, float]:
        """Hours each policy kept this worker stopped, the current stop included up to `now`."""
        hours = {"idle": self.idle_stopped_hours, "schedule": self.schedule_stopped_hours}
        if self.policy_stopped_at is not None and self.policy_stopped_by is not None and now > self.policy_stopped_at:
            hours[self.policy_stopped_by] += (now - self.policy_stopped_at).total_seconds() / 3600
        return hours

    def _settle_policy_stop(self, now: datetime) -> Worker:
        """A policy's stop ends when the worker is no longer stopping or stopped (started by anyone,
        terminated, failed): its hours are added to that policy's total."""
        if self.policy_stopped_at is None or self.status in (WorkerStatus.STOPPING, WorkerStatus.STOPPED):
            return self
        hours = self.policy_stopped_hours(now)
        return self.model_copy(
            update={
                "idle_stopped_hours": hours["idle"],
                "schedule_stopped_hours": hours["schedule"],
                "policy_stopped_at": None,
                "policy_stopped_by": None,
            }
        )

    def observe_ec2_state(
        self,
        ec2_state: str | None,
        *,
        now: datetime,
        public_ip: str | None = None,
        private_ip: str | None = None,
    ) -> Worker:
        """Record what EC2 reports. Reality always wins, except that a FAILED worker stays FAILED
        (the reconciler decides about it) and a TERMINATED worker never comes back."""
        observed = worker_status_from_ec2(ec2_state)
        update: dict[str, object] = {"ec2_state": ec2_state}
        if public_ip is not None or private_ip is not None:
            update["public_ip"] = public_ip
            update["private_ip"] = private_ip
        keep = self.status in (WorkerStatus.FAILED, WorkerStatus.TERMINATED)
        # While the saga provisions, EC2's "pending" is part of provisioning, not a restart.
        provisioning = self.status in (WorkerStatus.PENDING, WorkerStatus.PROVISIONING) and observed in (
            WorkerStatus.STARTING,
            WorkerStatus.RUNNING,
        )
        if not keep and not provisioning and observed != self.status:
            update.update(status=observed, status_changed_at=now, status_reason=f"ec2 reports {ec2_state}")
        changed = self.model_copy(update=update)._settle_policy_stop(now)
        return changed if changed == self else changed.model_copy(update={"updated_at": now})

    def pause(
        self,
        *,
        now: datetime,
        reason: str,
        by: str | None = None,
        auto: bool = False,
        source: PolicySource | None = None,
    ) -> Worker:
        """Stop a running worker on purpose, counting it (auto: a policy, `source`; else a user)
        and keeping the reason and who did it. A policy's pause starts counting hours saved."""
        stopped = self.transition(WorkerStatus.STOPPING, now=now, reason=f"paused: {reason}")
        update: dict[str, object] = {
            "pause_count": self.pause_count + 1,
            "auto_pause_count": self.auto_pause_count + int(auto),
            "manual_pause_count": self.manual_pause_count + int(not auto),
            "last_pause_reason": reason,
            "last_paused_at": now,
            "last_paused_by": by,
            "last_pause_auto": auto,
        }
        if auto and source is not None:
            update.update(policy_stopped_at=now, policy_stopped_by=source)
        return stopped.model_copy(update=update)

    def resume(
        self,
        *,
        now: datetime,
        reason: str = "resumed",
        by: str | None = None,
        auto: bool = False,
        snooze: timedelta | None = None,
    ) -> Worker:
        """Start a paused worker again, counting the resume (auto or by a user) and recording
        whether the pause it undoes was automatic. A user's resume snoozes the policies for
        `snooze`. The status is checked first: a terminated worker is refused as terminated,
        not as "not paused"."""
        started = self.transition(WorkerStatus.STARTING, now=now, reason=reason)
        if not self.is_paused:
            raise IllegalTransition(f"worker {self.worker_id} is not paused", field="status")
        update: dict[str, object] = {
            "resume_count": self.resume_count + 1,
            "auto_resume_count": self.auto_resume_count + int(auto),
            "manual_resume_count": self.manual_resume_count + int(not auto),
            "last_resumed_at": now,
            "last_resume_reason": reason,
            "last_resumed_by": by,
            "last_resume_auto": auto,
            "was_auto_paused": bool(self.last_pause_auto),
        }
        if not auto and snooze:
            update["snoozed_until"] = now + snooze
        return started.model_copy(update=update)

    def start(self, *, now: datetime, reason: str = "start requested", snooze: timedelta | None = None) -> Worker:
        """A user's start of a stopped worker; like a resume, it snoozes the policies."""
        started = self.transition(WorkerStatus.STARTING, now=now, reason=reason)
        return started.model_copy(update={"snoozed_until": now + snooze}) if snooze else started

    def is_snoozed(self, now: datetime) -> bool:
        return self.snoozed_until is not None and now < self.snoozed_until

    def mark_schedule(self, mark: ScheduleMark | None) -> Worker:
        """Remember what a schedule last wanted for this worker (None: it follows no schedule)."""
        return self if mark == self.schedule_mark else self.model_copy(update={"schedule_mark": mark})

    def with_tags(self, tags: dict[str, str | None], *, mode: Literal["merge", "replace"], now: datetime) -> Worker:
        """New tag set: `merge` sets the given keys and removes keys given as null; `replace`
        makes the user tags exactly the given ones. Reserved tags are kept and cannot be set."""
        for key in tags:
            if key in RESERVED_TAGS:
                raise ValidationFailed(f"tag {key!r} is reserved and cannot be changed", field=f"tags.{key}")
        if mode == "replace":
            new = {k: v for k, v in self.tags.items() if k in RESERVED_TAGS}
            new.update({k: v for k, v in tags.items() if v is not None})
        else:
            new = dict(self.tags)
            for k, v in tags.items():
                if v is None:
                    new.pop(k, None)
                else:
                    new[k] = v
        return self.model_copy(update={"tags": new, "updated_at": now})

    def fail(self, *, step: str, kind: str, message: str, now: datetime, source: str = "provisioning") -> Worker:
        """Mark FAILED after a fault in `step` (the saga's verdict, not a request: allowed from any
        status but TERMINATED); idempotent, so a retried compensation changes nothing."""
        if self.status == WorkerStatus.TERMINATED:
            raise IllegalTransition(f"worker {self.worker_id} is terminated", field="status")
        if self.status == WorkerStatus.FAILED:
            return self
        reason = f"{step}: {kind}: {message}"[:500]
        error = WorkerError(source=source, kind=kind, message=f"{step}: {message}"[:500], at=now)  # type: ignore[arg-type]  # callers pass one of WorkerError's sources
        return self.model_copy(
            update={
                "status": WorkerStatus.FAILED,
                "status_changed_at": now,
                "updated_at": now,
                "status_reason": reason,
                "last_error": error,
            }
        )._settle_policy_stop(now)

    def instance_vanished(self, *, now: datetime) -> Worker:
        """EC2 no longer knows the instance: whatever the record said, it is gone."""
        if self.status == WorkerStatus.TERMINATED:
            return self
        message = f"instance {self.instance_id} no longer exists in EC2"
        return self.model_copy(
            update={
                "status": WorkerStatus.TERMINATED,
                "status_changed_at": now,
                "updated_at": now,
                "status_reason": "reconciler: instance vanished",
                "last_error": WorkerError(source="reconciler", kind="InstanceVanished", message=message, at=now),
            }
        )._settle_policy_stop(now)

    def record_error(self, error: WorkerError) -> Worker:
        return self.model_copy(update={"last_error": error, "updated_at": error.at})

    def note_error(self, error: WorkerError) -> Worker:
        """Record a fault seen while observing the worker (collection, licence poll); the same
        fault seen again keeps its first time and changes nothing (`keep_first_seen`)."""
        kept = keep_first_seen(self.last_error, error)
        return self if kept is self.last_error else self.record_error(error)

    def touch(self, now: datetime, **changes: object) -> Worker:
        """Apply plain attribute changes (already validated by the caller) and stamp the time."""
        return self.model_copy(update={**changes, "updated_at": now})


class MetricsSummary(_Value):
    """The readings of `WorkerMetrics` a fleet list shows and its idle countdown needs (same
    names and meanings; the rest stays in the full worker)."""

    collected_at: datetime
    cpu_percent: float | None = None
    memory_percent: float | None = None
    labs_running: int | None = None
    nodes_running: int | None = None
    licensed: bool | None = None
    last_activity_at: datetime | None = None


class LicenceSummary(_Value):
    """What a fleet list says of the licence: its registration, or the operation in flight."""

    registration_status: str | None = None
    operation: LicenceOperation = LicenceOperation.NONE
    operation_state: Literal["pending", "completed", "failed", "local_only"] | None = None


class WorkerSummary(BaseModel):
    """A worker as the fleet list shows it: the attributes of the fleet table, its filters and
    its idle countdown, plus owner and tags (per-user scoping) and the version (a client keeps
    the newer of a summary and a full view). Each field has the name and meaning of `Worker`'s,
    so a projection of the stored item is enough to read it: a 1000-worker fleet is read without
    parsing each worker's CML facts, errors and history."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str
    name: str
    region: str
    instance_id: str | None = None
    instance_type: str | None = None
    owner: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    status: WorkerStatus
    service_status: ServiceStatus = ServiceStatus.UNKNOWN
    status_changed_at: datetime
    idle_detection_enabled: bool = True
    snoozed_until: datetime | None = None
    policy_stopped_by: PolicySource | None = None
    metrics: MetricsSummary | None = None
    licence: LicenceSummary | None = None
    version: int = 0

    @classmethod
    def of(cls, worker: Worker) -> WorkerSummary:
        """The summary of a full worker (what a projection of its stored item reads)."""
        data = worker.model_dump(include=set(cls.model_fields) - {"metrics", "licence"})
        if worker.metrics is not None:
            data["metrics"] = MetricsSummary(**worker.metrics.model_dump(include=set(MetricsSummary.model_fields)))
        if worker.licence is not None:
            data["licence"] = LicenceSummary(**worker.licence.model_dump(include=set(LicenceSummary.model_fields)))
        return cls(**data)


def summary_attributes() -> list[str]:
    """The attribute paths of a stored worker that make its `WorkerSummary` (a projection)."""
    nested: dict[str, type[BaseModel]] = {"metrics": MetricsSummary, "licence": LicenceSummary}
    paths: list[str] = []
    for name in WorkerSummary.model_fields:
        if name in nested:
            paths += [f"{name}.{field}" for field in nested[name].model_fields]
        else:
            paths.append(name)
    return paths
