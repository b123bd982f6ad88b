"""EventBridge Scheduler: keep the schedules' rates equal to the settings' intervals, and
enable or disable a job's schedule (the jobs API's pause and resume)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.domain.errors import ExternalServiceError
from cmlcm.ports import ScheduleState

#: UpdateSchedule replaces the whole schedule: these fields are carried over from GetSchedule.
_KEPT = ("Description", "FlexibleTimeWindow", "Target", "State", "ScheduleExpressionTimezone", "StartDate", "EndDate")


def rate_expression(minutes: int) -> str:
    return f"rate({minutes} minute{'s' if minutes != 1 else ''})"


class EventBridgeSchedules:
    """`ScheduleRates` and `JobSchedules` over named schedules in one group; jobs without a name
    are skipped."""

    def __init__(
        self, region: str, names: dict[str, str], group: str = "default", scheduler: Any | None = None
    ) -> None:
        self._names = {job: name for job, name in names.items() if name}
        self._group = group
        self._region = region
        self._scheduler = scheduler

    def _client(self) -> Any:
        return self._scheduler or client("scheduler", self._region, quick=True)

    def set_interval(self, job: str, minutes: int) -> bool:
        """Point the job's schedule at `rate(minutes)`; False when this deployment has none."""
        return self._update(job, ScheduleExpression=rate_expression(minutes))

    def set_enabled(self, job: str, enabled: bool) -> bool:
        """Set the schedule's State, keeping its rate and target; False when there is none."""
        return self._update(job, State="ENABLED" if enabled else "DISABLED")

    def describe(self, job: str) -> ScheduleState | None:
        """The job's schedule (GetSchedule); None when this deployment has none."""
        name = self._names.get(job)
        if name is None:
            return None
        try:
            current = self._client().get_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            raise map_client_error(exc, action="GetSchedule") from exc
        except BotoCoreError as exc:
            raise ExternalServiceError(f"GetSchedule: {exc}") from exc
        return ScheduleState(
            name=name,
            enabled=current.get("State", "ENABLED") == "ENABLED",
            expression=current.get("ScheduleExpression"),
        )

    def _update(self, job: str, **changes: str) -> bool:
        """UpdateSchedule with `changes` over what GetSchedule says (UpdateSchedule replaces the
        whole schedule); no call when nothing would change."""
        name = self._names.get(job)
        if name is None:
            return False
        try:
            scheduler = self._client()
            current = scheduler.get_schedule(Name=name, GroupName=self._group)
            if all(current.get(key) == value for key, value in changes.items()):
                return True
            kept = {key: current[key] for key in (*_KEPT, "ScheduleExpression") if key in current}
            scheduler.update_schedule(Name=name, GroupName=self._group, **{**kept, **changes})
        except ClientError as exc:
            raise map_client_error(exc, action="UpdateSchedule") from exc
        except BotoCoreError as exc:  # no answer at all (endpoint unreachable, timeout)
            raise ExternalServiceError(f"UpdateSchedule: {exc}") from exc
        return True


class InMemoryJobSchedules:
    """Twin of `EventBridgeSchedules` for the jobs API: named schedules with a State and a rate;
    jobs without a schedule answer None/False as a deployment without them does."""

    def __init__(self, names: dict[str, str], *, minutes: dict[str, int] | None = None) -> None:
        self.names = dict(names)
        self.enabled = {job: True for job in names}
        self.minutes = dict(minutes or {})
        #: UpdateSchedule calls made (a call that would change nothing is not made).
        self.updates = 0

    def describe(self, job: str) -> ScheduleState | None:
        if job not in self.names:
            return None
        minutes = self.minutes.get(job)
        expression = None if minutes is None else f"rate({minutes} minute{'s' if minutes != 1 else ''})"
        return ScheduleState(name=self.names[job], enabled=self.enabled[job], expression=expression)

    def set_enabled(self, job: str, enabled: bool) -> bool:
        if job not in self.names:
            return False
        if self.enabled[job] != enabled:
            self.enabled[job] = enabled
            self.updates += 1
        return True

    def set_interval(self, job: str, minutes: int) -> bool:
        if job not in self.names:
            return False
        self.minutes[job] = minutes
        return True
