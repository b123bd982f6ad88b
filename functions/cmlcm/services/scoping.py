"""Per-user scoping in the service layer: a caller's view of the workers repository.

Every worker use case (list, get, each action, labs, licences, metrics, refresh) reads its worker
through `ports.workers`; `scoped(ports, scope)` gives the same ports with that repository narrowed
to the caller's scope, so no use case can reach a worker out of it, whichever route calls it. An
out-of-scope worker is answered exactly as a missing one (`NotFound`, same message and field):
a scoped caller cannot learn that it exists.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from cmlcm.domain.access import Scope
from cmlcm.domain.errors import NotFound
from cmlcm.domain.workers import Worker, WorkerSummary
from cmlcm.ports import Page, WorkerQuery, WorkerRepository

PortsT = TypeVar("PortsT")

#: Repository pages read at most to fill one page of a scoped listing (then the page is
#: returned short, with its next_token, rather than scanning a huge fleet in one request).
MAX_PAGES_PER_LISTING = 20


class ScopedWorkers:
    """A `WorkerRepository` that holds only the workers in `scope` (writes go through: every
    write follows a read that was checked)."""

    def __init__(self, repo: WorkerRepository, scope: Scope) -> None:
        self._repo = repo
        self._scope = scope

    def _allowed(self, worker: Worker) -> bool:
        return self._scope.allows(worker.owner, worker.tags)

    def get(self, worker_id: str) -> Worker:
        worker = self._repo.get(worker_id)
        if not self._allowed(worker):
            # The words of a missing worker (both repositories say this), nothing more.
            raise NotFound(f"worker {worker_id} not found", field="worker_id")
        return worker

    def find_by_instance_id(self, instance_id: str) -> Worker | None:
        found = self._repo.find_by_instance_id(instance_id)
        return found if found is not None and self._allowed(found) else None

    def get_many(self, worker_ids: Sequence[str]) -> builtins.list[Worker]:
        return [w for w in self._repo.get_many(worker_ids) if self._allowed(w)]

    def add(self, worker: Worker) -> Worker:
        return self._repo.add(worker)

    def save(self, worker: Worker) -> Worker:
        return self._repo.save(worker)

    def save_many(
        self, workers: Sequence[Worker]
    ) -> tuple[builtins.list[Worker], builtins.list[tuple[Worker, Exception]]]:
        return self._repo.save_many(workers)

    def delete(self, worker_id: str) -> None:
        self.get(worker_id)
        self._repo.delete(worker_id)

    def list(self, query: WorkerQuery) -> Page[Worker]:
        """The caller's workers, page by page: the repository's pages filtered, read on while a
        page comes out empty (at most `MAX_PAGES_PER_LISTING` a request). A page may hold fewer
        than `limit` items: follow `next_token` until it is null."""
        token = query.next_token
        for _ in range(MAX_PAGES_PER_LISTING):
            page = self._repo.list(dataclasses.replace(query, next_token=token))
            items = [w for w in page.items if self._allowed(w)]
            token = page.next_token
            if items or token is None:
                return Page(items=items, next_token=token)
        return Page(items=[], next_token=token)

    def iter_active(self) -> Iterator[Worker]:
        return (w for w in self._repo.iter_active() if self._allowed(w))

    def active_ids(self) -> builtins.list[str]:
        return [w.worker_id for w in self.iter_active()]

    def iter_active_summaries(self) -> Iterator[WorkerSummary]:
        return (s for s in self._repo.iter_active_summaries() if self._scope.allows(s.owner, s.tags))


def scoped(ports: PortsT, scope: Scope) -> PortsT:
    """`ports` (any ports dataclass with a `workers` repository) seen through `scope`; the same
    object when the scope is everything."""
    if scope.everything:
        return ports
    workers: Any = getattr(ports, "workers")  # noqa: B009  # every ports dataclass names it so
    return dataclasses.replace(ports, workers=ScopedWorkers(workers, scope))  # type: ignore[type-var]  # a ports dataclass
