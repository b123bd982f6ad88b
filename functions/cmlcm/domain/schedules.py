"""Schedules (office hours): when workers should run, as a pure function of (schedule, now).

A schedule is self-contained, simpler than Instance Scheduler's separate period and schedule
tables: an IANA time zone, weekly periods written in that zone's wall-clock time (a period whose
end is earlier than its start runs past midnight into the next day), holidays (local dates on
which no period starts), and overrides ("keep running until 20:00 today", for every worker of
the schedule or some). Workers follow it by id or by tags.

Wall-clock times are resolved to instants once per day and period, so DST is handled the way a
person reads a clock: a period starting at 02:30 on a spring-forward night (the clock skips
02:00-03:00) starts when the clock reaches 03:00; an end at 01:30 on a fall-back night (01:00-02:00
happens twice) is the first 01:30, and the repeated hour does not restart anything.

Like Instance Scheduler, a schedule acts when what it wants changes (the worker's `ScheduleMark`
remembers what it last wanted), so a user's start after hours or stop during them stands until
the next change; `enforced` schedules act on every run instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cmlcm.domain.workers import ScheduleMark, Worker, WorkerStatus

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Desired = Literal["running", "stopped"]
SCHEDULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_END_CLOCK = re.compile(r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")
#: How far ahead `next_change_at` looks (a schedule may change nothing for a while: holidays).
_LOOKAHEAD_DAYS = 14


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (validated by `Schedule`)."""
    return ZoneInfo(name)


def zone_names() -> list[str]:
    """Every IANA zone this deployment knows (the OpenAPI document lists them)."""
    return sorted(_zones())


def check_zone(name: str) -> str:
    if name not in _zones():
        raise ValueError("must be an IANA time zone name, e.g. Europe/Paris or America/New_York")
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone name, e.g. Europe/Paris or America/New_York") from exc
    return name


def _clock(value: str) -> time:
    if value == "24:00":
        return time(0, 0)
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Value):
    """Running from `start` to `end` (wall-clock, the schedule's zone) on each of `days`; an `end`
    at or before `start` ends on the next day (22:00-06:00), `24:00` is the day's end."""

    days: tuple[Weekday, ...] = Field(
        min_length=1, max_length=7, description="Days a period starts on", json_schema_extra={"uniqueItems": True}
    )
    start: str = Field(description="HH:MM", json_schema_extra={"pattern": _CLOCK.pattern})
    end: str = Field(description="HH:MM or 24:00; at or before start: the next day", json_schema_extra={
        "pattern": _END_CLOCK.pattern
    })  # fmt: skip

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError("must be a time HH:MM (00:00 to 23:59)")
        return value

    @field_validator("end")
    @classmethod
    def _end(cls, value: str) -> str:
        if not _END_CLOCK.match(value):
            raise ValueError("must be a time HH:MM (00:00 to 24:00)")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a day is named twice")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Period:
        if self.start == self.end:
            raise ValueError("start and end are the same time: use 00:00-24:00 for a whole day")
        return self

    @property
    def crosses_midnight(self) -> bool:
        return self.end != "24:00" and self.end < self.start

    def label(self) -> str:
        return f"{','.join(self.days)} {self.start}-{self.end}"


class Override(_Value):
    """A stretch of time in which the schedule wants `state` whatever its periods say; a time
    without an offset is the schedule's zone. Empty `worker_ids`: every worker of the schedule."""

    state: Desired
    until: datetime
    start: datetime | None = Field(default=None, description="From when (default: as soon as it is saved)")
    worker_ids: tuple[str, ...] = Field(default=(), max_length=1000)
    note: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.start is not None and (self.start.tzinfo is None) != (self.until.tzinfo is None):
            raise ValueError("give start and until both with an offset or both without")
        if self.start is not None and self.start >= self.until:
            raise ValueError("until must be after start")
        return self


class Schedule(_Value):
    """A named office-hours schedule; `version` guards concurrent edits."""

    name: str = Field(pattern=SCHEDULE_NAME_PATTERN, description="Lower-case letters, digits and -")
    description: str | None = Field(default=None, max_length=500)
    timezone: str = Field(description="IANA time zone, e.g. Europe/Paris")
    periods: tuple[Period, ...] = Field(default=(), max_length=50)
    mode: Literal["start_stop", "stop_only"] = Field(
        default="start_stop", description="start_stop: started in its periods, stopped outside; stop_only: only stopped"
    )
    holidays: tuple[date, ...] = Field(default=(), max_length=366, description="Local dates on which no period starts")
    overrides: tuple[Override, ...] = Field(default=(), max_length=50)
    worker_ids: tuple[str, ...] = Field(default=(), max_length=1000, description="Workers that follow it by id")
    tags: dict[str, str] = Field(
        default_factory=dict, max_length=10, description="Workers carrying all these tags follow it"
    )
    enforced: bool = Field(
        default=False, description="Act on every run, not only when what it wants changes (a user's start is undone)"
    )
    enabled: bool = True
    version: int = 0

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def selects(self, worker: Worker) -> bool:
        """Whether `worker` follows this schedule by id or by its tags."""
        if worker.worker_id in self.worker_ids:
            return True
        return bool(self.tags) and all(worker.tags.get(k) == v for k, v in self.tags.items())


def schedule_for(worker: Worker, schedules: Sequence[Schedule]) -> Schedule | None:
    """The one schedule a worker follows: one naming its id first, else one whose tags it
    carries; among several, the first by name (`schedules` is sorted by name)."""
    by_tags = None
    for schedule in schedules:
        if worker.worker_id in schedule.worker_ids:
            return schedule
        if by_tags is None and schedule.selects(worker):
            by_tags = schedule
    return by_tags


# --- time ---------------------------------------------------------------------------------------


def instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The instant the wall clock of `tz` first shows `clock` on `day`: the first of two in a
    repeated hour (fall back), the end of the gap for a time the clock skips (spring forward)."""
    wall = datetime.combine(day, clock)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # Skipped: the clock jumps over `clock`. It first shows a later time at the jump, which lies
    # between the two readings of the skipped time; find it to the second.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    while (high - low) > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def as_instant(value: datetime, tz: ZoneInfo) -> datetime:
    if value.tzinfo is None:
        return instant(value.date(), value.time(), tz)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Occurrence:
    start: datetime
    end: datetime
    period: Period


def occurrences(schedule: Schedule, first: date, last: date) -> list[Occurrence]:
    """Every period occurrence starting on a day from `first` to `last` (holidays skipped)."""
    tz = schedule.tz
    holidays = set(schedule.holidays)
    found: list[Occurrence] = []
    day = first
    while day <= last:
        weekday = WEEKDAYS[day.weekday()]
        if day not in holidays:
            for period in schedule.periods:
                if weekday not in period.days:
                    continue
                end_day = day + timedelta(days=1) if period.end == "24:00" or period.crosses_midnight else day
                found.append(
                    Occurrence(instant(day, _clock(period.start), tz), instant(end_day, _clock(period.end), tz), period)
                )
        day += timedelta(days=1)
    return found


@dataclass(frozen=True)
class ScheduleState:
    """What a schedule wants at `at`, why, and when that next changes (None: not within two weeks)."""

    schedule: str
    desired: Desired
    reason: str
    next_change_at: datetime | None
    at: datetime


def _override_at(schedule: Schedule, now: datetime, worker_id: str | None) -> Override | None:
    """The override in force at `now` for the worker (the last one listed wins)."""
    tz = schedule.tz
    active = None
    for override in schedule.overrides:
        if override.worker_ids and (worker_id is None or worker_id not in override.worker_ids):
            continue
        start = as_instant(override.start, tz) if override.start is not None else None
        if (start is None or start <= now) and now < as_instant(override.until, tz):
            active = override
    return active


def _periods_at(schedule: Schedule, now: datetime, around: Sequence[Occurrence]) -> tuple[Desired, str]:
    for occurrence in around:
        if occurrence.start <= now < occurrence.end:
            return "running", f"in period {occurrence.period.label()} ({schedule.timezone})"
    local = now.astimezone(schedule.tz).date()
    if local in schedule.holidays:
        return "stopped", f"holiday {local.isoformat()}"
    return "stopped", f"outside its periods ({schedule.timezone})"


def _desired_at(
    schedule: Schedule, now: datetime, around: Sequence[Occurrence], worker_id: str | None
) -> tuple[Desired, str]:
    override = _override_at(schedule, now, worker_id)
    if override is not None:
        until = override.until.isoformat(timespec="minutes")
        note = f": {override.note}" if override.note else ""
        return override.state, f"override: {override.state} until {until}{note}"
    return _periods_at(schedule, now, around)


def schedule_state(schedule: Schedule, now: datetime, *, worker_id: str | None = None) -> ScheduleState:
    """What `schedule` wants at `now` (for `worker_id`, whose overrides apply), and when it changes."""
    today = now.astimezone(schedule.tz).date()
    around = occurrences(schedule, today - timedelta(days=1), today + timedelta(days=_LOOKAHEAD_DAYS))
    desired, reason = _desired_at(schedule, now, around, worker_id)
    tz = schedule.tz
    boundaries = {o.start for o in around} | {o.end for o in around}
    for override in schedule.overrides:
        if not override.worker_ids or (worker_id is not None and worker_id in override.worker_ids):
            boundaries.add(as_instant(override.until, tz))
            if override.start is not None:
                boundaries.add(as_instant(override.start, tz))
    next_change = None
    for boundary in sorted(b for b in boundaries if b > now):
        if _desired_at(schedule, boundary, around, worker_id)[0] != desired:
            next_change = boundary
            break
    return ScheduleState(schedule.name, desired, reason, next_change, now)


# --- decisions ----------------------------------------------------------------------------------

ScheduleAction = Literal["stop", "start", "mark", "none"]


@dataclass(frozen=True)
class ScheduleDecision:
    """What a schedule does to one worker now: `stop`/`start` it (and mark), only `mark` what it
    wants (the worker already is so), or `none` (`why` says why)."""

    worker_id: str
    schedule: str
    action: ScheduleAction
    desired: Desired
    why: str
    mark: ScheduleMark | None


def decide_schedule(worker: Worker, schedule: Schedule, state: ScheduleState, *, now: datetime) -> ScheduleDecision:
    """The pure rule for one worker under `schedule` in `state` (from `schedule_state`)."""

    def decision(action: ScheduleAction, why: str, *, mark: bool = True) -> ScheduleDecision:
        new_mark = ScheduleMark(schedule=schedule.name, desired=state.desired, at=now) if mark else None
        return ScheduleDecision(worker.worker_id, schedule.name, action, state.desired, why, new_mark)

    if not schedule.enabled:
        return decision("none", "the schedule is disabled", mark=False)
    previous = worker.schedule_mark
    if (
        not schedule.enforced
        and previous is not None
        and previous.schedule == schedule.name
        and previous.desired == state.desired
    ):
        return decision("none", f"already acted on '{state.desired}': a user's change since stands", mark=False)
    if state.desired == "stopped":
        if worker.status == WorkerStatus.RUNNING:
            if worker.is_snoozed(now):
                return decision("none", "snoozed after a user's resume", mark=False)
            return decision("stop", state.reason)
        if worker.status == WorkerStatus.STOPPED:
            return decision("mark", "already stopped")
        return decision("none", f"waiting: the worker is {worker.status.value}", mark=False)
    if worker.status == WorkerStatus.STOPPED:
        if schedule.mode == "stop_only":
            return decision("mark", "stop-only schedule: it does not start workers")
        return decision("start", state.reason)
    if worker.status == WorkerStatus.RUNNING:
        return decision("mark", "already running")
    return decision("none", f"waiting: the worker is {worker.status.value}", mark=False)


def decide_schedules(
    workers: Iterable[Worker], schedules: Sequence[Schedule], *, now: datetime
) -> list[ScheduleDecision]:
    """Decisions for every worker that follows a schedule (each schedule evaluated once, and once
    more per worker named by an override), `none` ones left out."""
    ordered = sorted(schedules, key=lambda s: s.name)
    states: dict[str, ScheduleState] = {}
    decisions: list[ScheduleDecision] = []
    for worker in workers:
        schedule = schedule_for(worker, ordered)
        if schedule is None:
            continue
        if any(worker.worker_id in o.worker_ids for o in schedule.overrides):
            state = schedule_state(schedule, now, worker_id=worker.worker_id)
        else:
            state = states.get(schedule.name) or states.setdefault(schedule.name, schedule_state(schedule, now))
        decision = decide_schedule(worker, schedule, state, now=now)
        if decision.action != "none":
            decisions.append(decision)
    return decisions


def schedule_reason(name: str) -> str:
    """The reason (and actor) recorded on what a schedule does: `schedule:<name>`."""
    return f"schedule:{name}"
