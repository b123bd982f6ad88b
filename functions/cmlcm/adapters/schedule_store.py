"""Office-hours schedules in the operations table: one item per schedule (`SCHEDULE` / name),
its document in `data`, optimistically locked by the item's version like the settings.

(Not to be confused with `adapters.schedules`, the EventBridge Scheduler rates of the jobs.)
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from cmlcm.adapters.operations import OperationItem
from cmlcm.adapters.pynamo import bind, is_condition_failure, plain
from cmlcm.domain.errors import ConcurrentModification, Conflict, NotFound
from cmlcm.domain.schedules import Schedule

SCHEDULE_PK = "SCHEDULE"


class DynamoScheduleRepository:
    """`ScheduleRepository` on the operations table (one Query lists them all)."""

    def __init__(self, table_name: str, region: str) -> None:
        self._model: type[OperationItem] = bind(OperationItem, table_name, region)

    @staticmethod
    def _schedule(item: OperationItem) -> Schedule:
        return Schedule.model_validate({**plain(item.data), "name": item.sk, "version": item.version or 0})

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
            if is_condition_failure(exc):
                raise Conflict(f"a schedule named {schedule.name!r} already exists", field="name") from exc
            raise
        return schedule.model_copy(update={"version": item.version})

    def save(self, schedule: Schedule) -> Schedule:
        item = self._item(schedule)
        item.version = schedule.version
        try:
            item.save(condition=self._model.pk.exists())
        except PutError as exc:
            if is_condition_failure(exc):
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
            if is_condition_failure(exc):
                raise NotFound(f"no schedule named {name!r}", field="name") from exc
            raise


class InMemoryScheduleRepository:
    """Same rules as `DynamoScheduleRepository`: unique names, version-guarded saves."""

    def __init__(self, schedules: Sequence[Schedule] = ()) -> None:
        self._items: dict[str, Schedule] = {}
        for schedule in schedules:
            self.add(schedule)

    def list(self) -> builtins.list[Schedule]:
        return [self._items[name] for name in sorted(self._items)]

    def get(self, name: str) -> Schedule:
        try:
            return self._items[name]
        except KeyError:
            raise NotFound(f"no schedule named {name!r}", field="name") from None

    def add(self, schedule: Schedule) -> Schedule:
        if schedule.name in self._items:
            raise Conflict(f"a schedule named {schedule.name!r} already exists", field="name")
        stored = schedule.model_copy(update={"version": 1})
        self._items[schedule.name] = stored
        return stored

    def save(self, schedule: Schedule) -> Schedule:
        current = self._items.get(schedule.name)
        if current is None:
            raise NotFound(f"no schedule named {schedule.name!r}", field="name")
        if current.version != schedule.version:
            raise ConcurrentModification(f"schedule {schedule.name!r} was changed by someone else", field="version")
        stored = schedule.model_copy(update={"version": schedule.version + 1})
        self._items[schedule.name] = stored
        return stored

    def delete(self, name: str) -> None:
        if self._items.pop(name, None) is None:
            raise NotFound(f"no schedule named {name!r}", field="name")
