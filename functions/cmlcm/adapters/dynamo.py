"""The workers table (PynamoDB): the worker repository with optimistic locking, the active and
instance indexes, paging; and its in-memory twin, `InMemoryWorkerRepository`. PynamoDB models live only in the adapters; services see domain models.

Table names come from `FunctionConfig`; model classes are built per table name so tests and the
local mode can point the same code at other tables without import-time environment tricks.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import threading
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError
from pynamodb.attributes import (
    DESERIALIZE_CLASS_MAP,
    BinaryAttribute,
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.constants import BATCH_GET_PAGE_LIMIT
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.adapters.pynamo import bind, decode_token, encode_token, is_condition_failure, plain
from cmlcm.domain.errors import ConcurrentModification, Conflict, NotFound
from cmlcm.domain.workers import Worker, WorkerStatus, WorkerSummary, summary_attributes
from cmlcm.pools import map_all
from cmlcm.ports import Page, WorkerQuery

#: The sparse active index has one partition; terminated workers drop out of it.
ACTIVE_SHARD = "ACTIVE"
#: Saves in `save_many` run on a few threads: each is one conditional PutItem.
_SAVE_THREADS = 16


class ActiveIndex(GlobalSecondaryIndex["WorkerItem"]):
    class Meta:
        index_name = "active-index"
        projection = AllProjection()

    active_shard = UnicodeAttribute(hash_key=True)
    worker_id = UnicodeAttribute(range_key=True)


class InstanceIndex(GlobalSecondaryIndex["WorkerItem"]):
    class Meta:
        index_name = "instance-index"
        projection = AllProjection()

    instance_id = UnicodeAttribute(hash_key=True)


class WorkerItem(Model):
    """Storage shape of a worker. Scalars are top-level (indexes and filters use them)."""

    class Meta:
        table_name = "cmlcm-workers"
        billing_mode = "PAY_PER_REQUEST"

    worker_id = UnicodeAttribute(hash_key=True)
    active_shard = UnicodeAttribute(null=True)
    instance_id = UnicodeAttribute(null=True)
    name = UnicodeAttribute()
    region = UnicodeAttribute()
    instance_type = UnicodeAttribute(null=True)
    ami_id = UnicodeAttribute(null=True)
    ami_name = UnicodeAttribute(null=True)
    ami_description = UnicodeAttribute(null=True)
    ami_created_at = UnicodeAttribute(null=True)
    owner = UnicodeAttribute(null=True)
    tags: MapAttribute[str, Any] = MapAttribute(null=True)
    status = UnicodeAttribute()
    service_status = UnicodeAttribute()
    ec2_state = UnicodeAttribute(null=True)
    public_ip = UnicodeAttribute(null=True)
    private_ip = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    status_changed_at = UnicodeAttribute()
    status_reason = UnicodeAttribute(null=True)
    idle_detection_enabled = BooleanAttribute()
    detailed_monitoring = BooleanAttribute()
    pause_count = NumberAttribute()
    resume_count = NumberAttribute()
    # Written since pauses are told apart (auto/manual, who, why); absent on older items, read as 0/None.
    auto_pause_count = NumberAttribute(null=True)
    manual_pause_count = NumberAttribute(null=True)
    auto_resume_count = NumberAttribute(null=True)
    manual_resume_count = NumberAttribute(null=True)
    last_pause_reason = UnicodeAttribute(null=True)
    last_paused_at = UnicodeAttribute(null=True)
    last_paused_by = UnicodeAttribute(null=True)
    last_pause_auto = BooleanAttribute(null=True)
    last_resumed_at = UnicodeAttribute(null=True)
    last_resume_reason = UnicodeAttribute(null=True)
    last_resumed_by = UnicodeAttribute(null=True)
    last_resume_auto = BooleanAttribute(null=True)
    was_auto_paused = BooleanAttribute(null=True)
    snoozed_until = UnicodeAttribute(null=True)
    policy_stopped_at = UnicodeAttribute(null=True)
    policy_stopped_by = UnicodeAttribute(null=True)
    idle_stopped_hours = NumberAttribute(null=True)
    schedule_stopped_hours = NumberAttribute(null=True)
    schedule_mark: MapAttribute[str, Any] = MapAttribute(null=True)
    metrics: MapAttribute[str, Any] = MapAttribute(null=True)
    licence: MapAttribute[str, Any] = MapAttribute(null=True)
    cml_system: MapAttribute[str, Any] = MapAttribute(null=True)
    last_error: MapAttribute[str, Any] = MapAttribute(null=True)
    last_change: MapAttribute[str, Any] = MapAttribute(null=True)
    #: The worker's `WorkerSummary` as JSON (without its version, which is `version`), written
    #: with every save, and the fingerprint of the summary's schema it was written under: the
    #: fleet snapshot reads these two attributes per worker, not twenty (see `iter_active_summaries`).
    summary = UnicodeAttribute(null=True)
    summary_schema = UnicodeAttribute(null=True)
    #: The whole worker as zlib-compressed JSON, its version the one this save stores, and the
    #: fingerprint of the worker's schema: a collection reads these per worker, not a hundred
    #: attributes (see `get_many`). Trusted only while its version is the item's: every writer
    #: must move `version` (optimistic locking already asks that), so a write that leaves this
    #: attribute behind shows as a version mismatch and the worker is read from its attributes.
    packed = BinaryAttribute(null=True, legacy_encoding=False)
    packed_schema = UnicodeAttribute(null=True)
    version = VersionAttribute()

    active_index = ActiveIndex()
    instance_index = InstanceIndex()


def worker_to_item(model: type[WorkerItem], worker: Worker) -> WorkerItem:
    data = worker.model_dump(mode="json", exclude={"version"})
    item = model(**data)
    item.summary = WorkerSummary.of(worker).model_dump_json(exclude={"version"})
    item.summary_schema = SUMMARY_SCHEMA
    # PynamoDB's save stores version + 1 (1 for a new item): the packed worker carries that one.
    stored_version = worker.version + 1 if worker.version else 1
    item.packed = zlib.compress(worker.model_copy(update={"version": stored_version}).model_dump_json().encode())
    item.packed_schema = WORKER_SCHEMA
    item.active_shard = ACTIVE_SHARD if worker.is_active else None
    if worker.version:  # unset means "new item": PynamoDB then writes attribute_not_exists
        item.version = worker.version
    return item


def item_to_worker(item: WorkerItem) -> Worker:
    data = {name: plain(getattr(item, name)) for name in _WORKER_FIELDS}
    return _validated_worker(data, item.version)


def _validated_worker(data: dict[str, Any], version: int | None) -> Worker:
    """The worker of an item's plain attribute values (`_WORKER_FIELDS`, None when absent),
    validated by the domain model: whatever wrote the item, it is checked on the way in."""
    data["tags"] = data.get("tags") or {}
    # Items written before an attribute existed lack it: the domain's default stands (counts 0).
    for name in _ADDED_LATER:
        if data.get(name) is None:
            data.pop(name, None)
    return Worker.model_validate({**data, "version": version or 0})


def wire_to_worker(raw: dict[str, dict[str, Any]]) -> Worker:
    """`item_to_worker` of an item as DynamoDB's answer holds it (AttributeValues), without
    building the PynamoDB model first: each value is decoded as PynamoDB decodes it (`wire_value`),
    then validated the same way. A collection reads 1000 workers a cycle; the model's descriptors
    and per-attribute objects cost about as much CPU as the validation itself. Equality with
    `item_to_worker` is tested on every kind of value a worker item holds."""
    data = {name: wire_value(raw[name]) if name in raw else None for name in _WORKER_FIELDS}
    version = raw.get("version")
    return _validated_worker(data, wire_value(version) if version is not None else None)


def wire_value(value: dict[str, Any]) -> Any:
    """One AttributeValue as a plain value, as PynamoDB's deserializers give it and `plain`
    flattens it: maps as dicts, lists as lists, numbers through `json.loads` (PynamoDB's own
    decoding: 3 -> int, 3.5 -> float); other types take PynamoDB's own deserializer."""
    ((kind, inner),) = value.items()
    if kind == "S" or kind == "BOOL":
        return inner
    if kind == "M":
        return {key: wire_value(member) for key, member in inner.items()}
    if kind == "N":
        return json.loads(inner)
    if kind == "L":
        return [wire_value(member) for member in inner]
    if kind == "NULL":
        return None
    return plain(DESERIALIZE_CLASS_MAP[kind].deserialize(inner))


#: The attributes a worker is read from (its version apart: the item's optimistic lock).
_WORKER_FIELDS = tuple(name for name in Worker.model_fields if name != "version")


#: The attribute paths a `WorkerSummary` is read from (top-level and `metrics.<name>`, `licence.<name>`).
_SUMMARY_ATTRIBUTES = summary_attributes()
#: What the fleet snapshot reads of each worker: its stored summary, the summary's schema, the version.
_STORED_SUMMARY_ATTRIBUTES = ["worker_id", "summary", "summary_schema", "version"]


#: Fingerprint of `WorkerSummary`'s JSON schema: a stored summary written under another one (an
#: older release, a changed field) is not trusted; the worker's summary is then read from its attributes.
def schema_fingerprint(model: type[BaseModel]) -> str:
    """A short fingerprint of a model's JSON schema: a stored form written under another one is
    not trusted (an older release, a changed field)."""
    return hashlib.sha256(json.dumps(model.model_json_schema(), sort_keys=True).encode()).hexdigest()[:16]


SUMMARY_SCHEMA = schema_fingerprint(WorkerSummary)


#: What a collection reads of each worker (`get_many`): the packed worker, its schema, the version.
_PACKED_ATTRIBUTES = ["worker_id", "packed", "packed_schema", "version"]
#: Fingerprint of `Worker`'s JSON schema, as `SUMMARY_SCHEMA` is the summary's.
WORKER_SCHEMA = schema_fingerprint(Worker)


def packed_worker(item: dict[str, Any]) -> Worker | None:
    """The worker packed in `item` (DynamoDB's answer for `_PACKED_ATTRIBUTES`), or None when it
    is missing, of another schema, not a packed worker, or of another version than the item's (a
    writer that did not pack it: the item's attributes are then the truth)."""
    packed, schema = item.get("packed", {}).get("B"), item.get("packed_schema", {}).get("S")
    version = item.get("version", {}).get("N")
    if packed is None or schema != WORKER_SCHEMA or version is None:
        return None
    try:
        worker = Worker.model_validate_json(zlib.decompress(packed))
    except (zlib.error, ValidationError):
        return None
    if str(worker.version) != version or worker.worker_id != item.get("worker_id", {}).get("S"):
        return None
    return worker


def stored_summary(item: dict[str, Any]) -> WorkerSummary | None:
    """The summary stored in `item` (DynamoDB's answer for `_STORED_SUMMARY_ATTRIBUTES`), or None
    when it is missing, of another schema, or does not validate."""
    summary, schema = item.get("summary", {}).get("S"), item.get("summary_schema", {}).get("S")
    if summary is None or schema != SUMMARY_SCHEMA:
        return None
    try:
        stored = WorkerSummary.model_validate_json(summary)
    except ValidationError:
        return None
    return stored.model_copy(update={"version": int(item["version"]["N"]) if "version" in item else 0})


def item_to_summary(item: WorkerItem) -> WorkerSummary:
    """The summary of a worker item read with the `_SUMMARY_ATTRIBUTES` projection."""
    data = {name: plain(getattr(item, name)) for name in WorkerSummary.model_fields if name != "version"}
    data["tags"] = data.get("tags") or {}
    return WorkerSummary.model_validate({**data, "version": item.version or 0})


#: Worker attributes with a non-null default that older items do not have.
_ADDED_LATER = (
    "auto_pause_count",
    "manual_pause_count",
    "auto_resume_count",
    "manual_resume_count",
    "idle_stopped_hours",
    "schedule_stopped_hours",
)


class DynamoWorkerRepository:
    """`WorkerRepository` on the workers table, with optimistic locking on `version`."""

    def __init__(self, table_name: str, region: str) -> None:
        self._model: type[WorkerItem] = bind(WorkerItem, table_name, region)
        self._table_name = table_name
        self._region = region

    def get(self, worker_id: str) -> Worker:
        try:
            return item_to_worker(self._model.get(worker_id, consistent_read=True))
        except DoesNotExist:
            raise NotFound(f"worker {worker_id} not found", field="worker_id") from None

    def find_by_instance_id(self, instance_id: str) -> Worker | None:
        for item in self._model.instance_index.query(instance_id, limit=1):
            return item_to_worker(item)
        return None

    def get_many(self, worker_ids: Sequence[str]) -> list[Worker]:
        """The workers asked for that exist, in the order asked. Each is read from its packed
        form (four attributes: `packed_worker`); those without a trusted one (an item from an
        older release, another schema, a writer that did not pack it) are read again whole and
        decoded straight from DynamoDB's answer (`wire_to_worker`)."""
        keys = list(dict.fromkeys(worker_ids))
        found: dict[str, Worker] = {}
        unpacked: list[str] = []
        for raw in self._batch_get(keys, _PACKED_ATTRIBUTES):
            worker = packed_worker(raw)
            if worker is None:
                unpacked.append(raw["worker_id"]["S"])
            else:
                found[worker.worker_id] = worker
        for raw in self._batch_get(unpacked, None):  # one gone meanwhile is simply not found
            worker = wire_to_worker(raw)
            found[worker.worker_id] = worker
        return [found[k] for k in keys if k in found]

    def _batch_get(self, keys: Sequence[str], attributes: builtins.list[str] | None) -> Iterator[dict[str, Any]]:
        """BatchGetItem pages of 100 keys, consistent, unprocessed keys asked again (as PynamoDB's
        `batch_get` does), through PynamoDB's connection; DynamoDB's answer as it is."""
        connection = self._model._get_connection()
        table = self._model.Meta.table_name
        for start in range(0, len(keys), BATCH_GET_PAGE_LIMIT):
            pending: Any = [{"worker_id": {"S": k}} for k in keys[start : start + BATCH_GET_PAGE_LIMIT]]
            while pending:
                data = connection.batch_get_item(pending, consistent_read=True, attributes_to_get=attributes)
                yield from data.get("Responses", {}).get(table, [])
                pending = data.get("UnprocessedKeys", {}).get(table, {}).get("Keys")

    def add(self, worker: Worker) -> Worker:
        item = worker_to_item(self._model, worker.model_copy(update={"version": 0}))
        try:
            item.save()
        except PutError as exc:
            if is_condition_failure(exc):
                raise Conflict(f"worker {worker.worker_id} already exists", field="worker_id") from exc
            raise
        return worker.model_copy(update={"version": item.version})

    def save(self, worker: Worker) -> Worker:
        if worker.version < 1:
            raise ValueError("save() takes a stored worker; use add() for a new one")
        item = worker_to_item(self._model, worker)
        try:
            item.save()
        except PutError as exc:
            if is_condition_failure(exc):
                raise ConcurrentModification(
                    f"worker {worker.worker_id} was changed by someone else", field="version"
                ) from exc
            raise
        return worker.model_copy(update={"version": item.version})

    def save_many(self, workers: Sequence[Worker]) -> tuple[list[Worker], list[tuple[Worker, Exception]]]:
        saved: list[Worker] = []
        failed: list[tuple[Worker, Exception]] = []
        if not workers:
            return saved, failed

        def one(worker: Worker) -> tuple[Worker, Worker | None, Exception | None]:
            try:
                return worker, self.save(worker), None
            except (ConcurrentModification, PutError) as exc:
                return worker, None, exc

        for worker, result, error in map_all("worker-saves", _SAVE_THREADS, one, workers):
            if result is not None:
                saved.append(result)
            else:
                failed.append((worker, error))  # type: ignore[arg-type]
        return saved, failed

    def delete(self, worker_id: str) -> None:
        try:
            self._model(worker_id).delete(condition=self._model.worker_id.exists(), add_version_condition=False)
        except DeleteError as exc:
            if is_condition_failure(exc):
                raise NotFound(f"worker {worker_id} not found", field="worker_id") from exc
            raise

    def list(self, query: WorkerQuery) -> Page[Worker]:
        condition = None
        if query.status is not None:
            condition = self._model.status == query.status.value
        if query.region is not None:
            by_region = self._model.region == query.region
            condition = by_region if condition is None else condition & by_region
        start = decode_token(query.next_token)
        # One item more than the page: a token only when another page really exists (a fleet of
        # exactly `limit` workers is one request, not a second one answering nothing).
        scan = query.include_terminated or query.status == WorkerStatus.TERMINATED
        if scan:
            results = self._model.scan(filter_condition=condition, limit=query.limit + 1, last_evaluated_key=start)
        else:
            results = self._model.active_index.query(
                ACTIVE_SHARD, filter_condition=condition, limit=query.limit + 1, last_evaluated_key=start
            )
        items = list(results)
        if len(items) <= query.limit:
            return Page(items=[item_to_worker(item) for item in items], next_token=None)
        page = items[: query.limit]
        # Resume after the page's last item: its table key, plus the index key on the index.
        last = page[-1].worker_id
        key: dict[str, Any] = {"worker_id": {"S": last}}
        if not scan:
            key["active_shard"] = {"S": ACTIVE_SHARD}
        return Page(items=[item_to_worker(item) for item in page], next_token=encode_token(key))

    def iter_active(self) -> Iterator[Worker]:
        for item in self._model.active_index.query(ACTIVE_SHARD):
            yield item_to_worker(item)

    def active_ids(self) -> builtins.list[str]:  # `list` is the method above here
        """Ids of every non-terminated worker: the index query reads only the key attribute."""
        return [
            item.worker_id for item in self._model.active_index.query(ACTIVE_SHARD, attributes_to_get=["worker_id"])
        ]

    def _stored_summaries(self) -> Iterator[dict[str, Any]]:
        """The active index's items with `_STORED_SUMMARY_ATTRIBUTES` only, as DynamoDB answers
        them (four attributes: the low-level client, not PynamoDB, whose model instances cost more
        than the summaries here)."""
        dynamodb = client("dynamodb", self._region)
        names = {f"#a{i}": name for i, name in enumerate(_STORED_SUMMARY_ATTRIBUTES)}
        request: dict[str, Any] = {
            "TableName": self._table_name,
            "IndexName": ActiveIndex.Meta.index_name,
            "KeyConditionExpression": "#shard = :shard",
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": {**names, "#shard": "active_shard"},
            "ExpressionAttributeValues": {":shard": {"S": ACTIVE_SHARD}},
        }
        while True:
            try:
                page = dynamodb.query(**request)
            except ClientError as exc:
                raise map_client_error(exc, action="read the fleet's summaries") from exc
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def iter_active_summaries(self) -> Iterator[WorkerSummary]:
        """Every non-terminated worker's summary, in worker id order. The index query returns the
        summary each save stores as one JSON attribute (a ProjectionExpression of four attributes),
        so neither DynamoDB's answer nor its parsing carries each worker's CML facts, errors and
        history, nor twenty attributes of it (a 1000-worker fleet: ~0.6 MB, not ~2.7). A worker
        whose stored summary is missing or of another schema (written before this release) is read
        from its attributes instead, in one BatchGetItem per hundred such workers."""
        found = [(item["worker_id"]["S"], stored_summary(item)) for item in self._stored_summaries()]
        stale = [worker_id for worker_id, summary in found if summary is None]
        read = (
            {
                item.worker_id: item_to_summary(item)
                for item in self._model.batch_get(stale, attributes_to_get=_SUMMARY_ATTRIBUTES)
            }
            if stale
            else {}
        )
        for worker_id, summary in found:
            if summary is None:
                summary = read.get(worker_id)  # None: gone between the two reads, no longer active
            if summary is not None:
                yield summary


def create_tables(workers_table: str, operations_table: str, region: str) -> None:
    """Create the workers and operations tables if missing (local mode and tests; CDK owns them in AWS)."""
    from cmlcm.adapters.operations import OperationItem

    for model, name in ((WorkerItem, workers_table), (OperationItem, operations_table)):
        bound = bind(model, name, region)
        if not bound.exists():
            bound.create_table(wait=True)


__all__ = ["DynamoWorkerRepository", "WorkerItem", "create_tables"]


# --- the in-memory twin (unit tests, benchmarks): same semantics (locking, paging, errors); the
# repository contract test (tests/integration/test_repository_contract.py) runs both ---
class InMemoryWorkerRepository:
    def __init__(self) -> None:
        self._items: dict[str, Worker] = {}
        self._lock = threading.Lock()
        #: Write requests made, for tests and benchmarks that count writes.
        self.writes = 0

    def get(self, worker_id: str) -> Worker:
        try:
            return self._items[worker_id]
        except KeyError:
            raise NotFound(f"worker {worker_id} not found", field="worker_id") from None

    def find_by_instance_id(self, instance_id: str) -> Worker | None:
        return next((w for w in self._items.values() if w.instance_id == instance_id), None)

    def get_many(self, worker_ids: Sequence[str]) -> list[Worker]:
        return [self._items[k] for k in dict.fromkeys(worker_ids) if k in self._items]

    def add(self, worker: Worker) -> Worker:
        with self._lock:
            if worker.worker_id in self._items:
                raise Conflict(f"worker {worker.worker_id} already exists", field="worker_id")
            stored = worker.model_copy(update={"version": 1})
            self._items[worker.worker_id] = stored
            self.writes += 1
            return stored

    def save(self, worker: Worker) -> Worker:
        if worker.version < 1:
            raise ValueError("save() takes a stored worker; use add() for a new one")
        with self._lock:
            current = self._items.get(worker.worker_id)
            if current is None or current.version != worker.version:
                raise ConcurrentModification(f"worker {worker.worker_id} was changed by someone else", field="version")
            stored = worker.model_copy(update={"version": worker.version + 1})
            self._items[worker.worker_id] = stored
            self.writes += 1
            return stored

    def save_many(self, workers: Sequence[Worker]) -> tuple[list[Worker], list[tuple[Worker, Exception]]]:
        saved: list[Worker] = []
        failed: list[tuple[Worker, Exception]] = []
        for worker in workers:
            try:
                saved.append(self.save(worker))
            except ConcurrentModification as exc:
                failed.append((worker, exc))
        return saved, failed

    def delete(self, worker_id: str) -> None:
        with self._lock:
            if self._items.pop(worker_id, None) is None:
                raise NotFound(f"worker {worker_id} not found", field="worker_id")
            self.writes += 1

    def list(self, query: WorkerQuery) -> Page[Worker]:
        start = decode_token(query.next_token)
        after = start["worker_id"]["S"] if start and "worker_id" in start else ""
        include_terminated = query.include_terminated or query.status == WorkerStatus.TERMINATED
        matching = [
            w
            for _, w in sorted(self._items.items())
            if w.worker_id > after
            and (include_terminated or w.is_active)
            and (query.status is None or w.status == query.status)
            and (query.region is None or w.region == query.region)
        ]
        page = matching[: query.limit]
        more = len(matching) > query.limit
        token = encode_token({"worker_id": {"S": page[-1].worker_id}}) if more and page else None
        return Page(items=page, next_token=token)

    def iter_active(self) -> Iterator[Worker]:
        yield from (w for _, w in sorted(self._items.items()) if w.is_active)

    def active_ids(self) -> builtins.list[str]:  # `list` is the method above here
        return [w.worker_id for w in self.iter_active()]

    def iter_active_summaries(self) -> Iterator[WorkerSummary]:
        yield from (WorkerSummary.of(w) for w in self.iter_active())
