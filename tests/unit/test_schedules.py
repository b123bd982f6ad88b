"""Schedules as pure functions of (schedule, now) and (worker, schedule, now): time zones, DST
changes both ways, periods crossing midnight, holidays, overrides, and the decision table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from cmlcm.domain.schedules import (
    Override,
    Period,
    Schedule,
    ScheduleMark,
    decide_schedule,
    decide_schedules,
    instant,
    schedule_for,
    schedule_state,
)
from cmlcm.domain.workers import Worker, WorkerStatus

S = WorkerStatus
OFFICE = Period(days=("mon", "tue", "wed", "thu", "fri"), start="08:00", end="18:00")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def sched(tz: str = "Europe/Paris", *periods: Period, **extra: object) -> Schedule:
    return Schedule(name="office", timezone=tz, periods=periods or (OFFICE,), **extra)  # type: ignore[arg-type]


# --- what a schedule wants, when ------------------------------------------------------------------

# 2026-11-30 is a Monday; Paris is UTC+1 in winter, UTC+2 in summer.
WANTS = [
    # (case, schedule, now, desired, next change)
    ("before opening, winter", sched(), utc(2026, 11, 30, 6, 59), "stopped", utc(2026, 11, 30, 7, 0)),
    ("at opening, winter", sched(), utc(2026, 11, 30, 7, 0), "running", utc(2026, 11, 30, 17, 0)),
    ("last minute", sched(), utc(2026, 11, 30, 16, 59), "running", utc(2026, 11, 30, 17, 0)),
    ("at closing", sched(), utc(2026, 11, 30, 17, 0), "stopped", utc(2026, 12, 1, 7, 0)),
    ("friday evening: next is monday", sched(), utc(2026, 12, 4, 17, 0), "stopped", utc(2026, 12, 7, 7, 0)),
    ("saturday", sched(), utc(2026, 12, 5, 12, 0), "stopped", utc(2026, 12, 7, 7, 0)),
    ("summer: UTC+2", sched(), utc(2026, 7, 6, 6, 0), "running", utc(2026, 7, 6, 16, 0)),
    ("same wall clock, New York", sched("America/New_York"), utc(2026, 11, 30, 13, 0), "running",
     utc(2026, 11, 30, 23, 0)),
    ("Tokyo's monday starts on sunday UTC", sched("Asia/Tokyo"), utc(2026, 11, 29, 23, 0), "running",
     utc(2026, 11, 30, 9, 0)),
    # Paris springs forward on 2026-03-29 (02:00 -> 03:00): 08:00 is 06:00 UTC from that day.
    ("DST spring, the day before", sched("Europe/Paris", Period(days=("sat", "sun"), start="08:00", end="18:00")),
     utc(2026, 3, 28, 7, 0), "running", utc(2026, 3, 28, 17, 0)),
    ("DST spring, the day itself", sched("Europe/Paris", Period(days=("sat", "sun"), start="08:00", end="18:00")),
     utc(2026, 3, 29, 6, 0), "running", utc(2026, 3, 29, 16, 0)),
    # Paris falls back on 2026-10-25 (03:00 -> 02:00): 08:00 is 07:00 UTC again.
    ("DST autumn, the day itself", sched("Europe/Paris", Period(days=("sun",), start="08:00", end="18:00")),
     utc(2026, 10, 25, 6, 59), "stopped", utc(2026, 10, 25, 7, 0)),
]  # fmt: skip


@pytest.mark.parametrize(("case", "schedule", "now", "desired", "next_change"), WANTS, ids=[w[0] for w in WANTS])
def test_what_a_schedule_wants(case, schedule, now, desired, next_change):  # noqa: ANN001
    state = schedule_state(schedule, now)
    assert (state.desired, state.next_change_at) == (desired, next_change), state.reason


NIGHT = Period(days=("fri",), start="22:00", end="02:00")  # friday night into saturday


@pytest.mark.parametrize(
    ("now", "desired"),
    [
        (utc(2026, 12, 4, 20, 59), "stopped"),  # fri 21:59 Paris
        (utc(2026, 12, 4, 21, 0), "running"),  # fri 22:00
        (utc(2026, 12, 4, 23, 30), "running"),  # sat 00:30: the period started on friday
        (utc(2026, 12, 5, 0, 59), "running"),  # sat 01:59
        (utc(2026, 12, 5, 1, 0), "stopped"),  # sat 02:00
        (utc(2026, 12, 5, 21, 30), "stopped"),  # sat 22:30: saturday is not a start day
    ],
)
def test_a_period_crossing_midnight_runs_into_the_next_day(now, desired):  # noqa: ANN001
    assert schedule_state(sched("Europe/Paris", NIGHT), now).desired == desired


def test_the_end_of_a_period_crossing_midnight_is_its_next_change():
    assert schedule_state(sched("Europe/Paris", NIGHT), utc(2026, 12, 4, 23, 0)).next_change_at == utc(2026, 12, 5, 1)


# New York springs forward on 2026-03-08: the clock goes 01:59:59 EST -> 03:00:00 EDT (07:00 UTC).
SPRING_GAP = sched("America/New_York", Period(days=("sun",), start="02:30", end="05:00"))


@pytest.mark.parametrize(
    ("now", "desired"),
    [
        (utc(2026, 3, 8, 6, 59), "stopped"),  # 01:59 EST: 02:30 has not come
        (utc(2026, 3, 8, 7, 0), "running"),  # 03:00 EDT: the clock jumped past 02:30, so it started
        (utc(2026, 3, 8, 8, 59), "running"),  # 04:59 EDT
        (utc(2026, 3, 8, 9, 0), "stopped"),  # 05:00 EDT
    ],
)
def test_a_start_the_clock_skips_happens_when_the_clock_jumps(now, desired):  # noqa: ANN001
    assert schedule_state(SPRING_GAP, now).desired == desired


def test_the_next_change_into_a_skipped_time_is_the_jump():
    assert schedule_state(SPRING_GAP, utc(2026, 3, 8, 6, 0)).next_change_at == utc(2026, 3, 8, 7, 0)


def test_instant_of_a_skipped_time_is_the_jump_and_of_a_repeated_one_the_first():
    ny = sched("America/New_York").tz
    assert instant(date(2026, 3, 8), datetime(2026, 3, 8, 2, 30).time(), ny) == utc(2026, 3, 8, 7, 0)
    # 2026-11-01 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST): the first counts.
    assert instant(date(2026, 11, 1), datetime(2026, 11, 1, 1, 30).time(), ny) == utc(2026, 11, 1, 5, 30)


# New York falls back on 2026-11-01: 01:00-01:59 happens twice (EDT, then EST from 06:00 UTC).
FALL_NIGHT = sched("America/New_York", Period(days=("sat",), start="22:00", end="01:30"))


@pytest.mark.parametrize(
    ("now", "desired"),
    [
        (utc(2026, 11, 1, 5, 29), "running"),  # 01:29 EDT
        (utc(2026, 11, 1, 5, 30), "stopped"),  # 01:30 EDT: ends at the first 01:30
        (utc(2026, 11, 1, 6, 15), "stopped"),  # 01:15 EST, the repeated hour: no second start
        (utc(2026, 11, 1, 6, 45), "stopped"),  # 01:45 EST
    ],
)
def test_the_repeated_hour_does_not_restart_a_period(now, desired):  # noqa: ANN001
    assert schedule_state(FALL_NIGHT, now).desired == desired


def test_a_period_across_the_repeated_hour_lasts_its_real_length():
    one_to_two = sched("America/New_York", Period(days=("sun",), start="01:00", end="02:00"))
    # 01:00 EDT (05:00 UTC) to 02:00 EST (07:00 UTC): two real hours
    assert schedule_state(one_to_two, utc(2026, 11, 1, 4, 59)).next_change_at == utc(2026, 11, 1, 5, 0)
    assert schedule_state(one_to_two, utc(2026, 11, 1, 6, 30)).desired == "running"
    assert schedule_state(one_to_two, utc(2026, 11, 1, 5, 0)).next_change_at == utc(2026, 11, 1, 7, 0)


def test_whole_days_back_to_back_change_only_where_they_end():
    weekend = sched(
        "Europe/Paris",
        Period(days=("sat",), start="00:00", end="24:00"),
        Period(days=("sun",), start="00:00", end="24:00"),
    )
    state = schedule_state(weekend, utc(2026, 12, 5, 12, 0))
    # saturday 24:00 is sunday 00:00: no change there; monday 00:00 Paris is sunday 23:00 UTC
    assert (state.desired, state.next_change_at) == ("running", utc(2026, 12, 6, 23, 0))


# --- holidays and overrides -----------------------------------------------------------------------


def test_a_holiday_keeps_the_day_stopped_and_says_so():
    christmas = sched(holidays=(date(2026, 12, 25),))
    state = schedule_state(christmas, utc(2026, 12, 25, 10, 0))  # a friday
    assert (state.desired, state.reason, state.next_change_at) == (
        "stopped",
        "holiday 2026-12-25",
        utc(2026, 12, 28, 7, 0),
    )


def test_a_night_period_started_before_a_holiday_runs_to_its_end():
    eve = sched("Europe/Paris", Period(days=("thu",), start="22:00", end="02:00"), holidays=(date(2026, 12, 25),))
    assert schedule_state(eve, utc(2026, 12, 25, 0, 30)).desired == "running"  # 01:30 friday, the holiday


def test_keep_running_until_20_tonight():
    late = sched(overrides=(Override(state="running", until=datetime(2026, 11, 30, 20, 0)),))  # Paris wall clock
    at_six = schedule_state(late, utc(2026, 11, 30, 17, 30))
    assert (at_six.desired, at_six.next_change_at) == ("running", utc(2026, 11, 30, 19, 0))
    assert at_six.reason.startswith("override: running until 2026-11-30T20:00")
    assert schedule_state(late, utc(2026, 11, 30, 19, 0)).desired == "stopped"


def test_an_override_for_some_workers_applies_to_them_only():
    late = sched(overrides=(Override(state="running", until=utc(2026, 11, 30, 19), worker_ids=("w-1",)),))
    assert schedule_state(late, utc(2026, 11, 30, 18), worker_id="w-1").desired == "running"
    assert schedule_state(late, utc(2026, 11, 30, 18), worker_id="w-2").desired == "stopped"
    assert schedule_state(late, utc(2026, 11, 30, 18)).desired == "stopped"


def test_a_stop_override_with_a_start_closes_part_of_a_period():
    maintenance = sched(overrides=(Override(state="stopped", start=utc(2026, 11, 30, 9), until=utc(2026, 11, 30, 10)),))
    assert schedule_state(maintenance, utc(2026, 11, 30, 8, 59)).next_change_at == utc(2026, 11, 30, 9)
    assert schedule_state(maintenance, utc(2026, 11, 30, 9, 30)).desired == "stopped"
    assert schedule_state(maintenance, utc(2026, 11, 30, 10)).desired == "running"


def test_no_periods_is_always_stopped_with_no_next_change():
    state = schedule_state(Schedule(name="never", timezone="UTC"), utc(2026, 11, 30, 12))
    assert (state.desired, state.next_change_at) == ("stopped", None)


# --- what a schedule is ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": "Europe/Paris", "name": "Office Hours"}, "name"),
        ({"timezone": "UTC", "periods": [{"days": ["mon"], "start": "08:00", "end": "08:00"}]}, "periods"),
        ({"timezone": "UTC", "periods": [{"days": ["mon"], "start": "24:00", "end": "08:00"}]}, "periods"),
        ({"timezone": "UTC", "periods": [{"days": ["mon"], "start": "8:00", "end": "18:00"}]}, "periods"),
        ({"timezone": "UTC", "periods": [{"days": ["mon", "mon"], "start": "08:00", "end": "18:00"}]}, "periods"),
        ({"timezone": "UTC", "periods": [{"days": ["monday"], "start": "08:00", "end": "18:00"}]}, "periods"),
        ({"timezone": "UTC", "periods": [{"days": [], "start": "08:00", "end": "18:00"}]}, "periods"),
        ({"timezone": "UTC", "overrides": [{"state": "running", "start": "2026-12-01T10:00",
                                            "until": "2026-12-01T09:00"}]}, "overrides"),
    ],
)  # fmt: skip
def test_invalid_schedules_name_the_field(fields, field):  # noqa: ANN001
    with pytest.raises(ValidationError) as caught:
        Schedule.model_validate({"name": "office", **fields})
    assert caught.value.errors()[0]["loc"][0] == field


# --- decisions for one worker ---------------------------------------------------------------------

NOW = utc(2026, 11, 30, 20, 0)  # monday 21:00 Paris: outside the office hours
DAY = utc(2026, 11, 30, 10, 0)  # monday 11:00 Paris: inside


def worker(status: WorkerStatus = S.RUNNING, **extra: object) -> Worker:
    return Worker(
        worker_id="w-1",
        name="w1",
        region="us-east-1",
        instance_id="i-0000000000000001",
        status=status,
        created_at=NOW - timedelta(days=3),
        updated_at=NOW - timedelta(days=3),
        status_changed_at=NOW - timedelta(days=3),
        **extra,  # type: ignore[arg-type]
    )


def mark(desired: str, schedule: str = "office") -> ScheduleMark:
    return ScheduleMark(schedule=schedule, desired=desired, at=NOW - timedelta(hours=5))  # type: ignore[arg-type]


DECISIONS = [
    # (case, schedule, worker, now, action)
    ("running outside its periods: stop", sched(), worker(), NOW, "stop"),
    ("already stopped: only remember", sched(), worker(S.STOPPED), NOW, "mark"),
    ("a user started it after the schedule stopped it: stands", sched(), worker(schedule_mark=mark("stopped")),
     NOW, "none"),
    ("... unless the schedule is enforced", sched(enforced=True), worker(schedule_mark=mark("stopped")), NOW, "stop"),
    ("a mark of another schedule does not count", sched(), worker(schedule_mark=mark("stopped", "other")), NOW,
     "stop"),
    ("snoozed after a resume: waits", sched(), worker(snoozed_until=NOW + timedelta(seconds=1)), NOW, "none"),
    ("the snooze ends exactly now: stop", sched(), worker(snoozed_until=NOW), NOW, "stop"),
    ("stopped in its periods: start", sched(), worker(S.STOPPED), DAY, "start"),
    ("stop-only schedules never start", sched(mode="stop_only"), worker(S.STOPPED), DAY, "mark"),
    ("running in its periods: remember", sched(), worker(), DAY, "mark"),
    ("the schedule already started it and a user stopped it: stands", sched(),
     worker(S.STOPPED, schedule_mark=mark("running")), DAY, "none"),
    ("stopping: wait for EC2", sched(), worker(S.STOPPING), NOW, "none"),
    ("starting: wait for EC2", sched(), worker(S.STARTING), DAY, "none"),
    ("disabled schedule: nothing", sched(enabled=False), worker(), NOW, "none"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "schedule", "subject", "now", "action"), DECISIONS, ids=[d[0] for d in DECISIONS])
def test_decision_table(case, schedule, subject, now, action):  # noqa: ANN001
    decision = decide_schedule(subject, schedule, schedule_state(schedule, now), now=now)
    assert decision.action == action, decision.why
    if action in ("stop", "start", "mark"):
        assert decision.mark == ScheduleMark(schedule="office", desired=decision.desired, at=now)
    else:
        assert decision.mark is None


def test_a_worker_follows_the_schedule_naming_it_before_one_matching_its_tags():
    by_tag = Schedule(name="a-team", timezone="UTC", tags={"team": "emea"})
    by_id = Schedule(name="z-mine", timezone="UTC", worker_ids=("w-1",))
    tagged = worker(tags={"team": "emea"})
    mine = schedule_for(tagged, [by_tag, by_id])
    assert mine is not None and mine.name == "z-mine"
    theirs = schedule_for(worker(tags={"team": "emea"}).model_copy(update={"worker_id": "w-2"}), [by_tag, by_id])
    assert theirs is not None and theirs.name == "a-team"
    assert schedule_for(worker(tags={"team": "apac"}).model_copy(update={"worker_id": "w-3"}), [by_tag, by_id]) is None


def test_decide_schedules_leaves_out_workers_it_does_nothing_to():
    workers = [
        worker().model_copy(update={"worker_id": f"w-{i}", "tags": {"team": "emea"}, "status": status})
        for i, status in enumerate([S.RUNNING, S.STOPPED, S.STOPPING])
    ]
    schedule = sched(tags={"team": "emea"})
    assert [(d.worker_id, d.action) for d in decide_schedules(workers, [schedule], now=NOW)] == [
        ("w-0", "stop"),
        ("w-1", "mark"),
    ]
