"""A collection run across the state machine's steps: plan it (lease, schedules put back, the
batches written where the Distributed Map reads them), record each batch's outcome, and finish it
(sum the outcomes, record the heartbeat, give the lease back).

Nothing here grows the state machine's payload: batches and outcomes live in the `CollectRuns`
store, and only keys and counts travel through the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cmlcm.domain.collection import BatchCounts, RunSummary, partition, run_name, summarize
from cmlcm.domain.jobs import COLLECT_JOB, RunRequest
from cmlcm.ports import CollectionRunPorts, CollectRuns
from cmlcm.services.jobs import begin_run, end_run, finish_run, heal_schedule_states, job_intervals
from cmlcm.services.settings import heal_schedule_rates

__all__ = ["CollectionPlan", "finish_collection", "outcomes", "plan_collection", "plan_run", "run_name"]


def plan_run(runs: CollectRuns, run: str, worker_ids: Sequence[str], *, batch_size: int) -> tuple[str, int]:
    """Write the run's batches; returns (the key the Map reads, how many batches)."""
    batches = partition(worker_ids, batch_size)
    return runs.put_batches(run, batches), len(batches)


def outcomes(runs: CollectRuns, run: str) -> list[BatchCounts]:
    """Every batch's outcome in batch order; a batch that stored none (it failed after its retries,
    or the Map itself failed) counts all its workers as failed."""
    stored = runs.results(run)
    return [
        BatchCounts.from_stored(stored[index])
        if index in stored
        else BatchCounts(workers=len(batch), failed=len(batch), batch_failed=True)
        for index, batch in enumerate(runs.batches(run))
    ]


@dataclass(frozen=True)
class CollectionPlan:
    """What the plan step decided: the run's batches, or a skipped run."""

    started_at: datetime
    skipped: bool = False
    run: str = ""
    batches_key: str = ""
    batches: int = 0
    workers: int = 0
    max_concurrency: int = 1
    #: Schedules whose state or rate could not be put back (schedule → what happened).
    unhealed: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_state(self) -> dict[str, Any]:
        """The state machine's input for the Map and the summary."""
        return {
            "skipped": self.skipped,
            "run": self.run,
            "batches_key": self.batches_key,
            "batches": self.batches,
            "workers": self.workers,
            "max_concurrency": self.max_concurrency,
            "started_at": self.started_at.isoformat(),
        }


def _problems(results: dict[str, str]) -> dict[str, str]:
    return {job: result for job, result in results.items() if result not in ("ok", "none")}


def plan_collection(ports: CollectionRunPorts, run: RunRequest, *, now: datetime) -> CollectionPlan:
    """Take the run's lease (another run still going, or a scheduled run of a paused collection:
    the run ends at once, recorded as skipped), list the active workers (index query, ids only)
    and write their batches; put the schedules back on the settings' intervals and the jobs'
    pause records (a deployment resets both)."""
    settings = ports.settings.get()
    # Before the lease: a paused collection's scheduled run (re-enabled by a deployment) disables
    # its schedule again on its way out.
    unhealed = {"states": _problems(heal_schedule_states(ports.job_schedules, ports.jobs))}
    interval = job_intervals(settings)[COLLECT_JOB]
    run_id = run.run_id
    if (
        begin_run(ports.jobs, COLLECT_JOB, run_id, interval_seconds=interval, now=now, trigger=run.trigger, by=run.by)
        is None
    ):
        return CollectionPlan(started_at=now, skipped=True, unhealed=unhealed)
    try:
        unhealed["rates"] = _problems(heal_schedule_rates(ports.job_schedules, settings))
        worker_ids = ports.workers.active_ids()
        key, batches = plan_run(
            ports.collect_runs, run_name(run_id), worker_ids, batch_size=settings.collect_batch_size
        )
    except Exception:
        end_run(ports.jobs, COLLECT_JOB, run_id)  # the run ends here: the next need not wait
        raise
    return CollectionPlan(
        started_at=now,
        run=run_name(run_id),
        batches_key=key,
        batches=batches,
        workers=len(worker_ids),
        max_concurrency=settings.collect_max_concurrency,
        unhealed=unhealed,
    )


def finish_collection(
    ports: CollectionRunPorts, run: str, *, execution: str | None, started_at: datetime, now: datetime
) -> RunSummary:
    """Sum the run's batch outcomes, record the heartbeat and give the execution's lease back."""
    summary = summarize(outcomes(ports.collect_runs, run), started_at=started_at, now=now)
    interval = job_intervals(ports.settings.get())[COLLECT_JOB]
    finish_run(ports.jobs, COLLECT_JOB, execution, summary.outcome(), interval_seconds=interval, now=now)
    return summary
