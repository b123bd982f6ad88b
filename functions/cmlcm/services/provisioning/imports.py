"""Importing existing instances as workers (one by id, or every live instance of matching AMIs)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cmlcm.domain.errors import (
    Conflict,
    NotFound,
    ValidationFailed,
)
from cmlcm.domain.workers import (
    Worker,
    worker_status_from_ec2,
)
from cmlcm.ports import (
    ImageInfo,
    ProvisionPorts,
)
from cmlcm.services.workers import managed_tags


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
