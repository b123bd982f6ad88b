"""The schedule store's contract: the same cases on the in-memory twin and on DynamoDB (moto)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cmlcm.adapters.schedule_store import DynamoScheduleRepository, InMemoryScheduleRepository
from cmlcm.config import get_config
from cmlcm.domain.errors import ConcurrentModification, Conflict, NotFound
from cmlcm.domain.schedules import Override, Period, Schedule

OFFICE = Schedule(
    name="office",
    timezone="Europe/Paris",
    periods=(Period(days=("mon", "fri"), start="22:00", end="02:00"),),
    holidays=(date(2026, 12, 25),),
    overrides=(Override(state="running", until=datetime(2026, 12, 1, 20, 0), worker_ids=("w-1",), note="late"),),
    tags={"team": "emea"},
)


@pytest.fixture(params=["memory", "dynamo"])
def store(request):  # noqa: ANN001, ANN201
    if request.param == "memory":
        return InMemoryScheduleRepository()
    request.getfixturevalue("aws")
    settings = get_config()
    return DynamoScheduleRepository(settings.operations_table, settings.aws_region)


def test_add_get_list_round_trip_every_field(store):
    added = store.add(OFFICE)
    store.add(Schedule(name="alpha", timezone="UTC"))
    assert added.version == 1 and store.get("office") == added
    # a naive override time stays naive (the schedule's zone), periods and holidays intact
    assert store.get("office").model_dump(exclude={"version"}) == OFFICE.model_dump(exclude={"version"})
    assert [s.name for s in store.list()] == ["alpha", "office"]


def test_names_are_unique(store):
    store.add(OFFICE)
    with pytest.raises(Conflict):
        store.add(OFFICE.model_copy(update={"mode": "stop_only"}))


def test_save_is_version_guarded(store):
    first = store.add(OFFICE)
    saved = store.save(first.model_copy(update={"enabled": False}))
    assert (saved.version, store.get("office").enabled) == (2, False)
    with pytest.raises(ConcurrentModification):
        store.save(first.model_copy(update={"enforced": True}))


def test_save_or_delete_of_a_missing_schedule_is_not_found(store):
    with pytest.raises(NotFound):
        store.save(OFFICE.model_copy(update={"version": 1}))
    with pytest.raises(NotFound):
        store.delete("office")
    store.add(OFFICE)
    store.delete("office")
    with pytest.raises(NotFound):
        store.get("office")
