"""Schedule use cases: list, read (with what it wants now), create, replace, delete, and add an
override ("keep running until 20:00 today"). Expired overrides are dropped on every write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from cmlcm.domain.errors import ConcurrentModification, ValidationFailed
from cmlcm.domain.schedules import (
    Desired,
    Override,
    Schedule,
    ScheduleState,
    as_instant,
    instant,
    schedule_for,
    schedule_state,
)
from cmlcm.ports import ScheduleRepository, WorkerRepository


def _without_expired(schedule: Schedule, now: datetime) -> Schedule:
    kept = tuple(o for o in schedule.overrides if as_instant(o.until, schedule.tz) > now)
    return schedule if kept == schedule.overrides else schedule.model_copy(update={"overrides": kept})


@dataclass(frozen=True)
class ScheduleReport:
    schedule: Schedule
    state: ScheduleState
    #: Active workers that follow it (by id or tags; a worker named by another schedule follows that one).
    worker_ids: list[str]


def _followers(workers: WorkerRepository, schedules: list[Schedule], name: str) -> dict[str, list[str]]:
    ordered = sorted(schedules, key=lambda s: s.name)
    found: dict[str, list[str]] = {s.name: [] for s in ordered}
    for worker in workers.iter_active():
        followed = schedule_for(worker, ordered)
        if followed is not None and (name == "*" or followed.name == name):
            found[followed.name].append(worker.worker_id)
    return found


def list_schedules(repo: ScheduleRepository, workers: WorkerRepository, *, now: datetime) -> list[ScheduleReport]:
    schedules = repo.list()
    followers = _followers(workers, schedules, "*")
    return [ScheduleReport(s, schedule_state(s, now), followers[s.name]) for s in schedules]


def get_schedule(repo: ScheduleRepository, workers: WorkerRepository, name: str, *, now: datetime) -> ScheduleReport:
    schedule = repo.get(name)
    followers = _followers(workers, repo.list(), name)
    return ScheduleReport(schedule, schedule_state(schedule, now), followers.get(name, []))


def create_schedule(repo: ScheduleRepository, schedule: Schedule, *, now: datetime) -> Schedule:
    return repo.add(_without_expired(schedule, now).model_copy(update={"version": 0}))


def replace_schedule(repo: ScheduleRepository, schedule: Schedule, *, version: int | None, now: datetime) -> Schedule:
    """Replace the whole schedule; `version` (from GET) guards against lost edits (409 when
    stale); None overwrites whatever is stored."""
    current = repo.get(schedule.name)
    if version is not None and version != current.version:
        raise ConcurrentModification(
            f"schedule {schedule.name!r} is at version {current.version}, this change was made against {version}",
            field="version",
        )
    return repo.save(_without_expired(schedule, now).model_copy(update={"version": current.version}))


def delete_schedule(repo: ScheduleRepository, name: str) -> None:
    repo.delete(name)


def add_override(
    repo: ScheduleRepository,
    workers: WorkerRepository,
    name: str,
    *,
    state: Desired,
    until: datetime | time,
    worker_ids: tuple[str, ...] = (),
    note: str | None = None,
    now: datetime,
) -> ScheduleReport:
    """Append an override from now on, answered with the schedule as `get_schedule` reports it.
    `until` as a time of day is today's in the schedule's zone ("keep running until 20:00
    today"); one already past is a 422 naming `until`."""
    schedule = repo.get(name)
    if isinstance(until, time):
        local_day = now.astimezone(schedule.tz).date()
        end = instant(local_day, until.replace(tzinfo=None), schedule.tz)
        if end <= now:
            raise ValidationFailed(
                f"until: {until.strftime('%H:%M')} today ({schedule.timezone}) has passed; give a date and time",
                field="until",
            )
        until_at: datetime = end
    else:
        until_at = until
        if as_instant(until_at, schedule.tz) <= now:
            raise ValidationFailed("until: that time has passed", field="until")
        if as_instant(until_at, schedule.tz) > now + timedelta(days=366):
            raise ValidationFailed("until: at most a year ahead", field="until")
    override = Override(state=state, until=until_at, start=None, worker_ids=worker_ids, note=note)
    kept = _without_expired(schedule, now)
    if len(kept.overrides) >= 50:
        raise ValidationFailed("overrides: at most 50 at once", field="overrides")
    repo.save(kept.model_copy(update={"overrides": (*kept.overrides, override)}))
    return get_schedule(repo, workers, name, now=now)
