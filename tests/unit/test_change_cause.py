"""Who or what caused a worker's change is recorded on the worker (`last_change`) by every path
that changes its status, and live events carry it: a user's command (with the caller's name), a
saga step, the collector, the idle policy, the reconciler."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from test_worker_services import NOW, S, World

from cmlcm.domain.events import Change, DraftEvent, WorkerEventRules, worker_events
from cmlcm.domain.workers import ChangeCause, WorkerStatus
from cmlcm.handlers.api.models import WorkerView, view_of
from cmlcm.handlers.broadcaster import cause_of
from cmlcm.services import provisioning
from cmlcm.services import workers as svc
from cmlcm.services.collect import COLLECTOR, IDLE_POLICY
from cmlcm.services.reconcile import RECONCILER
from cmlcm.services.workers import USER, mutate

RULES = WorkerEventRules(view=view_of, cause_of=cause_of)


def _detail(event: DraftEvent) -> Mapping[str, Any]:
    assert event.detail is not None, f"{event.type} carries no detail"
    return event.detail


ALICE = ChangeCause(kind="user", by="alice@example.com")


@pytest.fixture
def world() -> World:
    return World()


def test_a_users_command_records_the_user_and_the_event_says_so(world):
    before = world.add(S.RUNNING)
    stopped = svc.stop_worker(world.ports, "w-1", NOW, ALICE)
    assert stopped.last_change == ALICE and world.repo.get("w-1").last_change == ALICE
    (event,) = worker_events(Change(("w-1",), before, stopped), RULES)
    assert event.type == "worker.status_changed"
    assert _detail(event)["cause"] == {"kind": "user", "by": "alice@example.com"}
    # The REST view shows it too (one DTO for responses and events).
    assert WorkerView.of(stopped).last_change == ALICE


def test_a_command_without_a_named_caller_is_still_a_users(world):
    world.add(S.STOPPED)
    assert svc.start_worker(world.ports, "w-1", NOW).last_change == USER


def test_a_change_that_changes_nothing_records_no_cause(world):
    world.add(S.RUNNING, last_change=ALICE)
    writes = world.repo.writes
    same = mutate(world.repo, "w-1", lambda w: w, COLLECTOR)
    assert same.last_change == ALICE and world.repo.writes == writes


def test_a_change_without_a_cause_keeps_the_last_one(world):
    world.add(S.RUNNING, last_change=ALICE)
    tagged = mutate(world.repo, "w-1", lambda w: w.touch(NOW, tags={"a": "b"}))
    assert tagged.last_change == ALICE


def test_saga_steps_record_their_step_and_become_provisioning_step_events(world):
    pending = world.add(S.PENDING, instance_id=None)
    provisioning_ = mutate(
        world.repo,
        "w-1",
        lambda w: w.transition(WorkerStatus.PROVISIONING, now=NOW, reason="launching"),
        provisioning.saga_step("launch"),
    )
    events = worker_events(Change(("w-1",), pending, provisioning_), RULES)
    assert [e.type for e in events] == ["worker.status_changed", "worker.provisioning_step"]
    assert _detail(events[0])["cause"] == {"kind": "saga", "by": "launch"}
    assert events[1].detail == {"step": "launch", "state": "completed"}
    failed = mutate(
        world.repo,
        "w-1",
        lambda w: w.fail(step="wait_running", kind="Timeout", message="no", now=NOW + timedelta(minutes=1)),
        provisioning.saga_step("compensate"),
    )
    step = worker_events(Change(("w-1",), provisioning_, failed), RULES)[-1]
    assert step.type == "worker.provisioning_step" and step.detail == {"step": "compensate", "state": "failed"}


def test_the_idle_policy_pause_is_automatic_and_a_users_is_not(world):
    running = world.add(S.RUNNING)
    auto = mutate(world.repo, "w-1", lambda w: w.pause(now=NOW, reason="idle 60 min"), IDLE_POLICY)
    paused_event = worker_events(Change(("w-1",), running, auto), RULES)[1]
    assert paused_event.type == "worker.paused"
    assert paused_event.detail == {"reason": "idle 60 min", "by": "idle policy", "auto": True}
    world.add(S.RUNNING, worker_id="w-2")
    by_hand = svc.pause_worker(world.ports, "w-2", NOW, "lunch", ALICE)
    assert worker_events(
        Change(("w-2",), world.repo.get("w-2").model_copy(update={"status": S.RUNNING, "pause_count": 0}), by_hand),
        RULES,
    )[1].detail == {
        "reason": "lunch",
        "by": "alice@example.com",
        "auto": False,
    }


def test_observations_and_the_reconciler_record_themselves(world):
    stopping = world.add(S.STOPPING)
    observed = mutate(world.repo, "w-1", lambda w: w.observe_ec2_state("stopped", now=NOW), COLLECTOR)
    (event,) = worker_events(Change(("w-1",), stopping, observed), RULES)
    assert _detail(event)["cause"] == {"kind": "collector", "by": None}
    vanished = mutate(world.repo, "w-1", lambda w: w.instance_vanished(now=NOW), RECONCILER)
    assert cause_of(vanished) == {"kind": "reconciler", "by": "reconciler"}


def test_a_worker_stored_before_causes_existed_reads_as_unknown(world):
    assert cause_of(world.add(S.RUNNING)) == {"kind": "unknown", "by": None}
