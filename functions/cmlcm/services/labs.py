"""Lab use cases: list (from the labs table), sync from CML, start/stop/wipe/delete, download,
import.

Reads are served from the table; anything that touches CML needs a RUNNING worker and goes
through one CML session per request (`asyncio.run`: the API is synchronous). After each CML
action the affected row is re-synced, so the table (and the stream behind it) follows CML.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from cmlcm.domain.cml import LabDetails
from cmlcm.domain.errors import Conflict, ExternalServiceError, NotFound
from cmlcm.domain.labs import Lab, check_lab_yaml, plan_lab_sync
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.ports import CmlController, CmlControllers, CmlLabDetails, LabPorts, LabRepository
from cmlcm.services.workers import get_worker

T = TypeVar("T")
LabAction = Literal["start", "stop", "wipe"]


@dataclass(frozen=True)
class LabSyncResult:
    """Counts of one sync and the worker's labs after it."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    labs: list[Lab] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.added + self.changed + self.deleted


def lab_from_cml(worker_id: str, details: CmlLabDetails, now: datetime) -> Lab:
    """CML's lab as the product's: the lab details both share (`LabDetails`, field by field), its
    key and the sync time."""
    shared = {name: getattr(details, name) for name in LabDetails.model_fields}
    return Lab(worker_id=worker_id, lab_id=details.id, synced_at=now, **shared)


def _sorted(labs: list[Lab]) -> list[Lab]:
    return sorted(labs, key=lambda lab: (lab.title.lower(), lab.lab_id))


async def sync_labs(worker: Worker, cml: CmlController, repo: LabRepository, *, now: datetime) -> LabSyncResult:
    """Read every lab of the worker from CML (ids, then details) and make the table match:
    new and changed labs are written, unchanged ones are not, orphans are deleted, all in
    BatchWriteItem requests. A CML fault raises before anything is written."""
    observed = [lab_from_cml(worker.worker_id, details, now) for details in await cml.list_labs()]
    stored = await asyncio.to_thread(repo.list, worker.worker_id)
    plan = plan_lab_sync(stored, observed)
    await asyncio.to_thread(repo.write, plan.puts, plan.orphans)
    return LabSyncResult(
        added=len(plan.added),
        changed=len(plan.changed),
        unchanged=len(plan.unchanged),
        deleted=len(plan.orphans),
        labs=plan.current,
    )


def _is_missing(exc: ExternalServiceError) -> bool:
    """CML's 404 (`Lab not found: <id>`), whatever adapter class carries it."""
    return exc.http_status == 404


async def sync_lab(worker: Worker, cml: CmlController, repo: LabRepository, lab_id: str, *, now: datetime) -> Lab:
    """Re-read one lab from CML and write its row if it changed; a lab CML no longer has loses
    its row and is `NotFound` (404 naming `lab_id`)."""
    details = await _on_lab(worker, lab_id, cml.get_lab(lab_id), repo)
    stored = await asyncio.to_thread(repo.get, worker.worker_id, lab_id)
    lab = lab_from_cml(worker.worker_id, details, now).following(stored)
    if lab.same_content(stored):
        return stored  # type: ignore[return-value]  # same_content(None) is False, so stored is a Lab
    await asyncio.to_thread(repo.write, [lab], [])
    return lab


async def _forget(worker: Worker, repo: LabRepository, lab_id: str) -> None:
    stored = await asyncio.to_thread(repo.get, worker.worker_id, lab_id)
    if stored is not None:
        await asyncio.to_thread(repo.write, [], [stored])


def require_running(worker: Worker) -> None:
    """CML is only reachable on a running worker: 409 naming `status` otherwise."""
    if worker.status != WorkerStatus.RUNNING:
        raise Conflict(
            f"worker {worker.worker_id} is {worker.status.value}: its CML controller is reachable only while it is running",
            field="status",
        )


def on_controller(cml: CmlControllers, worker: Worker, action: Callable[[CmlController], Awaitable[T]]) -> T:
    """Run `action` against the worker's controller in a session of its own (one event loop per
    request: the API handlers are synchronous)."""

    async def run() -> T:
        async with cml.session() as session:
            return await action(session.client_for(worker))

    return asyncio.run(run())


def _running_worker(ports: LabPorts, key: str) -> Worker:
    worker = get_worker(ports.workers, key)
    require_running(worker)
    return worker


async def _on_lab(worker: Worker, lab_id: str, call: Awaitable[T], repo: LabRepository) -> T:
    """A lab-specific CML call whose 404 means the lab is gone (its stale row goes too)."""
    try:
        return await call
    except ExternalServiceError as exc:
        if _is_missing(exc):
            await _forget(worker, repo, lab_id)
            raise NotFound(f"lab {lab_id} not found on worker {worker.worker_id}", field="lab_id") from exc
        raise


def list_labs(ports: LabPorts, key: str) -> tuple[Worker, list[Lab]]:
    """The worker's labs as last synced (from the table; CML is not called)."""
    worker = get_worker(ports.workers, key)
    return worker, _sorted(ports.labs.list(worker.worker_id))


def refresh_labs(ports: LabPorts, key: str, *, now: datetime) -> tuple[Worker, LabSyncResult]:
    """Sync the worker's labs from CML now."""
    worker = _running_worker(ports, key)
    return worker, on_controller(ports.cml, worker, lambda cml: sync_labs(worker, cml, ports.labs, now=now))


def lab_action(ports: LabPorts, key: str, lab_id: str, action: LabAction, *, now: datetime) -> Lab:
    """Start, stop or wipe a lab (asynchronous in CML), then re-sync its row."""
    worker = _running_worker(ports, key)

    async def run(cml: CmlController) -> Lab:
        command = {"start": cml.start_lab, "stop": cml.stop_lab, "wipe": cml.wipe_lab}[action]
        await _on_lab(worker, lab_id, command(lab_id), ports.labs)
        return await sync_lab(worker, cml, ports.labs, lab_id, now=now)

    return on_controller(ports.cml, worker, run)


def delete_lab(ports: LabPorts, key: str, lab_id: str) -> None:
    """Delete the lab on CML (CML refuses a running lab: stop and wipe it first), then its row."""
    worker = _running_worker(ports, key)

    async def run(cml: CmlController) -> None:
        await _on_lab(worker, lab_id, cml.delete_lab(lab_id), ports.labs)
        await _forget(worker, ports.labs, lab_id)

    on_controller(ports.cml, worker, run)


def download_lab(ports: LabPorts, key: str, lab_id: str) -> str:
    """The lab's topology as CML YAML."""
    worker = _running_worker(ports, key)
    return on_controller(ports.cml, worker, lambda cml: _on_lab(worker, lab_id, cml.download_lab(lab_id), ports.labs))


def import_lab(ports: LabPorts, key: str, yaml_text: str, *, title: str | None, now: datetime) -> Lab:
    """Import a lab from YAML: checked here first (size, YAML, topology shape: 413/422 naming
    `body`, CML not called), then sent to CML as is; the new lab's row is written."""
    worker = get_worker(ports.workers, key)
    check_lab_yaml(yaml_text)
    require_running(worker)

    async def run(cml: CmlController) -> Lab:
        lab_id = await cml.import_lab(yaml_text, title)
        return await sync_lab(worker, cml, ports.labs, lab_id, now=now)

    return on_controller(ports.cml, worker, run)


__all__ = [
    "LabPorts",
    "LabSyncResult",
    "delete_lab",
    "download_lab",
    "import_lab",
    "lab_action",
    "lab_from_cml",
    "list_labs",
    "on_controller",
    "refresh_labs",
    "require_running",
    "sync_lab",
    "sync_labs",
]
