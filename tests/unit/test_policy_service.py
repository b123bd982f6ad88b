"""The policy service on the in-memory twins: schedules and idle pauses carried out in one
StopInstances and one StartInstances per region, each worker recorded with reason, actor, cause
and counters; a user's resume snoozes the policies; schedule CRUD rules; savings."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pytest
from test_collect_service import FakeCloudWatch, FakeEc2, Samples
from test_idle import IdleCml

from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.operations import InMemorySettingsRepository
from cmlcm.adapters.schedule_store import InMemoryScheduleRepository
from cmlcm.domain.errors import (
    ConcurrentModification,
    Conflict,
    ExternalServiceError,
    InstanceNotFound,
    NotFound,
    ValidationFailed,
)
from cmlcm.domain.schedules import Override, Period, Schedule
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerMetrics, WorkerStatus
from cmlcm.ports import BulkResult, CollectPorts, PolicyPorts, WorkerPorts
from cmlcm.services import schedules as schedule_svc
from cmlcm.services import workers as worker_svc
from cmlcm.services.collect import collect
from cmlcm.services.policy import PolicyOutcome, apply_policies, explain_worker, savings_report
from tests.support.fakes import Ec2Unexpected

S = WorkerStatus
NOW = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # monday 21:00 Paris: after office hours
MORNING = datetime(2026, 12, 1, 7, 5, tzinfo=UTC)  # tuesday 08:05 Paris
OFFICE = Schedule(
    name="office",
    timezone="Europe/Paris",
    periods=(Period(days=("mon", "tue", "wed", "thu", "fri"), start="08:00", end="18:00"),),
    tags={"team": "emea"},
)


class Ec2Calls:
    """One fake EC2 per region, recording each batched call; `fail` ids come back failed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []
        self.fail: set[str] = set()

    def for_region(self, region: str) -> Ec2Calls.Region:
        return Ec2Calls.Region(self, region)

    class Region(Ec2Unexpected):
        def __init__(self, owner: Ec2Calls, region: str) -> None:
            self.owner, self.region = owner, region

        def _bulk(self, verb: str, ids: Sequence[str]) -> BulkResult:
            self.owner.calls.append((self.region, verb, list(ids)))
            failed: dict[str, ExternalServiceError] = {
                i: InstanceNotFound(f"{i} is gone") for i in ids if i in self.owner.fail
            }
            return BulkResult([i for i in ids if i not in failed], failed)

        def stop(self, ids: Sequence[str]) -> BulkResult:
            return self._bulk("stop", ids)

        def start(self, ids: Sequence[str]) -> BulkResult:
            return self._bulk("start", ids)


def make(
    i: int,
    *,
    region: str = "us-east-1",
    status: WorkerStatus = S.RUNNING,
    team: str | None = "emea",
    nodes: int = 3,
    **extra: object,
) -> Worker:
    return Worker(
        worker_id=f"w-{i}",
        name=f"cml-{i}",
        region=region,
        instance_id=f"i-{i:017x}",
        instance_type="c5.metal",
        tags={"team": team} if team else {},
        status=status,
        service_status=ServiceStatus.AVAILABLE,
        metrics=WorkerMetrics(collected_at=NOW, nodes_running=nodes, labs_running=1 if nodes else 0),
        created_at=NOW - timedelta(days=2),
        updated_at=NOW - timedelta(days=2),
        status_changed_at=NOW - timedelta(days=2),
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


class World:
    def __init__(self, *workers: Worker, settings: Settings | None = None) -> None:
        self.repo = InMemoryWorkerRepository()
        for w in workers:
            self.repo.add(w)
        self.ec2 = Ec2Calls()
        self.settings = InMemorySettingsRepository(settings or Settings(idle_timeout_minutes=60))
        self.schedules = InMemoryScheduleRepository([OFFICE])
        self.ports = PolicyPorts(self.repo, self.settings, self.ec2.for_region, self.schedules)

    def apply(self, now: datetime) -> PolicyOutcome:
        return apply_policies(self.ports, list(self.repo.iter_active()), now=now)


def test_one_stop_call_per_region_for_schedule_and_idle_stops_together():
    # Given after hours: 3 scheduled workers running in two regions, one idle unscheduled one, a busy one
    world = World(
        make(1),
        make(2),
        make(3, region="us-west-2"),
        make(4, team=None, nodes=0),  # no schedule, idle for 2 days
        make(5, team=None),  # no schedule, busy
    )
    # When the policy runs
    outcome = world.apply(NOW)
    # Then one StopInstances per region, the idle one in the same call as its region's scheduled ones
    assert sorted(world.ec2.calls) == [
        ("us-east-1", "stop", ["i-00000000000000001", "i-00000000000000002", "i-00000000000000004"]),
        ("us-west-2", "stop", ["i-00000000000000003"]),
    ]
    assert (outcome.schedule_stopped, outcome.paused_idle, outcome.failed) == (3, 1, 0)
    # And each is recorded with its reason, actor, cause and counters
    scheduled = world.repo.get("w-1")
    assert scheduled.status == S.STOPPING and scheduled.last_pause_reason is not None
    assert scheduled.last_pause_reason.startswith("schedule:office: outside")
    assert (scheduled.last_paused_by, scheduled.last_pause_auto, scheduled.auto_pause_count) == (
        "schedule:office",
        True,
        1,
    )
    assert scheduled.last_change is not None and scheduled.schedule_mark is not None
    assert scheduled.last_change.model_dump() == {"kind": "schedule", "by": "schedule:office"}
    assert (scheduled.policy_stopped_by, scheduled.schedule_mark.desired) == ("schedule", "stopped")
    idle = world.repo.get("w-4")
    assert idle.last_change is not None
    assert (idle.last_paused_by, idle.policy_stopped_by, idle.last_change.kind) == (
        "idle policy",
        "idle",
        "idle_policy",
    )
    assert world.repo.get("w-5").status == S.RUNNING
    # And the outcome says what the policies keep stopped and at what price per hour
    assert (outcome.stopped_by_policy, outcome.usd_per_hour) == (4, 16.32)


def test_the_morning_run_starts_what_the_schedule_stopped_and_counts_an_auto_resume():
    world = World(make(1), make(2, status=S.STOPPED))  # w-2 was stopped by hand before any schedule
    world.apply(NOW)
    world.repo.save(world.repo.get("w-1").observe_ec2_state("stopped", now=NOW + timedelta(minutes=1)))
    world.ec2.calls.clear()
    world.apply(MORNING)
    assert world.ec2.calls == [("us-east-1", "start", ["i-00000000000000001", "i-00000000000000002"])]
    resumed = world.repo.get("w-1")
    assert (resumed.status, resumed.auto_resume_count, resumed.was_auto_paused, resumed.last_resumed_by) == (
        S.STARTING,
        1,
        True,
        "schedule:office",
    )
    assert resumed.schedule_stopped_hours == pytest.approx((MORNING - NOW).total_seconds() / 3600)
    plain = world.repo.get("w-2")
    assert (plain.status, plain.resume_count, plain.status_reason) == (S.STARTING, 0, plain.status_reason)
    assert plain.status_reason is not None and plain.status_reason.startswith("schedule:office")


def test_a_second_run_does_nothing_and_a_users_start_after_hours_stands():
    world = World(make(1))
    world.apply(NOW)
    world.repo.save(world.repo.get("w-1").observe_ec2_state("stopped", now=NOW))
    world.ec2.calls.clear()
    assert world.apply(NOW + timedelta(minutes=5)).marked == 0 and world.ec2.calls == []
    # a user starts it with no snooze configured: the schedule already acted on "stopped"
    world.settings.save(world.settings.get().model_copy(update={"snooze_after_resume_minutes": 0}))
    user = WorkerPorts(world.repo, world.settings, world.ec2.for_region)
    worker_svc.resume_worker(user, "w-1", NOW + timedelta(minutes=10))
    world.repo.save(world.repo.get("w-1").observe_ec2_state("running", now=NOW + timedelta(minutes=11)))
    world.ec2.calls.clear()
    world.apply(NOW + timedelta(minutes=20))
    assert world.ec2.calls == []


def test_a_manual_resume_snoozes_the_idle_policy_until_the_snooze_ends():
    # Given a worker the idle policy paused
    world = World(
        make(1, team=None, nodes=0), settings=Settings(idle_timeout_minutes=60, snooze_after_resume_minutes=90)
    )
    world.apply(NOW)
    world.repo.save(world.repo.get("w-1").observe_ec2_state("stopped", now=NOW))
    # When a user resumes it
    user = WorkerPorts(world.repo, world.settings, world.ec2.for_region)
    resumed = worker_svc.resume_worker(user, "w-1", NOW + timedelta(hours=1), reason="class starts")
    assert (resumed.manual_resume_count, resumed.was_auto_paused, resumed.last_resume_reason) == (
        1,
        True,
        "class starts",
    )
    assert resumed.snoozed_until == NOW + timedelta(hours=2, minutes=30)
    world.repo.save(world.repo.get("w-1").observe_ec2_state("running", now=NOW + timedelta(hours=1)))
    world.ec2.calls.clear()
    # Then the idle policy leaves it alone past its idle timeout, while snoozed
    assert world.apply(NOW + timedelta(hours=2, minutes=29)).paused_idle == 0
    status = explain_worker(world.ports, world.repo.get("w-1"), now=NOW + timedelta(hours=2))
    assert (status.idle.reason, status.idle.snoozed_until) == ("snoozed", NOW + timedelta(hours=2, minutes=30))
    # And pauses it once the snooze is over
    assert world.apply(NOW + timedelta(hours=2, minutes=30)).paused_idle == 1


def test_a_failed_stop_is_recorded_on_that_worker_and_the_others_are_stopped():
    world = World(make(1), make(2))
    world.ec2.fail = {"i-00000000000000002"}
    outcome = world.apply(NOW)
    assert (outcome.schedule_stopped, outcome.failed) == (1, 1)
    failed = world.repo.get("w-2")
    assert failed.last_error is not None
    assert (failed.status, failed.last_error.kind, failed.schedule_mark) == (S.RUNNING, "InstanceNotFound", None)


def test_the_collection_run_applies_schedules_and_reports_them():
    repo = InMemoryWorkerRepository()
    states: dict[str, str] = {}
    for i in range(3):
        w = make(i, nodes=0).model_copy(update={"metrics": None})
        repo.add(w)
        assert w.instance_id is not None
        states[w.instance_id] = "running"
    ec2 = FakeEc2(states)
    ports = CollectPorts(
        workers=repo,
        samples=Samples(),
        ec2_for=lambda r: ec2,
        cloudwatch_for=lambda r: FakeCloudWatch(),
        cml=IdleCml(),  # w-0 busy, the others idle
        settings=InMemorySettingsRepository(Settings(idle_timeout_minutes=60)),
        schedules=InMemoryScheduleRepository([OFFICE]),
    )
    result = asyncio.run(collect(ports, ["w-0", "w-1", "w-2"], now=NOW))
    assert (result.schedule_stopped, result.paused) == (3, 0)  # the schedule wins over idle
    assert result.fleet["policy_stopped"] == 3 and result.policy_savings_usd_per_hour == 12.24
    assert result.as_dict()["schedule_stopped"] == 3


def test_savings_report_sums_the_fleet():
    world = World(make(1), make(2, team=None, nodes=0), make(3, team=None))
    world.apply(NOW)
    report = savings_report(world.ports, now=NOW + timedelta(hours=10))
    assert (report.fleet.workers, report.fleet.schedule_hours, report.fleet.idle_hours) == (3, 10, 10)
    assert report.fleet.usd_avoided == 81.6 and report.fleet.stopped_by_policy_now == 2
    assert [w.worker_id for w, _ in report.workers][-1] == "w-3"  # most hours first


# --- schedule use cases ---------------------------------------------------------------------------


def test_schedule_crud_rules():
    repo = InMemoryScheduleRepository()
    created = schedule_svc.create_schedule(repo, OFFICE, now=NOW)
    assert created.version == 1
    with pytest.raises(Conflict):
        schedule_svc.create_schedule(repo, OFFICE, now=NOW)
    changed = OFFICE.model_copy(update={"mode": "stop_only"})
    saved = schedule_svc.replace_schedule(repo, changed, version=1, now=NOW)
    assert (saved.version, saved.mode) == (2, "stop_only")
    with pytest.raises(ConcurrentModification):
        schedule_svc.replace_schedule(repo, changed, version=1, now=NOW)
    schedule_svc.delete_schedule(repo, "office")
    with pytest.raises(NotFound):
        schedule_svc.delete_schedule(repo, "office")


def test_keep_running_until_20_today_and_expired_overrides_go():
    repo = InMemoryScheduleRepository([OFFICE.model_copy(update={"overrides": (
        Override(state="running", until=datetime(2026, 11, 1, 12, 0)),  # long past
    )})])  # fmt: skip
    at_five = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 17:00 Paris
    workers = InMemoryWorkerRepository()
    saved = schedule_svc.add_override(repo, workers, "office", state="running", until=time(20, 0), now=at_five).schedule
    assert [o.until for o in saved.overrides] == [datetime(2026, 11, 30, 19, 0, tzinfo=UTC)]
    with pytest.raises(ValidationFailed) as caught:
        schedule_svc.add_override(repo, workers, "office", state="running", until=time(16, 0), now=at_five)
    assert caught.value.field == "until"


def test_a_schedule_lists_its_followers():
    world = World(make(1), make(2, team="apac"), make(3))
    report = schedule_svc.get_schedule(world.schedules, world.repo, "office", now=NOW)
    assert report.worker_ids == ["w-1", "w-3"] and report.state.desired == "stopped"
    assert report.schedule.holidays == () and date(2026, 12, 25) not in report.schedule.holidays
