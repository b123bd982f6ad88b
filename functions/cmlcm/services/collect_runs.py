"""A collection run's shape: its batches written where the Distributed Map reads them, each batch's
outcome recorded, and the run's totals summed from them (a batch without an outcome failed).

Nothing here grows the state machine's payload: batches and outcomes live in the `CollectRuns`
store, and only keys and counts travel through the state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from cmlcm.ports import CollectRuns


class BatchOutcome(BaseModel):
    """What one batch collector did (or, for a batch that stored none, that all of it failed)."""

    model_config = ConfigDict(extra="ignore")

    workers: int = 0
    changed: int = 0
    failed: int = 0
    written: int = 0
    samples: int = 0
    paused: int = 0
    schedule_stopped: int = 0
    schedule_started: int = 0
    errors: dict[str, int] = {}
    batch_failed: bool = False


class RunSummary(BaseModel):
    """A run's totals, as recorded on the heartbeat and published as metrics."""

    model_config = ConfigDict(frozen=True)

    workers: int
    changed: int
    failed: int
    written: int
    samples: int
    paused: int
    schedule_stopped: int = 0
    schedule_started: int = 0
    batches: int
    batches_failed: int
    duration_ms: int
    errors: dict[str, int]

    @property
    def succeeded(self) -> bool:
        return self.batches_failed == 0

    def as_summary(self) -> dict[str, int | float | str]:
        """The heartbeat's `last_summary` (numbers only; error classes are metrics)."""
        return self.model_dump(exclude={"errors"})


def run_name(execution: str) -> str:
    """The run's key segment: the execution's name (the last part of its ARN), unique per state machine."""
    return execution.rsplit(":", 1)[-1]


def partition(worker_ids: Sequence[str], batch_size: int) -> list[list[str]]:
    """Consecutive batches of at most `batch_size` ids, in order."""
    size = max(1, batch_size)
    return [list(worker_ids[i : i + size]) for i in range(0, len(worker_ids), size)]


def plan_run(runs: CollectRuns, run: str, worker_ids: Sequence[str], *, batch_size: int) -> tuple[str, int]:
    """Write the run's batches; returns (the key the Map reads, how many batches)."""
    batches = partition(worker_ids, batch_size)
    return runs.put_batches(run, batches), len(batches)


def outcomes(runs: CollectRuns, run: str) -> list[BatchOutcome]:
    """Every batch's outcome in batch order; a batch that stored none (it failed after its retries,
    or the Map itself failed) counts all its workers as failed."""
    stored = runs.results(run)
    return [
        BatchOutcome.model_validate(stored[index])
        if index in stored
        else BatchOutcome(workers=len(batch), failed=len(batch), batch_failed=True)
        for index, batch in enumerate(runs.batches(run))
    ]


def summarize(results: Sequence[BatchOutcome], *, started_at: datetime, now: datetime) -> RunSummary:
    """Sum a run's batch outcomes."""
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result.errors)
    return RunSummary(
        workers=sum(r.workers for r in results),
        changed=sum(r.changed for r in results),
        failed=sum(r.failed for r in results),
        written=sum(r.written for r in results),
        samples=sum(r.samples for r in results),
        paused=sum(r.paused for r in results),
        schedule_stopped=sum(r.schedule_stopped for r in results),
        schedule_started=sum(r.schedule_started for r in results),
        batches=len(results),
        batches_failed=sum(1 for r in results if r.batch_failed),
        duration_ms=int((now - started_at).total_seconds() * 1000),
        errors=dict(errors),
    )
