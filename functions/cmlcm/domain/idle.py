"""Idle detection: a pure policy over the activity signals collection gathered (`now` is an argument).

`idle_status` explains, for one worker, whether the policy may pause it and why (not): the one
rule `decide_idle` applies, so what a user reads is what the policy does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cmlcm.domain.settings import Settings
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerStatus

#: Why a worker is (not) paused by the idle policy, most decisive first.
IdleReason = Literal[
    "detection_off",  # the fleet-wide switch or the worker's own is off
    "not_running",  # only a running worker can be paused
    "waiting_for_cml",  # CML is not answering yet: no reading of labs/nodes to judge by
    "snoozed",  # a user resumed or started it a moment ago
    "labs_running",  # nodes are running: in use
    "cpu_busy",  # CPU at or above the settings' idle_cpu_busy_percent
    "recent_activity",  # counting down to `pause_at`
    "idle",  # quiet for the whole timeout: the next collection pauses it
]
#: Where the last sign of use came from.
ActivitySource = Literal["cml_events", "labs_running", "cpu", "status_change"]


class IdleStatus(BaseModel):
    """What the idle policy thinks of one worker at `now`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    eligible: bool = Field(description="True when the policy pauses it at pause_at unless it is used meanwhile")
    reason: IdleReason
    message: str
    last_activity_at: datetime | None = None
    last_activity_source: ActivitySource | None = None
    pause_at: datetime | None = Field(default=None, description="When the policy pauses it if nothing changes")
    snoozed_until: datetime | None = None
    idle_timeout_minutes: int


@dataclass(frozen=True)
class IdleDecision:
    worker_id: str
    reason: str


def idle_since(worker: Worker) -> datetime:
    """The last sign of use: CML activity (logins, lab actions, lab changes) or, failing that,
    when the worker last changed status (so a just-started worker gets a full timeout)."""
    return last_activity(worker)[0]


def last_activity(worker: Worker) -> tuple[datetime, ActivitySource]:
    """The last sign of use and its source (CML telemetry events, or the last status change)."""
    activity = worker.metrics.last_activity_at if worker.metrics else None
    if activity is not None and activity >= worker.status_changed_at:
        return activity, "cml_events"
    return worker.status_changed_at, "status_change"


def idle_status(worker: Worker, settings: Settings, *, now: datetime) -> IdleStatus:
    """Eligible or not and why, the last activity and its source, when the pause is due and
    until when a user's resume snoozes it. `decide_idle` pauses exactly the `idle` ones."""
    timeout = settings.idle_timeout_minutes
    snooze = worker.snoozed_until if worker.is_snoozed(now) else None

    def status(
        reason: IdleReason,
        message: str,
        *,
        eligible: bool = False,
        activity: tuple[datetime, ActivitySource] | None = None,
        pause_at: datetime | None = None,
    ) -> IdleStatus:
        return IdleStatus(
            eligible=eligible,
            reason=reason,
            message=message,
            last_activity_at=activity[0] if activity else None,
            last_activity_source=activity[1] if activity else None,
            pause_at=pause_at,
            snoozed_until=snooze,
            idle_timeout_minutes=timeout,
        )

    if not settings.idle_detection_enabled or not worker.idle_detection_enabled:
        where = "for the fleet (settings)" if not settings.idle_detection_enabled else "for this worker"
        return status("detection_off", f"idle detection is off {where}")
    if worker.status != WorkerStatus.RUNNING:
        return status("not_running", f"the worker is {worker.status.value}")
    metrics = worker.metrics
    if worker.service_status != ServiceStatus.AVAILABLE or metrics is None or metrics.nodes_running is None:
        return status("waiting_for_cml", "no reading of CML's labs and nodes yet (CML not available)")
    if metrics.nodes_running > 0:
        labs = f" in {metrics.labs_running} labs" if metrics.labs_running else ""
        return status(
            "labs_running",
            f"{metrics.nodes_running} nodes running{labs}",
            activity=(metrics.collected_at, "labs_running"),
        )
    busy = settings.idle_cpu_busy_percent
    if busy and metrics.cpu_percent is not None and metrics.cpu_percent >= busy:
        return status(
            "cpu_busy",
            f"CPU at {metrics.cpu_percent:.0f} % (busy from {busy} %)",
            activity=(metrics.collected_at, "cpu"),
        )
    since, source = last_activity(worker)
    pause_at = since + timedelta(minutes=timeout)
    if snooze is not None:
        return status(
            "snoozed",
            "resumed by a user: the idle policy waits until the snooze ends",
            activity=(since, source),
            pause_at=max(pause_at, snooze),
        )
    quiet_minutes = int((now - since).total_seconds() // 60)
    if now < pause_at:
        return status(
            "recent_activity",
            f"last activity {quiet_minutes} min ago ({source.replace('_', ' ')}); timeout {timeout} min",
            eligible=True,
            activity=(since, source),
            pause_at=pause_at,
        )
    return status(
        "idle",
        f"idle: no running nodes and no activity for {quiet_minutes} min (timeout {timeout} min)",
        eligible=True,
        activity=(since, source),
        pause_at=pause_at,
    )


def decide_idle(workers: Iterable[Worker], settings: Settings, *, now: datetime) -> list[IdleDecision]:
    """Workers to pause: idle detection on (globally and for the worker), RUNNING with CML
    available, not snoozed, no running nodes (nor busy CPU), and no activity for
    `idle_timeout_minutes`."""
    if not settings.idle_detection_enabled:
        return []
    decisions = []
    for worker in workers:
        # Cheap filters first: most of a fleet is in use, stopped or opted out.
        if worker.status != WorkerStatus.RUNNING or not worker.idle_detection_enabled:
            continue
        status = idle_status(worker, settings, now=now)
        if status.reason == "idle":
            decisions.append(IdleDecision(worker.worker_id, status.message))
    return decisions
