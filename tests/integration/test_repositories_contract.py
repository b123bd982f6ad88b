"""One set of cases for the DynamoDB repositories and their in-memory twins, so they cannot drift."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cmlcm.adapters.dynamo import DynamoSettingsRepository, DynamoWorkerRepository
from cmlcm.adapters.memory import InMemorySettingsRepository, InMemoryWorkerRepository
from cmlcm.config import get_settings
from cmlcm.domain.errors import ConcurrentModification, Conflict, NotFound, ValidationFailed
from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.ports import WorkerQuery

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def make(i: int, status: WorkerStatus = WorkerStatus.RUNNING, region: str = "us-east-1") -> Worker:
    return Worker(worker_id=f"w-{i:03d}", name=f"w{i}", region=region, instance_id=f"i-{i:017x}", status=status,
                  created_at=NOW, updated_at=NOW, status_changed_at=NOW)


@pytest.fixture(params=["memory", "dynamo"])
def repos(request):  # noqa: ANN001, ANN201
    if request.param == "memory":
        return InMemoryWorkerRepository(), InMemorySettingsRepository()
    request.getfixturevalue("aws")
    s = get_settings()
    return DynamoWorkerRepository(s.workers_table, s.aws_region), DynamoSettingsRepository(s.operations_table, s.aws_region)


def test_add_get_and_conflicts(repos):  # noqa: ANN001
    workers, _ = repos
    stored = workers.add(make(1))
    assert stored.version == 1 and workers.get("w-001") == stored
    with pytest.raises(Conflict):
        workers.add(make(1))
    with pytest.raises(NotFound):
        workers.get("w-404")
    assert workers.find_by_instance_id(make(1).instance_id) == stored
    assert workers.find_by_instance_id("i-nope") is None


def test_optimistic_locking(repos):  # noqa: ANN001
    workers, _ = repos
    first = workers.add(make(1))
    second = workers.save(first.touch(NOW, owner="a"))
    assert second.version == 2
    with pytest.raises(ConcurrentModification):
        workers.save(first.touch(NOW, owner="b"))  # stale version 1
    saved, failed = workers.save_many([second.touch(NOW, owner="c"), first.touch(NOW, owner="d")])
    assert [w.owner for w in saved] == ["c"] and [w.owner for w, _ in failed] == ["d"]


def test_listing_pages_filters_and_the_active_index(repos):  # noqa: ANN001
    workers, _ = repos
    for i in range(25):
        workers.add(make(i, region="us-west-2" if i % 5 == 0 else "us-east-1"))
    workers.add(make(99, status=WorkerStatus.TERMINATED))
    seen, token = [], None
    while True:
        page = workers.list(WorkerQuery(limit=7, next_token=token))
        seen += [w.worker_id for w in page.items]
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == [f"w-{i:03d}" for i in range(25)]  # each active worker once, terminated hidden
    assert len(workers.list(WorkerQuery(include_terminated=True, limit=100)).items) == 26
    assert len(workers.list(WorkerQuery(region="us-west-2", limit=100)).items) == 5
    assert [w.worker_id for w in workers.list(WorkerQuery(status=WorkerStatus.TERMINATED, limit=10)).items] == ["w-099"]
    assert "w-099" not in {w.worker_id for w in workers.iter_active()} and len(workers.active_ids()) == 25
    assert workers.get("w-099").status == WorkerStatus.TERMINATED
    assert [w.worker_id for w in workers.get_many(["w-001", "w-404", "w-002"])] == ["w-001", "w-002"]
    with pytest.raises(ValidationFailed):
        workers.list(WorkerQuery(next_token="not-a-token!"))


def test_delete(repos):  # noqa: ANN001
    workers, _ = repos
    workers.add(make(1))
    workers.delete("w-001")
    with pytest.raises(NotFound):
        workers.delete("w-001")


def test_settings_document(repos):  # noqa: ANN001
    _, settings = repos
    current = settings.get()
    assert current == Settings()
    saved = settings.save(current.model_copy(update={"idle_timeout_minutes": 90}))
    assert saved.version == current.version + 1 and settings.get().idle_timeout_minutes == 90
    with pytest.raises(ConcurrentModification):
        settings.save(current)
