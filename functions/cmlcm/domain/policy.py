"""The fleet policy as one pure decision: schedules first, then the idle policy for the rest, and
what each worker's policy status, hours and money saved read as (`now` is an argument).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cmlcm.domain.idle import IdleStatus, decide_idle, idle_status
from cmlcm.domain.schedules import (
    Desired,
    Schedule,
    ScheduleState,
    decide_schedule,
    decide_schedules,
    schedule_for,
    schedule_reason,
    schedule_state,
)
from cmlcm.domain.settings import Settings, hourly_price
from cmlcm.domain.workers import PolicySource, ScheduleMark, Worker, WorkerStatus

#: Who the idle policy is, on what it records.
IDLE_POLICY_ACTOR = "idle policy"


@dataclass(frozen=True)
class PolicyAction:
    """One thing the policy does to one worker: `stop` or `start` it through EC2, or only
    `mark` what its schedule wants (a write, no EC2 call). `mark` rides along on a stop/start."""

    worker_id: str
    action: Literal["stop", "start", "mark"]
    source: PolicySource
    reason: str
    by: str
    mark: ScheduleMark | None = None


def decide_policies(
    workers: Sequence[Worker], schedules: Sequence[Schedule], settings: Settings, *, now: datetime
) -> list[PolicyAction]:
    """Every action for `workers`: each schedule's decisions, then idle pauses of running workers
    no schedule stops or starts now (a schedule's `mark` is carried by the idle stop)."""
    actions: dict[str, PolicyAction] = {}
    for decision in decide_schedules(workers, schedules, now=now):
        name = schedule_reason(decision.schedule)
        reason = name if decision.action == "mark" else f"{name}: {decision.why}"
        action: Literal["stop", "start", "mark"] = (
            "stop" if decision.action == "stop" else "start" if decision.action == "start" else "mark"
        )
        actions[decision.worker_id] = PolicyAction(decision.worker_id, action, "schedule", reason, name, decision.mark)
    candidates = [w for w in workers if actions.get(w.worker_id, None) is None or actions[w.worker_id].action == "mark"]
    for idle in decide_idle(candidates, settings, now=now):
        marked = actions.get(idle.worker_id)
        actions[idle.worker_id] = PolicyAction(
            idle.worker_id, "stop", "idle", idle.reason, IDLE_POLICY_ACTOR, marked.mark if marked else None
        )
    return list(actions.values())


class ScheduleStatus(BaseModel):
    """What the worker's schedule wants now and next, and what it will do about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    timezone: str
    desired: Desired
    reason: str
    next_change_at: datetime | None
    action: Literal["stop", "start", "mark", "none"] = Field(description="What the next collection run does")
    why: str


class WorkerSavings(BaseModel):
    """Hours a policy kept the worker stopped, and the on-demand price that avoided."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idle_hours: float
    schedule_hours: float
    hours: float
    usd_per_hour: float | None = Field(description="The price table's price of its instance type in its region")
    usd_avoided: float | None = Field(description="hours x usd_per_hour (null: the type is not priced)")
    stopped_by_policy_now: PolicySource | None
    stopped_since: datetime | None


def worker_savings(worker: Worker, settings: Settings, *, now: datetime) -> WorkerSavings:
    hours = worker.policy_stopped_hours(now)
    total = hours["idle"] + hours["schedule"]
    price = hourly_price(settings.on_demand_prices, worker.instance_type, worker.region)
    return WorkerSavings(
        idle_hours=round(hours["idle"], 4),
        schedule_hours=round(hours["schedule"], 4),
        hours=round(total, 4),
        usd_per_hour=price,
        usd_avoided=round(total * price, 2) if price is not None else None,
        stopped_by_policy_now=worker.policy_stopped_by,
        stopped_since=worker.policy_stopped_at,
    )


class WorkerPolicy(BaseModel):
    """A worker as the policies see it: idle status, schedule, the next automatic stop, savings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str
    idle: IdleStatus
    schedule: ScheduleStatus | None
    next_stop_at: datetime | None = Field(description="The earlier of the idle pause and the schedule's next stop")
    next_stop_by: str | None = Field(description="'idle policy' or 'schedule:<name>'")
    savings: WorkerSavings


def worker_policy(worker: Worker, schedules: Sequence[Schedule], settings: Settings, *, now: datetime) -> WorkerPolicy:
    """The explanation of one worker (the same rules `decide_policies` applies)."""
    idle = idle_status(worker, settings, now=now)
    ordered = sorted(schedules, key=lambda s: s.name)
    schedule = schedule_for(worker, ordered)
    status = None
    stops: list[tuple[datetime, str]] = []
    if idle.eligible and idle.pause_at is not None:
        stops.append((idle.pause_at, IDLE_POLICY_ACTOR))
    if schedule is not None:
        state: ScheduleState = schedule_state(schedule, now, worker_id=worker.worker_id)
        decision = decide_schedule(worker, schedule, state, now=now)
        status = ScheduleStatus(
            name=schedule.name,
            timezone=schedule.timezone,
            desired=state.desired,
            reason=state.reason,
            next_change_at=state.next_change_at,
            action=decision.action,
            why=decision.why,
        )
        if schedule.enabled and decision.action == "stop":
            stops.append((now, schedule_reason(schedule.name)))
        elif (
            schedule.enabled
            and state.desired == "running"
            and state.next_change_at is not None
            and worker.status == WorkerStatus.RUNNING
        ):
            stops.append((state.next_change_at, schedule_reason(schedule.name)))
    first = min(stops, default=None)
    return WorkerPolicy(
        worker_id=worker.worker_id,
        idle=idle,
        schedule=status,
        next_stop_at=first[0] if first else None,
        next_stop_by=first[1] if first else None,
        savings=worker_savings(worker, settings, now=now),
    )


class FleetSavings(BaseModel):
    """The fleet's hours and money saved by the policies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int
    idle_hours: float
    schedule_hours: float
    hours: float
    usd_avoided: float
    unpriced_hours: float = Field(description="Hours of workers whose instance type/region the price table lacks")
    stopped_by_policy_now: int
    usd_per_hour_now: float = Field(description="What the workers stopped by a policy right now would cost running")


def fleet_savings(savings: Iterable[WorkerSavings]) -> FleetSavings:
    rows = list(savings)
    return FleetSavings(
        workers=len(rows),
        idle_hours=round(sum(r.idle_hours for r in rows), 4),
        schedule_hours=round(sum(r.schedule_hours for r in rows), 4),
        hours=round(sum(r.hours for r in rows), 4),
        usd_avoided=round(sum(r.usd_avoided or 0.0 for r in rows), 2),
        unpriced_hours=round(sum(r.hours for r in rows if r.usd_per_hour is None), 4),
        stopped_by_policy_now=sum(1 for r in rows if r.stopped_by_policy_now is not None),
        usd_per_hour_now=round(sum(r.usd_per_hour or 0.0 for r in rows if r.stopped_by_policy_now is not None), 4),
    )
