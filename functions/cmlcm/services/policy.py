"""The fleet policy applied: schedules and the idle policy, decided purely (`domain.policy`), then
carried out in ONE StopInstances and ONE StartInstances per region (the adapter bisects a failed
batch), each worker recorded with its reason (`schedule:<name>` or the idle reason), actor and
counters. Also the read side: each worker's policy status and the hours and money saved.

Called by the collection run on the workers it just collected, so the schedules are evaluated on
the collection's schedule (every `collect_interval_minutes`): no other schedule, state machine or
local loop to keep in step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cmlcm.domain.errors import ExternalServiceError
from cmlcm.domain.policy import (
    FleetSavings,
    PolicyAction,
    WorkerPolicy,
    WorkerSavings,
    decide_policies,
    fleet_savings,
    worker_policy,
    worker_savings,
)
from cmlcm.domain.settings import Settings, hourly_price
from cmlcm.domain.workers import ChangeCause, Worker, WorkerError, WorkerStatus
from cmlcm.ports import PolicyPorts, WorkerQuery, WorkerRepository
from cmlcm.services.workers import mutate

IDLE_POLICY = ChangeCause(kind="idle_policy", by="idle policy")


@dataclass
class PolicyOutcome:
    """What one application of the policy did (per collection batch)."""

    paused_idle: int = 0
    schedule_stopped: int = 0
    schedule_started: int = 0
    marked: int = 0
    failed: int = 0
    #: Every worker written, as stored.
    updated: list[Worker] = field(default_factory=list)
    #: Of the workers given, after this: how many a policy keeps stopped, and their on-demand USD/h.
    stopped_by_policy: int = 0
    usd_per_hour: float = 0.0


def _cause(action: PolicyAction) -> ChangeCause:
    return IDLE_POLICY if action.source == "idle" else ChangeCause(kind="schedule", by=action.by)


def _stopped(action: PolicyAction, now: datetime) -> Callable[[Worker], Worker]:
    def change(worker: Worker) -> Worker:
        if worker.status != WorkerStatus.RUNNING:  # changed since it was decided: nothing to record
            return worker
        paused = worker.pause(now=now, reason=action.reason, by=action.by, auto=True, source=action.source)
        return paused.mark_schedule(action.mark) if action.mark is not None else paused

    return change


def _started(action: PolicyAction, now: datetime) -> Callable[[Worker], Worker]:
    def change(worker: Worker) -> Worker:
        if worker.status != WorkerStatus.STOPPED:
            return worker
        if worker.is_paused:
            started = worker.resume(now=now, reason=action.reason, by=action.by, auto=True)
        else:
            started = worker.transition(WorkerStatus.STARTING, now=now, reason=action.reason)
        return started.mark_schedule(action.mark)

    return change


def _marked(action: PolicyAction) -> Callable[[Worker], Worker]:
    return lambda worker: worker.mark_schedule(action.mark)


def _record_failure(error: ExternalServiceError, now: datetime) -> Callable[[Worker], Worker]:
    fault = WorkerError(source="ec2", kind=error.code, message=error.message, at=now)
    return lambda worker: worker.record_error(fault)


def apply_policies(ports: PolicyPorts, workers: Sequence[Worker], *, now: datetime) -> PolicyOutcome:
    """Decide for `workers` (freshly collected) and carry it out; see the module docstring."""
    settings = ports.settings.get()
    schedules = ports.schedules.list() if ports.schedules is not None else []
    actions = decide_policies(workers, schedules, settings, now=now)
    outcome = PolicyOutcome()
    if actions:
        _carry_out(ports, workers, actions, outcome, now)
    latest = {w.worker_id: w for w in workers} | {w.worker_id: w for w in outcome.updated}
    outcome.stopped_by_policy, outcome.usd_per_hour = stopped_by_policy(list(latest.values()), settings)
    return outcome


def _carry_out(
    ports: PolicyPorts,
    workers: Sequence[Worker],
    actions: Sequence[PolicyAction],
    outcome: PolicyOutcome,
    now: datetime,
) -> None:
    by_id = {w.worker_id: w for w in workers}
    calls: dict[tuple[str, str], list[tuple[Worker, PolicyAction]]] = defaultdict(list)
    for action in actions:
        worker = by_id[action.worker_id]
        if action.action == "mark":
            outcome.updated.append(mutate(ports.workers, worker.worker_id, _marked(action), _cause(action)))
            outcome.marked += 1
        elif worker.instance_id:
            calls[(worker.region, action.action)].append((worker, action))
    for (region, verb), batch in calls.items():
        ec2 = ports.ec2_for(region)
        ids = [w.instance_id for w, _ in batch if w.instance_id]
        try:
            result = ec2.stop(ids) if verb == "stop" else ec2.start(ids)
            failed = result.failed
        except ExternalServiceError as exc:  # the whole call failed: recorded on each worker
            failed = dict.fromkeys(ids, exc)
        for worker, action in batch:
            error = failed.get(worker.instance_id or "")
            if error is not None:
                outcome.updated.append(
                    mutate(ports.workers, worker.worker_id, _record_failure(error, now), _cause(action))
                )
                outcome.failed += 1
                continue
            change = _stopped(action, now) if verb == "stop" else _started(action, now)
            outcome.updated.append(mutate(ports.workers, worker.worker_id, change, _cause(action)))
            if verb == "start":
                outcome.schedule_started += 1
            elif action.source == "idle":
                outcome.paused_idle += 1
            else:
                outcome.schedule_stopped += 1


def stopped_by_policy(workers: Sequence[Worker], settings: Settings) -> tuple[int, float]:
    """How many of `workers` a policy keeps stopped, and their on-demand price per hour (USD):
    the collection's EMF metrics, which the ops dashboard turns into hours and money saved."""
    count, usd = 0, 0.0
    for worker in workers:
        if worker.policy_stopped_at is not None:
            count += 1
            usd += hourly_price(settings.on_demand_prices, worker.instance_type, worker.region) or 0.0
    return count, round(usd, 4)


# --- read side ------------------------------------------------------------------------------------


def explain_worker(ports: PolicyPorts, worker: Worker, *, now: datetime) -> WorkerPolicy:
    """The worker's idle status, schedule, next automatic stop and savings."""
    schedules = ports.schedules.list() if ports.schedules is not None else []
    return worker_policy(worker, schedules, ports.settings.get(), now=now)


def _every_worker(repo: WorkerRepository) -> Iterator[Worker]:
    token = None
    while True:
        page = repo.list(WorkerQuery(include_terminated=True, limit=500, next_token=token))
        yield from page.items
        token = page.next_token
        if token is None:
            return


@dataclass(frozen=True)
class SavingsReport:
    fleet: FleetSavings
    workers: list[tuple[Worker, WorkerSavings]]


def savings_report(ports: PolicyPorts, *, now: datetime) -> SavingsReport:
    """Hours stopped by policy and the on-demand price avoided, per worker (terminated ones too:
    what they saved stays saved) and for the fleet."""
    settings = ports.settings.get()
    rows = [(w, worker_savings(w, settings, now=now)) for w in _every_worker(ports.workers)]
    rows.sort(key=lambda row: (-row[1].hours, row[0].worker_id))
    return SavingsReport(fleet=fleet_savings(s for _, s in rows), workers=rows)


__all__ = ["PolicyOutcome", "PolicyPorts", "apply_policies", "explain_worker", "savings_report"]
