"""Creating workers (the provisioning saga's steps) and importing existing instances.

`create_worker` records the worker PENDING first, then starts the saga; each saga step below is
one Lambda task of `statemachines/provision_worker.asl.json`. Any failure after launch ends in
`compensate`, which finds the instance (by id, else by tag/ClientToken), terminates it and marks
the worker FAILED with the step and reason: never a zombie instance.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmlcm.domain.errors import (
    Conflict,
    ExternalServiceError,
    IllegalTransition,
    NotFound,
    ValidationFailed,
)
from cmlcm.domain.settings import RegionDefaults, Settings
from cmlcm.domain.workers import (
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    WORKER_ID_TAG,
    ChangeCause,
    Worker,
    WorkerStatus,
    worker_status_from_ec2,
)
from cmlcm.ports import (
    Ec2Port,
    ImageInfo,
    InstanceInfo,
    LaunchSpec,
    ProvisionPorts,
)

__all__ = ["LaunchSpec"]
from cmlcm.services.workers import managed_tags, mutate


@dataclass(frozen=True)
class CreateWorker:
    name: str
    region: str
    instance_type: str | None = None
    ami_id: str | None = None
    owner: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: Instead of ami_id: the newest AMI with this name (EC2 wildcards), or of this CML version.
    ami_name: str | None = None
    cml_version: str | None = None

    def fingerprint(self) -> str:
        """Stable hash of the request, to tell a replay from a different request with the same key."""
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Created:
    worker: Worker
    execution_arn: str | None
    replayed: bool = False


def saga_input(worker: Worker, settings: Settings) -> dict[str, Any]:
    """The execution input: the worker, and the saga's bounds from the settings."""
    poll = settings.provision_poll_seconds
    return {
        "worker_id": worker.worker_id,
        "config": {
            "poll_seconds": poll,
            "max_running_checks": max(1, settings.instance_running_timeout_minutes * 60 // poll),
            "max_ready_checks": max(1, settings.cml_ready_timeout_minutes * 60 // poll),
        },
    }


#: How long a replay waits for the first request with its Idempotency-Key to record its worker.
REPLAY_WAIT_SECONDS = 3.0


def _replay_polls() -> Iterator[None]:
    deadline = time.monotonic() + REPLAY_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)
        yield


def _replayed_worker(ports: ProvisionPorts, worker_id: str, *, wait: Callable[[], Iterator[None]] | None) -> Worker:
    """The worker recorded by the first request with the key. The key is claimed before that
    worker is written, so a replay arriving in between waits for it; if it does not appear (the
    first request is slow, or died), the answer is a 409 to retry, not a 404."""
    polls = (wait or _replay_polls)()
    while True:
        try:
            return ports.workers.get(worker_id)
        except NotFound:
            if next(polls, _GAVE_UP) is _GAVE_UP:
                raise Conflict(
                    "the first request with this Idempotency-Key has not recorded a worker: it is still in "
                    "progress (retry in a moment), or it failed or its worker was deleted (use a new key)",
                    field="Idempotency-Key",
                ) from None


_GAVE_UP = object()


def create_worker(
    ports: ProvisionPorts,
    request: CreateWorker,
    *,
    worker_id: str,
    idempotency_key: str | None,
    now: datetime,
    replay_wait: Callable[[], Iterator[None]] | None = None,
) -> Created:
    """Validate, claim the name, record PENDING, start the saga. The same Idempotency-Key with
    the same request returns the first result (waiting a moment for a first request still in
    flight); with another request it is a 409."""
    settings = ports.settings.get()
    defaults = settings.defaults_for(request.region)
    instance_type = request.instance_type or defaults.instance_type
    ami_id, image = resolve_image(ports.ec2_for(request.region), request, defaults)
    if idempotency_key:
        earlier = ports.reservations.claim_idempotency(
            idempotency_key, request_hash=request.fingerprint(), worker_id=worker_id, now=now
        )
        if earlier is not None:
            earlier_id, earlier_hash = earlier
            if earlier_hash != request.fingerprint():
                raise Conflict("this Idempotency-Key was used for a different request", field="Idempotency-Key")
            return Created(_replayed_worker(ports, earlier_id, wait=replay_wait), execution_arn=None, replayed=True)
    try:
        ports.reservations.claim_name(request.name, worker_id)
    except Conflict:
        if idempotency_key:
            ports.reservations.release_idempotency(idempotency_key)
        raise
    worker = ports.workers.add(
        Worker(
            worker_id=worker_id,
            name=request.name,
            region=request.region,
            instance_type=instance_type,
            ami_id=ami_id,
            ami_name=image.name if image else None,
            ami_description=image.description if image else None,
            ami_created_at=image.created_at if image else None,
            owner=request.owner,
            tags={"Name": request.name, **request.tags, **managed_tags(worker_id)},
            status=WorkerStatus.PENDING,
            created_at=now,
            updated_at=now,
            status_changed_at=now,
            status_reason="provisioning requested",
        )
    )
    try:
        execution_arn = ports.workflow.start(name=worker_id, payload=saga_input(worker, settings))
    except ExternalServiceError as exc:
        # Nothing was launched: the worker fails here and keeps its name until deleted.
        fault = exc  # bound by name: the closure below must not see the except-clause variable
        mutate(
            ports.workers,
            worker_id,
            lambda w: w.fail(step="start", kind=fault.code, message=fault.message, now=now),
            saga_step("start"),
        )
        raise
    return Created(worker, execution_arn)


def resolve_image(ec2: Ec2Port, request: CreateWorker, defaults: RegionDefaults) -> tuple[str, ImageInfo | None]:
    """The AMI a create launches, and what EC2 says of it: the request's `ami_id`, the newest
    image named like its `ami_name` or of its `cml_version` (the region's
    `cml_version_ami_pattern`), else the region's default AMI. At most one of the three; nothing
    or an ambiguous match is a 422 naming the field. An explicit id's details are best effort
    (the reconciler fills them later): the launch, not this lookup, says whether the id is good."""
    chosen = [name for name in ("ami_id", "ami_name", "cml_version") if getattr(request, name)]
    if len(chosen) > 1:
        raise ValidationFailed(
            f"give at most one of ami_id, ami_name and cml_version ({' and '.join(chosen)} were given)",
            field=chosen[1],
        )
    if request.ami_name or request.cml_version:
        field_name = "ami_name" if request.ami_name else "cml_version"
        pattern = request.ami_name or defaults.ami_pattern_for_version(request.cml_version or "")
        image = newest_image(ec2.find_images(pattern), field=field_name, region=request.region)
        return image.image_id, image
    ami_id = request.ami_id or defaults.ami_id
    if not ami_id:
        raise ValidationFailed(
            f"no ami_id, ami_name or cml_version given and the settings have no default AMI for {request.region}",
            field="ami_id",
        )
    try:
        return ami_id, ec2.images([ami_id]).get(ami_id)
    except ExternalServiceError:
        return ami_id, None


def newest_image(images: Sequence[ImageInfo], *, field: str, region: str) -> ImageInfo:
    """The newest of `images` (by creation date). None matched, or several share the newest
    creation date (no way to tell which is meant): a 422 naming `field`."""
    if not images:
        raise ValidationFailed(f"{field}: no AMI in {region} matches", field=field)
    oldest = datetime.min.replace(tzinfo=UTC)
    newest = max(images, key=lambda i: i.created_at or oldest)
    tied = sorted(i.image_id for i in images if (i.created_at or oldest) == (newest.created_at or oldest))
    if len(tied) > 1:
        raise ValidationFailed(
            f"{field}: {len(tied)} AMIs in {region} match with the same creation date ({', '.join(tied[:5])}); "
            "give ami_id",
            field=field,
        )
    return newest


# --- saga steps (one Lambda task each) ---


def saga_step(step: str) -> ChangeCause:
    """The cause recorded on a worker by a saga step (live `worker.provisioning_step` events)."""
    return ChangeCause(kind="saga", by=step)


def launch(ports: ProvisionPorts, worker_id: str, *, now: datetime) -> InstanceInfo:
    """PENDING → PROVISIONING, then RunInstances with ClientToken = worker id (a retry returns
    the same instance)."""
    worker = ports.workers.get(worker_id)
    if worker.status == WorkerStatus.PENDING:
        worker = mutate(
            ports.workers,
            worker_id,
            lambda w: w.transition(WorkerStatus.PROVISIONING, now=now, reason="launching"),
            saga_step("launch"),
        )
    elif worker.status != WorkerStatus.PROVISIONING:
        raise IllegalTransition(f"worker {worker_id} is {worker.status.value}, not pending", field="status")
    defaults = ports.settings.get().defaults_for(worker.region)
    spec = LaunchSpec(
        client_token=worker_id,
        ami_id=worker.ami_id or "",
        instance_type=worker.instance_type or defaults.instance_type,
        tags=worker.tags,
        subnet_id=defaults.subnet_id,
        security_group_ids=defaults.security_group_ids,
        instance_profile_arn=defaults.instance_profile_arn,
        key_name=defaults.key_name,
        user_data=defaults.user_data,
    )
    return ports.ec2_for(worker.region).launch(spec)


def record_instance(ports: ProvisionPorts, worker_id: str, instance_id: str, *, now: datetime) -> Worker:
    return mutate(
        ports.workers,
        worker_id,
        lambda w: w if w.instance_id == instance_id else w.touch(now, instance_id=instance_id),
        saga_step("record_instance"),
    )


def instance_state(ports: ProvisionPorts, worker_id: str, instance_id: str, *, now: datetime) -> str:
    """The instance's EC2 state, recorded on the worker (IPs too). "missing" when EC2 no longer
    knows it (then the saga compensates)."""
    worker = ports.workers.get(worker_id)
    found = ports.ec2_for(worker.region).describe([instance_id]).get(instance_id)
    if found is None:
        return "missing"
    mutate(
        ports.workers,
        worker_id,
        lambda w: w.observe_ec2_state(found.state, now=now, public_ip=found.public_ip, private_ip=found.private_ip),
        saga_step("wait_running"),
    )
    return found.state


def cml_ready(ports: ProvisionPorts, worker_id: str) -> bool:
    """True once the worker's CML answers `ready: true`; a fault counts as not ready yet."""
    if ports.cml is None:
        raise RuntimeError("cml_ready needs a CML probe")
    worker = ports.workers.get(worker_id)

    async def ask() -> bool:
        async with ports.cml.session() as reader:  # type: ignore[union-attr]  # ports.cml is set for the readiness step
            return await reader.ready(worker)

    try:
        return asyncio.run(ask())
    except ExternalServiceError:
        return False


def mark_running(ports: ProvisionPorts, worker_id: str, *, now: datetime) -> Worker:
    return mutate(
        ports.workers,
        worker_id,
        lambda w: (
            w if w.status == WorkerStatus.RUNNING else w.transition(WorkerStatus.RUNNING, now=now, reason="provisioned")
        ),
        saga_step("mark_running"),
    )


@dataclass(frozen=True)
class Compensation:
    worker_id: str
    terminated: list[str]
    status: WorkerStatus


def compensate(
    ports: ProvisionPorts, worker_id: str, *, step: str, error: str, cause: str, now: datetime
) -> Compensation:
    """Terminate whatever the saga launched and mark the worker FAILED. Idempotent: a second run
    finds the instance terminating/terminated and the worker already FAILED."""
    worker = ports.workers.get(worker_id)
    ec2 = ports.ec2_for(worker.region)
    candidates = {i.instance_id for i in ec2.find_by_tag(WORKER_ID_TAG, worker_id)}
    if worker.instance_id:
        candidates.add(worker.instance_id)
    live = [
        i for i, info in ec2.describe(sorted(candidates)).items() if info.state not in ("terminated", "shutting-down")
    ]
    terminated: list[str] = []
    if live:
        result = ec2.terminate(live)
        errors = {i: e for i, e in result.failed.items() if getattr(e, "code", "") != "InstanceNotFound"}
        if errors:
            first = next(iter(errors.values()))
            raise first  # named error: the ASL retries compensation, then hands over to the reconciler
        terminated = result.succeeded
    instance_id = worker.instance_id or (sorted(candidates)[0] if candidates else None)
    updated = mutate(
        ports.workers,
        worker_id,
        lambda w: (w if w.instance_id or not instance_id else w.touch(now, instance_id=instance_id)).fail(
            step=step, kind=error, message=cause, now=now
        ),
        saga_step("compensate"),
    )
    return Compensation(worker_id, terminated, updated.status)


def mark_for_reconciler(ports: ProvisionPorts, worker_id: str, *, step: str, error: str, now: datetime) -> Worker:
    """Last resort when compensation kept failing: FAILED with a reason the reconciler acts on
    (a FAILED worker with a live instance is terminated by its policy)."""
    return mutate(
        ports.workers,
        worker_id,
        lambda w: w.fail(step=step, kind=error, message="compensation failed; left to the reconciler", now=now),
        saga_step("mark_for_reconciler"),
    )


# --- imports ---


@dataclass
class ImportReport:
    imported: list[Worker] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def import_instances(
    ports: ProvisionPorts,
    *,
    region: str,
    instance_id: str | None,
    ami_name_pattern: str | None,
    now: datetime,
    name: str | None = None,
    owner: str | None = None,
    reason: str = "imported",
) -> ImportReport:
    """Adopt existing instances as workers: one by id, or every live instance launched from an
    AMI whose name matches. Known, terminated and name-clashing instances are skipped with a reason.
    `name` (one instance only) is the worker's name instead of the instance's Name tag: taken, it
    is a 409 naming `name` (no suffix is made up for a name the caller chose). `owner` is recorded
    on each imported worker; `reason` is their status reason.

    Idempotent, also against a concurrent import of the same instance (the API beside the
    reconciler's auto-import): an imported worker's id is derived from its instance id
    (`imported_worker_id`), so the second writer's conditional add finds it taken and skips. The
    record is written before the instance is tagged: a failure in between leaves a worker whose
    tags the next import or tag edit completes, never a tagged instance without a record (which
    the reconciler's `terminate` policy would terminate)."""
    if name is not None and instance_id is None:
        raise ValidationFailed("a name is given only with instance_id (one instance)", field="name")
    ec2 = ports.ec2_for(region)
    if instance_id is not None:
        found = ec2.describe([instance_id]).get(instance_id)
        if found is None:
            raise NotFound(f"EC2 in {region} has no instance {instance_id}", field="instance_id")
        instances = [found]
    else:
        instances = ec2.find_by_ami_name(ami_name_pattern or "")
    images = ec2.images(i.image_id for i in instances if i.image_id)
    report = ImportReport()
    for info in sorted(instances, key=lambda i: i.instance_id):
        if info.state in ("terminated", "shutting-down"):
            report.skipped.append({"instance_id": info.instance_id, "reason": f"instance is {info.state}"})
            continue
        known = ports.workers.find_by_instance_id(info.instance_id)
        if known is not None:
            report.skipped.append(
                {"instance_id": info.instance_id, "reason": f"already managed as worker {known.worker_id}"}
            )
            continue
        worker_id = imported_worker_id(info.instance_id)
        if name is not None:
            ports.reservations.claim_name(name, worker_id)  # Conflict (409 on `name`) when taken
            worker_name = name
        else:
            worker_name = info.tags.get("Name") or info.instance_id
            try:
                ports.reservations.claim_name(worker_name, worker_id)
            except Conflict:
                worker_name = f"{worker_name}-{info.instance_id}"
                try:
                    ports.reservations.claim_name(worker_name, worker_id)
                except Conflict:
                    report.skipped.append({"instance_id": info.instance_id, "reason": f"name {worker_name!r} is taken"})
                    continue
        tags = {**info.tags, **managed_tags(worker_id)}
        status = worker_status_from_ec2(info.state)
        try:
            added = ports.workers.add(
                Worker(
                    worker_id=worker_id,
                    name=worker_name,
                    region=region,
                    instance_id=info.instance_id,
                    instance_type=info.instance_type,
                    ami_id=info.image_id,
                    ami_name=_image_field(images, info.image_id, "name"),
                    ami_description=_image_field(images, info.image_id, "description"),
                    ami_created_at=_image_field(images, info.image_id, "created_at"),
                    tags=tags,
                    status=status,
                    ec2_state=info.state,
                    public_ip=info.public_ip,
                    private_ip=info.private_ip,
                    created_at=now,
                    updated_at=now,
                    status_changed_at=now,
                    status_reason=reason,
                    owner=owner,
                )
            )
        except Conflict:
            # Imported a moment ago by a concurrent import (same derived id): not twice.
            ports.reservations.release_name(worker_name)
            report.skipped.append({"instance_id": info.instance_id, "reason": f"already managed as worker {worker_id}"})
            continue
        ec2.set_tags(info.instance_id, add=managed_tags(worker_id), remove=[])
        report.imported.append(added)
    return report


def imported_worker_id(instance_id: str) -> str:
    """The id of the worker an instance is imported as: derived from the instance id, so two
    imports of one instance claim the same id and the second finds it taken."""
    return f"w-{hashlib.sha256(instance_id.encode()).hexdigest()[:17]}"


def _image_field(images: dict[str, ImageInfo], image_id: str | None, name: str) -> Any:
    image = images.get(image_id or "")
    return getattr(image, name) if image is not None else None


__all__ = [
    "MANAGED_BY_TAG",
    "MANAGED_BY_VALUE",
    "CreateWorker",
    "ProvisionPorts",
    "compensate",
    "create_worker",
    "import_instances",
    "launch",
]
