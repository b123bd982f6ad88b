"""The in-memory twin of the workers repository (`adapters/dynamo.py`), with the same semantics
(locking, paging, errors).

Used by unit tests and benchmarks that isolate the service from DynamoDB. A contract test runs
the same cases against it and the DynamoDB adapter, so the twin cannot drift. The other twins live
beside their adapters (`operations.py`, `schedule_store.py`, `schedules.py`, `job_runs.py`, ...).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterator, Sequence

from cmlcm.adapters.pynamo import decode_token, encode_token
from cmlcm.domain.errors import ConcurrentModification, Conflict, NotFound
from cmlcm.domain.workers import Worker, WorkerStatus, WorkerSummary
from cmlcm.ports import Page, WorkerQuery


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
