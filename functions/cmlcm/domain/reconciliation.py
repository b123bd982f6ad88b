"""The reconciler's decisions: which instances and records of a region disagree. Pure: the
services list EC2 and the records, then act on the plan (`cmlcm.services.reconcile`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from cmlcm.domain.ec2 import InstanceInfo
from cmlcm.domain.workers import WORKER_ID_TAG, Worker, WorkerStatus


@dataclass(frozen=True)
class RegionPlan:
    """What a region's managed instances say against the records."""

    #: Live instances tagged as managed that no record owns (by instance id or WorkerId tag).
    unrecorded: tuple[str, ...]
    #: FAILED or TERMINATED workers whose instance still lives, with that instance.
    failed_live: tuple[tuple[Worker, str], ...]
    #: The region's active workers with an instance: checked for a vanished instance.
    active: tuple[Worker, ...]


def plan_region(region: str, managed: Sequence[InstanceInfo], workers: Sequence[Worker]) -> RegionPlan:
    """Match the region's managed instances to the records (`workers`: every record, all regions)."""
    by_instance = {w.instance_id: w for w in workers if w.instance_id}
    by_id = {w.worker_id: w for w in workers}
    unrecorded: list[str] = []
    failed_live: list[tuple[Worker, str]] = []
    for instance in managed:
        owner = by_instance.get(instance.instance_id) or by_id.get(instance.tags.get(WORKER_ID_TAG, ""))
        if owner is None:
            unrecorded.append(instance.instance_id)
        elif owner.status in (WorkerStatus.FAILED, WorkerStatus.TERMINATED):
            failed_live.append((owner, instance.instance_id))
    active = tuple(w for w in workers if w.region == region and w.is_active and w.instance_id)
    return RegionPlan(tuple(unrecorded), tuple(failed_live), active)


def vanished(active: Sequence[Worker], known: Collection[str]) -> list[Worker]:
    """The active workers whose instance EC2 no longer knows (`known`: the ids it described)."""
    return [w for w in active if w.instance_id not in known]
