"""API models of the fleet policy: schedules (office hours), a worker's policy status, savings."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal, cast

from pydantic import Field, StrictBool, field_validator, model_validator

from cmlcm.domain.policy import FleetSavings, WorkerSavings
from cmlcm.domain.schedules import (
    SCHEDULE_NAME_PATTERN,
    Desired,
    Period,
    Schedule,
    ScheduleState,
    check_zone,
    zone_names,
)
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.handlers.api.models import TAG_KEYS_SCHEMA, ApiModel, check_tags

_WORKER_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
WorkerIdList = list[Annotated[str, Field(pattern=_WORKER_ID)]]
#: Dates and times are strings with a pattern here (pydantic's lax dates would also take numbers):
#: a date, and a date and time with an optional offset (none: the schedule's zone).
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_DATE_TIME = r"^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"
_UNTIL = re.compile(r"^(\d{4}-\d{2}-\d{2}T)?([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?(Z|[+-]\d{2}:\d{2})?$")


def _real_date_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be a real date and time (YYYY-MM-DDTHH:MM, optional offset)") from None


class OverrideFields(ApiModel):
    """A stretch of time in which the schedule wants `state` whatever its periods say."""

    state: Desired
    until: str = Field(pattern=_DATE_TIME, description="Date and time; no offset: the schedule's zone")
    start: str | None = Field(default=None, pattern=_DATE_TIME, description="Default: from when it is saved")
    worker_ids: WorkerIdList = Field(default_factory=list, max_length=1000, description="Empty: every worker")
    note: str | None = Field(default=None, max_length=200)

    @field_validator("until", "start")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            _real_date_time(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> OverrideFields:
        if self.start is not None:
            start, until = _real_date_time(self.start), _real_date_time(self.until)
            if (start.tzinfo is None) != (until.tzinfo is None):
                raise ValueError("give start and until both with an offset or both without")
            if start >= until:
                raise ValueError("until must be after start")
        return self


def _real_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real date YYYY-MM-DD") from None
    return value


class ScheduleFields(ApiModel):
    """A schedule's content (what PUT replaces)."""

    description: str | None = Field(default=None, max_length=500)
    timezone: str = Field(
        description="IANA time zone, e.g. Europe/Paris", json_schema_extra={"enum": cast(Any, zone_names())}
    )
    periods: list[Period] = Field(default_factory=list, max_length=50)
    mode: Literal["start_stop", "stop_only"] = "start_stop"
    holidays: list[Annotated[str, Field(pattern=_DATE)]] = Field(
        default_factory=list, max_length=366, description="Local dates (YYYY-MM-DD) on which no period starts"
    )
    overrides: list[OverrideFields] = Field(default_factory=list, max_length=50)
    worker_ids: WorkerIdList = Field(default_factory=list, max_length=1000)
    tags: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict,
        max_length=10,
        description="Workers carrying all these tags follow it",
        json_schema_extra={"propertyNames": cast(Any, TAG_KEYS_SCHEMA)},
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

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, days: list[str]) -> list[str]:
        return [_real_date(day) for day in days]

    def to_domain(self, name: str, version: int = 0) -> Schedule:
        return Schedule.model_validate(
            {**self.model_dump(exclude={"name", "version", "state", "followers"}), "name": name, "version": version}
        )


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
        data: dict[str, Any] = schedule.model_dump(mode="json")
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
