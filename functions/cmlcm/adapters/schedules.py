"""EventBridge Scheduler: keep the schedules' rates equal to the settings' intervals."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.domain.errors import ExternalServiceError

#: UpdateSchedule replaces the whole schedule: these fields are carried over from GetSchedule.
_KEPT = ("Description", "FlexibleTimeWindow", "Target", "State", "ScheduleExpressionTimezone", "StartDate", "EndDate")


def rate_expression(minutes: int) -> str:
    return f"rate({minutes} minute{'s' if minutes != 1 else ''})"


class EventBridgeSchedules:
    """`ScheduleRates` over named schedules in one group; jobs without a name are skipped."""

    def __init__(
        self, region: str, names: dict[str, str], group: str = "default", scheduler: Any | None = None
    ) -> None:
        self._names = {job: name for job, name in names.items() if name}
        self._group = group
        self._region = region
        self._scheduler = scheduler

    def set_interval(self, job: str, minutes: int) -> bool:
        """Point the job's schedule at `rate(minutes)`; False when this deployment has none."""
        name = self._names.get(job)
        if name is None:
            return False
        try:
            scheduler = self._scheduler or client("scheduler", self._region, quick=True)
            current = scheduler.get_schedule(Name=name, GroupName=self._group)
            if current.get("ScheduleExpression") == rate_expression(minutes):
                return True
            kept = {key: current[key] for key in _KEPT if key in current}
            scheduler.update_schedule(
                Name=name, GroupName=self._group, ScheduleExpression=rate_expression(minutes), **kept
            )
        except ClientError as exc:
            raise map_client_error(exc, action="UpdateSchedule") from exc
        except BotoCoreError as exc:  # no answer at all (endpoint unreachable, timeout)
            raise ExternalServiceError(f"UpdateSchedule: {exc}") from exc
        return True
