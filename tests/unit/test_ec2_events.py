"""EC2 state-change events applied to workers: the worker's own observation rule decides, stale
events change nothing, instances without a worker are ignored, the cause is recorded."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from test_worker_services import IID, NOW, S, World

from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.services.ec2_events import EC2_EVENT, apply_ec2_state


@pytest.fixture
def world() -> World:
    return World()


def _apply(world: World, ec2_state: str, *, event_time: datetime, now: datetime) -> Worker:
    """The event for the world's instance applied; that instance has a worker, so one comes back."""
    worker = apply_ec2_state(world.repo, IID, ec2_state, event_time=event_time, now=now)
    assert worker is not None, f"the event for {IID} found no worker"
    return worker


def test_a_stopping_worker_is_stopped_when_ec2_says_so(world):
    world.add(S.STOPPING, status_changed_at=NOW)
    worker = _apply(world, "stopped", event_time=NOW + timedelta(seconds=20), now=NOW + timedelta(seconds=21))
    assert worker.status == WorkerStatus.STOPPED and worker.ec2_state == "stopped"
    assert worker.last_change == EC2_EVENT and world.repo.get("w-1") == worker


def test_a_console_start_of_a_stopped_worker_is_recorded(world):
    world.add(S.STOPPED, status_changed_at=NOW)
    later = NOW + timedelta(minutes=1)
    assert _apply(world, "pending", event_time=later, now=later).status == WorkerStatus.STARTING
    assert _apply(world, "running", event_time=later, now=later).status == WorkerStatus.RUNNING


def test_a_stale_event_changes_nothing(world):
    stored = world.add(S.STOPPED, status_changed_at=NOW)
    writes = world.repo.writes
    # A "running" from before the stop arrives late (EventBridge does not promise order).
    after = _apply(world, "running", event_time=NOW - timedelta(seconds=5), now=NOW)
    assert after == stored and world.repo.writes == writes


def test_guarded_statuses_hold_and_unknown_instances_are_ignored(world):
    world.add(S.FAILED, status_changed_at=NOW)
    failed = _apply(world, "running", event_time=NOW + timedelta(seconds=5), now=NOW)
    assert failed.status == WorkerStatus.FAILED  # the reconciler decides about a failed worker
    assert apply_ec2_state(world.repo, "i-00000000000000ff", "stopped", event_time=NOW, now=NOW) is None


def test_a_provisioning_worker_is_not_restarted_by_its_own_launch(world):
    world.add(S.PROVISIONING, status_changed_at=NOW)
    worker = _apply(world, "running", event_time=NOW + timedelta(seconds=30), now=NOW)
    assert worker.status == WorkerStatus.PROVISIONING and worker.ec2_state == "running"
