"""Office-hours schedules in the operations table: one item per schedule (`SCHEDULE` / name),
its document in `data`, optimistically locked by the item's version like the settings.

(Not to be confused with `adapters.schedules`, the EventBridge Scheduler rates of the jobs.)
"""

from __future__ import annotations

import builtins

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from cmlcm.adapters.dynamo import OperationItem, _is_condition_failure, _plain, bind
from cmlcm.domain.errors import ConcurrentModification, Conflict, NotFound
from cmlcm.domain.schedules import Schedule

SCHEDULE_PK = "SCHEDULE"


class DynamoScheduleRepository:
    """`ScheduleRepository` on the operations table (one Query lists them all)."""

    def __init__(self, table_name: str, region: str) -> None:
        self._model: type[OperationItem] = bind(OperationItem, table_name, region)

    @staticmethod
    def _schedule(item: OperationItem) -> Schedule:
        return Schedule.model_validate({**_plain(item.data), "name": item.sk, "version": item.version or 0})

    def list(self) -> builtins.list[Schedule]:
        return [self._schedule(item) for item in self._model.query(SCHEDULE_PK, consistent_read=True)]

    def get(self, name: str) -> Schedule:
        try:
            return self._schedule(self._model.get(SCHEDULE_PK, name, consistent_read=True))
        except DoesNotExist:
            raise NotFound(f"no schedule named {name!r}", field="name") from None

    def _item(self, schedule: Schedule) -> OperationItem:
        return self._model(
            SCHEDULE_PK, schedule.name, data=schedule.model_dump(mode="json", exclude={"name", "version"})
        )

    def add(self, schedule: Schedule) -> Schedule:
        item = self._item(schedule)
        try:
            item.save(condition=self._model.pk.does_not_exist())
        except PutError as exc:
            if _is_condition_failure(exc):
                raise Conflict(f"a schedule named {schedule.name!r} already exists", field="name") from exc
            raise
        return schedule.model_copy(update={"version": item.version})

    def save(self, schedule: Schedule) -> Schedule:
        item = self._item(schedule)
        item.version = schedule.version
        try:
            item.save(condition=self._model.pk.exists())
        except PutError as exc:
            if _is_condition_failure(exc):
                self.get(schedule.name)  # NotFound when it was deleted meanwhile
                raise ConcurrentModification(
                    f"schedule {schedule.name!r} was changed by someone else", field="version"
                ) from exc
            raise
        return schedule.model_copy(update={"version": item.version})

    def delete(self, name: str) -> None:
        try:
            self._model(SCHEDULE_PK, name).delete(condition=self._model.pk.exists(), add_version_condition=False)
        except DeleteError as exc:
            if _is_condition_failure(exc):
                raise NotFound(f"no schedule named {name!r}", field="name") from exc
            raise
