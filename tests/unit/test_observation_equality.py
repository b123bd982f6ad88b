"""`observe` and `WorkerMetrics.same_reading` decide "unchanged" (no write) by comparing models
field by field; they must decide exactly as comparing the models' dumps did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmlcm.domain.cml import CmlSystem, ComputeHealth, LicenceDetail, LicenceFeature, SystemHealth
from cmlcm.domain.observation import _same_but_updated_at
from cmlcm.domain.workers import (
    ChangeCause,
    Licence,
    ScheduleMark,
    ServiceStatus,
    Worker,
    WorkerError,
    WorkerMetrics,
    WorkerStatus,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)

BARE = Worker(
    worker_id="w-1",
    name="cml-1",
    region="us-east-1",
    created_at=NOW,
    updated_at=NOW,
    status_changed_at=NOW,
)
METRICS = WorkerMetrics(
    collected_at=NOW,
    ec2_state="running",
    system_status="ok",
    instance_status="ok",
    cpu_percent=12.5,
    memory_percent=40.0,
    cml_version="2.9.0",
    cml_ready=True,
    cml_cpu_percent=10.0,
    cml_memory_percent=20.0,
    cml_disk_percent=30.0,
    labs_total=2,
    labs_running=1,
    nodes_total=4,
    nodes_running=2,
    licensed=True,
    last_activity_at=NOW,
    labs_digest="abc",
)
#: A value for every field of a worker that differs from BARE's.
OTHER: dict[str, object] = {
    "worker_id": "w-2",
    "name": "cml-2",
    "region": "eu-west-1",
    "instance_id": "i-1",
    "instance_type": "c5.metal",
    "ami_id": "ami-1",
    "ami_name": "cml",
    "ami_description": "CML 2.9",
    "ami_created_at": NOW,
    "owner": "ann",
    "tags": {"Course": "ccna"},
    "status": WorkerStatus.RUNNING,
    "service_status": ServiceStatus.AVAILABLE,
    "ec2_state": "running",
    "public_ip": "3.3.3.3",
    "private_ip": "10.0.0.1",
    "created_at": LATER,
    "status_changed_at": LATER,
    "status_reason": "started",
    "idle_detection_enabled": False,
    "detailed_monitoring": True,
    "pause_count": 1,
    "resume_count": 1,
    "auto_pause_count": 1,
    "manual_pause_count": 1,
    "auto_resume_count": 1,
    "manual_resume_count": 1,
    "last_pause_reason": "idle",
    "last_paused_at": NOW,
    "last_paused_by": "idle policy",
    "last_pause_auto": True,
    "last_resumed_at": NOW,
    "last_resume_reason": "asked",
    "last_resumed_by": "ann",
    "last_resume_auto": False,
    "was_auto_paused": True,
    "snoozed_until": LATER,
    "policy_stopped_at": NOW,
    "policy_stopped_by": "idle",
    "idle_stopped_hours": 1.5,
    "schedule_stopped_hours": 2.5,
    "schedule_mark": ScheduleMark(schedule="nights", desired="stopped", at=NOW),
    "metrics": METRICS,
    "licence": Licence(registration_status="REGISTERED"),
    "cml_system": CmlSystem(
        health=SystemHealth(valid=True, computes=[ComputeHealth(compute_id="c-1", hostname="h", valid=True)]),
        licence_detail=LicenceDetail(features=[LicenceFeature(id="f", name="n", in_use=1, max=1)]),
    ),
    "last_error": WorkerError(source="cml", kind="timeout", message="late", at=NOW),
    "last_change": ChangeCause(kind="collector"),
    "version": 3,
}


def _dumps_equal(a: Worker, b: Worker) -> bool:
    """The comparison `observe` made before: the dumps, `updated_at` left out."""
    return a.model_dump(exclude={"updated_at"}) == b.model_dump(exclude={"updated_at"})


def test_every_field_but_updated_at_is_compared() -> None:
    assert set(OTHER) == set(Worker.model_fields) - {"updated_at"}


@pytest.mark.parametrize("field", sorted(OTHER))
def test_a_change_in_any_one_field_is_a_change_as_the_dumps_say(field: str) -> None:
    # Given a worker and a copy differing in one field
    changed = BARE.model_copy(update={field: OTHER[field]})
    # Then both comparisons see a change, in either direction
    assert _dumps_equal(changed, BARE) is False
    assert _same_but_updated_at(changed, BARE) is False and _same_but_updated_at(BARE, changed) is False


def test_equal_copies_rebuilt_from_scratch_are_unchanged_as_the_dumps_say() -> None:
    # Given a fully filled worker and an equal one rebuilt from its JSON (no shared objects)
    full = BARE.model_copy(update=OTHER)
    rebuilt = Worker.model_validate_json(full.model_dump_json()).model_copy(update={"updated_at": LATER})
    # Then only updated_at differs, and both comparisons say unchanged
    assert rebuilt is not full and rebuilt.cml_system is not full.cml_system
    assert _dumps_equal(rebuilt, full) is True
    assert _same_but_updated_at(rebuilt, full) is True


def test_a_whole_float_and_an_int_compare_as_the_dumps_do() -> None:
    # 2.0 hours read back from DynamoDB may arrive as 2 (a whole number): equal both ways
    a = BARE.model_copy(update={"idle_stopped_hours": 2.0})
    b = BARE.model_copy(update={"idle_stopped_hours": 2})
    assert _dumps_equal(a, b) is _same_but_updated_at(a, b) is True


def test_same_reading_compares_every_field_but_the_collection_time() -> None:
    # Given a snapshot, the same read later, and one differing in each other field in turn
    later = METRICS.model_copy(update={"collected_at": LATER})
    assert METRICS.same_reading(later) and later.same_reading(METRICS)
    assert not METRICS.same_reading(None)
    for field in set(WorkerMetrics.model_fields) - {"collected_at"}:
        value = getattr(METRICS, field)
        assert value is not None, field  # every field filled, so each gets another value of its type
        other = {str: "x", bool: not value, float: 99.5, int: 99, datetime: LATER}[type(value)]
        changed = METRICS.model_copy(update={field: other})
        dumps = METRICS.model_dump(exclude={"collected_at"}) == changed.model_dump(exclude={"collected_at"})
        assert dumps is False and METRICS.same_reading(changed) is False, field
