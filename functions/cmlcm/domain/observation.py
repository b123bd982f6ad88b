"""Observation of a collected worker: what one collection cycle saw of it (EC2, CloudWatch, CML)
and the worker after it (`observe`). Pure: `now` is an argument, nothing is read or written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cmlcm.domain.cml import CmlReading, CmlSystem, turn_position
from cmlcm.domain.collection import Cadence
from cmlcm.domain.ec2 import ElasticIps, InstanceInfo, InstanceStatus, InstanceUsage
from cmlcm.domain.licences import observed_licence, progress_licence
from cmlcm.domain.workers import Licence, ServiceStatus, Worker, WorkerError, WorkerMetrics, keep_first_seen


@dataclass(frozen=True)
class Observation:
    """Everything collected about one worker in one cycle."""

    instance: InstanceInfo | None
    instance_missing: bool = False
    checks: tuple[str | None, str | None] = (None, None)
    usage: InstanceUsage = InstanceUsage()
    reading: CmlReading | None = None
    error: WorkerError | None = None
    #: The fingerprint of the labs now in the labs table, when this cycle synced them.
    labs_digest: str | None = None


#: Why a cycle describes an instance (DescribeInstances) beyond its status (DescribeInstanceStatus).
DescribeReason = Literal[
    "full", "missing", "never_collected", "state_changed", "unreachable", "ec2_fault", "elastic_ip", "turn"
]


def needs_description(
    worker: Worker,
    status: InstanceStatus | None,
    cadence: Cadence,
    *,
    now: datetime,
    elastic_ips: ElasticIps | None = None,
) -> DescribeReason | None:
    """Why this cycle must describe the worker's instance, or None when its status and its record
    say all an observation uses (state from the status; addresses from the record). Described:
    on a full read; when the status answer lacks the instance (describe confirms it is gone);
    never collected; its state differs from the one recorded (a start or stop moves addresses);
    recorded unreachable (its address may have moved) or with an EC2 fault (the last read of it
    failed); when the region's Elastic IPs (`elastic_ips`, read this cycle) show its public
    address moved (the one change outside the product that moves it without a state change); and
    on its turn: once every `cadence.every` cycles when the Elastic IPs could not be read, so such
    a change still shows within `every` cycles, else once every `ELASTIC_IP_TURN_ROUNDS` rounds."""
    metrics = worker.metrics
    if cadence.full:
        return "full"
    if status is None:
        return "missing"
    if metrics is None:
        return "never_collected"
    if metrics.ec2_state != status.state:
        return "state_changed"
    if worker.service_status == ServiceStatus.UNREACHABLE:
        return "unreachable"
    if worker.last_error is not None and worker.last_error.source == "ec2":
        return "ec2_fault"
    every = cadence.every
    if elastic_ips is not None:
        if elastic_ips.moved(status.instance_id, worker.public_ip):
            return "elastic_ip"
        # A safety net, rarely: an Elastic IP disassociated and released leaves no trace in them.
        every *= ELASTIC_IP_TURN_ROUNDS
    if describe_turn(worker.worker_id, now=now, every=every, interval_minutes=cadence.interval_minutes):
        return "turn"
    return None


#: With the Elastic IPs read, each worker is still described once every this many rounds (72
#: cycles, 6 hours at the defaults): the recorded address of an instance whose Elastic IP was
#: disassociated and then released matches none of them, so only a description corrects it.
ELASTIC_IP_TURN_ROUNDS = 12


def describe_turn(worker_id: str, *, now: datetime, every: int, interval_minutes: int) -> bool:
    """The worker's turn to be described: once every `every` cycles, spread over the fleet as
    the slow CML facts are (`turn_position`), on the round's last position (at the default
    cadence, one where no slow fact is read)."""
    position = turn_position(worker_id, now=now, every=every, interval_minutes=interval_minutes)
    return position == max(1, every) - 1


def instance_from_status(worker: Worker, status: InstanceStatus) -> InstanceInfo:
    """What the collector knows of an instance it did not describe: the state from its status,
    the rest as the worker's record has it (last described)."""
    return InstanceInfo(
        instance_id=status.instance_id,
        state=status.state,
        instance_type=worker.instance_type,
        image_id=worker.ami_id,
        public_ip=worker.public_ip,
        private_ip=worker.private_ip,
    )


def _service_status(observation: Observation) -> ServiceStatus:
    if observation.instance is None or observation.instance.state != "running":
        return ServiceStatus.UNKNOWN
    if observation.reading is not None:
        return ServiceStatus.AVAILABLE if observation.reading.ready else ServiceStatus.BOOTING
    if observation.error is not None and observation.error.kind == "not_ready":
        return ServiceStatus.BOOTING
    return ServiceStatus.UNREACHABLE


def _licence(current: Licence | None, reading: CmlReading | None, now: datetime) -> Licence | None:
    """The licence as read, with a pending registration moved on (completed, failed, timed out)."""
    if reading is None or reading.registration_status is None:
        return progress_licence(current, None, now=now)
    return observed_licence(
        current,
        registration_status=reading.registration_status,
        authorization_status=reading.authorization_status,
        expires=reading.licence_expires,
        now=now,
    )


#: The `WorkerError.source`s a collection records, and so may clear when it reads cleanly.
COLLECTION_SOURCES = frozenset({"ec2", "cloudwatch", "cml"})


def observe(worker: Worker, observation: Observation, *, now: datetime) -> Worker:
    """The worker after this cycle's observation: pure, and equal to `worker` when nothing
    but the collection time differs (so unchanged workers are not written)."""
    if observation.instance_missing:
        missing = WorkerError(
            source="ec2", kind="InstanceNotFound", message=f"EC2 does not know instance {worker.instance_id}", at=now
        )
        return worker.note_error(missing)
    instance = observation.instance
    updated = worker
    if instance is not None:
        updated = updated.observe_ec2_state(
            instance.state, now=now, public_ip=instance.public_ip, private_ip=instance.private_ip
        )
    reading = observation.reading
    before = worker.metrics
    metrics = WorkerMetrics(
        collected_at=now,
        ec2_state=instance.state if instance else None,
        system_status=observation.checks[0],
        instance_status=observation.checks[1],
        cpu_percent=observation.usage.cpu_percent,
        memory_percent=observation.usage.memory_percent,
        cml_version=_or_before(reading.version, before.cml_version if before else None) if reading else None,
        cml_ready=reading.ready if reading else None,
        cml_cpu_percent=reading.cpu_percent if reading else None,
        cml_memory_percent=reading.memory_percent if reading else None,
        cml_disk_percent=reading.disk_percent if reading else None,
        labs_total=reading.labs_total if reading else None,
        labs_running=reading.labs_running if reading else None,
        nodes_total=reading.nodes_total if reading else None,
        nodes_running=reading.nodes_running if reading else None,
        # Not read this cycle (the slow facts' cadence) is not "unlicensed": keep what was read.
        licensed=(reading.licensed if reading.licence_read else (before.licensed if before else None))
        if reading
        else None,
        # The last sign of use never moves back: this cycle's labs, or the activity read before.
        last_activity_at=_latest(reading.last_activity_at, before.last_activity_at if before else None)
        if reading
        else None,
        labs_digest=observation.labs_digest or (before.labs_digest if before else None),
    )
    if worker.metrics is not None and metrics.same_reading(worker.metrics):
        metrics = worker.metrics
    error = keep_first_seen(worker.last_error, observation.error)
    # A clean reading clears only the faults collection records itself; the saga's (a
    # compensated worker), the reconciler's and a licence's stay until their owner moves on.
    if error is None and worker.last_error is not None and worker.last_error.source not in COLLECTION_SOURCES:
        error = worker.last_error
    candidate = updated.model_copy(
        update={
            "metrics": metrics,
            "service_status": _service_status(observation),
            "licence": _licence(worker.licence, reading, now),
            "cml_system": _system(worker.cml_system, reading),
            "last_error": error,
        }
    )
    if _same_but_updated_at(candidate, worker):
        return worker
    return candidate.model_copy(update={"updated_at": now})


def _same_but_updated_at(candidate: Worker, worker: Worker) -> bool:
    """Equal in every field but `updated_at`: the models' own equality, field by field, without
    dumping two whole workers (health, licence detail) into dicts each cycle for each worker."""
    mine, theirs = candidate.__dict__, worker.__dict__
    return all(mine[name] == theirs[name] for name in _COMPARED)


#: The fields whose change makes an observation a change (`updated_at` is when it was one).
_COMPARED = tuple(name for name in Worker.model_fields if name != "updated_at")


def _system(before: CmlSystem | None, reading: CmlReading | None) -> CmlSystem | None:
    """The slow facts after this reading: each part as read now, or as it was."""
    if reading is None or (reading.health is None and reading.licence_detail is None):
        return before
    return CmlSystem(
        health=reading.health or (before.health if before else None),
        licence_detail=reading.licence_detail or (before.licence_detail if before else None),
    )


def _or_before(value: str | None, before: str | None) -> str | None:
    return value if value is not None else before


def _latest(*moments: datetime | None) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)
