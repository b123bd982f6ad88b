"""The worker aggregate: the transition table, EC2 mapping, observations, pause/resume, tags."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from cmlcm.domain.errors import IllegalTransition, ValidationFailed
from cmlcm.domain.workers import (
    ALLOWED_TRANSITIONS,
    Worker,
    WorkerMetrics,
    WorkerStatus,
    worker_status_from_ec2,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)


def worker(status: WorkerStatus = WorkerStatus.RUNNING, **extra: object) -> Worker:
    return Worker(worker_id="w-1", name="w1", region="us-east-1", instance_id="i-0000000000000001",
                  status=status, created_at=T0, updated_at=T0, status_changed_at=T0, **extra)


@pytest.mark.parametrize(("start", "target"), list(product(WorkerStatus, WorkerStatus)))
def test_every_pair_of_the_transition_table(start, target):  # noqa: ANN001
    before = worker(start)
    if target in ALLOWED_TRANSITIONS[start]:
        after = before.transition(target, now=T1, reason="because")
        assert (after.status, after.status_changed_at, after.updated_at, after.status_reason) == (target, T1, T1, "because")
        assert before.status == start  # immutable
    else:
        with pytest.raises(IllegalTransition) as caught:
            before.transition(target, now=T1)
        assert caught.value.http_status == 409 and caught.value.field == "status"


def test_terminated_is_final():
    assert ALLOWED_TRANSITIONS[WorkerStatus.TERMINATED] == frozenset()


@pytest.mark.parametrize(
    ("ec2", "status"),
    [("pending", WorkerStatus.STARTING), ("running", WorkerStatus.RUNNING), ("stopping", WorkerStatus.STOPPING),
     ("stopped", WorkerStatus.STOPPED), ("shutting-down", WorkerStatus.TERMINATING),
     ("terminated", WorkerStatus.TERMINATED), ("rebooting", WorkerStatus.UNKNOWN), (None, WorkerStatus.UNKNOWN)],
)
def test_ec2_state_mapping(ec2, status):  # noqa: ANN001
    assert worker_status_from_ec2(ec2) == status


def test_observation_follows_reality_and_records_ips():
    seen = worker(WorkerStatus.STOPPING).observe_ec2_state("stopped", now=T1, public_ip="3.3.3.3", private_ip="10.0.0.1")
    assert (seen.status, seen.public_ip, seen.private_ip, seen.status_changed_at) == (WorkerStatus.STOPPED, "3.3.3.3", "10.0.0.1", T1)


@pytest.mark.parametrize("kept", [WorkerStatus.FAILED, WorkerStatus.TERMINATED])
def test_failed_and_terminated_are_not_overwritten_by_observation(kept):  # noqa: ANN001
    seen = worker(kept).observe_ec2_state("running", now=T1)
    assert seen.status == kept and seen.ec2_state == "running"


@pytest.mark.parametrize("status", [WorkerStatus.PENDING, WorkerStatus.PROVISIONING])
def test_provisioning_is_not_mistaken_for_a_restart(status):  # noqa: ANN001
    assert worker(status).observe_ec2_state("pending", now=T1).status == status


def test_an_unchanged_observation_is_the_same_worker():
    current = worker(WorkerStatus.RUNNING, ec2_state="running")
    assert current.observe_ec2_state("running", now=T1) == current


def test_pause_then_resume_counts_and_keeps_the_reason():
    paused = worker().pause(now=T1, reason="idle 70 min")
    assert (paused.status, paused.pause_count, paused.last_pause_reason, paused.last_paused_at) == (
        WorkerStatus.STOPPING, 1, "idle 70 min", T1)
    stopped = paused.observe_ec2_state("stopped", now=T1)
    resumed = stopped.resume(now=T1 + timedelta(hours=1))
    assert (resumed.status, resumed.resume_count) == (WorkerStatus.STARTING, 1)
    with pytest.raises(IllegalTransition, match="not paused"):
        resumed.observe_ec2_state("stopped", now=T1).resume(now=T1)


def test_resume_of_a_worker_never_paused_is_refused():
    with pytest.raises(IllegalTransition, match="not paused"):
        worker(WorkerStatus.STOPPED).resume(now=T1)


def test_tags_merge_replace_and_reserved():
    tagged = worker(tags={"ManagedBy": "CmlCloudManager", "WorkerId": "w-1", "Course": "ccna", "Old": "x"})
    merged = tagged.with_tags({"Team": "a", "Old": None}, mode="merge", now=T1)
    assert merged.tags == {"ManagedBy": "CmlCloudManager", "WorkerId": "w-1", "Course": "ccna", "Team": "a"}
    replaced = tagged.with_tags({"Team": "b"}, mode="replace", now=T1)
    assert replaced.tags == {"ManagedBy": "CmlCloudManager", "WorkerId": "w-1", "Team": "b"}
    with pytest.raises(ValidationFailed) as caught:
        tagged.with_tags({"WorkerId": "w-2"}, mode="merge", now=T1)
    assert caught.value.field == "tags.WorkerId"


def test_fail_is_idempotent_and_never_revives_a_terminated_worker():
    failed = worker(WorkerStatus.PROVISIONING).fail(step="launch", kind="QuotaExceeded", message="no vCPUs", now=T1)
    assert failed.status == WorkerStatus.FAILED and failed.status_reason == "launch: QuotaExceeded: no vCPUs"
    assert failed.fail(step="x", kind="y", message="z", now=T1) is failed
    with pytest.raises(IllegalTransition):
        worker(WorkerStatus.TERMINATED).fail(step="x", kind="y", message="z", now=T1)


def test_vanished_instance_terminates_the_record():
    gone = worker(WorkerStatus.FAILED).instance_vanished(now=T1)
    assert gone.status == WorkerStatus.TERMINATED and gone.last_error.kind == "InstanceVanished"
    assert gone.instance_vanished(now=T1) is gone


def test_same_reading_ignores_only_the_collection_time():
    a = WorkerMetrics(collected_at=T0, cpu_percent=10.0)
    assert a.same_reading(WorkerMetrics(collected_at=T1, cpu_percent=10.0))
    assert not a.same_reading(WorkerMetrics(collected_at=T0, cpu_percent=11.0))
    assert not a.same_reading(None)
