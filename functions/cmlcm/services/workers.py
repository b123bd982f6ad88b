"""Worker use cases: list, get, start, stop, pause, resume, terminate, delete, tags, toggles.

Each command checks the transition on the stored worker before touching EC2, so a rejected
request changes nothing; the write after the EC2 call is optimistically locked and retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cmlcm.domain.errors import ConcurrentModification, ExternalServiceError, IllegalTransition, NotFound
from cmlcm.domain.jobs import MetricSample
from cmlcm.domain.workers import (
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    RESERVED_TAGS,
    WORKER_ID_TAG,
    ChangeCause,
    Worker,
    WorkerError,
    WorkerStatus,
)
from cmlcm.ports import (
    Ec2Port,
    LabRepository,
    LicenceTokenStore,
    Page,
    WorkerPorts,
    WorkerQuery,
    WorkerRepository,
)

#: Attempts of read-modify-write before a 409 ConcurrentModification reaches the caller.
LOCK_ATTEMPTS = 5
#: A user command whose caller is not known (the API passes the caller's name).
USER = ChangeCause(kind="user")


def list_workers(repo: WorkerRepository, query: WorkerQuery) -> Page[Worker]:
    return repo.list(query)


def get_worker(repo: WorkerRepository, key: str) -> Worker:
    """By worker id, or by EC2 instance id (`i-...`)."""
    if key.startswith("i-"):
        found = repo.find_by_instance_id(key)
        if found is None:
            raise NotFound(f"no worker has instance {key}", field="worker_id")
        return found
    return repo.get(key)


def mutate(
    repo: WorkerRepository,
    worker_id: str,
    change: Callable[[Worker], Worker],
    cause: ChangeCause | None = None,
) -> Worker:
    """Read, apply `change`, save with optimistic locking; re-read and re-apply on a lost race.
    A change that changes something is recorded with its `cause` (when given)."""
    for _ in range(LOCK_ATTEMPTS):
        current = repo.get(worker_id)
        updated = change(current)
        if updated == current:
            return current
        if cause is not None:
            updated = updated.model_copy(update={"last_change": cause})
        try:
            return repo.save(updated)
        except ConcurrentModification:
            continue
    raise ConcurrentModification(
        f"worker {worker_id} kept changing; gave up after {LOCK_ATTEMPTS} attempts", field="version"
    )


def _require_instance(worker: Worker) -> str:
    if not worker.instance_id:
        raise IllegalTransition(f"worker {worker.worker_id} has no instance yet", field="instance_id")
    return worker.instance_id


def _record_aws_failure(
    ports: WorkerPorts, worker: Worker, exc: ExternalServiceError, now: datetime, cause: ChangeCause = USER
) -> None:
    error = WorkerError(source="ec2", kind=exc.code, message=exc.message, at=now)
    mutate(ports.workers, worker.worker_id, lambda w: w.record_error(error), cause)


def _ec2_command(
    ports: WorkerPorts,
    key: str,
    now: datetime,
    change: Callable[[Worker], Worker],
    action: Callable[[Ec2Port, str], object],
    cause: ChangeCause = USER,
) -> Worker:
    worker = get_worker(ports.workers, key)
    change(worker)  # raises IllegalTransition before anything is touched
    instance_id = _require_instance(worker)
    try:
        result = action(ports.ec2_for(worker.region), instance_id)
    except ExternalServiceError as exc:
        _record_aws_failure(ports, worker, exc, now, cause)
        raise
    failed: dict[str, ExternalServiceError] = getattr(result, "failed", {})
    if instance_id in failed:
        failure = failed[instance_id]
        _record_aws_failure(ports, worker, failure, now, cause)
        raise failure
    return mutate(ports.workers, worker.worker_id, lambda w: change(w).model_copy(update={"last_error": None}), cause)


def _snooze(ports: WorkerPorts) -> timedelta | None:
    """How long a user's start or resume keeps the idle policy and schedules away."""
    minutes = ports.settings.get().snooze_after_resume_minutes
    return timedelta(minutes=minutes) if minutes else None


def start_worker(ports: WorkerPorts, key: str, now: datetime, cause: ChangeCause = USER) -> Worker:
    snooze = _snooze(ports) if cause.kind == "user" else None
    return _ec2_command(
        ports,
        key,
        now,
        lambda w: w.start(now=now, snooze=snooze),
        lambda ec2, iid: ec2.start([iid]),
        cause,
    )


def stop_worker(ports: WorkerPorts, key: str, now: datetime, cause: ChangeCause = USER) -> Worker:
    return _ec2_command(
        ports,
        key,
        now,
        lambda w: w.transition(WorkerStatus.STOPPING, now=now, reason="stop requested"),
        lambda ec2, iid: ec2.stop([iid]),
        cause,
    )


def pause_worker(ports: WorkerPorts, key: str, now: datetime, reason: str, cause: ChangeCause = USER) -> Worker:
    """A user's pause: counted as manual, with the reason and the user recorded."""
    return _ec2_command(
        ports,
        key,
        now,
        lambda w: w.pause(now=now, reason=reason, by=cause.by),
        lambda ec2, iid: ec2.stop([iid]),
        cause,
    )


def resume_worker(
    ports: WorkerPorts, key: str, now: datetime, cause: ChangeCause = USER, reason: str = "resumed"
) -> Worker:
    """A user's resume: counted as manual, `was_auto_paused` recorded, and the policies snoozed
    for the settings' `snooze_after_resume_minutes` (so they do not fight the user)."""
    snooze = _snooze(ports)
    return _ec2_command(
        ports,
        key,
        now,
        lambda w: w.resume(now=now, reason=reason, by=cause.by, snooze=snooze),
        lambda ec2, iid: ec2.start([iid]),
        cause,
    )


def terminate_worker(ports: WorkerPorts, key: str, now: datetime, cause: ChangeCause = USER) -> Worker:
    return _ec2_command(
        ports,
        key,
        now,
        lambda w: w.transition(WorkerStatus.TERMINATING, now=now, reason="terminate requested"),
        lambda ec2, iid: ec2.terminate([iid]),
        cause,
    )


@dataclass(frozen=True)
class Deletion:
    """What `delete_worker` did: the record as it was, and what became of its instance:
    `terminating` (EC2 accepted the termination), `released` (tags removed, left running),
    `gone` (EC2 no longer knew it) or `none` (no live instance to act on)."""

    worker: Worker
    instance: Literal["terminating", "released", "gone", "none"]
    #: What of the worker's data could not be forgotten (lab rows, token secret), for the log.
    left: tuple[str, ...] = ()

    @property
    def worker_id(self) -> str:
        return self.worker.worker_id


def delete_worker(ports: WorkerPorts, key: str, *, terminate_instance: bool, now: datetime) -> Deletion:
    """Remove the record. With `terminate_instance` the instance is terminated first; without it
    the instance is released: the product's tags are removed so the reconciler leaves it alone."""
    worker = get_worker(ports.workers, key)
    live = worker.instance_id and worker.status != WorkerStatus.TERMINATED
    outcome: Literal["terminating", "released", "gone", "none"] = "none"
    if live:
        ec2 = ports.ec2_for(worker.region)
        try:
            if terminate_instance:
                result = ec2.terminate([worker.instance_id])  # type: ignore[list-item]
                failure = result.failed.get(worker.instance_id)  # type: ignore[arg-type]
                # An instance EC2 no longer knows is as good as terminated.
                if failure is not None and failure.code != "InstanceNotFound":
                    raise failure
                outcome = "gone" if failure is not None else "terminating"
            else:
                ec2.set_tags(worker.instance_id, add={}, remove=sorted(RESERVED_TAGS))  # type: ignore[arg-type]
                outcome = "released"
        except ExternalServiceError as exc:
            if exc.code != "InstanceNotFound":
                _record_aws_failure(ports, worker, exc, now)
                raise
            outcome = "gone"
    ports.workers.delete(worker.worker_id)
    if ports.release_name is not None:
        ports.release_name(worker.name)
    left = forget_deleted_worker(ports.labs, ports.tokens, worker.worker_id)
    return Deletion(worker=worker, instance=outcome, left=tuple(left))


def forget_deleted_worker(labs: LabRepository | None, tokens: LicenceTokenStore | None, worker_id: str) -> list[str]:
    """After a worker's record is deleted: drop its lab rows and schedule its licence token secret
    for deletion. Best effort (the record is already gone, so a fault cannot be recorded on it):
    returns what was left behind, for the caller to log."""
    left: list[str] = []
    try:
        rows = labs.list(worker_id) if labs is not None else []
        if labs is not None and rows:
            labs.write([], rows)
    except ExternalServiceError as exc:
        left.append(f"lab rows ({exc})")
    try:
        if tokens is not None:
            tokens.forget(worker_id)
    except ExternalServiceError as exc:
        left.append(f"licence token secret ({exc})")
    return left


def worker_samples(ports: WorkerPorts, key: str, *, since: datetime) -> tuple[Worker, list[MetricSample]]:
    """The worker (by id or instance id) and its metric samples since `since`, oldest first."""
    worker = get_worker(ports.workers, key)
    if ports.samples is None:
        return worker, []
    return worker, ports.samples.recent(worker.worker_id, since=since)


def update_tags(
    ports: WorkerPorts,
    key: str,
    tags: dict[str, str | None],
    mode: Literal["merge", "replace"],
    now: datetime,
    cause: ChangeCause = USER,
) -> Worker:
    """Edit user tags on the record and on the instance (reserved tags are refused)."""
    worker = get_worker(ports.workers, key)
    updated = worker.with_tags(tags, mode=mode, now=now)
    if worker.instance_id and worker.status != WorkerStatus.TERMINATED:
        added = {k: v for k, v in updated.tags.items() if worker.tags.get(k) != v}
        removed = [k for k in worker.tags if k not in updated.tags]
        try:
            ports.ec2_for(worker.region).set_tags(worker.instance_id, add=added, remove=removed)
        except ExternalServiceError as exc:
            _record_aws_failure(ports, worker, exc, now, cause)
            raise
    return mutate(ports.workers, worker.worker_id, lambda w: w.with_tags(tags, mode=mode, now=now), cause)


def set_idle_detection(ports: WorkerPorts, key: str, enabled: bool, now: datetime, cause: ChangeCause = USER) -> Worker:
    worker = get_worker(ports.workers, key)
    return mutate(
        ports.workers,
        worker.worker_id,
        lambda w: w if w.idle_detection_enabled == enabled else w.touch(now, idle_detection_enabled=enabled),
        cause,
    )


def set_owner(ports: WorkerPorts, key: str, owner: str | None, now: datetime, cause: ChangeCause = USER) -> Worker:
    """Set (or clear, with None) who owns the worker: per-user scoping shows it to its owner."""
    worker = get_worker(ports.workers, key)
    return mutate(
        ports.workers,
        worker.worker_id,
        lambda w: w if w.owner == owner else w.touch(now, owner=owner),
        cause,
    )


def enable_detailed_monitoring(ports: WorkerPorts, key: str, now: datetime, cause: ChangeCause = USER) -> Worker:
    worker = get_worker(ports.workers, key)
    instance_id = _require_instance(worker)
    if worker.status == WorkerStatus.TERMINATED:
        raise IllegalTransition(f"worker {worker.worker_id} is terminated", field="status")
    try:
        ports.ec2_for(worker.region).enable_detailed_monitoring(instance_id)
    except ExternalServiceError as exc:
        _record_aws_failure(ports, worker, exc, now, cause)
        raise
    return mutate(
        ports.workers,
        worker.worker_id,
        lambda w: w if w.detailed_monitoring else w.touch(now, detailed_monitoring=True),
        cause,
    )


def managed_tags(worker_id: str) -> dict[str, str]:
    """The tags every managed instance carries (saga launch, import adoption)."""
    return {MANAGED_BY_TAG: MANAGED_BY_VALUE, WORKER_ID_TAG: worker_id}
