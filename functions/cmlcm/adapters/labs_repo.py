"""The labs table (PynamoDB) and its in-memory twin. Services see `Lab`, never a `LabItem`.

Key: `worker_id` (partition) + `lab_id` (sort), as the CDK table defines it, so one worker's labs
are one Query and a sync's puts and deletes go out as BatchWriteItem requests of 25.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from botocore.exceptions import ClientError
from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.models import Model

from cmlcm.adapters.aws import map_client_error
from cmlcm.adapters.pynamo import bind
from cmlcm.domain.cml import LabGroup
from cmlcm.domain.errors import ExternalServiceError
from cmlcm.domain.labs import Lab, LabStateChange


class LabItem(Model):
    """Storage shape of a lab: scalars only, times as ISO-8601 text (sortable, readable)."""

    class Meta:
        table_name = "cmlcm-labs"
        billing_mode = "PAY_PER_REQUEST"

    worker_id = UnicodeAttribute(hash_key=True)
    lab_id = UnicodeAttribute(range_key=True)
    title = UnicodeAttribute()
    state = UnicodeAttribute()
    owner = UnicodeAttribute(null=True)
    owner_fullname = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)
    notes = UnicodeAttribute(null=True)
    #: [{id, permission, name}] and [{state, seen_at}] as JSON text (small, read whole).
    groups = JSONAttribute(null=True)
    state_history = JSONAttribute(null=True)
    node_count = NumberAttribute()
    link_count = NumberAttribute()
    created = UnicodeAttribute(null=True)
    modified = UnicodeAttribute(null=True)
    synced_at = UnicodeAttribute()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def lab_to_item(model: type[LabItem], lab: Lab) -> LabItem:
    return model(
        lab.worker_id,
        lab.lab_id,
        title=lab.title,
        state=lab.state,
        owner=lab.owner,
        owner_fullname=lab.owner_fullname,
        description=lab.description,
        notes=lab.notes,
        groups=[group.model_dump(mode="json") for group in lab.groups],
        state_history=[change.model_dump(mode="json") for change in lab.state_history],
        node_count=lab.node_count,
        link_count=lab.link_count,
        created=_iso(lab.created),
        modified=_iso(lab.modified),
        synced_at=lab.synced_at.isoformat(),
    )


def item_to_lab(item: LabItem) -> Lab:
    return Lab(
        worker_id=item.worker_id,
        lab_id=item.lab_id,
        title=item.title,
        state=item.state,
        owner=item.owner,
        owner_fullname=item.owner_fullname,
        description=item.description or "",
        notes=item.notes or "",
        groups=tuple(LabGroup.model_validate(group) for group in item.groups or ()),
        state_history=tuple(LabStateChange.model_validate(change) for change in item.state_history or ()),
        node_count=int(item.node_count),
        link_count=int(item.link_count),
        created=datetime.fromisoformat(item.created) if item.created else None,
        modified=datetime.fromisoformat(item.modified) if item.modified else None,
        synced_at=datetime.fromisoformat(item.synced_at),
    )


@contextmanager
def _dynamodb_faults(action: str) -> Iterator[None]:
    """A DynamoDB fault as the domain's `ExternalServiceError` (callers record or report it)."""
    try:
        yield
    except DoesNotExist:
        raise
    except PynamoDBException as exc:
        if isinstance(exc.cause, ClientError):
            raise map_client_error(exc.cause, action=action) from exc
        raise ExternalServiceError(f"{action} on the labs table failed: {exc.msg}") from exc


class DynamoLabRepository:
    """`LabRepository` on the labs table; DynamoDB faults surface as `ExternalServiceError`."""

    def __init__(self, table_name: str, region: str) -> None:
        self._model: type[LabItem] = bind(LabItem, table_name, region)

    def list(self, worker_id: str) -> list[Lab]:
        # The result iterator follows LastEvaluatedKey itself: every page is read.
        with _dynamodb_faults("Query"):
            return [item_to_lab(item) for item in self._model.query(worker_id, consistent_read=True)]

    def get(self, worker_id: str, lab_id: str) -> Lab | None:
        try:
            with _dynamodb_faults("GetItem"):
                return item_to_lab(self._model.get(worker_id, lab_id, consistent_read=True))
        except DoesNotExist:
            return None

    def write(self, puts: Sequence[Lab], deletes: Sequence[Lab]) -> int:
        """One batch for both: PynamoDB sends 25 requests per BatchWriteItem and retries the
        unprocessed ones."""
        if not puts and not deletes:
            return 0
        with _dynamodb_faults("BatchWriteItem"), self._model.batch_write() as batch:
            for lab in puts:
                batch.save(lab_to_item(self._model, lab))
            for lab in deletes:
                batch.delete(self._model(lab.worker_id, lab.lab_id))
        return len(puts) + len(deletes)


class InMemoryLabRepository:
    """Same semantics as `DynamoLabRepository`; `writes` counts rows put or deleted."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Lab] = {}
        self._lock = threading.Lock()
        self.writes = 0

    def list(self, worker_id: str) -> list[Lab]:
        return [lab for (wid, _), lab in sorted(self._rows.items()) if wid == worker_id]

    def get(self, worker_id: str, lab_id: str) -> Lab | None:
        return self._rows.get((worker_id, lab_id))

    def write(self, puts: Sequence[Lab], deletes: Sequence[Lab]) -> int:
        with self._lock:
            for lab in puts:
                self._rows[(lab.worker_id, lab.lab_id)] = lab
            for lab in deletes:
                self._rows.pop((lab.worker_id, lab.lab_id), None)
            self.writes += len(puts) + len(deletes)
        return len(puts) + len(deletes)


def create_labs_table(table_name: str, region: str) -> None:
    """Create the labs table if missing (local mode and tests; CDK owns it in AWS)."""
    bound = bind(LabItem, table_name, region)
    if not bound.exists():
        bound.create_table(wait=True)


__all__ = ["DynamoLabRepository", "InMemoryLabRepository", "LabItem", "create_labs_table"]
