"""Worker use cases over the in-memory twins and a fake EC2: what each command changes, that a
refused command touches nothing, that EC2 faults are recorded on the worker, and how the
optimistic-locking loop (`mutate`) retries and gives up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.operations import InMemorySettingsRepository
from cmlcm.domain.errors import (
    AwsAuthError,
    ConcurrentModification,
    ExternalServiceError,
    IllegalTransition,
    InstanceNotFound,
    NotFound,
    TransientAwsError,
    ValidationFailed,
)
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.ports import BulkResult, WorkerPorts, WorkerQuery
from cmlcm.services import workers as svc
from cmlcm.services.workers import LOCK_ATTEMPTS, managed_tags, mutate
from tests.support.fakes import Ec2Unexpected

S = WorkerStatus
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
IID = "i-0000000000000001"
OWNED = managed_tags("w-1")


class FakeEc2(Ec2Unexpected):
    """Records every call; `raises[name]` makes that call raise, `fails[name]` makes the id fail
    inside the BulkResult (as the real adapter reports a per-id error)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.raises: dict[str, Exception] = {}
        self.fails: dict[str, ExternalServiceError] = {}
        self.during: Any = None  # side effect run inside the call (a concurrent writer)

    def _call(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if self.during is not None:
            self.during()
        if name in self.raises:
            raise self.raises[name]

    def _bulk(self, name: str, ids: Sequence[str]) -> BulkResult:
        self._call(name, list(ids))
        failed = {i: self.fails[name] for i in ids if name in self.fails}
        return BulkResult([i for i in ids if i not in failed], failed)

    def start(self, instance_ids: Sequence[str]) -> BulkResult:
        return self._bulk("start", instance_ids)

    def stop(self, instance_ids: Sequence[str]) -> BulkResult:
        return self._bulk("stop", instance_ids)

    def terminate(self, instance_ids: Sequence[str]) -> BulkResult:
        return self._bulk("terminate", instance_ids)

    def set_tags(self, instance_id: str, *, add: dict[str, str], remove: Iterable[str]) -> None:
        self._call("set_tags", (instance_id, dict(add), sorted(remove)))

    def enable_detailed_monitoring(self, instance_id: str) -> None:
        self._call("enable_detailed_monitoring", instance_id)


class World:
    def __init__(self) -> None:
        self.repo = InMemoryWorkerRepository()
        self.ec2 = FakeEc2()
        self.regions: list[str] = []
        self.released: list[str] = []

        def ec2_for(region: str) -> FakeEc2:
            self.regions.append(region)
            return self.ec2

        self.ports = WorkerPorts(self.repo, InMemorySettingsRepository(), ec2_for, self.released.append)

    def add(self, status: WorkerStatus = S.RUNNING, worker_id: str = "w-1", **extra: Any) -> Worker:
        fields: dict[str, Any] = {
            "worker_id": worker_id,
            "name": worker_id.replace("w-", "cml-"),
            "region": "us-west-2",
            "instance_id": IID if worker_id == "w-1" else f"i-{worker_id[2:]:0>16}",
            "status": status,
            "tags": {**managed_tags(worker_id), "Course": "ccna"},
            "created_at": T0,
            "updated_at": T0,
            "status_changed_at": T0,
        }
        return self.repo.add(Worker(**{**fields, **extra}))


@pytest.fixture
def world() -> World:
    return World()


PAUSED = {"last_paused_at": T0, "pause_count": 1, "last_pause_reason": "idle"}

# --- commands that reach EC2 -----------------------------------------------------------------

COMMANDS = {
    "start": (lambda p, k: svc.start_worker(p, k, NOW), S.STOPPED, {}, "start", S.STARTING),
    "stop": (lambda p, k: svc.stop_worker(p, k, NOW), S.RUNNING, {}, "stop", S.STOPPING),
    "pause": (lambda p, k: svc.pause_worker(p, k, NOW, "lunch"), S.RUNNING, {}, "stop", S.STOPPING),
    "resume": (lambda p, k: svc.resume_worker(p, k, NOW), S.STOPPED, PAUSED, "start", S.STARTING),
    "terminate": (lambda p, k: svc.terminate_worker(p, k, NOW), S.RUNNING, {}, "terminate", S.TERMINATING),
}


@pytest.mark.parametrize("key", ["w-1", IID], ids=["by worker id", "by instance id"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_calls_ec2_once_and_stores_the_new_status(world, command, key):
    # Given a worker in a status the command accepts, with an old error on record
    run, status, extra, ec2_call, expected = COMMANDS[command]
    old_error = {"source": "ec2", "kind": "Throttling", "message": "old", "at": T0}
    stored = world.add(status, last_error=old_error, **extra)
    writes = world.repo.writes
    # When the command runs (by worker id or by instance id)
    result = run(world.ports, key)
    # Then EC2 got one call for that instance in the worker's region
    assert world.ec2.calls == [(ec2_call, [IID])] and world.regions == ["us-west-2"]
    # And the record moved, at NOW, with the old error cleared, in one write
    assert (result.status, result.status_changed_at, result.updated_at, result.last_error) == (expected, NOW, NOW, None)
    assert world.repo.get("w-1") == result and result.version == stored.version + 1
    assert world.repo.writes == writes + 1


def test_pause_and_resume_keep_counts_and_reason(world):
    world.add(S.RUNNING)
    paused = svc.pause_worker(world.ports, "w-1", NOW, "lunch")
    assert (paused.pause_count, paused.last_pause_reason, paused.last_paused_at) == (1, "lunch", NOW)
    mutate(world.repo, "w-1", lambda w: w.observe_ec2_state("stopped", now=NOW))
    resumed = svc.resume_worker(world.ports, "w-1", NOW + timedelta(minutes=5))
    assert (resumed.resume_count, resumed.status, resumed.pause_count) == (1, S.STARTING, 1)


REFUSED = [
    ("start", S.RUNNING, {}),
    ("start", S.STARTING, {}),
    ("start", S.TERMINATED, {}),
    ("stop", S.STOPPED, {}),
    ("stop", S.PENDING, {}),
    ("stop", S.TERMINATING, {}),
    ("pause", S.STOPPED, {}),
    ("pause", S.FAILED, {}),
    ("resume", S.STOPPED, {}),
    ("resume", S.RUNNING, PAUSED),
    ("resume", S.STOPPING, PAUSED),
    ("terminate", S.TERMINATED, {}),
    ("terminate", S.TERMINATING, {}),
    ("stop", S.STOPPING, {}),
]


@pytest.mark.parametrize(("command", "status", "extra"), REFUSED, ids=[f"{c} when {s.value}" for c, s, _ in REFUSED])
def test_a_refused_command_calls_no_ec2_and_writes_nothing(world, command, status, extra):
    # Given a worker in a status the command does not accept
    stored = world.add(status, **extra)
    writes = world.repo.writes
    # When the command runs, then it is refused as an illegal transition
    with pytest.raises(IllegalTransition):
        COMMANDS[command][0](world.ports, "w-1")
    # And neither EC2 nor the record was touched
    assert world.ec2.calls == [] and world.repo.writes == writes and world.repo.get("w-1") == stored


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_on_a_worker_without_an_instance_is_refused(world, command):
    _, status, extra, _, _ = COMMANDS[command]
    world.add(status, instance_id=None, **extra)
    writes = world.repo.writes
    with pytest.raises(IllegalTransition) as caught:
        COMMANDS[command][0](world.ports, "w-1")
    assert caught.value.field == "instance_id" and world.ec2.calls == [] and world.repo.writes == writes


@pytest.mark.parametrize("key", ["w-404", "i-0000000000000404"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_on_an_unknown_worker_is_not_found(world, command, key):
    world.add(S.RUNNING)
    with pytest.raises(NotFound) as caught:
        COMMANDS[command][0](world.ports, key)
    assert caught.value.field == "worker_id" and world.ec2.calls == []


@pytest.mark.parametrize("how", ["raised", "per-id"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_ec2_failure_is_recorded_on_the_worker_and_reraised(world, command, how):
    # Given EC2 that fails the call, either outright or for this id in the bulk result
    _, status, extra, ec2_call, _ = COMMANDS[command]
    world.add(status, **extra)
    fault = TransientAwsError(f"{ec2_call}: RequestLimitExceeded: slow down")
    (world.ec2.raises if how == "raised" else world.ec2.fails)[ec2_call] = fault
    # When the command runs, then the same error reaches the caller
    with pytest.raises(TransientAwsError) as caught:
        COMMANDS[command][0](world.ports, "w-1")
    assert caught.value is fault
    # And the worker keeps its status but records the fault (source, kind, message, time)
    after = world.repo.get("w-1")
    assert after.status == status
    assert after.last_error.model_dump() == {
        "source": "ec2",
        "kind": "TransientAwsError",
        "message": fault.message,
        "at": NOW,
    }


def test_a_concurrent_write_during_the_ec2_call_is_kept(world):
    # Given another writer that changes the worker while EC2 is being called
    world.add(S.RUNNING)
    world.ec2.during = lambda: mutate(world.repo, "w-1", lambda w: w.touch(T0, owner="bob"))
    # When the stop completes
    result = svc.stop_worker(world.ports, "w-1", NOW)
    # Then the status change is applied on top of the other write, not instead of it
    assert (result.status, result.owner, result.version) == (S.STOPPING, "bob", 3)


# --- delete ----------------------------------------------------------------------------------


def test_delete_terminates_the_instance_then_removes_the_record_and_releases_the_name(world):
    world.add(S.RUNNING)
    deleted = svc.delete_worker(world.ports, "w-1", terminate_instance=True, now=NOW)
    assert deleted.worker_id == "w-1" and world.ec2.calls == [("terminate", [IID])]
    # and it says what happened: the record as it was, the instance terminating
    assert deleted.instance == "terminating" and deleted.worker.status == S.RUNNING
    assert world.released == ["cml-1"]
    with pytest.raises(NotFound):
        world.repo.get("w-1")


def test_delete_without_terminating_releases_the_instance_from_the_product(world):
    world.add(S.RUNNING)
    deleted = svc.delete_worker(world.ports, IID, terminate_instance=False, now=NOW)
    assert world.ec2.calls == [("set_tags", (IID, {}, ["ManagedBy", "WorkerId"]))]
    assert deleted.instance == "released"
    assert world.repo.active_ids() == []


@pytest.mark.parametrize("terminate_instance", [True, False])
def test_delete_of_a_terminated_worker_or_one_without_instance_calls_no_ec2(world, terminate_instance):
    world.add(S.TERMINATED)
    world.add(S.PENDING, worker_id="w-2", instance_id=None)
    svc.delete_worker(world.ports, "w-1", terminate_instance=terminate_instance, now=NOW)
    svc.delete_worker(world.ports, "w-2", terminate_instance=terminate_instance, now=NOW)
    assert world.ec2.calls == [] and world.repo.list(WorkerQuery(include_terminated=True)).items == []


@pytest.mark.parametrize(("terminate_instance", "where"), [(True, "fails"), (True, "raises"), (False, "raises")])
def test_delete_of_a_worker_whose_instance_ec2_forgot_still_deletes(world, terminate_instance, where):
    world.add(S.RUNNING)
    call = "terminate" if terminate_instance else "set_tags"
    getattr(world.ec2, where)[call] = InstanceNotFound("InvalidInstanceID.NotFound")
    svc.delete_worker(world.ports, "w-1", terminate_instance=terminate_instance, now=NOW)
    assert world.repo.active_ids() == [] and world.released == ["cml-1"]


@pytest.mark.parametrize(("terminate_instance", "where"), [(True, "fails"), (True, "raises"), (False, "raises")])
def test_delete_keeps_the_record_when_ec2_refuses(world, terminate_instance, where):
    # Given EC2 that refuses the call for lack of permission
    world.add(S.RUNNING)
    call = "terminate" if terminate_instance else "set_tags"
    getattr(world.ec2, where)[call] = AwsAuthError("UnauthorizedOperation")
    # When the worker is deleted, then the error reaches the caller
    with pytest.raises(AwsAuthError):
        svc.delete_worker(world.ports, "w-1", terminate_instance=terminate_instance, now=NOW)
    # And the record stays, with the fault recorded, and the name is still taken
    kept = world.repo.get("w-1")
    assert kept.last_error.kind == "AwsAuthError" and kept.status == S.RUNNING and world.released == []


def test_delete_of_an_unknown_worker_is_not_found(world):
    with pytest.raises(NotFound):
        svc.delete_worker(world.ports, "w-404", terminate_instance=True, now=NOW)
    assert world.ec2.calls == []


# --- tags, idle detection, monitoring --------------------------------------------------------


def test_merging_tags_sends_only_the_difference_to_ec2(world):
    world.add(S.RUNNING, tags={**OWNED, "Course": "ccna", "Team": "a"})
    result = svc.update_tags(world.ports, "w-1", {"Course": "ccnp", "Team": None, "New": "x"}, "merge", NOW)
    assert world.ec2.calls == [("set_tags", (IID, {"Course": "ccnp", "New": "x"}, ["Team"]))]
    assert result.tags == {**OWNED, "Course": "ccnp", "New": "x"} and world.repo.get("w-1") == result
    assert result.updated_at == NOW


def test_replacing_tags_removes_every_other_user_tag(world):
    world.add(S.STOPPED, tags={**OWNED, "Course": "ccna", "Team": "a"})
    result = svc.update_tags(world.ports, "w-1", {"Team": "b"}, "replace", NOW)
    assert world.ec2.calls == [("set_tags", (IID, {"Team": "b"}, ["Course"]))]
    assert result.tags == {**OWNED, "Team": "b"}


@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_reserved_tags_are_refused_before_ec2_or_the_store(world, mode):
    stored = world.add(S.RUNNING)
    writes = world.repo.writes
    with pytest.raises(ValidationFailed) as caught:
        svc.update_tags(world.ports, "w-1", {"Course": "x", "WorkerId": "w-2"}, mode, NOW)
    assert caught.value.field == "tags.WorkerId"
    assert world.ec2.calls == [] and world.repo.writes == writes and world.repo.get("w-1") == stored


def test_tags_of_a_terminated_worker_change_only_the_record(world):
    world.add(S.TERMINATED)
    assert svc.update_tags(world.ports, "w-1", {"Note": "gone"}, "merge", NOW).tags["Note"] == "gone"
    assert world.ec2.calls == []


def test_a_tagging_fault_is_recorded_and_the_tags_are_unchanged(world):
    world.add(S.RUNNING)
    world.ec2.raises["set_tags"] = TransientAwsError("CreateTags: Throttling")
    with pytest.raises(TransientAwsError):
        svc.update_tags(world.ports, "w-1", {"Course": "x"}, "merge", NOW)
    after = world.repo.get("w-1")
    assert after.tags["Course"] == "ccna" and after.last_error.kind == "TransientAwsError"


def test_idle_detection_toggle_writes_only_a_change(world):
    world.add(S.RUNNING)
    writes = world.repo.writes
    off = svc.set_idle_detection(world.ports, "w-1", False, NOW)
    assert off.idle_detection_enabled is False and off.updated_at == NOW and world.repo.writes == writes + 1
    assert svc.set_idle_detection(world.ports, IID, False, NOW + timedelta(minutes=1)) == off
    assert world.repo.writes == writes + 1 and world.ec2.calls == []


def test_enabling_monitoring_calls_ec2_and_records_it_once(world):
    world.add(S.RUNNING)
    on = svc.enable_detailed_monitoring(world.ports, "w-1", NOW)
    assert on.detailed_monitoring is True and world.ec2.calls == [("enable_detailed_monitoring", IID)]
    writes = world.repo.writes
    assert svc.enable_detailed_monitoring(world.ports, "w-1", NOW) == on
    assert world.repo.writes == writes


@pytest.mark.parametrize(
    ("status", "instance_id", "field"), [(S.TERMINATED, IID, "status"), (S.PENDING, None, "instance_id")]
)
def test_monitoring_is_refused_for_terminated_workers_and_workers_without_instance(world, status, instance_id, field):
    world.add(status, instance_id=instance_id)
    writes = world.repo.writes
    with pytest.raises(IllegalTransition) as caught:
        svc.enable_detailed_monitoring(world.ports, "w-1", NOW)
    assert caught.value.field == field and world.ec2.calls == [] and world.repo.writes == writes


def test_a_monitoring_fault_is_recorded_and_reraised(world):
    world.add(S.RUNNING)
    world.ec2.raises["enable_detailed_monitoring"] = ExternalServiceError("MonitorInstances: boom")
    with pytest.raises(ExternalServiceError):
        svc.enable_detailed_monitoring(world.ports, "w-1", NOW)
    after = world.repo.get("w-1")
    assert after.detailed_monitoring is False and after.last_error.kind == "ExternalServiceError"


# --- reads -----------------------------------------------------------------------------------


def test_get_by_worker_id_or_instance_id_and_list(world):
    stored = world.add(S.RUNNING)
    world.add(S.TERMINATED, worker_id="w-2")
    assert svc.get_worker(world.repo, "w-1") == svc.get_worker(world.repo, IID) == stored
    assert [w.worker_id for w in svc.list_workers(world.repo, WorkerQuery()).items] == ["w-1"]
    with pytest.raises(NotFound, match="no worker has instance"):
        svc.get_worker(world.repo, "i-0000000000000404")


# --- the optimistic-locking loop -------------------------------------------------------------


class RacingRepository(InMemoryWorkerRepository):
    """Loses the first `losses` saves to a competing writer that sets a tag each time."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses = losses
        self.save_attempts = 0

    def save(self, worker: Worker) -> Worker:
        self.save_attempts += 1
        if self.losses:
            self.losses -= 1
            current = self.get(worker.worker_id)
            super().save(current.touch(T0, tags={**current.tags, f"race{self.save_attempts}": "x"}))
        return super().save(worker)


def _stored(repo: InMemoryWorkerRepository) -> Worker:
    return repo.add(
        Worker(
            worker_id="w-1",
            name="cml-1",
            region="us-east-1",
            status=S.RUNNING,
            created_at=T0,
            updated_at=T0,
            status_changed_at=T0,
        )
    )


def test_mutate_rereads_and_reapplies_after_a_lost_race(world):
    # Given a store where the first LOCK_ATTEMPTS - 1 saves lose to another writer
    repo = RacingRepository(losses=LOCK_ATTEMPTS - 1)
    _stored(repo)
    applied: list[int] = []

    def change(w: Worker) -> Worker:
        applied.append(w.version)
        return w.touch(NOW, owner="ann")

    # When mutate runs, then the last attempt wins, applied to the latest version each time
    result = mutate(repo, "w-1", change)
    assert repo.save_attempts == LOCK_ATTEMPTS and applied == [1, 2, 3, 4, 5][:LOCK_ATTEMPTS]
    assert result.owner == "ann" and {f"race{i}" for i in range(1, LOCK_ATTEMPTS)} <= set(result.tags)
    assert repo.get("w-1") == result


def test_mutate_gives_up_after_lock_attempts(world):
    repo = RacingRepository(losses=LOCK_ATTEMPTS)
    _stored(repo)
    with pytest.raises(ConcurrentModification, match=f"gave up after {LOCK_ATTEMPTS} attempts") as caught:
        mutate(repo, "w-1", lambda w: w.touch(NOW, owner="ann"))
    assert caught.value.field == "version" and caught.value.http_status == 409
    assert repo.save_attempts == LOCK_ATTEMPTS and repo.get("w-1").owner is None


def test_mutate_does_not_write_when_nothing_changes(world):
    repo = RacingRepository(losses=LOCK_ATTEMPTS)
    stored = _stored(repo)
    assert mutate(repo, "w-1", lambda w: w) == stored and repo.save_attempts == 0


def test_mutate_lets_a_domain_refusal_through_without_retrying(world):
    repo = RacingRepository(losses=0)
    _stored(repo)
    with pytest.raises(IllegalTransition):
        mutate(repo, "w-1", lambda w: w.transition(S.STARTING, now=NOW))
    assert repo.save_attempts == 0
