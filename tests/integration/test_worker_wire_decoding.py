"""The workers repository's `get_many` reads each worker from its packed form (`packed_worker`)
or, without a trusted one, decodes DynamoDB's answer straight into a worker (`wire_to_worker`),
not through PynamoDB's model: both must read every worker exactly as the model path
(`item_to_worker`) does, validation included."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError
from pynamodb.attributes import DESERIALIZE_CLASS_MAP

from cmlcm.adapters.aws import client
from cmlcm.adapters.dynamo import WORKER_SCHEMA, DynamoWorkerRepository, item_to_worker, wire_value
from cmlcm.adapters.pynamo import plain
from cmlcm.config import get_config
from cmlcm.domain.cml import CmlSystem, ComputeHealth, LicenceDetail, LicenceFeature, SystemHealth
from cmlcm.domain.workers import (
    ChangeCause,
    Licence,
    LicenceOperation,
    ScheduleMark,
    ServiceStatus,
    Worker,
    WorkerError,
    WorkerMetrics,
    WorkerStatus,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def bare(i: int) -> Worker:
    return Worker(
        worker_id=f"w-{i:04d}",
        name=f"cml-{i}",
        region="us-east-1",
        instance_id=f"i-{i:017x}",
        status=WorkerStatus.RUNNING,
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
    )


def rich(i: int) -> Worker:
    """Every optional part filled in: nested maps, lists of maps, floats, whole floats, None members."""
    return bare(i).model_copy(
        update={
            "instance_type": "c5.metal",
            "ami_created_at": NOW - timedelta(days=30),
            "owner": "ann@example.com",
            "tags": {"ManagedBy": "CmlCloudManager", "Course": "ccna", "Empty": ""},
            "service_status": ServiceStatus.AVAILABLE,
            "ec2_state": "running",
            "public_ip": "3.3.3.3",
            "private_ip": "10.0.0.7",
            "pause_count": 3,
            "auto_pause_count": 2,
            "idle_stopped_hours": 1.25,
            "schedule_stopped_hours": 2.0,
            "last_paused_at": NOW,
            "last_pause_auto": True,
            "snoozed_until": NOW + timedelta(hours=2),
            "policy_stopped_by": "idle",
            "schedule_mark": ScheduleMark(schedule="nights", desired="stopped", at=NOW),
            "metrics": WorkerMetrics(
                collected_at=NOW,
                ec2_state="running",
                cpu_percent=12.5,
                memory_percent=40.0,
                cml_version="2.9.0",
                cml_ready=True,
                labs_total=4,
                labs_running=0,
                licensed=True,
                last_activity_at=NOW,
                labs_digest="0123456789abcdef01234567",
            ),
            "cml_system": CmlSystem(
                health=SystemHealth(
                    valid=True,
                    is_licensed=True,
                    core_connected=True,
                    computes=[
                        ComputeHealth(compute_id="c-1", hostname="cml-controller", valid=True, cpu_count=96),
                        ComputeHealth(compute_id="c-2", hostname="cml-2", valid=False, admission_state="DRAINED"),
                    ],
                ),
                licence_detail=LicenceDetail(
                    smart_account="acme",
                    features=[LicenceFeature(id="f-1", name="CML - Enterprise License", in_use=1, max=1)],
                ),
            ),
            "licence": Licence(
                registration_status="REGISTERED",
                operation=LicenceOperation.REGISTERING,
                operation_state="pending",
                operation_started_at=NOW,
            ),
            "last_error": WorkerError(source="cml", kind="timeout", message="no answer", at=NOW),
            "last_change": ChangeCause(kind="collector"),
        }
    )


@pytest.fixture
def repo(aws: None) -> DynamoWorkerRepository:  # noqa: ARG001 - the moto account
    config = get_config()
    return DynamoWorkerRepository(config.workers_table, config.aws_region)


def _by_model(repo: DynamoWorkerRepository, ids: list[str]) -> list[Worker]:
    """The workers as PynamoDB's model path reads them."""
    model = repo._model
    found = {item.worker_id: item_to_worker(item) for item in model.batch_get(ids, consistent_read=True)}
    return [found[k] for k in ids if k in found]


def test_get_many_reads_every_kind_of_worker_as_the_model_path_does(repo: DynamoWorkerRepository) -> None:
    # Given bare and fully filled workers, one of them saved twice (version 2)
    workers = [repo.add(bare(1)), repo.add(rich(2)), repo.add(rich(3))]
    workers[2] = repo.save(workers[2].touch(NOW + timedelta(minutes=5), pause_count=4))
    ids = [w.worker_id for w in workers]
    # When read by get_many (DynamoDB's answer decoded directly)
    fast = repo.get_many(ids)
    # Then they equal both what was stored and what the model path reads, versions included
    assert fast == workers == _by_model(repo, ids)
    assert [w.version for w in fast] == [1, 1, 2]


def test_an_item_written_before_the_newer_counters_reads_as_the_model_path_does(repo: DynamoWorkerRepository) -> None:
    # Given an item without the attributes added later (pause/resume split, hours stopped), nor
    # the packed worker (an older release wrote none of them)
    stored = repo.add(rich(4))
    raw = client("dynamodb", get_config().aws_region)
    for name in (
        "auto_pause_count",
        "idle_stopped_hours",
        "schedule_stopped_hours",
        "manual_resume_count",
        "packed",
        "packed_schema",
    ):
        raw.update_item(
            TableName=get_config().workers_table,
            Key={"worker_id": {"S": stored.worker_id}},
            UpdateExpression="REMOVE #a",
            ExpressionAttributeNames={"#a": name},
        )
    # When read both ways, then both give the domain's defaults (0) for the missing counters
    fast = repo.get_many([stored.worker_id])
    assert fast == _by_model(repo, [stored.worker_id])
    assert fast[0].auto_pause_count == 0 and fast[0].idle_stopped_hours == 0.0 and fast[0].pause_count == 3


def test_get_many_pages_past_100_keys_in_the_order_asked(repo: DynamoWorkerRepository) -> None:
    # Given 250 workers (BatchGetItem takes 100 keys a request)
    for i in range(250):
        repo.add(bare(i))
    asked = [f"w-{i:04d}" for i in reversed(range(250))] + ["w-9999", "w-0007"]
    # When all are asked for, with an unknown id and a duplicate
    found = repo.get_many(asked)
    # Then each existing one comes once, in the order asked
    assert [w.worker_id for w in found] == [f"w-{i:04d}" for i in reversed(range(250))]


def _write_behind(worker_id: str, expression: str, names: dict[str, str], values: dict[str, object]) -> None:
    """An UpdateItem by another writer than the repository (a script, the console)."""
    client("dynamodb", get_config().aws_region).update_item(
        TableName=get_config().workers_table,
        Key={"worker_id": {"S": worker_id}},
        UpdateExpression=expression,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def test_a_stored_value_the_domain_refuses_fails_validation_on_both_paths(repo: DynamoWorkerRepository) -> None:
    # Given an item whose status is no worker status, written by something else that moved the
    # version, as every writer must (optimistic locking)
    stored = repo.add(bare(5))
    _write_behind(
        stored.worker_id,
        "SET #s = :s ADD #v :one",
        {"#s": "status", "#v": "version"},
        {":s": {"S": "exploded"}, ":one": {"N": "1"}},
    )
    # When read, then both paths refuse it, naming the field
    with pytest.raises(ValidationError, match="status"):
        repo.get_many([stored.worker_id])
    with pytest.raises(ValidationError, match="status"):
        _by_model(repo, [stored.worker_id])


def _packed(worker: Worker) -> bytes:
    return zlib.compress(worker.model_dump_json().encode())


#: How the packed form is left, given the item's worker after the other write (version 2) and
#: another worker: (packed bytes, schema), or None to leave it as the repository wrote it (version 1).
PACKED_CASES = {
    "left behind at version 1 by the other writer": lambda worker, other: None,
    "of another schema (an older release)": lambda worker, other: (_packed(worker), "0123456789abcdef"),
    "not zlib": lambda worker, other: (b"\x00not zlib", WORKER_SCHEMA),
    "zlib, not a worker": lambda worker, other: (zlib.compress(b'{"worker_id": 7}'), WORKER_SCHEMA),
    "another worker's": lambda worker, other: (_packed(other), WORKER_SCHEMA),
}


@pytest.mark.parametrize("case", PACKED_CASES)
def test_a_packed_worker_not_to_be_trusted_is_read_from_the_attributes(repo: DynamoWorkerRepository, case: str) -> None:
    # Given a stored worker whose owner another writer changed, moving the version as it must
    stored, other = repo.add(rich(6)), repo.add(rich(7))
    _write_behind(
        stored.worker_id,
        "SET #o = :o ADD #v :one",
        {"#o": "owner", "#v": "version"},
        {":o": {"S": "bob@example.com"}, ":one": {"N": "1"}},
    )
    # And its packed form as the case says
    v2 = {"version": 2}
    left = PACKED_CASES[case](stored.model_copy(update=v2), other.model_copy(update=v2))
    if left is not None:
        packed, schema = left
        _write_behind(
            stored.worker_id,
            "SET #p = :p, #s = :s",
            {"#p": "packed", "#s": "packed_schema"},
            {":p": {"B": packed}, ":s": {"S": schema}},
        )
    # When a collection reads it, then it is the item's attributes, as the model path reads them
    (fast,) = repo.get_many([stored.worker_id])
    assert fast == _by_model(repo, [stored.worker_id])[0]
    assert fast.owner == "bob@example.com" and fast.version == 2


def test_the_packed_worker_is_what_a_collection_reads(repo: DynamoWorkerRepository) -> None:
    # Given a stored worker (version 1) whose attribute another writer changed without moving the
    # version (against the optimistic locking contract: its change is not seen by a collection,
    # which shows which form answered)
    stored = repo.add(rich(8))
    _write_behind(stored.worker_id, "SET #o = :o", {"#o": "owner"}, {":o": {"S": "bob@example.com"}})
    # When read by a collection, then it is the worker as the repository stored it
    assert repo.get_many([stored.worker_id]) == [stored]
    # And after a save (version 2) and the same change behind its back, it is the saved worker:
    # each save packs the worker at the version it stores
    saved = repo.save(stored.touch(NOW + timedelta(minutes=1), pause_count=9))
    assert saved.version == 2
    _write_behind(stored.worker_id, "SET #o = :o", {"#o": "owner"}, {":o": {"S": "carol@example.com"}})
    assert repo.get_many([stored.worker_id]) == [saved]
    assert _by_model(repo, [stored.worker_id])[0].owner == "carol@example.com"


@pytest.mark.parametrize(
    "value",
    [
        {"S": "text"},
        {"S": ""},
        {"N": "3"},
        {"N": "-3.25"},
        {"N": "1e3"},
        {"BOOL": False},
        {"NULL": True},
        {"L": [{"S": "a"}, {"N": "2"}, {"M": {"k": {"NULL": True}}}, {"L": []}]},
        {"M": {"a": {"M": {"b": {"L": [{"BOOL": True}, {"M": {}}]}}}, "n": {"N": "0.5"}}},
        {"SS": ["b", "a"]},
        {"NS": ["1", "2.5"]},
        {"B": b"\x00\x01"},
    ],
)
def test_wire_value_decodes_as_pynamodb_does(value: dict[str, object]) -> None:
    # Given one AttributeValue; when decoded both ways, then the plain values are equal
    ((kind, inner),) = value.items()
    assert wire_value(value) == plain(DESERIALIZE_CLASS_MAP[kind].deserialize(inner))


def test_wire_value_keeps_pynamodb_number_types() -> None:
    # A whole number stays an int and a fraction a float, as PynamoDB's json.loads gives them
    assert type(wire_value({"N": "3"})) is int and type(wire_value({"N": "3.0"})) is float
    assert wire_value({"N": "0.1"}) == float(Decimal("0.1"))
