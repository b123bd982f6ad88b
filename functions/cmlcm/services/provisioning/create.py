"""Creating a worker: record it PENDING (a unique name, an Idempotency-Key replayed as the first
answer), resolve its image, then start the provisioning saga."""

from __future__ import annotations

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
    NotFound,
    ValidationFailed,
)
from cmlcm.domain.settings import RegionDefaults, Settings
from cmlcm.domain.workers import (
    Worker,
    WorkerStatus,
    saga_step,
)
from cmlcm.ports import (
    Ec2Port,
    ImageInfo,
    ProvisionPorts,
)
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
