"""The provisioning saga's steps, one Lambda task each of `statemachines/provision_worker.asl.json`.
Any failure after launch ends in `compensate`, which finds the instance (by id, else by
tag/ClientToken), terminates it and marks the worker FAILED with the step and reason: never a
zombie instance."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from cmlcm.domain.errors import (
    ExternalServiceError,
    IllegalTransition,
)
from cmlcm.domain.workers import (
    WORKER_ID_TAG,
    Worker,
    WorkerStatus,
    saga_step,
)
from cmlcm.ports import (
    InstanceInfo,
    LaunchSpec,
    ProvisionPorts,
)
from cmlcm.services.workers import mutate


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
