"""The fleet policy as pure functions: the idle status (eligible or not and why, snooze edges),
auto vs manual counters and `was_auto_paused`, hours stopped by policy, schedules before idle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmlcm.domain.idle import decide_idle, idle_status
from cmlcm.domain.policy import decide_policies, fleet_savings, worker_policy, worker_savings
from cmlcm.domain.schedules import Period, Schedule
from cmlcm.domain.settings import Settings, hourly_price
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerMetrics, WorkerStatus

S = WorkerStatus
NOW = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # monday 21:00 in Paris
SETTINGS = Settings(idle_timeout_minutes=60)


def worker(
    *,
    status: WorkerStatus = S.RUNNING,
    nodes: int | None = 0,
    activity: datetime | None = None,
    changed: datetime = NOW - timedelta(hours=3),
    cpu: float | None = None,
    **extra: object,
) -> Worker:
    return Worker(
        worker_id=str(extra.pop("worker_id", "w-1")),
        name="w1",
        region="us-east-1",
        instance_id="i-0000000000000001",
        instance_type="m5zn.metal",
        status=status,
        service_status=ServiceStatus.AVAILABLE,
        metrics=WorkerMetrics(collected_at=NOW, nodes_running=nodes, labs_running=1 if nodes else 0,
                              last_activity_at=activity, cpu_percent=cpu),
        created_at=changed,
        updated_at=changed,
        status_changed_at=changed,
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


IDLE_CASES = [
    # (case, worker, settings, reason, eligible, pause_at)
    ("quiet for 3 h: idle", worker(), SETTINGS, "idle", True, NOW - timedelta(hours=2)),
    ("activity 10 min ago: counting down", worker(activity=NOW - timedelta(minutes=10)), SETTINGS,
     "recent_activity", True, NOW + timedelta(minutes=50)),
    ("nodes running", worker(nodes=3), SETTINGS, "labs_running", False, None),
    ("detection off for the worker", worker(idle_detection_enabled=False), SETTINGS, "detection_off", False, None),
    ("detection off for the fleet", worker(), Settings(idle_detection_enabled=False), "detection_off", False, None),
    ("stopped", worker(status=S.STOPPED), SETTINGS, "not_running", False, None),
    ("CML not read yet", worker(nodes=None), SETTINGS, "waiting_for_cml", False, None),
    ("CPU busy", worker(cpu=80.0), Settings(idle_cpu_busy_percent=50), "cpu_busy", False, None),
    ("CPU under the threshold", worker(cpu=20.0), Settings(idle_cpu_busy_percent=50), "idle", True,
     NOW - timedelta(hours=2)),
    ("snoozed a second more", worker(snoozed_until=NOW + timedelta(seconds=1)), SETTINGS, "snoozed", False,
     NOW + timedelta(seconds=1)),
    ("the snooze ends now: idle", worker(snoozed_until=NOW), SETTINGS, "idle", True, NOW - timedelta(hours=2)),
    ("snoozed, then still the timeout", worker(changed=NOW - timedelta(minutes=5), snoozed_until=NOW + timedelta(minutes=30)),
     SETTINGS, "snoozed", False, NOW + timedelta(minutes=55)),
    ("just started: a full timeout", worker(changed=NOW - timedelta(minutes=5)), SETTINGS, "recent_activity", True,
     NOW + timedelta(minutes=55)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "subject", "settings", "reason", "eligible", "pause_at"), IDLE_CASES, ids=[c[0] for c in IDLE_CASES]
)
def test_idle_status(case, subject, settings, reason, eligible, pause_at):  # noqa: ANN001
    status = idle_status(subject, settings, now=NOW)
    assert (status.reason, status.eligible, status.pause_at) == (reason, eligible, pause_at), status.message
    # the policy pauses exactly the workers whose status says idle
    assert bool(decide_idle([subject], settings, now=NOW)) == (reason == "idle")


def test_the_last_activity_names_its_source():
    assert idle_status(worker(activity=NOW - timedelta(minutes=10)), SETTINGS, now=NOW).last_activity_source == (
        "cml_events"
    )
    assert idle_status(worker(), SETTINGS, now=NOW).last_activity_source == "status_change"
    running = idle_status(worker(nodes=2), SETTINGS, now=NOW)
    assert (running.last_activity_source, running.last_activity_at) == ("labs_running", NOW)


# --- counters, actors, was_auto_paused -------------------------------------------------------------


def test_auto_and_manual_pauses_and_resumes_are_counted_apart():
    w = worker()
    auto = w.pause(now=NOW, reason="idle 70 min", by="idle policy", auto=True, source="idle")
    assert (auto.pause_count, auto.auto_pause_count, auto.manual_pause_count) == (1, 1, 0)
    assert (auto.last_paused_by, auto.last_pause_auto, auto.policy_stopped_by) == ("idle policy", True, "idle")
    stopped = auto.observe_ec2_state("stopped", now=NOW + timedelta(minutes=1))
    resumed = stopped.resume(now=NOW + timedelta(hours=2), by="ann@example.com", snooze=timedelta(minutes=45))
    assert (resumed.resume_count, resumed.manual_resume_count, resumed.auto_resume_count) == (1, 1, 0)
    assert (resumed.was_auto_paused, resumed.last_resumed_by, resumed.last_resume_auto) == (
        True,
        "ann@example.com",
        False,
    )
    assert resumed.snoozed_until == NOW + timedelta(hours=2, minutes=45)
    running = resumed.observe_ec2_state("running", now=NOW + timedelta(hours=2, minutes=1))
    manual = running.pause(now=NOW + timedelta(hours=3), reason="lunch", by="bob@example.com")
    assert (manual.pause_count, manual.auto_pause_count, manual.manual_pause_count) == (2, 1, 1)
    assert manual.policy_stopped_at is None  # a user's pause saves nothing the policy can claim
    again = manual.observe_ec2_state("stopped", now=NOW + timedelta(hours=3, minutes=1)).resume(
        now=NOW + timedelta(hours=4), by="bob@example.com"
    )
    assert again.was_auto_paused is False


def test_a_record_of_the_single_counter_era_keeps_its_totals():
    old = worker(pause_count=7, resume_count=6)  # as stored before the split: auto/manual absent, so 0
    paused = old.pause(now=NOW, reason="idle", by="idle policy", auto=True, source="idle")
    assert (paused.pause_count, paused.auto_pause_count, paused.manual_pause_count) == (8, 1, 0)


def test_an_auto_resume_does_not_snooze():
    stopped = worker().pause(now=NOW, reason="schedule:office", auto=True, source="schedule")
    resumed = stopped.observe_ec2_state("stopped", now=NOW).resume(
        now=NOW + timedelta(hours=1), auto=True, snooze=timedelta(hours=1)
    )
    assert (resumed.snoozed_until, resumed.auto_resume_count) == (None, 1)


# --- hours and money saved ------------------------------------------------------------------------


def test_hours_stopped_by_a_policy_end_when_the_worker_starts_whoever_starts_it():
    paused = worker().pause(now=NOW, reason="schedule:office", by="schedule:office", auto=True, source="schedule")
    stopped = paused.observe_ec2_state("stopped", now=NOW + timedelta(minutes=2))
    # still stopped: the current stop counts up to now
    assert stopped.policy_stopped_hours(NOW + timedelta(hours=10))["schedule"] == 10
    # started from the EC2 console 11 h later: the stop ends and is kept
    started = stopped.observe_ec2_state("running", now=NOW + timedelta(hours=11))
    assert (started.schedule_stopped_hours, started.policy_stopped_at) == (11, None)
    assert started.policy_stopped_hours(NOW + timedelta(hours=30)) == {"idle": 0.0, "schedule": 11}


def test_savings_price_the_hours_with_the_table():
    stopped = worker().pause(now=NOW, reason="idle", auto=True, source="idle")
    savings = worker_savings(stopped, SETTINGS, now=NOW + timedelta(hours=2))
    assert (savings.idle_hours, savings.usd_per_hour, savings.usd_avoided) == (2, 3.9641, 7.93)
    unpriced = stopped.model_copy(update={"instance_type": "x9.unknown"})
    assert worker_savings(unpriced, SETTINGS, now=NOW + timedelta(hours=2)).usd_avoided is None
    fleet = fleet_savings([savings, worker_savings(unpriced, SETTINGS, now=NOW + timedelta(hours=2))])
    assert (fleet.hours, fleet.usd_avoided, fleet.unpriced_hours, fleet.stopped_by_policy_now) == (4, 7.93, 2, 2)


def test_a_region_price_beats_the_any_region_price():
    prices = {"m5zn.metal": {"*": 3.9641, "eu-west-1": 4.4}}
    assert hourly_price(prices, "m5zn.metal", "eu-west-1") == 4.4
    assert hourly_price(prices, "m5zn.metal", "us-west-2") == 3.9641
    assert hourly_price(prices, "c5.metal", "us-west-2") is None


# --- schedules and idle together ------------------------------------------------------------------

OFFICE = Schedule(
    name="office",
    timezone="Europe/Paris",
    periods=(Period(days=("mon", "tue", "wed", "thu", "fri"), start="08:00", end="18:00"),),
    tags={"team": "emea"},
)


def test_a_schedule_stop_comes_before_the_idle_policy_and_says_schedule():
    idle_and_scheduled = worker(tags={"team": "emea"})
    actions = decide_policies([idle_and_scheduled], [OFFICE], SETTINGS, now=NOW)
    assert [(a.action, a.source, a.by) for a in actions] == [("stop", "schedule", "schedule:office")]
    assert actions[0].reason.startswith("schedule:office: outside its periods")


def test_an_idle_worker_in_office_hours_is_paused_by_the_idle_policy_carrying_the_mark():
    day = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    idle = worker(tags={"team": "emea"}, changed=day - timedelta(hours=3))
    actions = decide_policies([idle], [OFFICE], SETTINGS, now=day)
    assert [(a.action, a.source) for a in actions] == [("stop", "idle")]
    assert actions[0].mark is not None and actions[0].mark.desired == "running"


def test_worker_policy_explains_the_next_automatic_stop():
    day = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    busy = worker(tags={"team": "emea"}, nodes=4, changed=day - timedelta(hours=3))
    explained = worker_policy(busy, [OFFICE], SETTINGS, now=day)
    assert explained.idle.reason == "labs_running"
    assert explained.schedule is not None and explained.schedule.desired == "running"
    # the schedule stops it at 18:00 Paris (17:00 UTC) even with labs running
    assert (explained.next_stop_at, explained.next_stop_by) == (
        datetime(2026, 11, 30, 17, 0, tzinfo=UTC),
        "schedule:office",
    )
