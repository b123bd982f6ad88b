"""The worker aggregate, as a specification: the transition table written out by hand, the EC2
state mapping, how observations of EC2 are recorded, pause/resume bookkeeping, tags and metrics.

Pure domain code: no AWS, no clock (every `now` is given).
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from cmlcm.domain.errors import IllegalTransition, ValidationFailed
from cmlcm.domain.workers import (
    ACTIVE_STATUSES,
    ALLOWED_TRANSITIONS,
    RESERVED_TAGS,
    Worker,
    WorkerMetrics,
    WorkerStatus,
    worker_status_from_ec2,
)

S = WorkerStatus
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)

#: The transition table as the product is specified, independent of the code's own table.
SPEC_ALLOWED: set[tuple[WorkerStatus, WorkerStatus]] = {
    (S.PENDING, S.PROVISIONING),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.TERMINATING),
    (S.PROVISIONING, S.RUNNING),
    (S.PROVISIONING, S.FAILED),
    (S.PROVISIONING, S.TERMINATING),
    (S.RUNNING, S.STOPPING),
    (S.RUNNING, S.TERMINATING),
    (S.RUNNING, S.FAILED),
    (S.STOPPING, S.STOPPED),
    (S.STOPPING, S.TERMINATING),
    (S.STOPPED, S.STARTING),
    (S.STOPPED, S.TERMINATING),
    (S.STARTING, S.RUNNING),
    (S.STARTING, S.STOPPING),
    (S.STARTING, S.TERMINATING),
    (S.TERMINATING, S.TERMINATED),
    (S.TERMINATING, S.FAILED),
    (S.FAILED, S.TERMINATING),
    (S.FAILED, S.TERMINATED),
    (S.UNKNOWN, S.STARTING),
    (S.UNKNOWN, S.STOPPING),
    (S.UNKNOWN, S.TERMINATING),
    (S.UNKNOWN, S.FAILED),
}
ALL_PAIRS = list(product(WorkerStatus, WorkerStatus))
EC2_STATES = ["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]


def worker(status: WorkerStatus = S.RUNNING, **extra: object) -> Worker:
    fields: dict[str, object] = {
        "worker_id": "w-1",
        "name": "w1",
        "region": "us-east-1",
        "instance_id": "i-0000000000000001",
        "status": status,
        "created_at": T0,
        "updated_at": T0,
        "status_changed_at": T0,
    }
    return Worker.model_validate({**fields, **extra})


# --- the transition table ---------------------------------------------------------------------


def test_the_code_table_is_the_specified_table():
    # Given the table written above, when the code's table is flattened, then they are the same.
    in_code = {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert in_code == SPEC_ALLOWED
    assert set(ALLOWED_TRANSITIONS) == set(WorkerStatus)


@pytest.mark.parametrize(("start", "target"), sorted(SPEC_ALLOWED), ids=lambda s: s.value)
def test_an_allowed_transition_moves_and_stamps_the_given_time(start, target):
    # Given a worker in `start` with history
    before = worker(start, pause_count=2, version=7, owner="ann")
    # When it moves to `target` at T1
    after = before.transition(target, now=T1, reason="because")
    # Then status, both timestamps and the reason follow; nothing else changes
    assert (after.status, after.status_changed_at, after.updated_at, after.status_reason) == (target, T1, T1, "because")
    assert after.model_dump(
        exclude={"status", "status_changed_at", "updated_at", "status_reason"}
    ) == before.model_dump(exclude={"status", "status_changed_at", "updated_at", "status_reason"})
    assert before.status == start and before.updated_at == T0  # the original is untouched


@pytest.mark.parametrize(
    ("start", "target"),
    [p for p in ALL_PAIRS if p not in SPEC_ALLOWED and p[0] != p[1]],
    ids=lambda s: s.value,
)
def test_a_transition_outside_the_table_is_illegal(start, target):
    # Given a worker in `start`, when asked to go to a status the table does not allow
    with pytest.raises(IllegalTransition) as caught:
        worker(start).transition(target, now=T1)
    # Then it is a 409 on the status field naming both statuses
    assert caught.value.http_status == 409 and caught.value.field == "status"
    assert f"from {start.value} to {target.value}" in caught.value.message


@pytest.mark.parametrize("status", list(WorkerStatus), ids=lambda s: s.value)
def test_moving_to_the_same_status_is_illegal(status):
    with pytest.raises(IllegalTransition, match=f"already {status.value}"):
        worker(status).transition(status, now=T1)


def test_terminated_is_the_only_inactive_status():
    assert set(WorkerStatus) - ACTIVE_STATUSES == {S.TERMINATED}
    assert not worker(S.TERMINATED).is_active and worker(S.FAILED).is_active


# --- EC2 state mapping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ec2_state", "status"),
    [
        ("pending", S.STARTING),
        ("running", S.RUNNING),
        ("stopping", S.STOPPING),
        ("stopped", S.STOPPED),
        ("shutting-down", S.TERMINATING),
        ("terminated", S.TERMINATED),
        ("rebooting", S.UNKNOWN),
        ("Running", S.UNKNOWN),
        ("", S.UNKNOWN),
        (None, S.UNKNOWN),
    ],
)
def test_every_ec2_state_maps_to_one_worker_status(ec2_state, status):
    assert worker_status_from_ec2(ec2_state) == status


# --- observing EC2 ----------------------------------------------------------------------------

FOLLOWS_REALITY = [s for s in WorkerStatus if s not in (S.FAILED, S.TERMINATED, S.PENDING, S.PROVISIONING)]


@pytest.mark.parametrize(("status", "ec2_state"), list(product(FOLLOWS_REALITY, [*EC2_STATES, "rebooting", None])))
def test_reality_wins_for_ordinary_statuses(status, ec2_state):
    # Given a worker that is neither failed, terminated nor being provisioned
    before = worker(status, ec2_state="something-else")
    # When EC2 reports a state
    seen = before.observe_ec2_state(ec2_state, now=T1)
    # Then the worker takes EC2's state, and the change time moves only if the status did
    expected = worker_status_from_ec2(ec2_state)
    assert seen.status == expected and seen.ec2_state == ec2_state and seen.updated_at == T1
    if expected != status:
        assert seen.status_changed_at == T1 and seen.status_reason == f"ec2 reports {ec2_state}"
    else:
        assert seen.status_changed_at == T0 and seen.status_reason is None


@pytest.mark.parametrize(("kept", "ec2_state"), list(product([S.FAILED, S.TERMINATED], EC2_STATES)))
def test_failed_and_terminated_are_kept_but_the_ec2_state_is_recorded(kept, ec2_state):
    seen = worker(kept).observe_ec2_state(ec2_state, now=T1)
    assert seen.status == kept and seen.status_changed_at == T0
    assert seen.ec2_state == ec2_state and seen.updated_at == T1


@pytest.mark.parametrize(("status", "ec2_state"), list(product([S.PENDING, S.PROVISIONING], ["pending", "running"])))
def test_provisioning_keeps_its_status_while_the_instance_boots(status, ec2_state):
    seen = worker(status).observe_ec2_state(ec2_state, now=T1)
    assert seen.status == status and seen.ec2_state == ec2_state


@pytest.mark.parametrize(
    ("status", "ec2_state", "expected"),
    [
        (S.PENDING, "terminated", S.TERMINATED),
        (S.PROVISIONING, "stopped", S.STOPPED),
        (S.PROVISIONING, "shutting-down", S.TERMINATING),
    ],
)
def test_provisioning_follows_ec2_when_the_instance_goes_away(status, ec2_state, expected):
    assert worker(status).observe_ec2_state(ec2_state, now=T1).status == expected


def test_addresses_are_recorded_when_given_and_kept_when_not():
    # Given a running worker without addresses
    seen = worker(S.RUNNING, ec2_state="running").observe_ec2_state(
        "running", now=T1, public_ip="3.3.3.3", private_ip="10.0.0.1"
    )
    assert (seen.public_ip, seen.private_ip, seen.updated_at) == ("3.3.3.3", "10.0.0.1", T1)
    # When an observation carries no addresses, they are kept
    assert seen.observe_ec2_state("running", now=T2).public_ip == "3.3.3.3"
    # When the instance stops and only the private address is left, the public one is cleared
    stopped = seen.observe_ec2_state("stopped", now=T2, private_ip="10.0.0.1")
    assert (stopped.public_ip, stopped.private_ip) == (None, "10.0.0.1")


@pytest.mark.parametrize(
    ("status", "ec2_state"),
    [(S.RUNNING, "running"), (S.STOPPED, "stopped"), (S.FAILED, "running"), (S.PROVISIONING, "pending")],
)
def test_an_observation_that_changes_nothing_returns_an_equal_worker(status, ec2_state):
    current = worker(status, ec2_state=ec2_state, public_ip="3.3.3.3", private_ip="10.0.0.1")
    seen = current.observe_ec2_state(ec2_state, now=T1, public_ip="3.3.3.3", private_ip="10.0.0.1")
    assert seen == current and seen.updated_at == T0


# --- pause and resume -------------------------------------------------------------------------


def test_pause_stops_counts_and_keeps_the_reason():
    paused = worker(S.RUNNING, pause_count=3).pause(now=T1, reason="idle 70 min")
    assert (paused.status, paused.pause_count, paused.last_pause_reason, paused.last_paused_at) == (
        S.STOPPING,
        4,
        "idle 70 min",
        T1,
    )
    assert paused.status_reason == "paused: idle 70 min" and paused.resume_count == 0


@pytest.mark.parametrize("status", [S.STOPPED, S.STOPPING, S.PENDING, S.TERMINATED, S.FAILED])
def test_pause_of_a_worker_that_cannot_stop_is_refused_and_counts_nothing(status):
    with pytest.raises(IllegalTransition):
        worker(status).pause(now=T1, reason="idle")


def test_resume_after_a_pause_counts_and_a_second_pause_counts_again():
    # Given a worker paused and then seen stopped
    stopped = worker().pause(now=T1, reason="idle").observe_ec2_state("stopped", now=T1)
    # When it is resumed
    resumed = stopped.resume(now=T2)
    # Then it is starting and the resume is counted
    assert (resumed.status, resumed.resume_count, resumed.last_resumed_at, resumed.status_reason) == (
        S.STARTING,
        1,
        T2,
        "resumed",
    )
    # And once running it can be paused and resumed again, with both counters moving on
    again = resumed.observe_ec2_state("running", now=T2).pause(now=T2 + timedelta(hours=1), reason="night")
    again = again.observe_ec2_state("stopped", now=T2 + timedelta(hours=1)).resume(now=T2 + timedelta(hours=2))
    assert (again.pause_count, again.resume_count, again.last_pause_reason) == (2, 2, "night")


def test_resume_of_a_worker_never_paused_is_refused():
    with pytest.raises(IllegalTransition, match="not paused") as caught:
        worker(S.STOPPED).resume(now=T1)
    assert caught.value.field == "status"


def test_resume_twice_is_refused():
    resumed = worker().pause(now=T1, reason="idle").observe_ec2_state("stopped", now=T1).resume(now=T2)
    with pytest.raises(IllegalTransition, match="not paused"):
        resumed.observe_ec2_state("stopped", now=T2).resume(now=T2)


@pytest.mark.parametrize("paused_first", [True, False])
def test_resume_of_a_terminated_worker_says_terminated(paused_first):
    # Given a terminated worker, paused before or never paused
    base = worker().pause(now=T1, reason="idle") if paused_first else worker()
    terminated = base.model_copy(update={"status": S.TERMINATED})
    # When it is resumed, then the refusal names its status, not "not paused"
    with pytest.raises(IllegalTransition, match="from terminated to starting"):
        terminated.resume(now=T2)


def test_resume_while_the_pause_is_still_stopping_is_refused():
    with pytest.raises(IllegalTransition, match="from stopping to starting"):
        worker().pause(now=T1, reason="idle").resume(now=T2)


# --- tags -------------------------------------------------------------------------------------

OWNED = {"ManagedBy": "CmlCloudManager", "WorkerId": "w-1"}


def test_merge_sets_given_keys_removes_null_keys_and_keeps_the_rest():
    tagged = worker(tags={**OWNED, "Course": "ccna", "Old": "x"})
    merged = tagged.with_tags({"Team": "a", "Course": "ccnp", "Old": None, "Absent": None}, mode="merge", now=T1)
    assert merged.tags == {**OWNED, "Course": "ccnp", "Team": "a"}
    assert merged.updated_at == T1 and tagged.tags["Old"] == "x"


def test_replace_keeps_only_reserved_tags_and_the_given_non_null_ones():
    tagged = worker(tags={**OWNED, "Course": "ccna"})
    replaced = tagged.with_tags({"Team": "b", "Ignored": None}, mode="replace", now=T1)
    assert replaced.tags == {**OWNED, "Team": "b"}
    assert tagged.with_tags({}, mode="replace", now=T1).tags == OWNED


@pytest.mark.parametrize(
    ("key", "mode", "value"), list(product(sorted(RESERVED_TAGS), ["merge", "replace"], ["x", None]))
)
def test_reserved_tags_cannot_be_set_or_removed(key, mode, value):
    tagged = worker(tags=dict(OWNED))
    with pytest.raises(ValidationFailed) as caught:
        tagged.with_tags({"Fine": "ok", key: value}, mode=mode, now=T1)
    assert caught.value.field == f"tags.{key}" and caught.value.http_status == 422


# --- metrics ----------------------------------------------------------------------------------


def _a_value_for(annotation: object) -> object:
    kinds = set(typing.get_args(annotation)) if isinstance(annotation, types.UnionType) else {annotation}
    for kind, value in ((bool, True), (int, 7), (float, 12.5), (str, "x"), (datetime, T2)):
        if kind in kinds:
            return value
    raise AssertionError(f"no sample value for {annotation!r}")


READING_FIELDS = [name for name in WorkerMetrics.model_fields if name != "collected_at"]


def test_same_reading_ignores_only_the_collection_time():
    a = WorkerMetrics(collected_at=T0, cpu_percent=10.0, labs_running=2)
    assert a.same_reading(WorkerMetrics(collected_at=T1, cpu_percent=10.0, labs_running=2))
    assert not a.same_reading(None)


@pytest.mark.parametrize("field", READING_FIELDS)
def test_same_reading_notices_every_other_field(field):
    # Given two readings that differ only in `field` (a new field is covered automatically)
    value = _a_value_for(WorkerMetrics.model_fields[field].annotation)
    base = WorkerMetrics(collected_at=T0)
    changed = WorkerMetrics.model_validate({"collected_at": T1, field: value})
    # Then they are not the same reading, in either direction
    assert not base.same_reading(changed) and not changed.same_reading(base)
