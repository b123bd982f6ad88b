"""Lab sync without the network: the pure plan, `sync_labs` over the in-memory table and a fake
controller, and the YAML check that guards imports."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from cmlcm.adapters.cml.errors import CmlBadResponse, CmlNotFound
from cmlcm.adapters.labs_repo import InMemoryLabRepository
from cmlcm.domain.errors import NotFound, ValidationFailed
from cmlcm.domain.labs import MAX_LAB_YAML_BYTES, Lab, LabYamlTooLarge, check_lab_yaml, plan_lab_sync
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.services.labs import sync_lab, sync_labs

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
WORKER = Worker(
    worker_id="w-1",
    name="cml-1",
    region="us-east-1",
    instance_id="i-0123456789abcdef0",
    status=WorkerStatus.RUNNING,
    created_at=NOW,
    updated_at=NOW,
    status_changed_at=NOW,
)


@dataclass(frozen=True)
class FakeLab:
    """Has the shape of the CML adapter's `LabSummary`."""

    id: str
    title: str
    state: str = "DEFINED_ON_CORE"
    owner: str | None = "admin"
    node_count: int = 3
    link_count: int = 2
    created: datetime | None = NOW
    modified: datetime | None = NOW
    owner_fullname: str | None = "Administrator"
    description: str = ""
    notes: str = ""
    groups: tuple = ()


@dataclass
class FakeController:
    labs: dict[str, FakeLab] = field(default_factory=dict)
    fault: Exception | None = None

    async def list_labs(self) -> list[FakeLab]:
        if self.fault:
            raise self.fault
        return list(self.labs.values())

    async def get_lab(self, lab_id: str) -> FakeLab:
        if lab_id not in self.labs:
            raise CmlNotFound(f"GET /labs/{lab_id}: Lab not found: {lab_id}")
        return self.labs[lab_id]


def lab(lab_id: str, title: str = "Lab", *, at: datetime = NOW, **changes: object) -> Lab:
    fields: dict[str, object] = {
        "state": "DEFINED_ON_CORE",
        "owner": "admin",
        "node_count": 3,
        "link_count": 2,
        "created": NOW,
        "modified": NOW,
        **changes,
    }
    return Lab(worker_id="w-1", lab_id=lab_id, title=title, synced_at=at, **fields)  # type: ignore[arg-type]


def sync(cml: FakeController, repo: InMemoryLabRepository, now: datetime = NOW):  # noqa: ANN201
    return asyncio.run(sync_labs(WORKER, cml, repo, now=now))  # type: ignore[arg-type]


# --- the pure plan ---


def test_plan_puts_new_and_changed_keeps_unchanged_and_deletes_orphans():
    stored = [lab("a", at=NOW), lab("b", at=NOW), lab("gone", at=NOW)]
    observed = [lab("a", at=LATER), lab("b", at=LATER, state="STARTED"), lab("new", at=LATER)]
    plan = plan_lab_sync(stored, observed)
    assert [x.lab_id for x in plan.added] == ["new"]
    assert [x.lab_id for x in plan.changed] == ["b"]
    assert plan.unchanged == [stored[0]]  # the stored row, with its old synced_at
    assert [x.lab_id for x in plan.orphans] == ["gone"]
    assert {x.lab_id for x in plan.puts} == {"new", "b"}
    assert {x.lab_id for x in plan.current} == {"a", "b", "new"}


def test_same_content_ignores_only_synced_at():
    assert lab("a", at=NOW).same_content(lab("a", at=LATER))
    assert not lab("a").same_content(lab("a", title="Renamed"))
    assert not lab("a").same_content(lab("a", modified=LATER))
    assert not lab("a").same_content(None)


def test_plan_of_nothing_is_empty():
    plan = plan_lab_sync([], [])
    assert not (plan.puts or plan.orphans or plan.unchanged or plan.current)


# --- sync_labs over the in-memory twin ---


def test_first_sync_writes_every_lab_then_nothing_until_cml_changes():
    cml = FakeController({"a": FakeLab("a", "Alpha"), "b": FakeLab("b", "Beta", state="STARTED")})
    repo = InMemoryLabRepository()

    first = sync(cml, repo)
    assert (first.added, first.changed, first.unchanged, first.deleted) == (2, 0, 0, 0)
    assert repo.writes == 2 and [x.title for x in first.labs] == ["Alpha", "Beta"]

    again = sync(cml, repo, LATER)
    assert (again.added, again.changed, again.unchanged, again.deleted, again.written) == (0, 0, 2, 0, 0)
    assert repo.writes == 2
    assert {x.synced_at for x in repo.list("w-1")} == {NOW}


def test_sync_rewrites_changed_and_removes_orphans():
    cml = FakeController({"a": FakeLab("a", "Alpha"), "b": FakeLab("b", "Beta")})
    repo = InMemoryLabRepository()
    sync(cml, repo)
    cml.labs["a"] = FakeLab("a", "Alpha", state="STARTED", modified=LATER)
    del cml.labs["b"]

    result = sync(cml, repo, LATER)
    assert (result.changed, result.deleted, result.written) == (1, 1, 2)
    assert repo.writes == 4
    assert [(x.lab_id, x.state, x.synced_at) for x in repo.list("w-1")] == [("a", "STARTED", LATER)]


def test_sync_touches_only_its_own_worker():
    repo = InMemoryLabRepository()
    other = lab("x").model_copy(update={"worker_id": "w-2"})
    repo.write([other], [])
    sync(FakeController(), repo)
    assert repo.list("w-2") == [other]


def test_a_cml_fault_writes_nothing():
    repo = InMemoryLabRepository()
    repo.write([lab("a")], [])
    with pytest.raises(CmlBadResponse):
        sync(FakeController(fault=CmlBadResponse("GET /labs: HTTP 500")), repo)
    assert repo.list("w-1") == [lab("a")] and repo.writes == 1


def test_sync_lab_writes_a_changed_row_and_drops_a_vanished_one():
    cml = FakeController({"a": FakeLab("a", "Alpha")})
    repo = InMemoryLabRepository()
    sync(cml, repo)
    assert asyncio.run(sync_lab(WORKER, cml, repo, "a", now=LATER)).synced_at == NOW  # type: ignore[arg-type]
    assert repo.writes == 1
    cml.labs["a"] = FakeLab("a", "Alpha", state="STARTED")
    assert asyncio.run(sync_lab(WORKER, cml, repo, "a", now=LATER)).state == "STARTED"  # type: ignore[arg-type]
    del cml.labs["a"]
    with pytest.raises(NotFound) as missing:
        asyncio.run(sync_lab(WORKER, cml, repo, "a", now=LATER))  # type: ignore[arg-type]
    assert missing.value.field == "lab_id" and repo.get("w-1", "a") is None


# --- the import guard ---


def test_a_topology_passes_the_yaml_check():
    assert check_lab_yaml("lab: {title: t}\nnodes: []\nlinks: []\n")["lab"]["title"] == "t"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("key: [1, 2\n", "line 2"),
        ("\tindented: tab\n", "not valid YAML"),
        ("42", "not a CML lab topology"),
        ("title: only\n", "not a CML lab topology"),
        ("nodes: {a: 1}\n", "'nodes' must be a list"),
        ("lab: {}\nlinks: nope\n", "'links' must be a list"),
    ],
)
def test_bad_yaml_names_body(text, says):
    with pytest.raises(ValidationFailed) as bad:
        check_lab_yaml(text)
    assert bad.value.field == "body" and says in bad.value.message


def test_size_is_checked_in_bytes_before_parsing():
    at_limit = "lab: {}\n#" + "x" * (MAX_LAB_YAML_BYTES - 10) + "\n"
    assert len(at_limit.encode()) == MAX_LAB_YAML_BYTES
    check_lab_yaml(at_limit)
    with pytest.raises(LabYamlTooLarge) as big:
        check_lab_yaml("lab: {}\n#" + "é" * (MAX_LAB_YAML_BYTES // 2))  # under 1 Mi characters, over 1 MiB
    assert big.value.http_status == 413 and big.value.field == "body"
