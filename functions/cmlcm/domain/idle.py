"""Idle detection: a pure policy over the activity signals collection gathered (`now` is an argument)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerStatus


@dataclass(frozen=True)
class IdleDecision:
    worker_id: str
    reason: str


def idle_since(worker: Worker) -> datetime:
    """The last sign of use: CML activity (logins, lab actions, lab changes) or, failing that,
    when the worker last changed status (so a just-started worker gets a full timeout)."""
    activity = worker.metrics.last_activity_at if worker.metrics else None
    return max(a for a in (activity, worker.status_changed_at) if a is not None)


def decide_idle(workers: Iterable[Worker], settings: Settings, *, now: datetime) -> list[IdleDecision]:
    """Workers to pause: idle detection on (globally and for the worker), RUNNING with CML
    available, no running nodes, and no activity for `idle_timeout_minutes`."""
    if not settings.idle_detection_enabled:
        return []
    timeout = timedelta(minutes=settings.idle_timeout_minutes)
    decisions = []
    for worker in workers:
        metrics = worker.metrics
        if (
            not worker.idle_detection_enabled
            or worker.status != WorkerStatus.RUNNING
            or worker.service_status != ServiceStatus.AVAILABLE
            or metrics is None
            or metrics.nodes_running is None
            or metrics.nodes_running > 0
        ):
            continue
        quiet = now - idle_since(worker)
        if quiet >= timeout:
            minutes = int(quiet.total_seconds() // 60)
            decisions.append(
                IdleDecision(
                    worker.worker_id,
                    f"idle: no running nodes and no activity for {minutes} min "
                    f"(timeout {settings.idle_timeout_minutes} min)",
                )
            )
    return decisions
