"""API models of the fleet policy: schedules (office hours), a worker's policy status, savings."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, field_validator

from cmlcm.domain.policy import FleetSavings, WorkerSavings
from cmlcm.domain.schedules import SCHEDULE_NAME_PATTERN, Desired, Override, Period, Schedule, ScheduleState, check_zone
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.handlers.api.models import ApiModel, check_tags

_WORKER_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
WorkerIdList = list[Annotated[str, Field(pattern=_WORKER_ID)]]
_UNTIL = re.compile(r"^(\d{4}-\d{2}-\d{2}T)?([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?(Z|[+-]\d{2}:\d{2})?$")


class ScheduleFields(ApiModel):
    """A schedule's content (what PUT replaces)."""

    description: str | None = Field(default=None, max_length=500)
    timezone: str = Field(description="IANA time zone, e.g. Europe/Paris", max_length=64)
    periods: list[Period] = Field(default_factory=list, max_length=50)
    mode: Literal["start_stop", "stop_only"] = "start_stop"
    holidays: list[date] = Field(default_factory=list, max_length=366)
    overrides: list[Override] = Field(default_factory=list, max_length=50)
    worker_ids: WorkerIdList = Field(default_factory=list, max_length=1000)
    tags: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=10, description="Workers carrying all these tags follow it"
    )
    enforced: StrictBool = False
    enabled: StrictBool = True

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        return check_tags(tags)

    def to_domain(self, name: str, version: int = 0) -> Schedule:
        return Schedule(name=name, version=version, **self.model_dump(exclude={"name", "version"}))


class ScheduleCreate(ScheduleFields):
    name: str = Field(pattern=SCHEDULE_NAME_PATTERN, description="Lower-case letters, digits and -, at most 63")


class ScheduleReplace(ScheduleFields):
    version: int | None = Field(default=None, description="From GET: 409 when the schedule changed since")


class ScheduleStateView(ApiModel):
    desired: Desired
    reason: str
    next_change_at: datetime | None
    at: datetime


class ScheduleView(ScheduleFields):
    name: str
    version: int
    state: ScheduleStateView = Field(description="What it wants now, and when that changes next")
    followers: list[str] = Field(description="Active workers that follow it")

    @classmethod
    def of(cls, schedule: Schedule, state: ScheduleState, followers: list[str]) -> ScheduleView:
        data: dict[str, Any] = schedule.model_dump()
        return cls(
            **data,
            state=ScheduleStateView(
                desired=state.desired, reason=state.reason, next_change_at=state.next_change_at, at=state.at
            ),
            followers=followers,
        )


class ScheduleList(ApiModel):
    items: list[ScheduleView]


class OverrideRequest(ApiModel):
    """ "keep running until 20:00 today": `{"state": "running", "until": "20:00"}`."""

    state: Desired
    until: str = Field(
        description="HH:MM (today, the schedule's zone) or a date and time (no offset: the schedule's zone)",
        pattern=_UNTIL.pattern,
    )
    worker_ids: WorkerIdList = Field(default_factory=list, max_length=1000, description="Empty: every worker")
    note: str | None = Field(default=None, max_length=200)

    @field_validator("until")
    @classmethod
    def _until(cls, value: str) -> str:
        try:
            _parse_until(value)
        except ValueError:
            raise ValueError("must be HH:MM or a real date and time (YYYY-MM-DDTHH:MM)") from None
        return value

    def until_value(self) -> datetime | time:
        return _parse_until(self.until)


def _parse_until(value: str) -> datetime | time:
    if "T" in value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return time.fromisoformat(value)


class WorkerSavingsRow(ApiModel):
    worker_id: str
    name: str
    region: str
    instance_type: str | None
    status: WorkerStatus
    savings: WorkerSavings

    @classmethod
    def of(cls, worker: Worker, savings: WorkerSavings) -> WorkerSavingsRow:
        return cls(
            worker_id=worker.worker_id,
            name=worker.name,
            region=worker.region,
            instance_type=worker.instance_type,
            status=worker.status,
            savings=savings,
        )


class SavingsView(ApiModel):
    fleet: FleetSavings
    workers: list[WorkerSavingsRow]
