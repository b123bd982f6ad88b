"""The repository contract: the same cases run on the in-memory twins and on the DynamoDB
repositories (moto), so unit tests that use the twins keep meaning something."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from cmlcm.adapters.dynamo import DynamoWorkerRepository, InMemoryWorkerRepository
from cmlcm.adapters.operations import DynamoSettingsRepository, InMemorySettingsRepository
from cmlcm.config import get_config
from cmlcm.domain.cml import CmlSystem, ComputeHealth, LicenceDetail, LicenceFeature, SystemHealth
from cmlcm.domain.errors import ConcurrentModification, Conflict, NotFound, ValidationFailed
from cmlcm.domain.settings import RegionDefaults, Settings
from cmlcm.domain.workers import (
    Licence,
    LicenceOperation,
    ServiceStatus,
    Worker,
    WorkerError,
    WorkerMetrics,
    WorkerStatus,
    WorkerSummary,
)
from cmlcm.ports import WorkerQuery

S = WorkerStatus
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def make(i: int, status: WorkerStatus = S.RUNNING, region: str = "us-east-1", **extra: object) -> Worker:
    return Worker.model_validate(
        {
            "worker_id": f"w-{i:03d}",
            "name": f"cml-{i}",
            "region": region,
            "instance_id": f"i-{i:017x}",
            "status": status,
            "created_at": NOW,
            "updated_at": NOW,
            "status_changed_at": NOW,
            **extra,
        }
    )


@pytest.fixture(params=["memory", "dynamo"])
def repos(request):  # noqa: ANN001, ANN201
    if request.param == "memory":
        return SimpleNamespace(workers=InMemoryWorkerRepository(), settings=InMemorySettingsRepository())
    request.getfixturevalue("aws")
    s = get_config()
    return SimpleNamespace(
        workers=DynamoWorkerRepository(s.workers_table, s.aws_region),
        settings=DynamoSettingsRepository(s.operations_table, s.aws_region),
    )


def _all_pages(workers, **query) -> list[str]:  # noqa: ANN001, ANN003
    seen: list[str] = []
    token = None
    for _ in range(100):
        page = workers.list(WorkerQuery(next_token=token, **query))
        assert len(page.items) <= query.get("limit", 50)
        seen += [w.worker_id for w in page.items]
        token = page.next_token
        if not token:
            return seen
    raise AssertionError("pagination never ended")


# --- add / get / find ------------------------------------------------------------------------


def test_add_stores_version_1_and_get_returns_it(repos):
    stored = repos.workers.add(make(1).model_copy(update={"version": 9}))
    assert stored.version == 1 and repos.workers.get("w-001") == stored


def test_get_of_a_missing_worker_is_not_found(repos):
    with pytest.raises(NotFound) as caught:
        repos.workers.get("w-404")
    assert caught.value.field == "worker_id"


def test_adding_the_same_id_twice_is_a_conflict_and_keeps_the_first(repos):
    first = repos.workers.add(make(1, owner="ann"))
    with pytest.raises(Conflict):
        repos.workers.add(make(1, owner="bob"))
    assert repos.workers.get("w-001") == first


def rich_worker() -> Worker:
    """A worker with every optional part filled in."""
    return make(
        7,
        status=S.STOPPED,
        instance_type="c5.metal",
        ami_id="ami-0123456789abcdef0",
        ami_name="cml2-2.9",
        owner="ann@example.com",
        tags={"ManagedBy": "CmlCloudManager", "WorkerId": "w-007", "Course": "ccna"},
        service_status=ServiceStatus.UNREACHABLE,
        ec2_state="stopped",
        public_ip="3.3.3.3",
        private_ip="10.0.0.7",
        status_reason="paused: idle",
        idle_detection_enabled=False,
        detailed_monitoring=True,
        pause_count=3,
        resume_count=2,
        last_pause_reason="idle",
        last_paused_at=LATER,
        last_resumed_at=NOW,
        metrics=WorkerMetrics(
            collected_at=LATER,
            ec2_state="stopped",
            cpu_percent=12.5,
            labs_total=4,
            labs_running=0,
            cml_ready=False,
            licensed=True,
            last_activity_at=NOW,
            labs_digest="0123456789abcdef01234567",
        ),
        cml_system=CmlSystem(
            health=SystemHealth(
                valid=True,
                is_licensed=True,
                core_connected=True,
                computes=[
                    ComputeHealth(compute_id="c-1", hostname="cml-controller", valid=True, cpu_count=96),
                    ComputeHealth(compute_id="c-2", hostname="cml-compute-2", valid=False, admission_state="DRAINED"),
                ],
            ),
            licence_detail=LicenceDetail(
                smart_account="acme",
                virtual_account="lab",
                udi_product_uuid="c-1",
                features=[LicenceFeature(id="f-1", name="CML - Enterprise License", in_use=1, max=1)],
            ),
        ),
        licence=Licence(
            registration_status="REGISTERED",
            operation=LicenceOperation.REGISTERING,
            operation_state="pending",
            operation_started_at=NOW,
            token_secret_ref="cmlcm/w-007",
        ),
        last_error=WorkerError(source="cml", kind="Timeout", message="no answer", at=LATER),
    )


def test_every_field_survives_the_round_trip(repos):
    # Given a worker with every optional part filled in
    rich = rich_worker()
    # When stored and read back, then it is the same worker
    stored = repos.workers.add(rich)
    assert repos.workers.get("w-007") == stored == rich.model_copy(update={"version": 1})
    assert repos.workers.find_by_instance_id(rich.instance_id) == stored


def test_fleet_summaries_say_what_the_stored_workers_say(repos):
    # Given a worker with every part filled in, a bare one, and a terminated one
    rich = repos.workers.add(rich_worker())
    bare = repos.workers.add(make(1))
    repos.workers.add(make(2, status=S.TERMINATED))
    # When the fleet is read as summaries (on DynamoDB: a projection of the index query)
    summaries = list(repos.workers.iter_active_summaries())
    # Then there is one per active worker, equal to the summary of its full record
    assert summaries == [WorkerSummary.of(bare), WorkerSummary.of(rich)]
    assert summaries[1].metrics and summaries[1].metrics.cpu_percent == 12.5
    assert summaries[1].licence and summaries[1].licence.operation_state == "pending"


def test_fleet_summaries_of_items_written_before_the_stored_summary(aws):  # noqa: ANN001, ARG001
    # Given, on DynamoDB, workers whose stored summary is current, missing (an item written by an
    # older release), of another schema, or not valid JSON for the summary
    from cmlcm.adapters.dynamo import WorkerItem
    from cmlcm.adapters.pynamo import bind

    s = get_config()
    repo = DynamoWorkerRepository(s.workers_table, s.aws_region)
    model = bind(WorkerItem, s.workers_table, s.aws_region)
    workers = [repo.add(make(i, owner=f"user-{i}")) for i in range(1, 5)]
    workers[0] = repo.save(workers[0].model_copy(update={"status": S.STOPPED}))  # a second save: version 2
    for worker_id, summary, schema in [
        ("w-002", None, None),
        ("w-003", '{"worker_id": "w-003"}', "0123456789abcdef"),
        ("w-004", '{"worker_id": "w-004"}', None),
    ]:
        item = model.get(worker_id)
        item.summary, item.summary_schema = summary, schema or item.summary_schema
        item.save(add_version_condition=False)
    workers = [repo.get(w.worker_id) for w in workers]  # versions moved on with those writes
    # When the fleet is read as summaries
    summaries = list(repo.iter_active_summaries())
    # Then each is the summary of its full record, read from its attributes where its stored one
    # could not be trusted, in worker id order, with the item's version
    assert summaries == [WorkerSummary.of(w) for w in workers]
    assert [x.version for x in summaries] == [2, 2, 2, 2]
    assert summaries[0].status == S.STOPPED
    # And a save writes the summary again: the stored one is then read
    repo.save(workers[1].model_copy(update={"name": "renamed"}))
    assert model.get("w-002").summary is not None
    assert [x.name for x in repo.iter_active_summaries()][1] == "renamed"


def test_find_by_instance_id(repos):
    stored = repos.workers.add(make(1))
    repos.workers.add(make(2))
    assert repos.workers.find_by_instance_id(make(1).instance_id) == stored
    assert repos.workers.find_by_instance_id("i-0000000000000dead") is None


def test_get_many_returns_the_existing_ones_in_the_order_asked(repos):
    for i in (1, 2, 3):
        repos.workers.add(make(i))
    found = repos.workers.get_many(["w-003", "w-404", "w-001", "w-003"])
    assert [w.worker_id for w in found] == ["w-003", "w-001"]
    assert repos.workers.get_many([]) == []


# --- optimistic locking ----------------------------------------------------------------------


def test_each_save_increments_the_version(repos):
    current = repos.workers.add(make(1))
    for expected in (2, 3, 4):
        current = repos.workers.save(current.touch(LATER, pause_count=current.pause_count + 1))
        assert current.version == expected and repos.workers.get("w-001") == current


def test_save_with_a_stale_version_is_refused_and_changes_nothing(repos):
    # Given two readers of version 1, one of which saved first
    first = repos.workers.add(make(1))
    winner = repos.workers.save(first.touch(LATER, owner="a"))
    # When the other saves its copy of version 1, then it loses
    with pytest.raises(ConcurrentModification) as caught:
        repos.workers.save(first.touch(LATER, owner="b"))
    assert caught.value.field == "version" and repos.workers.get("w-001") == winner


def test_save_of_a_deleted_worker_is_refused(repos):
    stored = repos.workers.add(make(1))
    repos.workers.delete("w-001")
    with pytest.raises(ConcurrentModification):
        repos.workers.save(stored.touch(LATER, owner="a"))
    with pytest.raises(NotFound):
        repos.workers.get("w-001")


def test_save_of_a_never_stored_worker_is_a_programming_error(repos):
    with pytest.raises(ValueError, match="use add"):
        repos.workers.save(make(1))


def test_save_many_returns_the_saved_and_the_failed(repos):
    a, b, c = (repos.workers.add(make(i)) for i in (1, 2, 3))
    repos.workers.save(b.touch(LATER, owner="someone else"))
    saved, failed = repos.workers.save_many(
        [a.touch(LATER, owner="x"), b.touch(LATER, owner="y"), c.touch(LATER, owner="z")]
    )
    assert sorted((w.worker_id, w.owner, w.version) for w in saved) == [("w-001", "x", 2), ("w-003", "z", 2)]
    assert [(w.worker_id, type(e)) for w, e in failed] == [("w-002", ConcurrentModification)]
    assert repos.workers.get("w-002").owner == "someone else"
    assert repos.workers.save_many([]) == ([], [])


# --- listing ---------------------------------------------------------------------------------


@pytest.fixture
def fleet(repos):  # noqa: ANN001, ANN201
    """25 active workers (every 5th in us-west-2, every 4th stopped) and 3 terminated ones."""
    for i in range(25):
        repos.workers.add(
            make(i, status=S.STOPPED if i % 4 == 0 else S.RUNNING, region="us-west-2" if i % 5 == 0 else "us-east-1")
        )
    for i in (90, 91, 92):
        repos.workers.add(make(i, status=S.TERMINATED, region="us-west-2" if i == 90 else "us-east-1"))
    return repos.workers


ACTIVE = [f"w-{i:03d}" for i in range(25)]
TERMINATED = ["w-090", "w-091", "w-092"]


@pytest.mark.parametrize("limit", [1, 5, 7, 25, 26, 100])
def test_paging_collects_every_active_worker_exactly_once(fleet, limit):
    seen = _all_pages(fleet, limit=limit)
    assert sorted(seen) == ACTIVE and len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("query", "size"),
    [({}, 25), ({"include_terminated": True}, 28), ({"region": "us-west-2"}, 5)],
    ids=["active", "with terminated", "filtered"],
)
def test_a_page_that_holds_the_rest_has_no_token(fleet, query, size):
    # Given exactly `size` matching workers, when asked for `size` a page
    page = fleet.list(WorkerQuery(limit=size, **query))
    # Then they come in one page, and no token sends the client back for an empty one
    assert len(page.items) == size and page.next_token is None
    # And one fewer than the rest leaves a token to exactly the last one
    first = fleet.list(WorkerQuery(limit=size - 1, **query))
    assert first.next_token is not None
    rest = fleet.list(WorkerQuery(limit=size, next_token=first.next_token, **query))
    assert sorted(w.worker_id for w in first.items + rest.items) == sorted(w.worker_id for w in page.items)
    assert len(rest.items) == 1 and rest.next_token is None


def test_paging_with_include_terminated_collects_everything_once(fleet):
    seen = _all_pages(fleet, limit=4, include_terminated=True)
    assert sorted(seen) == sorted(ACTIVE + TERMINATED) and len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": S.STOPPED}, [f"w-{i:03d}" for i in range(0, 25, 4)]),
        ({"region": "us-west-2"}, [f"w-{i:03d}" for i in range(0, 25, 5)]),
        ({"status": S.STOPPED, "region": "us-west-2"}, ["w-000", "w-020"]),
        ({"status": S.TERMINATED}, TERMINATED),
        ({"region": "us-west-2", "include_terminated": True}, [f"w-{i:03d}" for i in range(0, 25, 5)] + ["w-090"]),
        ({"status": S.FAILED}, []),
        ({"region": "eu-west-1"}, []),
    ],
    ids=["status", "region", "status and region", "terminated", "region with terminated", "no match", "no region"],
)
@pytest.mark.parametrize("limit", [3, 50])
def test_filters_across_pages(fleet, query, expected, limit):
    assert sorted(_all_pages(fleet, limit=limit, **query)) == sorted(expected)


def test_a_token_that_was_not_issued_is_a_validation_error(fleet):
    with pytest.raises(ValidationFailed) as caught:
        fleet.list(WorkerQuery(next_token="not-a-token!"))
    assert caught.value.field == "next_token"


def test_the_active_index_holds_exactly_the_active_workers(fleet):
    assert sorted(w.worker_id for w in fleet.iter_active()) == ACTIVE
    assert sorted(fleet.active_ids()) == ACTIVE


def test_a_worker_that_becomes_terminated_leaves_the_active_index_but_stays_gettable(repos):
    # Given two running workers
    keep = repos.workers.add(make(1))
    gone = repos.workers.add(make(2))
    # When one is saved as terminated
    terminated = repos.workers.save(gone.transition(S.TERMINATING, now=LATER).transition(S.TERMINATED, now=LATER))
    # Then it vanishes from the active index and the default listing
    assert [w.worker_id for w in repos.workers.iter_active()] == [keep.worker_id]
    assert repos.workers.active_ids() == [keep.worker_id]
    assert [w.worker_id for w in repos.workers.list(WorkerQuery()).items] == [keep.worker_id]
    # But it can still be read directly, by instance id, and listed on request
    assert repos.workers.get("w-002") == terminated
    assert repos.workers.find_by_instance_id(gone.instance_id) == terminated
    assert sorted(w.worker_id for w in repos.workers.list(WorkerQuery(include_terminated=True)).items) == [
        "w-001",
        "w-002",
    ]


# --- delete ----------------------------------------------------------------------------------


def test_delete_removes_and_a_second_delete_is_not_found(repos):
    repos.workers.add(make(1))
    repos.workers.add(make(2))
    repos.workers.delete("w-001")
    assert repos.workers.active_ids() == ["w-002"]
    with pytest.raises(NotFound) as caught:
        repos.workers.delete("w-001")
    assert caught.value.field == "worker_id"
    with pytest.raises(NotFound):
        repos.workers.delete("w-404")


# --- settings --------------------------------------------------------------------------------


def test_settings_default_before_the_first_save(repos):
    assert repos.settings.get() == Settings()


def test_settings_save_round_trips_and_bumps_the_version(repos):
    current = repos.settings.get()
    changed = current.model_copy(
        update={
            "idle_timeout_minutes": 90,
            "reconcile_policy_unrecorded": "adopt",
            "region_defaults": {
                "us-west-2": RegionDefaults(
                    instance_type="m5zn.metal",
                    ami_id="ami-0123456789abcdef0",
                    security_group_ids=("sg-1", "sg-2"),
                    user_data="#cloud-config",
                )
            },
        }
    )
    saved = repos.settings.save(changed)
    assert saved.version == current.version + 1
    assert repos.settings.get() == saved == changed.model_copy(update={"version": saved.version})
    again = repos.settings.save(saved.model_copy(update={"idle_timeout_minutes": 30}))
    assert again.version == saved.version + 1 and repos.settings.get().idle_timeout_minutes == 30


def test_a_stale_settings_save_is_refused_and_changes_nothing(repos):
    current = repos.settings.get()
    winner = repos.settings.save(current.model_copy(update={"idle_timeout_minutes": 90}))
    with pytest.raises(ConcurrentModification) as caught:
        repos.settings.save(current.model_copy(update={"idle_timeout_minutes": 10}))
    assert caught.value.field == "version" and repos.settings.get() == winner
    with pytest.raises(ConcurrentModification):
        repos.settings.save(winner.model_copy(update={"version": winner.version + 5}))


@pytest.mark.parametrize("call", ["list", "get", "write"])
def test_a_labs_table_fault_is_an_external_service_error(aws, call):  # noqa: ANN001
    # Given a labs repository whose table does not exist (DynamoDB answers ResourceNotFound)
    from cmlcm.adapters.labs_repo import DynamoLabRepository
    from cmlcm.domain.errors import ExternalServiceError
    from cmlcm.domain.labs import Lab

    repo = DynamoLabRepository("no-such-labs-table", "us-east-1")
    lab = Lab(
        worker_id="w-1",
        lab_id="l-1",
        title="t",
        state="STOPPED",
        owner=None,
        node_count=1,
        link_count=0,
        created=None,
        modified=None,
        synced_at=datetime(2026, 11, 30, tzinfo=UTC),
    )
    calls = {
        "list": lambda: repo.list("w-1"),
        "get": lambda: repo.get("w-1", "l-1"),
        "write": lambda: repo.write([lab], []),
    }
    # Then the fault reaches the service as the domain's error (recorded or reported, not a 500)
    with pytest.raises(ExternalServiceError):
        calls[call]()
